//! Reading layers with verification as they stream: the stored digest and size, and the
//! uncompressed digest against the config's diff_id, all checked in the same pass.

use std::io::{self, BufRead, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::container::read_full;
use crate::error::{Error, Result};
use crate::model::blob::Blob;
use crate::model::digest::{Digest, Hasher};
use crate::model::image::{Image, Layer};
use crate::model::media::Compression;
use crate::progress::{Progress, Reporting};
use crate::text::shown;

/// Which bytes of a layer to read.
///
/// ```
/// use std::io::Read;
/// use dockhand::{open_layer, open_source, LayerForm, Location, ReadOptions};
///
/// # let input = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/skopeo-oci/input");
/// let source = open_source(&Location::parse(input)?, &ReadOptions::default())?;
/// let (image, layer) = (&source.images[0], &source.images[0].layers[0]);
/// let (mut stored, mut tar) = (Vec::new(), Vec::new());
/// open_layer(image, layer, LayerForm::Stored)?.read_to_end(&mut stored).unwrap();
/// open_layer(image, layer, LayerForm::Uncompressed)?.read_to_end(&mut tar).unwrap();
/// assert_eq!((stored.len(), &stored[..2]), (187, &[0x1f, 0x8b][..])); // gzip
/// assert_eq!(tar.len(), 2560);
/// # Ok::<(), dockhand::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LayerForm {
    /// The bytes as stored (possibly compressed).
    Stored,
    /// The uncompressed tar.
    Uncompressed,
}

/// The digests of a layer, known once all of it has been read.
///
/// ```
/// use std::io::Read;
/// use dockhand::{open_layer, open_source, LayerForm, Location, ReadOptions};
///
/// # let input = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/skopeo-oci/input");
/// let source = open_source(&Location::parse(input)?, &ReadOptions::default())?;
/// let layer = &source.images[0].layers[0];
/// let mut reader = open_layer(&source.images[0], layer, LayerForm::Stored)?;
/// assert_eq!(reader.digests(), None); // not read yet
/// std::io::copy(&mut reader, &mut std::io::sink()).unwrap();
/// let digests = reader.digests().unwrap();
/// assert_eq!((Some(digests.stored), digests.size), (layer.digest.clone(), 187));
/// assert_eq!(digests.uncompressed, layer.diff_id);
/// assert_eq!(digests.uncompressed_size, Some(2560)); // the tar inside the gzip
/// # Ok::<(), dockhand::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Digests {
    /// Of the bytes as stored.
    pub stored: Digest,
    /// How many bytes were stored.
    pub size: u64,
    /// Of the uncompressed tar, when it was computed (always for an image's layers).
    pub uncompressed: Option<Digest>,
    /// How many bytes the uncompressed tar holds, when it was computed (with
    /// `uncompressed`): the size `docker history` shows for the layer.
    pub uncompressed_size: Option<u64>,
}

/// A layer being read with verification. At its end it checks what the layer must be
/// (and fails instead of ending cleanly when it is not), and [`LayerReader::digests`]
/// then tells what it was: the stored digest of a layer whose source did not record
/// one is known this way, without a separate read.
///
/// ```
/// use std::io::Read;
/// use dockhand::{open_layer, open_source, LayerForm, Location, ReadOptions};
///
/// # let input = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/docker-save-basic/input.tar");
/// let source = open_source(&Location::parse(input)?, &ReadOptions::default())?;
/// let image = &source.images[0];
/// let mut reader = open_layer(image, &image.layers[2], LayerForm::Uncompressed)?;
/// let mut tar = Vec::new();
/// reader.read_to_end(&mut tar).unwrap(); // ends cleanly only if the layer is whole
/// assert_eq!(reader.digests().unwrap().uncompressed, image.layers[2].diff_id);
/// # Ok::<(), dockhand::Error>(())
/// ```
pub struct LayerReader {
    inner: Box<dyn Read + Send>,
    found: Arc<Mutex<Option<Digests>>>,
    /// The input the layer belongs to: every error names it.
    input: Option<Arc<str>>,
    path: String,
}

impl LayerReader {
    /// The digests of the whole layer, once it has been read to its end and verified.
    pub fn digests(&self) -> Option<Digests> {
        self.found.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Read for LayerReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).map_err(|e| {
            let Some(input) = &self.input else {
                return e;
            };
            Error::io(format!("reading {}", shown(&self.path)), e)
                .in_input(input)
                .into_io()
        })
    }
}

