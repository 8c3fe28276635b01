//! Writing `docker save` archives: the classic layout every loader understands, or the
//! Docker >= 25 hybrid (an OCI layout plus manifest.json).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;

use serde_json::{json, Map, Value};

use crate::container::TreeWriter;
use crate::error::{Error, Result};
use crate::formats::blobs::{BlobFiles, LayoutWriter};
use crate::formats::manifest::blob_path;
use crate::formats::oci::OciWriter;
use crate::model::digest::Digest;
use crate::model::image::{Descriptor, Image};
use crate::model::reference::Reference;
use crate::sink::{BlobInfo, BlobRole, ManifestInfo};
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

/// A docker-archive tree. Layers are always written uncompressed (their diff_id is
/// unchanged). RepoTags hold full references (`docker.io/library/base:extra`), as
/// skopeo and podman write them: docker loads them under its short names and podman
/// keeps them (a short `base:extra` would become `localhost/base:extra` in podman).
/// `repositories` keeps Docker's short form.
///
/// The legacy layout names files by each image's chain (`<v1 id>/layer.tar`), not by
/// digest: a layer is written where the first image holding it puts it, and another
/// image's directory for it gets a link there. The Docker >= 25 hybrid is an OCI layout
/// with manifest.json beside it.
pub(crate) struct DockerWriter {
    /// The OCI layout of a hybrid; `None` for the legacy layout.
    oci: Option<OciWriter>,
    /// The one name every image is written under, unless it already carries it (a
    /// daemon's load of `NAME:TAG`).
    name: Option<Reference>,
    /// manifest.json, in the order the images were put.
    items: Vec<Value>,
    /// Legacy: the files and directories written, by name.
    written: HashSet<String>,
    /// Legacy: diff_id -> the v1 directory whose layer.tar holds it, and its size.
    layer_home: HashMap<Digest, (String, u64)>,
    /// Legacy: the v1 ids of the last image's layers and its parsed config, by its
    /// config digest (computed once per image, not once per layer).
    current: Option<(Digest, Vec<String>, Map<String, Value>)>,
    /// Legacy: each image's tags and top v1 id, for `repositories`.
    tops: Vec<(Vec<Reference>, String)>,
}

impl DockerWriter {
    /// A writer of `layout`.
    pub(crate) fn new(layout: DockerLayout) -> DockerWriter {
        DockerWriter {
            oci: (layout == DockerLayout::Hybrid).then(OciWriter::new),
            name: None,
            items: Vec::new(),
            written: HashSet::new(),
            layer_home: HashMap::new(),
            current: None,
            tops: Vec::new(),
        }
    }

    /// The writer, naming every image `name` (and only that, unless it has it).
    pub(crate) fn naming(mut self, name: Reference) -> DockerWriter {
        self.name = Some(name);
        self
    }

    /// The names `image` is written under.
    fn tags_of(&self, image: &Image) -> Vec<Reference> {
        match &self.name {
            Some(name) if !image.tags.contains(name) => vec![name.clone()],
            _ => image.tags.clone(),
        }
    }

    /// The v1 ids of `image`'s layers and its parsed config (computed once per image).
    fn current(&mut self, image: &Image) -> (&[String], &Map<String, Value>) {
        let fresh = self
            .current
            .as_ref()
            .is_some_and(|(config, ..)| *config == image.config.digest);
        if !fresh {
            let config = serde_json::from_slice(&image.config_bytes).unwrap_or_default();
            self.current = Some((image.config.digest.clone(), v1_ids(image), config));
        }
        let (_, ids, config) = self.current.as_ref().expect("just set");
        (ids, config)
    }

    /// The v1 ids of `image`'s layers.
    fn ids_of(&mut self, image: &Image) -> &[String] {
        self.current(image).0
    }

    /// Legacy: write `image`'s config, first of all its files.
    fn put_config(&mut self, tree: &mut dyn TreeWriter, image: &Image) -> Result<u64> {
        let bytes = &image.config_bytes;
        let name = config_name(image);
        if self.written.insert(name.clone()) {
            tree.file(&name, bytes.len() as u64, &mut &bytes[..])?;
        }
        Ok(bytes.len() as u64)
    }

