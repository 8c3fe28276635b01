//! The conversion pipeline: select, name, write. It knows no format: the transport
//! table ([`crate::formats`]) opens the source and creates the sink.

use std::path::{Path, PathBuf};

use crate::compress::LayerCompression;
use crate::destination::Plan;
use crate::error::Setting;
use crate::error::{Error, Result};
use crate::location::open_source;
use crate::model::digest::Digest;
use crate::model::image::{Image, Platform};
use crate::model::reference::{valid_tag, Reference};
use crate::progress::{NoProgress, Progress};
use crate::select::{candidates, select, selectors, with_selected_names, Selector};
use crate::text::shown;
use crate::transport::{
    DockerLayout, Format, Location, ReadOptions, RegistryOptions, SinkOptions, WriteOptions,
};

/// Options of [`convert`].
///
/// Fields may be added in later versions: build one with `..Default::default()` so
/// that code keeps compiling.
///
/// ```
/// use dockhand::{convert, open_source, Compression, ConvertOptions, Format, LayerCompression};
/// # use dockhand::{Location, ReadOptions};
/// # let input = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/docker-save-basic/input.tar");
/// # let tmp = tempfile::tempdir().unwrap();
/// # let dst = tmp.path().join("layout");
/// # let dst = dst.to_str().unwrap();
///
/// let options = ConvertOptions {
///     to: Some(Format::OCI),
///     layer_compression: LayerCompression::Gzip,
///     ..Default::default()
/// };
/// convert(input, dst, &options)?;
/// let out = open_source(&Location::parse(dst)?, &ReadOptions::default())?;
/// assert!(out.images[0].layers.iter().all(|l| l.compression == Compression::Gzip));
/// # Ok::<(), dockhand::Error>(())
/// ```
///
/// The digest of what was written, in a file as skopeo's `--digestfile` writes it:
///
/// ```
/// use dockhand::{convert, ConvertOptions};
/// # let input = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/docker-save-basic/input.tar");
/// # let tmp = tempfile::tempdir().unwrap();
/// let digest_file = tmp.path().join("digest");
/// let dst = format!("oci:{}:1.0", tmp.path().join("layout").display());
///
/// let options = ConvertOptions { digest_file: Some(digest_file.clone()), ..Default::default() };
/// let report = convert(input, &dst, &options)?;
/// let written = std::fs::read_to_string(&digest_file).unwrap();
/// assert_eq!(written, report.manifests[0].to_string()); // sha256:..., no newline
/// # Ok::<(), dockhand::Error>(())
/// ```
///
/// Between two registries, each end is reached with its own options:
///
/// ```no_run
/// // no_run: it needs two registries.
/// use dockhand::{convert, ConvertOptions, RegistryOptions};
///
/// let options = ConvertOptions {
///     source_registry: RegistryOptions { creds: Some("reader:secret".into()), ..Default::default() },
///     dest_registry: RegistryOptions {
///         creds: Some("writer:other".into()),
///         tls_verify: false, // a plain-HTTP mirror
///         ..Default::default()
///     },
///     ..Default::default()
/// };
/// let report = convert("docker://registry.example/app:1", "docker://127.0.0.1:5000/app:1", &options)?;
/// let (reference, digest) = &report.stored[0];
/// assert_eq!(reference, "docker://127.0.0.1:5000/app:1");
/// assert_eq!(*digest, report.manifests[0]);
/// # Ok::<(), dockhand::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct ConvertOptions {
    /// Read the source as this format (default: detect).
    pub from: Option<Format>,
    /// Write this format (default: from the destination's transport or name).
    pub to: Option<Format>,
    /// Images to take (`--image`); all when empty.
    pub images: Vec<String>,
    /// Names for the output image (`--tag`); requires a single selected image.
    pub tags: Vec<String>,
    /// Replace an existing destination that dockhand could have written (the crate docs'
    /// `# Security` section says which).
    pub force: bool,
    /// Platform to pick from multi-platform indexes.
    pub platform: Option<Platform>,
    /// Shape of docker-archive and docker-dir outputs (default: legacy); an error for
    /// other outputs.
    pub docker_layout: Option<DockerLayout>,
    /// What OCI and `dir:` outputs do with layers (default: keep them as stored).
    pub layer_compression: LayerCompression,
    /// The gzip (1-9) or zstd (1-19) level (default 1 for gzip, 3 for zstd).
    pub compression_level: Option<i32>,
    /// The manifests written where there is a choice (see
    /// [`WriteOptions::manifest_format`]).
    pub manifest_format: Option<crate::sink::ManifestFormat>,
    /// How to reach the source when it is a registry (`docker://`): its credentials,
    /// auth file, TLS checks, cache.
    pub source_registry: RegistryOptions,
    /// How to reach the destination when it is a registry; a copy between two
    /// registries reaches each with its own options (the source's credentials are
    /// never sent to the destination, nor the other way round).
    pub dest_registry: RegistryOptions,
    /// Once the destination holds everything, write there the digest of the manifest
    /// written (of the index, when one is kept whole with `all_platforms`), as
    /// `sha256:HEX` and no newline (as skopeo's `--digestfile`), replacing the file
    /// atomically. It records one digest: a conversion writing several images (not
    /// one index) is a usage error before anything is written.
    pub digest_file: Option<PathBuf>,
    /// Keep every platform of a multi-platform index (`--all`): for OCI layouts and
    /// registries, which hold the index whole.
    pub all_platforms: bool,
    /// Copy what is attached to the images along with them (`--referrers`): their
    /// signatures, attestations and SBOMs, found as [`crate::Source::attachments`]
    /// says, each with its exact bytes; with `all_platforms`, those of the index too.
    /// For destinations that can hold them (an OCI layout or archive, a registry, a
    /// Docker >= 25 hybrid docker-archive); any other is a usage error. An image whose
    /// manifest would change on the way is an error ([`Error::ReferrersCannotFollow`]).
    pub referrers: bool,
    /// With `referrers` (which it implies): only the referrers of these artifact types
    /// that refer to an image directly, with what refers to them; all when empty.
    pub referrer_types: Vec<String>,
    /// Write each image with its source manifest wherever the layer options allow
    /// ([`WriteOptions::keep_manifests`]: a Docker v2 manifest stays one in an OCI
    /// layout, a push keeps uncompressed layers), so its digest does not change; set
    /// too by `referrers`, which name that digest.
    pub keep_manifests: bool,
}

