//! Formats without an image config, for which one is built the way Docker and
//! containers/image build it: pre-1.10 `docker save` archives (`repositories` plus
//! `<id>/json` chains) and Docker schema1 manifests. diff_ids come from hashing the
//! uncompressed layers, so these readers do read layer data.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{self, Read};
use std::sync::Arc;

use serde_json::{Map, Value};

use super::dir_transport::DirStore;
use super::oci::BlobStore;
use super::{read_json_file, sniff};
use crate::digest::{Digest, HashSink, Hasher};
use crate::error::{Error, Result};
use crate::image::{parse_json, ConfigView, Descriptor, Image, Layer};
use crate::media::{self, Compression, Family};
use crate::reference::Reference;
use crate::tree::{FileRef, FileTree};

/// Longest chain of v1 parents followed.
const MAX_CHAIN: usize = 1000;

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

/// Does the tree have `<dir>/json` + `<dir>/layer.tar` at its top level?
pub(super) fn has_v1_layers(tree: &dyn FileTree) -> bool {
    tree.top_level()
        .iter()
        .take(64)
        .any(|d| tree.exists(&format!("{d}/json")) && tree.exists(&format!("{d}/layer.tar")))
}

/// The digests of `file` as stored and uncompressed, from one read.
fn digests_of(file: &FileRef, compression: Compression) -> Result<(Digest, Digest)> {
    /// Hashes the stored bytes as the decoder pulls them.
    struct Tap<R> {
        inner: R,
        hasher: Hasher,
    }
    impl<R: Read> Read for Tap<R> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.inner.read(buf)?;
            self.hasher.update(&buf[..n]);
            Ok(n)
        }
    }
    let corrupt = |e: io::Error| match Error::io(format!("reading {}", file.path), e) {
        Error::Io { cause, .. } => Error::malformed(
            &file.path,
            format!("layer is not valid {} data: {cause}", compression.name()),
        ),
        other => other,
    };
    let mut tap = Tap {
        inner: file.open()?,
        hasher: Hasher::new(),
    };
    let mut sink = HashSink::default();
    {
        let mut decoder = compression.decoder(&mut tap).map_err(corrupt)?;
        io::copy(&mut decoder, &mut sink).map_err(corrupt)?;
    }
    // Bytes after the compressed stream still belong to the stored blob.
    io::copy(&mut tap, &mut io::sink()).map_err(corrupt)?;
    Ok((tap.hasher.finish().0, sink.hasher.finish().0))
}

struct V1Layer {
    id: String,
    json: Map<String, Value>,
    file: FileRef,
}

/// Read a pre-1.10 archive: every chain named in `repositories` (or every chain end
/// when there is no such file) becomes an image with a synthesized config.
pub(super) fn read_pre_1_10(tree: &dyn FileTree, warnings: &mut Vec<String>) -> Result<Vec<Image>> {
    let repositories: BTreeMap<String, BTreeMap<String, String>> =
        match tree.find("repositories")? {
            Some(f) => parse_json(&read_json_file(&f)?, "repositories")?,
            None => BTreeMap::new(),
        };
    let mut tops: Vec<(String, Vec<Reference>)> = Vec::new();
    for (repo, tags) in &repositories {
        for (tag, id) in tags {
            let name = format!("{repo}:{tag}");
            let reference = match Reference::parse(&name) {
                Ok(r) => Some(r),
                Err(e) => {
                    warnings.push(format!("repositories: ignoring {e}"));
                    None
                }
            };
            match tops.iter_mut().find(|(t, _)| t == id) {
                Some((_, refs)) => refs.extend(reference),
                None => tops.push((id.clone(), reference.into_iter().collect())),
            }
        }
    }
    if tops.is_empty() {
        // No names: every layer that is nobody's parent is an image.
        let mut ids = Vec::new();
        let mut parents = HashSet::new();
        for d in tree.top_level() {
            if let Some(f) = tree.find(&format!("{d}/json"))? {
                let json: Map<String, Value> = parse_json(&read_json_file(&f)?, &f.path)?;
                if let Some(p) = json.get("parent").and_then(Value::as_str) {
                    parents.insert(p.to_string());
                }
                ids.push(d);
            }
        }
        tops = ids
            .into_iter()
            .filter(|i| !parents.contains(i))
            .map(|i| (i, Vec::new()))
            .collect();
    }
    let mut images = Vec::new();
    for (top, tags) in tops {
        let chain = load_chain(tree, &top)?;
        let mut image = synthesize(chain, Family::Docker)?;
        image.add_names(tags, Vec::new());
        images.push(image);
    }
    Ok(images)
}

