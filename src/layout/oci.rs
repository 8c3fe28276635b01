//! Reading OCI image layouts (directory or tar): `index.json`, nested indexes and Docker
//! manifest lists, platform selection, attestation skipping, names from annotations.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::Deserialize;

use super::{read_json_file, read_verified, sniff, ReadOptions};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::image::{parse_json, ConfigView, Descriptor, Image, Layer, Platform};
use crate::media::{self, Compression};
use crate::reference::{valid_tag, Reference};
use crate::tree::{FileRef, FileTree};

/// Annotation holding the full image name (containerd, Docker >= 25).
pub const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";
/// Annotation holding the reference name (a tag, or a full reference for podman/skopeo).
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Marks attestation manifests in BuildKit indexes.
const ANNOTATION_REFERENCE_TYPE: &str = "vnd.docker.reference.type";
/// How deep indexes may nest.
const MAX_INDEX_DEPTH: usize = 8;

#[derive(Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawDescriptor {
    #[serde(default)]
    pub media_type: Option<String>,
    pub digest: String,
    pub size: i64,
    #[serde(default)]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub platform: Option<RawPlatform>,
}

#[derive(Deserialize, Clone, Debug)]
pub(super) struct RawPlatform {
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub variant: Option<String>,
}

impl RawPlatform {
    fn platform(&self) -> Platform {
        Platform {
            os: self.os.clone(),
            architecture: self.architecture.clone(),
            variant: self.variant.clone().filter(|v| !v.is_empty()),
        }
    }
}

impl RawDescriptor {
    pub(super) fn digest(&self, named_in: &str) -> Result<Digest> {
        Digest::parse(&self.digest).map_err(|e| Error::malformed(named_in, e))
    }
    pub(super) fn size(&self, named_in: &str) -> Result<u64> {
        u64::try_from(self.size)
            .map_err(|_| Error::malformed(named_in, format!("negative size {}", self.size)))
    }
    fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.as_ref()?.get(key).map(String::as_str)
    }
    fn is_attestation(&self) -> bool {
        self.annotation(ANNOTATION_REFERENCE_TYPE).is_some()
            || self
                .platform
                .as_ref()
                .is_some_and(|p| p.os == "unknown" && p.architecture == "unknown")
    }
}

#[derive(Deserialize)]
struct RawIndex {
    #[serde(default)]
    manifests: Option<Vec<RawDescriptor>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawManifest {
    pub config: RawDescriptor,
    #[serde(default)]
    pub layers: Option<Vec<RawDescriptor>>,
}

/// Where blobs live: `blobs/sha256/<hex>` for OCI layouts, `<hex>` for `dir:`.
pub(super) trait BlobStore {
    fn tree(&self) -> &dyn FileTree;
    fn blob_path(&self, digest: &Digest) -> String;
    fn find_blob(&self, digest: &Digest) -> Result<Option<FileRef>> {
        self.tree().find(&self.blob_path(digest))
    }
}

struct Layout<'a>(&'a dyn FileTree);

impl BlobStore for Layout<'_> {
    fn tree(&self) -> &dyn FileTree {
        self.0
    }
    fn blob_path(&self, digest: &Digest) -> String {
        format!("blobs/sha256/{}", digest.hex())
    }
}

/// Names carried by an index descriptor.
#[derive(Default, Clone)]
struct Names {
    tags: Vec<Reference>,
    ref_names: Vec<String>,
}

fn names_of(desc: &RawDescriptor, warnings: &mut Vec<String>) -> Names {
    let mut names = Names::default();
    if let Some(full) = desc.annotation(ANNOTATION_IMAGE_NAME) {
        match Reference::parse(full) {
            Ok(r) => {
                names.tags.push(r);
                return names;
            }
            Err(e) => warnings.push(format!("index.json: ignoring {ANNOTATION_IMAGE_NAME}: {e}")),
        }
    }
    if let Some(name) = desc.annotation(ANNOTATION_REF_NAME) {
        let looks_full = name.contains('/') || name.contains(':') || name.contains('@');
        if looks_full {
            match Reference::parse(name) {
                Ok(r) => names.tags.push(r),
                Err(_) => names.ref_names.push(name.to_string()),
            }
        } else if !name.is_empty() {
            names.ref_names.push(name.to_string());
        }
    }
    names
}

