//! The documents of a store being changed: each entry of `index.json` and
//! `manifest.json` kept byte for byte, changed, dropped or added, the `repositories`
//! file following the names, and which images each entry holds.

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::error::Result;
use crate::model::digest::Digest;
use crate::model::image::Image;
use crate::model::reference::Reference;

use super::json_edit::Piece;
use super::names::{name_of, IndexDoc, IndexEntry, Name, Repositories, SaveDoc, SaveEntry, Wanted};
use super::open::Store;
use super::reach::Reach;
use super::StoreChange;

/// An `index.json` entry as the edit leaves it.
struct IndexSlot {
    /// What it was read as (for an added entry: the entry it was copied from).
    entry: usize,
    /// Dropped.
    gone: bool,
    /// Written anew (added, or its names changed).
    rewritten: bool,
    /// Its `io.containerd.image.name` now.
    image_name: Option<Reference>,
    /// Its ref name now.
    ref_name: Option<String>,
    /// The image it holds (its position in the source), when it holds one.
    image: Option<usize>,
}

impl IndexSlot {
    fn name(&self) -> Option<Name> {
        name_of(self.image_name.as_ref(), self.ref_name.as_deref())
    }
}

/// `index.json` being edited.
pub(crate) struct IndexEdit {
    doc: IndexDoc,
    slots: Vec<IndexSlot>,
    changed: bool,
}

impl IndexEdit {
    fn new(doc: IndexDoc, images: Vec<Option<usize>>) -> IndexEdit {
        let slots = doc
            .entries
            .iter()
            .zip(images)
            .enumerate()
            .map(|(i, (e, image))| IndexSlot {
                entry: i,
                gone: false,
                rewritten: false,
                image_name: e.image_name.clone(),
                ref_name: e.ref_name.clone(),
                image,
            })
            .collect();
        IndexEdit {
            doc,
            slots,
            changed: false,
        }
    }

    fn entry(&self, slot: usize) -> &IndexEntry {
        &self.doc.entries[self.slots[slot].entry]
    }

    fn digest(&self, slot: usize) -> Option<&Digest> {
        self.entry(slot).digest.as_ref()
    }

    fn live(&self, slot: usize) -> bool {
        !self.slots[slot].gone
    }

    /// The live entries holding the image at `image`.
    fn holding(&self, image: usize) -> Vec<usize> {
        (0..self.slots.len())
            .filter(|&s| self.live(s) && self.slots[s].image == Some(image))
            .collect()
    }

    /// Take names away from `slot` (`both`: its whole name; else its ref name only, the
    /// full name it has in `io.containerd.image.name` kept). An entry left with no name
    /// is dropped when another live entry points where it does, else kept unnamed.
    fn strip(&mut self, slot: usize, both: bool) {
        let slot_ref = &mut self.slots[slot];
        slot_ref.ref_name = None;
        if both {
            slot_ref.image_name = None;
        }
        slot_ref.rewritten = true;
        self.changed = true;
        if self.slots[slot].name().is_none() {
            let digest = self.digest(slot).cloned();
            let twin = (0..self.slots.len())
                .any(|s| s != slot && self.live(s) && self.digest(s) == digest.as_ref());
            if twin || digest.is_none() {
                self.slots[slot].gone = true;
            }
        }
    }

