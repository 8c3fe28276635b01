//! Layouts: which files and JSON documents make up each format. Readers turn a
//! [`FileTree`] into a [`Source`]; writers turn images into files of a [`crate::container::TreeWriter`].

mod dir_transport;
mod docker_save;
mod docker_write;
mod legacy;
mod oci;
mod oci_write;

pub use docker_write::{write_docker, DockerLayout};
pub(crate) use oci_write::merge_index;
pub use oci_write::{write_dir_transport, write_oci};

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::container::{normalize_path, FileRef, FileTree};
use crate::error::{Error, Result};
use crate::model::digest::{read_limited, Digest};
use crate::model::image::{parse_json, ConfigView, Format, Image, Platform, MAX_JSON_SIZE};
use crate::model::media::Compression;
use crate::model::reference::Reference;
use crate::text::shown;

/// Most metadata one input may make dockhand read: manifest.json, index.json, indexes,
/// manifests, configs, legacy JSON, and the configs built for formats without one. Each
/// distinct file counts once however often it is referenced, so the cap bounds memory
/// and parsing work whatever the input repeats.
pub const MAX_METADATA_TOTAL: u64 = 128 << 20;

/// Most layers all the images of one input may list together (each distinct image
/// counted once). A layer takes about half a KiB in memory, so this bounds what an
/// archive that shares a long chain among many images can make dockhand hold (~50 MiB);
/// real archives list a few thousand.
pub const MAX_LAYERS_TOTAL: usize = 100_000;

/// Most warnings kept for one input; identical ones are shown once.
pub const MAX_WARNINGS: usize = 100;

/// Top-level metadata files whose duplicate entries in an archive are worth a warning.
const WATCHED_FILES: &[&str] = &[
    "manifest.json",
    "index.json",
    "repositories",
    "oci-layout",
    "version",
];

/// Options for reading a source.
#[derive(Clone, Debug, Default)]
pub struct ReadOptions {
    /// The platform to pick: `Some` when the user asked for one (an image of another
    /// platform is then never read, and no match is an error), `None` for the host's
    /// default, which only picks among the children of multi-platform indexes.
    pub platform: Option<Platform>,
    /// Read the input as this format instead of detecting it (a Docker >= 25 archive is
    /// both a docker-archive and an oci-archive). It must fit the content: a tar for
    /// `*-archive`, a directory for the others.
    pub format: Option<Format>,
}

impl ReadOptions {
    fn wanted_platform(&self) -> Platform {
        self.platform.clone().unwrap_or_else(Platform::host)
    }
}

/// An opened input: its format, its images, and the tree their blobs live in.
pub struct Source {
    /// The detected format.
    pub format: Format,
    /// The images, in the order the source lists them.
    pub images: Vec<Image>,
    /// Notes for the user about things skipped or tolerated.
    pub warnings: Vec<String>,
    tree: Box<dyn FileTree>,
}

impl Source {
    /// Detect the layout of `tree` and read its images.
    pub fn read(tree: Box<dyn FileTree>, options: &ReadOptions) -> Result<Source> {
        let (format, images, warnings) = {
            let meta = Meta::new(&*tree);
            let mut warnings = Vec::new();
            let (format, images) = read_with(&meta, options, &mut warnings)?;
            let mut all = meta.warnings.take();
            all.append(&mut warnings);
            (format, images, tidy_warnings(all))
        };
        Ok(Source {
            format,
            images,
            warnings,
            tree,
        })
    }

    /// The tree the images' blobs are read from.
    pub fn tree(&self) -> &dyn FileTree {
        &*self.tree
    }
}

