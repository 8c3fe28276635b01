//! A random-access index over a tar archive, built by dockhand's own header walker in
//! one pass: over a seekable file (seeking over entry data), or over a stream copied
//! into a spool file as it is walked (`spool.rs`). Every size a header claims is
//! checked against a cap or against the data left before anything is read or
//! allocated for it, and memory grows linearly with the names the archive holds.

use std::collections::{btree_map, BTreeMap, BTreeSet};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, OnceLock};

use tar::{EntryType, Header};

use super::{normalize_path, Duplicate, FileRef, FileTree, Node, Parents};
use crate::error::{Error, Result};
use crate::model::blob::Blob;
use crate::model::digest::Digest;
use crate::model::media::Compression;
use crate::text::shown;

/// Upper bound on the entries of one archive, so a hostile archive cannot grow the
/// index without limit (a real image archive has a few entries per layer).
pub const MAX_ENTRIES: usize = 250_000;

/// The largest data of one tar extension entry (GNU long name `L`, long link name `K`,
/// PAX `x` and global `g` headers), 1 MiB as in Go's `archive/tar`. These are read into
/// memory, so a larger claim is refused before anything is read.
pub const MAX_EXTENSION_SIZE: u64 = 1 << 20;

/// The longest entry name or link target accepted, in bytes (Linux's `PATH_MAX`).
pub const MAX_PATH_BYTES: usize = 4096;

/// The most components an entry name may have. Lookups walk names component by
/// component, so this bounds the work of one lookup.
pub const MAX_PATH_DEPTH: usize = 128;

/// The most bytes of entry names and link targets one index holds (32 MiB), which
/// bounds its memory whatever the entry count.
pub const MAX_NAME_BYTES: usize = 32 << 20;

/// The size of a tar header and the unit entry data is padded to.
pub(crate) const BLOCK: usize = 512;

/// Where the header walker reads an archive from, and what passing over entry data
/// means: seeking in a file that is indexed in place, or copying into a spool file.
pub(crate) trait Source {
    /// Fill `buf` from the archive; fewer bytes than its length only at the end of data.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize>;
    /// Move past `n` bytes of entry data, keeping them in the index's file when `keep`.
    /// Returns where the kept bytes start and how many bytes were passed (fewer than
    /// `n` when the data ends first). The bytes may be kept in a file of their own
    /// instead, which [`Kept::Own`] hands back.
    fn data(&mut self, n: u64, keep: bool) -> io::Result<(Kept, u64)>;
    /// The end-of-archive marker was read (or the data ended): stop reading.
    fn end(&mut self) -> io::Result<()>;
    /// An I/O error of this source, as an error naming the input.
    fn fail(&self, e: io::Error) -> Error;
}

/// Where a file entry's kept bytes are.
pub(crate) enum Kept {
    /// At this offset of the index's file.
    At(u64),
    /// The whole of a file of their own (a spooled entry big enough to be linked into an
    /// output instead of copied), and where the spool puts their sha256 and length once
    /// it has hashed them as they passed.
    Own(Arc<File>, Arc<OnceLock<(Digest, u64)>>),
}

/// A tar file indexed in place: headers are read with positioned reads and entry data
/// is seeked over, so only headers are ever read.
struct FileSource<'a> {
    file: &'a File,
    pos: u64,
    len: u64,
}

impl Source for FileSource<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            match self.file.read_at(&mut buf[n..], self.pos) {
                Ok(0) => break,
                Ok(k) => {
                    n += k;
                    self.pos += k as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }

    fn data(&mut self, n: u64, _keep: bool) -> io::Result<(Kept, u64)> {
        let at = self.pos;
        let passed = n.min(self.len.saturating_sub(self.pos));
        self.pos += passed;
        Ok((Kept::At(at), passed))
    }

    fn end(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn fail(&self, e: io::Error) -> Error {
        Error::io("cannot read", e)
    }
}

/// The bytes of one entry of an indexed tar: a byte range of the archive file, read
/// with positioned reads so that many readers share one file handle.
#[derive(Debug)]
struct TarRange {
    file: Arc<File>,
    offset: u64,
    size: u64,
    /// The range is the whole of `file`, a spooled file nothing else writes to; with
    /// the digest and length of what the spool wrote there, once hashed.
    whole: Option<Arc<OnceLock<(Digest, u64)>>>,
    /// The archive, for messages.
    archive: Arc<str>,
}

impl Blob for TarRange {
    fn open_at(&self, start: u64) -> Result<Box<dyn io::Read + Send>> {
        let start = start.min(self.size);
        Ok(Box::new(RegionReader {
            file: Arc::clone(&self.file),
            pos: self.offset + start,
            end: self.offset + self.size,
        }))
    }
    fn size(&self) -> u64 {
        self.size
    }
    fn whole_file(&self) -> Option<&File> {
        self.whole.is_some().then_some(&*self.file)
    }
    fn whole_file_digest(&self) -> Option<Digest> {
        let (digest, len) = self.whole.as_ref()?.get()?;
        (*len == self.size).then(|| digest.clone())
    }
    fn describe(&self) -> String {
        format!(
            "bytes {}..{} of {}",
            self.offset,
            self.offset + self.size,
            self.archive
        )
    }
}

/// A `Read` over a byte range of a file, by positioned reads.
pub(crate) struct RegionReader {
    file: Arc<File>,
    pos: u64,
    end: u64,
}

impl RegionReader {
    /// The bytes of `file` from `start` (at most `end`) to `end`.
    pub(crate) fn new(file: Arc<File>, start: u64, end: u64) -> RegionReader {
        RegionReader {
            file,
            pos: start.min(end),
            end,
        }
    }
}

impl io::Read for RegionReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.end - self.pos;
        if left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf.len().min(left.min(usize::MAX as u64) as usize);
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file shorter than its index says",
            ));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