/// Read every image an OCI layout lists.
pub(super) fn read(
    tree: &dyn FileTree,
    options: &ReadOptions,
    warnings: &mut Vec<String>,
) -> Result<Vec<Image>> {
    check_layout_marker(tree, warnings)?;
    let index = read_index(tree)?;
    let store = Layout(tree);
    let mut walker = Walker {
        store: &store,
        wanted: options.wanted_platform(),
        warnings,
        images: Vec::new(),
        artifacts: Vec::new(),
        positions: HashMap::new(),
    };
    for desc in &index {
        let names = names_of(desc, walker.warnings);
        walker.walk(desc, &names, 0, true, "index.json")?;
    }
    let Walker {
        images, artifacts, ..
    } = walker;
    // A layout of artifacts only (a Helm chart, an SBOM) is carried as it is; in a
    // layout that holds images, artifacts beside them are left out.
    Ok(if images.is_empty() { artifacts } else { images })
}

fn check_layout_marker(tree: &dyn FileTree, warnings: &mut Vec<String>) -> Result<()> {
    let Some(file) = tree.find("oci-layout")? else {
        warnings.push("oci-layout file is missing; reading index.json anyway".into());
        return Ok(());
    };
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Marker {
        image_layout_version: String,
    }
    let marker: Marker = parse_json(&read_json_file(&file)?, "oci-layout")?;
    if !marker.image_layout_version.starts_with("1.") {
        return Err(Error::Unsupported(format!(
            "oci-layout: unsupported imageLayoutVersion {:?}",
            marker.image_layout_version
        )));
    }
    Ok(())
}

fn read_index(tree: &dyn FileTree) -> Result<Vec<RawDescriptor>> {
    let file = tree.find("index.json")?.ok_or_else(|| Error::Missing {
        file: "index.json".into(),
        what: "the OCI image index".into(),
    })?;
    let bytes = read_json_file(&file)?;
    let value: serde_json::Value = parse_json(&bytes, "index.json")?;
    let Some(obj) = value.as_object() else {
        return Err(Error::malformed("index.json", "is not a JSON object"));
    };
    if !obj.contains_key("manifests") {
        return Err(Error::malformed(
            "index.json",
            "has no \"manifests\" list: not an OCI image index",
        ));
    }
    let index: RawIndex =
        serde_json::from_value(value).map_err(|e| Error::malformed("index.json", e.to_string()))?;
    Ok(index.manifests.unwrap_or_default())
}

struct Walker<'a, 'w> {
    store: &'a dyn BlobStore,
    wanted: Platform,
    warnings: &'w mut Vec<String>,
    images: Vec<Image>,
    artifacts: Vec<Image>,
    /// Manifest digest -> (is artifact, position), to merge names of repeated entries.
    positions: HashMap<Digest, (bool, usize)>,
}

enum Doc {
    Index(Vec<RawDescriptor>),
    Manifest(RawManifest, Vec<u8>),
}

impl Walker<'_, '_> {
    fn fetch(&self, desc: &RawDescriptor, named_in: &str) -> Result<(Doc, Descriptor)> {
        let digest = desc.digest(named_in)?;
        let size = desc.size(named_in)?;
        let file = self
            .store
            .find_blob(&digest)?
            .ok_or_else(|| Error::Missing {
                file: self.store.blob_path(&digest),
                what: format!("blob {digest} referenced by {named_in}"),
            })?;
        let bytes = read_verified(&file, &digest, Some(size))?;
        let path = self.store.blob_path(&digest);
        let value: serde_json::Value = parse_json(&bytes, &path)?;
        let declared = desc.media_type.clone().or_else(|| {
            value
                .get("mediaType")
                .and_then(|m| m.as_str())
                .map(String::from)
        });
        let is_index = declared.as_deref().is_some_and(media::is_index)
            || (value.get("manifests").is_some() && value.get("config").is_none());
        let media_type = declared.unwrap_or_else(|| {
            if is_index {
                media::OCI_INDEX
            } else {
                media::OCI_MANIFEST
            }
            .to_string()
        });
        let descriptor = Descriptor {
            media_type,
            digest,
            size,
        };
        if is_index {
            let index: RawIndex = serde_json::from_value(value)
                .map_err(|e| Error::malformed(&path, e.to_string()))?;
            return Ok((Doc::Index(index.manifests.unwrap_or_default()), descriptor));
        }
        if value.get("config").is_none() {
            return Err(Error::malformed(
                &path,
                "is neither an image manifest nor an index",
            ));
        }
        let manifest: RawManifest =
            serde_json::from_value(value).map_err(|e| Error::malformed(&path, e.to_string()))?;
        Ok((Doc::Manifest(manifest, bytes), descriptor))
    }