/// What a conversion did.
///
/// ```
/// use dockhand::{convert, ConvertOptions, Format, Plan};
/// # let input = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/docker-save-basic/input.tar");
/// # let tmp = tempfile::tempdir().unwrap();
/// # let dst = tmp.path().join("image.tar");
///
/// let report = convert(input, dst.to_str().unwrap(), &ConvertOptions::default())?;
/// assert_eq!(report.from, Some(Format::DOCKER_ARCHIVE));
/// assert_eq!(report.to, Some(Format::DOCKER_ARCHIVE)); // from the destination's name
/// assert_eq!((report.source_indices, report.plan), (vec![0], Some(Plan::Create)));
/// # Ok::<(), dockhand::Error>(())
/// ```
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct ConvertReport {
    /// The format read.
    pub from: Option<Format>,
    /// The format written.
    pub to: Option<Format>,
    /// The images written, with the names they were written under.
    pub images: Vec<Image>,
    /// For each written image, its position in its source (what `inspect` numbers).
    pub source_indices: Vec<usize>,
    /// For each written image, which source it came from (its position among the
    /// sources given to [`convert_sources`]; always 0 with one source).
    pub source_of: Vec<usize>,
    /// How the destination was written (`None` for stdout): as planned, or
    /// [`Plan::AddToOciLayout`] when a new OCI layout found one that concurrent runs
    /// had created there meanwhile, and added to it.
    pub plan: Option<Plan>,
    /// Things the user should know.
    pub warnings: Vec<String>,
    /// What the destination said it did (a daemon's `Loaded image: NAME:TAG`).
    pub notes: Vec<String>,
    /// Each reference the destination now holds with the digest of the manifest it
    /// holds there (a registry's `docker://HOST/REPO:TAG`): [`crate::CommitReport::stored`].
    pub stored: Vec<(String, Digest)>,
    /// The digest of each manifest (or index kept whole) written, one per image or
    /// index the destination lists: [`crate::CommitReport::manifests`].
    pub manifests: Vec<Digest>,
    /// Details for a verbose run: what the source said about how it was read (which
    /// mirror served a registry pull).
    pub details: Vec<String>,
    /// What was carried along with the images (`referrers`), in the order written.
    pub referrers: Vec<crate::referrers::AttachedManifest>,
}