/// An indexed tar archive.
pub struct TarIndex {
    name: String,
    /// Every kept entry by normalized path. Sorted, so that "is this an implied
    /// directory" (tars often omit directory entries) is one range query for
    /// `path + "/"` instead of a set of every prefix of every path.
    entries: BTreeMap<String, Slot>,
    top: BTreeSet<String>,
    duplicates: usize,
    /// Entries seen (extension headers excluded), including skipped ones.
    count: usize,
    /// Bytes of names and link targets held, against [`MAX_NAME_BYTES`].
    name_bytes: usize,
}

/// One name of the index: the last entry of that name, and the first regular file of
/// that name when a later entry shadows it.
struct Slot {
    /// A file's `FileRef::path` is left empty here and filled from the key on lookup.
    node: Node,
    /// 1-based position of the entry among the archive's entries.
    entry: u64,
    first: Option<Box<(FileRef, u64)>>,
}

/// Extension headers seen since the last entry, applying to the next one.
#[derive(Default)]
struct Pending {
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
    pax_path: Option<Vec<u8>>,
    pax_link: Option<Vec<u8>>,
    pax_size: Option<u64>,
    pax_sparse: bool,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.long_name.is_none()
            && self.long_link.is_none()
            && self.pax_path.is_none()
            && self.pax_link.is_none()
            && self.pax_size.is_none()
            && !self.pax_sparse
    }
}

impl TarIndex {
    /// Index `file`, a tar archive. `name` is how errors refer to it.
    pub fn new(file: File, name: &str) -> Result<TarIndex> {
        let len = file
            .metadata()
            .map_err(|e| Error::io(format!("reading {name}"), e))?
            .len();
        let file = Arc::new(file);
        let mut source = FileSource {
            file: &file,
            pos: 0,
            len,
        };
        TarIndex::walk(&mut source, Arc::clone(&file), name)
    }

    /// Walk the headers of the archive `src` reads, whose kept entry data ends up in
    /// `file`. Stops at the end-of-archive marker.
    pub(crate) fn walk<S: Source>(src: &mut S, file: Arc<File>, name: &str) -> Result<TarIndex> {
        let mut indexer = Indexer {
            index: TarIndex {
                name: name.to_string(),
                entries: BTreeMap::new(),
                top: BTreeSet::new(),
                duplicates: 0,
                count: 0,
                name_bytes: 0,
            },
            file,
            archive: Arc::from(name),
        };
        let count = walk_entries(src, &mut indexer)?;
        if count == 0 {
            return Err(Error::NotAnImage {
                file: String::new(),
                reason: "the archive has no entries".into(),
            });
        }
        Ok(indexer.index)
    }

    fn insert(&mut self, path: String, node: Node) -> Result<()> {
        let link_len = match &node {
            Node::Symlink(t) | Node::Hardlink(t) => t.len(),
            _ => 0,
        };
        self.name_bytes += path.len() + link_len;
        if self.name_bytes > MAX_NAME_BYTES {
            return Err(Error::malformed(
                "",
                format!(
                    "the entry names add up to more than {} MiB, the limit for one archive",
                    MAX_NAME_BYTES >> 20
                ),
            ));
        }
        let top = path.split('/').next().unwrap_or_default();
        if !self.top.contains(top) {
            self.top.insert(top.to_string());
        }
        let entry = self.count as u64;
        match self.entries.entry(path) {
            btree_map::Entry::Vacant(v) => {
                v.insert(Slot {
                    node,
                    entry,
                    first: None,
                });
            }
            btree_map::Entry::Occupied(mut o) => {
                // Tar semantics: the last of duplicate names wins. The first regular
                // file of the name is kept for [`FileTree::duplicate`]; one per entry.
                self.duplicates += 1;
                let old = o.get_mut();
                let first = old.first.take().or_else(|| match &old.node {
                    Node::File(f) => Some(Box::new((f.clone(), old.entry))),
                    _ => None,
                });
                *old = Slot { node, entry, first };
            }
        }
        Ok(())
    }

    /// Number of indexed entries.
    #[cfg_attr(not(any(test, feature = "fuzzing")), allow(dead_code))]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if the archive has no entries.
    #[cfg_attr(not(feature = "fuzzing"), allow(dead_code))]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every name of the archive, sorted, with what it names (the last entry of that
    /// name, links not followed), as [`FileTree::node`] gives it: what an archive
    /// rewritten in place copies.
    pub(crate) fn entries(&self) -> impl Iterator<Item = (&str, Node)> + '_ {
        self.entries.iter().map(|(path, slot)| {
            let node = match &slot.node {
                Node::File(f) => Node::File(FileRef {
                    path: path.clone(),
                    ..f.clone()
                }),
                other => other.clone(),
            };
            (path.as_str(), node)
        })
    }

    /// How many entries were shadowed by a later entry of the same name.
    #[cfg_attr(not(any(test, feature = "fuzzing")), allow(dead_code))]
    pub fn duplicates(&self) -> usize {
        self.duplicates
    }
}

/// One entry of an archive as the walker read its header, extension headers applied.
pub(crate) struct EntryHead {
    /// Its name as the archive gives it (lossy UTF-8), not normalized.
    pub name: String,
    /// Its link target (empty for an entry that is no link).
    pub link: String,
    /// Its type.
    pub kind: EntryType,
    /// How many bytes of data follow its header.
    pub size: u64,
    /// A sparse file: its data is a map of holes, not its bytes.
    pub sparse: bool,
    /// A regular-type entry whose name ends in `/`: a directory to pre-POSIX tars.
    pub old_dir: bool,
}

impl EntryHead {
    /// Whether the entry is a regular file whose data is its bytes.
    pub(crate) fn is_file(&self) -> bool {
        matches!(self.kind, EntryType::Regular | EntryType::Continuous)
            && !self.sparse
            && !self.old_dir
    }
}

/// What a walk over an archive's headers does with each entry.
pub(crate) trait Visitor {
    /// Whether the data of `entry` (a regular file) is kept; asked once per entry,
    /// before its data is passed.
    fn keep(&mut self, entry: &EntryHead) -> Result<bool>;
    /// The entry, once its data was passed: where it was kept, if it was.
    fn entry(&mut self, entry: EntryHead, kept: Kept) -> Result<()>;
    /// The error for an input whose first block is no tar header; `looks_like` says
    /// what it looks like, when that is cheap to tell.
    fn not_a_tar(&self, looks_like: Option<&'static str>) -> Error {
        let problem = match looks_like {
            Some(what) => format!("not a tar archive (it looks like {what})"),
            None => "not a tar archive".to_string(),
        };
        Error::malformed(
            "",
            format!("{problem}; {}", crate::error::WHAT_DOCKHAND_READS),
        )
    }
}

