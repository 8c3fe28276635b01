//! Reading OCI image layouts (directory or tar): `index.json`, nested indexes and Docker
//! manifest lists, platform selection, attestation skipping, names from annotations.
//! Everything below an index entry is read from a [`BlobStore`] by digest, so a
//! registry, which has no `index.json`, reads its manifests the same way
//! ([`read_from_root`]).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde::Deserialize;

use super::{ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME};
use crate::error::{Error, Result};
use crate::formats::context::{replay, Memo, Meta, MetaFile, NameList};
use crate::formats::manifest::{
    image_from_manifest, BlobStore, OciStore, RawDescriptor, RawIndex, RawManifest, RawPlatform,
};
use crate::formats::{no_platform, platform_list, ReadOptions};
use crate::model::digest::Digest;
use crate::model::image::{parse_json, Descriptor, Image, IndexOf, Platform};
use crate::model::media::{self};
use crate::model::reference::{valid_ref_name, valid_tag, Reference};
use crate::text::shown;

/// How deep indexes may nest.
const MAX_INDEX_DEPTH: usize = 8;

/// Names carried by an index descriptor.
#[derive(Default, Clone)]
struct Names {
    tags: Vec<Reference>,
    ref_names: Vec<String>,
    /// The ref.name text given for a tag, kept as it was for OCI outputs.
    ref_name_texts: Vec<(Reference, String)>,
}

fn names_of(desc: &RawDescriptor, warnings: &mut Vec<String>) -> Names {
    let mut names = Names::default();
    let ref_name = desc
        .annotation(ANNOTATION_REF_NAME)
        .filter(|name| !name.is_empty());
    let ref_name = match ref_name {
        Some(name) if !valid_ref_name(name) => {
            // Never kept: an output would copy it into its own index.
            warnings.push(format!(
                "index.json: ignoring {ANNOTATION_REF_NAME} \"{}\": not a valid reference name",
                shown(name)
            ));
            None
        }
        other => other,
    };
    if let Some(full) = desc.annotation(ANNOTATION_IMAGE_NAME) {
        match Reference::parse_why(full) {
            Ok(r) => {
                if let Some(name) = ref_name {
                    names.ref_name_texts.push((r.clone(), name.to_string()));
                }
                names.tags.push(r);
                return names;
            }
            Err(why) => warnings.push(format!(
                "index.json: ignoring {ANNOTATION_IMAGE_NAME} \"{}\": {why}",
                shown(full)
            )),
        }
    }
    if let Some(name) = ref_name {
        let looks_full = name.contains('/') || name.contains(':') || name.contains('@');
        match Reference::parse(name) {
            Ok(r) if looks_full => {
                names.ref_name_texts.push((r.clone(), name.to_string()));
                names.tags.push(r);
            }
            _ => names.ref_names.push(name.to_string()),
        }
    }
    names
}

/// Read every image an OCI layout lists.
pub(crate) fn read(
    meta: &Meta,
    options: &ReadOptions,
    warnings: &mut Vec<String>,
) -> Result<Vec<Image>> {
    check_layout_marker(meta)?;
    let index = read_index(meta)?;
    let store = OciStore(meta.tree);
    let mut walker = Walker::new(meta, &store, options, true, warnings);
    for desc in index.iter() {
        let names = names_of(desc, walker.warnings);
        let root = walker.walk(desc, &names, 0, true, "index.json")?;
        meta.roots.borrow_mut().push(root);
    }
    images_walked(walker, options)
}

/// Read the images below `root`, a manifest or index whose blobs (its own bytes
/// included) `store` holds, as if it were the one entry of an OCI layout's
/// `index.json`: what a registry reference resolves to. `named_in` names where the
/// root was found.
pub(crate) fn read_from_root(
    meta: &Meta,
    store: &dyn BlobStore,
    root: &Descriptor,
    named_in: &str,
    options: &ReadOptions,
    warnings: &mut Vec<String>,
) -> Result<Vec<Image>> {
    let desc = RawDescriptor {
        media_type: Some(root.media_type.clone()),
        digest: root.digest.to_string(),
        size: i64::try_from(root.size)
            .map_err(|_| Error::malformed(named_in, format!("size {}", root.size)))?,
        annotations: None,
        platform: None,
    };
    let mut walker = Walker::new(meta, store, options, true, warnings);
    walker.walk(&desc, &Names::default(), 0, true, named_in)?;
    images_walked(walker, options)
}

