//! Writing `docker save` archives: the classic layout every loader understands, or the
//! Docker >= 25 hybrid (an OCI layout plus manifest.json).

use std::collections::{BTreeMap, HashMap};

use serde_json::{json, Map, Value};

use crate::container::TreeWriter;
use crate::error::{Error, Result};
use crate::formats::manifest::blob_path;
use crate::formats::oci::{write_oci_with, OciLayers};
use crate::layer::{open_layer_in_turn, LayerForm};
use crate::model::digest::Digest;
use crate::model::image::Image;
use crate::progress::{Progress, Reporting};
use crate::transport::DockerLayout;

/// Fields of the config copied into the top layer's legacy `json`, as Docker does.
const V1_TOP_FIELDS: &[&str] = &[
    "architecture",
    "author",
    "comment",
    "config",
    "container",
    "container_config",
    "created",
    "docker_version",
    "os",
    "variant",
];

/// Write `images` as a docker-archive tree into `out`. Layers are always written
/// uncompressed (their diff_id is unchanged). RepoTags hold full references
/// (`docker.io/library/base:extra`), as skopeo and podman write them: docker loads them
/// under its short names and podman keeps them (a short `base:extra` would become
/// `localhost/base:extra` in podman). `repositories` keeps Docker's short form.
pub(crate) fn write_docker(
    images: &[Image],
    out: &mut dyn TreeWriter,
    layout: DockerLayout,
    progress: &dyn Progress,
) -> Result<Vec<String>> {
    let mut warnings = Vec::new();
    for image in images {
        if image.artifact {
            return Err(Error::Unsupported(format!(
                "{} is not a container image (config type {}); a docker archive cannot hold it: write oci or oci-archive instead",
                image.display_name(),
                image.config.media_type
            )));
        }
        if !image.ref_names.is_empty() && image.tags.is_empty() {
            warnings.push(format!(
                "{}: OCI name {:?} has no repository, so the docker archive leaves the image untagged (name it with a tag)",
                image.config.digest.short(),
                image.ref_names[0]
            ));
        }
    }
    let items = match layout {
        DockerLayout::Legacy => write_legacy(images, out, progress)?,
        DockerLayout::Hybrid => {
            let written = write_oci_with(images, out, OciLayers::UNCOMPRESSED, progress)?;
            images
                .iter()
                .zip(written)
                .map(|(image, w)| {
                    let layers = w.layers.iter().map(blob_path).collect();
                    manifest_item(image, blob_path(&w.config), layers)
                })
                .collect()
        }
    };
    let manifest =
        serde_json::to_vec(&Value::Array(items)).expect("serializing a JSON value cannot fail");
    out.file("manifest.json", manifest.len() as u64, &mut &manifest[..])?;
    if layout == DockerLayout::Legacy {
        if let Some(repositories) = repositories(images)? {
            out.file(
                "repositories",
                repositories.len() as u64,
                &mut &repositories[..],
            )?;
        }
    }
    Ok(warnings)
}

fn manifest_item(image: &Image, config: String, layers: Vec<String>) -> Value {
    let tags: Vec<String> = image.tags.iter().map(|t| t.to_string()).collect();
    json!({"Config": config, "RepoTags": tags, "Layers": layers})
}

/// The v1 id of each layer of `image`: deterministic, unique per (chain, parent), and
/// for the top layer also per config, so images that share a base share directories.
fn v1_ids(image: &Image) -> Vec<String> {
    let mut ids = Vec::with_capacity(image.layers.len());
    let mut chain: Option<Digest> = None;
    let mut parent = String::new();
    for (i, layer) in image.layers.iter().enumerate() {
        let diff_id = layer.diff_id.clone().expect("checked: not an artifact");
        let chain_id = match &chain {
            None => diff_id,
            Some(prev) => Digest::of(format!("{prev} {diff_id}").as_bytes()),
        };
        let seed = if i + 1 == image.layers.len() {
            format!("{chain_id} {parent} {}", image.config.digest)
        } else {
            format!("{chain_id} {parent}")
        };
        let id = Digest::of(seed.as_bytes()).hex().to_string();
        chain = Some(chain_id);
        parent = id.clone();
        ids.push(id);
    }
    ids
}

