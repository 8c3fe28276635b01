//! What every transport is: a name on the command line, how a location of it is
//! written, and how it opens a source of images and a destination for them. The table
//! of the transports dockhand speaks is in `location.rs`; each transport lives in its
//! own folder (`formats/` for the local layouts, `registry/`, `daemon/`) and is one
//! row there. This module is below all of them: it names no transport.

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use crate::compress::LayerCompression;
use crate::container::FileTree;
use crate::error::Result;
use crate::model::blob::{Blob, MemoryBlob};
use crate::model::digest::Digest;
use crate::model::image::{Descriptor, Image, ListedPlatform, Platform};
use crate::sink::{ImageSink, LayerPolicy};

/// A transport: a kind of place images are held (a docker-archive, an OCI layout, a
/// registry, a Docker daemon), named as skopeo names it, that can be read from and
/// written to.
///
/// dockhand's own transports are rows of one table; a library user can write one of
/// their own (an in-memory store, another service) and convert through it with
/// [`crate::convert_between`].
///
/// ```
/// use dockhand::{Format, Transport};
///
/// let oci: &dyn Transport = Format::OCI.transport();
/// assert_eq!((oci.name(), oci.syntax()), ("oci", "oci:DIR[:REF]"));
/// assert!(oci.holds_many() && oci.keeps_indexes());
/// ```
pub trait Transport: Send + Sync {
    /// The name before the colon (`oci`, `docker-archive`, `docker`, ...).
    fn name(&self) -> &'static str;
    /// The transport as a noun, for messages ("an oci layout").
    fn noun(&self) -> &'static str;
    /// How a location of it is written, for help texts (`oci:DIR[:REF]`).
    fn syntax(&self) -> &'static str;
    /// Split what follows `NAME:` into the place and a reference, checking what can be
    /// checked before anything is opened or created. The default is skopeo's
    /// `PATH[:REF]`.
    fn parse(&self, rest: &str) -> Result<(String, Option<String>)> {
        let (path, reference) = match rest.split_once(':') {
            Some((p, r)) if !r.is_empty() => (p.to_string(), Some(r.to_string())),
            Some((p, _)) => (p.to_string(), None),
            None => (rest.to_string(), None),
        };
        if path.is_empty() {
            return Err(crate::error::Error::Usage(format!(
                "{}: the {} transport needs a path",
                crate::text::shown(&format!("{}:{rest}", self.name())),
                self.name()
            )));
        }
        Ok((path, reference))
    }
    /// Whether it holds several images.
    fn holds_many(&self) -> bool;
    /// Whether it keeps a multi-platform index whole (what `--all` needs).
    fn keeps_indexes(&self) -> bool {
        false
    }
    /// Whether a bare name (`1.0`, as in `oci:DIR:1.0`) names an image here (an OCI
    /// ref name) rather than being a tag.
    fn bare_names_are_ref_names(&self) -> bool {
        false
    }
    /// Whether a destination of it takes layers one after another, as a tar stream
    /// does (a source that can fetch ahead is then asked to).
    fn writes_in_order(&self) -> bool {
        false
    }
    /// Whether a destination of it, written with `options`, can hold what is attached to
    /// images (referrers: signatures, attestations, SBOMs) next to them.
    fn holds_referrers(&self, _options: &WriteOptions) -> bool {
        false
    }
    /// Whether a destination of it, written with `options`, keeps the manifests
    /// dockhand builds, so that their annotations ([`crate::Image::annotations`])
    /// are held: OCI manifests, not a docker-save's `manifest.json`.
    fn holds_annotations(&self, _options: &WriteOptions) -> bool {
        false
    }
    /// Whether a destination of it keeps each blob once it is whole and skips it on a
    /// re-run (a registry): a source then streams blobs to it, keeping no copy for an
    /// interrupted run to resume from.
    fn skips_blobs_it_holds(&self) -> bool {
        false
    }
    /// Whether its locations are paths on this machine (which a destination must
    /// then neither be nor contain).
    fn is_local(&self) -> bool {
        false
    }
    /// How many blobs a source of it is best read at once, when that is not one per
    /// core (a registry: its `jobs`).
    fn parallel_reads(&self, _options: &ReadOptions) -> Option<usize> {
        None
    }
    /// Open `location` as a source: its images' metadata is read now, layers when
    /// they are written.
    fn open_source(&self, location: &Location, options: &ReadOptions) -> Result<Source>;
    /// Create a destination at `location`, which shows nothing of what is written
    /// before [`ImageSink::commit`]: an [`crate::ImageDestination`] of the transport's,
    /// in an [`ImageSink`] with how it takes layers.
    fn create_sink(&self, location: &Location, options: &SinkOptions)
        -> Result<ImageSink<'static>>;
}

