//! Deterministic tar output: to a stream (stdout) or atomically to a file.

use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tar::{EntryType, Header};

use super::output_file::PipelinedFile;
use super::{Committed, ExactReader, Staged, TreeWriter};
use crate::cleanup;
use crate::destination::{self, Output, Plan};
use crate::error::{Error, IoContext, Result};
use crate::model::digest::{Digest, Hasher};

/// Writes entries as a tar stream with fixed metadata (mtime 0, uid/gid 0, no user
/// names), so the same input always gives the same bytes.
///
/// If it is dropped without [`TreeWriter::commit`], the stream is cut off without an
/// end-of-archive marker, so no reader takes a failed output for a complete one.
pub struct TarStreamWriter<W: Write> {
    builder: Option<tar::Builder<Gate<W>>>,
    open: Arc<AtomicBool>,
    what: String,
}

/// Lets writes through until closed; tar::Builder writes its end marker on drop, which
/// must not happen after a failure.
struct Gate<W> {
    inner: W,
    open: Arc<AtomicBool>,
}

impl<W: Write> Write for Gate<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.open.load(Ordering::Relaxed) {
            self.inner.write(buf)
        } else {
            Ok(buf.len())
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        if self.open.load(Ordering::Relaxed) {
            self.inner.flush()
        } else {
            Ok(())
        }
    }
}

fn header(kind: EntryType, size: u64, mode: u32) -> Header {
    let mut h = Header::new_ustar();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    // new_ustar leaves user and group names empty.
    h
}

impl<W: Write> TarStreamWriter<W> {
    /// A tar stream over `inner`; `what` names the output in errors.
    pub fn new(inner: W, what: &str) -> Self {
        let open = Arc::new(AtomicBool::new(true));
        let mut builder = tar::Builder::new(Gate {
            inner,
            open: Arc::clone(&open),
        });
        builder.mode(tar::HeaderMode::Deterministic);
        TarStreamWriter {
            builder: Some(builder),
            open,
            what: what.to_string(),
        }
    }

    fn builder(&mut self) -> &mut tar::Builder<Gate<W>> {
        self.builder.as_mut().expect("used after finish")
    }

    fn write_err(&self, e: io::Error) -> Error {
        Error::io(format!("writing {}", self.what), e)
    }

    /// Push what is buffered to the inner writer and flush it, without ending the
    /// archive: a reader on the other end (a daemon's load) gets every entry so far.
    pub fn flush(&mut self) -> Result<()> {
        let what = self.what.clone();
        self.builder()
            .get_mut()
            .flush()
            .ctx(|| format!("writing {what}"))
    }

    /// Write the end-of-archive marker and return the inner writer.
    pub fn finish(mut self) -> Result<W> {
        let builder = self.builder.take().expect("finished twice");
        let gate = builder
            .into_inner()
            .map_err(|e| Error::io(format!("writing {}", self.what), e))?;
        let mut inner = gate.inner;
        inner.flush().ctx(|| format!("writing {}", self.what))?;
        Ok(inner)
    }
}

impl<W: Write> Drop for TarStreamWriter<W> {
    fn drop(&mut self) {
        if self.builder.is_some() {
            self.open.store(false, Ordering::Relaxed);
        }
    }
}

impl<W: Write> TreeWriter for TarStreamWriter<W> {
    fn dir(&mut self, path: &str) -> Result<()> {
        let mut h = header(EntryType::Directory, 0, 0o755);
        let name = format!("{}/", path.trim_end_matches('/'));
        self.builder()
            .append_data(&mut h, name, io::empty())
            .map_err(|e| self.write_err(e))
    }

    fn file(&mut self, path: &str, size: u64, data: &mut dyn Read) -> Result<()> {
        let mut h = header(EntryType::Regular, size, 0o644);
        let mut exact = ExactReader::new(data, size, path);
        let res = self.builder().append_data(&mut h, path, &mut exact);
        res.map_err(|e| self.write_err(e))?;
        exact.finish()
    }

    fn file_unsized(&mut self, path: &str, data: &mut dyn Read) -> Result<u64> {
        // A tar header needs the size first: stage the bytes.
        let staged = Staged::copying(data, path)?;
        self.file(path, staged.size(), &mut staged.reader()?)?;
        Ok(staged.size())
    }

    fn symlink(&mut self, path: &str, target: &str) -> Result<()> {
        let mut h = header(EntryType::Symlink, 0, 0o777);
        self.builder()
            .append_link(&mut h, path, target)
            .map_err(|e| self.write_err(e))
    }

    fn commit(self: Box<Self>) -> Result<Committed> {
        self.finish().map(|_| Committed::AsPlanned)
    }
}

