//! `dockhand diff`: what changed between the final filesystems of two images (paths
//! added, removed and changed, whiteouts applied) and which layers they share.
//!
//! Both filesystems are built by the first pass of the export ([`super::apply_layers`]
//! with content digests), so memory grows with the number of paths, never with their
//! bytes. Each layer is read once: a layer both images hold (the same diff_id) is
//! read once for both, its entries passing through both images' engines as they
//! stream, whenever the two orders allow it (the layers both hold in the same order:
//! their longest common subsequence, read from the top down).

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::HashSet;
use std::io::{self, Write};
use std::iter::Peekable;
use std::slice::Iter;

use serde_json::{json, Value};

use super::apply::Engine;
use super::{read_layer, read_shared_layer, refused, Filesystem, FsEntry, FsKind};
use crate::error::{Error, Result, Setting};
use crate::model::digest::Digest;
use crate::model::image::{Image, Platform};
use crate::progress::Progress;
use crate::text::{escape, escape_json_text, shown};
use crate::transport::{Location, ReadOptions, RegistryOptions, Source};

/// One attribute of a path that differs between the two filesystems.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Difference {
    /// What the path is (a file, a directory, a symlink...).
    Kind,
    /// A regular file's size.
    Size,
    /// The permission bits (with setuid, setgid and sticky).
    Mode,
    /// The owner's user or group ID.
    Owner,
    /// A symbolic link's target.
    LinkTarget,
    /// A device's major or minor number.
    Device,
    /// A regular file's content (its sha256).
    Content,
    /// The modification time (only when [`CompareOptions::times`] asks).
    Mtime,
}

/// Every [`Difference`], in the order they are listed.
const DIFFERENCES: [Difference; 8] = [
    Difference::Kind,
    Difference::Size,
    Difference::Mode,
    Difference::Owner,
    Difference::LinkTarget,
    Difference::Device,
    Difference::Content,
    Difference::Mtime,
];

impl Difference {
    /// Its name in the JSON form and the text lines: `type`, `size`, `mode`, `owner`,
    /// `link_target`, `device`, `content`, `mtime`.
    pub fn name(self) -> &'static str {
        match self {
            Difference::Kind => "type",
            Difference::Size => "size",
            Difference::Mode => "mode",
            Difference::Owner => "owner",
            Difference::LinkTarget => "link_target",
            Difference::Device => "device",
            Difference::Content => "content",
            Difference::Mtime => "mtime",
        }
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// The attributes that differ at one path: a small set of [`Difference`]s.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Differences(u16);

impl Differences {
    /// Does the set hold `difference`?
    pub fn contains(self, difference: Difference) -> bool {
        self.0 & difference.bit() != 0
    }

    /// True when nothing differs.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The differences, in a fixed order (type, size, mode, owner, link target,
    /// device, content, time).
    pub fn iter(self) -> impl Iterator<Item = Difference> {
        DIFFERENCES.into_iter().filter(move |d| self.contains(*d))
    }

    fn add(&mut self, difference: Difference) {
        self.0 |= difference.bit();
    }
}

/// What to compare at a path both filesystems hold.
///
/// Fields may be added in later versions: build one with `..Default::default()`.
#[derive(Clone, Debug, Default)]
pub struct CompareOptions {
    /// Also compare modification times (off by default: a rebuild changes every
    /// time, and a directory's time changes with any file added to it, which is what
    /// `docker diff` reports as a changed directory).
    pub times: bool,
}

/// How one path differs between image A and image B.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathChange<'a> {
    /// B has the path, A has not.
    Added(&'a FsEntry),
    /// A has the path, B has not.
    Removed(&'a FsEntry),
    /// Both have it, with these attributes differing.
    Changed {
        /// A's entry.
        before: &'a FsEntry,
        /// B's entry.
        after: &'a FsEntry,
        /// What differs.
        differences: Differences,
    },
}

impl PathChange<'_> {
    /// The path, relative to the root, as [`FsEntry::path`] gives it.
    pub fn path(&self) -> Cow<'_, str> {
        self.entry().path()
    }