/// The images a walk of index entries found, or why none was wanted.
fn images_walked(mut walker: Walker, options: &ReadOptions) -> Result<Vec<Image>> {
    let skipped = walker.skipped;
    let held = std::mem::take(&mut walker.held);
    let (images, artifacts) = walker.finish();
    if images.is_empty() && skipped {
        return Err(no_platform(options, &held));
    }
    // A layout of artifacts only (a Helm chart, an SBOM) is carried as it is; in a
    // layout that holds images, artifacts beside them are left out.
    Ok(if images.is_empty() { artifacts } else { images })
}

fn check_layout_marker(meta: &Meta) -> Result<()> {
    let Some(file) = meta.read_top("oci-layout")? else {
        meta.warnings
            .borrow_mut()
            .push("oci-layout file is missing; reading index.json anyway".into());
        return Ok(());
    };
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Marker {
        image_layout_version: String,
    }
    let marker: Marker = parse_json(&file.bytes, "oci-layout")?;
    if !marker.image_layout_version.starts_with("1.") {
        return Err(Error::Unsupported(format!(
            "oci-layout: unsupported imageLayoutVersion \"{}\"; dockhand reads OCI layouts of version 1.x",
            shown(&marker.image_layout_version)
        )));
    }
    Ok(())
}

fn read_index(meta: &Meta) -> Result<Vec<RawDescriptor>> {
    let file = meta.read_top("index.json")?.ok_or_else(|| Error::Missing {
        file: "index.json".into(),
        what: "the OCI image index".into(),
    })?;
    let value: serde_json::Value = parse_json(&file.bytes, "index.json")?;
    let Some(obj) = value.as_object() else {
        return Err(Error::malformed("index.json", "is not a JSON object"));
    };
    if !obj.contains_key("manifests") {
        return Err(Error::malformed(
            "index.json",
            "has no \"manifests\" list: not an OCI image index",
        ));
    }
    let index = RawIndex::deserialize(&value)
        .map_err(|e| Error::malformed("index.json", shown(&e.to_string())))?;
    Ok(index.manifests.unwrap_or_default())
}

/// A manifest or index blob, read, verified and parsed once per digest in both the
/// forms a descriptor may ask for.
struct Parsed {
    file: Arc<MetaFile>,
    /// The document's own `mediaType`.
    media_type: Option<String>,
    /// It has `manifests` and no `config`.
    looks_index: bool,
    index: Memo<Arc<Vec<RawDescriptor>>>,
    /// `None` when there is no `config`: not a manifest.
    manifest: Option<Memo<Arc<RawManifest>>>,
}

fn parse_doc(file: Arc<MetaFile>, path: &str) -> Result<Parsed> {
    let value: serde_json::Value = parse_json(&file.bytes, path)?;
    let bad = |e: serde_json::Error| Error::malformed(path, shown(&e.to_string()));
    let index = RawIndex::deserialize(&value)
        .map(|i| Arc::new(i.manifests.unwrap_or_default()))
        .map_err(bad);
    let manifest = value
        .get("config")
        .map(|_| RawManifest::deserialize(&value).map(Arc::new).map_err(bad));
    Ok(Parsed {
        media_type: value
            .get("mediaType")
            .and_then(|m| m.as_str())
            .map(String::from),
        looks_index: value.get("manifests").is_some() && value.get("config").is_none(),
        index,
        manifest,
        file,
    })
}

/// An image built from a manifest, with the warnings building it gave (shown when the
/// image is kept, once).
struct Built {
    image: Image,
    warnings: Vec<String>,
}

/// Walks index.json and the indexes it names. Every document is fetched and parsed
/// once, every manifest becomes an image once, and every nested index is resolved once:
/// an index listing one child 20,000 times, or nested indexes repeating each other,
/// cost what their bytes do.
struct Walker<'a, 'w> {
    meta: &'a Meta<'a>,
    store: &'a dyn BlobStore,
    wanted: Platform,
    /// Filter images listed directly by index.json by platform (an explicit request).
    filter_top: bool,
    warnings: &'w mut Vec<String>,
    images: Vec<Image>,
    artifacts: Vec<Image>,
    image_names: Vec<NameList>,
    artifact_names: Vec<NameList>,
    /// Manifest digest -> (is artifact, position), to merge names of repeated entries.
    positions: HashMap<Digest, (bool, usize)>,
    docs: HashMap<Digest, Memo<Arc<Parsed>>>,
    built: HashMap<Digest, Memo<Arc<Built>>>,
    /// Index digest -> the manifest its walk ended at (`None`: nothing picked).
    resolved: HashMap<Digest, Memo<Option<Digest>>>,
    /// Platforms of images seen, for an error when none is wanted.
    held: Vec<Platform>,
    held_seen: HashSet<Platform>,
    /// An image was passed over for its platform.
    skipped: bool,
    /// Every platform of an index is taken (`--all`).
    all: bool,
    /// The outermost index being walked with `all`, which its images record.
    within: Option<Arc<IndexOf>>,
    /// With `all`: index digest -> every manifest its walk took.
    resolved_all: HashMap<Digest, Vec<Digest>>,
}