fn read_with(
    meta: &Meta,
    options: &ReadOptions,
    warnings: &mut Vec<String>,
) -> Result<(Format, Vec<Image>)> {
    let tree = meta.tree;
    let is_dir = tree.is_dir();
    let mut detected = detect(meta)?;
    if let Some(wanted) = options.format {
        detected = check_forced(tree, detected, wanted)?;
    }
    let format = natural_format(&detected, is_dir);
    let images = match detected {
        Detected::DockerSave(list) => {
            let images = docker_save::read(meta, &list, options, warnings)?;
            keep_platform(tree, images, options)?
        }
        Detected::Oci => oci::read(meta, options, warnings)?,
        Detected::DirTransport(manifest) => {
            dir_transport::read(meta, &manifest.bytes, options, warnings)?
        }
        Detected::Legacy => {
            let images = legacy::read_pre_1_10(meta, warnings)?;
            keep_platform(tree, images, options)?
        }
    };
    if images.is_empty() {
        return Err(Error::NotAnImage {
            file: tree.name().to_string(),
            reason: "it lists no images".into(),
        });
    }
    Ok((format, images))
}

/// Identical warnings once, and at most [`MAX_WARNINGS`] of them: an input that repeats
/// one oddity 20,000 times gets one line for it.
fn tidy_warnings(all: Vec<String>) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let mut dropped = 0usize;
    for w in all {
        if !seen.insert(w.clone()) {
            continue;
        }
        if out.len() < MAX_WARNINGS {
            out.push(w);
        } else {
            dropped += 1;
        }
    }
    if dropped > 0 {
        out.push(format!("{dropped} more warnings not shown"));
    }
    out
}

/// With an explicit platform, the images that satisfy it; an error listing what the
/// source holds when none does. With the default platform every image is kept.
pub(super) fn keep_platform(
    tree: &dyn FileTree,
    images: Vec<Image>,
    options: &ReadOptions,
) -> Result<Vec<Image>> {
    let Some(wanted) = &options.platform else {
        return Ok(images);
    };
    if images.is_empty() {
        return Ok(images);
    }
    let held: Vec<Platform> = images.iter().map(|i| i.platform.clone()).collect();
    let kept: Vec<Image> = images
        .into_iter()
        .filter(|i| i.platform.satisfies(wanted))
        .collect();
    if kept.is_empty() {
        return Err(no_platform(tree, options, &held));
    }
    Ok(kept)
}

/// The error for a source that holds no image of the wanted platform.
pub(super) fn no_platform(tree: &dyn FileTree, options: &ReadOptions, held: &[Platform]) -> Error {
    let wanted = options.wanted_platform();
    let why = if options.platform.is_some() {
        format!("no image for {}", shown(&wanted.to_string()))
    } else {
        format!("no image for this machine's platform {wanted} (choose one with --platform)")
    };
    Error::Selection(format!(
        "{}: {why}; the source holds {}",
        tree.name(),
        platform_list(held)
    ))
}

/// Distinct platforms, escaped, in the order first seen; at most 16 named.
pub(super) fn platform_list(held: &[Platform]) -> String {
    const SHOWN: usize = 16;
    let mut seen = HashSet::new();
    let mut names = Vec::new();
    for p in held {
        let name = if p.os.is_empty() && p.architecture.is_empty() {
            "no platform".to_string()
        } else {
            shown(&p.to_string())
        };
        if seen.insert(name.clone()) {
            names.push(name);
        }
    }
    if names.is_empty() {
        return "no platform-specific image".into();
    }
    let more = names.len().saturating_sub(SHOWN);
    names.truncate(SHOWN);
    let mut list = names.join(", ");
    if more > 0 {
        list.push_str(&format!(" and {more} more"));
    }
    list
}

enum Detected {
    DockerSave(serde_json::Value),
    Oci,
    DirTransport(Arc<MetaFile>),
    Legacy,
}

/// The format a detected layout is in its container.
fn natural_format(detected: &Detected, is_dir: bool) -> Format {
    match (detected, is_dir) {
        (Detected::DockerSave(_) | Detected::Legacy, true) => Format::DockerDir,
        (Detected::DockerSave(_) | Detected::Legacy, false) => Format::DockerArchive,
        (Detected::Oci, true) => Format::Oci,
        (Detected::Oci, false) => Format::OciArchive,
        (Detected::DirTransport(_), _) => Format::Dir,
    }
}

/// Names a root filesystem has at its top and an image archive never has.
const ROOTFS_NAMES: &[&str] = &[
    "bin", "etc", "usr", "lib", "var", "sbin", "root", "home", "dev", "proc", "tmp", "opt",
];