    fn walk(
        &mut self,
        desc: &RawDescriptor,
        names: &Names,
        depth: usize,
        top: bool,
        named_in: &str,
    ) -> Result<()> {
        if depth > MAX_INDEX_DEPTH {
            return Err(Error::malformed(
                named_in,
                format!("indexes nested deeper than {MAX_INDEX_DEPTH}"),
            ));
        }
        let (doc, descriptor) = self.fetch(desc, named_in)?;
        match doc {
            Doc::Manifest(manifest, bytes) => {
                let image = image_from_manifest(
                    self.store,
                    &manifest,
                    &bytes,
                    descriptor,
                    &mut *self.warnings,
                )?;
                self.add(image, names);
            }
            Doc::Index(children) => {
                let label = format!("index {}", descriptor.digest);
                let picked = self.pick(&children, &label)?;
                match picked {
                    Some(child) => {
                        let child = child.clone();
                        self.walk(&child, names, depth + 1, false, &label)?;
                    }
                    None if top => {
                        let available: Vec<String> = children
                            .iter()
                            .filter(|c| !c.is_attestation())
                            .filter_map(|c| c.platform.as_ref().map(|p| p.platform().to_string()))
                            .collect();
                        if !available.is_empty() {
                            self.warnings.push(format!(
                                "skipping {label}: no {} image (it has {})",
                                self.wanted,
                                available.join(", ")
                            ));
                        }
                    }
                    None => {}
                }
            }
        }
        Ok(())
    }

    /// The first child of an index that is an image for the wanted platform (image-spec:
    /// "the first matching entry SHOULD be used"). Children of other platforms are never
    /// fetched, so their blobs may be absent.
    fn pick<'c>(
        &mut self,
        children: &'c [RawDescriptor],
        label: &str,
    ) -> Result<Option<&'c RawDescriptor>> {
        for child in children.iter().filter(|c| !c.is_attestation()) {
            let child_type = child.media_type.as_deref().unwrap_or("");
            if media::is_index(child_type) {
                return Ok(Some(child));
            }
            if let Some(p) = &child.platform {
                if p.platform().satisfies(&self.wanted) {
                    return Ok(Some(child));
                }
                continue;
            }
            // No platform on the descriptor: look at the image itself, if it is there.
            let Ok(digest) = child.digest(label) else {
                continue;
            };
            if self.store.find_blob(&digest)?.is_none() {
                continue;
            }
            if let Ok((Doc::Manifest(m, bytes), d)) = self.fetch(child, label) {
                let mut quiet = Vec::new();
                if let Ok(image) = image_from_manifest(self.store, &m, &bytes, d, &mut quiet) {
                    if !image.artifact && image.platform.satisfies(&self.wanted) {
                        return Ok(Some(child));
                    }
                }
            }
        }
        Ok(None)
    }

    fn add(&mut self, image: Image, names: &Names) {
        let key = image
            .manifest
            .as_ref()
            .expect("OCI images have manifests")
            .digest
            .clone();
        let artifact = image.artifact;
        let list = if artifact {
            &mut self.artifacts
        } else {
            &mut self.images
        };
        match self.positions.get(&key) {
            Some(&(a, i)) if a == artifact => {
                list[i].add_names(names.tags.clone(), names.ref_names.clone())
            }
            _ => {
                let mut image = image;
                image.add_names(names.tags.clone(), names.ref_names.clone());
                self.positions.insert(key, (artifact, list.len()));
                list.push(image);
            }
        }
    }
}

