//! Opening an input: a directory is read in place, an uncompressed tar file is indexed in
//! place, and anything else (stdin, a pipe, a device, a compressed archive) is
//! decompressed and walked as it arrives, the data of its files copied into an
//! anonymous temp file (which the OS removes on every exit path) and indexed in the
//! same pass. Reading stops at the tar end-of-archive marker, so an endless input
//! (`/dev/zero`) costs no disk.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Seek, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;

use super::output_file::{start_writeback, WRITEBACK_STRETCH};
use super::tar_index::{Kept, Source};
use super::{read_full, DirTree, FileTree, TarIndex};
use crate::error::{Error, Result};
use crate::model::digest::{Digest, Hasher};
use crate::model::media::Compression;

/// How many bytes after the end-of-archive marker are read and thrown away: enough for
/// a producer that pads its output to a record size (GNU tar: 10 KiB; `tar -b` up to
/// 1 MiB) to finish writing without a broken pipe, and no more.
pub const MAX_TRAILING_BYTES: u64 = 1 << 20;

/// An opened input.
pub struct Input {
    /// The files of the input.
    pub tree: Box<dyn FileTree>,
}

/// Open `path` (`-` for stdin) as a tree. (Conversions use [`open_input_spooling_in`];
/// this is for the fuzz targets and tests.)
#[cfg_attr(not(any(test, feature = "fuzzing")), allow(dead_code))]
pub fn open_input(path: &str) -> Result<Input> {
    open_input_spooling_in(path, None)
}

/// Entries of a spooled input at least this big get a file of their own, in the
/// output's staging directory, which a directory output links in instead of copying.
const OWN_FILE_MIN: u64 = 1 << 20;
/// At most this many entries get a file of their own (each holds a descriptor open).
const OWN_FILES_MAX: usize = 256;

/// [`open_input`], spooling the big entries of an input that must be spooled (a pipe, a
/// compressed archive) into unnamed files in `spool_dir` when it is given: the output's
/// staging directory, where a directory output links them in without a second copy.
pub(crate) fn open_input_spooling_in(path: &str, spool_dir: Option<&Path>) -> Result<Input> {
    if path == "-" {
        // Read stdin as a File: a regular file (`< image.tar`) is then indexed in place
        // like a named one, and a pipe is spliced into the spool file by the kernel.
        let stdin = std::os::fd::AsFd::as_fd(&io::stdin())
            .try_clone_to_owned()
            .map_err(|e| Error::io("cannot read", e))?;
        let mut stdin = File::from(stdin);
        let meta = stdin.metadata().map_err(|e| Error::io("cannot read", e))?;
        if meta.is_file() && stdin.stream_position().ok() == Some(0) {
            return open_file(stdin, "stdin", spool_dir);
        }
        crate::sys::widen_pipe(&stdin);
        return open_stream_spooling_in(stdin, "stdin", spool_dir);
    }
    let p = Path::new(path);
    let meta = fs::metadata(p).map_err(|e| Error::io("cannot open", e))?;
    if meta.is_dir() {
        return Ok(Input {
            tree: Box::new(DirTree::new(p, path)),
        });
    }
    let file = File::open(p).map_err(|e| Error::io("cannot open", e))?;
    if !meta.is_file() {
        crate::sys::widen_pipe(&file);
        return open_stream_spooling_in(file, path, spool_dir);
    }
    open_file(file, path, spool_dir)
}

/// Open a regular file: an uncompressed tar is indexed in place, anything else spooled.
fn open_file(mut file: File, name: &str, spool_dir: Option<&Path>) -> Result<Input> {
    let (head, n) = read_head(&mut file, "the file is empty")?;
    if Compression::detect(&head[..n]) == Compression::None {
        file.rewind().map_err(|e| Error::io("cannot read", e))?;
        return Ok(Input {
            tree: Box::new(TarIndex::new(file, name)?),
        });
    }
    Ok(Input {
        tree: Box::new(spool_stream(file, &head[..n], name, spool_dir)?),
    })
}

