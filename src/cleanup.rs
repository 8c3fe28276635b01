//! Removal of staging files when the process is interrupted.
//!
//! Every staging directory or temp file that a writer creates is registered here, and
//! [`interrupt`] removes them all: the binary calls it on SIGINT, SIGTERM or SIGHUP
//! before it exits, so an interrupted conversion leaves the destination absent or
//! exactly as it was. After SIGKILL nothing
//! can run; staging names start with `.<destination name>.dockhand-tmp-` so they are easy
//! to recognise and delete.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, TryLockError};
use std::time::Duration;

static STAGING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// True once a signal asked the process to stop: writers create nothing more.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// The marker in every staging name.
///
/// ```
/// use dockhand::{convert, ConvertOptions, STAGING_MARKER};
/// # let input = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/docker-save-basic/input.tar");
/// # let tmp = tempfile::tempdir().unwrap();
///
/// convert(input, tmp.path().join("out.tar").to_str().unwrap(), &ConvertOptions::default())?;
/// // Once committed, nothing named with the marker is left beside the output.
/// let entries = std::fs::read_dir(tmp.path()).unwrap();
/// let names: Vec<_> = entries.map(|e| e.unwrap().file_name()).collect();
/// assert_eq!(names, ["out.tar"]);
/// assert!(names.iter().all(|n| !n.to_string_lossy().contains(STAGING_MARKER)));
/// # Ok::<(), dockhand::Error>(())
/// ```
pub const STAGING_MARKER: &str = ".dockhand-tmp-";

/// Remember `path` as staging to remove on a signal.
pub(crate) fn register(path: &Path) {
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
pub(crate) fn unregister_with<T>(path: &Path, commit: impl FnOnce() -> T) -> T {
    unregister_if(path, commit, |_| true)
}

/// Like [`unregister_with`], but `path` stays registered when `done` says, from what
/// `commit` returned, that it is still staging (a rename that found its destination
/// taken leaves it to be added from or removed): never unregistered, not even for an
/// instant in which a signal would leave it behind.
pub(crate) fn unregister_if<T>(
    path: &Path,
    commit: impl FnOnce() -> T,
    done: impl FnOnce(&T) -> bool,
) -> T {
    let mut staging = lock();
    let result = commit();
    if done(&result) {
        staging.retain(|p| p != path);
    }
    result
}

fn lock() -> MutexGuard<'static, Vec<PathBuf>> {
    STAGING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Stop: writers create nothing more, every staging path registered so far is removed
/// (twice more after a short wait, for a writer that was mid-creation), and no commit
/// can start while the returned guard lives. For a signal handler: hold the guard until
/// the process exits, so that nothing appears at a destination after this.
pub fn interrupt() -> Interrupted {
    INTERRUPTED.store(true, Ordering::SeqCst);
    let staging = lock();
    for pass in 0..3 {
        if pass > 0 {
            std::thread::sleep(Duration::from_millis(20));
        }
        for path in staging.iter() {
            remove(path);
        }
    }
    Interrupted(staging)
}

/// Keeps commits from starting after [`interrupt`]; see there.
pub struct Interrupted(#[allow(dead_code)] MutexGuard<'static, Vec<PathBuf>>);
