//! Writing blobs (configs, manifests, layers) under a prefix of an output, once each
//! and verified as they stream, several layers at a time when the output allows it.
//! Shared by every writer that stores content-addressed blobs (OCI, `dir:`, the Docker
//! >= 25 hybrid).

use std::collections::HashMap;

use crate::compress;
use crate::container::{ParallelFiles, TreeWriter};
use crate::error::{Error, Result};
use crate::layer::{open_layer, open_layer_in_turn, verify_layer, LayerForm};
use crate::model::digest::Digest;
use crate::model::image::{Descriptor, Image, Layer};
use crate::model::media::Compression;
use crate::progress::{Progress, Reporting};

/// Writes blobs under a prefix, once each, verifying every byte on the way.
pub(crate) struct BlobWriter<'w> {
    progress: &'w dyn Progress,
    out: &'w mut dyn TreeWriter,
    prefix: &'static str,
    written: HashMap<Digest, u64>,
    /// Layers written whose source recorded no digest, by their path in the source.
    by_source: HashMap<String, (Digest, u64)>,
    /// Layers compressed anew, by diff_id.
    compressed: HashMap<String, (Digest, u64)>,
}

impl<'w> BlobWriter<'w> {
    pub(crate) fn new(
        out: &'w mut dyn TreeWriter,
        prefix: &'static str,
        progress: &'w dyn Progress,
    ) -> Self {
        BlobWriter {
            progress,
            out,
            prefix,
            written: HashMap::new(),
            by_source: HashMap::new(),
            compressed: HashMap::new(),
        }
    }

    pub(crate) fn path(&self, digest: &Digest) -> String {
        format!("{}{}", self.prefix, digest.hex())
    }

    /// Write small bytes (a config or manifest) as a blob.
    pub(crate) fn put_bytes(&mut self, bytes: &[u8]) -> Result<Descriptor> {
        let digest = Digest::of(bytes);
        if !self.written.contains_key(&digest) {
            let path = self.path(&digest);
            let size = bytes.len() as u64;
            if self
                .out
                .existing_blob(&path, &digest, Some(size))?
                .is_none()
            {
                self.out.file(&path, size, &mut &bytes[..])?;
            }
            self.written.insert(digest.clone(), size);
        }
        Ok(Descriptor {
            media_type: String::new(),
            digest,
            size: bytes.len() as u64,
        })
    }

    /// Write the layers of `image` that are not yet written, several at a time when the
    /// output allows it (a directory). [`BlobWriter::put_layer`] then finds them done.
    /// Layers without a form (compressed anew: their digest is known only once
    /// written, and the compressor has every core already) are left for later.
    pub(crate) fn prefetch_layers(
        &mut self,
        image: &Image,
        forms: &[Option<LayerForm>],
    ) -> Result<()> {
        let Some(parallel) = self.out.parallel() else {
            return Ok(());
        };
        let mut jobs: Vec<(&Layer, LayerForm, Digest)> = Vec::new();
        for (layer, &form) in image.layers.iter().zip(forms) {
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
            if self.written.contains_key(&target) || jobs.iter().any(|(_, _, d)| *d == target) {
                continue;
            }
            if let Some(size) = self.existing(layer, form, &target)? {
                self.written.insert(target, size);
                continue;
            }
            jobs.push((layer, form, target));
        }
        let threads = parallel.jobs();
        if threads.min(jobs.len()) < 2 {
            return Ok(());
        }
        let (prefix, progress) = (self.prefix, self.progress);
        let results = crate::pool::run_all(&jobs, threads, |(layer, form, target)| {
            let path = format!("{prefix}{}", target.hex());
            if let Some(size) = adopt_spooled(image, layer, *form, &path, parallel, progress)? {
                return Ok(size);
            }
            open_layer(image, layer, *form).and_then(|reader| {
                let mut reader = Reporting::new(reader, progress, &layer.path, layer.size);
                parallel.file_shared(&path, &mut reader)
            })
        });
        for ((_, _, target), result) in jobs.iter().zip(results) {
            match result {
                Some(Ok(size)) => {
                    self.written.insert(target.clone(), size);
                }
                Some(Err(e)) => return Err(e),
                None => {}
            }
        }
        Ok(())
    }

    /// The size of the blob `target` (layer in `form`) when the destination holds it
    /// already, verified.
    fn existing(&self, layer: &Layer, form: LayerForm, target: &Digest) -> Result<Option<u64>> {
        let size = match form {
            LayerForm::Stored => Some(layer.size),
            LayerForm::Uncompressed => {
                (layer.compression == Compression::None).then_some(layer.size)
            }
        };
        self.out.existing_blob(&self.path(target), target, size)
    }