    /// The entry the change is shown with: B's for an added or changed path, A's for
    /// a removed one.
    pub fn entry(&self) -> &FsEntry {
        match self {
            PathChange::Added(e) | PathChange::Removed(e) => e,
            PathChange::Changed { after, .. } => after,
        }
    }

    /// The letter `docker diff` shows for it: `A`, `D` or `C`.
    pub fn letter(&self) -> char {
        match self {
            PathChange::Added(_) => 'A',
            PathChange::Removed(_) => 'D',
            PathChange::Changed { .. } => 'C',
        }
    }
}

/// One layer of an image compared.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DiffLayer {
    /// The sha256 of its uncompressed tar.
    pub diff_id: Option<Digest>,
    /// Its size as its source stores it (compressed or not).
    pub size: u64,
    /// The other image holds a layer of this diff_id too.
    pub shared: bool,
}

/// One of the two images compared.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DiffSide {
    /// The source it was read from, as given.
    pub input: String,
    /// The image, as messages name it.
    pub image: String,
    /// Its ID (config digest).
    pub image_id: Digest,
    /// Its position in its source (`@N`), when [`diff`] picked it there.
    pub index: Option<usize>,
    /// Its layers, base first.
    pub layers: Vec<DiffLayer>,
}

impl DiffSide {
    fn of(image: &Image, other: &Image) -> DiffSide {
        let theirs: HashSet<&Digest> = other
            .layers
            .iter()
            .filter_map(|l| l.diff_id.as_ref())
            .collect();
        let layers = image
            .layers
            .iter()
            .map(|l| DiffLayer {
                diff_id: l.diff_id.clone(),
                size: l.size,
                shared: l.diff_id.as_ref().is_some_and(|d| theirs.contains(d)),
            })
            .collect();
        DiffSide {
            input: image.input.to_string(),
            image: image.display_name(),
            image_id: image.config.digest.clone(),
            index: None,
            layers,
        }
    }

    /// How many of its layers the other image holds too.
    pub fn shared_layers(&self) -> usize {
        self.layers.iter().filter(|l| l.shared).count()
    }

    /// The stored bytes of its layers the other image does not hold.
    pub fn own_bytes(&self) -> u64 {
        self.layers
            .iter()
            .filter(|l| !l.shared)
            .map(|l| l.size)
            .sum()
    }
}

/// A field of the image config that differs: one of the container config's
/// (`config.Env`, `config.Cmd`, `config.Labels`, ...) or the platform and author at
/// the top (`architecture`, `os`, `variant`, `author`). `created`, `history` and
/// `rootfs` are left out: the layers and paths say what they would.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConfigDifference {
    /// The field: `config.NAME` or a top-level name.
    pub key: String,
    /// A's value, `None` when A has none.
    pub a: Option<Value>,
    /// B's value, `None` when B has none.
    pub b: Option<Value>,
}

/// The top-level config fields compared besides the container config.
const TOP_FIELDS: [&str; 4] = ["architecture", "os", "variant", "author"];

/// The config fields that differ between `a` and `b` (raw config bytes), in key
/// order: the top-level fields, then the container config's; a field absent, null or
/// empty on one side and absent, null or empty on the other is no difference. A
/// config that does not parse compares as an empty one (reading the image already
/// checked it).
fn config_differences(a: &[u8], b: &[u8]) -> Vec<ConfigDifference> {
    let parse = |bytes: &[u8]| -> Value {
        crate::model::image::parse_json::<Value>(bytes, "config").unwrap_or(Value::Null)
    };
    let (a, b) = (parse(a), parse(b));
    let mut out = Vec::new();
    let mut compare = |key: String, x: Option<&Value>, y: Option<&Value>| {
        // Absent, null and empty (`"Labels": {}`, `"Cmd": []`) mean the same to a
        // runtime.
        let present = |v: &&Value| match v {
            Value::Null => false,
            Value::Object(map) => !map.is_empty(),
            Value::Array(list) => !list.is_empty(),
            _ => true,
        };
        let (x, y) = (x.filter(present), y.filter(present));
        if x != y {
            out.push(ConfigDifference {
                key,
                a: x.cloned(),
                b: y.cloned(),
            });
        }
    };
    for key in TOP_FIELDS {
        compare(key.to_string(), a.get(key), b.get(key));
    }
    let container = |v: &Value| v.get("config").and_then(Value::as_object).cloned();
    let (x, y) = (
        container(&a).unwrap_or_default(),
        container(&b).unwrap_or_default(),
    );
    let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
    for key in keys {
        compare(format!("config.{key}"), x.get(key), y.get(key));
    }
    out
}