    /// Point `name` at what `template` points at, as an entry of its own, named as
    /// dockhand names entries: `io.containerd.image.name` the whole reference, the ref
    /// name its tag (or the whole reference when an entry for another manifest has
    /// that tag, so that each name still picks one image; a bare name is its own ref
    /// name). An entry carrying either already loses it (the name moves, as docker's
    /// and skopeo's do); an unnamed entry for the same manifest is replaced. Returns
    /// the images the name was taken from, or `None` when an entry for the same
    /// manifest has the name already.
    fn add(&mut self, template: usize, name: &Name) -> Option<Vec<usize>> {
        let digest = self.digest(template).cloned();
        if (0..self.slots.len()).any(|s| {
            self.live(s)
                && self.slots[s].name().as_ref() == Some(name)
                && self.digest(s) == digest.as_ref()
        }) {
            return None;
        }
        let mut taken_from = Vec::new();
        for s in 0..self.slots.len() {
            if self.live(s) && self.slots[s].name().as_ref() == Some(name) {
                taken_from.extend(self.slots[s].image);
                self.strip(s, true);
            }
        }
        let ref_name = match name {
            Name::Bare(text) => text.clone(),
            Name::Full(r) => {
                let taken = (0..self.slots.len()).any(|s| {
                    let tag = match self.slots[s].name() {
                        Some(Name::Full(other)) => Some(other.tag().to_string()),
                        Some(Name::Bare(other)) => Some(other),
                        None => None,
                    };
                    self.live(s)
                        && self.digest(s) != digest.as_ref()
                        && tag.as_deref() == Some(r.tag())
                });
                if taken {
                    r.to_string()
                } else {
                    r.tag().to_string()
                }
            }
        };
        for s in 0..self.slots.len() {
            if self.live(s) && self.slots[s].ref_name.as_deref() == Some(ref_name.as_str()) {
                if self.slots[s].image_name.is_none() {
                    taken_from.extend(self.slots[s].image);
                }
                self.strip(s, false);
            }
        }
        // An unnamed entry of this manifest is the one the name now goes to.
        for s in 0..self.slots.len() {
            if self.live(s) && self.slots[s].name().is_none() && self.digest(s) == digest.as_ref() {
                self.slots[s].gone = true;
            }
        }
        let image_name = match name {
            Name::Full(r) => Some(r.clone()),
            Name::Bare(_) => None,
        };
        let image = self.slots[template].image;
        self.slots.push(IndexSlot {
            entry: self.slots[template].entry,
            gone: false,
            rewritten: true,
            image_name,
            ref_name: Some(ref_name),
            image,
        });
        self.changed = true;
        Some(taken_from)
    }

    /// The live entries a name to remove finds.
    fn finding(&self, wanted: &Wanted) -> Vec<usize> {
        (0..self.slots.len())
            .filter(|&s| {
                self.live(s)
                    && wanted.finds(
                        self.slots[s].ref_name.as_deref(),
                        self.slots[s].name().as_ref(),
                    )
            })
            .collect()
    }

    /// The new `index.json`, when anything changed.
    fn bytes(&self) -> Option<Vec<u8>> {
        if !self.changed {
            return None;
        }
        let pieces: Vec<Piece> = self
            .slots
            .iter()
            .filter(|s| !s.gone)
            .map(|s| match s.rewritten {
                true => Piece::New(
                    self.doc.entries[s.entry]
                        .with_names(s.image_name.as_ref(), s.ref_name.as_deref()),
                ),
                false => Piece::Kept(s.entry),
            })
            .collect();
        Some(self.doc.doc.rebuilt(&pieces))
    }

    /// The digests of the live entries (and of all, with `all`).
    fn digests(&self, all: bool) -> Vec<Digest> {
        self.slots
            .iter()
            .filter(|s| all || !s.gone)
            .filter_map(|s| self.doc.entries[s.entry].digest.clone())
            .collect()
    }
}

/// A manifest.json entry as the edit leaves it.
struct SaveSlot {
    gone: bool,
    /// Its RepoTags now, as written.
    tags: Vec<String>,
    changed: bool,
    /// The image it holds (its position in the source).
    image: Option<usize>,
}

/// manifest.json being edited.
pub(crate) struct SaveEdit {
    doc: SaveDoc,
    slots: Vec<SaveSlot>,
}

impl SaveEdit {
    fn holding(&self, image: usize) -> Vec<usize> {
        (0..self.slots.len())
            .filter(|&s| !self.slots[s].gone && self.slots[s].image == Some(image))
            .collect()
    }

    fn entry(&self, slot: usize) -> &SaveEntry {
        &self.doc.entries[slot]
    }

    /// Does `slot` now carry the name `name`?
    fn has(&self, slot: usize, name: &Reference) -> bool {
        self.slots[slot]
            .tags
            .iter()
            .any(|t| Reference::parse(t).ok().as_ref() == Some(name))
    }

    /// Remove the RepoTags of `slot` that `pick` picks; an entry left with none is
    /// dropped when another live entry holds its image, else kept unnamed.
    fn remove_tags(&mut self, slot: usize, pick: impl Fn(&str) -> bool) {
        let before = self.slots[slot].tags.len();
        self.slots[slot].tags.retain(|t| !pick(t));
        if self.slots[slot].tags.len() == before {
            return;
        }
        self.slots[slot].changed = true;
        if self.slots[slot].tags.is_empty() {
            let image = self.slots[slot].image;
            let twin = (0..self.slots.len())
                .any(|s| s != slot && !self.slots[s].gone && self.slots[s].image == image);
            if twin && image.is_some() {
                self.slots[slot].gone = true;
            }
        }
    }

