//! The reading context of one input, shared by every format's reader: each metadata
//! file is read, verified and parsed at most once however many times it is referenced,
//! layer facts that cost a read are kept per file, and the totals are capped.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::container::read_limited;
use crate::container::{normalize_path, FileRef, FileTree, Parents};
use crate::error::{Error, Result};
use crate::model::digest::Digest;
use crate::model::image::{ConfigView, Image, Platform, MAX_JSON_SIZE};
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

/// Top-level metadata files whose duplicate entries in an archive are worth a warning.
pub(crate) const WATCHED_FILES: &[&str] = &[
    "manifest.json",
    "index.json",
    "repositories",
    "oci-layout",
    "version",
];

/// A result kept for the next request of the same thing; an error is kept too, so an
/// input that references one broken document 20,000 times pays for it once.
pub(crate) type Memo<T> = Result<T>;

pub(crate) fn replay<T: Clone>(memo: &Memo<T>) -> Result<T> {
    memo.clone()
}

/// A metadata file as read once: its bytes and their digest.
pub(crate) struct MetaFile {
    /// The bytes, exactly as stored.
    pub bytes: Arc<Vec<u8>>,
    /// Their sha256.
    pub digest: Digest,
}

/// What dockhand reads from an image config, parsed once per distinct config.
pub(crate) struct ConfigFacts {
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
pub(crate) struct Meta<'t> {
    pub tree: &'t dyn FileTree,
    /// The input's name, shared by every image read from it.
    pub input: Arc<str>,
    used: Cell<u64>,
    layers: Cell<usize>,
    files: RefCell<HashMap<String, Memo<Arc<MetaFile>>>>,
    configs: RefCell<HashMap<Digest, Memo<Arc<ConfigFacts>>>>,
    compression: RefCell<HashMap<String, Memo<Compression>>>,
    hashed_both: RefCell<HashMap<String, Memo<(Digest, Digest)>>>,
    /// Warnings about the container itself (duplicate entries).
    pub warnings: RefCell<Vec<String>>,
    /// Every platform the indexes read list, present or not.
    pub platforms: RefCell<Vec<crate::model::image::ListedPlatform>>,
    /// For an OCI layout, the manifest each top-level `index.json` entry resolved to,
    /// in the index's order (`None`: no image for the platform read): which entries
    /// hold an image, for an edit of the layout in place.
    pub roots: RefCell<Vec<Option<Digest>>>,
}

impl<'t> Meta<'t> {
    pub fn new(tree: &'t dyn FileTree) -> Meta<'t> {
        Meta {
            tree,
            input: Arc::from(tree.name()),
            used: Cell::new(0),
            layers: Cell::new(0),
            files: RefCell::default(),
            configs: RefCell::default(),
            compression: RefCell::default(),
            hashed_both: RefCell::default(),
            warnings: RefCell::default(),
            platforms: RefCell::default(),
            roots: RefCell::default(),
        }
    }

    /// The context of an input that has no files of its own (a registry): named
    /// `input`, it reads every document through a blob store, and
    /// [`Meta::read_top`] finds nothing.
    pub fn without_files(input: &str) -> Meta<'static> {
        Meta {
            input: Arc::from(input),
            ..Meta::new(&NoFiles)
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
                "the images list more than {MAX_LAYERS_TOTAL} layers in all (MAX_LAYERS_TOTAL)"
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

/// The tree of an input without files: every document is a blob of a store's.
struct NoFiles;

impl FileTree for NoFiles {
    fn name(&self) -> &str {
        ""
    }
    fn is_dir(&self) -> bool {
        false
    }
    fn node(&self, _path: &str) -> Option<crate::container::Node> {
        None
    }
    fn top_level(&self) -> Vec<String> {
        Vec::new()
    }
}

/// Names gathered for one image from many entries, without duplicates, in the order
/// first seen; applied once, so merging 20,000 entries stays linear.
#[derive(Default)]
pub(crate) struct NameList {
    tags: Vec<Reference>,
    ref_names: Vec<String>,
    seen_tags: HashSet<Reference>,
    seen_ref_names: HashSet<String>,
    ref_name_texts: Vec<(Reference, String)>,
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

    /// The OCI ref.name texts the source gave tags (the first one given for a tag wins).
    pub fn add_ref_name_texts(&mut self, texts: impl IntoIterator<Item = (Reference, String)>) {
        self.ref_name_texts.extend(texts);
    }

    pub fn apply(self, image: &mut Image) {
        image.add_names(self.tags, self.ref_names);
        for (tag, text) in self.ref_name_texts {
            image.oci_ref_names.entry(tag).or_insert(text);
        }
    }
}

/// Normalize a path named by metadata, refusing any that would leave the tree.
pub(crate) fn safe_path(path: &str, named_in: &str) -> Result<String> {
    match normalize_path(path, Parents::Refused) {
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::container::{DirTree, Duplicate, Node};

    /// A directory that claims each of `names` had an earlier entry of the same name
    /// (`shadow/<name>` holds that entry's content), as a tar index would.
    pub(crate) struct Shadowed {
        pub inner: DirTree,
        pub name: &'static str,
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
