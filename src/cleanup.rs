//! Removal of staging files when the process is interrupted.
//!
//! Every staging directory or temp file that a writer creates is registered here. A
//! SIGINT, SIGTERM or SIGHUP removes them all before the process exits, so an interrupted
//! conversion leaves the destination absent or exactly as it was. After SIGKILL nothing
//! can run; staging names start with `.<destination name>.dockhand-tmp-` so they are easy
//! to recognise and delete.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, TryLockError};
use std::time::Duration;

static STAGING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// True once a signal asked the process to stop: writers create nothing more.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// The marker in every staging name.
pub const STAGING_MARKER: &str = ".dockhand-tmp-";

/// Remember `path` as staging to remove on a signal.
pub fn register(path: &Path) {
    loop {
        match STAGING.try_lock() {
            Ok(mut staging) => return staging.push(path.to_path_buf()),
            Err(TryLockError::Poisoned(p)) => return p.into_inner().push(path.to_path_buf()),
            Err(TryLockError::WouldBlock) if interrupted() => {
                // The signal handler holds the lock until the process exits and took
                // its list before `path` existed: blocking here would leave it behind.
                remove(path);
                return;
            }
            // Someone else is registering or committing: wait for them.
            Err(TryLockError::WouldBlock) => std::thread::sleep(Duration::from_millis(1)),
        }
    }
}

fn remove(path: &Path) {
    let _ = if path.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
}

/// Forget `path` (it was committed or already removed). Runs `commit` while holding the
/// registry lock so a signal cannot remove a path half-way through a rename.
pub fn unregister_with<T>(path: &Path, commit: impl FnOnce() -> T) -> T {
    let mut staging = lock();
    let result = commit();
    staging.retain(|p| p != path);
    result
}

fn lock() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    STAGING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Wait for the signal handler to finish removing staging and end the process with the
/// signal's exit code. For a caller whose work stopped with [`crate::Error::Interrupted`]:
/// exiting on its own could cut the removal short or report the wrong status.
pub fn await_signal_exit() -> ! {
    loop {
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Install the signal handlers (call once, from the binary).
pub fn install_signal_handlers() -> std::io::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    std::thread::Builder::new()
        .name("dockhand-signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                // Writers on other threads check this before creating anything; one
                // may be mid-creation, hence a second pass after it has had time.
                INTERRUPTED.store(true, Ordering::SeqCst);
                // Hold the lock until exit: no commit can start after this point.
                let staging = lock();
                for pass in 0..3 {
                    if pass > 0 {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    for path in staging.iter() {
                        remove(path);
                    }
                }
                // eprintln! would panic on a closed stderr and leave the process
                // running with its staging gone: ignore the write's result instead.
                let _ = writeln!(
                    std::io::stderr(),
                    "error: interrupted by signal {signal}; nothing was written"
                );
                std::process::exit(128 + signal);
            }
        })?;
    Ok(())
}
