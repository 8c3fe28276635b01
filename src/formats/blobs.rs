//! Writing blobs (configs, manifests, layers) into a [`BlobDestination`], once each and
//! verified as they stream, several layers at a time when the store allows it. Shared
//! by every writer that stores content-addressed blobs: the OCI, `dir:` and Docker >=
//! 25 hybrid layouts (files under a prefix of a tree, [`TreeBlobs`]) and a registry
//! (uploads).

use std::collections::HashMap;
use std::io::Read;

use crate::compress;
use crate::container::{ParallelFiles, TreeWriter};
use crate::error::{Error, Result};
use crate::layer::{open_layer, open_layer_in_turn, verify_layer, LayerForm};
use crate::model::digest::Digest;
use crate::model::image::{Descriptor, Image, Layer};
use crate::model::media::Compression;
use crate::progress::{Progress, Reporting};

/// Where blobs go, by digest: files of a layout, or uploads to a registry.
pub(crate) trait BlobDestination {
    /// The size of the blob `digest` when the store holds it already with exactly
    /// these bytes (and `size`, when known), so that it need not be put again.
    fn existing(&self, digest: &Digest, size: Option<u64>) -> Result<Option<u64>>;
    /// Put the blob `digest` from `data`, which the caller verifies as it streams
    /// (`size` when known); returns its size.
    fn put(&mut self, digest: &Digest, size: Option<u64>, data: &mut dyn Read) -> Result<u64>;
    /// Put a blob whose digest is known only once all of `data` is read (a layer
    /// compressed anew, or one whose source records no digest); returns that digest
    /// and the size.
    fn put_hashing(&mut self, data: &mut dyn Read) -> Result<(Digest, u64)>;
    /// A handle for putting blobs from several threads at once, when the store can.
    fn parallel(&self) -> Option<SharedStore<'_>>;
}

/// A blob store that takes blobs from several threads at once.
pub(crate) trait ParallelBlobs: Sync {
    /// Like [`BlobDestination::put`] with no size, callable concurrently for different blobs.
    fn put_shared(&self, digest: &Digest, data: &mut dyn Read) -> Result<u64>;
    /// How many blobs to put at once.
    fn jobs(&self) -> usize;
}

/// The concurrent side of a [`BlobDestination`]: files of a tree, or a store's own.
#[derive(Clone, Copy)]
pub(crate) enum SharedStore<'a> {
    /// Files named `prefix` + hex digest in a tree that writes several at once.
    Files {
        files: &'a dyn ParallelFiles,
        prefix: &'static str,
    },
    /// A store that takes blobs concurrently itself.
    Blobs(&'a dyn ParallelBlobs),
}

impl SharedStore<'_> {
    fn put(&self, digest: &Digest, data: &mut dyn Read) -> Result<u64> {
        match self {
            SharedStore::Files { files, prefix } => {
                files.file_shared(&format!("{prefix}{}", digest.hex()), data)
            }
            SharedStore::Blobs(blobs) => blobs.put_shared(digest, data),
        }
    }

    /// Give `file` (verified) the blob's name without copying it, where the store can.
    fn adopt(&self, digest: &Digest, file: &std::fs::File) -> Result<bool> {
        match self {
            SharedStore::Files { files, prefix } => {
                files.adopt(&format!("{prefix}{}", digest.hex()), file)
            }
            SharedStore::Blobs(_) => Ok(false),
        }
    }

    fn jobs(&self) -> usize {
        match self {
            SharedStore::Files { files, .. } => files.jobs(),
            SharedStore::Blobs(blobs) => blobs.jobs(),
        }
    }
}

/// Blobs as files of a tree named `prefix` + hex digest (`blobs/sha256/` in an OCI
/// layout, none in a `dir:` layout).
pub(crate) struct TreeBlobs<'w> {
    pub tree: &'w mut dyn TreeWriter,
    pub prefix: &'static str,
}

impl TreeBlobs<'_> {
    fn path(&self, digest: &Digest) -> String {
        format!("{}{}", self.prefix, digest.hex())
    }
}

