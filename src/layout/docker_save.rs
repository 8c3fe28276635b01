//! Reading `docker save` archives in all their variants: Docker <= 24 (`<v1id>/layer.tar`),
//! Docker >= 25 (OCI layout plus manifest.json), the containerd image store
//! (compressed blobs), skopeo (`<diffid>.tar` plus symlinks) and go-containerregistry
//! (`sha256:<hex>` config, `.tar.gz` layers). manifest.json is the authoritative list.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Deserialize;

use super::{hash_file, oci, read_json_file, safe_path, sniff, ReadOptions};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::image::{ConfigView, Descriptor, Image, Layer};
use crate::media::{self, Family};
use crate::reference::Reference;
use crate::tree::FileTree;

#[derive(Deserialize)]
struct ManifestItem {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Option<Vec<String>>,
}

pub(super) fn read(
    tree: &dyn FileTree,
    list: &serde_json::Value,
    options: &ReadOptions,
    warnings: &mut Vec<String>,
) -> Result<Vec<Image>> {
    let items = list.as_array().expect("detect checked the shape");
    // A Docker >= 25 or containerd save also holds an OCI index: use it for manifest
    // descriptors, media types and names, never for the image list.
    let oci_info = if tree.exists("index.json") {
        oci::describe_for_docker(tree, options).unwrap_or_else(|e| {
            warnings.push(format!("ignoring index.json: {e}"));
            HashMap::new()
        })
    } else {
        HashMap::new()
    };
    let mut images: Vec<Image> = Vec::new();
    // (config, layer digests) -> position, to merge repeated entries for one image.
    let mut seen: HashMap<(Digest, Vec<Digest>), usize> = HashMap::new();
    for (n, value) in items.iter().enumerate() {
        let at = format!("manifest.json (image {n})");
        let item: ManifestItem = serde_json::from_value(value.clone())
            .map_err(|e| Error::malformed(&at, format!("invalid entry: {e}")))?;
        let config_path = safe_path(&item.config, &at)?;
        let config_file = tree.find(&config_path)?.ok_or_else(|| Error::Missing {
            file: config_path.clone(),
            what: format!("the config of image {n} listed in manifest.json"),
        })?;
        let config_bytes = read_json_file(&config_file)?;
        let config_digest = Digest::of(&config_bytes);
        let view = ConfigView::parse(&config_bytes, &config_path)?;
        let diff_ids = view.diff_ids(&config_path)?;
        let layer_paths = item.layers.unwrap_or_default();
        if layer_paths.len() != diff_ids.len() {
            return Err(Error::malformed(
                &at,
                format!(
                    "lists {} layers but config {} has {} diff_ids",
                    layer_paths.len(),
                    config_path,
                    diff_ids.len()
                ),
            ));
        }
        let mut tags = Vec::new();
        for tag in item.repo_tags.iter().flatten() {
            match Reference::parse(tag) {
                Ok(r) => tags.push(r),
                Err(e) => warnings.push(format!("{at}: ignoring RepoTag: {e}")),
            }
        }
        let info = oci_info.get(&config_digest);
        let family = match info {
            Some(i) if i.manifest.media_type == media::DOCKER_MANIFEST => Family::Docker,
            Some(_) => Family::Oci,
            None => Family::Docker,
        };
        let mut layers = Vec::with_capacity(layer_paths.len());
        let mut seen_paths: HashMap<String, Digest> = HashMap::new();
        for (i, (path, diff_id)) in layer_paths.iter().zip(&diff_ids).enumerate() {
            let path = safe_path(path, &at)?;
            let file = tree.find(&path)?.ok_or_else(|| Error::Missing {
                file: path.clone(),
                what: format!("layer {i} of image {n} listed in manifest.json"),
            })?;
            // The same file cannot be two different layers (podman#8132).
            if let Some(other) = seen_paths.insert(file.path.clone(), diff_id.clone()) {
                if other != *diff_id {
                    return Err(Error::malformed(
                        &at,
                        format!("layer file {path} is used for two different diff_ids"),
                    ));
                }
            }
            let compression = sniff(&file)?;
            let digest = stored_digest(&file, compression, diff_id)?;
            let media_type = compression
                .layer_media_type(family)
                .unwrap_or(media::DOCKER_LAYER_TAR)
                .to_string();
            layers.push(Layer {
                digest,
                size: file.size,
                media_type,
                compression,
                diff_id: Some(diff_id.clone()),
                path: file.path.clone(),
                file: Some(file),
            });
        }
        let mut image = Image {
            tags: Vec::new(),
            ref_names: Vec::new(),
            config: Descriptor {
                media_type: info.map_or(media::DOCKER_CONFIG.to_string(), |i| {
                    i.config_media_type.clone()
                }),
                digest: config_digest.clone(),
                size: config_bytes.len() as u64,
            },
            config_bytes: Arc::new(config_bytes),
            config_path: config_file.path.clone(),
            manifest: info.map(|i| i.manifest.clone()),
            manifest_bytes: info.and_then(|i| i.manifest_bytes.clone()),
            platform: view.platform(),
            layers,
            artifact: false,
        };
        let (extra_tags, extra_names) = info
            .map(|i| (i.tags.clone(), i.ref_names.clone()))
            .unwrap_or_default();
        image.add_names(tags.into_iter().chain(extra_tags), extra_names);
        // Merge repeated entries for the same image (same config and layers).
        let key = (
            image.config.digest.clone(),
            image.layers.iter().map(|l| l.digest.clone()).collect(),
        );
        match seen.get(&key) {
            Some(&i) => images[i].add_names(image.tags, image.ref_names),
            None => {
                seen.insert(key, images.len());
                images.push(image);
            }
        }
    }
    Ok(images)
}

/// The digest of a layer as stored. Content-addressed names (`blobs/sha256/<hex>`,
/// `<hex>.tar.gz`) and uncompressed layers (digest = diff_id) say it without reading
/// the layer; both claims are verified when the layer is read. Otherwise hash it.
fn stored_digest(
    file: &crate::tree::FileRef,
    compression: media::Compression,
    diff_id: &Digest,
) -> Result<Digest> {
    if let Some(hex) = file.path.strip_prefix("blobs/sha256/") {
        if let Some(d) = Digest::from_hex(hex) {
            return Ok(d);
        }
    }
    if compression == media::Compression::None {
        return Ok(diff_id.clone());
    }
    let base = file.path.rsplit('/').next().unwrap_or("");
    let stem = base.split('.').next().unwrap_or("");
    if base.len() > 64 {
        if let Some(d) = Digest::from_hex(stem.trim_start_matches("sha256:")) {
            return Ok(d);
        }
    }
    hash_file(file)
}
