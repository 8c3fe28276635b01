//! The first pass: every layer read from the top down, headers only (data decompressed
//! and verified, hashed when content digests are asked for, never kept), which decides
//! the final filesystem: which entry of which layer each path shows, what the export
//! writes at each entry of each layer, and which links share a file.
//!
//! A layer is first resolved on its own (its *view*: the last entry of each name, a
//! directory entry replacing another directory's attributes and anything else
//! replacing the whole path, as extracting the tar would leave them), with its
//! whiteouts and opaque markers aside. Its view's entries are then matched against what
//! the layers above it do to the paths below them:
//!
//! - an entry above at the same path hides the entry (a directory above keeps the
//!   children of one below, whose attributes it replaces);
//! - a whiteout above (`.wh.NAME`) hides the path and everything under it;
//! - an opaque marker above (`DIR/.wh..wh..opq`) hides everything under the directory;
//! - a non-directory above hides everything under its path;
//! - a directory above (an entry under a path makes it one) hides a non-directory at
//!   that path, as overlayfs shows an upper directory over a lower file.
//!
//! Whiteouts and markers apply to the layers below theirs only, wherever they sit in
//! their tar. A hard link is the file it names *in the filesystem as its layer is
//! applied*: an earlier entry of its layer, or (when its layer has none of that name)
//! what the layers below show there, as Docker's extraction into the parent's
//! filesystem makes it. Links sharing one file form a group, written by the export at
//! the position of the file's data: the file itself when it is visible, else its first
//! visible link carrying its data, the other visible links linking to that one.
//! Extracting a link also sets its file's owner, mode and times from the link's own
//! header (Docker and containerd do so), so the last link extracted, shown or not,
//! decides them.
//!
//! Whiteouts and markers are applied before their layer's entries, so a marker under a
//! path its layer makes a file implies no directory, and a link to what they delete or
//! make a directory is refused; a non-directory a later entry of its layer makes a
//! directory again still deleted what lay below it. `check.rs` holds a naive model of
//! all this that the engine must agree with.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::ops::Bound;
use std::sync::Arc;

use super::tar_stream::{TarEntries, TarEntry, TarProblem};
use super::{Attrs, FsEntry, FsKind, Meta, MAX_FILESYSTEM_NAME_BYTES, MAX_FILESYSTEM_PATHS};
use crate::model::digest::{Digest, Hasher};

/// A normalized path: relative, no empty, `.` or `..` components, no trailing `/`.
pub(crate) type PathKey = Arc<[u8]>;

/// The prefix of whiteout names, and the name of the opaque marker.
const WHITEOUT: &[u8] = b".wh.";
const OPAQUE: &[u8] = b".wh..wh..opq";
/// Names starting so (at the top) are aufs's own files, never part of a filesystem.
const AUFS_META: &[u8] = b".wh..wh.";

/// What the layers above do to a path and what lies under it.
const CLAIMED: u8 = 1;
/// Everything under the path is hidden (a whiteout, an opaque marker, a non-directory).
const HIDES_BELOW: u8 = 2;
/// The path itself is deleted.
const WHITED_OUT: u8 = 4;
/// A directory is there (an entry or an implied one): a non-directory below is hidden.
const DIR_ABOVE: u8 = 8;

/// What is known of one path.
#[derive(Default)]
struct PathState {
    flags: u8,
    /// The winning entry (index into `winners`), once one is found.
    winner: Option<u32>,
    /// Some layer implies a directory here and nothing above it hides it: the path is
    /// a directory even when no layer has an entry for it.
    implied_visible: bool,
}

/// The entry a path shows.
struct Winner {
    layer: u32,
    meta: Meta,
    /// The group whose file this entry is, when it is one of several names of it.
    group: Option<u32>,
}

/// One entry of a layer's own view.
#[derive(Clone)]
struct Slot {
    ordinal: u32,
    meta: Meta,
    link: Link,
}

/// What a hard link entry is a link to.
#[derive(Clone, Copy)]
enum Link {
    /// Not a hard link.
    None,
    /// The entry of this ordinal in the same layer (never itself a link).
    Root(u32),
    /// A file in the layers below: this pending request.
    Below(u32),
}

/// A hard link whose target is in the layers below its own, not found yet.
struct Pending {
    /// The link's layer, position and name.
    layer: u32,
    ordinal: u32,
    name: PathKey,
    /// What extracting the link does to its file's owner, mode and times.
    attrs: Attrs,
    target: PathKey,
    /// The link's winner, when it is visible.
    winner: Option<u32>,
    /// Requests resolved to whatever this one resolves to (links to this link).
    followers: Vec<u32>,
}

/// The file a group of links shares: an entry of a layer.
struct GroupBuild {
    /// The root entry's winner, when it is visible itself.
    root_winner: Option<u32>,
    members: Vec<u32>,
}

/// What the export does at an entry of a layer.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Act {
    /// Write this entry as the final entry of this index.
    Emit(u32),
    /// Write the group of this index here: this entry's data under the group's carrier
    /// name, then links to it for the group's other entries.
    Group(u32),
}