/// Build an [`Image`] from a parsed manifest whose blobs live in `store`.
pub(super) fn image_from_manifest(
    store: &dyn BlobStore,
    manifest: &RawManifest,
    manifest_bytes: &[u8],
    descriptor: Descriptor,
    warnings: &mut Vec<String>,
) -> Result<Image> {
    let at = store.blob_path(&descriptor.digest);
    let config_digest = manifest.config.digest(&at)?;
    let config_size = manifest.config.size(&at)?;
    let config_path = store.blob_path(&config_digest);
    let config_file = store
        .find_blob(&config_digest)?
        .ok_or_else(|| Error::Missing {
            file: config_path.clone(),
            what: format!("config {config_digest} of manifest {}", descriptor.digest),
        })?;
    let config_bytes = read_verified(&config_file, &config_digest, Some(config_size))?;
    let config_type = manifest.config.media_type.clone().unwrap_or_default();
    // Some producers label a real image config application/octet-stream (skopeo's
    // fixtures) or leave it out: look at the content then.
    let view: Option<ConfigView> = if media::is_image_config(&config_type) {
        // A config of the image type without rootfs (`{}`) describes no filesystem:
        // such a manifest is an artifact in disguise.
        Some(ConfigView::parse(&config_bytes, &config_path)?).filter(|v| v.rootfs.is_some())
    } else if config_type.is_empty() || config_type == "application/octet-stream" {
        ConfigView::parse(&config_bytes, &config_path)
            .ok()
            .filter(|v| v.rootfs.is_some())
    } else {
        None
    };
    let raw_layers = manifest.layers.clone().unwrap_or_default();
    let diff_ids = match &view {
        Some(v) => {
            let ids = v.diff_ids(&config_path)?;
            if ids.len() != raw_layers.len() {
                return Err(Error::malformed(
                    &at,
                    format!(
                        "manifest lists {} layers but its config has {} diff_ids",
                        raw_layers.len(),
                        ids.len()
                    ),
                ));
            }
            ids.into_iter().map(Some).collect()
        }
        None => vec![None; raw_layers.len()],
    };
    let mut layers = Vec::with_capacity(raw_layers.len());
    for (raw, diff_id) in raw_layers.iter().zip(diff_ids) {
        let digest = raw.digest(&at)?;
        let size = raw.size(&at)?;
        let path = store.blob_path(&digest);
        let file = store.find_blob(&digest)?;
        let media_type = raw
            .media_type
            .clone()
            .unwrap_or_else(|| media::OCI_LAYER_TAR.to_string());
        let compression = match &file {
            Some(f) => sniff(f)?,
            None => compression_from_media_type(&media_type),
        };
        if file.is_none() && view.is_some() {
            warnings.push(format!(
                "{path}: layer blob is absent (a foreign or non-distributable layer?)"
            ));
        }
        layers.push(Layer {
            digest,
            size,
            media_type,
            compression,
            diff_id,
            file,
            path,
        });
    }
    let platform = view.as_ref().map(ConfigView::platform).unwrap_or_default();
    Ok(Image {
        tags: Vec::new(),
        ref_names: Vec::new(),
        config: Descriptor {
            media_type: if config_type.is_empty() {
                media::OCI_CONFIG.to_string()
            } else {
                config_type
            },
            digest: config_digest,
            size: config_size,
        },
        config_bytes: Arc::new(config_bytes),
        config_path,
        manifest: Some(descriptor),
        manifest_bytes: Some(Arc::new(manifest_bytes.to_vec())),
        platform,
        layers,
        artifact: view.is_none(),
    })
}

fn compression_from_media_type(media_type: &str) -> Compression {
    if media_type.ends_with("gzip") {
        Compression::Gzip
    } else if media_type.ends_with("zstd") {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// What the OCI index of a Docker >= 25 or containerd save says about each image,
/// keyed by config digest.
pub(super) struct DockerSideInfo {
    pub manifest: Descriptor,
    pub manifest_bytes: Option<Arc<Vec<u8>>>,
    pub config_media_type: String,
    pub tags: Vec<Reference>,
    pub ref_names: Vec<String>,
}

pub(super) fn describe_for_docker(
    tree: &dyn FileTree,
    options: &ReadOptions,
) -> Result<HashMap<Digest, DockerSideInfo>> {
    let index = read_index(tree)?;
    let store = Layout(tree);
    let mut warnings = Vec::new();
    let mut walker = Walker {
        store: &store,
        wanted: options.wanted_platform(),
        warnings: &mut warnings,
        images: Vec::new(),
        artifacts: Vec::new(),
        positions: HashMap::new(),
    };
    for desc in &index {
        let names = names_of(desc, walker.warnings);
        // Missing blobs and odd entries are normal here; manifest.json is authoritative.
        let _ = walker.walk(desc, &names, 0, true, "index.json");
    }
    let mut out = HashMap::new();
    for image in walker.images {
        let Some(manifest) = image.manifest else {
            continue;
        };
        out.entry(image.config.digest.clone())
            .or_insert(DockerSideInfo {
                manifest,
                manifest_bytes: image.manifest_bytes,
                config_media_type: image.config.media_type,
                tags: image.tags,
                ref_names: image
                    .ref_names
                    .into_iter()
                    .filter(|n| valid_tag(n))
                    .collect(),
            });
    }
    Ok(out)
}