/// `attached` without the BuildKit attestations of images written without their index
/// (one platform picked from it, without `--all`), and what refers to them: only that
/// index lists an attestation, so one put without it would be reachable from nothing
/// (and counted as carried).
fn without_unlisted_attestations(
    attached: Vec<crate::referrers::AttachedManifest>,
    images: &[Image],
) -> Vec<crate::referrers::AttachedManifest> {
    use crate::referrers::AttachedBy;
    let unlisted = |subject: &Digest| {
        images.iter().any(|image| {
            image.index.is_none() && image.manifest.as_ref().map(|m| &m.digest) == Some(subject)
        })
    };
    // A referrer comes before what refers to it, so one pass drops whole subtrees.
    let mut dropped: Vec<Digest> = Vec::new();
    let mut kept = Vec::with_capacity(attached.len());
    for item in attached {
        if (item.by == AttachedBy::Index && unlisted(&item.subject))
            || dropped.contains(&item.subject)
        {
            dropped.push(item.descriptor.digest.clone());
        } else {
            kept.push(item);
        }
    }
    kept
}

/// `from`/`to` and a transport prefix that name different formats.
fn check_agreement(option: Option<Format>, location: &Location, what: Setting) -> Result<()> {
    match (option, location.transport) {
        (Some(a), Some(b)) if a != b => Err(Error::Usage(format!(
            "{what} {} contradicts the transport {}: of {}",
            a.name(),
            b.name(),
            shown(&location.path)
        ))),
        _ => Ok(()),
    }
}

/// Convert `src` to `dst` (both as given on the command line): open the source,
/// select images, name them, and write them to the destination, which appears only
/// once complete.
///
/// ```
/// use dockhand::{convert, ConvertOptions, Format};
///
/// // `docker save` output to an OCI layout directory, verifying every blob.
/// let input = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/docker-save-basic/input.tar");
/// let out = tempfile::tempdir().unwrap();
/// let layout = out.path().join("layout");
/// let dst = format!("oci:{}", layout.display());
/// let report = convert(input, &dst, &ConvertOptions::default())?;
/// assert_eq!(report.images.len(), 1);
/// assert_eq!(report.to, Some(Format::OCI));
/// assert!(layout.join("index.json").is_file());
/// # Ok::<(), dockhand::Error>(())
/// ```
pub fn convert(src: &str, dst: &str, options: &ConvertOptions) -> Result<ConvertReport> {
    convert_with_progress(src, dst, options, &NoProgress)
}

/// [`convert`], telling `progress` how the layers go.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use dockhand::{convert_with_progress, ConvertOptions, Progress};
///
/// #[derive(Default)]
/// struct Bytes(AtomicU64);
/// impl Progress for Bytes {
///     fn advanced(&self, bytes: u64) {
///         self.0.fetch_add(bytes, Ordering::Relaxed);
///     }
/// }
///
/// let input = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/docker-save-basic/input.tar");
/// let out = tempfile::tempdir().unwrap();
/// let dst = out.path().join("image.tar");
/// let bytes = Bytes::default();
/// convert_with_progress(input, dst.to_str().unwrap(), &ConvertOptions::default(), &bytes)?;
/// assert!(bytes.0.load(Ordering::Relaxed) > 0);
/// # Ok::<(), dockhand::Error>(())
/// ```
pub fn convert_with_progress(
    src: &str,
    dst: &str,
    options: &ConvertOptions,
    progress: &dyn Progress,
) -> Result<ConvertReport> {
    convert_between(
        &Location::parse(src)?,
        &Location::parse(dst)?,
        options,
        progress,
    )
}