fn write_legacy(
    images: &[Image],
    out: &mut dyn TreeWriter,
    progress: &dyn Progress,
) -> Result<Vec<Value>> {
    let mut items = Vec::with_capacity(images.len());
    // diff_id -> the v1 directory whose layer.tar holds it.
    let mut layer_home: HashMap<Digest, String> = HashMap::new();
    let mut written_dirs: HashMap<String, ()> = HashMap::new();
    for image in images {
        let config_name = format!("{}.json", image.config.digest.hex());
        if !written_dirs.contains_key(&config_name) {
            let bytes = &image.config_bytes;
            out.file(&config_name, bytes.len() as u64, &mut &bytes[..])?;
            written_dirs.insert(config_name.clone(), ());
        }
        let config: Map<String, Value> =
            serde_json::from_slice(&image.config_bytes).unwrap_or_default();
        let ids = v1_ids(image);
        let mut layer_paths = Vec::with_capacity(ids.len());
        for (i, (layer, id)) in image.layers.iter().zip(&ids).enumerate() {
            let path = format!("{id}/layer.tar");
            let diff_id = layer.diff_id.clone().expect("checked: not an artifact");
            // manifest.json names the regular file holding the layer, never the link a
            // shared layer's other directories get: podman takes a layer's size from
            // the entry manifest.json names, and a link's is 0.
            layer_paths.push(match layer_home.get(&diff_id) {
                Some(home) => format!("{home}/layer.tar"),
                None => path.clone(),
            });
            if written_dirs.contains_key(id) {
                continue;
            }
            written_dirs.insert(id.clone(), ());
            out.dir(id)?;
            out.file(&format!("{id}/VERSION"), 3, &mut &b"1.0"[..])?;
            let json = v1_json(
                &config,
                id,
                i.checked_sub(1).map(|p| ids[p].as_str()),
                i + 1 == ids.len(),
            );
            out.file(&format!("{id}/json"), json.len() as u64, &mut &json[..])?;
            match layer_home.get(&diff_id) {
                Some(home) => out.symlink(&path, &format!("../{home}/layer.tar"))?,
                None => {
                    let reader = open_layer_in_turn(image, layer, LayerForm::Uncompressed)?;
                    let mut reader = Reporting::new(reader, progress, &layer.path, layer.size);
                    if layer.compression == crate::model::media::Compression::None {
                        out.file(&path, layer.size, &mut reader)?;
                    } else {
                        out.file_unsized(&path, &mut reader)?;
                    }
                    layer_home.insert(diff_id, id.clone());
                }
            }
        }
        items.push(manifest_item(image, config_name, layer_paths));
    }
    Ok(items)
}

/// The legacy per-layer JSON: id and parent, plus the image's fields on the top layer.
fn v1_json(config: &Map<String, Value>, id: &str, parent: Option<&str>, top: bool) -> Vec<u8> {
    let mut json = Map::new();
    json.insert("id".into(), json!(id));
    if let Some(p) = parent {
        json.insert("parent".into(), json!(p));
    }
    if top {
        for field in V1_TOP_FIELDS {
            if let Some(v) = config.get(*field) {
                json.insert((*field).into(), v.clone());
            }
        }
    } else {
        json.insert("created".into(), json!("1970-01-01T00:00:00Z"));
        json.insert("container_config".into(), json!({"Cmd": null}));
        if let Some(os) = config.get("os") {
            json.insert("os".into(), os.clone());
        }
    }
    serde_json::to_vec(&Value::Object(json)).expect("serializing a JSON value cannot fail")
}

/// The `repositories` file: familiar repository -> tag -> top v1 id. `None` when no
/// image is tagged (Docker omits the file then).
fn repositories(images: &[Image]) -> Result<Option<Vec<u8>>> {
    let mut repos: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for image in images {
        let Some(top) = v1_ids(image).pop() else {
            continue;
        };
        for tag in &image.tags {
            repos
                .entry(tag.familiar_repository())
                .or_default()
                .insert(tag.tag().to_string(), top.clone());
        }
    }
    if repos.is_empty() {
        return Ok(None);
    }
    Ok(Some(
        serde_json::to_vec(&repos).expect("serializing a map of strings cannot fail"),
    ))
}