fn detect(meta: &Meta) -> Result<Detected> {
    let tree = meta.tree;
    let name = tree.name().to_string();
    if let Some(file) = meta.read_top("manifest.json")? {
        let value: serde_json::Value = parse_json(&file.bytes, "manifest.json")?;
        return match value {
            serde_json::Value::Null => Err(Error::malformed(
                "manifest.json",
                "is null: the archive lists no images",
            )),
            serde_json::Value::Array(ref items) if items.is_empty() => Err(Error::malformed(
                "manifest.json",
                "is an empty list: the archive holds no images",
            )),
            serde_json::Value::Array(_) => Ok(Detected::DockerSave(value)),
            serde_json::Value::Object(ref o) if o.contains_key("schemaVersion") => {
                Ok(Detected::DirTransport(file))
            }
            serde_json::Value::Object(ref o) if o.is_empty() && !tree.exists("index.json") => Err(
                Error::malformed("manifest.json", "is an empty object, not a list of images"),
            ),
            _ if tree.exists("index.json") => Ok(Detected::Oci),
            _ => Err(Error::malformed(
                "manifest.json",
                "is neither a docker-save image list nor an image manifest",
            )),
        };
    }
    if tree.exists("index.json") || tree.exists("oci-layout") {
        return Ok(Detected::Oci);
    }
    if tree.exists("repositories") || legacy::has_v1_layers(tree) {
        return Ok(Detected::Legacy);
    }
    let top = tree.top_level();
    let reason = if top.is_empty() {
        "it has no entries".to_string()
    } else if top
        .iter()
        .filter(|n| ROOTFS_NAMES.contains(&n.as_str()))
        .count()
        >= 2
    {
        "it looks like a root filesystem (a `docker export` or a single layer), not an image archive; use `docker save` to export an image".to_string()
    } else {
        format!(
            "no manifest.json, index.json, oci-layout or repositories found (top-level entries: {})",
            top.iter().take(8).map(|n| shown(n)).collect::<Vec<_>>().join(", ")
        )
    };
    Err(Error::NotAnImage { file: name, reason })
}

/// Check that a forced format (`--from`, a transport prefix) fits both the layout found
/// and its container (a tar or a directory), and prepare to read it as that format.
fn check_forced(tree: &dyn FileTree, detected: Detected, wanted: Format) -> Result<Detected> {
    let is_dir = tree.is_dir();
    // A Docker >= 25 save is an OCI layout too.
    let hybrid = matches!(detected, Detected::DockerSave(_)) && tree.exists("index.json");
    let layout_fits = match (&detected, wanted) {
        (Detected::DockerSave(_) | Detected::Legacy, Format::DockerArchive | Format::DockerDir) => {
            true
        }
        (Detected::Oci, Format::Oci | Format::OciArchive) => true,
        (Detected::DirTransport(_), Format::Dir) => true,
        (Detected::DockerSave(_), Format::Oci | Format::OciArchive) => hybrid,
        _ => false,
    };
    let wanted_dir = !wanted.is_tar();
    if layout_fits && wanted_dir == is_dir {
        return Ok(match (detected, wanted) {
            (Detected::DockerSave(_), Format::Oci | Format::OciArchive) => Detected::Oci,
            (d, _) => d,
        });
    }
    let natural = natural_format(&detected, is_dir);
    let container = |dir: bool| if dir { "a directory" } else { "a tar file" };
    let what = if hybrid {
        format!(
            "{} (also {})",
            described(natural),
            described(same_layout_in(Format::Oci, is_dir).unwrap_or(Format::Oci))
        )
    } else {
        described(natural).to_string()
    };
    // What would read it: the wanted layout in this container, else what was found.
    let suggestion = if layout_fits {
        same_layout_in(wanted, is_dir)
    } else if natural.is_tar() != is_dir {
        Some(natural)
    } else {
        None
    };
    let advice = match suggestion {
        Some(f) => format!("use --from {} or leave --from out", f.name()),
        None => "leave --from out".to_string(),
    };
    Err(Error::Selection(format!(
        "{}: is {what} ({}), not {} ({}); {advice}",
        tree.name(),
        container(is_dir),
        wanted.name(),
        container(wanted_dir)
    )))
}