/// [`convert_with_progress`] between locations given as values: what converts
/// through a transport of the caller's own ([`Location::new`] with
/// [`Format::of`] a [`crate::Transport`]), as well as through dockhand's.
///
/// ```
/// use dockhand::{convert_between, ConvertOptions, Format, Location, NoProgress};
///
/// let input = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/docker-save-basic/input.tar");
/// let out = tempfile::tempdir().unwrap();
/// let dst = Location::new(Format::OCI, out.path().join("layout").to_str().unwrap());
/// let report = convert_between(&Location::parse(input)?, &dst, &ConvertOptions::default(), &NoProgress)?;
/// assert_eq!(report.to, Some(Format::OCI));
/// # Ok::<(), dockhand::Error>(())
/// ```
pub fn convert_between(
    src: &Location,
    dst: &Location,
    options: &ConvertOptions,
    progress: &dyn Progress,
) -> Result<ConvertReport> {
    convert_sources(std::slice::from_ref(src), dst, options, progress)
}

/// [`convert_between`] from several sources into one destination, as `cp` takes
/// several files: every image of every source (or those `options.images` selects in
/// each) goes into the one output, each blob once, every name kept; an image two
/// sources hold (the same config and layers) is written once with the names of both.
/// Options that name one image (`tags`, a destination reference, `digest_file`) need
/// one image in all; at most one source may be stdin, and none may be the
/// destination. [`ConvertReport::source_of`] says which source each image came from.
///
/// ```
/// use dockhand::{convert_sources, ConvertOptions, Location, NoProgress};
///
/// let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");
/// let a = Location::parse(&format!("{fixtures}/docker-save-basic/input.tar"))?;
/// let b = Location::parse(&format!("{fixtures}/skopeo-oci/input"))?;
/// let out = tempfile::tempdir().unwrap();
/// let dst = Location::parse(out.path().join("both.tar").to_str().unwrap())?;
/// let report = convert_sources(&[a, b], &dst, &ConvertOptions::default(), &NoProgress)?;
/// assert_eq!((report.images.len(), report.source_of.clone()), (2, vec![0, 1]));
/// # Ok::<(), dockhand::Error>(())
/// ```
pub fn convert_sources(
    srcs: &[Location],
    dst: &Location,
    options: &ConvertOptions,
    progress: &dyn Progress,
) -> Result<ConvertReport> {
    convert_from(
        srcs.iter().map(Origin::At).collect(),
        dst,
        options,
        None,
        progress,
    )
}

/// What [`convert_editing`] tells the edit it runs: where the destination wants new
/// blobs spooled, and what it is.
///
/// Fields may be added in later versions.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct EditContext {
    /// Where a new layer is best spooled ([`crate::LayerOptions::spool_dir`]): the
    /// output's staging directory, from which a directory output links it in.
    pub spool_dir: Option<PathBuf>,
    /// The format written.
    pub to: Format,
    /// How it is written.
    pub write: WriteOptions,
}

/// What [`convert_editing`] does to the images selected before they are written: the
/// images to write instead, one for each, in order (an [`crate::ImageEdit`] applied
/// to each, say). It runs once the destination is ready and the sources are open,
/// before any blob is written.
pub type EditImages<'a> = dyn Fn(Vec<Image>, &EditContext) -> Result<Vec<Image>> + 'a;