/// A transport, as a value: what a location's prefix, `--from` or `--to` names.
///
/// ```
/// use dockhand::Format;
///
/// let format = Format::parse("oci-archive").unwrap();
/// assert_eq!(format, Format::OCI_ARCHIVE);
/// assert!(format.is_tar() && format.holds_many());
/// assert_eq!(Format::for_destination("out.tar").name(), "docker-archive");
/// ```
#[derive(Clone, Copy)]
pub struct Format(&'static dyn Transport);

impl Format {
    /// The format of `transport` (a static one: dockhand's own, or a caller's).
    pub const fn of(transport: &'static dyn Transport) -> Format {
        Format(transport)
    }
    /// The transport name (`docker-archive`, `oci`, `docker`, ...).
    pub fn name(self) -> &'static str {
        self.0.name()
    }
    /// The transport itself.
    pub fn transport(self) -> &'static dyn Transport {
        self.0
    }
    /// Whether this format is stored as a single tar (file or stream).
    pub fn is_tar(self) -> bool {
        self.0.writes_in_order()
    }
    /// Whether the format can hold several images.
    pub fn holds_many(self) -> bool {
        self.0.holds_many()
    }
}

impl PartialEq for Format {
    fn eq(&self, other: &Format) -> bool {
        self.name() == other.name()
    }
}

impl Eq for Format {}

impl std::hash::Hash for Format {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name().hash(state);
    }
}

impl fmt::Debug for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Format({})", self.name())
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A source or destination as given on the command line: a path, `-`, or
/// `TRANSPORT:PATH[:REF]` in skopeo's syntax.
///
/// ```
/// use dockhand::{Format, Location};
///
/// let stdin = Location::parse("-")?;
/// assert_eq!((stdin.transport, stdin.path.as_str(), stdin.reference), (None, "-", None));
/// let dir = Location::parse("dir:/tmp/image")?;
/// assert_eq!((dir.transport, dir.path.as_str()), (Some(Format::DIR), "/tmp/image"));
/// # Ok::<(), dockhand::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// The transport its prefix names; `None` for a bare path (detected when read,
    /// chosen by its name when written).
    pub transport: Option<Format>,
    /// The path (`-` for stdin or stdout), or what the transport calls the place
    /// (`HOST/REPO:TAG` for a registry).
    pub path: String,
    /// The reference after the path (`name:tag` or `@N`), if any.
    pub reference: Option<String>,
}

impl Location {
    /// The location of `path` in `transport`, with no reference.
    pub fn new(transport: Format, path: impl Into<String>) -> Location {
        Location {
            transport: Some(transport),
            path: path.into(),
            reference: None,
        }
    }

    /// The path on this machine it names, when it names one (not stdin, not a
    /// registry).
    pub fn local_path(&self) -> Option<&std::path::Path> {
        let local = self.transport.is_none_or(|t| t.transport().is_local());
        (local && self.path != "-").then(|| std::path::Path::new(&self.path))
    }
}