/// A format as a noun for messages.
fn described(format: Format) -> &'static str {
    match format {
        Format::DockerArchive => "a docker-archive",
        Format::DockerDir => "a docker-dir",
        Format::Oci => "an oci layout",
        Format::OciArchive => "an oci-archive",
        Format::Dir => "a dir layout",
    }
}

/// `format`'s layout in a directory or a tar, when it has that form.
fn same_layout_in(format: Format, is_dir: bool) -> Option<Format> {
    match (format, is_dir) {
        (Format::DockerArchive | Format::DockerDir, true) => Some(Format::DockerDir),
        (Format::DockerArchive | Format::DockerDir, false) => Some(Format::DockerArchive),
        (Format::Oci | Format::OciArchive, true) => Some(Format::Oci),
        (Format::Oci | Format::OciArchive, false) => Some(Format::OciArchive),
        (Format::Dir, true) => Some(Format::Dir),
        (Format::Dir, false) => None,
    }
}

/// A result kept for the next request of the same thing; an error is kept too, so an
/// input that references one broken document 20,000 times pays for it once.
type Memo<T> = Result<T>;

fn replay<T: Clone>(memo: &Memo<T>) -> Result<T> {
    memo.clone()
}

/// A metadata file as read once: its bytes and their digest.
pub(super) struct MetaFile {
    /// The bytes, exactly as stored.
    pub bytes: Arc<Vec<u8>>,
    /// Their sha256.
    pub digest: Digest,
}

/// What dockhand reads from an image config, parsed once per distinct config.
pub(super) struct ConfigFacts {
    /// The platform the config declares.
    pub platform: Platform,
    /// Whether it describes a filesystem (an image rather than an artifact).
    pub has_rootfs: bool,
    diff_ids: Memo<Arc<Vec<Digest>>>,
}

impl ConfigFacts {
    /// The validated diff_ids, or why the config has none usable.
    pub fn diff_ids(&self) -> Result<Arc<Vec<Digest>>> {
        replay(&self.diff_ids)
    }
}

/// The reading context of one input: every metadata file is read, verified and parsed
/// at most once, whatever references it, and the total read is charged against
/// [`MAX_METADATA_TOTAL`]. Layer facts that cost a read (compression, a digest that must
/// be computed by hashing) are kept per file the same way.
pub(super) struct Meta<'t> {
    pub tree: &'t dyn FileTree,
    used: Cell<u64>,
    layers: Cell<usize>,
    files: RefCell<HashMap<String, Memo<Arc<MetaFile>>>>,
    configs: RefCell<HashMap<Digest, Memo<Arc<ConfigFacts>>>>,
    compression: RefCell<HashMap<String, Memo<Compression>>>,
    hashed: RefCell<HashMap<String, Memo<Digest>>>,
    hashed_both: RefCell<HashMap<String, Memo<(Digest, Digest)>>>,
    /// Warnings about the container itself (duplicate entries).
    pub warnings: RefCell<Vec<String>>,
}