/// [`convert_sources`], each selected image replaced by what `edit` makes of it before
/// it is written: how `dockhand append`, `mutate` and `import` write what they make,
/// through the same pipeline, to any destination, with every option of `options`
/// but `referrers` (what refers to an image names its manifest, which an edit
/// changes: a usage error).
///
/// ```
/// use dockhand::{convert_editing, open_source, ConfigChange, ConvertOptions, ImageEdit};
/// use dockhand::{Location, NoProgress, ReadOptions};
///
/// let input = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/docker-save-basic/input.tar");
/// let out = tempfile::tempdir().unwrap();
/// let dst = format!("oci:{}:labelled", out.path().join("layout").display());
/// let edit = ImageEdit {
///     changes: vec![ConfigChange::Label { name: "team".into(), value: "core".into() }],
///     ..Default::default()
/// };
/// let apply = |images: Vec<dockhand::Image>, _: &dockhand::EditContext| {
///     images.iter().map(|image| edit.apply(image)).collect()
/// };
/// let src = [Location::parse(input)?];
/// convert_editing(&src, &Location::parse(&dst)?, &ConvertOptions::default(), &apply, &NoProgress)?;
/// let written = open_source(&Location::parse(&dst)?, &ReadOptions::default())?;
/// let config: serde_json::Value = serde_json::from_slice(&written.images[0].config_bytes).unwrap();
/// assert_eq!(config["config"]["Labels"]["team"], "core");
/// # Ok::<(), dockhand::Error>(())
/// ```
pub fn convert_editing(
    srcs: &[Location],
    dst: &Location,
    options: &ConvertOptions,
    edit: &EditImages,
    progress: &dyn Progress,
) -> Result<ConvertReport> {
    convert_from(
        srcs.iter().map(Origin::At).collect(),
        dst,
        options,
        Some(edit),
        progress,
    )
}

/// Where a conversion's images come from.
pub(crate) enum Origin<'a> {
    /// A location, opened once the destination is ready.
    At(&'a Location),
    /// A source made in memory (an import's base image).
    Made(Box<crate::transport::Source>),
}

impl Origin<'_> {
    fn location(&self) -> Option<&Location> {
        match self {
            Origin::At(location) => Some(location),
            Origin::Made(_) => None,
        }
    }
}

