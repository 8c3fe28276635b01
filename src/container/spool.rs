//! Opening an input: a directory is read in place, an uncompressed tar file is indexed in
//! place, and anything else (stdin, a pipe, a device, a compressed archive) is
//! decompressed and walked as it arrives, the data of its files copied into an
//! anonymous temp file (which the OS removes on every exit path) and indexed in the
//! same pass. Reading stops at the tar end-of-archive marker, so an endless input
//! (`/dev/zero`) costs no disk.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Seek, Write};
use std::path::Path;
use std::sync::Arc;

use super::tar_index::Source;
use super::{DirTree, FileTree, TarIndex};
use crate::error::{Error, Result};
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

/// Open `path` (`-` for stdin) as a tree.
pub fn open_input(path: &str) -> Result<Input> {
    if path == "-" {
        // Read stdin as a File: a regular file (`< image.tar`) is then indexed in place
        // like a named one, and a pipe is spliced into the spool file by the kernel.
        let stdin = std::os::fd::AsFd::as_fd(&io::stdin())
            .try_clone_to_owned()
            .map_err(|e| Error::io("cannot read", e))?;
        let mut stdin = File::from(stdin);
        let meta = stdin.metadata().map_err(|e| Error::io("cannot read", e))?;
        if meta.is_file() && stdin.stream_position().ok() == Some(0) {
            return open_file(stdin, "stdin");
        }
        crate::sys::widen_pipe(&stdin);
        return spool(stdin, "stdin");
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
        return spool(file, path);
    }
    open_file(file, path)
}

/// Open a regular file: an uncompressed tar is indexed in place, anything else spooled.
fn open_file(mut file: File, name: &str) -> Result<Input> {
    let mut head = [0u8; 8];
    let n = read_head(&mut file, &mut head).map_err(|e| Error::io("cannot read", e))?;
    if n == 0 {
        return Err(Error::NotAnImage {
            file: String::new(),
            reason: "the file is empty".into(),
        });
    }
    let compression = Compression::detect(&head[..n]);
    file.rewind().map_err(|e| Error::io("cannot read", e))?;
    if compression == Compression::None {
        return Ok(Input {
            tree: Box::new(TarIndex::new(file, name)?),
        });
    }
    spool(file, name)
}

fn read_head(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Walk `input` (decompressing it if needed), copying the data of its files into an
/// anonymous temp file and indexing them in the same pass.
fn spool(mut input: File, name: &str) -> Result<Input> {
    let mut head = [0u8; 8];
    let n = read_head(&mut input, &mut head).map_err(|e| Error::io("cannot read", e))?;
    if n == 0 {
        return Err(Error::NotAnImage {
            file: String::new(),
            reason: "the input is empty".into(),
        });
    }
    Ok(Input {
        tree: Box::new(spool_stream(input, &head[..n], name)?),
    })
}

/// Index the archive in `input`, whose first bytes `head` were already read from it
/// (to sniff the compression).
fn spool_stream<R: Read + Send>(input: R, head: &[u8], name: &str) -> Result<TarIndex> {
    let compression = Compression::detect(head);
    let temp = Arc::new(
        crate::sys::anonymous_file()
            .map_err(|e| Error::io("creating a temp file to spool the input", e))?,
    );
    if compression == Compression::None {
        // A plain tar: when `R` is a File, entry data moves from it to the temp file in
        // the kernel (copy_file_range or splice).
        let mut source = Spool::new(input, head, &temp);
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
    let mut source = Spool::new(decoded, &[], &temp);
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
}

impl<'f, R: Read> Spool<'f, R> {
    fn new(input: R, head: &[u8], file: &'f File) -> Self {
        Spool {
            head: head.to_vec(),
            input,
            out: BufWriter::with_capacity(1 << 20, file),
            written: 0,
            total: 0,
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
        let mut n = head.len();
        while n < buf.len() {
            match self.input.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.total += n as u64;
        Ok(n)
    }

    fn data(&mut self, n: u64, keep: bool) -> io::Result<(u64, u64)> {
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
        Ok((at, passed))
    }

    fn end(&mut self) -> io::Result<()> {
        // Let a producer that pads its output finish writing, then stop reading. The
        // archive is complete: an error here (say, a compressed stream's trailer cut
        // off) cannot change it, and every blob is verified by digest later.
        let _ = io::copy(
            &mut (&mut self.input).take(MAX_TRAILING_BYTES),
            &mut io::sink(),
        );
        self.out.flush()
    }

    fn fail(&self, e: io::Error) -> Error {
        Error::io("copying the input into a temp file", e)
    }
}

/// A decompressing reader whose errors name the input and the compression.
struct Decoded<'a> {
    inner: Box<dyn Read + Send + 'a>,
    compression: Compression,
}

impl Read for Decoded<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).map_err(|e| {
            if e.get_ref().is_some_and(|i| i.is::<Error>()) {
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
        let n = read_head(&mut counted, &mut head).unwrap();
        let result = spool_stream(counted, &head[..n], "stdin");
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
}