fn load_chain(tree: &dyn FileTree, top: &str) -> Result<Vec<V1Layer>> {
    let mut chain = Vec::new();
    let mut next = Some(top.to_string());
    while let Some(id) = next {
        if chain.len() >= MAX_CHAIN {
            return Err(Error::malformed(
                format!("{top}/json"),
                "parent chain too long (a loop?)",
            ));
        }
        if Digest::from_hex(&id).is_none() {
            return Err(Error::malformed(
                "repositories",
                format!(
                    "invalid layer id {:?}",
                    id.chars().take(80).collect::<String>()
                ),
            ));
        }
        let json_path = format!("{id}/json");
        let json_file = tree.find(&json_path)?.ok_or_else(|| Error::Missing {
            file: json_path.clone(),
            what: "legacy image JSON".into(),
        })?;
        let json: Map<String, Value> = parse_json(&read_json_file(&json_file)?, &json_path)?;
        let layer_path = format!("{id}/layer.tar");
        let file = tree.resolve(&layer_path).map_err(|_| Error::Missing {
            file: layer_path.clone(),
            what: "legacy layer".into(),
        })?;
        next = json
            .get("parent")
            .and_then(Value::as_str)
            .filter(|p| !p.is_empty())
            .map(String::from);
        chain.push(V1Layer { id, json, file });
    }
    chain.reverse();
    Ok(chain)
}

/// Build an image (config included) from a base-first chain of v1 layers.
fn synthesize(chain: Vec<V1Layer>, family: Family) -> Result<Image> {
    let top = chain.last().expect("chains are never empty");
    let mut config = top.json.clone();
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
        let compression = sniff(&v1.file)?;
        let (digest, diff_id) = digests_of(&v1.file, compression)?;
        diff_ids.push(Value::String(diff_id.to_string()));
        layers.push(Layer {
            digest,
            size: v1.file.size,
            media_type: compression
                .layer_media_type(family)
                .unwrap_or(media::DOCKER_LAYER_TAR)
                .to_string(),
            compression,
            diff_id: Some(diff_id),
            path: v1.file.path.clone(),
            file: Some(v1.file.clone()),
        });
    }
    let mut rootfs = Map::new();
    rootfs.insert("type".into(), Value::String("layers".into()));
    rootfs.insert("diff_ids".into(), Value::Array(diff_ids));
    config.insert("rootfs".into(), Value::Object(rootfs));
    config.insert("history".into(), Value::Array(history));
    let bytes =
        serde_json::to_vec(&Value::Object(config)).expect("serializing a JSON value cannot fail");
    let view = ConfigView::parse(&bytes, "synthesized config")?;
    let digest = Digest::of(&bytes);
    Ok(Image {
        tags: Vec::new(),
        ref_names: Vec::new(),
        config: Descriptor {
            media_type: media::DOCKER_CONFIG.to_string(),
            digest: digest.clone(),
            size: bytes.len() as u64,
        },
        config_bytes: Arc::new(bytes),
        config_path: format!("{}/json (synthesized config)", top.id),
        manifest: None,
        manifest_bytes: None,
        platform: view.platform(),
        layers,
        artifact: false,
    })
}

/// Read a Docker schema1 manifest held in a `dir:` layout, converting it as
/// containers/image does: a config from the `v1Compatibility` history.
pub(super) fn read_schema1(
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
                format!(
                    "invalid v1 id {:?}",
                    id.chars().take(80).collect::<String>()
                ),
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
        chain.push(V1Layer { id, json, file });
    }
    let mut image = synthesize(chain, Family::Docker)?;
    // The stored blobs are content addressed: keep their digests and verify them.
    for layer in &mut image.layers {
        if let Some(hex) = layer.path.strip_suffix(".tar").or(Some(&layer.path)) {
            if let Some(d) = Digest::from_hex(hex) {
                layer.digest = d;
            }
        }
    }
    image.manifest = Some(Descriptor {
        media_type: media::DOCKER_SCHEMA1.to_string(),
        digest: Digest::of(manifest_bytes),
        size: manifest_bytes.len() as u64,
    });
    if let (Some(name), Some(tag)) = (manifest.name, manifest.tag) {
        match Reference::parse(&format!("{name}:{tag}")) {
            Ok(r) => image.add_names([r], []),
            Err(e) => warnings.push(format!("manifest.json: ignoring schema1 name: {e}")),
        }
    }
    Ok(image)
}