/// How to reach registries.
///
/// Fields may be added in later versions: build one with `..Default::default()` so
/// that code keeps compiling.
///
/// ```
/// use dockhand::{ReadOptions, RegistryOptions};
///
/// let registry = RegistryOptions { creds: Some("user:secret".into()), ..Default::default() };
/// assert!(registry.tls_verify);
/// assert_eq!((registry.retry_times, registry.jobs), (3, 4));
/// let read = ReadOptions { registry, ..Default::default() };
/// assert_eq!(read.registry.creds.as_deref(), Some("user:secret"));
/// ```
#[derive(Clone, Debug)]
pub struct RegistryOptions {
    /// Credentials as `USER:PASSWORD`: override every auth file.
    pub creds: Option<String>,
    /// The only auth file read.
    pub authfile: Option<PathBuf>,
    /// Verify TLS certificates (`false`: HTTPS without checks, or plain HTTP when the
    /// registry speaks no TLS).
    pub tls_verify: bool,
    /// A directory of the registry's certificates, as skopeo's `--cert-dir`: its
    /// `*.crt` files are CAs trusted besides the system's, and a `NAME.cert` +
    /// `NAME.key` pair is the client certificate. Given, it replaces the registry's
    /// folder in `/etc/docker/certs.d/` and `/etc/containers/certs.d/`.
    pub cert_dir: Option<PathBuf>,
    /// How many times a transient failure (a connection error, 408, 429, 5xx) is
    /// retried, with exponential backoff.
    pub retry_times: u32,
    /// The first backoff delay (doubled on each retry), unless the registry sends
    /// `Retry-After`.
    pub retry_delay: Duration,
    /// Where pulled blobs are kept until an output holds them, so that an interrupted
    /// pull resumes (`None`: `$XDG_CACHE_HOME/dockhand`).
    pub cache: Option<PathBuf>,
    /// Use no blob cache at all.
    pub no_cache: bool,
    /// How many blobs are pulled (into a directory output) or pushed at once.
    pub jobs: usize,
    /// A read or write that makes no progress for this long fails its attempt, which
    /// is then retried (zero: wait forever).
    pub read_timeout: Duration,
    /// A blob body slower than this many bytes a second, over a stretch of
    /// `read_timeout`, fails its attempt too (zero: no floor), so that a registry
    /// dripping a byte at a time cannot hold a pull forever.
    pub min_rate: u64,
    /// The registries configuration read instead of `CONTAINERS_REGISTRIES_CONF`,
    /// `$HOME/.config/containers/registries.conf` or `/etc/containers/registries.conf`
    /// (its drop-in directories are read too, as podman does): mirrors, `location`,
    /// `insecure` and `blocked` per registry, as containers-registries.conf(5) says.
    pub registries_conf: Option<PathBuf>,
    /// For a push of several images to a registry prefix (`docker://HOST/PREFIX/`):
    /// keep each image's source registry in its path (`HOST/PREFIX/docker.io/team/app`),
    /// as skopeo sync's `--scoped` does. Not read otherwise.
    pub scoped: bool,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            creds: None,
            authfile: None,
            tls_verify: true,
            cert_dir: None,
            retry_times: 3,
            retry_delay: Duration::from_secs(1),
            cache: None,
            no_cache: false,
            jobs: 4,
            read_timeout: Duration::from_secs(60),
            min_rate: 1024,
            registries_conf: None,
            scoped: false,
        }
    }
}

/// Options for reading a source.
///
/// Fields may be added in later versions: build one with `..Default::default()` so
/// that code keeps compiling.
///
/// ```
/// use dockhand::{open_source, Location, Platform, ReadOptions};
///
/// # let input = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/docker-save-basic/input.tar");
/// let location = Location::parse(input)?;
/// let on = |p: &str| ReadOptions { platform: Platform::parse(p).ok(), ..Default::default() };
/// assert_eq!(open_source(&location, &on("linux/amd64"))?.images.len(), 1);
/// // The fixture holds linux/amd64 only: asking for another platform is an error.
/// assert!(open_source(&location, &on("linux/arm64")).is_err());
/// # Ok::<(), dockhand::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct ReadOptions {
    /// How to reach a registry source.
    pub registry: RegistryOptions,
    /// Take every platform of a multi-platform index (`--all`), which an OCI or
    /// registry output keeps whole, instead of one.
    pub all_platforms: bool,
    /// The platform to pick: `Some` when the user asked for one (an image of another
    /// platform is then never read, and no match is an error), `None` for the host's
    /// default, which only picks among the children of multi-platform indexes.
    pub platform: Option<Platform>,
    /// Read the input as this format instead of detecting it (a Docker >= 25 archive is
    /// both a docker-archive and an oci-archive). It must fit the content: a tar for
    /// `*-archive`, a directory for the others.
    pub format: Option<Format>,
    /// Where an input that must be spooled (a pipe, a compressed archive) keeps its big
    /// entries: the output's staging directory ([`ImageSink::spool_dir`]), so that a
    /// directory output links them in instead of writing them a second time. `None`:
    /// an anonymous temp file.
    pub spool_dir: Option<PathBuf>,
}

