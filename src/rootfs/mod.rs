//! An image's final filesystem: its layers applied in order, with OCI whiteouts, as a
//! container created from the image sees it (`docker export`), in memory bounded by
//! the number of paths, never by their bytes.
//!
//! Two passes over the layers, each verified as it streams (stored digest, diff_id):
//!
//! 1. [`apply_layers`] reads every layer from the top down, headers only (its data is
//!    decompressed and checked, hashed when [`ApplyOptions::content_digests`] asks,
//!    never kept), and decides which entry of which layer each path shows
//!    (`apply.rs`): the [`Filesystem`], whose [`FsEntry`]s say what each path is.
//! 2. [`export_filesystem`] reads the layers again from the base up and writes each
//!    entry that shows, as it passes (`emit.rs`), into one tar.
//!
//! [`export_image`] does both; [`export`] opens a source, picks one image and writes
//! its filesystem to a file (atomically) or stdout.
//!
//! Layers are untrusted: an entry named outside the root (climbing out with `..`; an
//! absolute name is read from the root, as Docker reads it), a whiteout of `.`, `..`
//! or nothing, a hard link out of the root, to a directory or to nothing its layer can
//! reach, a sparse or unknown entry type, and
//! more than [`MAX_FILESYSTEM_PATHS`] paths or [`MAX_FILESYSTEM_NAME_BYTES`] of names
//! are refused with an error naming the image, the layer and the entry
//! ([`crate::Error::BadLayer`]).

mod apply;
#[cfg(any(test, feature = "fuzzing"))]
pub mod check;
mod diff;
mod emit;
mod tar_stream;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::io::{self, Write};
use std::path::Path;

use crate::error::{Error, Result, Setting};
use crate::layer::{open_layer, LayerForm};
use crate::model::digest::Digest;
use crate::model::image::{Image, Platform};
use crate::progress::{Progress, Reporting};
use crate::text::shown;
use crate::transport::{Format, Location, ReadOptions, RegistryOptions};

use apply::{Engine, PathKey, Plan, Refusal, ScanError};
use tar_stream::{PaxRecord, TarEntries, TarEntry, TarProblem};

pub use diff::{
    diff, diff_images, Changes, CompareOptions, ConfigDifference, DiffLayer, DiffOptions, DiffSide,
    DiffSummary, Difference, Differences, ImageDiff, PathChange,
};

/// The most distinct paths the layers of one image may name in all: their entries,
/// their whiteouts, and the directories those imply. Each costs a few hundred bytes of
/// memory (about 500 measured, its name included), so a hostile image cannot grow
/// memory without limit.
pub const MAX_FILESYSTEM_PATHS: usize = 1 << 20;

/// The most bytes those paths' names may add up to (128 MiB).
pub const MAX_FILESYSTEM_NAME_BYTES: usize = 128 << 20;

/// What a path of a final filesystem is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FsKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// A character device.
    CharDevice,
    /// A block device.
    BlockDevice,
    /// A named pipe.
    Fifo,
}

impl FsKind {
    /// The kind's name in a few letters, as `ls -l` might: `file`, `dir`, `symlink`,
    /// `char`, `block`, `fifo`.
    pub fn name(self) -> &'static str {
        match self {
            FsKind::File => "file",
            FsKind::Dir => "dir",
            FsKind::Symlink => "symlink",
            FsKind::CharDevice => "char",
            FsKind::BlockDevice => "block",
            FsKind::Fifo => "fifo",
        }
    }
}

/// The attributes of one entry as a layer's headers give them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Meta {
    kind: FsKind,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: i64,
    size: u64,
    /// What few entries have, boxed so that the others pay one pointer for it.
    extra: Option<Box<Extra>>,
}

/// The attributes of a symlink, a device or a hashed file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Extra {
    target: Option<Box<[u8]>>,
    device: Option<(u32, u32)>,
    digest: Option<Digest>,
}

impl Meta {
    /// Set the digest of a regular file's content.
    fn set_digest(&mut self, digest: Digest) {
        self.extra.get_or_insert_with(Default::default).digest = Some(digest);
    }