/// A group as the export writes it.
#[derive(Debug)]
pub(crate) struct GroupPlan {
    /// The final entry carrying the file (the root itself when visible).
    pub carrier: u32,
    /// The final entries written as hard links to the carrier.
    pub links: Vec<u32>,
}

/// What the export writes at one entry of a layer: the entry's ordinal, the hash of its
/// normalized name (a second read must meet the same entry there), and the action.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Step {
    pub ordinal: u32,
    pub name_hash: u64,
    pub act: Act,
    /// The owner, mode and times the file takes from the last hard link to it
    /// extracted (an index into [`Plan::attrs`]), when one is.
    pub attrs: Option<u32>,
}

/// The export's plan: for each layer (base first), its steps in entry order.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    pub layers: Vec<Vec<Step>>,
    pub groups: Vec<GroupPlan>,
    pub attrs: Vec<Attrs>,
}

/// Why a layer cannot be applied, before the image and layer are named.
pub(crate) struct Refusal {
    /// The layer of the entry at fault, when it is not the layer being read.
    pub layer: Option<u32>,
    /// The entry at fault (its name as stored), when one is.
    pub entry: Option<Vec<u8>>,
    pub problem: String,
}

impl Refusal {
    fn at(entry: &[u8], problem: impl Into<String>) -> Refusal {
        Refusal {
            layer: None,
            entry: Some(entry.to_vec()),
            problem: problem.into(),
        }
    }

    /// The same refusal, about an entry of `layer`.
    fn in_layer(mut self, layer: u32) -> Refusal {
        self.layer = Some(layer);
        self
    }
}

/// A refusal, or a read failing.
pub(crate) enum ScanError {
    Refused(Refusal),
    Tar(super::tar_stream::TarProblem),
}

impl From<Refusal> for ScanError {
    fn from(r: Refusal) -> Self {
        ScanError::Refused(r)
    }
}

impl From<super::tar_stream::TarProblem> for ScanError {
    fn from(p: super::tar_stream::TarProblem) -> Self {
        ScanError::Tar(p)
    }
}

/// One layer resolved on its own.
#[derive(Default)]
struct LayerScan {
    view: BTreeMap<Box<[u8]>, Slot>,
    /// Paths its whiteouts delete below it.
    whiteouts: Vec<Box<[u8]>>,
    /// Directories its opaque markers clear below it (empty: the root).
    opaques: Vec<Box<[u8]>>,
    /// aufs's hard link sources (`.wh..wh.plnk/...`): link targets, never shown.
    aufs: HashMap<Box<[u8]>, Slot>,
    /// The entries links point to, by ordinal: their metadata and name's hash.
    roots: HashMap<u32, (Meta, u64)>,
    /// For each entry links of this layer point to, the last of those links (its
    /// ordinal) and what it applies to the file.
    last_link: HashMap<u32, (u32, Attrs)>,
    /// Its links to files below it (indices into the engine's pending requests), but
    /// for links to such links, which follow those.
    below: Vec<u32>,
    /// The paths where a later entry of it put a directory over a non-directory (which
    /// its view no longer shows): extracting it deleted what the layers below had
    /// under them all the same.
    was_non_dir: HashSet<Box<[u8]>>,
}

impl LayerScan {
    /// Did it hold a non-directory at `path` at any time?
    fn ever_non_dir(&self, path: &[u8]) -> bool {
        self.view
            .get(path)
            .is_some_and(|s| s.meta.kind != FsKind::Dir)
            || self.was_non_dir.contains(path)
    }

    /// Every path it held a non-directory at.
    fn non_dirs(&self) -> impl Iterator<Item = &[u8]> {
        self.view
            .iter()
            .filter(|(_, s)| s.meta.kind != FsKind::Dir)
            .map(|(k, _)| &**k)
            .chain(self.was_non_dir.iter().map(|k| &**k))
    }

    /// The directories it implies: the parents of its entries and whiteouts, and the
    /// directories of its markers (but those under a path it made a non-directory,
    /// deleted with it, markers applying before every entry), each once.
    fn implied_dirs(&self) -> Vec<&[u8]> {
        let mut seen: HashSet<&[u8]> = HashSet::new();
        let mut out = Vec::new();
        // (start, the start itself is a directory, it is a whiteout or marker)
        let starts = self
            .view
            .keys()
            .map(|k| (&**k, false, false))
            .chain(self.whiteouts.iter().map(|w| (&**w, false, true)))
            .chain(self.opaques.iter().map(|o| (&**o, true, true)));
        for (start, itself, marker) in starts {
            let first = (itself && !start.is_empty()).then_some(start);
            let dirs = || first.into_iter().chain(ancestors(start));
            if marker && dirs().any(|d| self.ever_non_dir(d)) {
                continue;
            }
            for dir in dirs() {
                if !seen.insert(dir) {
                    break;
                }
                out.push(dir);
            }
        }
        out
    }
}

/// The data of the entry just read: hashed when an engine first asks, the digest
/// kept for every other engine reading the same layer.
pub(crate) struct EntryData<'a, R> {
    entries: &'a mut TarEntries<R>,
    digest: Option<Digest>,
}