/// The counts of a comparison.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DiffSummary {
    /// Paths only B has.
    pub added: usize,
    /// Paths only A has.
    pub removed: usize,
    /// Paths both have, differing.
    pub changed: usize,
    /// The bytes of the regular files only B has.
    pub added_bytes: u64,
    /// The bytes of the regular files only A has.
    pub removed_bytes: u64,
    /// The bytes B's changed regular files hold.
    pub changed_bytes: u64,
}

/// The comparison of two images: both sides, and their final filesystems, whose
/// differences [`ImageDiff::changes`] walks.
#[derive(Debug)]
pub struct ImageDiff {
    /// Image A (the "before").
    pub a: DiffSide,
    /// Image B (the "after").
    pub b: DiffSide,
    /// How many layer reads the comparison made (a layer both hold read once).
    pub layers_read: usize,
    /// The config fields that differ.
    pub config: Vec<ConfigDifference>,
    fs_a: Filesystem,
    fs_b: Filesystem,
    compare: CompareOptions,
}

impl ImageDiff {
    /// Every path that differs, sorted by path (its bytes), as `docker diff` lists
    /// them.
    pub fn changes(&self) -> Changes<'_> {
        Changes {
            a: self.fs_a.entries().iter().peekable(),
            b: self.fs_b.entries().iter().peekable(),
            compare: &self.compare,
        }
    }

    /// The two final filesystems, A's and B's.
    pub fn filesystems(&self) -> (&Filesystem, &Filesystem) {
        (&self.fs_a, &self.fs_b)
    }

    /// How many paths were added, removed and changed, and their bytes.
    pub fn summary(&self) -> DiffSummary {
        let mut s = DiffSummary::default();
        for change in self.changes() {
            match change {
                PathChange::Added(e) => {
                    s.added += 1;
                    s.added_bytes += e.size();
                }
                PathChange::Removed(e) => {
                    s.removed += 1;
                    s.removed_bytes += e.size();
                }
                PathChange::Changed { after, .. } => {
                    s.changed += 1;
                    s.changed_bytes += after.size();
                }
            }
        }
        s
    }

    /// True when the two filesystems are the same (for what is compared).
    pub fn is_empty(&self) -> bool {
        self.changes().next().is_none()
    }

    /// Write the changes as `docker diff` shows them, one line each: `A /path`,
    /// `D /path`, `C /path` followed by what differs (`size 12->30, content
    /// 3f2a1b9c8d7e->9c8d7e3f2a1b`). Paths and link targets are escaped
    /// ([`crate::text::escape`]: control characters, line separators, bidirectional
    /// overrides and the backslash), never cut, so that each change is one line that
    /// reads back to its path.
    pub fn write_lines(&self, mut out: impl Write) -> io::Result<()> {
        for change in self.changes() {
            let path = escape(&format!("/{}", change.path()));
            match change {
                PathChange::Changed {
                    before,
                    after,
                    differences,
                } => {
                    let what: Vec<String> = differences
                        .iter()
                        .map(|d| describe(d, before, after))
                        .collect();
                    writeln!(out, "C {path}  {}", what.join(", "))?;
                }
                other => writeln!(out, "{} {path}", other.letter())?,
            }
        }
        Ok(())
    }

    /// Write the comparison as one JSON document: `a` and `b` (each image's input,
    /// name, ID, position and layers, each layer with `shared`), `layers` (how many
    /// are shared, and each image's own layers' bytes), `config` (each config field
    /// that differs: `key`, and its values `a` and `b`, `null` where absent),
    /// `summary` (counts and bytes),
    /// then `added` and `removed` (each an entry: `path` from the root, `type`,
    /// `mode` as an octal string, `uid`, `gid`, and as they apply `size`, `digest`,
    /// `link_target`, `device`) and `changed` (`path`, `changes` naming what differs,
    /// and the entries `a` and `b`). Written as the changes are walked: memory does
    /// not grow with their number. Characters a terminal would act on are escaped
    /// inside the strings ([`crate::text::escape_json_text`]); the values are the same.
    pub fn write_json(&self, mut out: impl Write) -> io::Result<()> {
        let summary = self.summary();
        let head = json!({
            "a": side_json(&self.a),
            "b": side_json(&self.b),
            "layers": {
                "shared": self.b.shared_layers(),
                "a_only": self.a.layers.len() - self.a.shared_layers(),
                "b_only": self.b.layers.len() - self.b.shared_layers(),
                "a_only_bytes": self.a.own_bytes(),
                "b_only_bytes": self.b.own_bytes(),
                "read": self.layers_read,
            },
            "config": self.config.iter().map(|c| json!({
                "key": c.key,
                "a": c.a,
                "b": c.b,
            })).collect::<Vec<_>>(),
            "summary": {
                "added": summary.added,
                "removed": summary.removed,
                "changed": summary.changed,
                "added_bytes": summary.added_bytes,
                "removed_bytes": summary.removed_bytes,
                "changed_bytes": summary.changed_bytes,
            },
        });
        // The head's members, then the three arrays, streamed.
        let head = serde_json::to_string_pretty(&head).map_err(io::Error::other)?;
        let head = head
            .trim_end()
            .strip_suffix('}')
            .unwrap_or(&head)
            .trim_end();
        out.write_all(escape_json_text(head).as_bytes())?;
        let arrays: [(&str, JsonOf); 3] = [
            ("added", |c| match c {
                PathChange::Added(e) => Some(entry_json(e)),
                _ => None,
            }),
            ("removed", |c| match c {
                PathChange::Removed(e) => Some(entry_json(e)),
                _ => None,
            }),
            ("changed", |c| match c {
                PathChange::Changed {
                    before,
                    after,
                    differences,
                } => Some(json!({
                    "path": format!("/{}", after.path()),
                    "changes": differences.iter().map(Difference::name).collect::<Vec<_>>(),
                    "a": entry_json(before),
                    "b": entry_json(after),
                })),
                _ => None,
            }),
        ];
        for (name, pick) in arrays {
            write!(out, ",\n  \"{name}\": [")?;
            let mut first = true;
            for value in self.changes().filter_map(|c| pick(&c)) {
                out.write_all(if first { b"\n    " } else { b",\n    " })?;
                let value = serde_json::to_string(&value).map_err(io::Error::other)?;
                out.write_all(escape_json_text(&value).as_bytes())?;
                first = false;
            }
            out.write_all(if first { b"]" } else { b"\n  ]" })?;
        }
        out.write_all(b"\n}\n")
    }
}

