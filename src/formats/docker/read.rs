//! Reading `docker save` archives in all their variants: Docker <= 24 (`<v1id>/layer.tar`),
//! Docker >= 25 (OCI layout plus manifest.json), the containerd image store
//! (compressed blobs), skopeo (`<diffid>.tar` plus symlinks) and go-containerregistry
//! (`sha256:<hex>` config, `.tar.gz` layers). manifest.json is the authoritative list.

use std::collections::HashMap;

use serde::Deserialize;

use crate::container::FileRef;
use crate::error::{Error, Result};
use crate::formats::context::{safe_path, Meta, NameList};
use crate::formats::{oci, ReadOptions};
use crate::model::digest::Digest;
use crate::model::image::{Descriptor, Image, Layer};
use crate::model::media::{self, Family};
use crate::model::reference::Reference;
use crate::text::shown;

#[derive(Deserialize)]
struct ManifestItem {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Option<Vec<String>>,
}

pub(crate) fn read(
    meta: &Meta,
    list: &serde_json::Value,
    options: &ReadOptions,
    warnings: &mut Vec<String>,
) -> Result<Vec<Image>> {
    let tree = meta.tree;
    let items = list.as_array().expect("detect checked the shape");
    // A Docker >= 25 or containerd save also holds an OCI index: use it for manifest
    // descriptors, media types and names, never for the image list.
    let oci_info = if tree.exists("index.json") {
        oci::describe_for_docker(meta, options).unwrap_or_else(|e| {
            warnings.push(format!("ignoring index.json: {e}"));
            HashMap::new()
        })
    } else {
        HashMap::new()
    };
    let mut images: Vec<Image> = Vec::new();
    let mut names: Vec<NameList> = Vec::new();
    // (config, layer digests) -> position, to merge repeated entries for one image.
    // Layers are told apart by digest when the archive records one, else by file.
    let mut seen: HashMap<(Digest, Vec<Result<Digest, String>>), usize> = HashMap::new();
    for (n, value) in items.iter().enumerate() {
        let at = format!("manifest.json (image {n})");
        let item = ManifestItem::deserialize(value).map_err(|e| {
            Error::malformed(&at, format!("invalid entry: {}", shown(&e.to_string())))
        })?;
        let config_path = safe_path(&item.config, &at)?;
        // The image as messages name it: its number, and its first tag when it has one.
        let image = match item.repo_tags.iter().flatten().next() {
            Some(tag) => format!("image {n} ({})", shown(tag)),
            None => format!("image {n}"),
        };
        let config_file = tree.find(&config_path)?.ok_or_else(|| Error::Missing {
            file: shown(&config_path),
            what: format!("the config of {image} listed in manifest.json"),
        })?;
        let config = meta.read(&config_file)?;
        let facts = meta.config(&config, &shown(&config_path))?;
        let diff_ids = facts.diff_ids()?;
        let layer_paths = item.layers.unwrap_or_default();
        if layer_paths.len() != diff_ids.len() {
            return Err(Error::malformed(
                &at,
                format!(
                    "lists {} layers but config {} has {} diff_ids",
                    layer_paths.len(),
                    shown(&config_path),
                    diff_ids.len()
                ),
            ));
        }
        let mut tags = Vec::new();
        for tag in item.repo_tags.iter().flatten() {
            match Reference::parse_why(tag) {
                Ok(r) => tags.push(r),
                Err(why) => {
                    warnings.push(format!("{at}: ignoring RepoTag \"{}\": {why}", shown(tag)))
                }
            }
        }
        let info = oci_info.get(&config.digest);
        let (extra_tags, extra_names) = info
            .map(|i| (i.tags.clone(), i.ref_names.clone()))
            .unwrap_or_default();
        // Find every layer and its stored digest first (each computed once per file):
        // an entry repeating an image already read only adds its names.
        let mut found: Vec<(FileRef, media::Compression, Option<Digest>)> =
            Vec::with_capacity(layer_paths.len());
        let mut seen_paths: HashMap<String, &Digest> = HashMap::new();
        for (i, (path, diff_id)) in layer_paths.iter().zip(diff_ids.iter()).enumerate() {
            let path = safe_path(path, &at)?;
            let file = tree.find(&path)?.ok_or_else(|| Error::Missing {
                file: shown(&path),
                what: format!("layer {i} of {image} listed in manifest.json"),
            })?;
            // The same file cannot be two different layers (podman#8132).
            if let Some(other) = seen_paths.insert(file.path.clone(), diff_id) {
                if other != diff_id {
                    return Err(Error::malformed(
                        &at,
                        format!(
                            "layer file {} is used for two different diff_ids",
                            shown(&path)
                        ),
                    ));
                }
            }
            let compression = meta.sniff(&file)?;
            let digest = stored_digest(&file.path, compression, diff_id);
            found.push((file, compression, digest));
        }
        let key = (
            config.digest.clone(),
            found
                .iter()
                .map(|(f, _, d)| d.clone().ok_or_else(|| f.path.clone()))
                .collect(),
        );
        if let Some(&i) = seen.get(&key) {
            names[i].add(tags.into_iter().chain(extra_tags), extra_names);
            continue;
        }
        meta.count_layers(found.len())?;
        let family = match info {
            Some(i) if i.manifest.media_type == media::DOCKER_MANIFEST => Family::Docker,
            Some(_) => Family::Oci,
            None => Family::Docker,
        };
        let layers = found
            .into_iter()
            .zip(diff_ids.iter())
            .map(|((file, compression, digest), diff_id)| Layer {
                digest,
                size: file.size,
                media_type: compression
                    .layer_media_type(family)
                    .unwrap_or(media::DOCKER_LAYER_TAR)
                    .to_string(),
                compression,
                diff_id: Some(diff_id.clone()),
                path: file.path.clone(),
                blob: Some(file.blob),
            })
            .collect();
        let image = Image {
            tags: Vec::new(),
            ref_names: Vec::new(),
            oci_ref_names: Default::default(),
            config: Descriptor {
                media_type: info.map_or(media::DOCKER_CONFIG.to_string(), |i| {
                    i.config_media_type.clone()
                }),
                digest: config.digest.clone(),
                size: config.bytes.len() as u64,
            },
            config_bytes: config.bytes.clone(),
            config_path: config_file.path.clone(),
            manifest: info.map(|i| i.manifest.clone()),
            manifest_bytes: info.and_then(|i| i.manifest_bytes.clone()),
            platform: facts.platform.clone(),
            layers,
            artifact: false,
            index: None,
            input: std::sync::Arc::clone(&meta.input),
            annotations: Default::default(),
        };
        let mut list = NameList::default();
        list.add(tags.into_iter().chain(extra_tags), extra_names);
        seen.insert(key, images.len());
        images.push(image);
        names.push(list);
    }
    for (image, list) in images.iter_mut().zip(names) {
        list.apply(image);
    }
    Ok(images)
}

/// The digest of a layer as stored, when the archive says it without the layer being
/// read: content-addressed names (`blobs/sha256/<hex>`, `<hex>.tar.gz`) and
/// uncompressed layers (digest = diff_id); both claims are verified when the layer is
/// read. Otherwise `None`: the digest is computed when a conversion streams the layer.
fn stored_digest(path: &str, compression: media::Compression, diff_id: &Digest) -> Option<Digest> {
    if let Some(hex) = path.strip_prefix("blobs/sha256/") {
        if let Some(d) = Digest::from_hex(hex) {
            return Some(d);
        }
    }
    if compression == media::Compression::None {
        return Some(diff_id.clone());
    }
    let base = path.rsplit('/').next().unwrap_or("");
    let stem = base.split('.').next().unwrap_or("");
    if base.len() > 64 {
        return Digest::from_hex(stem.trim_start_matches("sha256:"));
    }
    None
}