impl<R: Read> EntryData<'_, R> {
    /// The sha256 of the entry's data, read (once) to compute it.
    fn digest(&mut self) -> Result<Digest, TarProblem> {
        if let Some(digest) = &self.digest {
            return Ok(digest.clone());
        }
        let mut hasher = Hasher::new();
        self.entries.skip_data(Some(&mut hasher))?;
        let digest = hasher.finish().0;
        self.digest = Some(digest.clone());
        Ok(digest)
    }
}

/// The first pass over an image's layers, fed from the top layer down.
pub(crate) struct Engine {
    digests: bool,
    /// The most paths it holds ([`MAX_FILESYSTEM_PATHS`], less in tests).
    max_paths: usize,
    paths: HashMap<PathKey, PathState>,
    name_bytes: usize,
    /// An opaque marker at the top of a layer above hides every layer below it.
    all_hidden: bool,
    winners: Vec<Winner>,
    pending: Vec<Pending>,
    /// Pending requests not resolved yet, by target.
    open: BTreeMap<Box<[u8]>, Vec<u32>>,
    groups: Vec<GroupBuild>,
    /// Each group by its file: (layer, ordinal).
    group_of: HashMap<(u32, u32), u32>,
    /// For each file links point to, by (layer, ordinal): the last link extracted, by
    /// (layer, ordinal), and what it applies to the file.
    last_link: HashMap<(u32, u32), ((u32, u32), Attrs)>,
    /// The attributes the export's steps name.
    attrs: Vec<Attrs>,
    /// For each layer (base first), its steps, acts naming winners and groups.
    steps: Vec<Vec<Step>>,
}

impl Engine {
    /// An engine for an image of `layers` layers; with `digests`, regular files are
    /// hashed as they pass.
    pub fn new(layers: usize, digests: bool) -> Engine {
        Engine {
            digests,
            max_paths: MAX_FILESYSTEM_PATHS,
            paths: HashMap::new(),
            name_bytes: 0,
            all_hidden: false,
            winners: Vec::new(),
            pending: Vec::new(),
            open: BTreeMap::new(),
            groups: Vec::new(),
            group_of: HashMap::new(),
            last_link: HashMap::new(),
            attrs: Vec::new(),
            steps: (0..layers).map(|_| Vec::new()).collect(),
        }
    }

    /// The same engine holding at most `max` paths.
    #[cfg(test)]
    pub fn with_max_paths(mut self, max: usize) -> Engine {
        self.max_paths = max;
        self
    }

    /// Read layer `index` (the layers above it already read) from `entries` and apply it.
    pub fn layer<R: Read>(
        &mut self,
        index: usize,
        entries: &mut TarEntries<R>,
    ) -> Result<(), ScanError> {
        Engine::shared_layer(&mut [(self, index)], entries).map_err(|(_, e)| e)
    }

    /// Read one layer that several engines hold (each at its own index, the layers
    /// above it already read) from `entries`, once, and apply it to each: the entries
    /// pass through every engine as they are read, a file's data hashed at most once.
    /// An error says which engine it is about (the first for a tar that cannot be
    /// read).
    pub fn shared_layer<R: Read>(
        users: &mut [(&mut Engine, usize)],
        entries: &mut TarEntries<R>,
    ) -> Result<(), (usize, ScanError)> {
        let mut scans: Vec<LayerScan> = users.iter().map(|_| LayerScan::default()).collect();
        loop {
            let entry = match entries.next_entry() {
                Ok(Some(entry)) => entry,
                Ok(None) => break,
                Err(e) => return Err((0, e.into())),
            };
            let mut data = EntryData {
                entries: &mut *entries,
                digest: None,
            };
            for (which, ((engine, index), scan)) in users.iter_mut().zip(&mut scans).enumerate() {
                engine
                    .scan_entry(*index as u32, scan, &entry, &mut data)
                    .map_err(|e| (which, e))?;
            }
        }
        for (which, ((engine, index), scan)) in users.iter_mut().zip(scans).enumerate() {
            engine
                .merge(*index as u32, scan)
                .map_err(|r| (which, ScanError::Refused(r)))?;
        }
        Ok(())
    }