enum Doc {
    Index(Arc<Vec<RawDescriptor>>),
    Manifest(Arc<RawManifest>, Arc<MetaFile>),
}

impl<'a, 'w> Walker<'a, 'w> {
    fn new(
        meta: &'a Meta<'a>,
        store: &'a dyn BlobStore,
        options: &ReadOptions,
        filter_top: bool,
        warnings: &'w mut Vec<String>,
    ) -> Self {
        Walker {
            meta,
            store,
            wanted: options.wanted_platform(),
            filter_top: filter_top && options.platform.is_some() && !options.all_platforms,
            warnings,
            images: Vec::new(),
            artifacts: Vec::new(),
            image_names: Vec::new(),
            artifact_names: Vec::new(),
            positions: HashMap::new(),
            docs: HashMap::new(),
            built: HashMap::new(),
            resolved: HashMap::new(),
            held: Vec::new(),
            held_seen: HashSet::new(),
            skipped: false,
            all: options.all_platforms,
            within: None,
            resolved_all: HashMap::new(),
        }
    }

    /// The images and artifacts, with their names.
    fn finish(self) -> (Vec<Image>, Vec<Image>) {
        let named = |list: Vec<Image>, names: Vec<NameList>| {
            list.into_iter()
                .zip(names)
                .map(|(mut image, names)| {
                    names.apply(&mut image);
                    image
                })
                .collect()
        };
        (
            named(self.images, self.image_names),
            named(self.artifacts, self.artifact_names),
        )
    }

    fn hold(&mut self, platform: Platform) {
        self.skipped = true;
        if self.held_seen.insert(platform.clone()) {
            self.held.push(platform);
        }
    }

    fn parsed(&mut self, digest: &Digest, size: u64, named_in: &str) -> Result<Arc<Parsed>> {
        if let Some(memo) = self.docs.get(digest) {
            let parsed = replay(memo)?;
            let actual = parsed.file.bytes.len() as u64;
            if actual != size {
                return Err(Error::SizeMismatch {
                    file: self.store.blob_path(digest),
                    expected: size,
                    actual,
                });
            }
            return Ok(parsed);
        }
        let path = self.store.blob_path(digest);
        let file = self
            .store
            .find_blob(digest)?
            .ok_or_else(|| Error::Missing {
                file: path.clone(),
                what: format!("blob {digest} referenced by {named_in}"),
            })?;
        let read = self.meta.read_verified(&file, digest, Some(size))?;
        let memo = parse_doc(read, &path).map(Arc::new);
        self.docs.insert(digest.clone(), memo.clone());
        replay(&memo)
    }