/// Walk `input` (decompressing it if needed), copying the data of its files into an
/// anonymous temp file and indexing them in the same pass: stdin, a compressed archive,
/// or an archive arriving as a stream from elsewhere (a daemon's `docker save`
/// answer), all read alike; `name` names it.
pub(crate) fn open_stream_spooling_in<R: Read + Send>(
    mut input: R,
    name: &str,
    spool_dir: Option<&Path>,
) -> Result<Input> {
    let (head, n) = read_head(&mut input, "the input is empty")?;
    Ok(Input {
        tree: Box::new(spool_stream(input, &head[..n], name, spool_dir)?),
    })
}

/// The first bytes of `input`, enough to tell its compression, and how many there
/// are; none is no image, for the reason `when_empty`.
fn read_head(input: &mut impl Read, when_empty: &str) -> Result<([u8; 8], usize)> {
    let mut head = [0u8; 8];
    let n = read_full(input, &mut head).map_err(|e| Error::io("cannot read", e))?;
    if n == 0 {
        return Err(Error::NotAnImage {
            file: String::new(),
            reason: when_empty.into(),
        });
    }
    Ok((head, n))
}

/// Index the archive in `input`, whose first bytes `head` were already read from it
/// (to sniff the compression).
fn spool_stream<R: Read + Send>(
    input: R,
    head: &[u8],
    name: &str,
    spool_dir: Option<&Path>,
) -> Result<TarIndex> {
    let compression = Compression::detect(head);
    let temp = Arc::new(
        crate::sys::anonymous_file()
            .map_err(|e| Error::io("creating a temp file to spool the input", e))?,
    );
    if compression == Compression::None {
        // A plain tar: when `R` is a File, entry data moves from it to the temp file in
        // the kernel (copy_file_range or splice).
        let mut source = Spool::new(input, head, &temp, spool_dir);
        return TarIndex::walk(&mut source, Arc::clone(&temp), name);
    }
    let reader = io::Cursor::new(head.to_vec()).chain(input);
    let decoded = compression
        .decoder(reader)
        .map_err(|e| Error::io(format!("decompressing ({})", compression.name()), e))?;
    let decoded = Decoded {
        inner: decoded,
        compression,
    };
    let mut source = Spool::new(decoded, &[], &temp, spool_dir);
    TarIndex::walk(&mut source, Arc::clone(&temp), name).map_err(|e| match e {
        Error::NotAnImage { file, .. } if source.total == 0 => Error::NotAnImage {
            file,
            reason: "the input is empty once decompressed".into(),
        },
        other => other,
    })
}

/// A stream walked once: header blocks are read from it, and the data of files is
/// copied to the end of the spool file (nothing else is kept: the index reads files
/// only). Whatever was read before (the bytes sniffed for compression) comes first.
struct Spool<'f, R> {
    head: Vec<u8>,
    input: R,
    out: BufWriter<&'f File>,
    /// Bytes written to the spool file so far: where the next kept data starts.
    written: u64,
    /// Bytes read from the (decompressed) input so far.
    total: u64,
    /// Where big entries get unnamed files of their own; `None` once that fails.
    own_dir: Option<PathBuf>,
    own_files: usize,
    /// Hashes what goes into files of their own, started with the first of them.
    hasher: Option<EntryHasher>,
}

impl<'f, R: Read> Spool<'f, R> {
    fn new(input: R, head: &[u8], file: &'f File, own_dir: Option<&Path>) -> Self {
        Spool {
            head: head.to_vec(),
            input,
            out: BufWriter::with_capacity(1 << 20, file),
            written: 0,
            total: 0,
            own_dir: own_dir.map(Path::to_path_buf),
            own_files: 0,
            hasher: None,
        }
    }

