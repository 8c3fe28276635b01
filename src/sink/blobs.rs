//! Putting an image's blobs (config, layers) into an [`ImageDestination`], each
//! verified as it streams, several layers at a time when the destination allows it.

use std::collections::HashMap;

use super::{BlobInfo, BlobRole, ConcurrentBlobs, ImageDestination};
use crate::compress;
use crate::error::{Error, Result};
use crate::layer::{open_layer, open_layer_in_turn, verify_layer, LayerForm};
use crate::model::digest::Digest;
use crate::model::image::{Descriptor, Image, Layer};
use crate::model::media::Compression;
use crate::progress::{Progress, Reporting};

/// Puts blobs into a destination, verifying every byte on the way. Work that gives a
/// digest (hashing a layer whose source records none, compressing one anew) is done
/// once per run, however many images share the layer.
pub(crate) struct BlobWriter<'w, 'd> {
    progress: &'w dyn Progress,
    out: &'w mut (dyn ImageDestination + 'd),
    /// Layers put whose source recorded no digest, by their path in the source.
    by_source: &'w mut HashMap<String, (Digest, u64)>,
    /// Layers compressed anew, by diff_id.
    compressed: &'w mut HashMap<String, (Digest, u64)>,
}

/// What a [`BlobWriter`] remembers from one image to the next.
#[derive(Default)]
pub(crate) struct Computed {
    by_source: HashMap<String, (Digest, u64)>,
    compressed: HashMap<String, (Digest, u64)>,
}