/// Open `layer` of `image` for reading in `form`. The reader fails (instead of ending
/// cleanly) if the stored bytes do not match the layer's digest (when the source
/// recorded one) and size, or the uncompressed bytes do not match its diff_id.
///
/// ```
/// use std::io::Read;
/// use dockhand::{open_layer, open_source, LayerForm, Location, ReadOptions};
///
/// let input = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/docker-save-basic/input.tar");
/// let source = open_source(&Location::parse(input)?, &ReadOptions::default())?;
/// let image = &source.images[0];
/// let mut tar = Vec::new();
/// open_layer(image, &image.layers[0], LayerForm::Uncompressed)?
///     .read_to_end(&mut tar)
///     .unwrap();
/// assert_eq!(tar.len() % 512, 0);
/// # Ok::<(), dockhand::Error>(())
/// ```
pub fn open_layer(image: &Image, layer: &Layer, form: LayerForm) -> Result<LayerReader> {
    open_layer_with(image, layer, form, layer.diff_id.is_some(), false)
}

/// [`open_layer`] for a caller that reads one layer at a time (into a tar): a big
/// uncompressed blob is then read ahead by a thread of its own, on the core the caller
/// leaves idle. (Callers reading several layers at once keep every core busy already.)
pub(crate) fn open_layer_in_turn(
    image: &Image,
    layer: &Layer,
    form: LayerForm,
) -> Result<LayerReader> {
    open_layer_with(image, layer, form, layer.diff_id.is_some(), true)
}

/// [`open_layer`], decompressing a compressed layer read in its stored form when
/// `want_uncompressed` (for its uncompressed digest and size) even if the config gives
/// no diff_id to compare them with.
fn open_layer_with(
    image: &Image,
    layer: &Layer,
    form: LayerForm,
    want_uncompressed: bool,
    read_ahead: bool,
) -> Result<LayerReader> {
    let in_input = |e: Error| e.in_input(&image.input);
    let blob = layer.blob.as_ref().ok_or_else(|| {
        in_input(Error::Missing {
            file: shown(&layer.path),
            what: format!("layer of image {}", image.display_name()),
        })
    })?;
    let check = Check::of(image, layer);
    let mut reader = open_checked(Arc::clone(blob), check, form, want_uncompressed, read_ahead)
        .map_err(in_input)?;
    reader.input = Some(Arc::clone(&image.input));
    Ok(reader)
}

fn open_checked(
    blob: Arc<dyn Blob>,
    check: Check,
    form: LayerForm,
    want_uncompressed: bool,
    read_ahead: bool,
) -> Result<LayerReader> {
    let found = Arc::new(Mutex::new(None));
    let path = check.path.clone();
    if form == LayerForm::Stored || check.compression == Compression::None {
        let diff = (want_uncompressed && check.compression != Compression::None)
            .then(|| DiffWorker::spawn(check.compression));
        let inner = blob.open()?;
        // A big blob read in turn is read ahead by a thread of its own: the copy out
        // of the page cache (a third of a layer's cost on a VM) overlaps the hashing.
        let inner: Box<dyn Read + Send> = if read_ahead && blob.size() >= READ_AHEAD_MIN {
            Box::new(ReadAhead::start(inner))
        } else {
            inner
        };
        let reader = StoredReader {
            inner,
            stored: Hasher::new(),
            diff,
            check,
            found: Arc::clone(&found),
            done: false,
        };
        return Ok(LayerReader {
            inner: Box::new(reader),
            found,
            input: None,
            path,
        });
    }
    let reader = UncompressedReader::start(blob, &check, Arc::clone(&found))?;
    Ok(LayerReader {
        inner: Box::new(reader),
        found,
        input: None,
        path,
    })
}

/// Read a whole layer, verifying it, without keeping the bytes.
pub fn verify_layer(image: &Image, layer: &Layer, progress: &dyn Progress) -> Result<()> {
    read_layer(image, layer, progress, layer.diff_id.is_some()).map(|_| ())
}

