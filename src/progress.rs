//! What a conversion reports as it goes. The library calls a [`Progress`] the caller
//! gives; the binary implements it (it counts what was written for its summary, and
//! will drive progress bars).

use std::io::{self, Read};

/// Receives the progress of writing blobs. Layers of a directory output are written
/// on several threads at once, so calls come from several threads.
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use dockhand::{open_source, verify, Location, Progress, ReadOptions};
///
/// struct Done(AtomicUsize);
/// impl Progress for Done {
///     fn layer_done(&self, _path: &str) {
///         self.0.fetch_add(1, Ordering::Relaxed);
///     }
/// }
/// # let input = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/docker-save-basic/input.tar");
/// let source = open_source(&Location::parse(input)?, &ReadOptions::default())?;
/// let done = Done(AtomicUsize::new(0));
/// verify(&source.images, &done)?;
/// assert_eq!(done.0.into_inner(), 3);
/// # Ok::<(), dockhand::Error>(())
/// ```
pub trait Progress: Sync {
    /// The work begins: about `bytes` of layers to read, in `layers` layers (what is
    /// already at the destination is skipped, so the real amount may be less).
    fn planned(&self, _layers: usize, _bytes: u64) {}
    /// A layer starts: its path in the source, and its size there.
    fn layer_started(&self, _path: &str, _size: u64) {}
    /// `bytes` more of a layer were read from the source (and verified).
    fn advanced(&self, _bytes: u64) {}
    /// `bytes` more of the layer at `path` were read; by default, [`Progress::advanced`].
    fn layer_advanced(&self, _path: &str, bytes: u64) {
        self.advanced(bytes);
    }
    /// A layer was written whole.
    fn layer_done(&self, _path: &str) {}
}

/// The layers `images` list, once each (by digest, or by path when the source records
/// none), and their stored bytes: what [`Progress::planned`] is told.
pub(crate) fn plan_of(images: &[crate::model::image::Image]) -> (usize, u64) {
    let mut seen = std::collections::HashSet::new();
    let mut layers = 0;
    let mut bytes = 0;
    for layer in images.iter().flat_map(|i| &i.layers) {
        let key = match &layer.digest {
            Some(d) => d.to_string(),
            None => format!("path:{}", layer.path),
        };
        if seen.insert(key) {
            layers += 1;
            bytes += layer.size;
        }
    }
    (layers, bytes)
}

/// Reports nothing.
///
/// ```
/// use dockhand::{open_source, verify, Location, NoProgress, ReadOptions};
///
/// # let input = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/docker-save-basic/input.tar");
/// let source = open_source(&Location::parse(input)?, &ReadOptions::default())?;
/// let report = verify(&source.images, &NoProgress)?;
/// assert_eq!(report.bytes, 2560 + 3072 + 4096);
/// # Ok::<(), dockhand::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}

/// A reader that tells `progress` how much of a layer has been read, and when the
/// layer ends.
pub(crate) struct Reporting<'p, R> {
    inner: R,
    progress: &'p dyn Progress,
    path: String,
    done: bool,
}

impl<'p, R> Reporting<'p, R> {
    pub(crate) fn new(inner: R, progress: &'p dyn Progress, path: &str, size: u64) -> Self {
        progress.layer_started(path, size);
        Reporting {
            inner,
            progress,
            path: path.to_string(),
            done: false,
        }
    }
}

impl<R: Read> Read for Reporting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            self.progress.layer_advanced(&self.path, n as u64);
        } else if !self.done && !buf.is_empty() {
            self.done = true;
            self.progress.layer_done(&self.path);
        }
        Ok(n)
    }
}