impl ReadOptions {
    pub(crate) fn wanted_platform(&self) -> Platform {
        self.platform.clone().unwrap_or_else(Platform::host)
    }
}

/// Options for writing.
///
/// Fields may be added in later versions: build one with `..Default::default()` so
/// that code keeps compiling.
///
/// ```
/// use dockhand::{write_tar, DockerLayout, Layout, WriteOptions};
///
/// let has_oci_layout = |options: &WriteOptions| -> dockhand::Result<bool> {
///     let (tar, _) = write_tar(&[], Layout::DockerSave, options, Vec::new())?;
///     Ok(tar.windows(10).any(|name| name == b"oci-layout"))
/// };
/// let hybrid = WriteOptions { docker_layout: Some(DockerLayout::Hybrid), ..Default::default() };
/// assert!(has_oci_layout(&hybrid)?);
/// assert!(!has_oci_layout(&WriteOptions::default())?); // legacy
/// # Ok::<(), dockhand::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct WriteOptions {
    /// The shape of docker-save outputs (default: legacy); a usage error for others.
    pub docker_layout: Option<DockerLayout>,
    /// What OCI and `dir:` outputs do with layers (default: keep them as stored).
    /// docker-save outputs always hold uncompressed layers: `gzip` or `zstd` there is
    /// a usage error.
    pub layer_compression: LayerCompression,
    /// The gzip (1-9) or zstd (1-19) level; a usage error unless compressing.
    pub compression_level: Option<i32>,
    /// The manifests written where there is a choice (skopeo's `--format`): a registry
    /// (default: what the source is, Docker v2 schema 2 for a docker-archive or a
    /// Docker v2 image, OCI otherwise) and a `dir:` layout (default OCI). An OCI layout
    /// takes `oci` only; a usage error for docker-archive and docker-dir outputs.
    pub manifest_format: Option<crate::sink::ManifestFormat>,
    /// Keep each image's manifest where the layer options allow it: with `keep`, a
    /// push sends uncompressed layers as they are instead of gzipping them as
    /// `docker push` does. Set by a conversion carrying referrers, which name the
    /// image's manifest by digest.
    pub keep_manifests: bool,
}

/// A source of images: what a reader found in an input.
///
/// ```
/// use dockhand::{open_source, Format, ImageSource, Location, ReadOptions};
///
/// # let input = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/docker-save-basic/input.tar");
/// let source = open_source(&Location::parse(input)?, &ReadOptions::default())?;
/// let any: &dyn ImageSource = &source;
/// assert!(any.input().ends_with("docker-save-basic/input.tar"));
/// assert_eq!((any.format(), any.images().len()), (Format::DOCKER_ARCHIVE, 1));
/// assert!(any.warnings().is_empty());
/// # Ok::<(), dockhand::Error>(())
/// ```
pub trait ImageSource {
    /// The input as the user named it, for messages.
    fn input(&self) -> &str;
    /// The format it was read as.
    fn format(&self) -> Format;
    /// The images, in the order the source lists them (`@N` is a position here).
    fn images(&self) -> &[Image];
    /// Notes for the user about things skipped or tolerated.
    fn warnings(&self) -> &[String];
}

