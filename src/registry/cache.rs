//! The blob cache: what a pull verified, kept until an output holds it, so that an
//! interrupted pull fetches only the rest. It may be shared by several runs at once
//! and must not be turned against its user, so:
//!
//! - `blobs/sha256/` is opened once, each component without following symlinks, and
//!   must belong to the user (it is made 0700; files are made 0600).
//! - Every entry is opened relative to that directory with `O_NOFOLLOW | O_NONBLOCK`
//!   and used only when it is a regular file: a symlink, directory or FIFO there is
//!   ignored with a warning, and nothing blocks on it.
//! - `<hex>.partial` is filled by one run at a time, under an exclusive `flock`; a
//!   verified blob is renamed to `<hex>` atomically. Readers of `<hex>` hold a shared
//!   lock, and an entry is removed only by a run that can take the exclusive lock
//!   without waiting, so no run deletes what another is filling or still needs.
//! - A complete entry is verified before it is served, and the bytes kept by an
//!   earlier run are verified with the rest before any is served: an entry that fails
//!   is discarded and fetched again, with a warning, instead of failing the run.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Seek, SeekFrom};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use rustix::fs::{AtFlags, FileType, FlockOperation, Mode, OFlags};

use crate::error::Setting;
use crate::error::{Error, Result};
use crate::model::digest::Digest;

/// Most verified blobs one run keeps a shared lock on (an open file each) until its
/// output holds them.
const MAX_PINS: usize = 256;

/// The blob cache under one root directory.
#[derive(Debug)]
pub(crate) struct BlobCache {
    root: PathBuf,
    /// `blobs/sha256`, opened on first use.
    /// The root and `blobs/sha256`, opened on first use.
    dir: OnceLock<std::result::Result<(OwnedFd, OwnedFd), Error>>,
    /// What the user should hear about entries ignored or discarded.
    warnings: Mutex<Vec<String>>,
    /// Verified blobs this run holds a shared lock on, so that another run finishing
    /// meanwhile does not remove them.
    pins: Mutex<HashMap<Digest, File>>,
}

/// How waiting for a partial entry ended.
pub(super) enum Locked {
    /// The lock is ours, on the file still named as the partial entry.
    Ours,
    /// The name went to another file meanwhile: look again.
    Gone,
    /// Another run holds it and makes no progress.
    Stuck,
}

/// What is at a cache entry's name.
pub(super) enum Entry {
    /// Nothing.
    Absent,
    /// A regular file, opened.
    File(File),
    /// Something else (a symlink, directory, FIFO...), not opened.
    Odd(&'static str),
}

impl BlobCache {
    /// The cache rooted at `root` (created when first used).
    pub(crate) fn new(root: PathBuf) -> BlobCache {
        BlobCache {
            root,
            dir: OnceLock::new(),
            warnings: Mutex::new(Vec::new()),
            pins: Mutex::new(HashMap::new()),
        }
    }

    pub(super) fn dir(&self) -> Result<BorrowedFd<'_>> {
        match self.dir.get_or_init(|| open_blob_dir(&self.root)) {
            Ok((_, blobs)) => Ok(blobs.as_fd()),
            Err(e) => Err(e.clone()),
        }
    }

