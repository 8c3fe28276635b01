//! A directory output, built in a sibling staging directory and renamed into place.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use super::tar_writer::split_dest;
use super::{normalize_path, ExactReader, ParallelFiles, TreeWriter};
use crate::cleanup;
use crate::error::{Error, IoContext, Result};

/// Writes a directory tree atomically: everything goes into `.<name>.dockhand-tmp-*`
/// next to the destination, which is renamed over it on commit.
pub struct DirWriter {
    staging: Option<PathBuf>,
    dest: PathBuf,
    replace: bool,
}

impl DirWriter {
    /// Start writing `dest`. An existing non-empty directory (or any file) is refused
    /// unless `replace`.
    pub fn create(dest: &Path, replace: bool) -> Result<DirWriter> {
        let shown = dest.display().to_string();
        if let Ok(meta) = dest.symlink_metadata() {
            let empty_dir = meta.is_dir()
                && fs::read_dir(dest)
                    .map(|mut d| d.next().is_none())
                    .unwrap_or(false);
            if !empty_dir && !replace {
                return Err(Error::DestinationExists(shown));
            }
        }
        let (parent, name) = split_dest(dest)?;
        let staging = tempfile::Builder::new()
            .prefix(&format!(".{name}{}", cleanup::STAGING_MARKER))
            .tempdir_in(&parent)
            .ctx(|| format!("creating a staging directory next to {shown}"))?
            .keep();
        cleanup::register(&staging);
        Ok(DirWriter {
            staging: Some(staging),
            dest: dest.to_path_buf(),
            replace,
        })
    }

    fn path(&self, rel: &str) -> Result<PathBuf> {
        if cleanup::interrupted() {
            return Err(Error::Interrupted);
        }
        let clean = normalize_path(rel)
            .filter(|p| !p.is_empty())
            .ok_or_else(|| {
                Error::malformed(rel, "refusing to write a path outside the destination")
            })?;
        Ok(self
            .staging
            .as_ref()
            .expect("used after commit")
            .join(clean))
    }

    fn create_file(&self, rel: &str) -> Result<(PathBuf, File)> {
        let path = self.path(rel)?;
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).ctx(|| format!("creating {}", parent.display()))?;
        }
        let file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .ctx(|| format!("creating {}", path.display()))?;
        Ok((path, file))
    }
}

impl Drop for DirWriter {
    fn drop(&mut self) {
        if let Some(staging) = self.staging.take() {
            cleanup::unregister_with(&staging, || {
                let _ = fs::remove_dir_all(&staging);
            });
        }
    }
}

impl ParallelFiles for DirWriter {
    fn file_shared(&self, rel: &str, data: &mut dyn Read) -> Result<u64> {
        let (path, file) = self.create_file(rel)?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        let n = io::copy(data, &mut out)
            .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
        out.flush().ctx(|| format!("writing {}", path.display()))?;
        Ok(n)
    }
}

impl TreeWriter for DirWriter {
    fn dir(&mut self, rel: &str) -> Result<()> {
        let path = self.path(rel)?;
        fs::create_dir_all(&path).ctx(|| format!("creating {}", path.display()))
    }

    fn file(&mut self, rel: &str, size: u64, data: &mut dyn Read) -> Result<()> {
        let mut exact = ExactReader::new(data, size, rel);
        self.file_unsized(rel, &mut exact)?;
        exact.finish()
    }

    fn file_unsized(&mut self, rel: &str, data: &mut dyn Read) -> Result<u64> {
        self.file_shared(rel, data)
    }

    fn parallel(&self) -> Option<&dyn ParallelFiles> {
        Some(self)
    }

    fn symlink(&mut self, rel: &str, target: &str) -> Result<()> {
        let path = self.path(rel)?;
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).ctx(|| format!("creating {}", parent.display()))?;
        }
        std::os::unix::fs::symlink(target, &path)
            .ctx(|| format!("creating symlink {}", path.display()))
    }

    fn commit(mut self: Box<Self>) -> Result<()> {
        let staging = self.staging.take().expect("committed twice");
        let shown = self.dest.display().to_string();
        sync_tree(&staging).ctx(|| format!("flushing {shown}"))?;
        let dest = self.dest.clone();
        let replace = self.replace;
        let result = cleanup::unregister_with(&staging, || -> Result<()> {
            let existing = dest.symlink_metadata().ok();
            let is_empty_dir = existing.as_ref().is_some_and(|m| m.is_dir())
                && fs::read_dir(&dest)
                    .map(|mut d| d.next().is_none())
                    .unwrap_or(false);
            match existing {
                None => fs::rename(&staging, &dest).ctx(|| format!("renaming into {shown}")),
                Some(_) if is_empty_dir => {
                    fs::rename(&staging, &dest).ctx(|| format!("renaming into {shown}"))
                }
                Some(meta) if replace => {
                    // Swap the new tree and the old destination in one step, so the
                    // destination is whole at every instant (even under SIGKILL), then
                    // delete the old tree from the staging name.
                    if exchange(&staging, &dest).is_ok() {
                        let _ = if meta.is_dir() {
                            fs::remove_dir_all(&staging)
                        } else {
                            fs::remove_file(&staging)
                        };
                        return Ok(());
                    }
                    // Filesystems without RENAME_EXCHANGE: move aside, move in, delete.
                    let aside = staging.with_extension("old");
                    fs::rename(&dest, &aside).ctx(|| format!("moving aside {shown}"))?;
                    if let Err(e) = fs::rename(&staging, &dest) {
                        let _ = fs::rename(&aside, &dest);
                        return Err(Error::io(format!("renaming into {shown}"), e));
                    }
                    let _ = if meta.is_dir() {
                        fs::remove_dir_all(&aside)
                    } else {
                        fs::remove_file(&aside)
                    };
                    Ok(())
                }
                Some(_) => Err(Error::DestinationExists(shown.clone())),
            }
        });
        if result.is_err() {
            let _ = fs::remove_dir_all(&staging);
        }
        result
    }
}

/// Atomically exchange two paths (renameat2 with RENAME_EXCHANGE).
fn exchange(a: &Path, b: &Path) -> io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let a = CString::new(a.as_os_str().as_bytes()).map_err(io::Error::other)?;
    let b = CString::new(b.as_os_str().as_bytes()).map_err(io::Error::other)?;
    // SAFETY: both pointers are valid NUL-terminated strings for the duration of the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Flush everything written under `root` to disk before it is renamed into place, so a
/// crash after the rename cannot leave a destination with empty files. One syncfs(2)
/// covers every file of the staging tree at once (an fsync per blob costs a disk
/// round trip each).
fn sync_tree(root: &Path) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let dir = File::open(root)?;
    // SAFETY: syncfs only reads the descriptor, which `dir` keeps open for the call.
    if unsafe { libc::syncfs(dir.as_raw_fd()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