/// Builds a [`TarIndex`] from the entries walked.
struct Indexer {
    index: TarIndex,
    file: Arc<File>,
    archive: Arc<str>,
}

impl Visitor for Indexer {
    fn keep(&mut self, entry: &EntryHead) -> Result<bool> {
        self.index.count += 1;
        if self.index.count > MAX_ENTRIES {
            return Err(Error::malformed(
                "",
                format!("more than {MAX_ENTRIES} entries, the limit for one archive"),
            ));
        }
        Ok(entry.is_file() && indexed_name(&entry.name).is_some())
    }

    fn entry(&mut self, entry: EntryHead, kept: Kept) -> Result<()> {
        // Entries whose names leave the root can never be referenced: skip them.
        let Some(path) = indexed_name(&entry.name) else {
            return Ok(());
        };
        let node = if entry.is_file() {
            let (file, offset, whole) = match kept {
                Kept::At(at) => (Arc::clone(&self.file), at, None),
                Kept::Own(own, digest) => (own, 0, Some(digest)),
            };
            Node::File(FileRef {
                path: String::new(),
                size: entry.size,
                blob: Arc::new(TarRange {
                    file,
                    offset,
                    size: entry.size,
                    whole,
                    archive: Arc::clone(&self.archive),
                }),
            })
        } else {
            match entry.kind {
                _ if entry.sparse => Node::Other("sparse file"),
                _ if entry.old_dir => Node::Dir,
                EntryType::Directory => Node::Dir,
                EntryType::Symlink => Node::Symlink(entry.link),
                EntryType::Link => Node::Hardlink(entry.link),
                _ => Node::Other("special file"),
            }
        };
        self.index.insert(path, node)
    }
}

/// The key an entry named `name` is indexed under: `None` for a name that is empty,
/// absolute or climbs above the root, which is never looked up.
fn indexed_name(name: &str) -> Option<String> {
    normalize_path(name, Parents::Applied).filter(|key| !key.is_empty())
}

/// Walk the headers of the archive `src` reads, handing each entry to `visitor`, up to
/// the end-of-archive marker (then [`Source::end`]); returns how many entries there
/// were. Every size a header claims is checked against a cap or the data left before
/// anything is read or allocated for it: memory is bounded whatever the archive.
pub(crate) fn walk_entries<S: Source>(src: &mut S, visitor: &mut dyn Visitor) -> Result<u64> {
    let mut count = 0u64;
    let mut pending = Pending::default();
    let mut block = [0u8; BLOCK];
    // Where `block` starts in the archive, for messages.
    let mut offset: u64 = 0;
    loop {
        let n = src.read(&mut block).map_err(|e| src.fail(e))?;
        if n == 0 && pending.is_empty() {
            // The data ends where a header would start: as good as an end marker.
            break;
        }
        if n < BLOCK {
            if offset == 0 && !block[..n].windows(5).any(|w| w == b"ustar") {
                return Err(visitor.not_a_tar(sniff(&block[..n])));
            }
            return Err(Error::Truncated {
                file: String::new(),
                detail: "the archive ends inside a header".into(),
            });
        }
        if block.iter().all(|&b| b == 0) {
            // The end marker is two zero blocks. A lone zero block followed by
            // anything else ends the archive too, as in GNU tar; nothing after the
            // marker is read.
            let mut second = [0u8; BLOCK];
            src.read(&mut second).map_err(|e| src.fail(e))?;
            break;
        }
        if !checksum_ok(&block) {
            if offset == 0 && &block[257..262] != b"ustar" {
                return Err(visitor.not_a_tar(sniff(&block)));
            }
            return Err(Error::malformed(
                "",
                format!("corrupt tar header at byte {offset} (bad checksum)"),
            ));
        }
        let header = Header::from_byte_slice(&block);
        let kind = header.entry_type();
        // Never use the tar crate's message here: it quotes the entry name.
        let size = header.entry_size().map_err(|_| {
            Error::malformed(
                "",
                format!("tar header at byte {offset} has an invalid size field"),
            )
        })?;
        let extension = extension_name(kind);
        if let Some(what) = extension {
            let data = read_extension(src, what, size, offset)?;
            match kind {
                EntryType::GNULongName => pending.long_name = Some(until_nul(data)),
                EntryType::GNULongLink => pending.long_link = Some(until_nul(data)),
                EntryType::XHeader => parse_pax(&data, &mut pending).map_err(|()| {
                    Error::malformed(
                        "",
                        format!("malformed PAX record in the {what} at byte {offset}"),
                    )
                })?,
                // Global records (git archive's commit id) change nothing dockhand reads.
                _ => {}
            }
            offset += BLOCK as u64 + padded(size);
            continue;
        }

        count += 1;
        let pending_now = std::mem::take(&mut pending);
        let raw_path = pending_now
            .long_name
            .or(pending_now.pax_path)
            .unwrap_or_else(|| header.path_bytes().into_owned());
        let raw_link = pending_now
            .long_link
            .or(pending_now.pax_link)
            .or_else(|| header.link_name_bytes().map(|l| l.into_owned()));
        let size = pending_now.pax_size.unwrap_or(size);
        let sparse = pending_now.pax_sparse || kind == EntryType::GNUSparse;
        // The old regular type with a trailing slash is a directory (pre-POSIX tars).
        let old_dir = block[156] == 0 && raw_path.ends_with(b"/");
        let extended_sparse =
            kind == EntryType::GNUSparse && header.as_gnu().is_some_and(|g| g.is_extended());
        offset += BLOCK as u64;

        let path = String::from_utf8_lossy(&raw_path).into_owned();
        check_name("entry name", &path, raw_path.len())?;
        let link = match raw_link {
            Some(raw) => {
                let link = String::from_utf8_lossy(&raw).into_owned();
                if raw.len() > MAX_PATH_BYTES {
                    return Err(Error::malformed(
                        "",
                        format!(
                            "entry {}: its link target is {} bytes long, over the limit of {MAX_PATH_BYTES} bytes",
                            shown(&path),
                            raw.len()
                        ),
                    ));
                }
                link
            }
            None => String::new(),
        };

        if extended_sparse {
            // Old GNU sparse files continue their map in extra header blocks, each
            // saying whether another follows (byte 504).
            loop {
                let n = src.read(&mut block).map_err(|e| src.fail(e))?;
                if n < BLOCK {
                    return Err(Error::Truncated {
                        file: String::new(),
                        detail: "the archive ends inside a sparse file's header".into(),
                    });
                }
                offset += BLOCK as u64;
                if block[504] == 0 {
                    break;
                }
            }
        }

        let entry = EntryHead {
            name: path,
            link,
            kind,
            size,
            sparse,
            old_dir,
        };
        let keep = visitor.keep(&entry)?;
        let (kept, passed) = src.data(size, keep).map_err(|e| src.fail(e))?;
        if passed < size {
            return Err(Error::Truncated {
                file: String::new(),
                detail: format!(
                    "entry {} claims {size} bytes but the archive ends first",
                    shown(&entry.name)
                ),
            });
        }
        // Padding may be cut short at the very end: the next read sees the end.
        src.data(padded(size) - size, false)
            .map_err(|e| src.fail(e))?;
        offset += padded(size);
        visitor.entry(entry, kept)?;
    }
    src.end().map_err(|e| src.fail(e))?;
    Ok(count)
}