    /// An entry's attributes (PAX records over header fields); a hard link's own are
    /// a placeholder (a regular file of size 0) until its file is known.
    fn of(entry: &TarEntry) -> std::result::Result<Meta, String> {
        let raw = entry.header.as_bytes();
        let kind = match entry.flag {
            b'5' => FsKind::Dir,
            b'2' => FsKind::Symlink,
            b'3' => FsKind::CharDevice,
            b'4' => FsKind::BlockDevice,
            b'6' => FsKind::Fifo,
            _ => FsKind::File,
        };
        let (mode, uid, gid, mtime) = attr_values(raw, &entry.pax)?;
        let device = match kind {
            FsKind::CharDevice | FsKind::BlockDevice => {
                let number = |range: std::ops::Range<usize>| {
                    tar_stream::numeric(&raw[range])
                        .and_then(|n| u32::try_from(n).ok())
                        .unwrap_or(0)
                };
                Some((number(329..337), number(337..345)))
            }
            _ => None,
        };
        Ok(Meta {
            kind,
            mode,
            uid,
            gid,
            mtime,
            size: if entry.flag == b'0' { entry.size } else { 0 },
            extra: (kind == FsKind::Symlink || device.is_some()).then(|| {
                Box::new(Extra {
                    target: (kind == FsKind::Symlink)
                        .then(|| entry.link.clone().into_boxed_slice()),
                    device,
                    digest: None,
                })
            }),
        })
    }

    /// The same file after a hard link's header `attrs` were applied to it.
    fn with(mut self, attrs: &Attrs) -> std::result::Result<Meta, String> {
        let mut block = [0u8; 512];
        attrs.overlay(self.kind, &mut block);
        let (mode, uid, gid, mtime) = attr_values(&block, &attrs.pax)?;
        self.uid = uid;
        self.gid = gid;
        if self.kind != FsKind::Symlink {
            self.mode = mode;
            self.mtime = mtime;
        }
        Ok(self)
    }
}

/// The mode, owner and time a header gives (PAX records over its fields).
fn attr_values(
    raw: &[u8; 512],
    pax: &[PaxRecord],
) -> std::result::Result<(u32, u64, u64, i64), String> {
    let record = |key: &[u8]| {
        pax.iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_slice())
    };
    let field = |range: std::ops::Range<usize>, what: &str| {
        tar_stream::numeric(&raw[range])
            .ok_or_else(|| format!("its header has an invalid {what} field"))
    };
    let number = |key: &[u8], range, what: &str| match record(key) {
        Some(text) => std::str::from_utf8(text)
            .ok()
            .and_then(|t| t.parse::<u64>().ok())
            .ok_or_else(|| format!("its PAX {what} is not a number")),
        None => field(range, what),
    };
    let mtime = match record(b"mtime") {
        Some(text) => std::str::from_utf8(text)
            .ok()
            .and_then(|t| t.split('.').next())
            .and_then(|t| t.parse::<i64>().ok())
            .ok_or_else(|| "its PAX mtime is not a time".to_string())?,
        None => i64::try_from(field(136..148, "mtime")?).unwrap_or(i64::MAX),
    };
    Ok((
        (field(100..108, "mode")? & 0o7777) as u32,
        number(b"uid", 108..116, "uid")?,
        number(b"gid", 116..124, "gid")?,
        mtime,
    ))
}

/// What extracting a hard link entry does to the file it links to: Docker and
/// containerd apply the link's own owner, mode and times to it (only the owner when it
/// is a symlink), so the last link extracted decides them. The header fields and the
/// PAX records that set them; nothing else of the link (a hostile record over
/// [`MAX_ATTR_RECORD`] bytes is left out, keeping this small).
#[derive(Clone, Debug)]
pub(crate) struct Attrs {
    /// Header bytes 100..124 (mode, uid, gid), 136..148 (mtime), 265..329 (owner names).
    fields: [u8; 100],
    pax: Vec<PaxRecord>,
}

/// The PAX records that set what [`Attrs`] holds.
const ATTR_KEYS: [&[u8]; 7] = [
    b"uid", b"gid", b"uname", b"gname", b"mtime", b"atime", b"ctime",
];
/// The PAX records that set the owner.
const OWNER_KEYS: [&[u8]; 4] = [b"uid", b"gid", b"uname", b"gname"];
/// The longest attribute record kept.
const MAX_ATTR_RECORD: usize = 256;

impl Attrs {
    /// What the hard link `entry` applies to its file.
    fn of(entry: &TarEntry) -> Attrs {
        let raw = entry.header.as_bytes();
        let mut fields = [0u8; 100];
        fields[..24].copy_from_slice(&raw[100..124]);
        fields[24..36].copy_from_slice(&raw[136..148]);
        fields[36..].copy_from_slice(&raw[265..329]);
        let pax = entry
            .pax
            .iter()
            .filter(|(k, v)| ATTR_KEYS.contains(&&k[..]) && v.len() <= MAX_ATTR_RECORD)
            .cloned()
            .collect();
        Attrs { fields, pax }
    }