impl BlobDestination for TreeBlobs<'_> {
    fn existing(&self, digest: &Digest, size: Option<u64>) -> Result<Option<u64>> {
        self.tree.existing_blob(&self.path(digest), digest, size)
    }
    fn put(&mut self, digest: &Digest, size: Option<u64>, data: &mut dyn Read) -> Result<u64> {
        let path = self.path(digest);
        match size {
            Some(size) => self.tree.file(&path, size, data).map(|()| size),
            None => self.tree.file_unsized(&path, data),
        }
    }
    fn put_hashing(&mut self, data: &mut dyn Read) -> Result<(Digest, u64)> {
        self.tree.file_by_digest(self.prefix, data)
    }
    fn parallel(&self) -> Option<SharedStore<'_>> {
        let prefix = self.prefix;
        self.tree
            .parallel()
            .map(|files| SharedStore::Files { files, prefix })
    }
}

/// Writes blobs into a store, once each, verifying every byte on the way.
pub(crate) struct BlobWriter<'w> {
    progress: &'w dyn Progress,
    out: &'w mut dyn BlobDestination,
    written: HashMap<Digest, u64>,
    /// Layers written whose source recorded no digest, by their path in the source.
    by_source: HashMap<String, (Digest, u64)>,
    /// Layers compressed anew, by diff_id.
    compressed: HashMap<String, (Digest, u64)>,
    /// Blobs the destination was asked for and does not hold, so that it is not
    /// asked again (a registry: one `HEAD` each).
    absent: std::collections::HashSet<Digest>,
}

impl<'w> BlobWriter<'w> {
    pub(crate) fn new(out: &'w mut dyn BlobDestination, progress: &'w dyn Progress) -> Self {
        BlobWriter {
            progress,
            out,
            written: HashMap::new(),
            by_source: HashMap::new(),
            compressed: HashMap::new(),
            absent: Default::default(),
        }
    }

    /// Write small bytes (a config or manifest) as a blob.
    pub(crate) fn put_bytes(&mut self, bytes: &[u8]) -> Result<Descriptor> {
        let digest = Digest::of(bytes);
        if !self.written.contains_key(&digest) {
            let size = bytes.len() as u64;
            if self.out.existing(&digest, Some(size))?.is_none() {
                self.out.put(&digest, Some(size), &mut &bytes[..])?;
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
            self.absent.insert(target.clone());
            jobs.push((layer, form, target));
        }
        let threads = parallel.jobs();
        if threads.min(jobs.len()) < 2 {
            return Ok(());
        }
        let progress = self.progress;
        let results = crate::pool::run_all(&jobs, threads, |(layer, form, target)| {
            if let Some(size) = adopt_spooled(image, layer, *form, target, parallel, progress)? {
                return Ok(size);
            }
            open_layer(image, layer, *form).and_then(|reader| {
                let mut reader = Reporting::new(reader, progress, &layer.path, layer.size);
                parallel.put(target, &mut reader)
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
        self.out.existing(target, size)
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
            let (digest, size) = self.out.put_hashing(&mut reader)?;
            self.written.insert(digest.clone(), size);
            self.by_source
                .insert(layer.path.clone(), (digest.clone(), size));
            return Ok((digest, size, compression));
        };
        if let Some(size) = self.written.get(&digest) {
            return Ok((digest, *size, compression));
        }
        if !self.absent.contains(&digest) {
            if let Some(size) = self.existing(layer, form, &digest)? {
                self.written.insert(digest.clone(), size);
                return Ok((digest, size, compression));
            }
        }
        if let Some(parallel) = self.out.parallel() {
            if let Some(size) = adopt_spooled(image, layer, form, &digest, parallel, self.progress)?
            {
                self.written.insert(digest.clone(), size);
                return Ok((digest, size, compression));
            }
        }
        let reader = open_layer_in_turn(image, layer, form)?;
        let mut reader = Reporting::new(reader, self.progress, &layer.path, layer.size);
        let size = self.out.put(&digest, known_size, &mut reader)?;
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
        let (digest, size) = self.out.put_hashing(&mut compressed)?;
        self.written.insert(digest.clone(), size);
        self.compressed.insert(key, (digest.clone(), size));
        Ok((digest, size, target))
    }
}

/// Link the spooled file holding `layer` in as the blob `digest` instead of copying it, once every
/// byte of it is verified: its size when done, `None` when it cannot be (not a spooled
/// file, a form that changes the bytes, an output that cannot link it), and the caller
/// then writes the layer.
fn adopt_spooled(
    image: &Image,
    layer: &Layer,
    form: LayerForm,
    digest: &Digest,
    out: SharedStore<'_>,
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
    Ok(out.adopt(digest, file)?.then_some(layer.size))
}
