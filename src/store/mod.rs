//! A layout or archive as a daemonless image store, as docker's tag store and umoci
//! treat one: names added and removed in place ([`store_tag`], [`store_untag`]),
//! images removed with the blobs only they used ([`store_remove`]), unreferenced blobs
//! collected ([`store_gc`]); and, for any source, how its images relate
//! ([`image_family`]: parents, children, heads), which pass docker's `images`
//! filters ([`ImageFilters`]) and in which order `docker images` lists them
//! ([`image_rows`]).
//!
//! Edits keep every byte they do not change: an `index.json` or `manifest.json` entry
//! not touched keeps its exact text, configs and manifests are never rewritten. An OCI
//! layout's `index.json` is renamed in under the lock the adding path takes; an
//! archive is written anew beside itself and renamed over; blobs go only under the
//! lock every run adding blobs shares, so that a conversion adding to a layout at the
//! same time never loses a blob.

mod commit;
mod edit;
mod family;
mod filter;
mod gc;
mod json_edit;
mod listing;
mod names;
mod open;
mod reach;

pub use family::{image_family, Family};
pub use filter::{ImageFilter, ImageFilters};
pub use listing::{created_at, image_rows, ImageRow};

use std::path::Path;

use crate::error::{Error, Result};
use crate::model::digest::Digest;
use crate::select::{select, selectors, Selector};
use crate::transport::{Format, Location};

use edit::Edit;
use names::{Name, Wanted};
use open::Access;

/// Why a store cannot be changed as asked.
///
/// ```
/// use dockhand::{store_untag, Error, Location, StoreError};
///
/// let input = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/docker-save-basic/input.tar");
/// # let tmp = tempfile::tempdir().unwrap();
/// # let copy = tmp.path().join("basic.tar");
/// # std::fs::copy(input, &copy).unwrap();
/// # let input = copy.to_str().unwrap();
/// let err = store_untag(&Location::parse(input)?, &["nosuch:1".into()]).unwrap_err();
/// let Error::Store(problem) = err.without_input() else { panic!("{err}") };
/// assert!(matches!(&**problem, StoreError::UnknownName { name, .. } if name == "nosuch:1"));
/// # Ok::<(), dockhand::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A name to remove that no image of the store carries; nothing was changed.
    #[error("{store}: no image is named {name}; the names it holds: {}", listed(.held))]
    UnknownName {
        /// The store, as given.
        store: String,
        /// The name asked for, escaped.
        name: String,
        /// Every name the store holds, escaped.
        held: Vec<String>,
    },
    /// The place is not a store dockhand changes in place (a registry, `dir:`, stdin, a
    /// compressed archive, a docker-save archive older than Docker 1.10).
    #[error("{store} cannot be changed in place: {reason}")]
    NotEditable {
        /// The place, as given.
        store: String,
        /// Why, and what to do instead.
        reason: String,
    },
}

/// At most this many names in a message; the rest are counted.
const NAMES_SHOWN: usize = 20;

fn listed(names: &[String]) -> String {
    if names.is_empty() {
        return "none".into();
    }
    let mut text = names
        .iter()
        .take(NAMES_SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > NAMES_SHOWN {
        text.push_str(&format!(" and {} more", names.len() - NAMES_SHOWN));
    }
    text
}

/// One thing an edit of a store did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreChange {
    /// The image `image` (its ID) got the name `name`.
    Tagged {
        /// The name, whole (`docker.io/library/app:2`), or the bare ref name.
        name: String,
        /// The image's ID.
        image: Digest,
    },
    /// The image had the name already; nothing changed for it.
    AlreadyTagged {
        /// The name.
        name: String,
        /// The image's ID.
        image: Digest,
    },
    /// The name went to another image (as `docker tag` moves a name): the image `from`
    /// no longer has it.
    Moved {
        /// The name.
        name: String,
        /// The image that had it.
        from: Digest,
    },
    /// The name was removed.
    Untagged {
        /// The name, as the store held it.
        name: String,
        /// The image it named, when it named one.
        image: Option<Digest>,
    },
    /// The image lost its last name and stays in the store, unnamed (`<none>` in
    /// `docker images`); `rm` removes it.
    LeftUnnamed {
        /// The image's ID.
        image: Digest,
    },
    /// The image was removed, with these names.
    Removed {
        /// The image's ID.
        image: Digest,
        /// The names it had.
        names: Vec<String>,
    },
    /// A removed image's blobs stay: a referrer the store keeps (an artifact with a
    /// name of its own) refers to it, and a referrer keeps what it refers to.
    StillReferred {
        /// The image's ID.
        image: Digest,
    },
    /// What referred to a removed image only (a referrers tag, a signature) was
    /// removed with it.
    ReferrerRemoved {
        /// The digest it referred to.
        subject: Digest,
        /// The `index.json` entry, by its ref name or digest.
        entry: String,
    },
}