    /// Put these attributes in the header of a file of `kind` (only the owner's for a
    /// symlink).
    pub(crate) fn overlay(&self, kind: FsKind, block: &mut [u8; 512]) {
        if kind != FsKind::Symlink {
            block[100..108].copy_from_slice(&self.fields[..8]);
            block[136..148].copy_from_slice(&self.fields[24..36]);
        }
        block[108..124].copy_from_slice(&self.fields[8..24]);
        block[265..329].copy_from_slice(&self.fields[36..]);
    }

    /// The PAX records of a file of `kind` written with these attributes: its own but
    /// those these replace, then these.
    pub(crate) fn records<'a>(&'a self, kind: FsKind, own: &'a [PaxRecord]) -> Vec<&'a PaxRecord> {
        let replaced: &[&[u8]] = if kind == FsKind::Symlink {
            &OWNER_KEYS
        } else {
            &ATTR_KEYS
        };
        own.iter()
            .filter(|(k, _)| !replaced.contains(&&k[..]))
            .chain(self.pax.iter().filter(|(k, _)| replaced.contains(&&k[..])))
            .collect()
    }
}

/// One path of an image's final filesystem: what it is, its attributes as the layer
/// that shows it gives them, and, for a file with several names, which name the export
/// writes it under (the others are hard links to that one).
///
/// ```
/// use dockhand::{apply_layers, open_source, ApplyOptions, FsKind, Location, NoProgress};
///
/// # let input = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/docker-save-basic/input.tar");
/// let source = open_source(&Location::parse(input)?, &Default::default())?;
/// let options = ApplyOptions { content_digests: true, ..Default::default() };
/// let fs = apply_layers(&source.images[0], &options, &NoProgress)?;
/// let hello = fs.get("bin/hello.sh").expect("the fixture's script");
/// assert_eq!((hello.kind(), hello.mode() & 0o111 != 0), (FsKind::File, true));
/// assert!(hello.digest().is_some() && hello.layer().is_some());
/// # Ok::<(), dockhand::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FsEntry {
    path: PathKey,
    meta: Meta,
    hard_link: Option<PathKey>,
    layer: Option<usize>,
}

impl FsEntry {
    /// A directory no layer has an entry for, implied by entries under it.
    fn implied_dir(path: PathKey) -> FsEntry {
        FsEntry {
            path,
            meta: Meta {
                kind: FsKind::Dir,
                mode: IMPLIED_DIR_MODE,
                uid: 0,
                gid: 0,
                mtime: 0,
                size: 0,
                extra: None,
            },
            hard_link: None,
            layer: None,
        }
    }

    /// The path, relative to the root, without `./` or a trailing `/` (bytes that are
    /// not UTF-8 shown as U+FFFD; [`FsEntry::path_bytes`] has them as they are).
    pub fn path(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.path)
    }

    /// The path's bytes.
    pub fn path_bytes(&self) -> &[u8] {
        &self.path
    }

    /// What the path is (for a file with several names, what the file is).
    pub fn kind(&self) -> FsKind {
        self.meta.kind
    }

    /// The permission bits (with setuid, setgid and sticky): `mode & 0o7777`.
    pub fn mode(&self) -> u32 {
        self.meta.mode
    }

    /// The owner's user ID.
    pub fn uid(&self) -> u64 {
        self.meta.uid
    }

    /// The owner's group ID.
    pub fn gid(&self) -> u64 {
        self.meta.gid
    }

    /// The modification time, in seconds since the epoch (0 for an implied directory).
    pub fn mtime(&self) -> i64 {
        self.meta.mtime
    }

    /// The size of a regular file's content; 0 for anything else.
    pub fn size(&self) -> u64 {
        self.meta.size
    }

    /// A symbolic link's target, as stored (never followed).
    pub fn symlink_target(&self) -> Option<Cow<'_, str>> {
        self.meta
            .extra
            .as_ref()
            .and_then(|e| e.target.as_deref())
            .map(|t| String::from_utf8_lossy(t))
    }

    /// A symbolic link's target's bytes.
    pub fn symlink_target_bytes(&self) -> Option<&[u8]> {
        self.meta.extra.as_ref().and_then(|e| e.target.as_deref())
    }

    /// A device's major and minor numbers.
    pub fn device(&self) -> Option<(u32, u32)> {
        self.meta.extra.as_ref().and_then(|e| e.device)
    }

    /// For one of several names of a file: the name the export writes the file under,
    /// which this one is written as a hard link to. `None` for that name itself and
    /// for every path with one name.
    pub fn hard_link(&self) -> Option<Cow<'_, str>> {
        self.hard_link
            .as_deref()
            .map(|t| String::from_utf8_lossy(t))
    }

    /// The sha256 of a regular file's content, when [`ApplyOptions::content_digests`]
    /// asked for it.
    pub fn digest(&self) -> Option<&Digest> {
        self.meta.extra.as_ref().and_then(|e| e.digest.as_ref())
    }

    /// Which layer (from 0, the base) shows this entry; `None` for a directory no
    /// layer has an entry for (implied by the entries under it: mode 0755, owned by
    /// root, time 0).
    pub fn layer(&self) -> Option<usize> {
        self.layer
    }
}