    /// Add one entry of layer `layer` to the layer's own view.
    fn scan_entry<R: Read>(
        &mut self,
        layer: u32,
        scan: &mut LayerScan,
        entry: &TarEntry,
        data: &mut EntryData<'_, R>,
    ) -> Result<(), ScanError> {
        let Some(path) = normalize(&entry.name) else {
            let problem = "its name climbs out of the root with `..`";
            return Err(Refusal::at(&entry.name, problem).into());
        };
        if path.is_empty() {
            // The root itself: `docker export` shows no entry for it either.
            return Ok(());
        }
        if path.starts_with(AUFS_META) {
            if &*path == OPAQUE {
                scan.opaques.push(Box::from(&b""[..]));
            } else if entry.flag == b'0' {
                let meta = self.meta_of(entry, data)?;
                let slot = Slot {
                    ordinal: entry.ordinal,
                    meta,
                    link: Link::None,
                };
                scan.aufs.insert(path.into_boxed_slice(), slot);
            }
            return Ok(());
        }
        let (parent, base) = split_last(&path);
        if base.starts_with(WHITEOUT) {
            check_parents(&scan.view, &entry.name, &path)?;
            if base == OPAQUE {
                scan.opaques.push(Box::from(parent));
            } else {
                let name = &base[WHITEOUT.len()..];
                if name.is_empty() || name == b"." || name == b".." {
                    return Err(Refusal::at(
                        &entry.name,
                        "a whiteout of no nameable file (`.wh.` followed by nothing, `.` or `..`) would delete its own directory or one above it",
                    )
                    .into());
                }
                scan.whiteouts.push(join(parent, name).into_boxed_slice());
            }
            return Ok(());
        }
        check_parents(&scan.view, &entry.name, &path)?;
        let meta = self.meta_of(entry, data)?;
        let link = if entry.flag == b'1' {
            self.link_of(layer, scan, entry, &path)?
        } else {
            Link::None
        };
        let over_non_dir = meta.kind == FsKind::Dir
            && scan
                .view
                .get(&path[..])
                .is_some_and(|s| s.meta.kind != FsKind::Dir);
        if over_non_dir {
            scan.was_non_dir.insert(Box::from(&path[..]));
        }
        let slot = Slot {
            ordinal: entry.ordinal,
            meta,
            link,
        };
        insert(&mut scan.view, path.into_boxed_slice(), slot);
        Ok(())
    }

    /// What a hard link entry named `path` links to.
    fn link_of(
        &mut self,
        layer: u32,
        scan: &mut LayerScan,
        entry: &TarEntry,
        path: &[u8],
    ) -> Result<Link, Refusal> {
        let Some(target) = normalize(&entry.link) else {
            let problem = "it is a hard link climbing out of the root with `..`";
            return Err(Refusal::at(&entry.name, problem));
        };
        if target.is_empty() {
            return Err(Refusal::at(
                &entry.name,
                "it is a hard link to the root directory",
            ));
        }
        let found = scan
            .view
            .get(&target[..])
            .or_else(|| scan.aufs.get(&target[..]))
            .cloned();
        let attrs = Attrs::of(entry);
        if let Some(slot) = found {
            return match slot.link {
                Link::Root(root) => {
                    scan.last_link.insert(root, (entry.ordinal, attrs));
                    Ok(Link::Root(root))
                }
                Link::Below(pending) => {
                    // A link to a link to a file below: both share that file.
                    let id = self.new_pending(layer, entry.ordinal, path, &target, attrs);
                    self.pending[pending as usize].followers.push(id);
                    Ok(Link::Below(id))
                }
                Link::None if slot.meta.kind == FsKind::Dir => Err(Refusal::at(
                    &entry.name,
                    format!(
                        "it is a hard link to the directory {}",
                        shown_bytes(&target)
                    ),
                )),
                Link::None => {
                    let hash = name_hash(&target);
                    scan.roots.entry(slot.ordinal).or_insert((slot.meta, hash));
                    scan.last_link.insert(slot.ordinal, (entry.ordinal, attrs));
                    Ok(Link::Root(slot.ordinal))
                }
            };
        }
        if let Some(parent) = ancestors(&target).find(|a| scan.ever_non_dir(a)) {
            return Err(Refusal::at(
                &entry.name,
                format!(
                    "it is a hard link to {}, which an earlier entry of its layer deleted, making {} no directory",
                    shown_bytes(&target),
                    shown_bytes(parent)
                ),
            ));
        }
        // Entries of its layer under the target (the link itself among them) make it a
        // directory, hiding what the layers below have there.
        let mut prefix = target.clone();
        prefix.push(b'/');
        let under = path.starts_with(&prefix)
            || scan
                .view
                .range::<[u8], _>((Bound::Included(&prefix[..]), Bound::Unbounded))
                .next()
                .is_some_and(|(k, _)| k.starts_with(&prefix));
        if under {
            return Err(Refusal::at(
                &entry.name,
                format!(
                    "it is a hard link to {}, which its own layer makes a directory",
                    shown_bytes(&target)
                ),
            ));
        }
        let id = self.new_pending(layer, entry.ordinal, path, &target, attrs);
        scan.below.push(id);
        Ok(Link::Below(id))
    }

    fn new_pending(
        &mut self,
        layer: u32,
        ordinal: u32,
        path: &[u8],
        target: &[u8],
        attrs: Attrs,
    ) -> u32 {
        let id = self.pending.len() as u32;
        self.pending.push(Pending {
            layer,
            ordinal,
            attrs,
            name: Arc::from(path),
            target: Arc::from(target),
            winner: None,
            followers: Vec::new(),
        });
        id
    }

    /// The metadata of an entry, reading its data when it is hashed.
    fn meta_of<R: Read>(
        &self,
        entry: &TarEntry,
        data: &mut EntryData<'_, R>,
    ) -> Result<Meta, ScanError> {
        let mut meta = Meta::of(entry).map_err(|p| Refusal::at(&entry.name, p))?;
        if self.digests && meta.kind == FsKind::File {
            meta.set_digest(data.digest()?);
        }
        Ok(meta)
    }