    /// An unnamed file for an entry of `n` bytes, when it gets one.
    fn own_file(&mut self, n: u64) -> Option<File> {
        if n < OWN_FILE_MIN || self.own_files >= OWN_FILES_MAX {
            return None;
        }
        match crate::sys::unnamed_file_in(self.own_dir.as_deref()?) {
            Ok(file) => {
                self.own_files += 1;
                Some(file)
            }
            Err(_) => {
                // Not supported there: the shared spool file it is, from now on.
                self.own_dir = None;
                None
            }
        }
    }

    /// Take up to `n` bytes of what was read ahead.
    fn take_head(&mut self, n: u64) -> Vec<u8> {
        let k = self.head.len().min(n.min(usize::MAX as u64) as usize);
        let rest = self.head.split_off(k);
        std::mem::replace(&mut self.head, rest)
    }
}

impl<R: Read> Source for Spool<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let head = self.take_head(buf.len() as u64);
        buf[..head.len()].copy_from_slice(&head);
        let n = head.len() + read_full(&mut self.input, &mut buf[head.len()..])?;
        self.total += n as u64;
        Ok(n)
    }

    fn data(&mut self, n: u64, keep: bool) -> io::Result<(Kept, u64)> {
        if let Some(own) = keep.then(|| self.own_file(n)).flatten() {
            let own = Arc::new(own);
            let head = self.take_head(n);
            (&*own).write_all(&head)?;
            let hasher = self.hasher.get_or_insert_with(EntryHasher::start);
            let digest = Arc::new(OnceLock::new());
            let mut passed = head.len() as u64;
            let mut hashed = 0;
            // In stretches, each handed to the kernel's writeback once spooled (this file
            // becomes the output's, whose final flush then waits for the tail only) and
            // to the hasher, which reads it back while it is still in the page cache:
            // the entry is verified as it arrives, never read again after the walk.
            while passed < n {
                let stretch = (n - passed).min(WRITEBACK_STRETCH);
                let copied = io::copy(&mut (&mut self.input).take(stretch), &mut &*own)?;
                start_writeback(&own, passed, copied);
                passed += copied;
                hasher.hash(&own, hashed, passed - hashed);
                hashed = passed;
                if copied < stretch {
                    break;
                }
            }
            if passed == n {
                hasher.finish(Arc::clone(&digest));
            }
            self.total += passed;
            return Ok((Kept::Own(own, digest), passed));
        }
        let at = self.written;
        let head = self.take_head(n);
        let mut passed = head.len() as u64;
        // With `R = File` and a `BufWriter<&File>`, std's io::copy moves these bytes in
        // the kernel (copy_file_range or splice).
        let mut rest = (&mut self.input).take(n - passed);
        if keep {
            self.out.write_all(&head)?;
            passed += io::copy(&mut rest, &mut self.out)?;
            self.written += passed;
        } else {
            passed += io::copy(&mut rest, &mut io::sink())?;
        }
        self.total += passed;
        Ok((Kept::At(at), passed))
    }

    fn end(&mut self) -> io::Result<()> {
        // Let a producer that pads its output finish writing, then stop reading. The
        // archive is complete: an error here (say, a compressed stream's trailer cut
        // off) cannot change it, and every blob is verified by digest later.
        let _ = io::copy(
            &mut (&mut self.input).take(MAX_TRAILING_BYTES),
            &mut io::sink(),
        );
        // Every digest is known once the hasher is done (dropping it waits for that).
        drop(self.hasher.take());
        self.out.flush()
    }

    fn fail(&self, e: io::Error) -> Error {
        Error::io("copying the input into a temp file", e)
    }
}

/// What the hasher is told: a range of an entry's file to hash (the entry's bytes in
/// order, a stretch at a time), or that the entry ended and where its digest goes.
enum HashWork {
    Range(Arc<File>, u64, u64),
    End(Arc<OnceLock<(Digest, u64)>>),
}

/// Stretches queued for the hasher before the spool waits for it.
const HASH_QUEUE: usize = 4;

/// A thread hashing the entries a spool copies into files of their own, each stretch
/// read back as soon as it is written, while the spool reads on.
struct EntryHasher {
    work: Option<SyncSender<HashWork>>,
    thread: Option<JoinHandle<()>>,
}