    fn fetch(&mut self, desc: &RawDescriptor, named_in: &str) -> Result<(Doc, Descriptor)> {
        let digest = desc.digest(named_in)?;
        let size = desc.size(named_in)?;
        let parsed = self.parsed(&digest, size, named_in)?;
        let declared = desc
            .media_type
            .clone()
            .or_else(|| parsed.media_type.clone());
        let is_index = declared.as_deref().is_some_and(media::is_index) || parsed.looks_index;
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
            return Ok((Doc::Index(replay(&parsed.index)?), descriptor));
        }
        match &parsed.manifest {
            None => Err(Error::malformed(
                self.store.blob_path(&descriptor.digest),
                "is neither an image manifest nor an index",
            )),
            Some(m) => Ok((Doc::Manifest(replay(m)?, parsed.file.clone()), descriptor)),
        }
    }

    /// The image of a manifest, built once per manifest digest.
    fn build(
        &mut self,
        manifest: &RawManifest,
        file: &MetaFile,
        descriptor: Descriptor,
    ) -> Result<Arc<Built>> {
        if let Some(memo) = self.built.get(&descriptor.digest) {
            return replay(memo);
        }
        let digest = descriptor.digest.clone();
        let mut warnings = Vec::new();
        let memo = image_from_manifest(
            self.meta,
            self.store,
            manifest,
            &file.bytes,
            descriptor,
            &mut warnings,
        )
        .map(|image| Arc::new(Built { image, warnings }));
        self.built.insert(digest, memo.clone());
        replay(&memo)
    }

    /// Walk one descriptor; returns the manifest digest of the image it ended at.
    fn walk(
        &mut self,
        desc: &RawDescriptor,
        names: &Names,
        depth: usize,
        top: bool,
        named_in: &str,
    ) -> Result<Option<Digest>> {
        if depth > MAX_INDEX_DEPTH {
            return Err(Error::malformed(
                named_in,
                format!("indexes nested deeper than {MAX_INDEX_DEPTH}"),
            ));
        }
        let digest = desc.digest(named_in)?;
        if let Some(keys) = self.resolved_all.get(&digest).cloned() {
            for key in &keys {
                self.add_names(key, names);
            }
            return Ok(keys.first().cloned());
        }
        if let Some(memo) = self.resolved.get(&digest) {
            let key = replay(memo)?;
            if let Some(key) = &key {
                self.add_names(key, names);
            }
            return Ok(key);
        }
        let (doc, descriptor) = self.fetch(desc, named_in)?;
        match doc {
            Doc::Manifest(manifest, file) => {
                let built = self.build(&manifest, &file, descriptor)?;
                if top
                    && self.filter_top
                    && !built.image.artifact
                    && !built.image.platform.satisfies(&self.wanted)
                {
                    self.hold(built.image.platform.clone());
                    return Ok(None);
                }
                self.add(&built, names);
                Ok(Some(digest))
            }
            Doc::Index(children) if self.all => self.walk_all(&children, &descriptor, names, depth),
            Doc::Index(children) => {
                let result = self.walk_index(&children, &descriptor, names, depth, top);
                let memo = match &result {
                    Ok(key) => Ok(key.clone()),
                    Err(e) => Err(e.clone()),
                };
                self.resolved.insert(digest, memo);
                result
            }
        }
    }

    /// Note every platform `children` list, present or not (for `inspect --platforms`).
    fn list_platforms(&mut self, children: &[RawDescriptor], index: &Digest) -> Result<()> {
        let mut listed = self.meta.platforms.borrow_mut();
        for child in children.iter().filter(|c| !c.is_attestation()) {
            let (Some(platform), Ok(digest)) = (&child.platform, child.digest("index")) else {
                continue;
            };
            let entry = crate::model::image::ListedPlatform {
                index: index.clone(),
                platform: platform.platform(),
                present: self.store.find_blob(&digest)?.is_some(),
                manifest: digest,
            };
            if listed.len() < 10_000 && !listed.contains(&entry) {
                listed.push(entry);
            }
        }
        Ok(())
    }

    fn walk_index(
        &mut self,
        children: &[RawDescriptor],
        descriptor: &Descriptor,
        names: &Names,
        depth: usize,
        top: bool,
    ) -> Result<Option<Digest>> {
        self.list_platforms(children, &descriptor.digest)?;
        let label = format!("index {}", descriptor.digest);
        match self.pick(children, &label)? {
            Some(child) => self.walk(child, names, depth + 1, false, &label),
            None => {
                if top {
                    let available: Vec<Platform> = children
                        .iter()
                        .filter(|c| !c.is_attestation())
                        .filter_map(|c| c.platform.as_ref().map(RawPlatform::platform))
                        .collect();
                    if !available.is_empty() {
                        self.warnings.push(format!(
                            "skipping {label}: no {} image (it has {})",
                            shown(&self.wanted.to_string()),
                            platform_list(&available)
                        ));
                    }
                }
                Ok(None)
            }
        }
    }

    /// Every child of an index (`--all`), its images recording the outermost index.
    fn walk_all(
        &mut self,
        children: &[RawDescriptor],
        descriptor: &Descriptor,
        names: &Names,
        depth: usize,
    ) -> Result<Option<Digest>> {
        self.list_platforms(children, &descriptor.digest)?;
        let label = format!("index {}", descriptor.digest);
        let outermost = self.within.is_none();
        if outermost {
            let path = self.store.blob_path(&descriptor.digest);
            let bytes = self
                .docs
                .get(&descriptor.digest)
                .and_then(|m| m.as_ref().ok())
                .map(|parsed| Arc::clone(&parsed.file.bytes))
                .ok_or_else(|| Error::malformed(path, "an index read but not kept"))?;
            self.within = Some(Arc::new(IndexOf {
                descriptor: descriptor.clone(),
                bytes,
                annotations: Default::default(),
            }));
        }
        let mut keys = Vec::new();
        let mut result = Ok(());
        for child in children.iter().filter(|c| !c.is_attestation()) {
            // A sparse index (a one-platform export) lists platforms it lacks.
            let digest = child.digest(&label)?;
            if self.store.find_blob(&digest)?.is_none() {
                let platform = child
                    .platform
                    .as_ref()
                    .map_or_else(|| "?".to_string(), |p| p.platform().to_string());
                self.warnings.push(format!(
                    "{label}: the {} manifest {} is absent; taking the platforms present",
                    shown(&platform),
                    digest.short()
                ));
                continue;
            }
            match self.walk(child, names, depth + 1, false, &label) {
                Ok(Some(key)) => keys.push(key),
                Ok(None) => {}
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        if outermost {
            self.within = None;
        }
        result?;
        self.resolved_all
            .insert(descriptor.digest.clone(), keys.clone());
        Ok(keys.first().cloned())
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
                let platform = p.platform();
                if platform.satisfies(&self.wanted) {
                    return Ok(Some(child));
                }
                self.hold(platform);
                continue;
            }
            // No platform on the descriptor: look at the image itself, if it is there.
            let Ok(digest) = child.digest(label) else {
                continue;
            };
            if self.store.find_blob(&digest)?.is_none() {
                continue;
            }
            if let Ok((Doc::Manifest(m, file), d)) = self.fetch(child, label) {
                if let Ok(built) = self.build(&m, &file, d) {
                    if !built.image.artifact {
                        if built.image.platform.satisfies(&self.wanted) {
                            return Ok(Some(child));
                        }
                        self.hold(built.image.platform.clone());
                    }
                }
            }
        }
        Ok(None)
    }

    fn add_names(&mut self, key: &Digest, names: &Names) {
        if let Some(&(artifact, i)) = self.positions.get(key) {
            let list = if artifact {
                &mut self.artifact_names
            } else {
                &mut self.image_names
            };
            list[i].add(names.tags.iter().cloned(), names.ref_names.iter().cloned());
            list[i].add_ref_name_texts(names.ref_name_texts.iter().cloned());
        }
    }

    fn add(&mut self, built: &Built, names: &Names) {
        let image = &built.image;
        let key = image
            .manifest
            .as_ref()
            .expect("OCI images have manifests")
            .digest
            .clone();
        if self.positions.contains_key(&key) {
            self.add_names(&key, names);
            return;
        }
        self.warnings.extend(built.warnings.iter().cloned());
        let (list, name_list) = if image.artifact {
            (&mut self.artifacts, &mut self.artifact_names)
        } else {
            (&mut self.images, &mut self.image_names)
        };
        self.positions.insert(key, (image.artifact, list.len()));
        let mut image = image.clone();
        image.index = self.within.clone();
        list.push(image);
        let mut n = NameList::default();
        n.add(names.tags.iter().cloned(), names.ref_names.iter().cloned());
        n.add_ref_name_texts(names.ref_name_texts.iter().cloned());
        name_list.push(n);
    }
}

