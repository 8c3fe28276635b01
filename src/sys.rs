//! The Linux system calls dockhand relies on, in one place: atomic renames
//! (`renameat2` with `RENAME_EXCHANGE` or `RENAME_NOREPLACE`), flushing a whole
//! filesystem at once (`syncfs`), a directory lock (`flock`) and anonymous temp files
//! (`O_TMPFILE`). They go through rustix's and tempfile's safe wrappers: no `unsafe`.

use std::fs::File;
use std::io;
use std::path::Path;

use rustix::fs::{flock, renameat_with, FlockOperation, RenameFlags, CWD};

/// Swap two paths in one step: each ends up under the other's name.
pub(crate) fn rename_exchange(a: &Path, b: &Path) -> io::Result<()> {
    renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE).map_err(io::Error::from)
}

/// Rename `from` to `to` unless `to` exists. Where the filesystem lacks
/// `RENAME_NOREPLACE`, a plain rename after a check (which still refuses a non-empty
/// directory).
pub(crate) fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
        Ok(()) => Ok(()),
        Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOSYS => {
            if to.symlink_metadata().is_ok() {
                return Err(io::ErrorKind::AlreadyExists.into());
            }
            std::fs::rename(from, to)
        }
        Err(e) => Err(e.into()),
    }
}

/// True for the errors a rename gives when something is already at its target.
pub(crate) fn is_taken(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::AlreadyExists
            | io::ErrorKind::DirectoryNotEmpty
            | io::ErrorKind::NotADirectory
            | io::ErrorKind::IsADirectory
    )
}

/// Flush every file of the filesystem holding `dir` with one syncfs(2): one disk round
/// trip for a whole output, where an fsync per file costs one each.
pub(crate) fn sync_filesystem(dir: &Path) -> io::Result<()> {
    let handle = File::open(dir)?;
    rustix::fs::syncfs(&handle).map_err(io::Error::from)
}

/// Make a pipe's buffer 1 MiB (where the system allows), so a fast producer such as
/// `docker save` hands over big stretches per wake-up instead of 64 KiB. Not a pipe, or
/// not allowed: nothing changes.
pub(crate) fn widen_pipe(file: &File) {
    let _ = rustix::pipe::fcntl_setpipe_size(file, 1 << 20);
}

/// An anonymous temp file (`O_TMPFILE` where the filesystem has it): it has no name,
/// and the kernel frees it on every exit, SIGKILL included.
pub(crate) fn anonymous_file() -> io::Result<File> {
    tempfile::tempfile()
}

/// An unnamed file in `dir` (`O_TMPFILE`, mode 0666 minus the umask, as a new file
/// gets): it vanishes on every exit unless [`link_unnamed`] gives it a name.
pub(crate) fn unnamed_file_in(dir: &Path) -> io::Result<File> {
    use rustix::fs::{Mode, OFlags};
    let fd = rustix::fs::open(
        dir,
        OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o666),
    )?;
    Ok(File::from(fd))
}

/// Give the unnamed file `file` (from [`unnamed_file_in`]) the name `dest`, on the same
/// filesystem, through its `/proc/self/fd` link (`linkat` with `AT_SYMLINK_FOLLOW`,
/// which needs no privilege).
pub(crate) fn link_unnamed(file: &File, dest: &Path) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let proc_path = format!("/proc/self/fd/{}", file.as_raw_fd());
    rustix::fs::linkat(
        CWD,
        proc_path.as_str(),
        CWD,
        dest,
        rustix::fs::AtFlags::SYMLINK_FOLLOW,
    )
    .map_err(io::Error::from)
}

/// A flock(2) on a directory, exclusive or shared, released on drop.
pub(crate) struct DirLock(File);

impl DirLock {
    /// Wait for, then hold, the exclusive lock of `dir`.
    pub(crate) fn exclusive(dir: &Path) -> io::Result<DirLock> {
        DirLock::take(dir, FlockOperation::LockExclusive)
    }

    /// Wait for, then hold, a shared lock of `dir`: any number of holders at once, none
    /// while an exclusive one is held.
    pub(crate) fn shared(dir: &Path) -> io::Result<DirLock> {
        DirLock::take(dir, FlockOperation::LockShared)
    }

    /// Wait for, then hold, the exclusive lock of the file `path` names once the lock
    /// is held: a file renamed over it meanwhile (by the holder before) is locked in
    /// turn, so that the holder reads what the path names and no other run edits it.
    pub(crate) fn exclusive_current(path: &Path) -> io::Result<DirLock> {
        use std::os::unix::fs::MetadataExt;
        loop {
            let lock = DirLock::take(path, FlockOperation::LockExclusive)?;
            let held = lock.0.metadata()?;
            let now = std::fs::metadata(path)?;
            if (held.dev(), held.ino()) == (now.dev(), now.ino()) {
                return Ok(lock);
            }
        }
    }

    fn take(dir: &Path, operation: FlockOperation) -> io::Result<DirLock> {
        let handle = File::open(dir)?;
        loop {
            match flock(&handle, operation) {
                Ok(()) => return Ok(DirLock(handle)),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let _ = flock(&self.0, FlockOperation::Unlock);
    }
}
