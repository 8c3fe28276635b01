//! Containers: where a layout's files live. A tar file is indexed once and read by
//! offset; a directory is read in place. Both resolve links strictly inside themselves.

mod append_writer;
mod dir;
mod dir_writer;
mod output_file;
mod spool;
mod tar_index;
mod tar_writer;

pub use append_writer::AppendWriter;
pub(crate) use append_writer::{blob_writers_lock, replace_file, AppendSpec};
pub use dir::DirTree;
pub use dir_writer::DirWriter;
#[cfg(any(test, feature = "fuzzing"))]
pub use spool::open_input;
pub use spool::MAX_TRAILING_BYTES;
pub(crate) use spool::{open_input_spooling_in, open_stream_spooling_in, Decoded};
pub(crate) use tar_index::{
    checksum_ok, extension_name, oversized_extension, padded, pax_records, until_nul, walk_entries,
    EntryHead, Kept, PaxRecord, RegionReader, Source as TarSource, Visitor, BLOCK,
};
pub use tar_index::{
    TarIndex, MAX_ENTRIES, MAX_EXTENSION_SIZE, MAX_NAME_BYTES, MAX_PATH_BYTES, MAX_PATH_DEPTH,
};
pub(crate) use tar_writer::StagedFile;
pub use tar_writer::{TarFileWriter, TarStreamWriter};

use std::collections::VecDeque;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::model::blob::Blob;
use crate::model::digest::Digest;
use crate::text::shown;

/// How many symlink or hardlink hops a path may take before it is called a loop.
pub const MAX_LINK_HOPS: usize = 16;

/// What a path inside a tree names, before links are followed.
#[derive(Clone, Debug)]
pub enum Node {
    /// A regular file.
    File(FileRef),
    /// A directory.
    Dir,
    /// A symbolic link; the target is relative to the link's directory (or to the tree
    /// root when absolute).
    Symlink(String),
    /// A hard link; the target is relative to the tree root.
    Hardlink(String),
    /// Something dockhand does not read (device, fifo, sparse file).
    Other(&'static str),
}

/// A regular file found in a tree: its path there, its size, and its bytes.
#[derive(Clone, Debug)]
pub struct FileRef {
    /// The file's normalized path inside the tree, after links were followed.
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its bytes.
    pub blob: Arc<dyn Blob>,
}

impl FileRef {
    /// A reader over the file's bytes.
    pub fn open(&self) -> Result<Box<dyn Read + Send>> {
        self.blob.open()
    }

    /// Read the first bytes (at most `n`), e.g. to sniff compression.
    pub fn head(&self, n: usize) -> Result<Vec<u8>> {
        self.blob.head(n)
    }
}

/// Two entries of one archive under the same name. Tar readers take the last (as
/// dockhand does); some tools (skopeo) take the first, so a difference is worth a
/// warning.
#[derive(Clone, Debug)]
pub struct Duplicate {
    /// The first entry of that name, which the last one shadows.
    pub first: FileRef,
    /// The first entry's position among the archive's entries, counting from 1.
    pub first_entry: u64,
    /// The position of the last entry of that name, the one dockhand reads.
    pub last_entry: u64,
}

/// A read-only tree of files: an indexed tar or a directory.
pub trait FileTree: Send + Sync {
    /// The input as the user named it, for messages.
    fn name(&self) -> &str;
    /// True for a directory, false for a tar archive.
    fn is_dir(&self) -> bool;
    /// What `path` (normalized, relative) names, without following links there.
    fn node(&self, path: &str) -> Option<Node>;
    /// The names directly under the root (for format detection).
    fn top_level(&self) -> Vec<String>;
    /// When `path` (normalized) names a regular file that appears more than once in the
    /// archive, the first of those entries that is a regular file. Directories never
    /// have duplicates, and neither does a name whose last entry is not a regular file.
    fn duplicate(&self, _path: &str) -> Option<Duplicate> {
        None
    }
    /// Every image read from the tree is written: what was kept only to resume
    /// reading it (a registry's blob cache) can go. Returns what reading the blobs had
    /// to tell the user (a cache entry discarded and fetched again).
    fn finished(&self) -> Vec<String> {
        Vec::new()
    }
}

impl dyn FileTree + '_ {
    /// Resolve `path` to a regular file, following symlinks (relative to the link's
    /// directory) and hardlinks (relative to the root), never leaving the tree.
    pub fn resolve(&self, path: &str) -> Result<FileRef> {
        match self.lookup(path)? {
            Some(Node::File(f)) => Ok(f),
            Some(Node::Dir) => Err(Error::malformed(shown(path), "is a directory, not a file")),
            Some(Node::Other(kind)) => Err(Error::malformed(
                shown(path),
                format!("is a {kind}, not a regular file"),
            )),
            Some(Node::Symlink(_) | Node::Hardlink(_)) => unreachable!("lookup follows links"),
            None => Err(Error::Missing {
                file: shown(path),
                what: "file".into(),
            }),
        }
    }

