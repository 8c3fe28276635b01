//! Writing OCI image layouts (to a directory or a tar) and the `dir:` layout.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use serde_json::{json, Map, Value};

use super::dir_transport::DIR_VERSION;
use super::oci::{ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME};
use crate::container::TreeWriter;
use crate::error::{Error, Result};
use crate::layer::{open_layer, LayerForm};
use crate::model::digest::Digest;
use crate::model::image::{Descriptor, Image, Layer};
use crate::model::media::{self, Compression, Family};

/// The `oci-layout` file dockhand writes (the same bytes as Docker >= 25).
pub const OCI_LAYOUT_FILE: &str = "{\"imageLayoutVersion\": \"1.0.0\"}";

/// Writes blobs under a prefix, once each, verifying every byte on the way.
pub(crate) struct BlobWriter<'w> {
    out: &'w mut dyn TreeWriter,
    prefix: &'static str,
    written: HashMap<Digest, u64>,
}

impl<'w> BlobWriter<'w> {
    pub(crate) fn new(out: &'w mut dyn TreeWriter, prefix: &'static str) -> Self {
        BlobWriter {
            out,
            prefix,
            written: HashMap::new(),
        }
    }

    pub(crate) fn out(&mut self) -> &mut dyn TreeWriter {
        self.out
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
    pub(crate) fn prefetch_layers(&mut self, image: &Image, forms: &[LayerForm]) -> Result<()> {
        let Some(parallel) = self.out.parallel() else {
            return Ok(());
        };
        let mut jobs: Vec<(&Layer, LayerForm, Digest)> = Vec::new();
        for (layer, &form) in image.layers.iter().zip(forms) {
            let target = match form {
                LayerForm::Stored => layer.digest.clone(),
                LayerForm::Uncompressed => match &layer.diff_id {
                    Some(d) => d.clone(),
                    None => return Ok(()),
                },
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
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(jobs.len());
        if threads < 2 {
            return Ok(());
        }
        let prefix = self.prefix;
        let next = AtomicUsize::new(0);
        let results: Vec<Mutex<Option<Result<u64>>>> =
            jobs.iter().map(|_| Mutex::new(None)).collect();
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    scope.spawn(|| loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some((layer, form, target)) = jobs.get(i) else {
                            break;
                        };
                        let result = open_layer(image, layer, *form).and_then(|mut reader| {
                            parallel.file_shared(&format!("{prefix}{}", target.hex()), &mut reader)
                        });
                        let failed = result.is_err();
                        *results[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(result);
                        if failed {
                            // Stop handing out work; the error is reported below.
                            next.store(usize::MAX / 2, Ordering::Relaxed);
                        }
                    })
                })
                .collect();
            // Join each thread (not only its closure) so none is still exiting when this returns.
            for worker in workers {
                let _ = worker.join();
            }
        });
        for ((_, _, target), result) in jobs.iter().zip(results) {
            match result.into_inner().unwrap_or_else(|p| p.into_inner()) {
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
                (diff_id, Compression::None, size)
            }
        };
        if let Some(size) = self.written.get(&digest) {
            return Ok((digest, *size, compression));
        }
        if let Some(size) = self.existing(layer, form, &digest)? {
            self.written.insert(digest.clone(), size);
            return Ok((digest, size, compression));
        }
        let path = self.path(&digest);
        let mut reader = open_layer(image, layer, form)?;
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
}

/// How layers are written to an OCI output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OciLayers {
    /// Byte for byte when OCI has a media type for their compression.
    Keep,
    /// Always uncompressed (the Docker >= 25 hybrid).
    Uncompressed,
}

/// The written form of one image: its manifest and, for docker's manifest.json, the
/// paths of its config and layers.
pub(crate) struct WrittenImage {
    pub manifest: Descriptor,
    pub manifest_bytes: Vec<u8>,
    pub config_path: String,
    pub layer_paths: Vec<String>,
}