/// The mode of a directory no layer has an entry for, as Docker creates one.
const IMPLIED_DIR_MODE: u32 = 0o755;

/// An image's final filesystem: every path a container created from it shows (but
/// what the runtime adds itself), sorted by path, and what the export writes where.
#[derive(Debug)]
pub struct Filesystem {
    entries: Vec<FsEntry>,
    plan: Plan,
    /// The image it is of (its config digest), so that it is exported from no other.
    image: Digest,
}

impl Filesystem {
    /// Every path, sorted by its bytes.
    pub fn entries(&self) -> &[FsEntry] {
        &self.entries
    }

    /// The entry of `path` (relative, as [`FsEntry::path`] gives it), if it exists.
    pub fn get(&self, path: &str) -> Option<&FsEntry> {
        self.get_bytes(path.as_bytes())
    }

    /// The entry of a path given as bytes.
    pub fn get_bytes(&self, path: &[u8]) -> Option<&FsEntry> {
        self.index_of(path).map(|i| &self.entries[i])
    }

    /// How many paths it holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when it holds no path.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn index_of(&self, path: &[u8]) -> Option<usize> {
        self.entries.binary_search_by(|e| (*e.path).cmp(path)).ok()
    }
}

/// How [`apply_layers`] reads the layers.
///
/// Fields may be added in later versions: build one with `..Default::default()`.
#[derive(Clone, Debug, Default)]
pub struct ApplyOptions {
    /// Hash every regular file's content as it passes, for [`FsEntry::digest`] (costs
    /// a sha256 of the layers' bytes).
    pub content_digests: bool,
}

/// What an export wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExportReport {
    /// The image exported, as messages name it.
    pub image: String,
    /// Its ID (config digest).
    pub image_id: Digest,
    /// Its position in its source (`@N`), when [`export`] picked it there.
    pub index: Option<usize>,
    /// How many entries the tar holds.
    pub entries: usize,
    /// How many bytes it holds.
    pub bytes: u64,
}

/// What [`export`] reads, and where it may write.
///
/// Fields may be added in later versions: build one with `..Default::default()`.
#[derive(Clone, Debug, Default)]
pub struct ExportOptions {
    /// Read the source as this format instead of detecting it.
    pub from: Option<Format>,
    /// Which image of the source (a name, an ID or digest, `@N`); needed when the
    /// source holds more than one.
    pub images: Vec<String>,
    /// The platform to pick from a multi-platform index (default: the host's).
    pub platform: Option<Platform>,
    /// How to reach a registry source.
    pub registry: RegistryOptions,
    /// Replace the destination when it is a regular file or a symlink.
    pub force: bool,
}