/// Read a whole layer as stored, verifying it as [`verify_layer`] does, without
/// keeping the bytes; what it was. With `want_uncompressed`, a compressed layer is also
/// decompressed (on another thread, through fixed buffers), so its uncompressed digest
/// and size are known even when the config gives no diff_id. Progress counts stored
/// bytes.
pub(crate) fn read_layer(
    image: &Image,
    layer: &Layer,
    progress: &dyn Progress,
    want_uncompressed: bool,
) -> Result<Digests> {
    if let Some(digests) = checked_as_spooled(image, layer) {
        progress.layer_started(&layer.path, layer.size);
        progress.layer_advanced(&layer.path, layer.size);
        progress.layer_done(&layer.path);
        return Ok(digests);
    }
    let reader = open_layer_with(image, layer, LayerForm::Stored, want_uncompressed, false)?;
    let found = Arc::clone(&reader.found);
    let reader = Reporting::new(reader, progress, &layer.path, layer.size);
    // Big reads: io::copy's own 8 KiB buffer would cost a system call per 8 KiB.
    let mut reader = io::BufReader::with_capacity(1 << 20, reader);
    io::copy(&mut reader, &mut io::sink())
        .map_err(|e| Error::io(format!("reading {}", shown(&layer.path)), e))?;
    let digests = found.lock().unwrap_or_else(|p| p.into_inner()).clone();
    Ok(digests.expect("a layer read to its end has its digests"))
}

/// The digests of an uncompressed layer whose bytes this process hashed as it spooled
/// them (a big entry of a piped input), when they pass the checks a read makes: the
/// layer is then verified without reading it again. `None` otherwise, a failed check
/// included: reading the layer then gives the error, as for any other layer.
fn checked_as_spooled(image: &Image, layer: &Layer) -> Option<Digests> {
    let blob = layer.blob.as_deref()?;
    if layer.compression != Compression::None {
        return None;
    }
    let hashed = blob.whole_file_digest()?;
    let check = Check::of(image, layer);
    let stored = check.stored_digest(hashed, blob.size()).ok()?;
    check.uncompressed(stored.clone()).ok()?;
    Some(Digests {
        stored: stored.clone(),
        size: blob.size(),
        uncompressed: Some(stored),
        uncompressed_size: Some(blob.size()),
    })
}

/// The digests of a stored layer as stored and uncompressed, from one read: for layers
/// whose diff_id nothing records (pre-1.10 archives, schema1). The same readers as
/// every other layer read, with nothing to compare against.
pub(crate) fn stored_and_uncompressed_digests(
    blob: &Arc<dyn Blob>,
    path: &str,
    compression: Compression,
) -> Result<(Digest, Digest)> {
    let check = Check {
        image: String::new(),
        path: path.to_string(),
        digest: None,
        size: blob.size(),
        diff_id: None,
        compression,
    };
    let mut reader = open_checked(Arc::clone(blob), check, LayerForm::Stored, true, false)?;
    io::copy(&mut reader, &mut io::sink()).map_err(|e| Error::io(format!("reading {path}"), e))?;
    let digests = reader.digests().expect("read to its end");
    let uncompressed = digests
        .uncompressed
        .unwrap_or_else(|| digests.stored.clone());
    Ok((digests.stored, uncompressed))
}

/// What a layer must turn out to be.
#[derive(Clone)]
struct Check {
    image: String,
    path: String,
    /// The stored digest, when the source records one.
    digest: Option<Digest>,
    size: u64,
    diff_id: Option<Digest>,
    compression: Compression,
}

impl Check {
    /// What `layer` of `image` must turn out to be.
    fn of(image: &Image, layer: &Layer) -> Check {
        Check {
            image: image.display_name(),
            path: layer.path.clone(),
            digest: layer.digest.clone(),
            size: layer.size,
            diff_id: layer.diff_id.clone(),
            compression: layer.compression,
        }
    }

    /// Check the stored bytes' hash and length; their digest.
    fn stored(&self, hasher: Hasher) -> Result<Digest> {
        let (actual, len) = hasher.finish();
        self.stored_digest(actual, len)
    }

    /// Check the stored bytes' digest and length; the digest.
    fn stored_digest(&self, actual: Digest, len: u64) -> Result<Digest> {
        if len != self.size {
            return Err(Error::SizeMismatch {
                file: self.path.clone(),
                expected: self.size,
                actual: len,
            });
        }
        match &self.digest {
            Some(expected) if *expected != actual => {
                // An uncompressed layer's digest is its diff_id: report it as such.
                if self.compression == Compression::None && self.diff_id.as_ref() == Some(expected)
                {
                    return Err(Error::DiffIdMismatch {
                        image: self.image.clone(),
                        file: self.path.clone(),
                        expected: expected.clone(),
                        actual,
                    });
                }
                Err(Error::DigestMismatch {
                    file: self.path.clone(),
                    expected: expected.clone(),
                    actual,
                })
            }
            _ => Ok(actual),
        }
    }