/// What the OCI index of a Docker >= 25 or containerd save says about each image,
/// keyed by config digest.
pub(crate) struct DockerSideInfo {
    pub manifest: Descriptor,
    pub manifest_bytes: Option<Arc<Vec<u8>>>,
    pub config_media_type: String,
    pub tags: Vec<Reference>,
    pub ref_names: Vec<String>,
}

pub(crate) fn describe_for_docker(
    meta: &Meta,
    options: &ReadOptions,
) -> Result<HashMap<Digest, DockerSideInfo>> {
    let index = read_index(meta)?;
    let store = OciStore(meta.tree);
    let mut warnings = Vec::new();
    // manifest.json is the image list here: no entry is dropped for its platform, and
    // an index's manifests are each described whatever the host's platform.
    let every_platform = ReadOptions {
        platform: None,
        all_platforms: true,
        ..options.clone()
    };
    let mut walker = Walker::new(meta, &store, &every_platform, false, &mut warnings);
    for desc in &index {
        let names = names_of(desc, walker.warnings);
        // Missing blobs and odd entries are normal here; manifest.json is authoritative.
        let _ = walker.walk(desc, &names, 0, true, "index.json");
    }
    let (images, _) = walker.finish();
    let mut out = HashMap::new();
    for image in images {
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