/// Write the config and layer blobs of `image` and build its OCI manifest (which the
/// caller stores where its layout wants it).
pub(crate) fn put_oci_image(
    blobs: &mut BlobWriter,
    image: &Image,
    layers_mode: OciLayers,
) -> Result<WrittenImage> {
    let mut layer_descs = Vec::with_capacity(image.layers.len());
    let mut layer_paths = Vec::with_capacity(image.layers.len());
    let mut all_as_stored = true;
    let forms: Vec<LayerForm> = image
        .layers
        .iter()
        .map(|layer| {
            let representable = matches!(
                layer.compression,
                Compression::None | Compression::Gzip | Compression::Zstd
            );
            if layers_mode == OciLayers::Uncompressed || (!representable && !image.artifact) {
                LayerForm::Uncompressed
            } else {
                LayerForm::Stored
            }
        })
        .collect();
    blobs.prefetch_layers(image, &forms)?;
    for (layer, &form) in image.layers.iter().zip(&forms) {
        let (digest, size, compression) = blobs.put_layer(image, layer, form)?;
        let media_type = if image.artifact {
            layer.media_type.clone()
        } else {
            compression
                .layer_media_type(Family::Oci)
                .expect("representable")
                .to_string()
        };
        all_as_stored &= form == LayerForm::Stored && media_type == layer.media_type;
        layer_paths.push(blobs.path(&digest));
        layer_descs
            .push(json!({"mediaType": media_type, "digest": digest.to_string(), "size": size}));
    }
    let config = blobs.put_bytes(&image.config_bytes)?;
    let config_type = if image.artifact {
        image.config.media_type.as_str()
    } else {
        media::OCI_CONFIG
    };
    // When the source's own OCI manifest describes exactly what was written, keep its
    // bytes: the manifest digest (what signatures point at) survives the conversion.
    if let (Some(source), Some(bytes)) = (&image.manifest, &image.manifest_bytes) {
        if all_as_stored
            && source.media_type == media::OCI_MANIFEST
            && image.config.media_type == config_type
            && describes(bytes, &config.digest, &layer_descs)
        {
            return Ok(WrittenImage {
                manifest: source.clone(),
                manifest_bytes: bytes.to_vec(),
                config_path: blobs.path(&config.digest),
                layer_paths,
            });
        }
    }
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_MANIFEST,
        "config": {"mediaType": config_type, "digest": config.digest.to_string(), "size": config.size},
        "layers": layer_descs,
    });
    let bytes = serde_json::to_vec(&manifest).expect("serializing a JSON value cannot fail");
    Ok(WrittenImage {
        manifest: Descriptor {
            media_type: media::OCI_MANIFEST.to_string(),
            digest: Digest::of(&bytes),
            size: bytes.len() as u64,
        },
        manifest_bytes: bytes,
        config_path: blobs.path(&config.digest),
        layer_paths,
    })
}

/// Does manifest `bytes` name exactly this config and these layers, in this order? (A
/// Docker 25.0.0 save can carry an OCI manifest whose layer order disagrees with its
/// manifest.json, which is the one followed.)
fn describes(bytes: &[u8], config: &Digest, layers: &[Value]) -> bool {
    let Ok(doc) = serde_json::from_slice::<Value>(bytes) else {
        return false;
    };
    let same =
        |a: &Value, b: &Value| a.get("digest") == b.get("digest") && a.get("size") == b.get("size");
    doc["config"]["digest"].as_str() == Some(config.to_string().as_str())
        && doc["layers"].as_array().is_some_and(|l| {
            l.len() == layers.len() && l.iter().zip(layers).all(|(a, b)| same(a, b))
        })
}

/// The index.json entries for written images: one per name, none-named images once.
///
/// `org.opencontainers.image.ref.name` holds the tag and `io.containerd.image.name`
/// the full name (the Docker/containerd convention). When two different images would
/// get the same tag, their ref.name holds the full name instead, so that every name
/// still selects exactly one image in skopeo and podman.
pub(crate) fn index_json(images: &[(&Image, &WrittenImage)]) -> Vec<u8> {
    let mut tag_owners: HashMap<&str, HashSet<&Digest>> = HashMap::new();
    for (image, written) in images {
        for tag in &image.tags {
            tag_owners
                .entry(tag.tag())
                .or_default()
                .insert(&written.manifest.digest);
        }
        for name in &image.ref_names {
            tag_owners
                .entry(name.as_str())
                .or_default()
                .insert(&written.manifest.digest);
        }
    }
    let mut entries = Vec::new();
    for (image, written) in images {
        let base = |annotations: Option<Map<String, Value>>| {
            let mut entry = Map::new();
            entry.insert("mediaType".into(), json!(written.manifest.media_type));
            entry.insert("digest".into(), json!(written.manifest.digest.to_string()));
            entry.insert("size".into(), json!(written.manifest.size));
            if let Some(a) = annotations {
                entry.insert("annotations".into(), Value::Object(a));
            }
            if !image.artifact
                && !image.platform.os.is_empty()
                && !image.platform.architecture.is_empty()
            {
                let mut p = Map::new();
                p.insert("architecture".into(), json!(image.platform.architecture));
                p.insert("os".into(), json!(image.platform.os));
                if let Some(v) = &image.platform.variant {
                    p.insert("variant".into(), json!(v));
                }
                entry.insert("platform".into(), Value::Object(p));
            }
            Value::Object(entry)
        };
        for tag in &image.tags {
            let ambiguous = tag_owners.get(tag.tag()).is_some_and(|o| o.len() > 1);
            let ref_name = if ambiguous {
                tag.to_string()
            } else {
                tag.tag().to_string()
            };
            let mut a = Map::new();
            a.insert(ANNOTATION_IMAGE_NAME.into(), json!(tag.to_string()));
            a.insert(ANNOTATION_REF_NAME.into(), json!(ref_name));
            entries.push(base(Some(a)));
        }
        for name in &image.ref_names {
            let mut a = Map::new();
            a.insert(ANNOTATION_REF_NAME.into(), json!(name));
            entries.push(base(Some(a)));
        }
        if image.tags.is_empty() && image.ref_names.is_empty() {
            entries.push(base(None));
        }
    }
    let index = json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_INDEX,
        "manifests": entries,
    });
    serde_json::to_vec(&index).expect("serializing a JSON value cannot fail")
}