    fn uncompressed(&self, actual: Digest) -> Result<()> {
        match &self.diff_id {
            Some(expected) if *expected != actual => Err(Error::DiffIdMismatch {
                image: self.image.clone(),
                file: self.path.clone(),
                expected: expected.clone(),
                actual,
            }),
            _ => Ok(()),
        }
    }

    fn corrupt(&self, e: io::Error) -> io::Error {
        (self.corrupt_fn())(e)
    }

    /// Turns a decoder's error into one naming the layer (for use on another thread).
    fn corrupt_fn(&self) -> impl Fn(io::Error) -> io::Error + Send + 'static {
        let (path, compression) = (self.path.clone(), self.compression);
        move |e: io::Error| {
            if e.get_ref().is_some_and(|i| i.is::<Error>()) {
                return e;
            }
            if e.kind() == io::ErrorKind::OutOfMemory {
                // Over a decoder's memory cap: the data may be fine, dockhand refuses it.
                return Error::Unsupported(format!("{}: layer refused: {e}", shown(&path)))
                    .into_io();
            }
            Error::malformed(
                path.clone(),
                format!("layer is not valid {} data: {e}", compression.name()),
            )
            .into_io()
        }
    }
}

/// How much data moves between a layer's threads at a time, and how many such chunks
/// may wait: memory per layer stays under a few MiB whatever its size.
const CHUNK: usize = 256 * 1024;
const QUEUE_DEPTH: usize = 4;

/// Computes a diff_id on another thread from copies of the stored bytes, so
/// decompression overlaps with the consumer's hashing and writing.
struct DiffWorker {
    tx: Option<SyncSender<Vec<u8>>>,
    handle: Option<JoinHandle<io::Result<(Digest, u64)>>>,
    pending: Vec<u8>,
}

impl DiffWorker {
    fn spawn(compression: Compression) -> DiffWorker {
        let (tx, rx) = sync_channel::<Vec<u8>>(QUEUE_DEPTH);
        let handle = std::thread::spawn(move || -> io::Result<(Digest, u64)> {
            let mut chunks = ChunkReader {
                rx,
                current: Vec::new(),
                pos: 0,
            };
            let digest = {
                // The one place decoders (and their memory caps) are built.
                let mut decoder = compression.decoder_buffered(&mut chunks)?;
                Digest::of_reader(&mut decoder)?
            };
            // Bytes after the compressed stream still belong to the stored blob (and
            // the feeding side must not block on a full queue): take them unread.
            for _ in chunks.rx.iter() {}
            Ok(digest)
        });
        DiffWorker {
            tx: Some(tx),
            handle: Some(handle),
            pending: Vec::with_capacity(CHUNK),
        }
    }

    fn feed(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.pending.extend_from_slice(bytes);
        if self.pending.len() >= CHUNK {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.pending, Vec::with_capacity(CHUNK));
        let tx = self.tx.as_ref().expect("fed after finish");
        if tx.send(chunk).is_err() {
            // The worker stopped early: it failed; its error says why.
            return Err(self
                .join()
                .err()
                .unwrap_or_else(|| io::Error::other("decompression stopped early")));
        }
        Ok(())
    }

    fn join(&mut self) -> io::Result<(Digest, u64)> {
        self.tx.take();
        match self.handle.take().expect("joined twice").join() {
            Ok(result) => result,
            Err(_) => Err(io::Error::other("decompression thread panicked")),
        }
    }

    /// The uncompressed digest and length, once every stored byte was fed.
    fn finish(mut self) -> io::Result<(Digest, u64)> {
        self.flush()?;
        self.join()
    }
}

/// The stored bytes a [`DiffWorker`] receives, as a `Read` for a decoder; it ends when
/// the feeding side closes the channel.
struct ChunkReader {
    rx: Receiver<Vec<u8>>,
    current: Vec<u8>,
    pos: usize,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = buf.len().min(available.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

/// The decoder reads the chunks in place, without another copy through a buffer.
impl BufRead for ChunkReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.pos == self.current.len() {
            match self.rx.recv() {
                Ok(chunk) => {
                    self.current = chunk;
                    self.pos = 0;
                }
                Err(_) => return Ok(&[]),
            }
        }
        Ok(&self.current[self.pos..])
    }
    fn consume(&mut self, amount: usize) {
        self.pos = (self.pos + amount).min(self.current.len());
    }
}