    /// Resolve `path` if it exists; `Ok(None)` when it does not.
    pub fn find(&self, path: &str) -> Result<Option<FileRef>> {
        match self.lookup(path)? {
            None => Ok(None),
            Some(_) => self.resolve(path).map(Some),
        }
    }

    /// Does `path` exist (as anything, after following links)?
    pub fn exists(&self, path: &str) -> bool {
        matches!(self.lookup(path), Ok(Some(_)))
    }

    /// Follow links component by component; `Ok(None)` if the final path does not exist.
    ///
    /// The resolved prefix is kept as one string that components are appended to and
    /// cut from, so a lookup costs time linear in the path's length per component
    /// rather than rebuilding the prefix each time.
    fn lookup(&self, path: &str) -> Result<Option<Node>> {
        let mut pending: VecDeque<String> = normalize_path(path, Parents::Applied)
            .ok_or_else(|| Error::malformed(shown(path), "path is absolute or leaves the archive"))?
            .split('/')
            .map(str::to_string)
            .collect();
        // The resolved prefix, and where each of its components starts.
        let mut current = String::new();
        let mut starts: Vec<usize> = Vec::new();
        let mut hops = 0;
        while let Some(component) = pending.pop_front() {
            match component.as_str() {
                "" | "." => continue,
                ".." => {
                    let Some(start) = starts.pop() else {
                        return Err(Error::malformed(
                            shown(path),
                            "a link points outside the archive",
                        ));
                    };
                    current.truncate(start.saturating_sub(1));
                    continue;
                }
                _ => {}
            }
            if !current.is_empty() {
                current.push('/');
            }
            starts.push(current.len());
            current.push_str(&component);
            let (target, from_root) = match self.node(&current) {
                Some(Node::Symlink(t)) => {
                    if t.starts_with('/') {
                        return Err(Error::malformed(
                            shown(&current),
                            format!(
                                "symlink to absolute path {} points outside the archive",
                                shown(&t)
                            ),
                        ));
                    }
                    (t, false)
                }
                Some(Node::Hardlink(t)) => (t, true),
                Some(Node::File(_)) | Some(Node::Other(_)) if !pending.is_empty() => {
                    return Ok(None)
                }
                None => return Ok(None),
                _ => continue,
            };
            hops += 1;
            if hops > MAX_LINK_HOPS {
                return Err(Error::malformed(
                    shown(path),
                    format!("more than {MAX_LINK_HOPS} link hops (a loop?)"),
                ));
            }
            // The link itself is replaced by its target's components.
            let start = starts.pop().unwrap_or(0);
            current.truncate(start.saturating_sub(1));
            if from_root {
                current.clear();
                starts.clear();
            }
            for c in target.split('/').rev() {
                pending.push_front(c.to_string());
            }
        }
        if current.is_empty() {
            return Ok(Some(Node::Dir));
        }
        Ok(self.node(&current))
    }
}

/// What a `..` component of a path does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parents {
    /// It removes the component before it (a tar entry's name, a lookup).
    Applied,
    /// It makes the path unusable (a path named by metadata or written out).
    Refused,
}

/// The canonical key of a relative path, used by every tree: no empty or `.`
/// components, `..` applied or refused as `parents` says; empty for the root itself.
/// `None` when the path is absolute, climbs above the root, or has a refused `..`.
pub fn normalize_path(path: &str, parents: Parents) -> Option<String> {
    if path.starts_with('/') {
        return None;
    }
    let mut out: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." if parents == Parents::Refused => return None,
            ".." => {
                out.pop()?;
            }
            _ => out.push(c),
        }
    }
    Some(out.join("/"))
}