impl<'w, 'd> BlobWriter<'w, 'd> {
    pub(crate) fn new(
        out: &'w mut (dyn ImageDestination + 'd),
        computed: &'w mut Computed,
        progress: &'w dyn Progress,
    ) -> Self {
        BlobWriter {
            progress,
            out,
            by_source: &mut computed.by_source,
            compressed: &mut computed.compressed,
        }
    }

    /// Put the config of `image`.
    pub(crate) fn put_config(&mut self, image: &Image) -> Result<Descriptor> {
        let bytes = &image.config_bytes[..];
        let digest = Digest::of(bytes);
        let size = bytes.len() as u64;
        let info = BlobInfo {
            digest: Some(&digest),
            size: Some(size),
            image,
            role: BlobRole::Config,
        };
        if self.out.try_reusing_blob(&info)?.is_none() {
            self.out.put_blob(&info, &mut &bytes[..])?;
        }
        Ok(Descriptor {
            media_type: String::new(),
            digest,
            size,
        })
    }

    /// Put the layers of `image` that the destination lacks, several at a time when it
    /// takes them so (a directory, a registry). [`BlobWriter::put_layer`] then finds
    /// them there. Layers without a form (compressed anew: their digest is known only
    /// once written, and the compressor has every core already) are left for later.
    pub(crate) fn prefetch_layers(
        &mut self,
        image: &Image,
        forms: &[Option<LayerForm>],
    ) -> Result<()> {
        let mut jobs: Vec<(usize, LayerForm, Digest)> = Vec::new();
        {
            let Some(concurrent) = self.out.concurrent() else {
                return Ok(());
            };
            if concurrent.jobs() < 2 {
                return Ok(());
            }
        }
        for (index, (layer, &form)) in image.layers.iter().zip(forms).enumerate() {
            let Some(form) = form else {
                continue;
            };
            // A layer whose digest is computed as it is written goes in order, later.
            let Some(target) = (match form {
                LayerForm::Stored => layer.digest.clone(),
                LayerForm::Uncompressed => layer.diff_id.clone(),
            }) else {
                continue;
            };
            if jobs.iter().any(|(_, _, d)| *d == target) {
                continue;
            }
            let info = layer_info(image, index, form, &target);
            if self.out.try_reusing_blob(&info)?.is_some() {
                continue;
            }
            jobs.push((index, form, target));
        }
        let Some(concurrent) = self.out.concurrent() else {
            return Ok(());
        };
        let threads = concurrent.jobs();
        if threads.min(jobs.len()) < 2 {
            return Ok(());
        }
        let progress = self.progress;
        let concurrent = &*concurrent;
        let results = crate::pool::run_all(&jobs, threads, |(index, form, target)| {
            let layer = &image.layers[*index];
            if adopt_spooled(image, layer, *form, target, concurrent, progress)? {
                return Ok(());
            }
            open_layer(image, layer, *form).and_then(|reader| {
                let mut reader = Reporting::new(reader, progress, &layer.path, layer.size);
                let info = layer_info(image, *index, *form, target);
                concurrent.put_blob_shared(&info, &mut reader).map(drop)
            })
        });
        for result in results {
            if let Some(Err(e)) = result {
                return Err(e);
            }
        }
        Ok(())
    }

    /// Put layer `index` of `image` in `form`, unless the destination holds it; returns
    /// the digest, size and compression written.
    pub(crate) fn put_layer(
        &mut self,
        image: &Image,
        index: usize,
        form: LayerForm,
    ) -> Result<(Digest, u64, Compression)> {
        let layer = &image.layers[index];
        let digest = match form {
            LayerForm::Stored => layer.digest.clone(),
            LayerForm::Uncompressed => Some(layer.diff_id.clone().ok_or_else(|| {
                Error::Unsupported(format!(
                    "{}: cannot decompress a layer of an artifact",
                    layer.path
                ))
            })?),
        };
        let (compression, _) = form_of(layer, form);
        let role = BlobRole::Layer { index, compression };
        let Some(digest) = digest else {
            // The source records no digest: it is computed as the layer streams, and
            // names the blob once written.
            if let Some((digest, size)) = self.by_source.get(&layer.path).cloned() {
                if self.reused(image, role, &digest, Some(size))? {
                    return Ok((digest, size, compression));
                }
            }
            let reader = open_layer_in_turn(image, layer, form)?;
            let mut reader = Reporting::new(reader, self.progress, &layer.path, layer.size);
            let info = BlobInfo {
                digest: None,
                size: None,
                image,
                role,
            };
            let (digest, size) = self.out.put_blob(&info, &mut reader)?;
            self.by_source
                .insert(layer.path.clone(), (digest.clone(), size));
            return Ok((digest, size, compression));
        };
        let info = layer_info(image, index, form, &digest);
        if let Some(size) = self.out.try_reusing_blob(&info)? {
            return Ok((digest, size, compression));
        }
        if adoptable(layer, form) {
            if let Some(concurrent) = self.out.concurrent() {
                if adopt_spooled(image, layer, form, &digest, &*concurrent, self.progress)? {
                    // The same bytes as the source's: its size.
                    return Ok((digest, layer.size, compression));
                }
            }
        }
        let reader = open_layer_in_turn(image, layer, form)?;
        let mut reader = Reporting::new(reader, self.progress, &layer.path, layer.size);

        let (_, size) = self.out.put_blob(&info, &mut reader)?;
        Ok((digest, size, compression))
    }

    /// Put layer `index` of `image` uncompressed, then compressed with `target` at
    /// `level`; returns the digest, size and compression written. The same content
    /// compressed twice gives the same bytes, so a layer shared by several images is
    /// compressed once.
    pub(crate) fn put_compressed(
        &mut self,
        image: &Image,
        index: usize,
        target: Compression,
        level: i32,
    ) -> Result<(Digest, u64, Compression)> {
        let layer = &image.layers[index];
        let role = BlobRole::Layer {
            index,
            compression: target,
        };
        let key = match &layer.diff_id {
            Some(diff_id) => diff_id.to_string(),
            None => format!("path:{}", layer.path),
        };
        if let Some((digest, size)) = self.compressed.get(&key).cloned() {
            if self.reused(image, role, &digest, Some(size))? {
                return Ok((digest, size, target));
            }
        }
        let reader = open_layer(image, layer, LayerForm::Uncompressed)?;
        let reader = Reporting::new(reader, self.progress, &layer.path, layer.size);
        let mut compressed =
            compress::compressing_reader(target, level, crate::pool::cores(), Box::new(reader))
                .map_err(|e| Error::io(format!("compressing {}", layer.path), e))?;
        let info = BlobInfo {
            digest: None,
            size: None,
            image,
            role,
        };
        let (digest, size) = self.out.put_blob(&info, &mut compressed)?;
        self.compressed.insert(key, (digest.clone(), size));
        Ok((digest, size, target))
    }

    /// Whether the destination holds the blob `digest`, computed for an earlier image.
    fn reused(
        &mut self,
        image: &Image,
        role: BlobRole,
        digest: &Digest,
        size: Option<u64>,
    ) -> Result<bool> {
        let info = BlobInfo {
            digest: Some(digest),
            size,
            image,
            role,
        };
        Ok(self.out.try_reusing_blob(&info)?.is_some())
    }
}

