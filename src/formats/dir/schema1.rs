//! Reading a Docker schema1 manifest held in a `dir:` layout, as containers/image
//! converts it: a config built from the `v1Compatibility` history.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::formats::context::Meta;
use crate::formats::manifest::{BlobStore, DirStore};
use crate::formats::v1_config::{synthesize, V1Layer};
use crate::model::digest::Digest;
use crate::model::image::{parse_json, Descriptor, Image};
use crate::model::media::{self, Family};
use crate::model::reference::Reference;
use crate::text::shown;

/// Read a Docker schema1 manifest held in a `dir:` layout, converting it as
/// containers/image does: a config from the `v1Compatibility` history.
pub(crate) fn read_schema1(
    meta: &Meta,
    store: &DirStore,
    manifest_bytes: &[u8],
    warnings: &mut Vec<String>,
) -> Result<Image> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct FsLayer {
        blob_sum: String,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct HistoryEntry {
        v1_compatibility: String,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Schema1 {
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        tag: Option<String>,
        fs_layers: Vec<FsLayer>,
        history: Vec<HistoryEntry>,
    }
    let manifest: Schema1 = parse_json(manifest_bytes, "manifest.json")?;
    if manifest.fs_layers.len() != manifest.history.len() || manifest.fs_layers.is_empty() {
        return Err(Error::malformed(
            "manifest.json",
            "schema1 fsLayers and history differ in length",
        ));
    }
    // Entries are top first; collapse consecutive duplicates as containers/image does.
    let mut chain: Vec<V1Layer> = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (fs, h) in manifest.fs_layers.iter().zip(&manifest.history).rev() {
        let json: Map<String, Value> = parse_json(
            h.v1_compatibility.as_bytes(),
            "manifest.json v1Compatibility",
        )?;
        let id = json
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if Digest::from_hex(&id).is_none() {
            return Err(Error::malformed(
                "manifest.json",
                format!("invalid v1 id \"{}\"", shown(&id)),
            ));
        }
        if chain.last().is_some_and(|l| l.id == id) {
            continue;
        }
        if seen.insert(id.clone(), chain.len()).is_some() {
            return Err(Error::malformed(
                "manifest.json",
                format!("v1 id {id} appears twice"),
            ));
        }
        let digest =
            Digest::parse(&fs.blob_sum).map_err(|e| Error::malformed("manifest.json", e))?;
        let file = store.find_blob(&digest)?.ok_or_else(|| Error::Missing {
            file: store.blob_path(&digest),
            what: format!("layer {digest}"),
        })?;
        chain.push(V1Layer {
            id,
            json: Arc::new(json),
            file,
        });
    }
    let mut image = synthesize(meta, chain, Family::Docker)?;
    // The stored blobs are content addressed: keep their digests and verify them.
    for layer in &mut image.layers {
        if let Some(hex) = layer.path.strip_suffix(".tar").or(Some(&layer.path)) {
            if let Some(d) = Digest::from_hex(hex) {
                layer.digest = Some(d);
            }
        }
    }
    image.manifest = Some(Descriptor {
        media_type: media::DOCKER_SCHEMA1.to_string(),
        digest: Digest::of(manifest_bytes),
        size: manifest_bytes.len() as u64,
    });
    if let (Some(name), Some(tag)) = (manifest.name, manifest.tag) {
        let full = format!("{name}:{tag}");
        match Reference::parse_why(&full) {
            Ok(r) => image.add_names([r], []),
            Err(why) => warnings.push(format!(
                "manifest.json: ignoring schema1 name \"{}\": {why}",
                shown(&full)
            )),
        }
    }
    Ok(image)
}
