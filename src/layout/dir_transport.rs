//! Reading the containers/image `dir:` layout: `manifest.json` (schema2, OCI, schema1 or
//! a list), blobs named by bare hex digest (`<hex>.tar` in version 1.0), `version`.

use super::oci::{image_from_manifest, BlobStore, RawDescriptor, RawManifest};
use super::{legacy, read_json_file, read_verified, ReadOptions};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::image::{parse_json, Descriptor, Image};
use crate::media;
use crate::tree::{FileRef, FileTree};

/// The `version` file content dockhand writes.
pub const DIR_VERSION: &str = "Directory Transport Version: 1.1\n";

pub(super) struct DirStore<'a>(pub &'a dyn FileTree);

impl BlobStore for DirStore<'_> {
    fn tree(&self) -> &dyn FileTree {
        self.0
    }
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

pub(super) fn read(
    tree: &dyn FileTree,
    manifest_bytes: &[u8],
    options: &ReadOptions,
    warnings: &mut Vec<String>,
) -> Result<Vec<Image>> {
    if let Some(version) = tree.find("version")? {
        let text = read_json_file(&version)?;
        if !text.starts_with(b"Directory Transport Version: 1.") {
            return Err(Error::Unsupported(format!(
                "version: unsupported dir layout version {:?}",
                String::from_utf8_lossy(&text).trim()
            )));
        }
    }
    let store = DirStore(tree);
    let value: serde_json::Value = parse_json(manifest_bytes, "manifest.json")?;
    if value.get("schemaVersion").and_then(|v| v.as_i64()) == Some(1) {
        return Ok(vec![legacy::read_schema1(
            &store,
            manifest_bytes,
            warnings,
        )?]);
    }
    let declared = value
        .get("mediaType")
        .and_then(|m| m.as_str())
        .map(String::from);
    if value.get("manifests").is_some() {
        return read_list(&store, &value, options, warnings);
    }
    let manifest: RawManifest = serde_json::from_value(value)
        .map_err(|e| Error::malformed("manifest.json", e.to_string()))?;
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
    Ok(vec![image_from_manifest(
        &store,
        &manifest,
        manifest_bytes,
        descriptor,
        warnings,
    )?])
}

/// A list copied with `--all`: per-instance manifests are `<hex>.manifest.json`.
fn read_list(
    store: &DirStore,
    value: &serde_json::Value,
    options: &ReadOptions,
    warnings: &mut Vec<String>,
) -> Result<Vec<Image>> {
    let children: Vec<RawDescriptor> = serde_json::from_value(value["manifests"].clone())
        .map_err(|e| Error::malformed("manifest.json", e.to_string()))?;
    let wanted = options.wanted_platform();
    for child in &children {
        let fits = child
            .platform
            .as_ref()
            .is_some_and(|p| p.os == wanted.os && p.architecture == wanted.architecture);
        if !fits {
            continue;
        }
        let digest = child.digest("manifest.json")?;
        let path = format!("{}.manifest.json", digest.hex());
        let Some(file) = store.0.find(&path)? else {
            continue;
        };
        let bytes = read_verified(&file, &digest, Some(child.size("manifest.json")?))?;
        let manifest: RawManifest = parse_json(&bytes, &path)?;
        let descriptor = Descriptor {
            media_type: child
                .media_type
                .clone()
                .unwrap_or_else(|| media::OCI_MANIFEST.to_string()),
            digest,
            size: bytes.len() as u64,
        };
        return Ok(vec![image_from_manifest(
            store, &manifest, &bytes, descriptor, warnings,
        )?]);
    }
    Err(Error::Selection(format!(
        "manifest.json: the list holds no image for {wanted}"
    )))
}