/// What layer `index` of `image` is when written in `form` as `digest`.
fn layer_info<'a>(
    image: &'a Image,
    index: usize,
    form: LayerForm,
    digest: &'a Digest,
) -> BlobInfo<'a> {
    let (compression, size) = form_of(&image.layers[index], form);
    BlobInfo {
        digest: Some(digest),
        size,
        image,
        role: BlobRole::Layer { index, compression },
    }
}

/// The compression of `layer`'s bytes in `form`, and their size when known before
/// they are read.
fn form_of(layer: &Layer, form: LayerForm) -> (Compression, Option<u64>) {
    match form {
        LayerForm::Stored => (layer.compression, Some(layer.size)),
        LayerForm::Uncompressed => (
            Compression::None,
            (layer.compression == Compression::None).then_some(layer.size),
        ),
    }
}

/// Whether `layer` in `form` is a spooled file's very bytes, which a destination may
/// adopt instead of copying.
fn adoptable(layer: &Layer, form: LayerForm) -> bool {
    let same_bytes = form == LayerForm::Stored || layer.compression == Compression::None;
    same_bytes
        && layer
            .blob
            .as_deref()
            .is_some_and(|b| b.whole_file().is_some())
}

/// Give the spooled file holding `layer` the place of blob `digest` instead of copying
/// it, once every byte of it is verified: `false` when it cannot be (not a spooled
/// file, a form that changes the bytes, a destination that cannot link it), and the
/// caller then writes the layer.
fn adopt_spooled(
    image: &Image,
    layer: &Layer,
    form: LayerForm,
    digest: &Digest,
    out: &dyn ConcurrentBlobs,
    progress: &dyn Progress,
) -> Result<bool> {
    if !adoptable(layer, form) {
        return Ok(false);
    }
    let Some(file) = layer.blob.as_deref().and_then(|b| b.whole_file()) else {
        return Ok(false);
    };
    // Verifying the layer checks its digest and diff_id (against what the spool
    // hashed, or by reading it): an error here is a layer that is not what its image
    // says, and nothing is linked.
    verify_layer(image, layer, progress)?;
    out.adopt(digest, file)
}

/// Put a blob of something attached to `image` (a referrer's config or layer) unless
/// the destination holds it, its bytes checked against `descriptor` as they stream.
pub(crate) fn put_attached_blob(
    out: &mut dyn ImageDestination,
    image: &Image,
    descriptor: &Descriptor,
    blob: &dyn crate::model::blob::Blob,
) -> Result<()> {
    let info = BlobInfo {
        digest: Some(&descriptor.digest),
        size: Some(descriptor.size),
        image,
        role: BlobRole::Attached,
    };
    if out.try_reusing_blob(&info)?.is_some() {
        return Ok(());
    }
    // Small documents (signatures, SBOMs): not counted as layers in the progress.
    let mut reader = Checked {
        inner: blob.open()?,
        hasher: crate::model::digest::Hasher::new(),
        expected: descriptor,
        what: blob.describe(),
        done: false,
    };
    out.put_blob(&info, &mut reader).map(drop)
}

/// A blob's bytes, failing instead of ending cleanly when they are more or fewer than
/// the descriptor says, or hash to another digest.
struct Checked<'d> {
    inner: Box<dyn std::io::Read + Send>,
    hasher: crate::model::digest::Hasher,
    expected: &'d Descriptor,
    what: String,
    done: bool,
}

impl std::io::Read for Checked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.done {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        let len = self.hasher.len();
        let size_error = || Error::SizeMismatch {
            file: self.what.clone(),
            expected: self.expected.size,
            actual: len,
        };
        if len > self.expected.size {
            return Err(size_error().into_io());
        }
        if n == 0 && !buf.is_empty() {
            self.done = true;
            if len != self.expected.size {
                return Err(size_error().into_io());
            }
            let (actual, _) = std::mem::take(&mut self.hasher).finish();
            if actual != self.expected.digest {
                return Err(Error::DigestMismatch {
                    file: self.what.clone(),
                    expected: self.expected.digest.clone(),
                    actual,
                }
                .into_io());
            }
        }
        Ok(n)
    }
}
