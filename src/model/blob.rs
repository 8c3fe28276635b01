//! Where a blob's bytes come from. The model holds blobs behind this trait, so an image
//! can come from an indexed tar, a directory, memory or a registry without the model
//! knowing which.

use std::fmt;
use std::io::{self, Read};
use std::sync::Arc;

use crate::error::{Error, Result};

/// The bytes of one blob (a config, a manifest, a layer) as a source holds them.
///
/// Implemented by the containers for a byte range of an indexed tar and for a file of a
/// directory, by transports for what they fetch, and here for bytes in memory
/// ([`MemoryBlob`]). A transport recognises its own blobs (to mount one, or fetch
/// ahead) by their type, through [`std::any::Any`].
///
/// ```
/// use dockhand::{open_source, Blob, Location, ReadOptions};
///
/// # let input = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/docker-save-basic/input.tar");
/// let source = open_source(&Location::parse(input)?, &ReadOptions::default())?;
/// let blob = source.images[0].layers[0].blob.as_ref().unwrap();
/// assert_eq!(blob.size(), 2560);
/// assert_eq!(blob.head(4)?.len(), 4);
/// # Ok::<(), dockhand::Error>(())
/// ```
pub trait Blob: std::any::Any + Send + Sync + fmt::Debug {
    /// A reader over the bytes from `start` on (`0` for all of them). It yields at most
    /// [`Blob::size`] bytes in all.
    fn open_at(&self, start: u64) -> Result<Box<dyn Read + Send>>;
    /// How many bytes the blob has.
    fn size(&self) -> u64;
    /// Where the bytes come from, for messages.
    fn describe(&self) -> String;

    /// The file holding exactly this blob's bytes, when it is one that nothing else
    /// writes to (a big entry of a piped input, spooled next to the output): an output
    /// on the same filesystem may link it in, once verified, instead of copying it.
    fn whole_file(&self) -> Option<&std::fs::File> {
        None
    }

    /// The sha256 of [`Blob::whole_file`]'s bytes, when this process hashed them as it
    /// wrote them there: the blob is then verified without reading it back.
    fn whole_file_digest(&self) -> Option<crate::model::digest::Digest> {
        None
    }

    /// Whether reading the bytes a second time costs little (a local file, from the
    /// page cache), so that a reader may read them twice at once rather than carry
    /// them between threads; not for bytes fetched over a network.
    fn rereading_is_cheap(&self) -> bool {
        true
    }

    /// A reader over all the bytes.
    fn open(&self) -> Result<Box<dyn Read + Send>> {
        self.open_at(0)
    }

    /// The first bytes (at most `n`), e.g. to sniff a compression.
    fn head(&self, n: usize) -> Result<Vec<u8>> {
        let mut buf = Vec::with_capacity(n);
        self.open()?
            .take(n as u64)
            .read_to_end(&mut buf)
            .map_err(|e| Error::io(format!("reading {}", self.describe()), e))?;
        Ok(buf)
    }
}

/// A blob held in memory.
///
/// ```
/// use std::{io::Read, sync::Arc};
/// use dockhand::{Blob, MemoryBlob};
///
/// let blob = MemoryBlob::new(Arc::new(b"hello".to_vec()), "a greeting");
/// assert_eq!((blob.size(), blob.describe().contains("a greeting")), (5, true));
/// let mut rest = String::new();
/// blob.open_at(1)?.read_to_string(&mut rest).unwrap();
/// assert_eq!(rest, "ello");
/// # Ok::<(), dockhand::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct MemoryBlob {
    bytes: Arc<Vec<u8>>,
    label: String,
}

impl MemoryBlob {
    /// `bytes`, called `label` in messages.
    pub fn new(bytes: Arc<Vec<u8>>, label: impl Into<String>) -> MemoryBlob {
        MemoryBlob {
            bytes,
            label: label.into(),
        }
    }
}

impl Blob for MemoryBlob {
    fn open_at(&self, start: u64) -> Result<Box<dyn Read + Send>> {
        let start = start.min(self.bytes.len() as u64);
        let mut cursor = io::Cursor::new(Arc::clone(&self.bytes));
        cursor.set_position(start);
        Ok(Box::new(ArcCursor(cursor)))
    }
    fn size(&self) -> u64 {
        self.bytes.len() as u64
    }
    fn describe(&self) -> String {
        self.label.clone()
    }
}

/// `io::Cursor` over shared bytes (`Arc<Vec<u8>>` is not `AsRef<[u8]>`).
struct ArcCursor(io::Cursor<Arc<Vec<u8>>>);

impl Read for ArcCursor {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let pos = self.0.position() as usize;
        let bytes = self.0.get_ref();
        let n = buf.len().min(bytes.len().saturating_sub(pos));
        buf[..n].copy_from_slice(&bytes[pos..pos + n]);
        self.0.set_position((pos + n) as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_blobs_read_from_any_offset() {
        let blob = MemoryBlob::new(Arc::new(b"hello world".to_vec()), "greeting");
        let mut out = String::new();
        blob.open_at(6).unwrap().read_to_string(&mut out).unwrap();
        assert_eq!(out, "world");
        assert_eq!(blob.head(5).unwrap(), b"hello");
        assert_eq!(blob.size(), 11);
        let mut rest = Vec::new();
        blob.open_at(99).unwrap().read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());
    }
}