/// The conversion pipeline: check, create the destination, open the sources, select,
/// edit, name, write, commit.
pub(crate) fn convert_from(
    origins: Vec<Origin>,
    dst: &Location,
    options: &ConvertOptions,
    edit: Option<&EditImages>,
    progress: &dyn Progress,
) -> Result<ConvertReport> {
    if origins.is_empty() {
        return Err(Error::Usage("no source to convert from".into()));
    }
    let srcs: Vec<&Location> = origins.iter().filter_map(Origin::location).collect();
    for src in &srcs {
        check_agreement(options.from, src, Setting::From)?;
    }
    check_agreement(options.to, dst, Setting::To)?;
    if srcs
        .iter()
        .filter(|s| s.path == "-" && s.transport.is_none())
        .count()
        > 1
    {
        return Err(Error::Usage(
            "stdin (-) can be read as one source only".into(),
        ));
    }
    let to = options
        .to
        .or(dst.transport)
        .unwrap_or_else(|| Format::for_destination(&dst.path));
    if options.all_platforms && !to.transport().keeps_indexes() {
        return Err(Error::Usage(format!(
            "{} keeps a multi-platform index whole, which {} cannot hold (it has one platform per image); write oci, oci-archive or docker://, or pick one platform with {}",
            Setting::AllPlatforms,
            to.name(),
            Setting::Platform
        )));
    }
    if options.all_platforms && options.platform.is_some() {
        return Err(Error::Usage(format!(
            "{} takes every platform; {} picks one: give only one of them",
            Setting::AllPlatforms,
            Setting::Platform
        )));
    }
    let carry = options.referrers || !options.referrer_types.is_empty();
    if carry && edit.is_some() {
        return Err(Error::Usage(format!(
            "an edited image has a new manifest, which what refers to the one it was made from (signatures, attestations, SBOMs) cannot follow; drop {}",
            Setting::Referrers
        )));
    }
    let write = WriteOptions {
        docker_layout: options.docker_layout,
        layer_compression: options.layer_compression,
        compression_level: options.compression_level,
        manifest_format: options.manifest_format,
        keep_manifests: carry || options.keep_manifests,
    };
    if carry && !to.transport().holds_referrers(&write) {
        return Err(Error::Usage(format!(
            "{} has no place for what is attached to images (signatures, attestations, SBOMs); {} needs an OCI layout (oci, oci-archive), a registry (docker://) or a Docker >= 25 docker-archive ({} hybrid)",
            to.name(),
            Setting::Referrers,
            Setting::DockerLayout
        )));
    }
    let selectors: Vec<Vec<Selector>> = origins
        .iter()
        .map(|origin| match origin {
            Origin::At(src) => selectors(src, &options.images),
            Origin::Made(_) => Ok(Vec::new()),
        })
        .collect::<Result<_>>()?;
    let mut names: Vec<String> = options.tags.clone();
    names.extend(dst.reference.clone());
    let names = parse_names(&names, to)?;
    // The destination is checked (and its staging made) before the sources are read,
    // so a refused destination costs nothing.
    let read = ReadOptions {
        platform: options.platform.clone(),
        format: options.from,
        spool_dir: None,
        registry: options.source_registry.clone(),
        all_platforms: options.all_platforms,
    };
    let first = srcs.first();
    let from = first.and_then(|f| f.transport).or(options.from);
    let dst = Location {
        transport: Some(to),
        ..dst.clone()
    };
    // No source may be the destination (the first is checked as the plan is made).
    if let Some(out) = dst.local_path().and_then(|p| std::fs::canonicalize(p).ok()) {
        for src in srcs.iter().skip(1) {
            let same = src
                .local_path()
                .and_then(|p| std::fs::canonicalize(p).ok())
                .is_some_and(|p| p == out);
            if same {
                return Err(Error::Usage(format!(
                    "{} is both a source and the destination",
                    shown(&dst.path)
                )));
            }
        }
    }
    let mut sink = to.transport().create_sink(
        &dst,
        &SinkOptions {
            force: options.force,
            source: first.and_then(|f| f.local_path()).map(PathBuf::from),
            write: write.clone(),
            registry: options.dest_registry.clone(),
            jobs: from.and_then(|f| f.transport().parallel_reads(&read)),
        },
    )?;
    let mut sources: Vec<crate::transport::Source> = Vec::with_capacity(origins.len());
    let mut made = false;
    for origin in origins {
        let source = match origin {
            Origin::At(src) => open_source(
                src,
                &ReadOptions {
                    spool_dir: sink.spool_dir(),
                    ..read.clone()
                },
            )?,
            Origin::Made(source) => {
                made = true;
                *source
            }
        };
        if to.transport().skips_blobs_it_holds() {
            source.stream_blobs();
        }
        sources.push(source);
    }
    // Each source's selection, then all of them together.
    let mut picked_all: Vec<(usize, usize)> = Vec::new();
    let mut images: Vec<Image> = Vec::new();
    let mut per_source: Vec<std::ops::Range<usize>> = Vec::new();
    // Each image written, by what makes it the same image: found in one lookup.
    let mut seen: std::collections::HashMap<ImageIdentity, usize> = Default::default();
    for (n, (source, selectors)) in sources.iter().zip(&selectors).enumerate() {
        let picked = select(&source.images, selectors)?;
        let start = images.len();
        for (image, at) in with_selected_names(&source.images, &picked, selectors)
            .into_iter()
            .zip(&picked)
        {
            // The same image from another source: written once, with every name.
            match seen.entry(identity(&image)) {
                std::collections::hash_map::Entry::Occupied(held) => {
                    merge_names(&mut images[*held.get()], &image)
                }
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(images.len());
                    images.push(image);
                    picked_all.push((n, *at));
                }
            }
        }
        per_source.push(start..images.len());
    }
    let listed = |images: &[Image]| candidates_across(&sources, &picked_all, images);
    if !to.holds_many() && images.len() != 1 {
        return Err(Error::Selection(format!(
            "{} holds one image but {} are selected: {}; pick one with {image} @N or {image} NAME (or SRC:NAME), e.g. {image} @{}",
            to.name(),
            images.len(),
            listed(&images),
            picked_all.first().map_or(0, |p| p.1),
            image = Setting::Image
        )));
    }
    // What the destination lists: one image, or the one index kept whole with
    // `all_platforms`, which is named as its images are.
    let index_of = |image: &Image| image.index.as_ref().map(|i| i.descriptor.digest.clone());
    let one_listed = images.len() == 1
        || (options.all_platforms
            && index_of(&images[0]).is_some()
            && images.iter().all(|i| index_of(i) == index_of(&images[0])));
    if options.digest_file.is_some() && !one_listed {
        return Err(Error::Usage(format!(
            "{} records the digest of one image (or of one index with {}) but {} images are selected: {}; pick one with {image} @N or {image} NAME, e.g. {image} @{}",
            Setting::DigestFile,
            Setting::AllPlatforms,
            images.len(),
            listed(&images),
            picked_all.first().map_or(0, |p| p.1),
            image = Setting::Image
        )));
    }
    if let Some(edit) = edit {
        let context = EditContext {
            spool_dir: sink.spool_dir(),
            to,
            write: write.clone(),
        };
        let count = images.len();
        images = edit(images, &context)?;
        if images.len() != count {
            return Err(Error::Unsupported(format!(
                "an edit made {} image(s) of {count}: it makes one of each",
                images.len()
            )));
        }
    }
    if let Some((tags, ref_names)) = names {
        if !one_listed {
            return Err(Error::Selection(format!(
                "{} (or a destination reference) names one image but {} are selected: {}; pick one with {image} @N or {image} NAME, e.g. {image} @{}",
                Setting::Tag,
                images.len(),
                listed(&images),
                picked_all.first().map_or(0, |p| p.1),
                image = Setting::Image
            )));
        }
        for image in &mut images {
            image.tags = tags.clone();
            image.ref_names = ref_names.clone();
            image.oci_ref_names.clear();
        }
    }
    // What is attached to the images (and, with --all, to their indexes), found from
    // manifests before anything is written, from the source each came from.
    let mut attached = Vec::new();
    let mut carried = std::collections::HashSet::new();
    if carry {
        for (source, range) in sources.iter().zip(&per_source) {
            let mine = &images[range.clone()];
            let mut subjects: Vec<Digest> = Vec::new();
            for image in mine {
                let index = image.index.as_ref().map(|i| &i.descriptor.digest);
                let manifest = image.manifest.as_ref().map(|m| &m.digest);
                for digest in index.into_iter().chain(manifest) {
                    if !subjects.contains(digest) {
                        subjects.push(digest.clone());
                    }
                }
            }
            let found = source.attachments(&subjects, &options.referrer_types)?;
            for item in without_unlisted_attestations(found, mine) {
                if carried.insert((item.descriptor.digest.clone(), item.by.clone())) {
                    attached.push(item);
                }
            }
        }
    }
    let mut warnings: Vec<String> = sources
        .iter()
        .flat_map(|s| s.warnings.iter().cloned())
        .collect();
    let (layers, bytes) = crate::progress::plan_of(&images);
    progress.planned(layers, bytes);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let written = std::thread::scope(|scope| {
        // A destination that takes layers one after another lets a source that can
        // fetch ahead (a registry) do so meanwhile.
        if to.transport().writes_in_order() {
            for (source, range) in sources.iter().zip(&per_source) {
                let (mine, stop) = (&images[range.clone()], &stop);
                scope.spawn(move || source.read_ahead(mine, stop));
            }
        }
        let written = sink.put_images_with(&images, &attached, progress);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        written
    });
    warnings.extend(written?);
    // The plan carried out: a new OCI layout that found one created meanwhile was
    // added to it.
    let committed = sink.commit_with_report()?;
    for source in &sources {
        warnings.extend(source.finished());
    }
    if let Some(path) = &options.digest_file {
        write_digest_file(path, &committed.manifests)?;
    }
    Ok(ConvertReport {
        from: (!made).then(|| sources[0].format),
        to: Some(to),
        images,
        source_indices: picked_all.iter().map(|p| p.1).collect(),
        source_of: picked_all.iter().map(|p| p.0).collect(),
        plan: committed.plan,
        warnings,
        notes: committed.notes,
        stored: committed.stored,
        manifests: committed.manifests,
        details: sources
            .iter()
            .flat_map(|s| s.details.iter().cloned())
            .collect(),
        referrers: attached,
    })
}