/// An opened input: its format, its images, and the tree their blobs live in.
///
/// ```
/// use dockhand::{open_source, Format, Location, ReadOptions};
///
/// # let input = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/docker-save-basic/input.tar");
/// let source = open_source(&Location::parse(input)?, &ReadOptions::default())?;
/// assert_eq!(source.format, Format::DOCKER_ARCHIVE);
/// assert_eq!(source.images.len(), 1);
/// assert!(source.warnings.is_empty() && source.platforms.is_empty());
/// # Ok::<(), dockhand::Error>(())
/// ```
pub struct Source {
    /// The detected format.
    pub format: Format,
    /// The images, in the order the source lists them.
    pub images: Vec<Image>,
    /// Notes for the user about things skipped or tolerated.
    pub warnings: Vec<String>,
    /// Details a verbose run shows (which mirror served a registry pull).
    pub details: Vec<String>,
    /// Every platform the source's multi-platform indexes list, present or absent.
    pub platforms: Vec<ListedPlatform>,
    input: String,
    /// What the images' blobs are read from has to say when they are all written.
    finished: Option<Finished>,
    read_ahead: Option<ReadAhead>,
    find_manifest: Option<FindManifest>,
    stream: Option<Stream>,
    find_referrers: Option<crate::referrers::FindReferrers>,
    find_blob: Option<FindBlob>,
}

/// A manifest or index a source answered ([`Source::manifest`]): its exact bytes and
/// its media type.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ManifestBytes {
    /// The bytes exactly as the source holds them: they hash to the digest asked for
    /// (a signed schema 1 manifest's payload does, as its digest is defined).
    pub bytes: Arc<Vec<u8>>,
    /// The media type the index listing it gave, or the document's own `mediaType`
    /// (for a document read on demand: its `mediaType`, or what its shape makes it
    /// when it has none, as an OCI manifest or index may).
    pub media_type: String,
}

/// Tells what a source's blobs are read from (a tree, a registry) that they are all
/// written; returns its warnings.
pub(crate) type Finished = Box<dyn Fn() -> Vec<String> + Send + Sync>;

/// Fetches a source's layers ahead of a destination that takes them in order.
type ReadAhead = Box<dyn Fn(&[Image], &AtomicBool) + Send + Sync>;

/// Finds a blob the source holds beyond its images' configs and layers (a referrer's),
/// by the descriptor that names it; `None` when it holds none by that digest.
pub(crate) type FindBlob = Box<dyn Fn(&Descriptor) -> Result<Option<Arc<dyn Blob>>> + Send + Sync>;

/// Tells a source to read its blobs without keeping copies to resume from.
type Stream = Box<dyn Fn() + Send + Sync>;

/// Finds a manifest or index the source can reach but did not read (an index member
/// of another platform), verified against its digest; `None` when it holds none.
pub(crate) type FindManifest = Box<dyn Fn(&Digest) -> Result<Option<ManifestBytes>> + Send + Sync>;

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("input", &self.input)
            .field("format", &self.format)
            .field("images", &self.images.len())
            .field("warnings", &self.warnings)
            .finish()
    }
}

impl ImageSource for Source {
    fn input(&self) -> &str {
        &self.input
    }
    fn format(&self) -> Format {
        self.format
    }
    fn images(&self) -> &[Image] {
        &self.images
    }
    fn warnings(&self) -> &[String] {
        &self.warnings
    }
}

impl Source {
    /// A source of `images` read from `input` (named so in messages) as `format`: what
    /// a transport of a library user's returns from [`Transport::open_source`].
    pub fn new(format: Format, input: impl Into<String>, images: Vec<Image>) -> Source {
        Source {
            format,
            images,
            warnings: Vec::new(),
            details: Vec::new(),
            platforms: Vec::new(),
            input: input.into(),
            finished: None,
            read_ahead: None,
            find_manifest: None,
            stream: None,
            find_referrers: None,
            find_blob: None,
        }
    }

    /// The source whose blobs `tree` holds, which is told when they are all written.
    pub(crate) fn in_tree(mut self, tree: Arc<dyn FileTree>) -> Source {
        self.input = tree.name().to_string();
        self.finished = Some(Box::new(move || tree.finished()));
        self
    }

    /// The source, with what to do when its images are all written.
    pub(crate) fn finishing_with(mut self, finished: Finished) -> Source {
        self.finished = Some(finished);
        self
    }

    /// The source, with a way to fetch its layers ahead of a destination that takes
    /// them in order.
    pub(crate) fn reading_ahead(mut self, read_ahead: ReadAhead) -> Source {
        self.read_ahead = Some(read_ahead);
        self
    }