    fn bytes(&self) -> Option<Vec<u8>> {
        if !self.slots.iter().any(|s| s.gone || s.changed) {
            return None;
        }
        let pieces: Vec<Piece> = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.gone)
            .map(|(i, s)| {
                if s.changed {
                    Piece::New(self.entry(i).with_tags(&s.tags))
                } else {
                    Piece::Kept(i)
                }
            })
            .collect();
        Some(self.doc.doc.rebuilt(&pieces))
    }
}

/// Everything an edit of a store changes, before any of it is written.
pub(crate) struct Edit<'s> {
    pub store: &'s Store,
    index: Option<IndexEdit>,
    save: Option<SaveEdit>,
    repositories: Option<Repositories>,
    /// What was done, in order.
    pub changes: Vec<StoreChange>,
    /// Paths of the tree the store no longer needs.
    pub dropped: BTreeSet<String>,
}

/// The documents an edit writes, each when it changed.
pub(crate) struct Written {
    pub index: Option<Vec<u8>>,
    pub manifest: Option<Vec<u8>>,
    pub repositories: Option<Vec<u8>>,
}

impl<'s> Edit<'s> {
    /// The store's documents, ready to be changed, with which image each entry holds.
    pub(crate) fn new(store: &'s Store) -> Result<Edit<'s>> {
        let images = &store.source.images;
        let save = match &store.manifest {
            Some(bytes) if store.format.name().starts_with("docker") => {
                let doc = SaveDoc::parse(bytes)?;
                let by_id = images_by_id(images);
                let slots = doc
                    .entries
                    .iter()
                    .map(|e| SaveSlot {
                        gone: false,
                        tags: e.tags.iter().map(|(t, _)| t.clone()).collect(),
                        changed: false,
                        image: image_of_save_entry(store, &by_id, e),
                    })
                    .collect();
                Some(SaveEdit { doc, slots })
            }
            _ => None,
        };
        let index = match &store.index {
            Some(bytes) => {
                let doc = IndexDoc::parse(bytes)?;
                let held = if save.is_some() {
                    // The OCI part of a docker-save archive: an entry holds the images
                    // whose manifest it is or lists.
                    let mut reach = Reach::new(&*store.tree);
                    let mut held = Vec::new();
                    for e in &doc.entries {
                        let under = match &e.digest {
                            Some(d) => reach.manifests_under(d)?,
                            None => HashSet::new(),
                        };
                        held.push(images.iter().position(|i| {
                            i.manifest
                                .as_ref()
                                .is_some_and(|m| under.contains(&m.digest))
                        }));
                    }
                    held
                } else {
                    let by_manifest: HashMap<&Digest, usize> = images
                        .iter()
                        .enumerate()
                        .filter_map(|(n, i)| i.manifest.as_ref().map(|m| (&m.digest, n)))
                        .collect();
                    (0..doc.entries.len())
                        .map(|k| {
                            store
                                .roots
                                .get(k)
                                .cloned()
                                .flatten()
                                .and_then(|m| by_manifest.get(&m).copied())
                        })
                        .collect()
                };
                Some(IndexEdit::new(doc, held))
            }
            None => None,
        };
        let repositories = store
            .repositories
            .as_deref()
            .filter(|_| save.is_some())
            .and_then(Repositories::parse);
        Ok(Edit {
            store,
            index,
            save,
            repositories,
            changes: Vec::new(),
            dropped: BTreeSet::new(),
        })
    }

    /// Whether the store is an OCI layout (bare names are ref names there).
    pub(crate) fn is_oci(&self) -> bool {
        self.save.is_none()
    }

    /// Give the image at `image` the name `name`, beside the names it has. `via`, the
    /// name the image was picked by, picks the entry copied when the image has several
    /// (an index listing it, or its manifest). Returns false when it had the name.
    pub(crate) fn tag(&mut self, image: usize, via: Option<&Wanted>, name: &Name) -> bool {
        let id = self.store.source.images[image].config.digest.clone();
        let mut added = false;
        if let Some(save) = &mut self.save {
            let Name::Full(reference) = name else {
                unreachable!("docker-save names are references");
            };
            let holders = save.holding(image);
            let template = holders
                .iter()
                .copied()
                .find(|&s| {
                    via.is_some_and(|w| {
                        save.slots[s]
                            .tags
                            .iter()
                            .any(|t| w.finds(Some(t), repo_tag(t).as_ref()))
                    })
                })
                .or(holders.first().copied());
            if let Some(template) = template {
                let already = holders.iter().any(|&s| save.has(s, reference));
                if !already {
                    for s in 0..save.slots.len() {
                        if !save.slots[s].gone && save.has(s, reference) {
                            let moved = save.slots[s].image;
                            save.remove_tags(s, |t| {
                                Reference::parse(t).ok().as_ref() == Some(reference)
                            });
                            if let Some(from) = moved {
                                let from = self.store.source.images[from].config.digest.clone();
                                self.changes.push(StoreChange::Moved {
                                    name: reference.to_string(),
                                    from,
                                });
                            }
                        }
                    }
                    save.slots[template].tags.push(reference.to_string());
                    save.slots[template].changed = true;
                    if let Some(repos) = &mut self.repositories {
                        let top = save.slots[template]
                            .tags
                            .iter()
                            .filter_map(|t| Reference::parse(t).ok())
                            .find_map(|r| repos.top_of(&r))
                            .or_else(|| top_layer_id(save.entry(template)));
                        repos.remove(reference);
                        if let Some(top) = top {
                            repos.set(reference, &top);
                        }
                    }
                    added = true;
                }
            }
        }
        if let Some(index) = &mut self.index {
            let holders = index.holding(image);
            let template = holders
                .iter()
                .copied()
                .find(|&s| {
                    via.is_some_and(|w| {
                        w.finds(
                            index.slots[s].ref_name.as_deref(),
                            index.slots[s].name().as_ref(),
                        )
                    })
                })
                .or(holders.first().copied());
            if let Some(template) = template {
                if let Some(taken_from) = index.add(template, name) {
                    added = true;
                    if self.save.is_none() {
                        let images = &self.store.source.images;
                        let ids = taken_from
                            .into_iter()
                            .map(|i| images[i].config.digest.clone());
                        for from in ids.filter(|from| *from != id) {
                            self.changes.push(StoreChange::Moved {
                                name: name.shown(),
                                from,
                            });
                        }
                    }
                }
            }
        }
        self.changes.push(if added {
            StoreChange::Tagged {
                name: name.shown(),
                image: id,
            }
        } else {
            StoreChange::AlreadyTagged {
                name: name.shown(),
                image: id,
            }
        });
        added
    }

    /// Whether any entry carries `wanted`.
    pub(crate) fn holds(&self, wanted: &Wanted) -> bool {
        let in_save = self.save.as_ref().is_some_and(|save| {
            (0..save.slots.len()).any(|s| {
                !save.slots[s].gone
                    && save.slots[s]
                        .tags
                        .iter()
                        .any(|t| wanted.finds(Some(t), repo_tag(t).as_ref()))
            })
        });
        let in_index = self.save.is_none()
            && self
                .index
                .as_ref()
                .is_some_and(|index| !index.finding(wanted).is_empty());
        in_save || in_index
    }

    /// Every name the store holds, as messages list them.
    pub(crate) fn names(&self) -> Vec<String> {
        let mut names = Vec::new();
        if let Some(save) = &self.save {
            for s in save.slots.iter().filter(|s| !s.gone) {
                names.extend(s.tags.iter().map(|t| crate::text::shown(t)));
            }
        } else if let Some(index) = &self.index {
            for s in index.slots.iter().filter(|s| !s.gone) {
                names.extend(s.name().as_ref().map(Name::shown));
            }
        }
        names
    }

    /// Remove the name `wanted` wherever it is. An image left without a name stays,
    /// unnamed (as docker keeps an image it untags last: `<none>`).
    pub(crate) fn untag(&mut self, wanted: &Wanted) {
        let mut touched: Vec<Digest> = Vec::new();
        if let Some(save) = &mut self.save {
            for s in 0..save.slots.len() {
                if save.slots[s].gone {
                    continue;
                }
                let found: Vec<String> = save.slots[s]
                    .tags
                    .iter()
                    .filter(|t| wanted.finds(Some(t), repo_tag(t).as_ref()))
                    .cloned()
                    .collect();
                if found.is_empty() {
                    continue;
                }
                let image = save.slots[s]
                    .image
                    .map(|i| self.store.source.images[i].config.digest.clone());
                save.remove_tags(s, |t| found.iter().any(|f| f == t));
                for tag in &found {
                    if let (Some(repos), Ok(r)) = (&mut self.repositories, Reference::parse(tag)) {
                        repos.remove(&r);
                    }
                    self.changes.push(StoreChange::Untagged {
                        name: crate::text::shown(tag),
                        image: image.clone(),
                    });
                }
                touched.extend(image);
            }
        }
        if let Some(index) = &mut self.index {
            let found = index.finding(wanted);
            for s in found {
                let name = index.slots[s].name().as_ref().map(Name::shown);
                let image = index.slots[s]
                    .image
                    .map(|i| self.store.source.images[i].config.digest.clone());
                index.strip(s, true);
                if self.save.is_none() {
                    self.changes.push(StoreChange::Untagged {
                        name: name.unwrap_or_else(|| wanted.shown()),
                        image: image.clone(),
                    });
                    touched.extend(image);
                }
            }
        }
        touched.sort();
        touched.dedup();
        for id in touched {
            if !self.is_named(&id) {
                self.changes.push(StoreChange::LeftUnnamed { image: id });
            }
        }
    }

    /// Does the image `id` still have a name?
    fn is_named(&self, id: &Digest) -> bool {
        match (&self.save, &self.index) {
            (Some(save), _) => save.slots.iter().any(|s| {
                !s.gone
                    && !s.tags.is_empty()
                    && s.image
                        .is_some_and(|i| self.store.source.images[i].config.digest == *id)
            }),
            (None, Some(index)) => index.slots.iter().any(|s| {
                !s.gone
                    && s.name().is_some()
                    && s.image
                        .is_some_and(|i| self.store.source.images[i].config.digest == *id)
            }),
            (None, None) => false,
        }
    }

    /// Remove the images at `picked` with every entry holding them, what refers to them
    /// only, and the files only they needed.
    pub(crate) fn remove(&mut self, picked: &[usize]) -> Result<()> {
        let store = self.store;
        let images = &store.source.images;
        let picked: HashSet<usize> = picked.iter().copied().collect();
        let mut before_paths = BTreeSet::new();
        let mut after_paths = BTreeSet::new();
        let v1_dirs = v1_dirs(store)?;
        let mut still_referred = Vec::new();
        if let Some(save) = &mut self.save {
            for s in 0..save.slots.len() {
                let paths = save_paths(store, save.entry(s), &v1_dirs)?;
                let goes = save.slots[s].image.is_some_and(|i| picked.contains(&i));
                if goes {
                    if let Some(repos) = &mut self.repositories {
                        for tag in &save.slots[s].tags {
                            if let Ok(r) = Reference::parse(tag) {
                                repos.remove(&r);
                            }
                        }
                    }
                    save.slots[s].gone = true;
                    before_paths.extend(paths);
                } else {
                    after_paths.extend(paths.clone());
                    before_paths.extend(paths);
                }
            }
        }
        if let Some(index) = &mut self.index {
            let before = index.digests(true);
            let mut removed_digests: HashSet<Digest> = HashSet::new();
            for &i in &picked {
                removed_digests.extend(images[i].manifest.as_ref().map(|m| m.digest.clone()));
            }
            for s in 0..index.slots.len() {
                let goes = index.slots[s].image.is_some_and(|i| picked.contains(&i));
                if goes && !index.slots[s].gone {
                    removed_digests.extend(index.digest(s).cloned());
                    index.slots[s].gone = true;
                    index.changed = true;
                }
            }
            // What refers to a removed image only goes with it: its referrers tags
            // (the fallback tag, cosign's), and referrers listed by themselves without
            // a name; and what refers to those in turn (a signature of an SBOM). A
            // named artifact is the user's: it stays, whatever it refers to, and keeps
            // what it refers to.
            let mut reach = Reach::new(&*store.tree);
            let subjects: Vec<Option<Digest>> = (0..index.slots.len())
                .map(|s| {
                    let unnamed = index.slots[s].name().is_none();
                    match index.entry(s).referrers_of() {
                        Some(subject) => Some(subject),
                        None if unnamed && index.slots[s].image.is_none() => {
                            index.digest(s).and_then(|d| subject_of(store, d))
                        }
                        None => None,
                    }
                })
                .collect();
            let kept_docs: Vec<Digest> = (0..index.slots.len())
                .filter(|&s| !index.slots[s].gone && subjects[s].is_none())
                .filter_map(|s| index.digest(s).cloned())
                .collect();
            let still = reach.from(kept_docs, [])?;
            loop {
                let mut more = false;
                for (s, subject) in subjects.iter().enumerate() {
                    let Some(subject) = subject else {
                        continue;
                    };
                    if index.slots[s].gone
                        || !removed_digests.contains(subject)
                        || still.contains(subject)
                    {
                        continue;
                    }
                    index.slots[s].gone = true;
                    index.changed = true;
                    removed_digests.extend(index.digest(s).cloned());
                    more = true;
                    self.changes.push(StoreChange::ReferrerRemoved {
                        subject: subject.clone(),
                        entry: index.slots[s]
                            .ref_name
                            .clone()
                            .or_else(|| index.digest(s).map(|d| d.to_string()))
                            .unwrap_or_default(),
                    });
                }
                if !more {
                    break;
                }
            }
            let before = reach.from(before, manifest_json_blobs(store))?;
            let after = reach.from(
                index.digests(false),
                manifest_json_blobs_kept(store, self.save.as_ref()),
            )?;
            for &i in &picked {
                let manifest = images[i].manifest.as_ref().map(|m| &m.digest);
                if manifest.is_some_and(|m| after.contains(m)) {
                    still_referred.push(images[i].config.digest.clone());
                }
            }
            for d in before.difference(&after) {
                before_paths.insert(crate::formats::blob_path(d));
            }
            for d in &after {
                after_paths.insert(crate::formats::blob_path(d));
            }
        }
        let mut picked: Vec<usize> = picked.into_iter().collect();
        picked.sort();
        for i in picked {
            let image = &images[i];
            let mut names: Vec<String> = image.tags.iter().map(|t| t.to_string()).collect();
            names.extend(image.ref_names.iter().map(|n| crate::text::shown(n)));
            if !self
                .changes
                .iter()
                .any(|c| matches!(c, StoreChange::Removed { image: id, .. } if *id == image.config.digest))
            {
                self.changes.push(StoreChange::Removed {
                    image: image.config.digest.clone(),
                    names,
                });
            }
        }
        still_referred.dedup();
        for image in still_referred {
            self.changes.push(StoreChange::StillReferred { image });
        }
        self.dropped = before_paths.difference(&after_paths).cloned().collect();
        Ok(())
    }

    /// The documents to write.
    pub(crate) fn written(&self) -> Written {
        Written {
            index: self.index.as_ref().and_then(IndexEdit::bytes),
            manifest: self.save.as_ref().and_then(SaveEdit::bytes),
            repositories: self.repositories.as_ref().and_then(Repositories::bytes),
        }
    }
}

/// The name a RepoTag reads as.
fn repo_tag(text: &str) -> Option<Name> {
    Reference::parse(text).ok().map(Name::Full)
}

/// The images of the store by image ID, in the source's order.
fn images_by_id(images: &[Image]) -> HashMap<&Digest, Vec<usize>> {
    let mut map: HashMap<&Digest, Vec<usize>> = HashMap::new();
    for (n, image) in images.iter().enumerate() {
        map.entry(&image.config.digest).or_default().push(n);
    }
    map
}

/// The image (its position) a manifest.json entry holds: of the images with its config
/// (read once), the one with its layer files, as the reader merged them; else the first.
fn image_of_save_entry(
    store: &Store,
    by_id: &HashMap<&Digest, Vec<usize>>,
    entry: &SaveEntry,
) -> Option<usize> {
    let tree = &*store.tree;
    let config = entry.config.as_deref()?;
    let file = tree.find(config).ok()??;
    let bytes = crate::container::read_limited(
        file.open().ok()?,
        crate::model::image::MAX_JSON_SIZE,
        config,
    )
    .ok()?;
    let candidates = by_id.get(&Digest::of(&bytes))?;
    let layers: Vec<Option<String>> = entry
        .layers
        .iter()
        .map(|l| tree.find(l).ok().flatten().map(|f| f.path))
        .collect();
    let images = &store.source.images;
    let same_layers = |i: &Image| {
        i.layers.len() == layers.len()
            && i.layers
                .iter()
                .zip(&layers)
                .all(|(l, p)| p.as_deref() == Some(l.path.as_str()))
    };
    candidates
        .iter()
        .copied()
        .find(|&i| same_layers(&images[i]))
        .or(candidates.first().copied())
}

/// The id `repositories` gives an image's top layer, from its last layer's path:
/// `<id>/layer.tar` (Docker <= 24), `blobs/sha256/<hex>` (Docker >= 25).
fn top_layer_id(entry: &SaveEntry) -> Option<String> {
    let last = entry.layers.last()?;
    if let Some(dir) = last.strip_suffix("/layer.tar") {
        return Some(dir.to_string()).filter(|d| !d.contains('/'));
    }
    last.strip_prefix("blobs/sha256/").map(String::from)
}

/// Each layer file of the tree (resolved) and the legacy `<v1 id>/` directories whose
/// `layer.tar` is it (itself, or a link to it).
fn v1_dirs(store: &Store) -> Result<HashMap<String, Vec<String>>> {
    let tree = &*store.tree;
    let mut map: HashMap<String, Vec<String>> = HashMap::new();
    if store.manifest.is_none() {
        return Ok(map);
    }
    for top in tree.top_level() {
        let candidate = format!("{top}/layer.tar");
        if let Ok(Some(file)) = tree.find(&candidate) {
            map.entry(file.path).or_default().push(top);
        }
    }
    Ok(map)
}

/// The paths of the tree a manifest.json entry needs: its config and layers (links and
/// what they lead to), and the legacy directories of those layers.
fn save_paths(
    store: &Store,
    entry: &SaveEntry,
    v1_dirs: &HashMap<String, Vec<String>>,
) -> Result<BTreeSet<String>> {
    let tree = &*store.tree;
    let mut out = BTreeSet::new();
    let add = |path: &str, out: &mut BTreeSet<String>, layer: bool| -> Result<()> {
        let Some(clean) =
            crate::container::normalize_path(path, crate::container::Parents::Refused)
        else {
            return Ok(());
        };
        out.insert(clean.clone());
        if let Some(file) = tree.find(&clean)? {
            if layer {
                for dir in v1_dirs.get(&file.path).into_iter().flatten() {
                    for part in ["layer.tar", "json", "VERSION"] {
                        out.insert(format!("{dir}/{part}"));
                    }
                }
            }
            out.insert(file.path);
        }
        Ok(())
    };
    if let Some(config) = &entry.config {
        add(config, &mut out, false)?;
    }
    for layer in &entry.layers {
        add(layer, &mut out, true)?;
    }
    Ok(out)
}

/// The blobs (by digest) manifest.json names under `blobs/sha256/`: a Docker >= 25
/// archive's configs and layers, which its OCI part shares.
fn manifest_json_blobs(store: &Store) -> Vec<Digest> {
    let Some(bytes) = &store.manifest else {
        return Vec::new();
    };
    match SaveDoc::parse(bytes) {
        Ok(doc) => doc.entries.iter().flat_map(entry_blobs).collect(),
        Err(_) => Vec::new(),
    }
}

/// [`manifest_json_blobs`] of the entries an edit keeps.
fn manifest_json_blobs_kept(store: &Store, save: Option<&SaveEdit>) -> Vec<Digest> {
    match save {
        Some(save) => save
            .doc
            .entries
            .iter()
            .zip(&save.slots)
            .filter(|(_, s)| !s.gone)
            .flat_map(|(e, _)| entry_blobs(e))
            .collect(),
        None => manifest_json_blobs(store),
    }
}

fn entry_blobs(entry: &SaveEntry) -> Vec<Digest> {
    entry
        .config
        .iter()
        .chain(&entry.layers)
        .filter_map(|p| p.strip_prefix("blobs/sha256/").and_then(Digest::from_hex))
        .collect()
}

/// The digest the manifest `digest` of the store names as its `subject`, if any.
fn subject_of(store: &Store, digest: &Digest) -> Option<Digest> {
    let file = store.tree.find(&crate::formats::blob_path(digest)).ok()??;
    if file.size > crate::model::image::MAX_JSON_SIZE {
        return None;
    }
    let bytes = crate::container::read_limited(
        file.open().ok()?,
        crate::model::image::MAX_JSON_SIZE,
        "manifest",
    )
    .ok()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    Digest::parse(value.get("subject")?.get("digest")?.as_str()?).ok()
}