impl Drop for DiffWorker {
    fn drop(&mut self) {
        // Never leave the thread running: closing the channel ends its loop.
        self.tx.take();
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

/// Passes the stored bytes through and hashes them; a [`DiffWorker`] decompresses a
/// copy for the diff_id.
struct StoredReader {
    inner: Box<dyn Read + Send>,
    stored: Hasher,
    diff: Option<DiffWorker>,
    check: Check,
    found: Arc<Mutex<Option<Digests>>>,
    done: bool,
}

impl StoredReader {
    fn finish(&mut self) -> Result<()> {
        let size = self.stored.len();
        let stored = self.check.stored(std::mem::take(&mut self.stored))?;
        let uncompressed = match self.diff.take() {
            Some(diff) => Some(
                diff.finish()
                    .map_err(|e| Error::io("", self.check.corrupt(e)))?,
            ),
            // Uncompressed: the stored bytes are the tar.
            None if self.check.compression == Compression::None => Some((stored.clone(), size)),
            None => None,
        };
        if let Some((u, _)) = &uncompressed {
            self.check.uncompressed(u.clone())?;
        }
        let (uncompressed, uncompressed_size) = uncompressed.unzip();
        *self.found.lock().unwrap_or_else(|p| p.into_inner()) = Some(Digests {
            stored,
            size,
            uncompressed,
            uncompressed_size,
        });
        Ok(())
    }
}

impl Read for StoredReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        if n == 0 {
            self.done = true;
            self.finish().map_err(Error::into_io)?;
            return Ok(0);
        }
        self.stored.update(&buf[..n]);
        if self.stored.len() > self.check.size {
            self.done = true;
            return Err(Error::SizeMismatch {
                file: self.check.path.clone(),
                expected: self.check.size,
                actual: self.stored.len(),
            }
            .into_io());
        }
        if let Some(diff) = &mut self.diff {
            diff.feed(&buf[..n]).map_err(|e| self.check.corrupt(e))?;
        }
        Ok(n)
    }
}

/// Blobs at least this big are read ahead by [`ReadAhead`].
const READ_AHEAD_MIN: u64 = 4 << 20;
/// Bytes read ahead at a time, and how many such buffers exist.
const READ_AHEAD_CHUNK: usize = 1 << 20;
const READ_AHEAD_BUFFERS: usize = 4;

/// A reader whose bytes a thread of its own reads ahead, at most
/// [`READ_AHEAD_BUFFERS`] buffers of them.
struct ReadAhead {
    filled: Receiver<io::Result<(Vec<u8>, usize)>>,
    give_back: Option<SyncSender<Vec<u8>>>,
    current: Vec<u8>,
    len: usize,
    pos: usize,
    thread: Option<JoinHandle<()>>,
}

impl ReadAhead {
    fn start(mut inner: Box<dyn Read + Send>) -> ReadAhead {
        let (send, filled) = sync_channel(READ_AHEAD_BUFFERS);
        let (give_back, spare) = sync_channel::<Vec<u8>>(READ_AHEAD_BUFFERS);
        let thread = std::thread::spawn(move || {
            let mut allocated = 0;
            loop {
                let mut buf = match spare.try_recv() {
                    Ok(buf) => buf,
                    Err(_) if allocated < READ_AHEAD_BUFFERS => {
                        allocated += 1;
                        vec![0; READ_AHEAD_CHUNK]
                    }
                    Err(_) => match spare.recv() {
                        Ok(buf) => buf,
                        Err(_) => return, // the reader is gone
                    },
                };
                // An error ends the stream: the verifying reader reports it.
                let message = read_full(&mut inner, &mut buf).map(|n| (buf, n));
                let end = !matches!(message, Ok((_, n)) if n > 0);
                if send.send(message).is_err() || end {
                    return;
                }
            }
        });
        ReadAhead {
            filled,
            give_back: Some(give_back),
            current: Vec::new(),
            len: 0,
            pos: 0,
            thread: Some(thread),
        }
    }
}