    /// The source, with a way to stop keeping copies of its blobs to resume from.
    pub(crate) fn streaming_with(mut self, stream: Stream) -> Source {
        self.stream = Some(stream);
        self
    }

    /// Read blobs from now on without keeping copies for an interrupted run to resume
    /// from (a registry source's cache), for a destination that skips what it already
    /// holds on a re-run ([`Transport::skips_blobs_it_holds`]).
    pub fn stream_blobs(&self) {
        if let Some(stream) = &self.stream {
            stream();
        }
    }

    /// The source, with a way to find the manifests it can reach beyond those it read.
    pub(crate) fn answering_manifests(mut self, find_manifest: FindManifest) -> Source {
        self.find_manifest = Some(find_manifest);
        self
    }

    /// The source, with a way to find what refers directly to a manifest or index
    /// (one level; [`Source::referrers`] walks the rest).
    pub(crate) fn answering_referrers(
        mut self,
        find_referrers: crate::referrers::FindReferrers,
    ) -> Source {
        self.find_referrers = Some(find_referrers);
        self
    }

    /// The source, with a way to find blobs beyond its images' (a referrer's).
    pub(crate) fn answering_blobs(mut self, find_blob: FindBlob) -> Source {
        self.find_blob = Some(find_blob);
        self
    }

    /// The blob `descriptor` names, wherever the source holds it: an image's config or
    /// layer ([`Source::blob`]), or a blob no image lists, such as the config or a
    /// layer of a signature or an SBOM attached to an image (a registry fetches it by
    /// digest; an OCI layout has it under `blobs/`). `None` when the source holds no
    /// such blob. Reading it is not verified here: the caller checks the bytes against
    /// the descriptor's digest and size as they stream.
    ///
    /// ```
    /// use dockhand::{open_source, Location, ReadOptions};
    ///
    /// # let input = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/skopeo-oci/input");
    /// let source = open_source(&Location::parse(input)?, &ReadOptions::default())?;
    /// let config = source.images[0].config.clone();
    /// assert!(source.attached_blob(&config)?.is_some());
    /// # Ok::<(), dockhand::Error>(())
    /// ```
    pub fn attached_blob(&self, descriptor: &Descriptor) -> Result<Option<Arc<dyn Blob>>> {
        if let Some(blob) = self.blob(&descriptor.digest) {
            return Ok(Some(blob));
        }
        match &self.find_blob {
            Some(find) => find(descriptor),
            None => Ok(None),
        }
    }

    /// What the transport's hook says refers directly to `digest`, if it has one.
    pub(crate) fn direct_referrers(
        &self,
        digest: &Digest,
    ) -> Option<Result<Vec<crate::referrers::Referrer>>> {
        self.find_referrers.as_ref().map(|find| find(digest))
    }

