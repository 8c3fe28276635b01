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
///
/// A referrers fallback tag (`sha256-<hex>`) both indexes name lists what each lists
/// (the layout's first, then the new ones not there yet): a new blob of `root`, as a
/// registry client keeps that tag. Referrers added earlier stay reachable.
pub(crate) fn merge_index(existing: Option<&[u8]>, new: &[u8], root: &Path) -> Result<Vec<u8>> {
    let Some(existing) = existing else {
        return Ok(new.to_vec());
    };
    let merged_fallbacks = merge_fallback_tags(existing, new, root)?;
    let new = merged_fallbacks.as_deref().unwrap_or(new);
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
        // A referrers fallback tag the new index lists again lists all this one did.
        let mut superseded = false;
        if let Some(annotations) = entry.get_mut("annotations").and_then(Value::as_object_mut) {
            for key in [ANNOTATION_REF_NAME, ANNOTATION_IMAGE_NAME] {
                let Some(name) = annotations.get(key).and_then(Value::as_str) else {
                    continue;
                };
                if claimed.contains(name) {
                    superseded |= key == ANNOTATION_REF_NAME && is_fallback_tag(name);
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
        if !has_names && (superseded || new_digests.contains(digest)) {
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
    merge_index(index.as_deref(), br#"{"manifests":[]}"#, dest).map_err(|e| e.to_string())?;
    Ok(())
}

/// `new`, with each referrers fallback tag that `existing` names too pointing at a new
/// index listing both's referrers, written into `root`; `None` when there is none.
fn merge_fallback_tags(existing: &[u8], new: &[u8], root: &Path) -> Result<Option<Vec<u8>>> {
    let fallback_name = |entry: &Value| -> Option<String> {
        let name = entry
            .get("annotations")?
            .get(ANNOTATION_REF_NAME)?
            .as_str()?;
        is_fallback_tag(name).then(|| name.to_string())
    };
    let (Ok(old_index), Ok(mut new_index)) = (
        serde_json::from_slice::<Value>(existing),
        serde_json::from_slice::<Value>(new),
    ) else {
        // What cannot be read is reported by the merge itself.
        return Ok(None);
    };
    let old_tags: HashMap<String, Value> = old_index["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| Some((fallback_name(e)?, e.clone())))
        .collect();
    let mut changed = false;
    let Some(entries) = new_index["manifests"].as_array_mut() else {
        return Ok(None);
    };
    for entry in entries.iter_mut() {
        let Some(name) = fallback_name(entry) else {
            continue;
        };
        let Some(old) = old_tags.get(&name) else {
            continue;
        };
        if old["digest"] == entry["digest"] {
            continue;
        }
        let (Some(old_list), Some(new_list)) = (
            read_layout_index(root, &old["digest"])?,
            read_layout_index(root, &entry["digest"])?,
        ) else {
            continue;
        };
        let mut listed = old_list;
        crate::referrers::add_listed(&mut listed, &new_list, &name)?;
        let bytes = crate::referrers::referrers_index(&listed);
        let digest = Digest::of(&bytes);
        write_layout_blob(root, &digest, &bytes)?;
        entry["digest"] = json!(digest.to_string());
        entry["size"] = json!(bytes.len());
        changed = true;
    }
    Ok(changed
        .then(|| serde_json::to_vec(&new_index).expect("serializing a JSON value cannot fail")))
}

/// The entries of the index blob `digest` names in the layout at `root`, verified;
/// `None` when it is absent or not an index.
fn read_layout_index(root: &Path, digest: &Value) -> Result<Option<Vec<Value>>> {
    let Some(digest) = digest.as_str().and_then(|d| Digest::parse(d).ok()) else {
        return Ok(None);
    };
    let path = root.join("blobs/sha256").join(digest.hex());
    let Ok(file) = std::fs::File::open(&path) else {
        return Ok(None);
    };
    let shown = path.display().to_string();
    let bytes = read_limited(file, MAX_JSON_SIZE, &shown)?;
    if Digest::of(&bytes) != digest {
        return Ok(None);
    }
    let index: Value = crate::model::image::parse_json(&bytes, &shown)?;
    Ok(index["manifests"].as_array().cloned())
}

/// Put `bytes` at `blobs/sha256/<hex>` of the layout at `root`: written beside it,
/// flushed and renamed in (a blob's name is its content, so a rename over one already
/// there changes nothing).
fn write_layout_blob(root: &Path, digest: &Digest, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = root.join("blobs/sha256");
    let path = dir.join(digest.hex());
    let shown = || path.display().to_string();
    let mut temp = tempfile::Builder::new()
        .prefix(".dockhand-referrers-")
        .tempfile_in(&dir)
        .map_err(|e| Error::io(format!("writing {}", shown()), e))?;
    use std::os::unix::fs::PermissionsExt;
    temp.write_all(bytes)
        .and_then(|()| {
            // Readable as every other blob of the layout is.
            temp.as_file()
                .set_permissions(std::fs::Permissions::from_mode(0o644))
        })
        .and_then(|()| temp.as_file().sync_all())
        .map_err(|e| Error::io(format!("writing {}", shown()), e))?;
    temp.persist(&path)
        .map_err(|e| Error::io(format!("writing {}", shown()), e.error))?;
    Ok(())
}

/// Whether `name` is a referrers fallback tag: `sha256-` and 64 hex digits.
fn is_fallback_tag(name: &str) -> bool {
    name.strip_prefix("sha256-")
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}