    /// Legacy: write the v1 directory of layer `index` of `image` (its `VERSION` and
    /// `json`) unless written; its v1 id, `None` when it was written already.
    fn put_v1_dir(
        &mut self,
        tree: &mut dyn TreeWriter,
        image: &Image,
        index: usize,
    ) -> Result<Option<String>> {
        self.put_config(tree, image)?;
        let id = self.ids_of(image)[index].clone();
        if self.written.contains(&id) {
            return Ok(None);
        }
        let (ids, config) = self.current(image);
        let parent = index.checked_sub(1).map(|p| ids[p].as_str());
        let json = v1_json(config, &id, parent, index + 1 == ids.len());
        self.written.insert(id.clone());
        tree.dir(&id)?;
        tree.file(&format!("{id}/VERSION"), 3, &mut &b"1.0"[..])?;
        tree.file(&format!("{id}/json"), json.len() as u64, &mut &json[..])?;
        Ok(Some(id))
    }
}

/// The name of `image`'s config file in the legacy layout.
fn config_name(image: &Image) -> String {
    format!("{}.json", image.config.digest.hex())
}

impl LayoutWriter for DockerWriter {
    fn prepare(&mut self, tree: &mut dyn TreeWriter, images: &[Image]) -> Result<Vec<String>> {
        let mut warnings = Vec::new();
        for image in images {
            if image.artifact {
                return Err(Error::Unsupported(format!(
                    "{} is not a container image (config type {}); a docker archive cannot hold it: write oci or oci-archive instead",
                    image.display_name(),
                    image.config.media_type
                )));
            }
            if !image.ref_names.is_empty() && self.tags_of(image).is_empty() {
                warnings.push(format!(
                    "{}: OCI name {:?} has no repository, so the docker archive leaves the image untagged (name it with a tag)",
                    image.config.digest.short(),
                    image.ref_names[0]
                ));
            }
        }
        if let Some(oci) = &mut self.oci {
            oci.prepare(tree, images)?;
        }
        Ok(warnings)
    }

    fn blob_files(&self) -> Option<&BlobFiles> {
        self.oci.as_ref()?.blob_files()
    }

    fn try_reusing_blob(
        &mut self,
        tree: &mut dyn TreeWriter,
        blob: &BlobInfo,
    ) -> Result<Option<u64>> {
        if let Some(files) = self.blob_files() {
            return files.try_reusing(tree, blob);
        }
        let image = blob.image;
        match blob.role {
            BlobRole::Attached => Err(legacy_holds_no_referrers()),
            BlobRole::Config => self.put_config(tree, image).map(Some),
            BlobRole::Layer { index, .. } => {
                let diff_id = image.layers[index]
                    .diff_id
                    .as_ref()
                    .expect("checked: not an artifact");
                let Some((home, size)) = self.layer_home.get(diff_id).cloned() else {
                    return Ok(None);
                };
                if let Some(id) = self.put_v1_dir(tree, image, index)? {
                    // Held by another image's directory: a link to it.
                    tree.symlink(&format!("{id}/layer.tar"), &format!("../{home}/layer.tar"))?;
                }
                Ok(Some(size))
            }
        }
    }

    fn put_blob(
        &mut self,
        tree: &mut dyn TreeWriter,
        blob: &BlobInfo,
        data: &mut dyn Read,
    ) -> Result<(Digest, u64)> {
        if let Some(files) = self.blob_files() {
            return files.put(tree, blob, data);
        }
        let image = blob.image;
        let index = match blob.role {
            BlobRole::Config => {
                let size = self.put_config(tree, image)?;
                return Ok((image.config.digest.clone(), size));
            }
            BlobRole::Layer { index, .. } => index,
            BlobRole::Attached => return Err(legacy_holds_no_referrers()),
        };
        let diff_id = image.layers[index]
            .diff_id
            .clone()
            .expect("checked: not an artifact");
        let id = match self.put_v1_dir(tree, image, index)? {
            Some(id) => id,
            None => self.ids_of(image)[index].clone(),
        };
        let path = format!("{id}/layer.tar");
        let size = match blob.size {
            Some(size) => tree.file(&path, size, data).map(|()| size)?,
            None => tree.file_unsized(&path, data)?,
        };
        self.layer_home.insert(diff_id.clone(), (id, size));
        Ok((diff_id, size))
    }