/// What makes two images read from two sources the same image: one config, one
/// platform, one index (with `all_platforms`), the same layers.
type ImageIdentity = (Digest, Platform, Option<Digest>, Vec<Option<Digest>>);

fn identity(image: &Image) -> ImageIdentity {
    (
        image.config.digest.clone(),
        image.platform.clone(),
        image.index.as_ref().map(|i| i.descriptor.digest.clone()),
        image
            .layers
            .iter()
            .map(|l| l.diff_id.clone().or(l.digest.clone()))
            .collect(),
    )
}

/// Give `held` the names `other` has that it lacks.
fn merge_names(held: &mut Image, other: &Image) {
    for tag in &other.tags {
        if !held.tags.contains(tag) {
            held.tags.push(tag.clone());
        }
    }
    for name in &other.ref_names {
        if !held.ref_names.contains(name) {
            held.ref_names.push(name.clone());
        }
    }
}

/// The selected images, as messages list them: `@N NAME`, with the source's number
/// when there are several (`2:@0 NAME`).
fn candidates_across(
    sources: &[crate::transport::Source],
    picked: &[(usize, usize)],
    images: &[Image],
) -> String {
    if sources.len() == 1 {
        return candidates(
            &sources[0].images,
            &picked.iter().map(|p| p.1).collect::<Vec<_>>(),
        );
    }
    const SHOWN: usize = 5;
    let mut listed: Vec<String> = picked
        .iter()
        .zip(images)
        .take(SHOWN)
        .map(|((n, at), image)| format!("{}:@{at} {}", n + 1, image.display_name()))
        .collect();
    if picked.len() > SHOWN {
        listed.push(format!("and {} more", picked.len() - SHOWN));
    }
    listed.join(", ")
}

