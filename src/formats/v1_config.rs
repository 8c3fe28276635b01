//! The image config Docker and containers/image build for images that have none:
//! pre-1.10 `docker save` archives and Docker schema1 manifests both describe an image
//! as a chain of v1 layer JSON documents. diff_ids come from hashing the uncompressed
//! layers, so building such a config reads layer data.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::context::Meta;
use crate::container::FileRef;
use crate::error::Result;
use crate::layer::stored_and_uncompressed_digests;
use crate::model::digest::Digest;
use crate::model::image::{ConfigView, Descriptor, Image, Layer};
use crate::model::media::{self, Family};
use crate::text::shown;

/// Fields of a v1 image JSON that do not belong in an image config.
const V1_ONLY_FIELDS: &[&str] = &[
    "id",
    "parent",
    "parent_id",
    "layer_id",
    "throwaway",
    "Size",
    "checksum",
];

/// One v1 layer of a chain: its id, its JSON document and its layer file.
pub(crate) struct V1Layer {
    pub id: String,
    pub json: Arc<Map<String, Value>>,
    pub file: FileRef,
}

/// Build an image (config included) from a base-first chain of v1 layers. Layers are
/// hashed at most once per file for the whole input; the built config counts against
/// the input's metadata budget, as a config read from it would.
pub(crate) fn synthesize(meta: &Meta, chain: Vec<V1Layer>, family: Family) -> Result<Image> {
    let top = chain.last().expect("chains are never empty");
    let mut config = (*top.json).clone();
    for field in V1_ONLY_FIELDS {
        config.remove(*field);
    }
    let mut diff_ids = Vec::new();
    let mut history = Vec::new();
    let mut layers = Vec::new();
    for v1 in &chain {
        // A zero-byte layer.tar (or a throwaway layer) carries no filesystem change:
        // record it in history only, as Docker's v1 conversion does.
        let throwaway =
            v1.file.size == 0 || v1.json.get("throwaway").and_then(Value::as_bool) == Some(true);
        let mut entry = Map::new();
        if let Some(created) = v1.json.get("created") {
            entry.insert("created".into(), created.clone());
        }
        if let Some(cmd) = v1
            .json
            .get("container_config")
            .and_then(|c| c.get("Cmd"))
            .and_then(Value::as_array)
        {
            let words: Vec<&str> = cmd.iter().filter_map(Value::as_str).collect();
            entry.insert("created_by".into(), Value::String(words.join(" ")));
        }
        for key in ["author", "comment"] {
            if let Some(v) = v1
                .json
                .get(key)
                .filter(|v| v.as_str().is_some_and(|s| !s.is_empty()))
            {
                entry.insert(key.into(), v.clone());
            }
        }
        if throwaway {
            entry.insert("empty_layer".into(), Value::Bool(true));
            history.push(Value::Object(entry));
            continue;
        }
        history.push(Value::Object(entry));
        let compression = meta.sniff(&v1.file)?;
        let (digest, diff_id) = meta.layer_digests(&v1.file, || {
            stored_and_uncompressed_digests(&v1.file.blob, &v1.file.path, compression)
        })?;
        diff_ids.push(Value::String(diff_id.to_string()));
        layers.push(Layer {
            digest: Some(digest),
            size: v1.file.size,
            media_type: compression
                .layer_media_type(family)
                .unwrap_or(media::DOCKER_LAYER_TAR)
                .to_string(),
            compression,
            diff_id: Some(diff_id),
            path: v1.file.path.clone(),
            blob: Some(v1.file.blob.clone()),
        });
    }
    let mut rootfs = Map::new();
    rootfs.insert("type".into(), Value::String("layers".into()));
    rootfs.insert("diff_ids".into(), Value::Array(diff_ids));
    config.insert("rootfs".into(), Value::Object(rootfs));
    config.insert("history".into(), Value::Array(history));
    let bytes =
        serde_json::to_vec(&Value::Object(config)).expect("serializing a JSON value cannot fail");
    let config_path = format!("{}/json (synthesized config)", shown(&top.id));
    meta.charge(bytes.len() as u64, &config_path)?;
    meta.count_layers(layers.len())?;
    let view = ConfigView::parse(&bytes, "synthesized config")?;
    let digest = Digest::of(&bytes);
    Ok(Image {
        tags: Vec::new(),
        ref_names: Vec::new(),
        oci_ref_names: Default::default(),
        config: Descriptor {
            media_type: media::DOCKER_CONFIG.to_string(),
            digest: digest.clone(),
            size: bytes.len() as u64,
        },
        config_bytes: Arc::new(bytes),
        config_path,
        manifest: None,
        manifest_bytes: None,
        platform: view.platform(),
        layers,
        artifact: false,
        index: None,
        input: std::sync::Arc::clone(&meta.input),
        annotations: Default::default(),
    })
}