    /// The manifest or index with `digest` that this source can reach: its exact bytes
    /// and media type, so a caller can copy or check either by digest.
    ///
    /// What the source read answers first: each image's own manifest and, for images
    /// read from a multi-platform index, that index. Beyond those, a source finds on
    /// demand what it holds or its registry serves: the member of an index for a
    /// platform that was not selected, an index read for one platform. An OCI layout
    /// (a directory or an archive) reads `blobs/sha256/<hex>`, a `dir:` layout a list's
    /// `<hex>.manifest.json`; a registry asks for `/v2/REPO/manifests/<digest>`, with
    /// the same credentials, retries and size limit as its pull. A docker-archive has
    /// no manifests of its own, and a library user's transport answers only what it read.
    ///
    /// `Ok(None)` when the source holds no manifest with that digest: a config or a
    /// layer is not one (nor, in a layout, is a blob over
    /// [`crate::limits::MAX_JSON_SIZE`]). An error when reaching it fails (a registry's
    /// manifest over its 4 MiB limit is refused), or when the bytes found do not hash
    /// to `digest` ([`crate::Error::DigestMismatch`]).
    ///
    /// ```
    /// use dockhand::{open_source, Digest, Location, ReadOptions};
    ///
    /// let input = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/skopeo-oci/input");
    /// let source = open_source(&Location::parse(input)?, &ReadOptions::default())?;
    /// let wanted = source.images[0].manifest.clone().unwrap();
    /// let found = source.manifest(&wanted.digest)?.unwrap();
    /// assert_eq!(Digest::of(&found.bytes), wanted.digest);
    /// assert_eq!(found.media_type, wanted.media_type);
    /// assert!(source.manifest(&Digest::of(b"no such manifest"))?.is_none());
    /// // The image's config is a blob of the layout, but not a manifest.
    /// assert!(source.manifest(&source.images[0].config.digest)?.is_none());
    /// # Ok::<(), dockhand::Error>(())
    /// ```
    pub fn manifest(&self, digest: &Digest) -> Result<Option<ManifestBytes>> {
        let read = self.images.iter().find_map(|image| {
            if let (Some(descriptor), Some(bytes)) = (&image.manifest, &image.manifest_bytes) {
                if descriptor.digest == *digest {
                    return Some(ManifestBytes {
                        bytes: Arc::clone(bytes),
                        media_type: descriptor.media_type.clone(),
                    });
                }
            }
            let index = image.index.as_ref()?;
            (index.descriptor.digest == *digest).then(|| ManifestBytes {
                bytes: Arc::clone(&index.bytes),
                media_type: index.descriptor.media_type.clone(),
            })
        });
        match (read, &self.find_manifest) {
            (Some(read), _) => Ok(Some(read)),
            (None, Some(find)) => find(digest),
            (None, None) => Ok(None),
        }
    }

    /// The config or layer blob with `digest` among this source's images, to read
    /// whole ([`Blob::open`]) or from an offset ([`Blob::open_at`]: a registry asks for
    /// a `Range`, a file seeks, a tar entry starts at the offset). `None` when no image
    /// of the source has such a config or a layer the source holds.
    ///
    /// The bytes come as stored and are **not** verified by this reader: a layer read
    /// whole through [`crate::open_layer`] is (its size, digest and diff_id), and a
    /// config's bytes were checked when the source was read. A caller reading a range
    /// trusts the source for it, or checks the whole afterwards.
    ///
    /// ```
    /// use std::io::Read;
    /// use dockhand::{open_source, Digest, Location, ReadOptions};
    ///
    /// # let input = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/docker-save-basic/input.tar");
    /// let source = open_source(&Location::parse(input)?, &ReadOptions::default())?;
    /// let layer = source.images[0].layers[1].digest.clone().unwrap();
    /// let blob = source.blob(&layer).unwrap();
    /// let mut whole = Vec::new();
    /// blob.open()?.read_to_end(&mut whole).unwrap();
    /// assert_eq!(Digest::of(&whole), layer);
    /// let mut tail = Vec::new();
    /// blob.open_at(1000)?.read_to_end(&mut tail).unwrap();
    /// assert_eq!(tail, whole[1000..]);
    /// let config = source.blob(&source.images[0].config.digest).unwrap();
    /// assert_eq!(config.size(), source.images[0].config_bytes.len() as u64);
    /// assert!(source.blob(&Digest::of(b"no such blob")).is_none());
    /// # Ok::<(), dockhand::Error>(())
    /// ```
    pub fn blob(&self, digest: &Digest) -> Option<Arc<dyn Blob>> {
        self.images.iter().find_map(|image| {
            if image.config.digest == *digest {
                let config = MemoryBlob::new(Arc::clone(&image.config_bytes), &image.config_path);
                return Some(Arc::new(config) as Arc<dyn Blob>);
            }
            image
                .layers
                .iter()
                .filter(|layer| layer.digest.as_ref() == Some(digest))
                .find_map(|layer| layer.blob.clone())
        })
    }

    /// Fetch the layers of `images` ahead of their use, until `stop` is set, when the
    /// source gains by it (a registry fetches several at once into its cache, which a
    /// destination writing them one after another then reads). Errors are left for
    /// the reads that meet them.
    pub fn read_ahead(&self, images: &[Image], stop: &AtomicBool) {
        if let Some(read_ahead) = &self.read_ahead {
            read_ahead(images, stop);
        }
    }