/// Write the one digest in `manifests` to `path` (`sha256:HEX`, no newline), through a
/// temp file beside it renamed over it, so that a reader sees the old file or the new.
fn write_digest_file(path: &Path, manifests: &[Digest]) -> Result<()> {
    let [digest] = manifests else {
        return Err(Error::Unsupported(format!(
            "{}: the destination listed {} manifests, not one",
            Setting::DigestFile,
            manifests.len()
        )));
    };
    let what = || format!("writing {}", shown(&path.to_string_lossy()));
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut file = tempfile::Builder::new()
        .prefix(".digestfile-")
        .tempfile_in(dir)
        .map_err(|e| Error::io(what(), e))?;
    std::io::Write::write_all(&mut file, digest.to_string().as_bytes())
        .and_then(|()| file.as_file().sync_data())
        .map_err(|e| Error::io(what(), e))?;
    file.persist(path).map_err(|e| Error::io(what(), e.error))?;
    Ok(())
}

/// Names for the single output image: full references become tags; where the format
/// has ref names (OCI), a bare name (`1.0`) becomes one, as with skopeo's
/// `oci:DIR:1.0`. `None` when no name is given (the images keep their own).
fn parse_names(names: &[String], to: Format) -> Result<Option<(Vec<Reference>, Vec<String>)>> {
    if names.is_empty() {
        return Ok(None);
    }
    let mut tags = Vec::new();
    let mut ref_names = Vec::new();
    for name in names {
        let bare = !name.contains(['/', ':', '@']);
        if bare && to.transport().bare_names_are_ref_names() {
            if !valid_tag(name) {
                return Err(Error::Usage(format!(
                    "invalid name {}: a tag is letters, digits, '_', '.' and '-'",
                    shown(name)
                )));
            }
            if !ref_names.contains(name) {
                ref_names.push(name.clone());
            }
        } else {
            let r = Reference::parse(name).map_err(|e| Error::Usage(shown(&e)))?;
            if !tags.contains(&r) {
                tags.push(r);
            }
        }
    }
    Ok(Some((tags, ref_names)))
}