/// Merge the index of an existing layout with `new` (written by [`index_json`]), as
/// skopeo's `oci:DIR:REF` does: every name the new entries carry moves to them (an
/// older entry loses that `org.opencontainers.image.ref.name` or
/// `io.containerd.image.name`), an older entry left without a name for a manifest that
/// is written again is dropped, and everything else, foreign fields included, is kept
/// as it is, before the new entries.
pub(crate) fn merge_index(existing: Option<&[u8]>, new: &[u8]) -> Result<Vec<u8>> {
    let Some(existing) = existing else {
        return Ok(new.to_vec());
    };
    let unreadable = |why: String| {
        Error::malformed(
            "index.json",
            format!("the existing layout's index cannot be added to: {why} (use --force to replace the layout)"),
        )
    };
    let mut index: Value = crate::model::image::parse_json(existing, "index.json")
        .map_err(|e| unreadable(e.to_string()))?;
    let new_index: Value = serde_json::from_slice(new).expect("dockhand wrote it");
    let new_entries = new_index["manifests"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let Some(object) = index.as_object_mut() else {
        return Err(unreadable("it is not a JSON object".into()));
    };
    let old_entries = match object.remove("manifests") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(entries)) => entries,
        Some(_) => return Err(unreadable("\"manifests\" is not a list".into())),
    };
    let annotation = |entry: &Value, key: &str| -> Option<String> {
        entry
            .get("annotations")?
            .get(key)?
            .as_str()
            .map(String::from)
    };
    let mut claimed: HashSet<String> = HashSet::new();
    let mut new_digests: HashSet<String> = HashSet::new();
    for entry in &new_entries {
        claimed.extend(annotation(entry, ANNOTATION_REF_NAME));
        claimed.extend(annotation(entry, ANNOTATION_IMAGE_NAME));
        if let Some(d) = entry.get("digest").and_then(Value::as_str) {
            new_digests.insert(d.to_string());
        }
    }
    let mut kept = Vec::with_capacity(old_entries.len() + new_entries.len());
    for mut entry in old_entries {
        let mut has_names = false;
        if let Some(annotations) = entry.get_mut("annotations").and_then(Value::as_object_mut) {
            for key in [ANNOTATION_REF_NAME, ANNOTATION_IMAGE_NAME] {
                let Some(name) = annotations.get(key).and_then(Value::as_str) else {
                    continue;
                };
                if claimed.contains(name) {
                    annotations.remove(key);
                } else {
                    has_names = true;
                }
            }
            if annotations.is_empty() {
                entry
                    .as_object_mut()
                    .expect("has annotations")
                    .remove("annotations");
            }
        }
        // An unnamed entry for a manifest written again is replaced by the new entry.
        let digest = entry.get("digest").and_then(Value::as_str).unwrap_or("");
        if !has_names && new_digests.contains(digest) {
            continue;
        }
        kept.push(entry);
    }
    kept.extend(new_entries);
    object.insert("manifests".into(), Value::Array(kept));
    if !object.contains_key("schemaVersion") {
        object.insert("schemaVersion".into(), json!(2));
    }
    Ok(serde_json::to_vec(&index).expect("serializing a JSON value cannot fail"))
}

/// Write `images` as an OCI image layout into `out` (blobs first, index.json and
/// oci-layout last, so a streamed tar can be produced in one pass).
pub fn write_oci(images: &[Image], out: &mut dyn TreeWriter) -> Result<()> {
    write_oci_with(images, out, OciLayers::Keep).map(drop)
}

/// Write an OCI layout, returning what was written for each image.
pub(crate) fn write_oci_with(
    images: &[Image],
    out: &mut dyn TreeWriter,
    layers: OciLayers,
) -> Result<Vec<WrittenImage>> {
    out.dir("blobs")?;
    out.dir("blobs/sha256")?;
    let mut blobs = BlobWriter::new(out, "blobs/sha256/");
    let mut written = Vec::with_capacity(images.len());
    for image in images {
        let w = put_oci_image(&mut blobs, image, layers)?;
        blobs.put_bytes(&w.manifest_bytes)?;
        written.push(w);
    }
    let pairs: Vec<(&Image, &WrittenImage)> = images.iter().zip(&written).collect();
    let index = index_json(&pairs);
    out.file("index.json", index.len() as u64, &mut &index[..])?;
    out.file(
        "oci-layout",
        OCI_LAYOUT_FILE.len() as u64,
        &mut OCI_LAYOUT_FILE.as_bytes(),
    )?;
    Ok(written)
}

/// Write one image as a containers/image `dir:` layout: blobs named by hex digest,
/// an OCI manifest in `manifest.json`, and the `version` file.
pub fn write_dir_transport(image: &Image, out: &mut dyn TreeWriter) -> Result<()> {
    let mut blobs = BlobWriter::new(out, "");
    let written = put_oci_image(&mut blobs, image, OciLayers::Keep)?;
    let manifest = written.manifest_bytes;
    out.file("manifest.json", manifest.len() as u64, &mut &manifest[..])?;
    out.file(
        "version",
        DIR_VERSION.len() as u64,
        &mut DIR_VERSION.as_bytes(),
    )
}