impl<'t> Meta<'t> {
    pub fn new(tree: &'t dyn FileTree) -> Meta<'t> {
        Meta {
            tree,
            used: Cell::new(0),
            layers: Cell::new(0),
            files: RefCell::default(),
            configs: RefCell::default(),
            compression: RefCell::default(),
            hashed: RefCell::default(),
            hashed_both: RefCell::default(),
            warnings: RefCell::default(),
        }
    }

    /// Count `bytes` more of metadata against [`MAX_METADATA_TOTAL`]; `what` names the
    /// file (or the built config) that would pass it.
    pub fn charge(&self, bytes: u64, what: &str) -> Result<()> {
        let total = self.used.get().saturating_add(bytes);
        if total > MAX_METADATA_TOTAL {
            return Err(Error::malformed(
                what,
                format!(
                    "the input holds more than the {} MiB of metadata dockhand reads from one input (MAX_METADATA_TOTAL)",
                    MAX_METADATA_TOTAL >> 20
                ),
            ));
        }
        self.used.set(total);
        Ok(())
    }

    /// Count the layers of one more distinct image against [`MAX_LAYERS_TOTAL`].
    pub fn count_layers(&self, n: usize) -> Result<()> {
        let total = self.layers.get().saturating_add(n);
        if total > MAX_LAYERS_TOTAL {
            return Err(Error::Unsupported(format!(
                "{}: the images list more than {MAX_LAYERS_TOTAL} layers in all (MAX_LAYERS_TOTAL)",
                self.tree.name()
            )));
        }
        self.layers.set(total);
        Ok(())
    }

    /// Read a small JSON file (bounded by [`MAX_JSON_SIZE`]) once; later calls for the
    /// same resolved path get the same bytes.
    pub fn read(&self, file: &FileRef) -> Result<Arc<MetaFile>> {
        if let Some(m) = self.files.borrow().get(&file.path) {
            return replay(m);
        }
        let memo = self.read_uncached(file).map(Arc::new);
        self.files
            .borrow_mut()
            .insert(file.path.clone(), memo.clone());
        replay(&memo)
    }

    fn read_uncached(&self, file: &FileRef) -> Result<MetaFile> {
        let bytes = self.read_bytes(file)?;
        Ok(MetaFile {
            digest: Digest::of(&bytes),
            bytes: Arc::new(bytes),
        })
    }

    fn read_bytes(&self, file: &FileRef) -> Result<Vec<u8>> {
        let shown_path = shown(&file.path);
        if file.size > MAX_JSON_SIZE {
            return Err(Error::malformed(
                shown_path,
                format!(
                    "is {} bytes, over the {MAX_JSON_SIZE}-byte limit for metadata",
                    file.size
                ),
            ));
        }
        self.charge(file.size, &shown_path)?;
        read_limited(file.open()?, MAX_JSON_SIZE, &shown_path)
    }

    /// Read a top-level metadata file, warning when the archive holds two different
    /// entries of that name (the last is read, as tar readers do).
    pub fn read_top(&self, path: &str) -> Result<Option<Arc<MetaFile>>> {
        let Some(file) = self.tree.find(path)? else {
            return Ok(None);
        };
        let read = self.read(&file)?;
        if WATCHED_FILES.contains(&path) {
            if let Some(dup) = self.tree.duplicate(path) {
                let differs = dup.first.size != file.size
                    || Digest::of(&self.read_bytes(&dup.first)?) != read.digest;
                if differs {
                    let skopeo = if path == "manifest.json" {
                        " (skopeo would use the first)"
                    } else {
                        ""
                    };
                    self.warnings.borrow_mut().push(format!(
                        "{path} appears twice (entries {} and {}) with different content; using the last, entry {}{skopeo}",
                        dup.first_entry, dup.last_entry, dup.last_entry
                    ));
                }
            }
        }
        Ok(Some(read))
    }

    /// Read a blob that must be small JSON, verifying its digest (and size when known).
    pub fn read_verified(
        &self,
        file: &FileRef,
        digest: &Digest,
        size: Option<u64>,
    ) -> Result<Arc<MetaFile>> {
        if let Some(size) = size {
            if size != file.size {
                return Err(Error::SizeMismatch {
                    file: shown(&file.path),
                    expected: size,
                    actual: file.size,
                });
            }
        }
        let read = self.read(file)?;
        if read.digest != *digest {
            return Err(Error::DigestMismatch {
                file: shown(&file.path),
                expected: digest.clone(),
                actual: read.digest.clone(),
            });
        }
        Ok(read)
    }

    /// The parsed view of config `file` (named `named` in errors), once per distinct
    /// content.
    pub fn config(&self, file: &MetaFile, named: &str) -> Result<Arc<ConfigFacts>> {
        if let Some(m) = self.configs.borrow().get(&file.digest) {
            return replay(m);
        }
        let memo = ConfigView::parse(&file.bytes, named).map(|view| {
            Arc::new(ConfigFacts {
                platform: view.platform(),
                has_rootfs: view.rootfs.is_some(),
                diff_ids: view.diff_ids(named).map(Arc::new),
            })
        });
        self.configs
            .borrow_mut()
            .insert(file.digest.clone(), memo.clone());
        replay(&memo)
    }

    /// A stored blob's compression, from its first bytes, once per file.
    pub fn sniff(&self, file: &FileRef) -> Result<Compression> {
        if let Some(m) = self.compression.borrow().get(&file.path) {
            return replay(m);
        }
        let memo = file.head(8).map(|head| Compression::detect(&head));
        self.compression
            .borrow_mut()
            .insert(file.path.clone(), memo.clone());
        replay(&memo)
    }

    /// The sha256 of a whole file (a layer whose stored digest nothing records), hashed
    /// at most once per file.
    pub fn hash_file(&self, file: &FileRef) -> Result<Digest> {
        if let Some(m) = self.hashed.borrow().get(&file.path) {
            return replay(m);
        }
        let memo = hash_file(file);
        self.hashed
            .borrow_mut()
            .insert(file.path.clone(), memo.clone());
        replay(&memo)
    }

    /// The stored and uncompressed digests of a layer, computed by `compute` at most
    /// once per file.
    pub fn layer_digests(
        &self,
        file: &FileRef,
        compute: impl FnOnce() -> Result<(Digest, Digest)>,
    ) -> Result<(Digest, Digest)> {
        if let Some(m) = self.hashed_both.borrow().get(&file.path) {
            return replay(m);
        }
        let memo = compute();
        self.hashed_both
            .borrow_mut()
            .insert(file.path.clone(), memo.clone());
        replay(&memo)
    }
}

/// Names gathered for one image from many entries, without duplicates, in the order
/// first seen; applied once, so merging 20,000 entries stays linear.
#[derive(Default)]
pub(super) struct NameList {
    tags: Vec<Reference>,
    ref_names: Vec<String>,
    seen_tags: HashSet<Reference>,
    seen_ref_names: HashSet<String>,
}

impl NameList {
    pub fn add(
        &mut self,
        tags: impl IntoIterator<Item = Reference>,
        ref_names: impl IntoIterator<Item = String>,
    ) {
        for t in tags {
            if self.seen_tags.insert(t.clone()) {
                self.tags.push(t);
            }
        }
        for n in ref_names {
            if self.seen_ref_names.insert(n.clone()) {
                self.ref_names.push(n);
            }
        }
    }