    /// The cache's root directory, checked as [`BlobCache::dir`] is.
    pub(super) fn root_dir(&self) -> Result<BorrowedFd<'_>> {
        match self.dir.get_or_init(|| open_blob_dir(&self.root)) {
            Ok((root, _)) => Ok(root.as_fd()),
            Err(e) => Err(e.clone()),
        }
    }

    pub(super) fn path_of(&self, name: &str) -> String {
        self.root
            .join("blobs/sha256")
            .join(name)
            .display()
            .to_string()
    }

    pub(super) fn warn(&self, message: String) {
        self.warnings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(message);
    }

    /// The warnings gathered so far, handed out once.
    /// (A blob read by a prefetching thread and by the output says it twice: once.)
    pub(crate) fn take_warnings(&self) -> Vec<String> {
        let all = std::mem::take(&mut *self.warnings.lock().unwrap_or_else(|e| e.into_inner()));
        let mut seen = std::collections::HashSet::new();
        all.into_iter().filter(|w| seen.insert(w.clone())).collect()
    }

    /// Open the entry `name` without following a symlink or blocking on a FIFO;
    /// `create` makes a missing one (mode 0600) and opens it for writing too.
    pub(super) fn open_entry(&self, name: &str, create: bool) -> Result<Entry> {
        let dir = self.dir()?;
        let mut flags = OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        flags |= if create {
            OFlags::RDWR | OFlags::CREATE
        } else {
            OFlags::RDONLY
        };
        let fd = match rustix::fs::openat(dir, name, flags, Mode::from_raw_mode(0o600)) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) if !create => return Ok(Entry::Absent),
            Err(rustix::io::Errno::LOOP) => return Ok(Entry::Odd("a symbolic link")),
            Err(rustix::io::Errno::ISDIR) => return Ok(Entry::Odd("a directory")),
            Err(rustix::io::Errno::NXIO) => return Ok(Entry::Odd("a socket")),
            Err(e) => {
                return Err(Error::io(
                    format!("opening {}", self.path_of(name)),
                    e.into(),
                ))
            }
        };
        let stat = rustix::fs::fstat(&fd)
            .map_err(|e| Error::io(format!("reading {}", self.path_of(name)), e.into()))?;
        match FileType::from_raw_mode(stat.st_mode) {
            FileType::RegularFile => Ok(Entry::File(File::from(fd))),
            FileType::Directory => Ok(Entry::Odd("a directory")),
            FileType::Fifo => Ok(Entry::Odd("a FIFO")),
            FileType::Socket => Ok(Entry::Odd("a socket")),
            _ => Ok(Entry::Odd("a device")),
        }
    }

    /// Does the name `name` still refer to the file `file` has open?
    pub(super) fn still_named(&self, name: &str, file: &File) -> bool {
        let Ok(dir) = self.dir() else { return false };
        same_inode(
            rustix::fs::fstat(file),
            rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW),
        )
    }

    /// Take the exclusive lock on the partial entry `file` (opened as `name`) once its
    /// filler lets go. [`Locked::Gone`] when the name went to another file meanwhile
    /// (the filler finished and renamed it, which keeps it locked as a verified entry,
    /// or gave up and removed it); [`Locked::Stuck`] when the filler holds it but has
    /// not added a byte for `patience` (a stopped process: not waited for forever).
    pub(super) fn lock_partial(
        &self,
        name: &str,
        file: &File,
        patience: Option<Duration>,
    ) -> Result<Locked> {
        let mut last = (
            file.metadata().map(|m| m.len()).unwrap_or(0),
            Instant::now(),
        );
        loop {
            match rustix::fs::flock(file, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) if self.still_named(name, file) => return Ok(Locked::Ours),
                Ok(()) => return Ok(Locked::Gone),
                Err(rustix::io::Errno::WOULDBLOCK) => {
                    if !self.still_named(name, file) {
                        return Ok(Locked::Gone);
                    }
                    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
                    if len != last.0 {
                        last = (len, Instant::now());
                    } else if patience.is_some_and(|p| last.1.elapsed() > p) {
                        return Ok(Locked::Stuck);
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => {
                    return Err(Error::io(
                        format!("locking {}", self.path_of(name)),
                        e.into(),
                    ))
                }
            }
        }
    }

    /// Remove `name` if it is still `file` (held under an exclusive lock).
    pub(super) fn remove_if_still(&self, name: &str, file: &File) {
        if self.still_named(name, file) {
            if let Ok(dir) = self.dir() {
                let _ = rustix::fs::unlinkat(dir, name, AtFlags::empty());
            }
        }
    }

    /// Is `file` the verified blob this run pinned as `digest`?
    pub(super) fn pinned_same(&self, digest: &Digest, file: &File) -> bool {
        let pins = self.pins.lock().unwrap_or_else(|e| e.into_inner());
        pins.get(digest)
            .is_some_and(|pinned| same_inode(rustix::fs::fstat(pinned), rustix::fs::fstat(file)))
    }

    /// Keep a shared lock on the verified blob `file` until [`BlobCache::release`].
    pub(super) fn pin(&self, digest: &Digest, file: &File) {
        let mut pins = self.pins.lock().unwrap_or_else(|e| e.into_inner());
        if pins.len() < MAX_PINS && !pins.contains_key(digest) {
            // A clone shares the open file, and with it the lock.
            if let Ok(clone) = file.try_clone() {
                pins.insert(digest.clone(), clone);
            }
        }
    }

    /// The output holds `digests`: remove their entries, except those another run is
    /// filling or reading (it removes them when it is done).
    pub(crate) fn release<'a>(&self, digests: impl Iterator<Item = &'a Digest>) {
        if self.dir().is_err() {
            return;
        }
        let digests: Vec<&Digest> = digests.collect();
        {
            let mut pins = self.pins.lock().unwrap_or_else(|e| e.into_inner());
            for digest in &digests {
                pins.remove(*digest);
            }
        }
        for digest in digests {
            for name in [digest.hex().to_string(), partial_name(digest)] {
                let Ok(Entry::File(file)) = self.open_entry(&name, false) else {
                    continue;
                };
                if rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive).is_ok() {
                    self.remove_if_still(&name, &file);
                }
            }
        }
    }
}