    fn put_manifest(&mut self, tree: &mut dyn TreeWriter, manifest: &ManifestInfo) -> Result<()> {
        if let Some(oci) = &mut self.oci {
            oci.put_manifest(tree, manifest)?;
        }
        // manifest.json lists images, not indexes.
        let Some(image) = manifest.image else {
            return Ok(());
        };
        let tags = self.tags_of(image);
        let item = match &self.oci {
            Some(_) => {
                let config = manifest
                    .config
                    .expect("an image's manifest names its config");
                manifest_item(
                    &tags,
                    blob_path(config),
                    manifest.layers.iter().map(blob_path).collect(),
                )
            }
            None => {
                let ids = self.ids_of(image).to_vec();
                // manifest.json names the regular file holding each layer, never the
                // link another directory has: podman takes a layer's size from the
                // entry manifest.json names, and a link's is 0.
                let layers = image
                    .layers
                    .iter()
                    .zip(&ids)
                    .map(|(layer, id)| {
                        let diff_id = layer.diff_id.as_ref().expect("checked: not an artifact");
                        let home = self.layer_home.get(diff_id).map_or(id, |(home, _)| home);
                        format!("{home}/layer.tar")
                    })
                    .collect();
                if let Some(top) = ids.last() {
                    self.tops.push((tags.clone(), top.clone()));
                }
                manifest_item(&tags, config_name(image), layers)
            }
        };
        self.items.push(item);
        Ok(())
    }

    fn put_names(
        &mut self,
        tree: &mut dyn TreeWriter,
        manifest: &Descriptor,
        image: &Image,
    ) -> Result<()> {
        // manifest.json names each image by its RepoTags, given with its manifest.
        match &mut self.oci {
            Some(oci) => oci.put_names(tree, manifest, image),
            None => Ok(()),
        }
    }

    fn finish(&mut self, tree: &mut dyn TreeWriter) -> Result<()> {
        if let Some(oci) = &mut self.oci {
            oci.finish(tree)?;
        }
        let manifest = serde_json::to_vec(&Value::Array(std::mem::take(&mut self.items)))
            .expect("serializing a JSON value cannot fail");
        tree.file("manifest.json", manifest.len() as u64, &mut &manifest[..])?;
        if self.oci.is_none() {
            if let Some(repositories) = repositories(&self.tops) {
                tree.file(
                    "repositories",
                    repositories.len() as u64,
                    &mut &repositories[..],
                )?;
            }
        }
        Ok(())
    }
}

/// The legacy layout keeps layers by image, not blobs by digest: nothing attached to
/// an image has a place there (convert refuses such a request before writing).
fn legacy_holds_no_referrers() -> crate::error::Error {
    crate::error::Error::Unsupported(
        "the legacy docker-archive layout has no place for referrers".into(),
    )
}

fn manifest_item(tags: &[Reference], config: String, layers: Vec<String>) -> Value {
    let tags: Vec<String> = tags.iter().map(|t| t.to_string()).collect();
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

/// The `repositories` file: familiar repository -> tag -> top v1 id, from each image's
/// tags and top v1 id. `None` when no image is tagged (Docker omits the file then).
fn repositories(tops: &[(Vec<Reference>, String)]) -> Option<Vec<u8>> {
    let mut repos: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (tags, top) in tops {
        for tag in tags {
            repos
                .entry(tag.familiar_repository())
                .or_default()
                .insert(tag.tag().to_string(), top.clone());
        }
    }
    if repos.is_empty() {
        return None;
    }
    Some(serde_json::to_vec(&repos).expect("serializing a map of strings cannot fail"))
}
