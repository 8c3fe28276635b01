//! The parts of OCI and Docker schema2 manifests and indexes dockhand reads, and the
//! image a manifest describes when its blobs live in a blob store (an OCI layout's
//! `blobs/sha256/`, a `dir:` layout's top level, a registry).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;

use super::context::Meta;
use crate::container::{FileRef, FileTree};
use crate::error::{Error, Result};
use crate::model::digest::Digest;
use crate::model::image::{Descriptor, Image, Layer, Platform};
use crate::model::media::{self, Compression};

/// Marks attestation manifests in BuildKit indexes.
pub(crate) const ANNOTATION_REFERENCE_TYPE: &str = "vnd.docker.reference.type";

#[derive(Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RawDescriptor {
    #[serde(default)]
    pub media_type: Option<String>,
    pub digest: String,
    pub size: i64,
    #[serde(default)]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub platform: Option<RawPlatform>,
}

#[derive(Deserialize, Clone, Debug)]
pub(crate) struct RawPlatform {
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub variant: Option<String>,
}

impl RawPlatform {
    pub(crate) fn platform(&self) -> Platform {
        Platform {
            os: self.os.clone(),
            architecture: self.architecture.clone(),
            variant: self.variant.clone().filter(|v| !v.is_empty()),
        }
    }
}

impl RawDescriptor {
    pub(crate) fn digest(&self, named_in: &str) -> Result<Digest> {
        Digest::parse(&self.digest).map_err(|e| Error::malformed(named_in, e))
    }
    pub(crate) fn size(&self, named_in: &str) -> Result<u64> {
        u64::try_from(self.size)
            .map_err(|_| Error::malformed(named_in, format!("negative size {}", self.size)))
    }
    pub(crate) fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.as_ref()?.get(key).map(String::as_str)
    }
    pub(crate) fn is_attestation(&self) -> bool {
        self.annotation(ANNOTATION_REFERENCE_TYPE).is_some()
            || self
                .platform
                .as_ref()
                .is_some_and(|p| p.os == "unknown" && p.architecture == "unknown")
    }
}

#[derive(Deserialize)]
pub(crate) struct RawIndex {
    #[serde(default)]
    pub manifests: Option<Vec<RawDescriptor>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RawManifest {
    pub config: RawDescriptor,
    #[serde(default)]
    pub layers: Option<Vec<RawDescriptor>>,
}

/// Where an OCI layout keeps its blobs.
pub(crate) const BLOBS_PREFIX: &str = "blobs/sha256/";

/// The path of the blob `digest` in an OCI layout.
pub(crate) fn blob_path(digest: &Digest) -> String {
    format!("{BLOBS_PREFIX}{}", digest.hex())
}

/// Where the blobs below a manifest or index come from, by digest: the files of a
/// layout (`blobs/sha256/<hex>` in an OCI layout, `<hex>` in a `dir:` one), or a
/// registry's blobs. The readers of manifests and indexes take nothing else.
pub(crate) trait BlobStore {
    /// The name of the blob in messages and progress (its path in a layout).
    fn blob_path(&self, digest: &Digest) -> String;
    /// The blob, if the store has it, with the size it has (the reader compares it with
    /// the descriptor's and verifies the bytes).
    fn find_blob(&self, digest: &Digest) -> Result<Option<FileRef>>;
}

/// The blob store of an OCI layout: `blobs/sha256/<hex>`.
pub(crate) struct OciStore<'a>(pub &'a dyn FileTree);

impl BlobStore for OciStore<'_> {
    fn blob_path(&self, digest: &Digest) -> String {
        blob_path(digest)
    }
    fn find_blob(&self, digest: &Digest) -> Result<Option<FileRef>> {
        self.0.find(&self.blob_path(digest))
    }
}

/// The blob store of a `dir:` layout: `<hex>` at the top (`<hex>.tar` in version 1.0).
pub(crate) struct DirStore<'a>(pub &'a dyn FileTree);

impl BlobStore for DirStore<'_> {
    fn blob_path(&self, digest: &Digest) -> String {
        digest.hex().to_string()
    }
    fn find_blob(&self, digest: &Digest) -> Result<Option<FileRef>> {
        if let Some(f) = self.0.find(digest.hex())? {
            return Ok(Some(f));
        }
        // Version 1.0 of the layout named every blob `<hex>.tar`.
        self.0.find(&format!("{}.tar", digest.hex()))
    }
}