/// A file written beside its destination (`.<name>.dockhand-tmp-*`, removed on a
/// failure, an interruption or a drop) and renamed over it on commit, through a
/// writing thread of its own: any output dockhand writes as one file.
pub(crate) struct StagedFile {
    file: Option<PipelinedFile>,
    temp: Option<tempfile::TempPath>,
    dest: PathBuf,
    replace: bool,
    force: bool,
}

impl StagedFile {
    /// Start writing `dest`. With the plan [`Plan::Replace`], a regular file or symlink
    /// there is replaced on commit (the crate docs' `# Security` section says what it
    /// may); otherwise commit fails if anything is there by then, with an error that
    /// mentions `--force` only when `force` (whether it was given) is false.
    pub(crate) fn create(dest: &Path, plan: Plan, force: bool) -> Result<StagedFile> {
        if cleanup::interrupted() {
            return Err(Error::Interrupted);
        }
        let shown = dest.display().to_string();
        let (parent, name) = split_dest(dest)?;
        // Mode 0666 before the umask, as cp(1) and skopeo give: not tempfile's 0600.
        let named = tempfile::Builder::new()
            .prefix(&format!(".{name}{}", cleanup::STAGING_MARKER))
            .permissions(std::fs::Permissions::from_mode(0o666))
            .tempfile_in(&parent)
            .map_err(|e| {
                Error::creating_output(
                    &shown,
                    &parent,
                    || format!("creating a temp file next to {shown}"),
                    e,
                )
            })?;
        cleanup::register(named.path());
        let (file, temp) = named.into_parts();
        let file = PipelinedFile::new(file).ctx(|| "starting a writing thread".into())?;
        Ok(StagedFile {
            file: Some(file),
            temp: Some(temp),
            dest: dest.to_path_buf(),
            replace: plan == Plan::Replace,
            force,
        })
    }

    /// Give the output the permission bits `mode` instead of 0666 less the umask: an
    /// archive rewritten in place keeps the old one's.
    pub(crate) fn set_mode(&self, mode: u32) -> Result<()> {
        let temp = self.temp.as_ref().expect("set before commit");
        std::fs::set_permissions(temp, std::fs::Permissions::from_mode(mode & 0o7777))
            .ctx(|| format!("writing {}", self.dest.display()))
    }

    /// The file being written.
    fn file(&mut self) -> &mut PipelinedFile {
        self.file.as_mut().expect("used after commit")
    }

    /// Flush the file to disk and rename it over the destination.
    pub(crate) fn commit(mut self) -> Result<Committed> {
        let shown = self.dest.display().to_string();
        let file = self
            .file
            .take()
            .expect("committed twice")
            .finish()
            .ctx(|| format!("writing {shown}"))?;
        file.sync_all().ctx(|| format!("writing {shown}"))?;
        let temp = self.temp.take().expect("committed twice");
        let temp_path = temp.to_path_buf();
        let dest = self.dest.clone();
        let (replace, force) = (self.replace, self.force);
        cleanup::unregister_with(&temp_path, move || {
            if !replace {
                // rename without replace: a file that appeared since the destination
                // was checked is kept, and of two runs only one can succeed.
                return temp
                    .persist_noclobber(&dest)
                    .map(|_| Committed::AsPlanned)
                    .map_err(|e| {
                        if e.error.kind() == io::ErrorKind::AlreadyExists {
                            destination::appeared(&dest, Output::File, force, None)
                                .expect_err("a file output adds to nothing")
                        } else {
                            Error::io(format!("renaming into {shown}"), e.error)
                        }
                    });
            }
            let replaceable = match dest.symlink_metadata() {
                Err(_) => true,
                Ok(m) => m.file_type().is_file() || m.file_type().is_symlink(),
            };
            if !replaceable {
                drop(temp);
                return Err(Error::DestinationRefused {
                    path: shown,
                    reason: "it changed while dockhand was writing and is no longer a file dockhand may replace".into(),
                });
            }
            temp.persist(&dest)
                .map(|_| Committed::AsPlanned)
                .map_err(|e| Error::io(format!("renaming into {shown}"), e.error))
        })
    }
}

impl Write for StagedFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file().write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.file().write_all(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file().flush()
    }
}

impl Drop for StagedFile {
    fn drop(&mut self) {
        if let Some(temp) = self.temp.take() {
            let path = temp.to_path_buf();
            cleanup::unregister_with(&path, || drop(temp));
        }
    }
}

/// A tar written to a sibling temp file and renamed over the destination on commit.
/// File data is read and hashed straight into the buffers of a writing thread.
pub struct TarFileWriter {
    stream: Option<TarStreamWriter<StagedFile>>,
    dest: PathBuf,
}