/// `size` rounded up to whole blocks, without overflow for any `u64`.
pub(crate) fn padded(size: u64) -> u64 {
    size + (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

/// Read the data of an extension entry, refusing it before reading when it claims more
/// than [`MAX_EXTENSION_SIZE`].
fn read_extension<S: Source>(src: &mut S, what: &str, size: u64, offset: u64) -> Result<Vec<u8>> {
    if let Some(problem) = oversized_extension(what, size, offset) {
        return Err(Error::malformed("", problem));
    }
    let mut data = vec![0u8; size as usize];
    let got = src.read(&mut data).map_err(|e| src.fail(e))?;
    if got < data.len() {
        return Err(Error::Truncated {
            file: String::new(),
            detail: format!("the archive ends inside a {what}"),
        });
    }
    src.data(padded(size) - size, false)
        .map_err(|e| src.fail(e))?;
    Ok(data)
}

/// A GNU long name is NUL-terminated inside its data.
pub(crate) fn until_nul(mut data: Vec<u8>) -> Vec<u8> {
    if let Some(end) = data.iter().position(|&b| b == 0) {
        data.truncate(end);
    }
    data
}

/// Apply the records of a PAX extended header ([`pax_records`]) to `pending`.
fn parse_pax(data: &[u8], pending: &mut Pending) -> std::result::Result<(), ()> {
    for (key, value) in pax_records(data).ok_or(())? {
        match &key[..] {
            b"path" => pending.pax_path = Some(value),
            b"linkpath" => pending.pax_link = Some(value),
            b"size" => {
                let size = std::str::from_utf8(&value)
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok())
                    .ok_or(())?;
                pending.pax_size = Some(size);
            }
            // GNU sparse formats 0.1 and 1.0 keep the real name here; the data is a
            // sparse map, not the file's bytes.
            b"GNU.sparse.name" => {
                pending.pax_path = Some(value);
                pending.pax_sparse = true;
            }
            k if k.starts_with(b"GNU.sparse.") => pending.pax_sparse = true,
            _ => {}
        }
    }
    Ok(())
}

/// One record of a PAX extended header: its key and value.
pub(crate) type PaxRecord = (Vec<u8>, Vec<u8>);

/// The records of a PAX extended header (`"<len> <key>=<value>\n"`, where `len` counts
/// the whole record, so values may hold newlines); `None` when malformed.
pub(crate) fn pax_records(mut data: &[u8]) -> Option<Vec<PaxRecord>> {
    let mut records = Vec::new();
    // Some writers pad the data with NULs.
    while !data.is_empty() && data[0] != 0 {
        let space = data.iter().position(|&b| b == b' ')?;
        let len: usize = std::str::from_utf8(&data[..space]).ok()?.parse().ok()?;
        if len <= space + 1 || len > data.len() || data[len - 1] != b'\n' {
            return None;
        }
        let record = &data[space + 1..len - 1];
        let eq = record.iter().position(|&b| b == b'=')?;
        records.push((record[..eq].to_vec(), record[eq + 1..].to_vec()));
        data = &data[len..];
    }
    Some(records)
}

/// The problem with an extension entry (`what`, at byte `offset`) whose data claims
/// `size` bytes, over [`MAX_EXTENSION_SIZE`]; `None` when it is within it.
pub(crate) fn oversized_extension(what: &str, size: u64, offset: u64) -> Option<String> {
    (size > MAX_EXTENSION_SIZE).then(|| {
        format!(
            "the {what} at byte {offset} claims {size} bytes, over the limit of {} MiB for a tar extension header",
            MAX_EXTENSION_SIZE >> 20
        )
    })
}

/// What an extension entry of type `kind` is (for messages), or `None` for an entry
/// that is not one.
pub(crate) fn extension_name(kind: EntryType) -> Option<&'static str> {
    match kind {
        EntryType::GNULongName => Some("GNU long name"),
        EntryType::GNULongLink => Some("GNU long link name"),
        EntryType::XHeader => Some("PAX extended header"),
        EntryType::XGlobalHeader => Some("PAX global header"),
        _ => None,
    }
}