    /// Write a layer in `form`; returns the digest, size and compression written.
    pub(crate) fn put_layer(
        &mut self,
        image: &Image,
        layer: &Layer,
        form: LayerForm,
    ) -> Result<(Digest, u64, Compression)> {
        let (digest, compression, known_size) = match form {
            LayerForm::Stored => (layer.digest.clone(), layer.compression, Some(layer.size)),
            LayerForm::Uncompressed => {
                let diff_id = layer.diff_id.clone().ok_or_else(|| {
                    Error::Unsupported(format!(
                        "{}: cannot decompress a layer of an artifact",
                        layer.path
                    ))
                })?;
                let size = (layer.compression == Compression::None).then_some(layer.size);
                (Some(diff_id), Compression::None, size)
            }
        };
        let Some(digest) = digest else {
            // The source records no digest: it is computed as the layer streams, and
            // names the blob once written.
            if let Some((digest, size)) = self.by_source.get(&layer.path) {
                return Ok((digest.clone(), *size, compression));
            }
            let reader = open_layer_in_turn(image, layer, form)?;
            let mut reader = Reporting::new(reader, self.progress, &layer.path, layer.size);
            let (digest, size) = self.out.file_by_digest(self.prefix, &mut reader)?;
            self.written.insert(digest.clone(), size);
            self.by_source
                .insert(layer.path.clone(), (digest.clone(), size));
            return Ok((digest, size, compression));
        };
        if let Some(size) = self.written.get(&digest) {
            return Ok((digest, *size, compression));
        }
        if let Some(size) = self.existing(layer, form, &digest)? {
            self.written.insert(digest.clone(), size);
            return Ok((digest, size, compression));
        }
        let path = self.path(&digest);
        if let Some(parallel) = self.out.parallel() {
            if let Some(size) = adopt_spooled(image, layer, form, &path, parallel, self.progress)? {
                self.written.insert(digest.clone(), size);
                return Ok((digest, size, compression));
            }
        }
        let reader = open_layer_in_turn(image, layer, form)?;
        let mut reader = Reporting::new(reader, self.progress, &layer.path, layer.size);
        let size = match known_size {
            Some(size) => {
                self.out.file(&path, size, &mut reader)?;
                size
            }
            None => self.out.file_unsized(&path, &mut reader)?,
        };
        self.written.insert(digest.clone(), size);
        Ok((digest, size, compression))
    }

    /// Write a layer uncompressed, then compressed with `target` at `level`; returns
    /// the digest, size and compression written. The same content compressed twice
    /// gives the same bytes, so a layer shared by several images is compressed once.
    pub(crate) fn put_compressed(
        &mut self,
        image: &Image,
        layer: &Layer,
        target: Compression,
        level: i32,
    ) -> Result<(Digest, u64, Compression)> {
        let key = match &layer.diff_id {
            Some(diff_id) => diff_id.to_string(),
            None => format!("path:{}", layer.path),
        };
        if let Some((digest, size)) = self.compressed.get(&key) {
            return Ok((digest.clone(), *size, target));
        }
        let reader = open_layer(image, layer, LayerForm::Uncompressed)?;
        let reader = Reporting::new(reader, self.progress, &layer.path, layer.size);
        let mut compressed =
            compress::compressing_reader(target, level, crate::pool::cores(), Box::new(reader))
                .map_err(|e| Error::io(format!("compressing {}", layer.path), e))?;
        let (digest, size) = self.out.file_by_digest(self.prefix, &mut compressed)?;
        self.written.insert(digest.clone(), size);
        self.compressed.insert(key, (digest.clone(), size));
        Ok((digest, size, target))
    }
}

/// Link the spooled file holding `layer` in at `path` instead of copying it, once every
/// byte of it is verified: its size when done, `None` when it cannot be (not a spooled
/// file, a form that changes the bytes, an output that cannot link it), and the caller
/// then writes the layer.
fn adopt_spooled(
    image: &Image,
    layer: &Layer,
    form: LayerForm,
    path: &str,
    out: &dyn ParallelFiles,
    progress: &dyn Progress,
) -> Result<Option<u64>> {
    let same_bytes = form == LayerForm::Stored || layer.compression == Compression::None;
    let Some(file) = layer.blob.as_deref().and_then(|b| b.whole_file()) else {
        return Ok(None);
    };
    if !same_bytes {
        return Ok(None);
    }
    // Verifying the layer checks its digest and diff_id (against what the spool
    // hashed, or by reading it): an error here is a layer that is not what its image
    // says, and nothing is linked.
    verify_layer(image, layer, progress)?;
    Ok(out.adopt(path, file)?.then_some(layer.size))
}