impl TarFileWriter {
    /// Start writing `dest`. With the plan [`Plan::Replace`], a regular file or symlink
    /// there is replaced on commit (the crate docs' `# Security` section says what it
    /// may); otherwise commit fails if anything is there by then, with an error that
    /// mentions `--force` only when `force` (whether it was given) is false.
    pub fn create(dest: &Path, plan: Plan, force: bool) -> Result<TarFileWriter> {
        let file = StagedFile::create(dest, plan, force)?;
        Ok(TarFileWriter {
            stream: Some(TarStreamWriter::new(file, &dest.display().to_string())),
            dest: dest.to_path_buf(),
        })
    }

    /// Give the output the permission bits `mode` instead of 0666 less the umask: an
    /// archive rewritten in place keeps the old one's.
    pub(crate) fn set_mode(&mut self, mode: u32) -> Result<()> {
        self.stream().builder().get_mut().inner.set_mode(mode)
    }

    fn stream(&mut self) -> &mut TarStreamWriter<StagedFile> {
        self.stream.as_mut().expect("used after commit")
    }

    /// The file under the tar stream (which buffers nothing itself).
    fn out(&mut self) -> &mut PipelinedFile {
        self.stream().builder().get_mut().inner.file()
    }

    /// A file can be patched: write a placeholder header, stream the data (hashing it
    /// when `hash`), then go back and write the real header, with the name `name` gives
    /// for the content (at most 100 bytes: the header's own name field). This saves
    /// staging the bytes in a temp file when their size, or their digest, is not known
    /// ahead; a file of known size goes the same way, its data read straight into the
    /// writing thread's buffers.
    fn patched(
        &mut self,
        data: &mut dyn Read,
        what: &str,
        hash: bool,
        name: impl FnOnce(Option<&Digest>) -> String,
    ) -> Result<(Option<Digest>, u64)> {
        let shown = self.dest.display().to_string();
        let werr = |e: io::Error| Error::io(format!("writing {shown}"), e);
        let start = self.out().position();
        self.out().write_all(&[0u8; 512]).map_err(werr)?;
        let mut hasher = hash.then(Hasher::new);
        let size = self
            .out()
            .append_from(data, hasher.as_mut(), what, &shown)?;
        let padding = (512 - size % 512) % 512;
        self.out()
            .write_all(&[0u8; 512][..padding as usize])
            .map_err(werr)?;
        let digest = hasher.map(|h| h.finish().0);
        let mut h = header(EntryType::Regular, size, 0o644);
        h.set_path(name(digest.as_ref())).map_err(werr)?;
        h.set_cksum();
        self.out().patch(start, h.as_bytes()).map_err(werr)?;
        Ok((digest, size))
    }
}

/// The parent directory (created if missing) and file name of a destination.
pub(crate) fn split_dest(dest: &Path) -> Result<(PathBuf, String)> {
    let shown = dest.display().to_string();
    let name = dest
        .file_name()
        .ok_or_else(|| Error::Unsupported(format!("{shown}: not a usable destination name")))?
        .to_string_lossy()
        .into_owned();
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        return Err(Error::Unsupported(format!(
            "{shown}: its directory {} does not exist; create it first",
            parent.display()
        )));
    }
    Ok((parent, name))
}

impl TreeWriter for TarFileWriter {
    fn dir(&mut self, path: &str) -> Result<()> {
        self.stream().dir(path)
    }
    fn file(&mut self, path: &str, size: u64, data: &mut dyn Read) -> Result<()> {
        if path.len() > 100 {
            // The tar crate writes the extension entries a long name needs.
            return self.stream().file(path, size, data);
        }
        let mut exact = ExactReader::new(data, size, path);
        self.patched(&mut exact, path, false, |_| path.to_string())?;
        exact.finish()
    }
    fn file_unsized(&mut self, path: &str, data: &mut dyn Read) -> Result<u64> {
        if path.len() > 100 {
            return self.stream().file_unsized(path, data);
        }
        self.patched(data, path, false, |_| path.to_string())
            .map(|(_, size)| size)
    }
    fn file_by_digest(&mut self, prefix: &str, data: &mut dyn Read) -> Result<(Digest, u64)> {
        if prefix.len() + 64 > 100 {
            return self.stream().file_by_digest(prefix, data);
        }
        let (digest, size) = self.patched(data, prefix, true, |digest| {
            format!("{prefix}{}", digest.expect("hashed").hex())
        })?;
        Ok((digest.expect("hashed"), size))
    }
    fn symlink(&mut self, path: &str, target: &str) -> Result<()> {
        self.stream().symlink(path, target)
    }
    fn commit(mut self: Box<Self>) -> Result<Committed> {
        let stream = self.stream.take().expect("committed twice");
        stream.finish()?.commit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_carry_sizes_over_8_gib() {
        // The octal field holds at most 8 GiB - 1; larger sizes must still round-trip.
        let size = (9u64 << 30) + 7;
        let mut h = header(EntryType::Regular, size, 0o644);
        h.set_path("blobs/sha256/x").unwrap();
        h.set_cksum();
        assert_eq!(h.entry_size().unwrap(), size);
    }
}