impl Read for ReadAhead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.len {
            let (next, len) = match self.filled.recv() {
                Ok(message) => message?,
                Err(_) => return Ok(0), // the thread is done: the end was sent
            };
            let done = std::mem::replace(&mut self.current, next);
            if !done.is_empty() {
                if let Some(give_back) = &self.give_back {
                    let _ = give_back.try_send(done);
                }
            }
            (self.len, self.pos) = (len, 0);
            if len == 0 {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.len - self.pos);
        buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Drop for ReadAhead {
    /// Stop the thread (its next send or wait fails) and wait for it.
    fn drop(&mut self) {
        let (_, closed) = sync_channel(0);
        drop(std::mem::replace(&mut self.filled, closed));
        self.give_back = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Hashes what a decoder pulls from the stored bytes.
struct Tap {
    inner: Box<dyn Read + Send>,
    hasher: Arc<Mutex<Hasher>>,
}

impl Read for Tap {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .update(&buf[..n]);
        Ok(n)
    }
}

/// All of a blob hashed on a thread of its own. Dropped before its result is taken
/// (a layer read stopped early), it stops the thread and waits for it, so no thread
/// outlives its layer.
struct StoredHasher {
    thread: Option<JoinHandle<Result<Hasher>>>,
    stop: Arc<AtomicBool>,
}

impl StoredHasher {
    fn start(blob: Arc<dyn Blob>) -> StoredHasher {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut reader = blob.open()?;
            let mut hasher = Hasher::new();
            let mut buf = vec![0u8; CHUNK];
            while !stopped.load(Ordering::Relaxed) {
                match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => hasher.update(&buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(Error::io(format!("reading {}", blob.describe()), e)),
                }
            }
            Ok(hasher)
        });
        StoredHasher {
            thread: Some(thread),
            stop,
        }
    }

    /// The hash of the whole blob.
    fn result(mut self) -> Result<Hasher> {
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            _ => Err(Error::Unsupported("hashing thread panicked".into())),
        }
    }
}

impl Drop for StoredHasher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Yields the uncompressed bytes, which a worker thread decompresses (hashing the
/// stored bytes as it reads them) while this side hashes them for the diff_id.
struct UncompressedReader {
    rx: Receiver<io::Result<Vec<u8>>>,
    handle: Option<JoinHandle<Result<Hasher>>>,
    current: Vec<u8>,
    pos: usize,
    diff: Hasher,
    check: Check,
    found: Arc<Mutex<Option<Digests>>>,
    done: bool,
}

impl UncompressedReader {
    fn start(
        blob: Arc<dyn Blob>,
        check: &Check,
        found: Arc<Mutex<Option<Digests>>>,
    ) -> Result<UncompressedReader> {
        // A local gzip blob is hashed as stored by a thread of its own, reading it
        // again (from the page cache) alongside the decompressing thread, the slowest
        // stage, which then only inflates. A registry's is hashed as it is
        // decompressed, so that it is fetched once; so is any other compression, whose
        // decoder is fast enough that a thread more gains nothing.
        let stored = Arc::new(Mutex::new(Hasher::new()));
        let inflating = check.compression == Compression::Gzip;
        let (decoder, separate) = if inflating && blob.rereading_is_cheap() {
            let stored_thread = StoredHasher::start(Arc::clone(&blob));
            (check.compression.decoder(blob.open()?), Some(stored_thread))
        } else {
            let tap = Tap {
                inner: blob.open()?,
                hasher: Arc::clone(&stored),
            };
            (check.compression.decoder(tap), None)
        };
        let mut decoder = decoder.map_err(|e| Error::io(format!("reading {}", check.path), e))?;
        let (tx, rx) = sync_channel::<io::Result<Vec<u8>>>(QUEUE_DEPTH);
        let (path, declared) = (check.path.clone(), check.size);
        let corrupt = check.corrupt_fn();
        let handle = std::thread::spawn(move || -> Result<Hasher> {
            loop {
                let mut chunk = vec![0u8; CHUNK];
                let mut filled = 0;
                while filled < CHUNK {
                    match decoder.read(&mut chunk[filled..]) {
                        Ok(0) => break,
                        Ok(n) => filled += n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => {
                            // A short or corrupt stored blob is better reported by its size.
                            let err = if blob.size() != declared {
                                Error::SizeMismatch {
                                    file: path.clone(),
                                    expected: declared,
                                    actual: blob.size(),
                                }
                                .into_io()
                            } else {
                                corrupt(e)
                            };
                            let _ = tx.send(Err(err));
                            return Ok(Hasher::new());
                        }
                    }
                }
                if filled == 0 {
                    break;
                }
                chunk.truncate(filled);
                if tx.send(Ok(chunk)).is_err() {
                    return Ok(Hasher::new()); // the reader went away
                }
            }
            drop(decoder);
            if let Some(thread) = separate {
                return thread.result();
            }
            // Hash whatever the decoder left unread (trailing bytes after the stream).
            let mut stored = std::mem::take(&mut *stored.lock().unwrap_or_else(|p| p.into_inner()));
            let mut rest = blob.open_at(stored.len())?;
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = rest
                    .read(&mut buf)
                    .map_err(|e| Error::io(format!("reading {path}"), e))?;
                if n == 0 {
                    break;
                }
                stored.update(&buf[..n]);
            }
            Ok(stored)
        });
        Ok(UncompressedReader {
            rx,
            handle: Some(handle),
            current: Vec::new(),
            pos: 0,
            diff: Hasher::new(),
            check: check.clone(),
            found,
            done: false,
        })
    }

    fn finish(&mut self) -> Result<()> {
        let stored = match self.handle.take().expect("finished twice").join() {
            Ok(result) => result?,
            Err(_) => return Err(Error::Unsupported("decompression thread panicked".into())),
        };
        let size = stored.len();
        let stored = self.check.stored(stored)?;
        let (uncompressed, uncompressed_size) = std::mem::take(&mut self.diff).finish();
        self.check.uncompressed(uncompressed.clone())?;
        *self.found.lock().unwrap_or_else(|p| p.into_inner()) = Some(Digests {
            stored,
            size,
            uncompressed: Some(uncompressed),
            uncompressed_size: Some(uncompressed_size),
        });
        Ok(())
    }
}