    /// Tell the source its images are written: a registry source drops the blobs it
    /// cached for resuming. Other sources keep nothing; the images stay readable.
    /// Returns warnings about reading the blobs (a registry's cache entry that did not
    /// verify, discarded and fetched again), beyond [`Source::warnings`].
    ///
    /// ```
    /// use dockhand::{open_source, verify, Location, NoProgress, ReadOptions};
    ///
    /// # let input = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/docker-save-basic/input.tar");
    /// let source = open_source(&Location::parse(input)?, &ReadOptions::default())?;
    /// verify(&source.images, &NoProgress)?;
    /// let warnings = source.finished(); // as `dockhand verify` does once every layer was read
    /// assert!(warnings.is_empty());
    /// verify(&source.images, &NoProgress)?;
    /// # Ok::<(), dockhand::Error>(())
    /// ```
    #[must_use = "the warnings are for the user"]
    pub fn finished(&self) -> Vec<String> {
        self.finished
            .as_ref()
            .map_or_else(Vec::new, |finished| finished())
    }
}

/// Options for creating a sink.
///
/// Fields may be added in later versions: build one with `..Default::default()` so
/// that code keeps compiling.
///
/// ```
/// use dockhand::{convert, create_sink, ConvertOptions, Format, Plan, SinkOptions};
/// # let input = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/docker-save-basic/input.tar");
/// # let tmp = tempfile::tempdir().unwrap();
/// # let dst = tmp.path().join("layout");
/// # let dst = dst.to_str().unwrap();
///
/// convert(input, dst, &ConvertOptions::default())?; // an OCI layout
/// let plan = |options| create_sink(dst, Format::OCI, &options).map(|sink| sink.plan());
/// assert_eq!(plan(SinkOptions::default())?, Some(Plan::AddToOciLayout));
/// assert_eq!(plan(SinkOptions { force: true, ..Default::default() })?, Some(Plan::Replace));
/// # Ok::<(), dockhand::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct SinkOptions {
    /// Replace a destination dockhand could have written (the crate docs' `# Security` section says what it may).
    pub force: bool,
    /// The source's path, which the destination must neither be nor contain.
    pub source: Option<PathBuf>,
    /// How to write.
    pub write: WriteOptions,
    /// How to reach a registry destination.
    pub registry: RegistryOptions,
    /// How many layers a directory output writes at once (`None`: one per core); a
    /// registry source asks for its `--jobs`.
    pub jobs: Option<usize>,
}

impl WriteOptions {
    /// How layers are written into a destination that stores what these options ask
    /// for (an OCI layout, a library user's store): [`LayerPolicy::new`] of them.
    pub fn layer_policy(&self) -> Result<LayerPolicy> {
        let layers = LayerPolicy::new(self.layer_compression, self.compression_level)?;
        match self.manifest_format {
            Some(format) => layers.with_manifest_format(format),
            None => Ok(layers),
        }
    }
}

/// Which docker-archive shape to write.
///
/// ```
/// use dockhand::{convert, open_source, ConvertOptions, DockerLayout, Format};
/// # use dockhand::{Location, ReadOptions};
/// # let input = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/docker-save-basic/input.tar");
/// # let tmp = tempfile::tempdir().unwrap();
/// # let dst = tmp.path().join("hybrid.tar");
/// # let dst = dst.to_str().unwrap();
///
/// let hybrid = Some(DockerLayout::Hybrid);
/// let options = ConvertOptions { docker_layout: hybrid, ..Default::default() };
/// convert(input, dst, &options)?;
/// // Docker >= 25's shape: an OCI layout too, which OCI tools can read.
/// let oci = ReadOptions { format: Some(Format::OCI_ARCHIVE), ..Default::default() };
/// assert_eq!(open_source(&Location::parse(dst)?, &oci)?.images.len(), 1);
/// # Ok::<(), dockhand::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum DockerLayout {
    /// `<config>.json`, `<v1id>/layer.tar`, manifest.json, repositories: loadable by
    /// every Docker since 1.10 and read by every scanner.
    #[default]
    Legacy,
    /// The Docker >= 25 shape: an OCI layout with manifest.json, read by docker load and
    /// by OCI tools alike.
    Hybrid,
}