    /// Apply a layer resolved on its own: match its entries against the layers above,
    /// resolve the links above that point into it, then add what it does to the
    /// layers below.
    fn merge(&mut self, layer: u32, mut scan: LayerScan) -> Result<(), Refusal> {
        // This layer's own links to files below: its whiteouts and markers apply
        // first, deleting what they name and making directories of their parents.
        if !scan.below.is_empty() {
            let deleted: HashSet<&[u8]> = scan.whiteouts.iter().map(|w| &**w).collect();
            let cleared: HashSet<&[u8]> = scan.opaques.iter().map(|o| &**o).collect();
            let dirs: HashSet<&[u8]> = scan
                .whiteouts
                .iter()
                .flat_map(|w| ancestors(w))
                .chain(
                    scan.opaques
                        .iter()
                        .flat_map(|o| std::iter::once(&**o).chain(ancestors(o))),
                )
                .collect();
            for &id in &scan.below {
                let p = &self.pending[id as usize];
                let target = &p.target;
                let gone = deleted.contains(&target[..])
                    || cleared.contains(&b""[..])
                    || ancestors(target).any(|a| deleted.contains(a) || cleared.contains(a));
                let problem = if gone {
                    "which its own layer deletes"
                } else if dirs.contains(&target[..]) {
                    "which its own layer's whiteouts make a directory"
                } else {
                    continue;
                };
                return Err(Refusal::at(
                    &p.name,
                    format!("it is a hard link to {}, {problem}", shown_bytes(target)),
                ));
            }
        }
        // Links of the layers above whose file is in this layer, or is gone here.
        if !self.open.is_empty() {
            self.resolve_into(layer, &mut scan)?;
        }
        self.decide(layer, &mut scan)?;
        // This layer's own links to files below it wait for the layers below.
        for &id in &scan.below {
            let target: Box<[u8]> = Box::from(&self.pending[id as usize].target[..]);
            self.open.entry(target).or_default().push(id);
        }
        self.hide_below(&scan)
    }

    /// Resolve the pending links of the layers above against this layer: found in its
    /// view, or refused when this layer deletes what they name.
    fn resolve_into(&mut self, layer: u32, scan: &mut LayerScan) -> Result<(), Refusal> {
        let found: Vec<Box<[u8]>> = scan
            .view
            .keys()
            .filter(|k| self.open.contains_key(&k[..]))
            .cloned()
            .collect();
        for key in found {
            let ids = self.open.remove(&key[..]).unwrap_or_default();
            let slot = scan.view[&key].clone();
            for id in ids {
                match slot.link {
                    Link::Below(other) => self.pending[other as usize].followers.push(id),
                    Link::Root(root) => {
                        let meta = scan.roots[&root].0.clone();
                        self.resolved(id, layer, root, &meta);
                    }
                    Link::None if slot.meta.kind == FsKind::Dir => {
                        let p = &self.pending[id as usize];
                        return Err(Refusal::at(
                            &p.name,
                            format!(
                                "it is a hard link to {}, a directory in layer {}",
                                shown_bytes(&p.target),
                                layer + 1
                            ),
                        )
                        .in_layer(p.layer));
                    }
                    Link::None => {
                        let hash = name_hash(&key);
                        scan.roots
                            .entry(slot.ordinal)
                            .or_insert_with(|| (slot.meta.clone(), hash));
                        self.resolved(id, layer, slot.ordinal, &slot.meta);
                    }
                }
            }
        }
        // A directory this layer only implies hides a file below it: a link to it
        // from above is a link to a directory.
        for dir in scan.implied_dirs() {
            if let Some(ids) = self.open.get(dir) {
                let p = &self.pending[ids[0] as usize];
                return Err(Refusal::at(
                    &p.name,
                    format!(
                        "it is a hard link to {}, a directory in layer {}",
                        shown_bytes(dir),
                        layer + 1
                    ),
                )
                .in_layer(p.layer));
            }
        }
        // What this layer deletes below it (whiteouts: the path and all under it;
        // opaque markers and non-directories: all under the path) is no link's file.
        let deleted = scan.whiteouts.iter().map(|w| (&**w, true));
        let cleared = scan.opaques.iter().map(|o| (&**o, false));
        let shadowing = scan.non_dirs().map(|k| (k, false));
        for (path, itself) in deleted.chain(cleared).chain(shadowing) {
            if itself && self.open.contains_key(path) {
                return Err(self.unreachable(path, layer));
            }
            let mut prefix = path.to_vec();
            if !prefix.is_empty() {
                prefix.push(b'/');
            }
            let under = self
                .open
                .range::<[u8], _>((Bound::Included(&prefix[..]), Bound::Unbounded))
                .next()
                .map(|(t, _)| t)
                .filter(|t| t.starts_with(&prefix));
            if let Some(target) = under {
                return Err(self.unreachable(target, layer));
            }
        }
        Ok(())
    }

    /// The refusal for the pending link to `target`, which `layer` deletes.
    fn unreachable(&self, target: &[u8], layer: u32) -> Refusal {
        let p = &self.pending[self.open[target][0] as usize];
        Refusal::at(
            &p.name,
            format!(
                "it is a hard link to {}, which layer {} deletes beneath it",
                shown_bytes(target),
                layer + 1
            ),
        )
        .in_layer(p.layer)
    }