/// Apply the layers of `image` (each read once, verified, from the top down) and
/// return its final filesystem: which path shows what, whiteouts applied (OCI
/// image-spec `layer.md`), hard links resolved.
///
/// ```
/// use dockhand::{apply_layers, open_source, ApplyOptions, Location, NoProgress};
///
/// # let input = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/docker-save-basic/input.tar");
/// let source = open_source(&Location::parse(input)?, &Default::default())?;
/// let fs = apply_layers(&source.images[0], &ApplyOptions::default(), &NoProgress)?;
/// let paths: Vec<_> = fs.entries().iter().map(|e| e.path().into_owned()).collect();
/// assert!(paths.contains(&"bin/hello.sh".to_string()));
/// assert!(paths.windows(2).all(|w| w[0] < w[1]));
/// # Ok::<(), dockhand::Error>(())
/// ```
pub fn apply_layers(
    image: &Image,
    options: &ApplyOptions,
    progress: &dyn Progress,
) -> Result<Filesystem> {
    if image.artifact {
        return Err(Error::Unsupported(format!(
            "image {} is an artifact (its config is no container image config): it has no filesystem",
            image.display_name()
        ))
        .in_input(&image.input));
    }
    let mut engine = Engine::new(image.layers.len(), options.content_digests);
    for index in (0..image.layers.len()).rev() {
        read_layer(image, index, progress, |entries| {
            engine.layer(index, entries)
        })?;
    }
    let (entries, plan) = engine
        .finish()
        .map_err(|r| refused(image, image.layers.len().saturating_sub(1), r))?;
    Ok(Filesystem {
        entries,
        plan,
        image: image.config.digest.clone(),
    })
}

/// Write the final filesystem of `image` into `out` as one tar: the layers applied as
/// [`apply_layers`] does, then each entry that shows written as the second read of
/// its layer passes it (so the tar's order is the layers', base first). Directories
/// carry a trailing `/`; a file with several names is written once, under its first
/// name in the export, the others as hard links to it; what the layers' headers hold
/// (mode, owner, names, times, device numbers, PAX records such as extended
/// attributes) is kept. The same image always gives the same bytes.
///
/// On an error, `out` may hold part of a tar without its end-of-archive marker.
///
/// ```
/// use dockhand::{export_image, open_source, Location, NoProgress};
///
/// # let input = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/docker-save-basic/input.tar");
/// let source = open_source(&Location::parse(input)?, &Default::default())?;
/// let mut tar = Vec::new();
/// let report = export_image(&source.images[0], &mut tar, &NoProgress)?;
/// assert_eq!(report.bytes, tar.len() as u64);
/// assert!(tar.ends_with(&[0u8; 1024]));
/// # Ok::<(), dockhand::Error>(())
/// ```
pub fn export_image(
    image: &Image,
    out: impl Write,
    progress: &dyn Progress,
) -> Result<ExportReport> {
    let fs = apply_layers(image, &ApplyOptions::default(), progress)?;
    export_filesystem(image, &fs, out, progress)
}

/// The second pass of [`export_image`]: write the filesystem [`apply_layers`] found
/// for `image` into `out`, reading the layers again. `fs` must be of `image`.
pub fn export_filesystem(
    image: &Image,
    fs: &Filesystem,
    out: impl Write,
    progress: &dyn Progress,
) -> Result<ExportReport> {
    if fs.image != image.config.digest || fs.plan.layers.len() != image.layers.len() {
        return Err(Error::Usage(format!(
            "the filesystem given is not image {}'s",
            image.display_name()
        )));
    }
    let bytes = emit::write(image, fs, out, progress)?;
    Ok(ExportReport {
        image: image.display_name(),
        image_id: image.config.digest.clone(),
        index: None,
        entries: fs.len(),
        bytes,
    })
}