/// The JSON of a change, when it belongs in the array being written.
type JsonOf = fn(&PathChange) -> Option<Value>;

/// The walk over two sorted filesystems that [`ImageDiff::changes`] returns.
#[derive(Debug)]
pub struct Changes<'a> {
    a: Peekable<Iter<'a, FsEntry>>,
    b: Peekable<Iter<'a, FsEntry>>,
    compare: &'a CompareOptions,
}

impl<'a> Iterator for Changes<'a> {
    type Item = PathChange<'a>;

    fn next(&mut self) -> Option<PathChange<'a>> {
        loop {
            let order = match (self.a.peek(), self.b.peek()) {
                (None, None) => return None,
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some(a), Some(b)) => a.path_bytes().cmp(b.path_bytes()),
            };
            match order {
                Ordering::Less => return self.a.next().map(PathChange::Removed),
                Ordering::Greater => return self.b.next().map(PathChange::Added),
                Ordering::Equal => {
                    let (before, after) = (self.a.next()?, self.b.next()?);
                    let differences = compare(before, after, self.compare);
                    if !differences.is_empty() {
                        return Some(PathChange::Changed {
                            before,
                            after,
                            differences,
                        });
                    }
                }
            }
        }
    }
}

/// What differs between two entries of one path. A path whose type changed is
/// compared on its type, mode and owner only: the rest means nothing across types.
fn compare(a: &FsEntry, b: &FsEntry, options: &CompareOptions) -> Differences {
    let mut d = Differences::default();
    let mut differ = |difference: Difference, differs: bool| {
        if differs {
            d.add(difference)
        }
    };
    let same_kind = a.kind() == b.kind();
    differ(Difference::Kind, !same_kind);
    differ(Difference::Size, same_kind && a.size() != b.size());
    differ(Difference::Mode, a.mode() != b.mode());
    differ(Difference::Owner, (a.uid(), a.gid()) != (b.uid(), b.gid()));
    differ(
        Difference::LinkTarget,
        same_kind && a.symlink_target_bytes() != b.symlink_target_bytes(),
    );
    differ(Difference::Device, same_kind && a.device() != b.device());
    differ(
        Difference::Content,
        same_kind && a.kind() == FsKind::File && a.digest() != b.digest(),
    );
    differ(Difference::Mtime, options.times && a.mtime() != b.mtime());
    d
}