    /// A pending link (and those following it) found: the entry `root` of `layer`.
    fn resolved(&mut self, id: u32, layer: u32, root: u32, meta: &Meta) {
        let mut todo = vec![id];
        while let Some(id) = todo.pop() {
            let followers = std::mem::take(&mut self.pending[id as usize].followers);
            todo.extend(followers);
            let p = &self.pending[id as usize];
            let at = (p.layer, p.ordinal);
            let attrs = p.attrs.clone();
            self.note_link(layer, root, at, attrs);
            if let Some(winner) = self.pending[id as usize].winner {
                self.join_group(winner, layer, root, meta);
            }
        }
    }

    /// A link extracted at `at` (layer, ordinal) applies `attrs` to the file `root` of
    /// `layer`: the last one extracted decides.
    fn note_link(&mut self, layer: u32, root: u32, at: (u32, u32), attrs: Attrs) {
        match self.last_link.get(&(layer, root)) {
            Some((last, _)) if *last > at => {}
            _ => {
                self.last_link.insert((layer, root), (at, attrs));
            }
        }
    }

    /// The attributes the file `ordinal` of `layer` takes from its last link, as an
    /// index into the plan's attributes, and the file's metadata with them.
    fn linked_attrs(
        &mut self,
        layer: u32,
        ordinal: u32,
        meta: &Meta,
    ) -> Result<Option<(u32, Meta)>, Refusal> {
        let Some((_, attrs)) = self.last_link.remove(&(layer, ordinal)) else {
            return Ok(None);
        };
        let meta = meta.clone().with(&attrs).map_err(|problem| Refusal {
            layer: Some(layer),
            entry: None,
            problem,
        })?;
        self.attrs.push(attrs);
        Ok(Some((self.attrs.len() as u32 - 1, meta)))
    }

    /// Make `winner` a member of the group of the file `root` of `layer`.
    fn join_group(&mut self, winner: u32, layer: u32, root: u32, meta: &Meta) {
        let groups = &mut self.groups;
        let group = *self.group_of.entry((layer, root)).or_insert_with(|| {
            groups.push(GroupBuild {
                root_winner: None,
                members: Vec::new(),
            });
            groups.len() as u32 - 1
        });
        self.groups[group as usize].members.push(winner);
        let w = &mut self.winners[winner as usize];
        w.meta = meta.clone();
        w.group = Some(group);
    }

    /// Decide which of this layer's entries the final filesystem shows, and what the
    /// export writes at each of this layer's entries.
    fn decide(&mut self, layer: u32, scan: &mut LayerScan) -> Result<(), Refusal> {
        let mut shown: Vec<(u32, u64, u32)> = Vec::new(); // (ordinal, name hash, winner)
        for (path, slot) in &scan.view {
            if self.hidden(path, slot.meta.kind == FsKind::Dir) {
                continue;
            }
            let key = self.key(path)?;
            let winner = self.winners.len() as u32;
            self.winners.push(Winner {
                layer,
                meta: slot.meta.clone(),
                group: None,
            });
            self.paths.get_mut(&key[..]).expect("just added").winner = Some(winner);
            match slot.link {
                Link::None => shown.push((slot.ordinal, name_hash(path), winner)),
                Link::Root(root) => {
                    let meta = scan.roots[&root].0.clone();
                    self.join_group(winner, layer, root, &meta);
                }
                Link::Below(id) => self.pending[id as usize].winner = Some(winner),
            }
        }
        // The groups whose file is in this layer are complete: links come from above
        // it or from it, never from below; so is what the links did to each file.
        for (root, (ordinal, attrs)) in std::mem::take(&mut scan.last_link) {
            self.note_link(layer, root, (layer, ordinal), attrs);
        }
        let mut steps: Vec<Step> = Vec::new();
        for (ordinal, hash, winner) in shown {
            match self.group_of.get(&(layer, ordinal)) {
                Some(&g) => self.groups[g as usize].root_winner = Some(winner),
                None => {
                    let meta = self.winners[winner as usize].meta.clone();
                    let linked = self.linked_attrs(layer, ordinal, &meta)?;
                    let attrs = linked.map(|(attrs, meta)| {
                        self.winners[winner as usize].meta = meta;
                        attrs
                    });
                    steps.push(Step {
                        ordinal,
                        name_hash: hash,
                        act: Act::Emit(winner),
                        attrs,
                    });
                }
            }
        }
        for (&root, (meta, hash)) in &scan.roots {
            let Some(&g) = self.group_of.get(&(layer, root)) else {
                continue;
            };
            let linked = self.linked_attrs(layer, root, meta)?;
            let attrs = linked.map(|(attrs, meta)| {
                let group = &self.groups[g as usize];
                for &w in group.members.iter().chain(&group.root_winner) {
                    self.winners[w as usize].meta = meta.clone();
                }
                attrs
            });
            steps.push(Step {
                ordinal: root,
                name_hash: *hash,
                act: Act::Group(g),
                attrs,
            });
        }
        // What links did to files nothing of shows is of no use any more.
        self.last_link.retain(|(l, _), _| *l != layer);
        steps.sort_by_key(|s| s.ordinal);
        self.steps[layer as usize] = steps;
        Ok(())
    }