impl EntryHasher {
    fn start() -> EntryHasher {
        let (work, todo) = mpsc::sync_channel::<HashWork>(HASH_QUEUE);
        let thread = std::thread::spawn(move || hash_entries(todo));
        EntryHasher {
            work: Some(work),
            thread: Some(thread),
        }
    }

    /// Hash `len` bytes of `file` from `offset`. If the hasher is gone, no digest will
    /// be known, and the entry is verified by reading it later instead.
    fn hash(&mut self, file: &Arc<File>, offset: u64, len: u64) {
        self.send(HashWork::Range(Arc::clone(file), offset, len));
    }

    /// The entry is complete: its digest goes to `slot`.
    fn finish(&mut self, slot: Arc<OnceLock<(Digest, u64)>>) {
        self.send(HashWork::End(slot));
    }

    fn send(&mut self, work: HashWork) {
        if let Some(queue) = &self.work {
            if queue.send(work).is_err() {
                self.work = None;
            }
        }
    }
}

impl Drop for EntryHasher {
    /// Wait until everything handed over is hashed.
    fn drop(&mut self) {
        self.work = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The hasher's thread. A read error leaves the entry without a digest (it is then
/// verified by reading it later, which reports the error).
fn hash_entries(todo: Receiver<HashWork>) {
    let mut hasher = Hasher::new();
    let mut failed = false;
    let mut buf = vec![0u8; 1 << 20];
    for work in todo {
        match work {
            HashWork::Range(file, offset, len) => {
                let mut done = 0;
                while done < len && !failed {
                    let want = (len - done).min(buf.len() as u64) as usize;
                    match file.read_at(&mut buf[..want], offset + done) {
                        Ok(0) | Err(_) => failed = true,
                        Ok(k) => {
                            hasher.update(&buf[..k]);
                            done += k as u64;
                        }
                    }
                }
            }
            HashWork::End(slot) => {
                let finished = std::mem::take(&mut hasher).finish();
                if !std::mem::take(&mut failed) {
                    let _ = slot.set(finished);
                }
            }
        }
    }
}

/// A decompressing reader whose errors say what is wrong with the stream (truncated,
/// not valid data of its compression); errors of an uncompressed stream, and those
/// already worded, pass as they are.
pub(crate) struct Decoded<'a> {
    /// The decoder.
    pub inner: Box<dyn Read + Send + 'a>,
    /// What it decodes.
    pub compression: Compression,
}

impl Read for Decoded<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).map_err(|e| {
            if self.compression == Compression::None || e.get_ref().is_some_and(|i| i.is::<Error>())
            {
                return e;
            }
            let (file, kind) = (String::new(), self.compression.name());
            match e.kind() {
                io::ErrorKind::UnexpectedEof => Error::Truncated {
                    file,
                    detail: format!("the {kind} stream ends early"),
                },
                io::ErrorKind::OutOfMemory => Error::Unsupported(e.to_string()),
                _ => Error::malformed(file, format!("not valid {kind} data: {e}")),
            }
            .into_io()
        })
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    /// A reader that counts what was taken from it.
    struct Counted<R> {
        inner: R,
        taken: Arc<AtomicU64>,
    }

    impl<R: Read> Read for Counted<R> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.inner.read(buf)?;
            self.taken.fetch_add(n as u64, Ordering::Relaxed);
            Ok(n)
        }
    }

    fn tar(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, path, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    /// Spool `bytes` as a stream; returns the index and how many bytes were read.
    fn spool_bytes(input: impl Read + Send) -> (Result<TarIndex>, u64) {
        let taken = Arc::new(AtomicU64::new(0));
        let mut counted = Counted {
            inner: input,
            taken: Arc::clone(&taken),
        };
        let mut head = [0u8; 8];
        let n = read_full(&mut counted, &mut head).unwrap();
        let result = spool_stream(counted, &head[..n], "stdin", None);
        (result, taken.load(Ordering::Relaxed))
    }

    fn content(tree: &dyn FileTree, path: &str) -> Vec<u8> {
        let mut out = Vec::new();
        tree.resolve(path)
            .unwrap()
            .open()
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn reading_stops_after_the_end_marker_and_bounded_padding() {
        let archive = tar(&[("a/x", b"first"), ("y", &[9u8; 3000])]);
        let mut input = archive.clone();
        input.extend(vec![0x5a; 10 << 20]);
        let (idx, taken) = spool_bytes(io::Cursor::new(input));
        let idx = idx.unwrap();
        assert_eq!(content(&idx, "a/x"), b"first");
        assert_eq!(content(&idx, "y"), [9u8; 3000]);
        assert_eq!(taken, archive.len() as u64 + MAX_TRAILING_BYTES);
        // An endless stream of zeros is an archive without entries, found at once.
        let (err, taken) = spool_bytes(io::repeat(0));
        assert!(
            matches!(err, Err(Error::NotAnImage { ref reason, .. }) if reason.contains("no entries"))
        );
        assert_eq!(taken, 1024 + MAX_TRAILING_BYTES);
    }

    #[test]
    fn compressed_streams_are_walked_as_they_decompress() {
        let archive = tar(&[("manifest.json", b"[]")]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&archive).unwrap();
        let gz = gz.finish().unwrap();
        let idx = spool_bytes(io::Cursor::new(gz.clone())).0.unwrap();
        assert_eq!(content(&idx, "manifest.json"), b"[]");
        // Cut inside the tar data: the stream ends early.
        let err = spool_bytes(io::Cursor::new(gz[..gz.len() / 2].to_vec()))
            .0
            .err()
            .unwrap();
        assert!(matches!(err, Error::Truncated { .. }), "{err}");
        // A gzip stream of nothing.
        let empty = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast())
            .finish()
            .unwrap();
        let err = spool_bytes(io::Cursor::new(empty)).0.err().unwrap();
        assert!(err.to_string().contains("empty once decompressed"), "{err}");
        // A zstd frame asking for a 2 GiB window.
        let mut zst = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, 21 << 3];
        zst.extend_from_slice(&(((archive.len() as u32) << 3) | 1).to_le_bytes()[..3]);
        zst.extend_from_slice(&archive);
        let err = spool_bytes(io::Cursor::new(zst)).0.err().unwrap();
        assert!(matches!(err, Error::Unsupported(_)), "{err}");
        assert!(err.to_string().contains("memory"), "{err}");
    }

    #[test]
    fn a_plain_stream_cut_inside_an_entry_is_truncated() {
        let archive = tar(&[("big", &[1u8; 5000])]);
        let err = spool_bytes(io::Cursor::new(archive[..3000].to_vec()))
            .0
            .err()
            .unwrap();
        assert!(matches!(err, Error::Truncated { .. }), "{err}");
        assert!(
            err.to_string().contains("entry big claims 5000 bytes"),
            "{err}"
        );
    }

    /// Big entries spooled into files of their own are hashed as they pass: the digest
    /// is known after the walk, without reading them back, and is that of their bytes.
    #[test]
    fn big_entries_are_hashed_as_they_are_spooled() {
        let big: Vec<u8> = (0..(3 * OWN_FILE_MIN as usize + 12345))
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        let archive = tar(&[("small", b"tiny"), ("big", &big)]);
        let dir = tempfile::tempdir().unwrap();
        let idx = spool_stream(io::Cursor::new(archive), &[], "stdin", Some(dir.path())).unwrap();
        let tree: &dyn FileTree = &idx;
        let entry = tree.resolve("big").unwrap();
        assert!(entry.blob.whole_file().is_some());
        assert_eq!(entry.blob.whole_file_digest(), Some(Digest::of(&big)));
        assert_eq!(content(&idx, "big"), big);
        // Small entries share the spool file and are verified by reading them.
        let small = tree.resolve("small").unwrap();
        assert!(small.blob.whole_file().is_none() && small.blob.whole_file_digest().is_none());
    }
}