/// One difference in words, for the text lines: `mode 0644->0755`.
fn describe(difference: Difference, a: &FsEntry, b: &FsEntry) -> String {
    let (before, after) = match difference {
        Difference::Kind => (a.kind().name().to_string(), b.kind().name().to_string()),
        Difference::Size => (a.size().to_string(), b.size().to_string()),
        Difference::Mode => (format!("{:04o}", a.mode()), format!("{:04o}", b.mode())),
        Difference::Owner => (
            format!("{}:{}", a.uid(), a.gid()),
            format!("{}:{}", b.uid(), b.gid()),
        ),
        Difference::LinkTarget => (
            escape(&a.symlink_target().unwrap_or_default()),
            escape(&b.symlink_target().unwrap_or_default()),
        ),
        Difference::Device => {
            let device = |e: &FsEntry| {
                e.device()
                    .map_or_else(String::new, |(major, minor)| format!("{major},{minor}"))
            };
            (device(a), device(b))
        }
        Difference::Content => {
            let digest = |e: &FsEntry| e.digest().map_or("-", |d| d.short()).to_string();
            (digest(a), digest(b))
        }
        Difference::Mtime => (a.mtime().to_string(), b.mtime().to_string()),
    };
    format!("{} {before}->{after}", difference.name())
}

/// An entry of the JSON form.
fn entry_json(e: &FsEntry) -> Value {
    let mut v = json!({
        "path": format!("/{}", e.path()),
        "type": e.kind().name(),
        "mode": format!("{:04o}", e.mode()),
        "uid": e.uid(),
        "gid": e.gid(),
    });
    let map = v.as_object_mut().expect("an object");
    if e.kind() == FsKind::File {
        map.insert("size".into(), e.size().into());
        if let Some(digest) = e.digest() {
            map.insert("digest".into(), digest.to_string().into());
        }
    }
    if let Some(target) = e.symlink_target() {
        map.insert("link_target".into(), target.into_owned().into());
    }
    if let Some((major, minor)) = e.device() {
        map.insert("device".into(), json!([major, minor]));
    }
    v
}

/// A side of the JSON form.
fn side_json(side: &DiffSide) -> Value {
    json!({
        "input": side.input,
        "image": side.image,
        "id": side.image_id.to_string(),
        "index": side.index,
        "layers": side.layers.iter().map(|l| json!({
            "diff_id": l.diff_id.as_ref().map(|d| d.to_string()),
            "size": l.size,
            "shared": l.shared,
        })).collect::<Vec<_>>(),
    })
}

/// What [`diff`] reads and compares.
///
/// Fields may be added in later versions: build one with `..Default::default()`.
#[derive(Clone, Debug, Default)]
pub struct DiffOptions {
    /// Which images to compare (a name, an ID or digest, `@N`). With one source: the
    /// two images of it (with the reference of the location, if any, taking the
    /// first place). With two: none when each holds one image, one that picks in
    /// both, or two, the first picking in A and the second in B.
    pub images: Vec<String>,
    /// The platform to pick from a multi-platform index (default: the host's).
    pub platform: Option<Platform>,
    /// How to reach a registry source.
    pub registry: RegistryOptions,
    /// What to compare at each path.
    pub compare: CompareOptions,
}