/// What [`store_tag`], [`store_untag`] or [`store_remove`] did.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct StoreReport {
    /// The store's transport.
    pub format: Format,
    /// What changed, in order.
    pub changes: Vec<StoreChange>,
    /// Files (blobs, archive entries) no longer needed and removed.
    pub files_removed: usize,
    /// Their bytes.
    pub bytes_removed: u64,
}

/// What [`store_gc`] found and did.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct GcReport {
    /// The blobs removed (or, with `dry_run`, that would be), with their sizes.
    pub removed: Vec<(Digest, u64)>,
    /// How many blobs are used and were kept.
    pub kept: usize,
    /// What `blobs/` holds that is not a blob named by its digest: left alone.
    pub unknown: Vec<String>,
    /// Nothing was removed: the report says what would be.
    pub dry_run: bool,
}

/// Give one image of the store at `location` more names, as `docker tag` does:
/// `location`'s reference (`oci:DIR:1.0`, `docker-archive:x.tar:@1`) picks the
/// image (the store's only one when it names none), and each of `new_names` is
/// added. A name another image has moves to this one; in an OCI layout a bare tag
/// (`2.0`) is a ref name, as in skopeo's `oci:DIR:2.0`, and a full name gets an entry
/// named as dockhand names them (see the README's Names section).
///
/// An OCI layout's `index.json` is renamed in under the layout's lock (the one runs
/// adding images take); an archive is written anew beside itself and renamed over it;
/// a docker-save directory gets its `manifest.json` and `repositories` renamed in.
/// Entries not changed keep their exact bytes.
///
/// ```
/// use dockhand::{open_source, store_tag, Location, ReadOptions, StoreChange};
///
/// # let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/docker-save-basic/input.tar");
/// # let tmp = tempfile::tempdir().unwrap();
/// # let copy = tmp.path().join("basic.tar");
/// # std::fs::copy(fixture, &copy).unwrap();
/// # let archive = copy.to_str().unwrap().to_string();
/// let report = store_tag(&Location::parse(&archive)?, &["example.com/app:2".into()])?;
/// assert!(matches!(&report.changes[0], StoreChange::Tagged { name, .. }
///     if name == "example.com/app:2"));
/// let source = open_source(&Location::parse(&archive)?, &ReadOptions::default())?;
/// assert!(source.images[0].tags.iter().any(|t| t.to_string() == "example.com/app:2"));
/// # Ok::<(), dockhand::Error>(())
/// ```
pub fn store_tag(location: &Location, new_names: &[String]) -> Result<StoreReport> {
    if new_names.is_empty() {
        return Err(Error::Usage("tag needs at least one new name".into()));
    }
    let store = open::open(location, Access::Names)?;
    let images = &store.source.images;
    let chosen = selectors(location, &[])?;
    let image = match chosen.as_slice() {
        [] if images.len() == 1 => 0,
        [] => {
            return Err(Error::Unselected {
                message: format!(
                    "holds {} images: name the one to tag after the path (SRC:NAME, SRC:ID \
                     or SRC:@N); it holds: {}",
                    images.len(),
                    crate::select::candidates(images, &(0..images.len()).collect::<Vec<_>>())
                ),
                input: store.shown.clone(),
            }
            .in_input(&store.shown))
        }
        _ => {
            let picked = select(images, &chosen).map_err(|e| e.in_input(&store.shown))?;
            let ids: std::collections::BTreeSet<&Digest> =
                picked.iter().map(|&i| &images[i].config.digest).collect();
            if ids.len() != 1 {
                return Err(Error::Unselected {
                    message: format!(
                        "{} picks {} images, and a name goes to one: pick it by its ID or @N; \
                         they are: {}",
                        crate::text::shown(location.reference.as_deref().unwrap_or("")),
                        ids.len(),
                        crate::select::candidates(images, &picked)
                    ),
                    input: store.shown.clone(),
                }
                .in_input(&store.shown));
            }
            picked[0]
        }
    };
    let via = location.reference.as_deref().map(Wanted::new);
    let mut edit = Edit::new(&store).map_err(|e| e.in_input(&store.shown))?;
    let names: Vec<Name> = new_names
        .iter()
        .map(|n| Name::new(n, edit.is_oci()))
        .collect::<Result<_>>()?;
    for name in &names {
        edit.tag(image, via.as_ref(), name);
    }
    finish(&edit)
}