/// Does the header's checksum field match its bytes (summed as unsigned, or as signed
/// bytes like some old tars did)?
pub(crate) fn checksum_ok(block: &[u8; BLOCK]) -> bool {
    let field = &block[148..156];
    let text = field
        .iter()
        .map(|&b| b as char)
        .collect::<String>()
        .trim_matches(|c| c == '\0' || c == ' ')
        .to_string();
    let Ok(want) = u64::from_str_radix(&text, 8) else {
        return false;
    };
    let (mut unsigned, mut signed) = (0u64, 0i64);
    for (i, &b) in block.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += u64::from(b);
        signed += i64::from(b as i8);
    }
    want == unsigned || want as i64 == signed
}

/// Refuse a name over [`MAX_PATH_BYTES`] or [`MAX_PATH_DEPTH`].
fn check_name(what: &str, path: &str, raw_len: usize) -> Result<()> {
    if raw_len > MAX_PATH_BYTES {
        return Err(Error::malformed(
            "",
            format!(
                "{what} {} is {raw_len} bytes long, over the limit of {MAX_PATH_BYTES} bytes",
                shown(path)
            ),
        ));
    }
    let depth = path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .count();
    if depth > MAX_PATH_DEPTH {
        return Err(Error::malformed(
            "",
            format!(
                "{what} {} has {depth} components, over the limit of {MAX_PATH_DEPTH}",
                shown(path)
            ),
        ));
    }
    Ok(())
}

/// What the first bytes of a file say it is, by magic numbers and a text check.
pub(crate) fn sniff(head: &[u8]) -> Option<&'static str> {
    const MAGIC: &[(&[u8], &str)] = &[
        (b"PK\x03\x04", "a zip archive"),
        (b"PK\x05\x06", "an empty zip archive"),
        (b"7z\xbc\xaf\x27\x1c", "a 7z archive"),
        (b"Rar!\x1a\x07", "a rar archive"),
        (b"\x7fELF", "an ELF executable"),
        (b"MZ", "a Windows executable"),
        (b"\x04\x22\x4d\x18", "lz4-compressed data"),
        (b"%PDF-", "a PDF document"),
        (b"\x89PNG\r\n\x1a\n", "a PNG image"),
        (b"SQLite format 3\0", "an SQLite database"),
    ];
    if let Some((_, what)) = MAGIC.iter().find(|(m, _)| head.starts_with(m)) {
        return Some(what);
    }
    match Compression::detect(head) {
        Compression::Gzip => return Some("gzip-compressed data"),
        Compression::Zstd => return Some("zstd-compressed data"),
        Compression::Xz => return Some("xz-compressed data"),
        Compression::Bzip2 => return Some("bzip2-compressed data"),
        Compression::None => {}
    }
    // Text: valid UTF-8 (a character may be cut at the end) without control bytes.
    let valid = match std::str::from_utf8(head) {
        Ok(t) => t,
        Err(e) if e.error_len().is_none() => {
            std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or_default()
        }
        Err(_) => return None,
    };
    if valid.is_empty() || valid.chars().any(|c| c.is_control() && !c.is_whitespace()) {
        return None;
    }
    let start = valid.trim_start_matches(['\u{feff}', ' ', '\t', '\r', '\n']);
    Some(if start.starts_with('{') || start.starts_with('[') {
        "a JSON document"
    } else {
        "plain text"
    })
}