/// `rel` joined to the output directory `root`, unless a signal asked the process to
/// stop or `rel` is empty, absolute or climbs out of `root`.
pub(crate) fn output_path(root: &std::path::Path, rel: &str) -> Result<PathBuf> {
    if crate::cleanup::interrupted() {
        return Err(Error::Interrupted);
    }
    let clean = normalize_path(rel, Parents::Refused)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| Error::malformed(rel, "refusing to write a path outside the destination"))?;
    Ok(root.join(clean))
}

/// How a [`TreeWriter::commit`] made its output visible.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Committed {
    /// As the writer was created to: streamed, renamed in, or added to a layout.
    AsPlanned,
    /// A new layout found one of its kind at its destination, created there while it
    /// was written, and added its images to that one.
    AddedToAppearedLayout,
}

/// Something a layout writer writes into: a tar stream, a tar file or a directory.
///
/// Nothing becomes visible at the destination before [`TreeWriter::commit`]; dropping a
/// writer without committing removes everything it wrote.
pub trait TreeWriter {
    /// Add a directory.
    fn dir(&mut self, path: &str) -> Result<()>;
    /// Add a file of exactly `size` bytes read from `data` (more or fewer is an error).
    fn file(&mut self, path: &str, size: u64, data: &mut dyn Read) -> Result<()> {
        let mut exact = ExactReader::new(data, size, path);
        self.file_unsized(path, &mut exact)?;
        exact.finish()
    }
    /// Add a file whose size is not known in advance; returns the size written.
    fn file_unsized(&mut self, path: &str, data: &mut dyn Read) -> Result<u64>;
    /// Add a symbolic link.
    fn symlink(&mut self, path: &str, target: &str) -> Result<()>;
    /// Add a file named `prefix` followed by the hex sha256 of its content, which is
    /// known only once `data` has been read; returns that digest and the size. Writers
    /// that can rename or patch a header do so; this default stages the bytes in an
    /// anonymous temp file first.
    fn file_by_digest(&mut self, prefix: &str, data: &mut dyn Read) -> Result<(Digest, u64)> {
        let (staged, digest) = Staged::hashing(data, prefix)?;
        let size = staged.size();
        self.file(
            &format!("{prefix}{}", digest.hex()),
            size,
            &mut staged.reader()?,
        )?;
        Ok((digest, size))
    }
    /// Make the result visible at the destination; says how it got there.
    fn commit(self: Box<Self>) -> Result<Committed>;
    /// The size of the blob at `path` when the destination already holds it with
    /// exactly this digest (and size, when known), so it need not be written again.
    /// Only a writer that adds to an existing layout has any.
    fn existing_blob(
        &self,
        _path: &str,
        _digest: &Digest,
        _size: Option<u64>,
    ) -> Result<Option<u64>> {
        Ok(None)
    }
    /// A handle for writing independent files from several threads at once, when the
    /// container allows it (a directory does; a tar stream must stay in order).
    fn parallel(&self) -> Option<&dyn ParallelFiles> {
        None
    }
    /// The directory the output is built in, when it is one: a piped input spools its
    /// big entries there, so that [`ParallelFiles::adopt`] can link them in.
    fn staging_dir(&self) -> Option<&Path> {
        None
    }
}

/// Writing whole files from several threads at once.
pub trait ParallelFiles: Sync {
    /// Like [`TreeWriter::file_unsized`], callable concurrently for different paths.
    fn file_shared(&self, path: &str, data: &mut dyn Read) -> Result<u64>;
    /// Give `file`, an unnamed file spooled into [`TreeWriter::staging_dir`] whose bytes
    /// the caller has verified, the name `path`, without copying it. `false` when it
    /// cannot (the caller then writes the bytes).
    fn adopt(&self, _path: &str, _file: &std::fs::File) -> Result<bool> {
        Ok(false)
    }
    /// How many files to write at once.
    fn jobs(&self) -> usize {
        crate::pool::cores()
    }
}

/// Read from `input` until `buf` is full or the input ends; how many bytes were read.
pub(crate) fn read_full(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match input.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Copy `data` into `out`, hashing it on the way; its sha256 and length. `what` names
/// the data in errors.
pub(crate) fn copy_hashing(
    data: &mut dyn Read,
    out: &mut dyn io::Write,
    what: &str,
) -> Result<(Digest, u64)> {
    let mut hasher = crate::model::digest::Hasher::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match data.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io(format!("reading {what}"), e)),
        };
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])
            .map_err(|e| Error::io(format!("writing {what}"), e))?;
    }
    Ok(hasher.finish())
}