/// Remove names from the store at `location`, as `docker rmi NAME` untags: each name
/// (a reference, normalized as docker does, or an OCI ref name as written) must be one
/// the store holds, or nothing is changed ([`StoreError::UnknownName`]). An image that
/// loses its last name stays in the store, unnamed, as docker keeps it (`<none>`):
/// an OCI layout lists it without a name, a docker-save archive with `RepoTags: null`
/// (as `docker save IMAGE-ID` writes); [`store_remove`] removes it.
///
/// ```
/// use dockhand::{store_untag, Location, StoreChange};
///
/// # let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/docker-save-basic/input.tar");
/// # let tmp = tempfile::tempdir().unwrap();
/// # let copy = tmp.path().join("basic.tar");
/// # std::fs::copy(fixture, &copy).unwrap();
/// # let archive = copy.to_str().unwrap().to_string();
/// let names = ["dockhand-fixture/basic:1.0".into(), "dockhand-fixture/basic".into()];
/// let report = store_untag(&Location::parse(&archive)?, &names)?;
/// // Both names gone, the image kept without one.
/// assert!(matches!(report.changes.last(), Some(StoreChange::LeftUnnamed { .. })));
/// # Ok::<(), dockhand::Error>(())
/// ```
pub fn store_untag(location: &Location, names: &[String]) -> Result<StoreReport> {
    let mut all: Vec<&str> = location.reference.iter().map(String::as_str).collect();
    all.extend(names.iter().map(String::as_str));
    if all.is_empty() {
        return Err(Error::Usage(
            "untag needs at least one name to remove".into(),
        ));
    }
    let store = open::open(location, Access::Names)?;
    let mut edit = Edit::new(&store).map_err(|e| e.in_input(&store.shown))?;
    let wanted: Vec<Wanted> = all.iter().map(|n| Wanted::new(n)).collect();
    if let Some(missing) = wanted.iter().find(|w| !edit.holds(w)) {
        return Err(Error::Store(Box::new(StoreError::UnknownName {
            store: store.shown.clone(),
            name: missing.shown(),
            held: edit.names(),
        })));
    }
    for w in &wanted {
        edit.untag(w);
    }
    finish(&edit)
}