    pub fn apply(self, image: &mut Image) {
        image.add_names(self.tags, self.ref_names);
    }
}

/// Normalize a path named by metadata, refusing any that would leave the tree.
pub(crate) fn safe_path(path: &str, named_in: &str) -> Result<String> {
    match normalize_path(path) {
        Some(p) if !p.is_empty() => Ok(p),
        _ => Err(Error::malformed(
            named_in,
            format!(
                "path \"{}\" is empty, absolute or leaves the archive",
                shown(path)
            ),
        )),
    }
}

/// Hash a whole file (used when a layer's stored digest is not recorded anywhere).
fn hash_file(file: &FileRef) -> Result<Digest> {
    let mut hasher = crate::model::digest::HashSink::default();
    std::io::copy(&mut file.open()?, &mut hasher)
        .map_err(|e| Error::io(format!("reading {}", shown(&file.path)), e))?;
    Ok(hasher.hasher.finish().0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::{DirTree, Duplicate, Node};

    /// A directory that claims one of its files had an earlier entry of the same name
    /// (`shadow/<name>` holds that entry's content), as a tar index would.
    struct Shadowed {
        inner: DirTree,
        name: &'static str,
    }

    impl FileTree for Shadowed {
        fn name(&self) -> &str {
            "x.tar"
        }
        fn is_dir(&self) -> bool {
            false
        }
        fn node(&self, path: &str) -> Option<Node> {
            self.inner.node(path)
        }
        fn top_level(&self) -> Vec<String> {
            self.inner.top_level()
        }
        fn duplicate(&self, path: &str) -> Option<Duplicate> {
            if path != self.name {
                return None;
            }
            let tree: &dyn FileTree = &self.inner;
            Some(Duplicate {
                first: tree.resolve(&format!("shadow/{path}")).ok()?,
                first_entry: 3,
                last_entry: 9,
            })
        }
    }

    /// A one-image docker-save tree whose manifest.json tags the image `tag`, with an
    /// earlier manifest.json entry tagging it `shadow_tag`.
    fn save_with_shadow(tag: &str, shadow_tag: &str) -> (tempfile::TempDir, Shadowed) {
        let dir = tempfile::tempdir().unwrap();
        let layer = b"pretend layer".to_vec();
        let config = format!(
            r#"{{"os":"linux","architecture":"amd64","rootfs":{{"type":"layers","diff_ids":["{}"]}}}}"#,
            Digest::of(&layer)
        );
        let manifest = |tag: &str| {
            format!(r#"[{{"Config":"c.json","RepoTags":["{tag}"],"Layers":["l.tar"]}}]"#)
        };
        std::fs::create_dir(dir.path().join("shadow")).unwrap();
        std::fs::write(dir.path().join("c.json"), config).unwrap();
        std::fs::write(dir.path().join("l.tar"), layer).unwrap();
        std::fs::write(dir.path().join("manifest.json"), manifest(tag)).unwrap();
        std::fs::write(
            dir.path().join("shadow/manifest.json"),
            manifest(shadow_tag),
        )
        .unwrap();
        let tree = Shadowed {
            inner: DirTree::new(dir.path(), "x.tar"),
            name: "manifest.json",
        };
        (dir, tree)
    }

    #[test]
    fn a_shadowed_manifest_json_with_other_content_is_named_in_a_warning() {
        let (_dir, tree) = save_with_shadow("last:1", "first:1");
        let source = Source::read(Box::new(tree), &ReadOptions::default()).unwrap();
        assert_eq!(
            source.warnings,
            ["manifest.json appears twice (entries 3 and 9) with different content; using the last, entry 9 (skopeo would use the first)"]
        );
        // The documented choice: the last entry, as tar readers make it.
        assert_eq!(
            source.images[0].tags[0].to_string(),
            "docker.io/library/last:1"
        );
    }

    #[test]
    fn a_shadowed_manifest_json_with_the_same_content_is_no_news() {
        let (_dir, tree) = save_with_shadow("same:1", "same:1");
        let source = Source::read(Box::new(tree), &ReadOptions::default()).unwrap();
        assert!(source.warnings.is_empty(), "{:?}", source.warnings);
    }

    #[test]
    fn every_watched_file_is_checked_and_only_those() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("shadow")).unwrap();
        for name in [
            "index.json",
            "repositories",
            "oci-layout",
            "version",
            "other.json",
        ] {
            std::fs::write(dir.path().join(name), "{\"a\":1}").unwrap();
            // Same size, different bytes: only the digest tells them apart.
            std::fs::write(dir.path().join("shadow").join(name), "{\"a\":2}").unwrap();
            let tree = Shadowed {
                inner: DirTree::new(dir.path(), "x.tar"),
                name: if name == "other.json" {
                    "other.json"
                } else {
                    name
                },
            };
            let tree: &dyn FileTree = &tree;
            let meta = Meta::new(tree);
            assert!(meta.read_top(name).unwrap().is_some());
            let warnings = meta.warnings.take();
            if name == "other.json" {
                assert!(warnings.is_empty(), "{warnings:?}");
            } else {
                assert_eq!(
                    warnings,
                    [format!("{name} appears twice (entries 3 and 9) with different content; using the last, entry 9")]
                );
            }
        }
    }

    #[test]
    fn repeated_reads_are_charged_once_and_the_total_is_capped() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.json"), vec![b' '; 1000]).unwrap();
        let tree = DirTree::new(dir.path(), "d");
        let tree: &dyn FileTree = &tree;
        let meta = Meta::new(tree);
        let file = tree.resolve("a.json").unwrap();
        for _ in 0..1000 {
            meta.read(&file).unwrap();
        }
        assert_eq!(meta.used.get(), 1000);
        meta.charge(MAX_METADATA_TOTAL - 1000, "b").unwrap();
        let err = meta.charge(1, "c").unwrap_err().to_string();
        assert!(err.contains("128 MiB"), "{err}");
    }
}
