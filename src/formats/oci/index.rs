//! `index.json`: the entries dockhand writes for its images and their names, and the
//! merge with the index of a layout that is added to.

use std::collections::{HashMap, HashSet};

use serde_json::{json, Map, Value};

use super::{ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME};
use std::path::Path;

use crate::container::read_limited;
use crate::error::{Error, Result};
use crate::model::digest::Digest;
use crate::model::image::MAX_JSON_SIZE;
use crate::model::image::{Descriptor, Image};
use crate::model::media;

/// The index.json entries for written images: one per name, none-named images once.
///
/// `org.opencontainers.image.ref.name` holds the tag and `io.containerd.image.name`
/// the full name (the Docker/containerd convention). When two different images would
/// get the same tag, their ref.name holds the full name instead, so that every name
/// still selects exactly one image in skopeo and podman. A tag an OCI source gave its
/// own ref.name keeps that text as it was (unless it is a bare tag another image has).
/// `extra` entries (referrers' tags) come after the images'.
pub(crate) fn index_json_with(images: &[(&Image, &Descriptor)], extra: Vec<Value>) -> Vec<u8> {
    let mut tag_owners: HashMap<&str, HashSet<&Digest>> = HashMap::new();
    for (image, manifest) in images {
        for tag in &image.tags {
            tag_owners
                .entry(tag.tag())
                .or_default()
                .insert(&manifest.digest);
        }
        for name in &image.ref_names {
            tag_owners
                .entry(name.as_str())
                .or_default()
                .insert(&manifest.digest);
        }
    }
    let mut entries = Vec::new();
    for (image, manifest) in images {
        let base = |annotations: Option<Map<String, Value>>| {
            let mut entry = Map::new();
            entry.insert("mediaType".into(), json!(manifest.media_type));
            entry.insert("digest".into(), json!(manifest.digest.to_string()));
            entry.insert("size".into(), json!(manifest.size));
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
            let ref_name = match image.oci_ref_names.get(tag) {
                // A bare tag two images share would select neither: the full name then.
                Some(text) if !(ambiguous && text == tag.tag()) => text.clone(),
                _ if ambiguous => tag.to_string(),
                _ => tag.tag().to_string(),
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
    entries.extend(extra);
    let index = json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_INDEX,
        "manifests": entries,
    });
    serde_json::to_vec(&index).expect("serializing a JSON value cannot fail")
}

/// Merge the index of an existing layout with `new` (written by [`index_json_with`]), as
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
            format!("the existing layout's index cannot be added to: {why}"),
        )
    };
    let mut index: Value =
        crate::model::image::parse_json(existing, "index.json").map_err(|e| {
            unreadable(match e {
                // Named once, by `unreadable`.
                Error::Malformed { problem, .. } => problem,
                other => other.to_string(),
            })
        })?;
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

/// Why the OCI layout at `dest` cannot be added to, checked before any blob is written
/// to it: an `oci-layout` of another version, or an index that cannot be merged. The
/// caller words the refusal, knowing whether `--force` was given.
pub(crate) fn check_addable(dest: &Path) -> std::result::Result<(), String> {
    let marker = dest.join("oci-layout");
    if let Ok(bytes) = std::fs::read(&marker) {
        let version = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v["imageLayoutVersion"].as_str().map(String::from));
        if !version.as_deref().is_some_and(|v| v.starts_with("1.")) {
            return Err(
                "its oci-layout file does not say imageLayoutVersion 1.x, so it is not added to"
                    .into(),
            );
        }
    }
    let index = match std::fs::File::open(dest.join("index.json")) {
        Ok(f) => Some(read_limited(f, MAX_JSON_SIZE, "index.json").map_err(|e| e.to_string())?),
        Err(_) => None,
    };
    merge_index(index.as_deref(), br#"{"manifests":[]}"#).map_err(|e| e.to_string())?;
    Ok(())
}