/// Compare the final filesystems of images `a` and `b` (each layer read once,
/// verified; a layer both hold read once for both), and list their layers, marking
/// those both hold.
///
/// ```
/// use dockhand::{diff_images, open_source, DiffOptions, Location, NoProgress, PathChange};
///
/// # let input = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/docker-save-multi/input.tar");
/// let source = open_source(&Location::parse(input)?, &Default::default())?;
/// let (base, app) = (&source.images[2], &source.images[0]);
/// let diff = diff_images(base, app, &DiffOptions::default(), &NoProgress)?;
/// // The app is the base with a layer on top: every base layer is shared, read once.
/// assert_eq!(diff.a.shared_layers(), base.layers.len());
/// assert_eq!(diff.layers_read, app.layers.len());
/// assert!(diff.changes().any(|c| matches!(c, PathChange::Added(_))));
/// # Ok::<(), dockhand::Error>(())
/// ```
pub fn diff_images(
    a: &Image,
    b: &Image,
    options: &DiffOptions,
    progress: &dyn Progress,
) -> Result<ImageDiff> {
    for image in [a, b] {
        if image.artifact {
            return Err(Error::Unsupported(format!(
                "image {} is an artifact (its config is no container image config): it has no filesystem",
                image.display_name()
            ))
            .in_input(&image.input));
        }
    }
    let mut engine_a = Engine::new(a.layers.len(), true);
    let mut engine_b = Engine::new(b.layers.len(), true);
    let mut layers_read = 0;
    for step in schedule(a, b) {
        layers_read += 1;
        match step {
            Step::A(i) => read_layer(a, i, progress, |entries| engine_a.layer(i, entries))?,
            Step::B(j) => read_layer(b, j, progress, |entries| engine_b.layer(j, entries))?,
            Step::Both(i, j) => read_shared_layer(&[(a, i), (b, j)], progress, |entries| {
                Engine::shared_layer(&mut [(&mut engine_a, i), (&mut engine_b, j)], entries)
            })?,
        }
    }
    let finish = |engine: Engine, image: &Image| {
        engine
            .finish()
            .map(|(entries, plan)| Filesystem {
                entries,
                plan,
                image: image.config.digest.clone(),
            })
            .map_err(|r| refused(image, image.layers.len().saturating_sub(1), r))
    };
    Ok(ImageDiff {
        a: DiffSide::of(a, b),
        b: DiffSide::of(b, a),
        layers_read,
        config: config_differences(&a.config_bytes, &b.config_bytes),
        fs_a: finish(engine_a, a)?,
        fs_b: finish(engine_b, b)?,
        compare: options.compare.clone(),
    })
}

/// One read of the comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// Layer `i` of A only.
    A(usize),
    /// Layer `j` of B only.
    B(usize),
    /// Layer `i` of A, which is layer `j` of B.
    Both(usize, usize),
}

/// The most cells the common-subsequence table may have (layers of A times layers
/// of B); past it, only the common base is read once for both.
const MAX_SCHEDULE_CELLS: usize = 1 << 22;