/// Remove the images `chosen` picks (with `location`'s reference, selectors as
/// `--image` takes them: a name, an image ID or a unique prefix of one, a manifest
/// digest, `@N`) from the store at `location`, with every name they have, what refers
/// to them only (their referrers tags and signatures), and every blob or file no image
/// left needs: an OCI layout loses those blobs, an archive is written anew without
/// them. To remove one name only, [`store_untag`].
///
/// ```
/// use dockhand::{open_source, store_remove, Location, ReadOptions, Selector};
///
/// # let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/docker-save-multi/input.tar");
/// # let tmp = tempfile::tempdir().unwrap();
/// # let copy = tmp.path().join("multi.tar");
/// # std::fs::copy(fixture, &copy).unwrap();
/// # let archive = copy.to_str().unwrap().to_string();
/// let location = Location::parse(&archive)?;
/// let report = store_remove(&location, &[Selector::parse("@0")?])?;
/// assert!(report.files_removed > 0);
/// let source = open_source(&location, &ReadOptions::default())?;
/// assert_eq!(source.images.len(), 2);
/// # Ok::<(), dockhand::Error>(())
/// ```
pub fn store_remove(location: &Location, chosen: &[Selector]) -> Result<StoreReport> {
    let mut all = selectors(location, &[])?;
    all.extend(chosen.iter().cloned());
    if all.is_empty() {
        return Err(Error::Usage(format!(
            "rm needs the images to remove: {} REF|ID|@N, or SRC:REF",
            crate::error::Setting::Image
        )));
    }
    let store = open::open(location, Access::Blobs)?;
    if store.tar.is_none() {
        for dir in ["blobs", "blobs/sha256"] {
            let link = std::fs::symlink_metadata(store.path.join(dir))
                .is_ok_and(|m| m.file_type().is_symlink());
            if link {
                return Err(Error::Store(Box::new(StoreError::NotEditable {
                    store: store.shown.clone(),
                    reason: format!(
                        "its {dir} is a link, maybe to blobs other layouts share too, so no \
                         blob is removed from it; untag the image instead"
                    ),
                })));
            }
        }
    }
    let images = &store.source.images;
    let mut picked = select(images, &all).map_err(|e| e.in_input(&store.shown))?;
    // Entries repeating one image are one image to remove.
    let same: Vec<usize> = (0..images.len())
        .filter(|&i| {
            picked.iter().any(|&p| {
                images[p].config.digest == images[i].config.digest
                    && images[p].manifest == images[i].manifest
            })
        })
        .collect();
    picked = same;
    if picked.len() == images.len() && store.format != Format::OCI {
        return Err(Error::Store(Box::new(StoreError::NotEditable {
            store: store.shown.clone(),
            reason: format!(
                "removing every image it holds would leave {} holding none, which no tool \
                 loads; delete it instead",
                if store.tar.is_some() {
                    "an archive"
                } else {
                    "a docker-save tree"
                }
            ),
        })));
    }
    let mut edit = Edit::new(&store).map_err(|e| e.in_input(&store.shown))?;
    edit.remove(&picked).map_err(|e| e.in_input(&store.shown))?;
    finish(&edit)
}

/// Remove from the layout directory at `path` (an OCI layout, or a docker-save tree of
/// Docker >= 25) every blob nothing it names uses, as `umoci gc` does: what
/// `index.json` lists is walked down through nested indexes, their members,
/// manifests, configs, layers, subjects, referrers tags and cosign tags (and, in a
/// docker-save tree, what manifest.json names); every other file of `blobs/sha256/`
/// named by a digest goes. Files that are not named by a digest (a temp file, a
/// README) are left alone and listed in [`GcReport::unknown`]. With `dry_run`, nothing
/// is removed.
///
/// It holds the lock every run adding blobs to the layout shares, so a conversion into
/// the layout that has written blobs but not yet its index waits for it, or it for the
/// conversion: no blob an image needs is ever taken.
///
/// ```
/// use dockhand::store_gc;
///
/// # let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/skopeo-oci/input");
/// # let tmp = tempfile::tempdir().unwrap();
/// # let layout = tmp.path().join("layout");
/// # std::fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
/// # for entry in walkdir::WalkDir::new(fixture) {
/// #     let entry = entry.unwrap();
/// #     let rel = entry.path().strip_prefix(fixture).unwrap();
/// #     if entry.file_type().is_file() { std::fs::copy(entry.path(), layout.join(rel)).unwrap(); }
/// # }
/// std::fs::write(layout.join("blobs/sha256").join("ab".repeat(32)), b"left over")?;
/// let report = store_gc(&layout, false)?;
/// assert_eq!(report.removed.len(), 1);
/// assert_eq!(report.removed[0].1, 9);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn store_gc(path: &Path, dry_run: bool) -> Result<GcReport> {
    gc::collect(path, dry_run)
}

/// Write `edit` back; its report.
fn finish(edit: &Edit) -> Result<StoreReport> {
    let removed = commit::commit(edit).map_err(|e| match e {
        Error::Input { .. } => e,
        other => other.in_input(&edit.store.shown),
    })?;
    Ok(StoreReport {
        format: edit.store.format,
        changes: edit.changes.clone(),
        files_removed: removed.files,
        bytes_removed: removed.bytes,
    })
}