impl FileTree for TarIndex {
    fn name(&self) -> &str {
        &self.name
    }
    fn is_dir(&self) -> bool {
        false
    }
    fn node(&self, path: &str) -> Option<Node> {
        if let Some(slot) = self.entries.get(path) {
            return Some(match &slot.node {
                Node::File(f) => Node::File(FileRef {
                    path: path.to_string(),
                    ..f.clone()
                }),
                other => other.clone(),
            });
        }
        // Directories are often implied by their children rather than listed: is
        // there a key under `path/`? Keys with that prefix sort together, from the
        // prefix on, so the first key at or after it decides.
        let prefix = format!("{path}/");
        self.entries
            .range::<str, _>((
                std::ops::Bound::Included(prefix.as_str()),
                std::ops::Bound::Unbounded,
            ))
            .next()
            .is_some_and(|(k, _)| k.starts_with(&prefix))
            .then_some(Node::Dir)
    }
    fn top_level(&self) -> Vec<String> {
        self.top.iter().cloned().collect()
    }
    fn duplicate(&self, path: &str) -> Option<Duplicate> {
        let slot = self.entries.get(path)?;
        if !matches!(slot.node, Node::File(_)) {
            return None;
        }
        let (first, first_entry) = slot.first.as_deref()?;
        Some(Duplicate {
            first: FileRef {
                path: path.to_string(),
                ..first.clone()
            },
            first_entry: *first_entry,
            last_entry: slot.entry,
        })
    }
}
#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use tar::{Builder, EntryType, Header};

    use super::*;
    use crate::error::Error;

    fn header(kind: EntryType, size: u64) -> Header {
        let mut h = Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(0o644);
        h
    }

    fn file(b: &mut Builder<Vec<u8>>, path: &str, data: &[u8]) {
        b.append_data(
            &mut header(EntryType::Regular, data.len() as u64),
            path,
            data,
        )
        .unwrap();
    }

    fn link(b: &mut Builder<Vec<u8>>, kind: EntryType, path: &str, target: &str) {
        b.append_link(&mut header(kind, 0), path, target).unwrap();
    }

    fn index(bytes: Vec<u8>) -> Result<TarIndex> {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&bytes).unwrap();
        TarIndex::new(f, "test.tar")
    }

    fn read(tree: &dyn FileTree, path: &str) -> Result<Vec<u8>> {
        let f = tree.resolve(path)?;
        let mut out = Vec::new();
        f.open()?.read_to_end(&mut out).unwrap();
        Ok(out)
    }

    #[test]
    fn reads_entries_by_offset_with_long_names_and_pax() {
        let long = format!("{}/layer.tar", "d".repeat(150));
        let mut b = Builder::new(Vec::new());
        file(&mut b, "./manifest.json", b"[]");
        // GNU long name (the builder emits ././@LongLink for names over 100 bytes).
        file(&mut b, &long, b"long");
        // A PAX path record overriding the header name.
        let mut pax = Builder::new(Vec::new());
        pax.append_pax_extensions([("path", "pax/renamed.json".as_bytes())])
            .unwrap();
        file(&mut pax, "short", b"pax data");
        let mut bytes = b.into_inner().unwrap();
        bytes.truncate(bytes.len() - 1024);
        bytes.extend(pax.into_inner().unwrap());
        let idx = index(bytes).unwrap();
        let tree: &dyn FileTree = &idx;
        assert_eq!(read(tree, "manifest.json").unwrap(), b"[]");
        assert_eq!(read(tree, &long).unwrap(), b"long");
        assert_eq!(read(tree, "pax/renamed.json").unwrap(), b"pax data");
        assert!(tree.find("short").unwrap().is_none());
        assert!(tree.exists("pax"), "implied directory");
    }

    #[test]
    fn follows_symlink_chains_and_hardlinks_inside_the_archive() {
        let mut b = Builder::new(Vec::new());
        file(&mut b, "a/layer.tar", b"layer");
        link(&mut b, EntryType::Symlink, "b/layer.tar", "../a/layer.tar");
        link(&mut b, EntryType::Symlink, "c/layer.tar", "../b/layer.tar");
        link(&mut b, EntryType::Link, "d/layer.tar", "a/layer.tar");
        link(&mut b, EntryType::Symlink, "e", "a");
        let idx = index(b.into_inner().unwrap()).unwrap();
        let tree: &dyn FileTree = &idx;
        for p in ["b/layer.tar", "c/layer.tar", "d/layer.tar", "e/layer.tar"] {
            assert_eq!(read(tree, p).unwrap(), b"layer", "{p}");
            assert_eq!(tree.resolve(p).unwrap().path, "a/layer.tar");
        }
    }

    #[test]
    fn refuses_links_that_escape_or_loop() {
        let mut b = Builder::new(Vec::new());
        link(&mut b, EntryType::Symlink, "up", "../../etc/passwd");
        link(&mut b, EntryType::Symlink, "abs", "/etc/passwd");
        link(&mut b, EntryType::Symlink, "loop1", "loop2");
        link(&mut b, EntryType::Symlink, "loop2", "loop1");
        link(&mut b, EntryType::Link, "hard", "../outside");
        let idx = index(b.into_inner().unwrap()).unwrap();
        let tree: &dyn FileTree = &idx;
        for p in ["up", "abs", "loop1", "hard"] {
            let err = tree.resolve(p).unwrap_err();
            assert!(matches!(err, Error::Malformed { .. }), "{p}: {err}");
        }
        assert!(tree.resolve("../x").is_err());
    }

    /// A tar whose only entry claims `size` bytes, in a sparse file of that length, with
    /// the size given by a PAX record (Go, Docker) or in base-256 (GNU tar).
    fn huge_entry(size: u64, pax: bool) -> TarIndex {
        let mut bytes = Vec::new();
        if pax {
            let mut b = Builder::new(Vec::new());
            b.append_pax_extensions([("size", size.to_string().as_bytes())])
                .unwrap();
            bytes = b.into_inner().unwrap();
            bytes.truncate(bytes.len() - 1024);
        }
        let mut h = header(EntryType::Regular, if pax { 0 } else { size });
        h.set_path("huge/layer.tar").unwrap();
        h.set_cksum();
        bytes.extend_from_slice(h.as_bytes());
        let data_start = bytes.len() as u64;
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&bytes).unwrap();
        f.set_len(data_start + size + 1024).unwrap();
        TarIndex::new(f, "huge.tar").unwrap()
    }

    #[test]
    fn sizes_over_8_gib_in_pax_and_base_256() {
        let size = (9u64 << 30) + 5;
        for pax in [true, false] {
            let idx = huge_entry(size, pax);
            let f = (&idx as &dyn FileTree).resolve("huge/layer.tar").unwrap();
            assert_eq!(f.size, size, "pax={pax}");
        }
    }

    #[test]
    fn last_duplicate_wins() {
        let mut b = Builder::new(Vec::new());
        file(&mut b, "x", b"first");
        file(&mut b, "./x", b"second");
        let idx = index(b.into_inner().unwrap()).unwrap();
        assert_eq!(idx.duplicates(), 1);
        assert_eq!(read(&idx, "x").unwrap(), b"second");
    }

    #[test]
    fn truncated_and_garbage_archives_are_errors_not_panics() {
        let mut b = Builder::new(Vec::new());
        file(&mut b, "big", &[7u8; 5000]);
        let bytes = b.into_inner().unwrap();
        let err = index(bytes[..3000].to_vec()).err().expect("truncated");
        assert!(matches!(err, Error::Truncated { .. }), "{err}");
        let err = index(vec![0x55; 2048]).err().expect("garbage");
        assert!(err.to_string().contains("not a tar archive"), "{err}");
        // A header claiming far more data than exists allocates nothing.
        let mut h = header(EntryType::Regular, 1 << 40);
        h.set_path("huge").unwrap();
        h.set_cksum();
        let mut bytes = h.as_bytes().to_vec();
        bytes.extend([0u8; 1024]);
        assert!(matches!(index(bytes), Err(Error::Truncated { .. })));
    }

    /// One raw entry: a header of `kind` named `name` (verbatim, up to 100 bytes)
    /// claiming `size`, followed by `data` padded to whole blocks.
    fn raw(kind: EntryType, name: &str, size: u64, data: &[u8]) -> Vec<u8> {
        let mut h = header(kind, size);
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_cksum();
        let mut out = h.as_bytes().to_vec();
        out.extend_from_slice(data);
        out.resize(padded(out.len() as u64) as usize, 0);
        out
    }

    /// A PAX extended header holding `records` (key, value), then nothing else.
    fn pax(records: &[(&str, &[u8])]) -> Vec<u8> {
        let mut data = Vec::new();
        for (k, v) in records {
            let body = k.len() + v.len() + 3; // ' ', '=', '\n'
            let mut len = body + 1;
            while (len.to_string().len() + body) != len {
                len = len.to_string().len() + body;
            }
            data.extend(format!("{len} {k}=").as_bytes());
            data.extend_from_slice(v);
            data.push(b'\n');
        }
        raw(EntryType::XHeader, "pax", data.len() as u64, &data)
    }

    fn end(mut bytes: Vec<u8>) -> Vec<u8> {
        bytes.extend([0u8; 1024]);
        bytes
    }

    fn message(r: Result<TarIndex>) -> String {
        r.err().expect("should fail").to_string()
    }

    #[test]
    fn extension_headers_over_the_cap_are_refused_before_reading() {
        let big = vec![b'a'; 2 << 20];
        let err = message(index(end(pax(&[("path", &big)]))));
        assert!(
            err.contains("PAX extended header") && err.contains("limit of 1 MiB"),
            "{err}"
        );
        let err = message(index(end(raw(
            EntryType::GNULongName,
            "././@LongLink",
            big.len() as u64,
            &big,
        ))));
        assert!(
            err.contains("GNU long name") && err.contains("limit"),
            "{err}"
        );
        // An 8 GiB claim in a sparse file: refused by the cap, not read, not truncated.
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&raw(EntryType::GNULongLink, "././@LongLink", 8 << 30, b""))
            .unwrap();
        f.set_len((8 << 30) + 4096).unwrap();
        let err = message(TarIndex::new(f, "huge.tar"));
        assert!(
            err.contains("GNU long link name") && err.contains("limit"),
            "{err}"
        );
        // Exactly at the cap is fine.
        let name = format!("{}/x", "n".repeat(4000));
        let mut ok = pax(&[
            ("path", name.as_bytes()),
            ("comment", &vec![b'c'; (1 << 20) - 4100]),
        ]);
        ok.extend(raw(EntryType::Regular, "short", 1, b"1"));
        assert!(index(end(ok)).unwrap().node(&name).is_some());
    }

    #[test]
    fn names_over_the_length_and_depth_caps_are_refused() {
        let long = "a".repeat(MAX_PATH_BYTES + 1);
        let mut bytes = pax(&[("path", long.as_bytes())]);
        bytes.extend(raw(EntryType::Regular, "x", 0, b""));
        let err = message(index(end(bytes)));
        assert!(
            err.contains("4097 bytes long") && err.contains("limit of 4096"),
            "{err}"
        );
        assert!(err.len() < 400, "the name is cut in the message: {err}");
        let deep = vec!["d"; MAX_PATH_DEPTH + 1].join("/");
        let mut bytes = pax(&[("path", deep.as_bytes())]);
        bytes.extend(raw(EntryType::Regular, "x", 0, b""));
        let err = message(index(end(bytes)));
        assert!(
            err.contains("129 components") && err.contains("limit of 128"),
            "{err}"
        );
        let mut bytes = pax(&[("linkpath", long.as_bytes())]);
        bytes.extend(raw(EntryType::Symlink, "l", 0, b""));
        let err = message(index(end(bytes)));
        assert!(
            err.contains("link target") && err.contains("limit"),
            "{err}"
        );
        // At the caps: fine.
        let deep = vec!["d"; MAX_PATH_DEPTH].join("/");
        let mut bytes = pax(&[("path", deep.as_bytes())]);
        bytes.extend(raw(EntryType::Regular, "x", 2, b"ok"));
        let idx = index(end(bytes)).unwrap();
        assert_eq!(read(&idx, &deep).unwrap(), b"ok");
        assert!(matches!(idx.node("d/d/d"), Some(Node::Dir)));
    }

    #[test]
    fn the_names_of_one_index_are_capped_in_total() {
        // Symlinks with 4000-byte targets: 32 MiB of names in about 9000 entries.
        let target = "t".repeat(4000);
        let entry = {
            let mut e = pax(&[("linkpath", target.as_bytes())]);
            e.extend(raw(EntryType::Symlink, "PLACEHOLDER", 0, b""));
            e
        };
        let mut bytes = Vec::new();
        for i in 0..(MAX_NAME_BYTES / 4000 + 10) {
            let mut e = entry.clone();
            let at = e.len() - BLOCK;
            let name = format!("l{i:010}");
            e[at..at + 11].copy_from_slice(name.as_bytes());
            let mut h = Header::from_byte_slice(&e[at..]).clone();
            h.set_cksum();
            e[at..].copy_from_slice(h.as_bytes());
            bytes.extend(e);
        }
        let err = message(index(end(bytes)));
        assert!(err.contains("32 MiB") && err.contains("limit"), "{err}");
    }

    #[test]
    fn duplicates_keep_the_first_regular_file_and_the_entry_numbers() {
        let mut bytes = raw(EntryType::Regular, "x", 5, b"first");
        bytes.extend(raw(EntryType::Directory, "d/", 0, b""));
        bytes.extend(raw(EntryType::Regular, "./x", 6, b"second"));
        bytes.extend(raw(EntryType::Regular, "x", 5, b"third"));
        bytes.extend(raw(EntryType::Symlink, "s", 0, b""));
        bytes.extend(raw(EntryType::Regular, "s", 4, b"file"));
        bytes.extend(raw(EntryType::Regular, "y", 4, b"once"));
        bytes.extend(raw(EntryType::Regular, "z", 4, b"file"));
        bytes.extend(raw(EntryType::Directory, "z", 0, b""));
        let idx = index(end(bytes)).unwrap();
        let tree: &dyn FileTree = &idx;
        let dup = tree.duplicate("x").expect("x appears three times");
        assert_eq!((dup.first_entry, dup.last_entry), (1, 4));
        assert_eq!(dup.first.path, "x");
        let mut first = Vec::new();
        dup.first.open().unwrap().read_to_end(&mut first).unwrap();
        assert_eq!(first, b"first");
        assert_eq!(read(tree, "x").unwrap(), b"third");
        // The earlier entry of `s` is no regular file; `y` is unique; `z` ends a dir.
        assert!(tree.duplicate("s").is_none());
        assert!(tree.duplicate("y").is_none());
        assert!(tree.duplicate("z").is_none());
        assert!(tree.duplicate("missing").is_none());
        assert_eq!(idx.duplicates(), 4);
    }

    #[test]
    fn implied_directories_come_from_a_range_query() {
        let mut bytes = raw(EntryType::Regular, "a-b/c", 0, b"");
        bytes.extend(raw(EntryType::Regular, "a/b/c", 0, b""));
        bytes.extend(raw(EntryType::Regular, "a0", 0, b""));
        let idx = index(end(bytes)).unwrap();
        let tree: &dyn FileTree = &idx;
        for dir in ["a", "a/b", "a-b"] {
            assert!(matches!(tree.node(dir), Some(Node::Dir)), "{dir}");
        }
        for none in ["a-", "a/", "a/b/c/d", "b", "a/c"] {
            assert!(tree.node(none).is_none(), "{none}");
        }
        assert!(matches!(tree.node("a0"), Some(Node::File(_))));
        assert_eq!(tree.top_level(), ["a", "a-b", "a0"]);
    }

    #[test]
    fn the_end_marker_ends_the_walk() {
        // Garbage after the marker is never read.
        let mut bytes = end(raw(EntryType::Regular, "x", 1, b"1"));
        bytes.extend(vec![0x5a; 5000]);
        assert_eq!(read(&index(bytes).unwrap(), "x").unwrap(), b"1");
        // A lone zero block then the end of the data, or then anything.
        for tail in [&b""[..], &[0x42; 512][..]] {
            let mut bytes = raw(EntryType::Regular, "x", 1, b"1");
            bytes.extend([0u8; 512]);
            bytes.extend(tail);
            bytes.extend(raw(EntryType::Regular, "later", 0, b""));
            let idx = index(bytes).unwrap();
            assert!(idx.node("later").is_none());
            assert_eq!(idx.len(), 1);
        }
        // No marker at all: the data just ends after an entry.
        let idx = index(raw(EntryType::Regular, "x", 1, b"1")).unwrap();
        assert_eq!(idx.len(), 1);
        // No entries: not an image.
        for bytes in [vec![0u8; 1024], vec![0u8; 10240], vec![0u8; 512]] {
            let err = index(bytes).err().unwrap();
            assert!(matches!(err, Error::NotAnImage { .. }), "{err}");
            assert!(err.to_string().contains("no entries"), "{err}");
        }
    }

    #[test]
    fn garbage_says_what_it_looks_like_without_echoing_it() {
        let mut elf = b"\x7fELF\x02\x01\x01".to_vec();
        elf.resize(4096, 0);
        let mut zip = b"PK\x03\x04secret-name.txt".to_vec();
        zip.resize(700, 0);
        let cases: [(Vec<u8>, &str); 6] = [
            (elf, "an ELF executable"),
            (zip, "a zip archive"),
            (b"{\"secret\": [1, 2]}\n".to_vec(), "a JSON document"),
            (b"secret text\nmore\n".repeat(100), "plain text"),
            (vec![0xff, 0x00, 0x13, 0x9c], "not a tar archive"),
            (b"\x1b[2Jsecret\x07".to_vec(), "not a tar archive"),
        ];
        for (bytes, what) in cases {
            let err = message(index(bytes));
            assert!(
                err.contains("not a tar archive") && err.contains(what),
                "{err}"
            );
            assert!(!err.contains("secret") && !err.contains('\x1b'), "{err}");
        }
        // A later header with a bad checksum is a corrupt archive.
        let mut bytes = raw(EntryType::Regular, "x", 1, b"1");
        let mut second = raw(EntryType::Regular, "y", 1, b"2");
        second[0] = b'z';
        bytes.extend(second);
        let err = message(index(end(bytes)));
        assert!(
            err.contains("bad checksum") && err.contains("byte 1024"),
            "{err}"
        );
    }

    #[test]
    fn pax_records_may_hold_newlines_and_sparse_files_are_not_read() {
        let mut bytes = pax(&[("path", b"odd\nname"), ("mtime", b"1.5")]);
        bytes.extend(raw(EntryType::Regular, "x", 3, b"odd"));
        // An old GNU sparse file with one extension block of its map.
        let mut h = header(EntryType::GNUSparse, 512);
        h.as_old_mut().name[..6].copy_from_slice(b"sparse");
        h.as_gnu_mut().unwrap().set_is_extended(true);
        h.set_cksum();
        bytes.extend_from_slice(h.as_bytes());
        bytes.extend([0u8; 512]); // the map's extension block, the last one
        bytes.extend([7u8; 512]); // the stored data
                                  // A PAX (1.0) sparse file.
        bytes.extend(pax(&[
            ("GNU.sparse.major", b"1"),
            ("GNU.sparse.name", b"real"),
        ]));
        bytes.extend(raw(EntryType::Regular, "GNUSparseFile.0/real", 1, b"m"));
        bytes.extend(raw(EntryType::Regular, "after", 5, b"after"));
        let idx = index(end(bytes)).unwrap();
        let tree: &dyn FileTree = &idx;
        assert_eq!(read(tree, "odd\nname").unwrap(), b"odd");
        assert!(matches!(
            tree.node("sparse"),
            Some(Node::Other("sparse file"))
        ));
        assert!(matches!(
            tree.node("real"),
            Some(Node::Other("sparse file"))
        ));
        assert_eq!(read(tree, "after").unwrap(), b"after");
        // A record whose length is wrong is malformed.
        let mut bad = raw(EntryType::XHeader, "pax", 12, b"99 path=x\n\0\0");
        bad.extend(raw(EntryType::Regular, "x", 0, b""));
        let err = message(index(end(bad)));
        assert!(err.contains("malformed PAX record"), "{err}");
    }

    #[test]
    fn names_that_leave_the_root_are_skipped() {
        let mut bytes = raw(EntryType::Regular, "../evil", 1, b"e");
        bytes.extend(raw(EntryType::Regular, "/abs", 1, b"a"));
        bytes.extend(raw(EntryType::Regular, "./", 0, b""));
        bytes.extend(raw(EntryType::Regular, "ok", 1, b"k"));
        let idx = index(end(bytes)).unwrap();
        assert_eq!(idx.len(), 1);
        assert_eq!((&idx as &dyn FileTree).top_level(), ["ok"]);
    }
}