    /// Is an entry at `path` (a directory or not) of the layer being merged hidden by
    /// the layers above it?
    fn hidden(&self, path: &[u8], is_dir: bool) -> bool {
        if self.all_hidden {
            return true;
        }
        if let Some(state) = self.paths.get(path) {
            if state.flags & (CLAIMED | WHITED_OUT) != 0 {
                return true;
            }
            if !is_dir && state.flags & DIR_ABOVE != 0 {
                return true;
            }
        }
        ancestors(path).any(|a| {
            self.paths
                .get(a)
                .is_some_and(|s| s.flags & HIDES_BELOW != 0)
        })
    }

    /// The shared key of `path`, added to the paths known (counted against the caps).
    fn key(&mut self, path: &[u8]) -> Result<PathKey, Refusal> {
        if let Some((key, _)) = self.paths.get_key_value(path) {
            return Ok(Arc::clone(key));
        }
        let problem = if self.paths.len() >= self.max_paths {
            Some(format!(
                "the layers name more than {} paths, the limit for one image",
                self.max_paths
            ))
        } else if self.name_bytes + path.len() > MAX_FILESYSTEM_NAME_BYTES {
            Some(format!(
                "the layers' paths add up to more than {} MiB, the limit for one image",
                MAX_FILESYSTEM_NAME_BYTES >> 20
            ))
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(Refusal {
                layer: None,
                entry: None,
                problem,
            });
        }
        self.name_bytes += path.len();
        let key: PathKey = Arc::from(path);
        self.paths.insert(Arc::clone(&key), PathState::default());
        Ok(key)
    }

    /// Add what a merged layer does to the layers below it.
    fn hide_below(&mut self, scan: &LayerScan) -> Result<(), Refusal> {
        // The directories it implies, each visible unless the layers above hide it;
        // their flags are set once all are found.
        let mut implied: Vec<(PathKey, bool)> = Vec::new();
        for dir in scan.implied_dirs() {
            let visible = !self.hidden(dir, true);
            implied.push((self.key(dir)?, visible));
        }
        for (key, visible) in implied {
            let state = self.paths.get_mut(&key[..]).expect("added above");
            state.flags |= DIR_ABOVE;
            state.implied_visible |= visible;
        }
        for path in scan.view.keys() {
            let key = self.key(path)?;
            self.paths.get_mut(&key[..]).expect("just added").flags |= CLAIMED;
        }
        for path in scan.non_dirs() {
            let key = self.key(path)?;
            self.paths.get_mut(&key[..]).expect("just added").flags |= HIDES_BELOW;
        }
        for path in &scan.whiteouts {
            let key = self.key(path)?;
            self.paths.get_mut(&key[..]).expect("just added").flags |= WHITED_OUT | HIDES_BELOW;
        }
        for dir in &scan.opaques {
            if dir.is_empty() {
                self.all_hidden = true;
                continue;
            }
            let key = self.key(dir)?;
            self.paths.get_mut(&key[..]).expect("just added").flags |= HIDES_BELOW;
        }
        Ok(())
    }

    /// The final filesystem, once every layer has been merged (the base last), and the
    /// export's plan; a link whose file no layer holds is refused.
    pub fn finish(mut self) -> Result<(Vec<FsEntry>, Plan), Refusal> {
        if let Some((target, ids)) = self.open.iter().next() {
            let p = &self.pending[ids[0] as usize];
            return Err(Refusal::at(
                &p.name,
                format!(
                    "it is a hard link to {}, which neither its layer nor any below it holds",
                    shown_bytes(target)
                ),
            )
            .in_layer(p.layer));
        }
        // Every path shown: the winners, and the directories only implied.
        let mut rows: Vec<(PathKey, Option<u32>)> = std::mem::take(&mut self.paths)
            .into_iter()
            .filter(|(_, s)| s.winner.is_some() || s.implied_visible)
            .map(|(k, s)| (k, s.winner))
            .collect();
        rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut index_of = vec![u32::MAX; self.winners.len()];
        for (i, (_, w)) in rows.iter().enumerate() {
            if let Some(w) = w {
                index_of[*w as usize] = i as u32;
            }
        }
        // Each group's carrier: the file itself when shown, else its first link shown.
        let groups: Vec<GroupPlan> = self
            .groups
            .iter()
            .map(|group| {
                let mut members: Vec<u32> = group
                    .members
                    .iter()
                    .map(|&w| index_of[w as usize])
                    .collect();
                members.sort_unstable();
                let carrier = match group.root_winner {
                    Some(w) => index_of[w as usize],
                    None => members.remove(0),
                };
                GroupPlan {
                    carrier,
                    links: members,
                }
            })
            .collect();
        let paths: Vec<PathKey> = rows.iter().map(|(k, _)| Arc::clone(k)).collect();
        let mut winners: Vec<Option<Winner>> = std::mem::take(&mut self.winners)
            .into_iter()
            .map(Some)
            .collect();
        let entries: Vec<FsEntry> = rows
            .into_iter()
            .map(|(path, winner)| match winner {
                None => FsEntry::implied_dir(path),
                Some(w) => {
                    let winner = winners[w as usize].take().expect("one path a winner");
                    let hard_link = winner
                        .group
                        .map(|g| groups[g as usize].carrier)
                        .filter(|&c| c != index_of[w as usize])
                        .map(|c| Arc::clone(&paths[c as usize]));
                    FsEntry {
                        path,
                        meta: winner.meta,
                        hard_link,
                        layer: Some(winner.layer as usize),
                    }
                }
            })
            .collect();
        let layers = self
            .steps
            .into_iter()
            .map(|steps| {
                steps
                    .into_iter()
                    .map(|step| Step {
                        act: match step.act {
                            Act::Emit(w) => Act::Emit(index_of[w as usize]),
                            group => group,
                        },
                        ..step
                    })
                    .collect()
            })
            .collect();
        Ok((
            entries,
            Plan {
                layers,
                groups,
                attrs: self.attrs,
            },
        ))
    }
}