/// Build an [`Image`] from a parsed manifest whose blobs live in `store`.
pub(crate) fn image_from_manifest(
    meta: &Meta,
    store: &dyn BlobStore,
    manifest: &RawManifest,
    manifest_bytes: &Arc<Vec<u8>>,
    descriptor: Descriptor,
    warnings: &mut Vec<String>,
) -> Result<Image> {
    let at = store.blob_path(&descriptor.digest);
    let config_digest = manifest.config.digest(&at)?;
    let config_size = manifest.config.size(&at)?;
    let config_path = store.blob_path(&config_digest);
    let config_file = store
        .find_blob(&config_digest)?
        .ok_or_else(|| Error::Missing {
            file: config_path.clone(),
            what: format!("config {config_digest} of manifest {}", descriptor.digest),
        })?;
    let config = meta.read_verified(&config_file, &config_digest, Some(config_size))?;
    let config_type = manifest.config.media_type.clone().unwrap_or_default();
    // Some producers label a real image config application/octet-stream (skopeo's
    // fixtures) or leave it out: look at the content then.
    let facts = if media::is_image_config(&config_type) {
        // A config of the image type without rootfs (`{}`) describes no filesystem:
        // such a manifest is an artifact in disguise.
        Some(meta.config(&config, &config_path)?).filter(|f| f.has_rootfs)
    } else if config_type.is_empty() || config_type == "application/octet-stream" {
        meta.config(&config, &config_path)
            .ok()
            .filter(|f| f.has_rootfs)
    } else {
        None
    };
    let no_layers = Vec::new();
    let raw_layers = manifest.layers.as_ref().unwrap_or(&no_layers);
    let diff_ids: Vec<Option<Digest>> = match &facts {
        Some(f) => {
            let ids = f.diff_ids()?;
            if ids.len() != raw_layers.len() {
                return Err(Error::malformed(
                    &at,
                    format!(
                        "manifest lists {} layers but its config has {} diff_ids",
                        raw_layers.len(),
                        ids.len()
                    ),
                ));
            }
            ids.iter().cloned().map(Some).collect()
        }
        None => vec![None; raw_layers.len()],
    };
    // Counted when built, kept or not: images looked at only for their platform take
    // memory too.
    meta.count_layers(raw_layers.len())?;
    let mut layers = Vec::with_capacity(raw_layers.len());
    for (raw, diff_id) in raw_layers.iter().zip(diff_ids) {
        let digest = raw.digest(&at)?;
        let size = raw.size(&at)?;
        let path = store.blob_path(&digest);
        let file = store.find_blob(&digest)?;
        let media_type = raw
            .media_type
            .clone()
            .unwrap_or_else(|| media::OCI_LAYER_TAR.to_string());
        let compression = match &file {
            Some(f) => meta.sniff(f)?,
            None => Compression::of_layer_media_type(&media_type),
        };
        if file.is_none() && facts.is_some() {
            warnings.push(format!(
                "{path}: layer blob is absent (a foreign or non-distributable layer?)"
            ));
        }
        layers.push(Layer {
            digest: Some(digest),
            size,
            media_type,
            compression,
            diff_id,
            blob: file.map(|f| f.blob),
            path,
        });
    }
    let platform = facts
        .as_ref()
        .map(|f| f.platform.clone())
        .unwrap_or_default();
    Ok(Image {
        tags: Vec::new(),
        ref_names: Vec::new(),
        oci_ref_names: Default::default(),
        config: Descriptor {
            media_type: if config_type.is_empty() {
                media::OCI_CONFIG.to_string()
            } else {
                config_type
            },
            digest: config_digest,
            size: config_size,
        },
        config_bytes: config.bytes.clone(),
        config_path,
        manifest: Some(descriptor),
        manifest_bytes: Some(manifest_bytes.clone()),
        platform,
        layers,
        artifact: facts.is_none(),
        index: None,
        input: std::sync::Arc::clone(&meta.input),
        annotations: Default::default(),
    })
}
