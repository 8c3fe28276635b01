//! Reading the containers/image `dir:` layout: `manifest.json` (schema2, OCI, schema1 or
//! a list), blobs named by bare hex digest (`<hex>.tar` in version 1.0), `version`.

use serde::Deserialize;

use std::sync::Arc;

use super::schema1::{declares_schema1, read_schema1};
use crate::error::{Error, Result};
use crate::formats::context::Meta;
use crate::formats::manifest::{image_from_manifest, DirStore, RawDescriptor, RawManifest};
use crate::formats::{keep_platform, no_platform, ReadOptions};
use crate::model::digest::Digest;
use crate::model::image::{parse_json, Descriptor, Image};
use crate::model::media;
use crate::text::shown;

pub(crate) fn read(
    meta: &Meta,
    manifest_bytes: &Arc<Vec<u8>>,
    options: &ReadOptions,
    warnings: &mut Vec<String>,
) -> Result<Vec<Image>> {
    let tree = meta.tree;
    if let Some(version) = meta.read_top("version")? {
        if !version
            .bytes
            .starts_with(b"Directory Transport Version: 1.")
        {
            return Err(Error::Unsupported(format!(
                "version: unsupported dir layout version \"{}\"; dockhand reads \"Directory Transport Version: 1.x\"",
                shown(String::from_utf8_lossy(&version.bytes).trim())
            )));
        }
    }
    let store = DirStore(tree);
    let value: serde_json::Value = parse_json(manifest_bytes, "manifest.json")?;
    if declares_schema1(&value) {
        let image = read_schema1(meta, &store, manifest_bytes, warnings)?;
        return keep_platform(vec![image], options);
    }
    let declared = value
        .get("mediaType")
        .and_then(|m| m.as_str())
        .map(String::from);
    if value.get("manifests").is_some() {
        return read_list(meta, &store, &value, options, warnings);
    }
    let manifest = RawManifest::deserialize(&value)
        .map_err(|e| Error::malformed("manifest.json", shown(&e.to_string())))?;
    let media_type = declared.unwrap_or_else(|| {
        match manifest.config.media_type.as_deref() {
            Some(media::DOCKER_CONFIG) => media::DOCKER_MANIFEST,
            _ => media::OCI_MANIFEST,
        }
        .to_string()
    });
    let descriptor = Descriptor {
        media_type,
        digest: Digest::of(manifest_bytes),
        size: manifest_bytes.len() as u64,
    };
    let image = image_from_manifest(
        meta,
        &store,
        &manifest,
        manifest_bytes,
        descriptor,
        warnings,
    )?;
    keep_platform(vec![image], options)
}

/// A list copied with `--all`: per-instance manifests are `<hex>.manifest.json`.
fn read_list(
    meta: &Meta,
    store: &DirStore,
    value: &serde_json::Value,
    options: &ReadOptions,
    warnings: &mut Vec<String>,
) -> Result<Vec<Image>> {
    let children = Vec::<RawDescriptor>::deserialize(&value["manifests"])
        .map_err(|e| Error::malformed("manifest.json", shown(&e.to_string())))?;
    let wanted = options.wanted_platform();
    let mut held = Vec::new();
    let mut absent = None;
    for child in &children {
        let Some(platform) = child.platform.as_ref().map(|p| p.platform()) else {
            continue;
        };
        if !platform.satisfies(&wanted) {
            held.push(platform);
            continue;
        }
        let digest = child.digest("manifest.json")?;
        let path = super::instance_manifest_path(&digest);
        let Some(file) = store.0.find(&path)? else {
            absent.get_or_insert((path, platform));
            continue;
        };
        let read = meta.read_verified(&file, &digest, Some(child.size("manifest.json")?))?;
        let manifest: RawManifest = parse_json(&read.bytes, &path)?;
        let descriptor = Descriptor {
            media_type: child
                .media_type
                .clone()
                .unwrap_or_else(|| media::OCI_MANIFEST.to_string()),
            digest,
            size: read.bytes.len() as u64,
        };
        return Ok(vec![image_from_manifest(
            meta,
            store,
            &manifest,
            &read.bytes,
            descriptor,
            warnings,
        )?]);
    }
    if let Some((path, platform)) = absent {
        return Err(Error::Missing {
            file: path,
            what: format!(
                "the {} manifest the list in manifest.json names",
                shown(&platform.to_string())
            ),
        });
    }
    Err(no_platform(options, &held))
}
