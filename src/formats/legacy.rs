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
use super::{replay, Memo, Meta, NameList};
use crate::container::{FileRef, FileTree};
use crate::error::{Error, Result};
use crate::model::digest::{Digest, HashSink, Hasher};
use crate::model::image::{parse_json, ConfigView, Descriptor, Image, Layer};
use crate::model::media::{self, Compression, Family};
use crate::model::reference::Reference;
use crate::text::shown;

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
    json: Arc<Map<String, Value>>,
    file: FileRef,
}

/// The `<id>/json` documents of a pre-1.10 archive, each parsed once however many
/// chains pass through it.
struct V1Jsons<'m, 't> {
    meta: &'m Meta<'t>,
    parsed: HashMap<String, Memo<Arc<Map<String, Value>>>>,
}

impl V1Jsons<'_, '_> {
    /// `<id>/json`, or `None` when the archive has no such file.
    fn get(&mut self, id: &str) -> Result<Option<Arc<Map<String, Value>>>> {
        let path = format!("{id}/json");
        if let Some(memo) = self.parsed.get(&path) {
            return replay(memo).map(Some);
        }
        let Some(file) = self.meta.tree.find(&path)? else {
            return Ok(None);
        };
        let memo = self
            .meta
            .read(&file)
            .and_then(|f| parse_json(&f.bytes, &shown(&path)))
            .map(Arc::new);
        self.parsed.insert(path, memo.clone());
        replay(&memo).map(Some)
    }
}

/// Read a pre-1.10 archive: every chain named in `repositories` (or every chain end
/// when there is no such file) becomes an image with a synthesized config.
pub(super) fn read_pre_1_10(meta: &Meta, warnings: &mut Vec<String>) -> Result<Vec<Image>> {
    let tree = meta.tree;
    let repositories: BTreeMap<String, BTreeMap<String, String>> =
        match meta.read_top("repositories")? {
            Some(f) => parse_json(&f.bytes, "repositories")?,
            None => BTreeMap::new(),
        };
    // Top layer id -> position, so many tags naming one image merge in linear time.
    let mut positions: HashMap<&str, usize> = HashMap::new();
    let mut tops: Vec<(String, NameList)> = Vec::new();
    for (repo, tags) in &repositories {
        for (tag, id) in tags {
            let name = format!("{repo}:{tag}");
            let reference = match Reference::parse_why(&name) {
                Ok(r) => Some(r),
                Err(why) => {
                    warnings.push(format!(
                        "repositories: ignoring \"{}\": {why}",
                        shown(&name)
                    ));
                    None
                }
            };
            let i = *positions.entry(id.as_str()).or_insert_with(|| {
                tops.push((id.clone(), NameList::default()));
                tops.len() - 1
            });
            tops[i].1.add(reference, []);
        }
    }
    let mut jsons = V1Jsons {
        meta,
        parsed: HashMap::new(),
    };
    if tops.is_empty() {
        // No names: every layer that is nobody's parent is an image.
        let mut ids = Vec::new();
        let mut parents = HashSet::new();
        for d in tree.top_level() {
            if let Some(json) = jsons.get(&d)? {
                if let Some(p) = json.get("parent").and_then(Value::as_str) {
                    parents.insert(p.to_string());
                }
                ids.push(d);
            }
        }
        tops = ids
            .into_iter()
            .filter(|i| !parents.contains(i))
            .map(|i| (i, NameList::default()))
            .collect();
    }
    let mut images = Vec::new();
    for (top, names) in tops {
        let chain = load_chain(&mut jsons, &top)?;
        let mut image = synthesize(meta, chain, Family::Docker)?;
        names.apply(&mut image);
        images.push(image);
    }
    Ok(images)
}

fn load_chain(jsons: &mut V1Jsons, top: &str) -> Result<Vec<V1Layer>> {
    let tree = jsons.meta.tree;
    let mut chain = Vec::new();
    let mut next = Some(top.to_string());
    while let Some(id) = next {
        if chain.len() >= MAX_CHAIN {
            return Err(Error::malformed(
                format!("{}/json", shown(top)),
                "parent chain too long (a loop?)",
            ));
        }
        if Digest::from_hex(&id).is_none() {
            return Err(Error::malformed(
                "repositories",
                format!("invalid layer id \"{}\"", shown(&id)),
            ));
        }
        let json = jsons.get(&id)?.ok_or_else(|| Error::Missing {
            file: format!("{id}/json"),
            what: "legacy image JSON".into(),
        })?;
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

/// Build an image (config included) from a base-first chain of v1 layers. Layers are
/// hashed at most once per file for the whole input; the built config counts against
/// the input's metadata budget, as a config read from it would.
fn synthesize(meta: &Meta, chain: Vec<V1Layer>, family: Family) -> Result<Image> {
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
        let (digest, diff_id) =
            meta.layer_digests(&v1.file, || digests_of(&v1.file, compression))?;
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
    let config_path = format!("{}/json (synthesized config)", shown(&top.id));
    meta.charge(bytes.len() as u64, &config_path)?;
    meta.count_layers(layers.len())?;
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
        config_path,
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