/// Bytes whose size or digest is known only once all are read, held in an anonymous
/// temp file (freed on every exit) to be read again from the start.
pub(crate) struct Staged {
    file: std::fs::File,
    size: u64,
}

impl Staged {
    /// Stage `data` (named `what` in errors), hashing it on the way; and its sha256.
    pub(crate) fn hashing(data: &mut dyn Read, what: &str) -> Result<(Staged, Digest)> {
        Staged::fill(|out| copy_hashing(data, out, what))
    }

    /// Stage `data` (named `what` in errors) without hashing it.
    pub(crate) fn copying(data: &mut dyn Read, what: &str) -> Result<Staged> {
        let (staged, ()) = Staged::fill(|out| {
            io::copy(data, out)
                .map(|size| ((), size))
                .map_err(|e| Error::io(format!("reading {what}"), e))
        })?;
        Ok(staged)
    }

    /// A new temp file filled by `copy`, which returns what it learnt and the size.
    fn fill<T>(
        copy: impl FnOnce(&mut io::BufWriter<&mut std::fs::File>) -> Result<(T, u64)>,
    ) -> Result<(Staged, T)> {
        let mut file =
            crate::sys::anonymous_file().map_err(|e| Error::io("creating a temp file", e))?;
        let (learnt, size) = {
            let mut out = io::BufWriter::with_capacity(STAGING_BUFFER, &mut file);
            let result = copy(&mut out)?;
            io::Write::flush(&mut out).map_err(|e| Error::io("writing a temp file", e))?;
            result
        };
        Ok((Staged { file, size }, learnt))
    }

    /// How many bytes are staged.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// A reader over the staged bytes from the start. Readers share one file
    /// position: only the newest one may be read.
    pub(crate) fn reader(&self) -> Result<io::BufReader<std::fs::File>> {
        use std::io::Seek;
        let mut file = self
            .file
            .try_clone()
            .map_err(|e| Error::io("reading a temp file", e))?;
        file.rewind()
            .map_err(|e| Error::io("reading a temp file", e))?;
        Ok(io::BufReader::with_capacity(STAGING_BUFFER, file))
    }
}

/// The buffer between staged bytes and their temp file, each way.
const STAGING_BUFFER: usize = 1 << 20;

/// A reader that yields exactly `size` bytes of `inner` or fails, so a writer never
/// emits a tar entry whose data disagrees with its header.
pub(crate) struct ExactReader<'a> {
    inner: &'a mut dyn Read,
    left: u64,
    path: &'a str,
}

impl<'a> ExactReader<'a> {
    pub(crate) fn new(inner: &'a mut dyn Read, size: u64, path: &'a str) -> Self {
        ExactReader {
            inner,
            left: size,
            path,
        }
    }

    /// Fail unless the inner reader is also at its end.
    pub(crate) fn finish(self) -> Result<()> {
        let mut probe = [0u8; 1];
        let extra = self
            .inner
            .read(&mut probe)
            .map_err(|e| Error::io(format!("reading {}", self.path), e))?;
        if self.left != 0 || extra != 0 {
            return Err(Error::malformed(
                self.path,
                "content length differs from its recorded size",
            ));
        }
        Ok(())
    }
}

impl Read for ExactReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(
                Error::malformed(self.path, "content is shorter than its recorded size").into_io(),
            );
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Read all of `reader`, at most `limit` bytes; more is an error naming `file`.
pub(crate) fn read_limited(reader: impl Read, limit: u64, file: &str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    reader
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| Error::io(format!("reading {file}"), e))?;
    if out.len() as u64 > limit {
        return Err(Error::malformed(
            file,
            format!("larger than the {limit}-byte limit for metadata"),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_paths() {
        for parents in [Parents::Applied, Parents::Refused] {
            let normal = |path| normalize_path(path, parents);
            assert_eq!(normal("./a//b/./c").as_deref(), Some("a/b/c"));
            assert_eq!(normal("/etc/passwd"), None);
            assert_eq!(normal("../b"), None);
            assert_eq!(normal("./").as_deref(), Some(""));
        }
        assert_eq!(normalize_path("a/../b", Parents::Refused), None);
        assert_eq!(
            normalize_path("a/../b", Parents::Applied).as_deref(),
            Some("b")
        );
        assert_eq!(
            normalize_path("a/b/../..", Parents::Applied).as_deref(),
            Some("")
        );
        assert_eq!(normalize_path("a/../../b", Parents::Applied), None);
    }
}
