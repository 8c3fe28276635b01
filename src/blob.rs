//! Reading layers with verification as they stream: the stored digest and size, and the
//! uncompressed digest against the config's diff_id, all checked in the same pass.

use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex};

use crate::digest::{Digest, HashSink, Hasher};
use crate::error::{Error, Result};
use crate::image::{Image, Layer};
use crate::media::{Compression, DecodingWriter};

/// Which bytes of a layer to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerForm {
    /// The bytes as stored (possibly compressed).
    Stored,
    /// The uncompressed tar.
    Uncompressed,
}

/// Open `layer` of `image` for reading in `form`. The reader fails (instead of ending
/// cleanly) if the stored bytes do not match the layer's digest and size, or the
/// uncompressed bytes do not match its diff_id.
pub fn open_layer(image: &Image, layer: &Layer, form: LayerForm) -> Result<Box<dyn Read + Send>> {
    let file = layer.file.as_ref().ok_or_else(|| Error::Missing {
        file: layer.path.clone(),
        what: format!("layer {} of image {}", layer.digest, image.display_name()),
    })?;
    let check = Check {
        image: image.display_name(),
        path: layer.path.clone(),
        digest: layer.digest.clone(),
        size: layer.size,
        diff_id: layer.diff_id.clone(),
        compression: layer.compression,
    };
    if form == LayerForm::Stored || layer.compression == Compression::None {
        let same_hash =
            layer.compression == Compression::None && layer.diff_id.as_ref() == Some(&layer.digest);
        let diff = match (&layer.diff_id, same_hash) {
            (Some(_), false) => Some(
                DecodingWriter::new(layer.compression, HashSink::default())
                    .map_err(|e| Error::io(format!("reading {}", layer.path), e))?,
            ),
            _ => None,
        };
        return Ok(Box::new(StoredReader {
            inner: file.open()?,
            stored: Hasher::new(),
            diff,
            check,
            done: false,
        }));
    }
    let stored = Arc::new(Mutex::new(Hasher::new()));
    let tap = Tap {
        inner: file.open()?,
        hasher: Arc::clone(&stored),
    };
    let decoder = layer
        .compression
        .decoder(tap)
        .map_err(|e| Error::io(format!("reading {}", layer.path), e))?;
    Ok(Box::new(UncompressedReader {
        decoder,
        stored,
        file: file.clone(),
        diff: Hasher::new(),
        check,
        done: false,
    }))
}

/// Read a whole layer, verifying it, without keeping the bytes.
pub fn verify_layer(image: &Image, layer: &Layer) -> Result<()> {
    let mut reader = open_layer(image, layer, LayerForm::Stored)?;
    io::copy(&mut reader, &mut io::sink())
        .map_err(|e| Error::io(format!("reading {}", layer.path), e))?;
    Ok(())
}

/// What a layer must turn out to be.
struct Check {
    image: String,
    path: String,
    digest: Digest,
    size: u64,
    diff_id: Option<Digest>,
    compression: Compression,
}

impl Check {
    fn stored(&self, hasher: Hasher) -> Result<()> {
        let (actual, len) = hasher.finish();
        if len != self.size {
            return Err(Error::SizeMismatch {
                file: self.path.clone(),
                expected: self.size,
                actual: len,
            });
        }
        if actual != self.digest {
            // An uncompressed layer's digest is its diff_id: report it as such.
            if self.compression == Compression::None && self.diff_id.as_ref() == Some(&self.digest)
            {
                return Err(Error::DiffIdMismatch {
                    image: self.image.clone(),
                    file: self.path.clone(),
                    expected: self.digest.clone(),
                    actual,
                });
            }
            return Err(Error::DigestMismatch {
                file: self.path.clone(),
                expected: self.digest.clone(),
                actual,
            });
        }
        Ok(())
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
        if e.get_ref().is_some_and(|i| i.is::<Error>()) {
            return e;
        }
        Error::malformed(
            self.path.clone(),
            format!("layer is not valid {} data: {e}", self.compression.name()),
        )
        .into_io()
    }
}

/// Passes the stored bytes through; hashes them, and feeds them to a decompressor whose
/// output is hashed for the diff_id.
struct StoredReader {
    inner: Box<dyn Read + Send>,
    stored: Hasher,
    diff: Option<DecodingWriter<HashSink>>,
    check: Check,
    done: bool,
}

impl StoredReader {
    fn finish(&mut self) -> Result<()> {
        self.check.stored(std::mem::take(&mut self.stored))?;
        let uncompressed = match self.diff.take() {
            Some(diff) => {
                diff.finish()
                    .map_err(|e| Error::io("", self.check.corrupt(e)))?
                    .hasher
                    .finish()
                    .0
            }
            None => self.check.digest.clone(),
        };
        self.check.uncompressed(uncompressed)
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
            diff.write_all(&buf[..n])
                .map_err(|e| self.check.corrupt(e))?;
        }
        Ok(n)
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

/// Yields the uncompressed bytes; at the end, hashes any stored bytes the decoder left
/// unread and checks both digests.
struct UncompressedReader {
    decoder: Box<dyn Read + Send>,
    stored: Arc<Mutex<Hasher>>,
    file: crate::tree::FileRef,
    diff: Hasher,
    check: Check,
    done: bool,
}

impl UncompressedReader {
    fn finish(&mut self) -> Result<()> {
        let mut stored =
            std::mem::take(&mut *self.stored.lock().unwrap_or_else(|p| p.into_inner()));
        let mut rest = self.file.open_at(stored.len())?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = rest
                .read(&mut buf)
                .map_err(|e| Error::io(format!("reading {}", self.check.path), e))?;
            if n == 0 {
                break;
            }
            stored.update(&buf[..n]);
        }
        self.check.stored(stored)?;
        self.check
            .uncompressed(std::mem::take(&mut self.diff).finish().0)
    }
}

impl Read for UncompressedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        let n = match self.decoder.read(buf) {
            Ok(n) => n,
            Err(e) => {
                self.done = true;
                // A short or corrupt stored blob is better reported by its digest.
                if self.file.size != self.check.size {
                    return Err(Error::SizeMismatch {
                        file: self.check.path.clone(),
                        expected: self.check.size,
                        actual: self.file.size,
                    }
                    .into_io());
                }
                return Err(self.check.corrupt(e));
            }
        };
        if n == 0 {
            self.done = true;
            self.finish().map_err(Error::into_io)?;
            return Ok(0);
        }
        self.diff.update(&buf[..n]);
        Ok(n)
    }
}