/// Are both stats of one file?
pub(super) fn same_inode(
    a: rustix::io::Result<rustix::fs::Stat>,
    b: rustix::io::Result<rustix::fs::Stat>,
) -> bool {
    match (a, b) {
        (Ok(a), Ok(b)) => a.st_dev == b.st_dev && a.st_ino == b.st_ino,
        _ => false,
    }
}

pub(super) fn partial_name(digest: &Digest) -> String {
    format!("{}.partial", digest.hex())
}

/// Create (0700) and open `root/blobs/sha256`, refusing a symlink or anything but a
/// directory of the user's own at `blobs` and `sha256`, and closing one that others
/// can read.
fn open_blob_dir(root: &Path) -> std::result::Result<(OwnedFd, OwnedFd), Error> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(root)
        .map_err(|e| cache_error(format!("creating {}", root.display()), e))?;
    let directory = OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC;
    // The root is the user's choice and may be reached through a symlink.
    let mut fd = rustix::fs::openat(rustix::fs::CWD, root, directory, Mode::empty())
        .map_err(|e| cache_error(format!("opening {}", root.display()), e.into()))?;
    let root_fd = rustix::io::dup(&fd)
        .map_err(|e| cache_error(format!("opening {}", root.display()), e.into()))?;
    let mut path = root.to_path_buf();
    for name in ["blobs", "sha256"] {
        path.push(name);
        match rustix::fs::mkdirat(&fd, name, Mode::from_raw_mode(0o700)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => {
                return Err(cache_error(
                    format!("creating {}", path.display()),
                    e.into(),
                ))
            }
        }
        fd = rustix::fs::openat(&fd, name, directory | OFlags::NOFOLLOW, Mode::empty()).map_err(
            |e| match e {
                rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR => unusable(
                    &path,
                    "it is not a directory (a symbolic link or a file), so it is not used",
                ),
                e => cache_error(format!("opening {}", path.display()), e.into()),
            },
        )?;
        let stat = rustix::fs::fstat(&fd)
            .map_err(|e| cache_error(format!("reading {}", path.display()), e.into()))?;
        if stat.st_uid != rustix::process::geteuid().as_raw() {
            return Err(unusable(
                &path,
                "it belongs to another user, who could change what it holds",
            ));
        }
        if stat.st_mode & 0o077 != 0 {
            // Layers from private registries are the user's alone.
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(0o700))
                .map_err(|e| cache_error(format!("restricting {}", path.display()), e.into()))?;
        }
    }
    Ok((root_fd, fd))
}

fn unusable(path: &Path, why: &str) -> Error {
    Error::Unsupported(format!(
        "the blob cache {}: {why} (choose another with {} DIR, or none with {})",
        crate::text::shown(&path.display().to_string()),
        Setting::Cache,
        Setting::NoCache
    ))
}

/// An error creating the blob cache: when it is a permission problem or a read-only
/// file system, say how to use another cache or none.
fn cache_error(context: String, cause: io::Error) -> Error {
    use std::io::ErrorKind::{PermissionDenied, ReadOnlyFilesystem};
    if matches!(cause.kind(), PermissionDenied | ReadOnlyFilesystem) {
        return Error::io(
            format!(
                "{context} (the blob cache: choose another with {} DIR, or none with {})",
                Setting::Cache,
                Setting::NoCache
            ),
            cause,
        );
    }
    Error::io(context, cause)
}

/// Does `file` hold `size` bytes hashing to `digest`? (Read from the start.)
pub(super) fn holds(file: &File, digest: &Digest, size: u64) -> io::Result<bool> {
    if file.metadata()?.len() != size {
        return Ok(false);
    }
    let mut reader = file;
    reader.seek(SeekFrom::Start(0))?;
    let (actual, len) = Digest::of_reader(&mut reader)?;
    reader.seek(SeekFrom::Start(0))?;
    Ok(len == size && actual == *digest)
}