impl Drop for UncompressedReader {
    fn drop(&mut self) {
        // A reader dropped early: disconnect so the worker's next send fails, then wait
        // for it, so no thread outlives its layer.
        let (_, empty) = sync_channel(0);
        drop(std::mem::replace(&mut self.rx, empty));
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

impl Read for UncompressedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        if self.pos == self.current.len() {
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    self.current = chunk;
                    self.pos = 0;
                }
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                Err(_) => {
                    self.done = true;
                    self.finish().map_err(Error::into_io)?;
                    return Ok(0);
                }
            }
        }
        let n = buf.len().min(self.current.len() - self.pos);
        buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        self.diff.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;
    use std::sync::Arc;

    use super::*;
    use crate::container::{DirTree, FileTree};
    use crate::model::image::{Descriptor, Platform};

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    /// An image with one layer stored as `stored`, claiming `uncompressed` as content.
    fn image_with(dir: &std::path::Path, stored: &[u8], uncompressed: &[u8]) -> Image {
        std::fs::write(dir.join("layer"), stored).unwrap();
        let tree = DirTree::new(dir, "test");
        let file = (&tree as &dyn FileTree).resolve("layer").unwrap();
        let layer = Layer {
            digest: Some(Digest::of(stored)),
            size: stored.len() as u64,
            media_type: String::new(),
            compression: Compression::detect(stored),
            diff_id: Some(Digest::of(uncompressed)),
            blob: Some(file.blob),
            path: "layer".into(),
        };
        Image {
            tags: vec![],
            ref_names: vec![],
            oci_ref_names: Default::default(),
            config: Descriptor {
                media_type: String::new(),
                digest: Digest::of(b"{}"),
                size: 2,
            },
            config_bytes: Arc::new(b"{}".to_vec()),
            config_path: "config".into(),
            manifest: None,
            manifest_bytes: None,
            platform: Platform::default(),
            layers: vec![layer],
            artifact: false,
            index: None,
            input: Arc::from("test"),
            annotations: Default::default(),
        }
    }

    fn read_all(image: &Image, form: LayerForm) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        open_layer(image, &image.layers[0], form)?
            .read_to_end(&mut out)
            .map_err(|e| Error::io("layer", e))?;
        Ok(out)
    }

    #[test]
    fn both_forms_verify_compressed_layers() {
        let dir = tempfile::tempdir().unwrap();
        let content: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let image = image_with(dir.path(), &gzip(&content), &content);
        assert_eq!(read_all(&image, LayerForm::Uncompressed).unwrap(), content);
        assert_eq!(read_all(&image, LayerForm::Stored).unwrap(), gzip(&content));
        // The config's diff_id disagrees with the content: both forms fail.
        let mut wrong = image.clone();
        wrong.layers[0].diff_id = Some(Digest::of(b"something else"));
        for form in [LayerForm::Stored, LayerForm::Uncompressed] {
            assert!(
                matches!(
                    read_all(&wrong, form).map_err(|e| e.without_input().clone()),
                    Err(Error::DiffIdMismatch { .. })
                ),
                "{form:?}"
            );
        }
    }

    #[test]
    fn corrupt_and_truncated_compression_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let content = vec![7u8; 1_000_000];
        let mut bad = gzip(&content);
        let n = bad.len();
        bad[n / 2] ^= 0xff;
        let image = image_with(dir.path(), &bad, &content);
        for form in [LayerForm::Stored, LayerForm::Uncompressed] {
            let err = read_all(&image, form).unwrap_err();
            assert!(err.to_string().contains("layer"), "{form:?}: {err}");
        }
        let cut = gzip(&content)[..n / 2].to_vec();
        let image = image_with(dir.path(), &cut, &content);
        for form in [LayerForm::Stored, LayerForm::Uncompressed] {
            assert!(read_all(&image, form).is_err(), "{form:?}");
        }
    }

    /// A layer reader dropped after a partial read stops its threads and returns: a
    /// decompressing worker blocked on its full queue, a diff_id worker waiting for more
    /// stored bytes, a read-ahead thread holding full buffers. Each reader's drop joins
    /// its threads, so the drop returning proves none was left blocked; it runs on a
    /// thread of its own so that a regression fails here instead of hanging the suite.
    #[test]
    fn a_reader_dropped_early_stops_its_threads() {
        let dir = tempfile::tempdir().unwrap();
        // 8 MB: more than the decompression queue and the read-ahead buffers hold.
        let content: Vec<u8> = (0..8_000_000u32).map(|i| (i % 251) as u8).collect();
        let gzipped = gzip(&content);
        std::fs::create_dir(dir.path().join("gzip")).unwrap();
        std::fs::create_dir(dir.path().join("plain")).unwrap();
        let compressed = image_with(&dir.path().join("gzip"), &gzipped, &content);
        let plain = image_with(&dir.path().join("plain"), &content, &content);
        let cases = [
            (
                "gzip, stored",
                &compressed,
                LayerForm::Stored,
                &gzipped,
                false,
            ),
            (
                "gzip, uncompressed",
                &compressed,
                LayerForm::Uncompressed,
                &content,
                false,
            ),
            (
                "plain, read ahead",
                &plain,
                LayerForm::Stored,
                &content,
                true,
            ),
        ];
        for (case, image, form, expected, read_ahead) in cases {
            let (dropped, done) = std::sync::mpsc::channel();
            let owned = image.clone();
            let reading = std::thread::spawn(move || {
                let layer = &owned.layers[0];
                let mut r = open_layer_with(&owned, layer, form, true, read_ahead).unwrap();
                let mut first = vec![0u8; 1000];
                r.read_exact(&mut first).unwrap();
                drop(r);
                let _ = dropped.send(());
                first
            });
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                done.recv_timeout(std::time::Duration::from_secs(120))
            {
                panic!("{case}: dropping the reader did not return: a thread was left blocked");
            }
            let first = reading.join().expect("the reading thread panicked");
            assert_eq!(first, expected[..1000], "{case}");
            // Nothing was left half-done: the same layer then reads whole and verifies.
            let mut all = Vec::new();
            open_layer_with(image, &image.layers[0], form, true, read_ahead)
                .unwrap()
                .read_to_end(&mut all)
                .unwrap();
            assert!(all == **expected, "{case}: the whole layer differs");
        }
    }

    #[test]
    fn a_layer_over_a_decoder_memory_cap_is_refused_in_both_forms() {
        let dir = tempfile::tempdir().unwrap();
        let content = b"tar bytes".to_vec();
        // A zstd frame of one raw block whose header asks for a 2 GiB window.
        let mut stored = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, 21 << 3];
        stored.extend_from_slice(&(((content.len() as u32) << 3) | 1).to_le_bytes()[..3]);
        stored.extend_from_slice(&content);
        let image = image_with(dir.path(), &stored, &content);
        for form in [LayerForm::Stored, LayerForm::Uncompressed] {
            let err = read_all(&image, form).unwrap_err();
            let msg = err.to_string();
            assert_eq!(err.input(), Some("test"), "{msg}");
            assert!(
                matches!(err.without_input(), Error::Unsupported(_)),
                "{form:?}: {msg}"
            );
            assert!(msg.contains("layer") && msg.contains("memory"), "{msg}");
        }
    }
}