/// The hash of a normalized name a second read of its layer checks against.
pub(crate) fn name_hash(path: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher as _};
    let mut h = std::hash::DefaultHasher::new();
    path.hash(&mut h);
    h.finish()
}

/// Put `slot` at `path` of a layer's view, as extracting it would: a directory over a
/// directory replaces its attributes, anything else replaces the path and all under it
/// (entries under a path only implied so far too).
fn insert(view: &mut BTreeMap<Box<[u8]>, Slot>, path: Box<[u8]>, slot: Slot) {
    // A directory keeps what is under its path (a non-directory there has nothing).
    if slot.meta.kind != FsKind::Dir {
        let mut prefix = path.to_vec();
        prefix.push(b'/');
        let under: Vec<Box<[u8]>> = view
            .range::<[u8], _>((Bound::Included(&prefix[..]), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| k.clone())
            .collect();
        for k in under {
            view.remove(&k);
        }
    }
    view.insert(path, slot);
}

/// Refuse an entry lying under a path its own layer made a non-directory (extracting it
/// fails: that path is no directory).
fn check_parents(
    view: &BTreeMap<Box<[u8]>, Slot>,
    name: &[u8],
    path: &[u8],
) -> Result<(), Refusal> {
    match non_dir_parent(view, path) {
        Some(parent) => Err(Refusal::at(
            name,
            format!(
                "it lies under {}, which an earlier entry of its layer made no directory",
                shown_bytes(parent)
            ),
        )),
        None => Ok(()),
    }
}

/// The first ancestor of `path` a layer's view holds as a non-directory.
fn non_dir_parent<'p>(view: &BTreeMap<Box<[u8]>, Slot>, path: &'p [u8]) -> Option<&'p [u8]> {
    ancestors(path).find(|a| view.get(*a).is_some_and(|s| s.meta.kind != FsKind::Dir))
}

/// The strict ancestors of a normalized path, nearest first (the root not included).
pub(crate) fn ancestors(path: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut end = path.len();
    std::iter::from_fn(move || {
        let slash = path[..end].iter().rposition(|&b| b == b'/')?;
        end = slash;
        Some(&path[..slash])
    })
}

/// A normalized path's parent (empty at the top) and last component.
fn split_last(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(slash) => (&path[..slash], &path[slash + 1..]),
        None => (&[], path),
    }
}

/// `parent/name` (`name` at the top).
fn join(parent: &[u8], name: &[u8]) -> Vec<u8> {
    let mut out = parent.to_vec();
    if !out.is_empty() {
        out.push(b'/');
    }
    out.extend_from_slice(name);
    out
}

/// An entry's name or hard link target as a relative path without `.` or empty
/// components, `..` applied; empty for the root. A leading `/` is the root, as Docker,
/// containerd and GNU tar read it (kaniko names the root `/`). `None` when it climbs
/// out of the root.
pub(crate) fn normalize(raw: &[u8]) -> Option<Vec<u8>> {
    let mut parts: Vec<&[u8]> = Vec::new();
    for c in raw.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                parts.pop()?;
            }
            _ => parts.push(c),
        }
    }
    Some(parts.join(&b'/'))
}

/// Bytes of a name as messages show them: escaped, cut.
pub(crate) fn shown_bytes(bytes: &[u8]) -> String {
    crate::text::shown(&String::from_utf8_lossy(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_names() {
        let n = |s: &str| normalize(s.as_bytes()).map(|v| String::from_utf8(v).unwrap());
        assert_eq!(n("./a//b/./c/"), Some("a/b/c".into()));
        assert_eq!(n("a/../b"), Some("b".into()));
        assert_eq!(n("./"), Some(String::new()));
        assert_eq!(n("../a"), None);
        assert_eq!(n("a/../../b"), None);
        assert_eq!(n("/etc/passwd"), Some("etc/passwd".into()));
        assert_eq!(n("/"), Some(String::new()));
        assert_eq!(n("/../x"), None);
    }

    #[test]
    fn lists_ancestors_nearest_first() {
        let all: Vec<&[u8]> = ancestors(b"a/b/c").collect();
        assert_eq!(all, vec![&b"a/b"[..], &b"a"[..]]);
        assert_eq!(ancestors(b"top").count(), 0);
    }
}
