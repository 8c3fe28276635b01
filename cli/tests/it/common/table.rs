//! Catalogue tests as tables of named rows: every row runs, a row whose checks fail is
//! recorded with its name and the failed check's message, and the test fails once at
//! the end listing every failing row, not only the first.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The rows of one catalogue test, each run as it is added.
#[must_use = "call finish(), which fails the test when a row failed"]
pub struct Table {
    test: String,
    rows: Vec<String>,
    failures: Vec<(String, String)>,
    finished: bool,
}

impl Table {
    pub fn new(test: &str) -> Table {
        Table {
            test: test.to_string(),
            rows: Vec::new(),
            failures: Vec::new(),
            finished: false,
        }
    }

    /// Run the checks of row `name` now. A failed check (a panic: the usual asserts)
    /// is recorded against the row, and the next rows still run.
    pub fn row(&mut self, name: &str, check: impl FnOnce()) {
        assert!(
            !self.rows.iter().any(|r| r == name),
            "{}: two rows are named {name:?}",
            self.test
        );
        self.rows.push(name.to_string());
        if let Err(panic) = catch_unwind(AssertUnwindSafe(check)) {
            self.failures.push((name.to_string(), message(&*panic)));
        }
    }

    /// Fail, naming every failing row with its message, when any row failed; a table
    /// that ran no row fails too.
    pub fn finish(mut self) {
        self.finished = true;
        assert!(!self.rows.is_empty(), "{}: no rows ran", self.test);
        if self.failures.is_empty() {
            return;
        }
        let mut report = format!(
            "{}: {} of {} rows failed:",
            self.test,
            self.failures.len(),
            self.rows.len()
        );
        for (name, message) in &self.failures {
            report.push_str(&format!(
                "\n- row {name:?}: {}",
                message.trim_end().replace('\n', "\n    ")
            ));
        }
        panic!("{report}");
    }
}

impl Drop for Table {
    /// A table dropped without `finish` would let its failed rows pass unreported.
    fn drop(&mut self) {
        if !self.finished && !std::thread::panicking() {
            panic!("{}: table dropped without finish()", self.test);
        }
    }
}

/// The message of a caught panic.
fn message(panic: &(dyn Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = panic.downcast_ref::<&str>() {
        s.to_string()
    } else {
        "a panic without a message".to_string()
    }
}