/// `dockhand export`: open `src`, pick one image (the source's only one, or the one
/// `options.images` names), and write its final filesystem ([`export_image`]) to
/// `dst`: a file, written beside it and renamed into place once whole (what may be
/// replaced is what a tar output of `convert` may replace), or stdout for `-`.
///
/// ```
/// use dockhand::{export, ExportOptions, Location, NoProgress};
///
/// # let input = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/docker-save-basic/input.tar");
/// let out = tempfile::tempdir().unwrap();
/// let rootfs = out.path().join("rootfs.tar");
/// let report = export(
///     &Location::parse(input)?,
///     rootfs.to_str().unwrap(),
///     &ExportOptions::default(),
///     &NoProgress,
/// )?;
/// assert_eq!(std::fs::metadata(&rootfs).unwrap().len(), report.bytes);
/// # Ok::<(), dockhand::Error>(())
/// ```
pub fn export(
    src: &Location,
    dst: &str,
    options: &ExportOptions,
    progress: &dyn Progress,
) -> Result<ExportReport> {
    if let (Some(from), Some(transport)) = (options.from, src.transport) {
        if from != transport {
            return Err(Error::Usage(format!(
                "{} {} contradicts the transport {}: of {}",
                Setting::From,
                from.name(),
                transport.name(),
                shown(&src.path)
            )));
        }
    }
    let selectors = crate::select::selectors(src, &options.images)?;
    // The destination is checked before the source is read.
    let mut output = match dst {
        "-" => None,
        path => {
            let dest = Path::new(path);
            let plan = crate::destination::plan(
                dest,
                crate::destination::Output::File,
                options.force,
                src.local_path(),
            )?;
            Some(crate::container::StagedFile::create(
                dest,
                plan,
                options.force,
            )?)
        }
    };
    let read = ReadOptions {
        platform: options.platform.clone(),
        format: options.from,
        registry: options.registry.clone(),
        ..ReadOptions::default()
    };
    let source = crate::location::open_source(src, &read)?;
    let index =
        crate::select::select_one(&source.images, &selectors, &src.path, "export writes one")?;
    let image = &source.images[index];
    let report = match &mut output {
        None => {
            // Straight to the descriptor: std's stdout is line-buffered.
            let fd = std::os::fd::AsFd::as_fd(&io::stdout())
                .try_clone_to_owned()
                .map_err(|e| Error::io("opening stdout", e))?;
            let out = io::BufWriter::with_capacity(1 << 20, std::fs::File::from(fd));
            export_image(image, out, progress)?
        }
        Some(file) => export_image(image, &mut *file, progress)?,
    };
    if let Some(file) = output {
        file.commit()?;
    }
    let _ = source.finished();
    Ok(ExportReport {
        index: Some(index),
        ..report
    })
}

/// Read layer `index` of `image` through `apply` (which reads its entries), verifying
/// all of it; errors name the image and the layer.
fn read_layer(
    image: &Image,
    index: usize,
    progress: &dyn Progress,
    apply: impl FnOnce(
        &mut TarEntries<io::BufReader<Reporting<'_, crate::LayerReader>>>,
    ) -> std::result::Result<(), ScanError>,
) -> Result<()> {
    read_shared_layer(&[(image, index)], progress, |entries| {
        apply(entries).map_err(|e| (0, e))
    })
}

/// Read a layer several images hold (`readers`: each image and the layer's index in
/// it) once, from the first image's blob, through `apply`, which says which reader an
/// error is about; errors name that image and its layer.
fn read_shared_layer(
    readers: &[(&Image, usize)],
    progress: &dyn Progress,
    apply: impl FnOnce(
        &mut TarEntries<io::BufReader<Reporting<'_, crate::LayerReader>>>,
    ) -> std::result::Result<(), (usize, ScanError)>,
) -> Result<()> {
    let (image, index) = readers[0];
    let layer = &image.layers[index];
    let reader = open_layer(image, layer, LayerForm::Uncompressed)?;
    let reader = Reporting::new(reader, progress, &layer.path, layer.size);
    let mut entries = TarEntries::new(
        io::BufReader::with_capacity(1 << 18, reader),
        MAX_FILESYSTEM_PATHS as u32,
    );
    let result =
        apply(&mut entries).and_then(|()| entries.finish().map_err(|p| (0, ScanError::Tar(p))));
    result.map_err(|(which, e)| {
        let (image, index) = readers.get(which).copied().unwrap_or(readers[0]);
        match e {
            ScanError::Refused(r) => refused(image, index, r),
            ScanError::Tar(p) => tar_problem(image, index, p),
        }
    })
}

/// The error for a refusal about layer `index` (or the layer it names) of `image`.
fn refused(image: &Image, index: usize, r: Refusal) -> Error {
    let index = r.layer.map_or(index, |l| l as usize);
    bad_layer(image, index, r.entry.as_deref(), r.problem)
}

/// The error for a layer whose tar cannot be read.
fn tar_problem(image: &Image, index: usize, p: TarProblem) -> Error {
    match p {
        TarProblem::Io(e) => Error::io(
            format!("reading layer {}", shown(&image.layers[index].path)),
            e,
        )
        .in_input(&image.input),
        TarProblem::Malformed { entry, problem } => {
            bad_layer(image, index, entry.as_deref(), problem)
        }
    }
}

fn bad_layer(image: &Image, index: usize, entry: Option<&[u8]>, problem: String) -> Error {
    Error::BadLayer {
        image: image.display_name(),
        layer: index + 1,
        path: shown(&image.layers[index].path),
        entry: entry.map(apply::shown_bytes),
        problem,
    }
    .in_input(&image.input)
}