/// The order of the reads: each engine takes its layers from the top down, and a
/// layer both hold (by diff_id) is read once for both when both are at it, which the
/// longest common subsequence of the two top-down orders makes as often as can be.
fn schedule(a: &Image, b: &Image) -> Vec<Step> {
    let ids = |image: &Image| -> Vec<Option<Digest>> {
        image
            .layers
            .iter()
            .rev()
            .map(|l| l.diff_id.clone())
            .collect()
    };
    let (x, y) = (ids(a), ids(b));
    let (n, m) = (x.len(), y.len());
    let same = |i: usize, j: usize| x[i].is_some() && x[i] == y[j];
    let top = |k: usize, len: usize| len - 1 - k;
    let mut steps = Vec::with_capacity(n + m);
    if (n + 1).saturating_mul(m + 1) > MAX_SCHEDULE_CELLS {
        // The common base only: the last layers of both top-down orders.
        let mut base = 0;
        while base < n.min(m) && same(n - 1 - base, m - 1 - base) {
            base += 1;
        }
        steps.extend((0..n - base).map(|i| Step::A(top(i, n))));
        steps.extend((0..m - base).map(|j| Step::B(top(j, m))));
        steps.extend((0..base).map(|k| Step::Both(base - 1 - k, base - 1 - k)));
        return steps;
    }
    // lcs[i][j]: the longest common subsequence of x[i..] and y[j..].
    let width = m + 1;
    let mut lcs = vec![0u32; (n + 1) * width];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i * width + j] = if same(i, j) {
                lcs[(i + 1) * width + j + 1] + 1
            } else {
                lcs[(i + 1) * width + j].max(lcs[i * width + j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && same(i, j) && lcs[i * width + j] == lcs[(i + 1) * width + j + 1] + 1 {
            steps.push(Step::Both(top(i, n), top(j, m)));
            i += 1;
            j += 1;
        } else if j == m || (i < n && lcs[(i + 1) * width + j] >= lcs[i * width + j + 1]) {
            steps.push(Step::A(top(i, n)));
            i += 1;
        } else {
            steps.push(Step::B(top(j, m)));
            j += 1;
        }
    }
    steps
}

/// `dockhand diff`: open `a` (and `b`, or take both images from `a`), pick the two
/// images as [`DiffOptions::images`] says, and compare them ([`diff_images`]).
///
/// ```
/// use dockhand::{diff, DiffOptions, Location, NoProgress};
///
/// # let input = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/docker-save-multi/input.tar");
/// let options = DiffOptions { images: vec!["@2".into(), "@0".into()], ..Default::default() };
/// let diff = diff(&Location::parse(input)?, None, &options, &NoProgress)?;
/// assert_eq!((diff.a.index, diff.b.index), (Some(2), Some(0)));
/// let summary = diff.summary();
/// assert!(summary.added > 0 && summary.removed == 0);
/// # Ok::<(), dockhand::Error>(())
/// ```
pub fn diff(
    a: &Location,
    b: Option<&Location>,
    options: &DiffOptions,
    progress: &dyn Progress,
) -> Result<ImageDiff> {
    let read = ReadOptions {
        platform: options.platform.clone(),
        registry: options.registry.clone(),
        ..ReadOptions::default()
    };
    let (mut result, sources) = match b {
        None => {
            let picks = crate::select::selectors(a, &options.images)?;
            if picks.len() != 2 {
                return Err(Error::Usage(format!(
                    "diff compares two images: with one source ({}), name both with {image} (twice), e.g. {image} @0 {image} @1; {} given",
                    shown(&a.path),
                    picks.len(),
                    image = Setting::Image
                )));
            }
            let source = crate::location::open_source(a, &read)?;
            let first = pick_one(&source, a, &picks[..1])?;
            let second = pick_one(&source, a, &picks[1..])?;
            let mut result = diff_images(
                &source.images[first],
                &source.images[second],
                options,
                progress,
            )?;
            result.a.index = Some(first);
            result.b.index = Some(second);
            (result, vec![source])
        }
        Some(b) => {
            if a.path == "-" && b.path == "-" {
                return Err(Error::Usage(
                    "diff can read one of its two sources from stdin, not both".into(),
                ));
            }
            let (for_a, for_b): (&[String], &[String]) = match &options.images[..] {
                [] => (&[], &[]),
                [both] => (std::slice::from_ref(both), std::slice::from_ref(both)),
                [first, second] => (std::slice::from_ref(first), std::slice::from_ref(second)),
                more => {
                    return Err(Error::Usage(format!(
                        "diff of two sources takes {image} once (for both) or twice (the first for A, the second for B), not {} times",
                        more.len(),
                        image = Setting::Image
                    )))
                }
            };
            let (picks_a, picks_b) = (
                crate::select::selectors(a, for_a)?,
                crate::select::selectors(b, for_b)?,
            );
            let source_a = crate::location::open_source(a, &read)?;
            let first = pick_one(&source_a, a, &picks_a)?;
            let source_b = crate::location::open_source(b, &read)?;
            let second = pick_one(&source_b, b, &picks_b)?;
            let mut result = diff_images(
                &source_a.images[first],
                &source_b.images[second],
                options,
                progress,
            )?;
            result.a.index = Some(first);
            result.b.index = Some(second);
            (result, vec![source_a, source_b])
        }
    };
    for source in sources {
        let _ = source.finished();
    }
    result.a.input = shown(&a.path);
    result.b.input = shown(&b.unwrap_or(a).path);
    Ok(result)
}

/// The one image `picks` choose in `source` (its only image when there is no pick).
fn pick_one(
    source: &Source,
    location: &Location,
    picks: &[crate::select::Selector],
) -> Result<usize> {
    crate::select::select_one(
        &source.images,
        picks,
        &location.path,
        "diff compares one of it",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image_of(diff_ids: &[u8]) -> Image {
        let fixture = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/docker-save-basic/input.tar"
        );
        let location = Location::parse(fixture).expect("the fixture's path");
        let source =
            crate::location::open_source(&location, &ReadOptions::default()).expect("the fixture");
        let mut image = source.images[0].clone();
        image.layers = diff_ids
            .iter()
            .map(|&n| crate::model::image::Layer {
                digest: None,
                size: 1,
                media_type: String::new(),
                compression: crate::model::media::Compression::None,
                diff_id: Some(Digest::of(&[n])),
                blob: None,
                path: format!("layer{n}"),
            })
            .collect();
        image
    }

    /// Each layer of each image read exactly once, from the top down in each image.
    fn check_schedule(a: &[u8], b: &[u8], expect_reads: usize) {
        let steps = schedule(&image_of(a), &image_of(b));
        assert_eq!(steps.len(), expect_reads, "{a:?} {b:?}: {steps:?}");
        let (mut seen_a, mut seen_b) = (Vec::new(), Vec::new());
        for step in &steps {
            match *step {
                Step::A(i) => seen_a.push(i),
                Step::B(j) => seen_b.push(j),
                Step::Both(i, j) => {
                    assert_eq!(a[i], b[j], "{steps:?}");
                    seen_a.push(i);
                    seen_b.push(j);
                }
            }
        }
        let down = |n: usize| (0..n).rev().collect::<Vec<_>>();
        assert_eq!(seen_a, down(a.len()), "{steps:?}");
        assert_eq!(seen_b, down(b.len()), "{steps:?}");
    }

    #[test]
    fn config_fields_differ_unless_both_are_absent_null_or_empty() {
        let a = br#"{"architecture":"amd64","os":"linux","config":{"Cmd":["sh"],"Labels":{},"Env":null,"User":"1"}}"#;
        let b = br#"{"architecture":"arm64","os":"linux","created":"x","config":{"Cmd":["sh"],"Entrypoint":[],"User":"2","WorkingDir":"/w"}}"#;
        let found: Vec<(String, Option<Value>, Option<Value>)> = config_differences(a, b)
            .into_iter()
            .map(|c| (c.key, c.a, c.b))
            .collect();
        assert_eq!(
            found,
            [
                (
                    "architecture".into(),
                    Some(json!("amd64")),
                    Some(json!("arm64"))
                ),
                ("config.User".into(), Some(json!("1")), Some(json!("2"))),
                ("config.WorkingDir".into(), None, Some(json!("/w"))),
            ]
        );
        assert!(config_differences(a, a).is_empty());
    }

    #[test]
    fn a_shared_base_is_read_once_for_both() {
        check_schedule(&[1, 2, 3], &[1, 2, 4, 5], 5);
        check_schedule(&[1, 2, 3], &[1, 2, 3], 3);
        check_schedule(&[1], &[2], 2);
        check_schedule(&[], &[1, 2], 2);
    }

    #[test]
    fn shared_layers_out_of_place_are_read_once_when_their_order_allows() {
        // B has an extra layer under the shared one.
        check_schedule(&[7], &[1, 7], 2);
        // The same layer twice in one image, once in the other.
        check_schedule(&[1, 1], &[1], 2);
        // Swapped: only one of the two can be shared.
        check_schedule(&[1, 2], &[2, 1], 3);
    }
}
