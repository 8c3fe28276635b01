//! What `-v/--verbose` adds on stderr: an error's chain of causes, and timings.

use std::io;
use std::time::{Duration, Instant};

/// The chain of causes of `err`, outermost first, for `-v`: each context, each input
/// an error concerns, and the operating system's own error with its kind.
pub fn causes(err: &anyhow::Error) -> Vec<String> {
    fn library(e: &dockhand::Error, out: &mut Vec<String>) {
        match e {
            dockhand::Error::Input { input, error } => {
                out.push(format!("in the input {input}"));
                library(error, out);
            }
            dockhand::Error::Io { context, cause } => {
                out.push(context.clone());
                out.push(system(cause));
            }
            other => out.push(other.to_string()),
        }
    }
    fn system(e: &io::Error) -> String {
        format!("{e} [{:?}]", e.kind())
    }
    let mut out = Vec::new();
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<dockhand::Error>() {
            library(e, &mut out);
        } else if let Some(e) = cause.downcast_ref::<io::Error>() {
            out.push(system(e));
        } else {
            out.push(cause.to_string());
        }
    }
    out
}

/// When each phase of a command ended, for the timings `-v` prints on stderr.
pub struct Clock {
    start: Instant,
    marks: Vec<(&'static str, Instant)>,
}

impl Clock {
    pub fn new() -> Self {
        Clock {
            start: Instant::now(),
            marks: Vec::new(),
        }
    }

    /// The phase `name` ended now.
    pub fn mark(&mut self, name: &'static str) {
        self.mark_at(name, Instant::now());
    }

    /// The phase `name` ended at `at`.
    pub fn mark_at(&mut self, name: &'static str, at: Instant) {
        self.marks.push((name, at));
    }

    /// `timing: PHASE 12.0 ms, ..., total 1.25 s`.
    pub fn line(&self) -> String {
        let seconds = |d: Duration| {
            if d < Duration::from_secs(1) {
                format!("{:.1} ms", d.as_secs_f64() * 1000.0)
            } else {
                format!("{:.2} s", d.as_secs_f64())
            }
        };
        let mut parts = Vec::new();
        let mut from = self.start;
        for &(name, at) in &self.marks {
            parts.push(format!(
                "{name} {}",
                seconds(at.saturating_duration_since(from))
            ));
            from = at;
        }
        parts.push(format!("total {}", seconds(self.start.elapsed())));
        format!("timing: {}", parts.join(", "))
    }
}
