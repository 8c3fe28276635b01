//! Formats: which files and JSON documents make up each layout (`docker/`, `oci/`,
//! `dir/`), and the one table that maps transport names to them. Readers turn a
//! [`FileTree`] into a [`Source`]; writers put images into a
//! [`crate::container::TreeWriter`] behind an [`ImageSink`].
//!
//! Adding a transport is one module (its reader and writer, as a `LayoutOps`) and one
//! line in the `TRANSPORTS` table.

pub(crate) mod blobs;
mod context;
mod dir;
pub(crate) use dir::{declares_schema1, schema1_payload};
mod docker;
mod manifest;
pub(crate) mod oci;
mod v1_config;

pub(crate) use dir::DIR_VERSION;
pub(crate) use oci::OCI_LAYOUT_FILE;

pub use context::{MAX_LAYERS_TOTAL, MAX_METADATA_TOTAL};
pub use docker::DockerLayout;

use context::Meta;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::compress::LayerCompression;
use crate::container::{
    open_input_spooling_in, AppendSpec, AppendWriter, Committed, DirWriter, FileTree,
    TarFileWriter, TarStreamWriter, TreeWriter,
};
use crate::destination::{self, Output, Plan};
use crate::error::{Error, Result};
use crate::model::image::{parse_json, Image, Platform};
use crate::progress::{NoProgress, Progress};
use crate::text::shown;

/// Most warnings kept for one input; identical ones are shown once.
pub const MAX_WARNINGS: usize = 100;

/// How a format lays images out: which files and documents it has.
///
/// ```
/// use dockhand::{Format, Layout};
///
/// assert_eq!(Format::DOCKER_ARCHIVE.layout, Layout::DockerSave);
/// assert_eq!(Format::OCI_ARCHIVE.layout, Format::OCI.layout);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Layout {
    /// `docker save`: manifest.json (or, before Docker 1.10, `repositories` and v1
    /// layer directories).
    DockerSave,
    /// An OCI image layout: `oci-layout`, `index.json`, `blobs/`.
    Oci,
    /// The containers/image `dir:` layout.
    Dir,
}

/// What holds a layout's files.
///
/// ```
/// use dockhand::{Container, Format};
///
/// assert_eq!(Format::OCI_ARCHIVE.container, Container::Tar);
/// assert_eq!(Format::DIR.container, Container::Directory);
/// assert_eq!(Format::REGISTRY.container, Container::Registry);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Container {
    /// A tar file or stream.
    Tar,
    /// A directory.
    Directory,
    /// A registry repository (`docker://`), read as an OCI layout.
    Registry,
    /// A Docker daemon's image store (`docker-daemon:`), read and written as
    /// docker-save streams.
    Daemon,
}

/// A format: a layout in a container, named as skopeo names its transports
/// (`docker-archive`, `oci`, ...).
///
/// ```
/// use dockhand::{Container, Format, Layout};
///
/// let format = Format::parse("oci-archive").unwrap();
/// assert_eq!(format, Format::OCI_ARCHIVE);
/// assert_eq!((format.layout, format.container), (Layout::Oci, Container::Tar));
/// assert!(format.is_tar() && format.holds_many());
/// assert_eq!(Format::for_destination("out.tar").name(), "docker-archive");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Format {
    /// Which files and documents.
    pub layout: Layout,
    /// What holds them.
    pub container: Container,
}

impl Format {
    /// `docker save` output in a tar.
    pub const DOCKER_ARCHIVE: Format = Format::new(Layout::DockerSave, Container::Tar);
    /// A docker-save tree in a directory.
    pub const DOCKER_DIR: Format = Format::new(Layout::DockerSave, Container::Directory);
    /// An OCI image layout in a directory.
    pub const OCI: Format = Format::new(Layout::Oci, Container::Directory);
    /// An OCI image layout in a tar.
    pub const OCI_ARCHIVE: Format = Format::new(Layout::Oci, Container::Tar);
    /// The containers/image `dir:` layout.
    pub const DIR: Format = Format::new(Layout::Dir, Container::Directory);
    /// A registry (`docker://HOST/REPO:TAG`), read and written as OCI manifests.
    pub const REGISTRY: Format = Format::new(Layout::Oci, Container::Registry);
    /// A Docker daemon (`docker-daemon:NAME:TAG`), read and written as docker-save
    /// streams.
    pub const DOCKER_DAEMON: Format = Format::new(Layout::DockerSave, Container::Daemon);

    const fn new(layout: Layout, container: Container) -> Format {
        Format { layout, container }
    }

    /// The transport name (`docker-archive`, `oci`, ...).
    pub fn name(self) -> &'static str {
        if self.container == Container::Registry {
            return "docker";
        }
        // docker-daemon: hook (a transport table row once there is one).
        if self.container == Container::Daemon {
            return "docker-daemon";
        }
        self.transport().map_or("?", |t| t.name)
    }

    /// The format a transport name names.
    pub fn parse(name: &str) -> Option<Format> {
        TRANSPORTS.iter().find(|t| t.name == name).map(|t| t.format)
    }

    /// Every format, in the table's order.
    pub fn all() -> impl Iterator<Item = Format> {
        TRANSPORTS.iter().map(|t| t.format)
    }

    /// Whether this format is stored as a single tar (file or stream).
    pub fn is_tar(self) -> bool {
        self.container == Container::Tar
    }

    /// Whether the format can hold several images.
    pub fn holds_many(self) -> bool {
        self.ops().holds_many
    }

    /// The format a destination gets when nothing names one: a docker-archive for
    /// stdout and `*.tar`, an OCI layout directory otherwise.
    pub fn for_destination(path: &str) -> Format {
        if path == "-" || path.ends_with(".tar") {
            Format::DOCKER_ARCHIVE
        } else {
            Format::OCI
        }
    }

    fn transport(self) -> Option<&'static Transport> {
        TRANSPORTS.iter().find(|t| t.format == self)
    }

    pub(crate) fn ops(self) -> &'static LayoutOps {
        self.transport()
            .map_or_else(|| layout_ops(self.layout), |t| t.ops)
    }
}

/// One transport: its name, its format, and the layout module that reads and writes
/// it.
pub(crate) struct Transport {
    /// The name on the command line (`docker-archive:x.tar`, `--to oci`).
    pub name: &'static str,
    /// The layout and container.
    pub format: Format,
    /// The format as a noun, for messages.
    pub noun: &'static str,
    /// What reads and writes the layout.
    pub ops: &'static LayoutOps,
}

/// The transports dockhand speaks: a name, a layout in a container, and the module
/// that reads and writes that layout. Detection finds a layout in a tar or a
/// directory, and the line with that pair names the result.
#[rustfmt::skip]
pub(crate) static TRANSPORTS: &[Transport] = &[
    Transport { name: "docker-archive", format: Format::DOCKER_ARCHIVE, noun: "a docker-archive", ops: &docker::OPS },
    Transport { name: "docker-dir", format: Format::DOCKER_DIR, noun: "a docker-dir", ops: &docker::OPS },
    Transport { name: "oci", format: Format::OCI, noun: "an oci layout", ops: &oci::OPS },
    Transport { name: "oci-archive", format: Format::OCI_ARCHIVE, noun: "an oci-archive", ops: &oci::OPS },
    Transport { name: "dir", format: Format::DIR, noun: "a dir layout", ops: &dir::OPS },
];

/// The names of every transport, for messages: "a, b, c and d".
///
/// ```
/// assert_eq!(
///     dockhand::transport_names(),
///     "docker-archive, docker-dir, oci, oci-archive and dir"
/// );
/// ```
pub fn transport_names() -> String {
    let names: Vec<&str> = TRANSPORTS.iter().map(|t| t.name).collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => names.join(""),
    }
}

fn layout_ops(layout: Layout) -> &'static LayoutOps {
    TRANSPORTS
        .iter()
        .find(|t| t.format.layout == layout)
        .map(|t| t.ops)
        .expect("every layout has a transport")
}

/// Reads every image of a layout from a tree, adding warnings.
pub(crate) type ReadLayout = fn(&Meta, &ReadOptions, &mut Vec<String>) -> Result<Vec<Image>>;

/// Writes images as a layout into a tree; returns warnings.
pub(crate) type WriteLayout =
    fn(&[Image], &mut dyn TreeWriter, &WriteOptions, &dyn Progress) -> Result<Vec<String>>;

/// What a layout module provides: how to read it from a tree and write it into one.
pub(crate) struct LayoutOps {
    /// Whether it holds several images.
    pub holds_many: bool,
    /// Bare names (`1.0`, as in `oci:DIR:1.0`) are ref names here, not tags.
    pub bare_names_are_ref_names: bool,
    /// Its writer takes a [`DockerLayout`].
    pub takes_docker_layout: bool,
    /// Its writer can compress layers (`--layer-compression gzip|zstd`).
    pub compresses_layers: bool,
    /// Read every image the tree holds.
    pub read: ReadLayout,
    /// Write `images` into a tree; returns warnings.
    pub write: WriteLayout,
    /// How an existing layout of this kind is added to, when it can be.
    pub append: Option<AppendSpec>,
}

/// Options for reading a source.
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
    pub registry: crate::registry::RegistryOptions,
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
    fn wanted_platform(&self) -> Platform {
        self.platform.clone().unwrap_or_else(Platform::host)
    }
}

/// Options for writing.
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
    /// Every platform the source's multi-platform indexes list, present or absent.
    pub platforms: Vec<crate::model::image::ListedPlatform>,
    tree: Box<dyn FileTree>,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("input", &self.tree.name())
            .field("format", &self.format)
            .field("images", &self.images.len())
            .field("warnings", &self.warnings)
            .finish()
    }
}

impl ImageSource for Source {
    fn input(&self) -> &str {
        self.tree.name()
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
    /// Detect the layout of `tree` and read its images.
    pub fn read(tree: Box<dyn FileTree>, options: &ReadOptions) -> Result<Source> {
        let (format, images, warnings, platforms) = {
            let meta = Meta::new(&*tree);
            let mut warnings = Vec::new();
            let (format, images) = read_with(&meta, options, &mut warnings)?;
            let mut all = meta.warnings.take();
            all.append(&mut warnings);
            (format, images, tidy_warnings(all), meta.platforms.take())
        };
        Ok(Source {
            format,
            images,
            warnings,
            platforms,
            tree,
        })
    }

    /// Read a registry repository presented as a tree (an OCI layout, or a `dir:`
    /// layout for a schema 1 manifest).
    pub(crate) fn read_registry(tree: Box<dyn FileTree>, options: &ReadOptions) -> Result<Source> {
        let options = ReadOptions {
            format: None,
            ..options.clone()
        };
        let mut source = Source::read(tree, &options)?;
        source.format = Format::REGISTRY;
        Ok(source)
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
        self.tree.finished()
    }
}

/// Open and read the input at `path` (`-` for stdin), in the format `options.format`
/// names or the one detected. Every error names the input.
pub(crate) fn open(path: &str, options: &ReadOptions) -> Result<Source> {
    if crate::registry::is_registry(path) {
        return crate::registry::open_source(path, options);
    }
    // docker-daemon: hook.
    if let Some(text) = path.strip_prefix(crate::daemon::PREFIX) {
        return crate::daemon::open_source(&crate::daemon::parse_reference(text, false)?, options);
    }
    let name = if path == "-" { "stdin" } else { path };
    let input =
        open_input_spooling_in(path, options.spool_dir.as_deref()).map_err(|e| e.in_input(name))?;
    Source::read(input.tree, options).map_err(|e| e.in_input(name))
}

fn read_with(
    meta: &Meta,
    options: &ReadOptions,
    warnings: &mut Vec<String>,
) -> Result<(Format, Vec<Image>)> {
    let tree = meta.tree;
    let container = if tree.is_dir() {
        Container::Directory
    } else {
        Container::Tar
    };
    let mut layout = detect(meta)?;
    if let Some(wanted) = options.format {
        layout = check_forced(tree, layout, wanted)?;
    }
    let format = Format::new(layout, container);
    let images = (format.ops().read)(meta, options, warnings)?;
    if images.is_empty() {
        return Err(Error::NotAnImage {
            file: String::new(),
            reason: "it lists no images".into(),
        });
    }
    Ok((format, images))
}

/// Where images are written: a layout in a container, committed atomically.
///
/// ```
/// use dockhand::{create_sink, open_source, Format, ImageSink, NoProgress, SinkOptions};
/// # use dockhand::{Location, ReadOptions};
/// # let input = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/docker-save-basic/input.tar");
/// let source = open_source(&Location::parse(input)?, &ReadOptions::default())?;
/// # let tmp = tempfile::tempdir().unwrap();
/// # let dst = tmp.path().join("image.tar");
///
/// let options = SinkOptions::default();
/// let mut sink = create_sink(dst.to_str().unwrap(), Format::OCI_ARCHIVE, &options)?;
/// sink.put_images(&source.images, &NoProgress)?;
/// drop(sink); // not committed: the destination stays absent, the staging is removed
/// assert!(!dst.exists());
/// assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
/// # Ok::<(), dockhand::Error>(())
/// ```
pub trait ImageSink {
    /// Write `images`: blobs first, each verified as it streams and hashed as it is
    /// written, then the documents that name them, telling `progress` as layers go.
    /// Returns warnings.
    fn put_images(&mut self, images: &[Image], progress: &dyn Progress) -> Result<Vec<String>>;
    /// Make everything written visible at the destination at once. A sink dropped
    /// without committing leaves the destination as it was.
    fn commit(self: Box<Self>) -> Result<()>;
    /// How the destination is written (`None` for a stream), as decided before
    /// anything was written.
    fn plan(&self) -> Option<Plan> {
        None
    }
    /// [`ImageSink::commit`], and how the destination was written in the end: the
    /// [`plan`](ImageSink::plan), or [`Plan::AddToOciLayout`] when a new OCI layout
    /// found that concurrent runs had created one at its destination meanwhile and
    /// added its images to that.
    ///
    /// ```
    /// use dockhand::{create_sink, open_source, Format, ImageSink, NoProgress, Plan};
    /// # use dockhand::{Location, ReadOptions, SinkOptions};
    /// # let input = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/docker-save-multi/input.tar");
    /// let source = open_source(&Location::parse(input)?, &ReadOptions::default())?;
    /// # let tmp = tempfile::tempdir().unwrap();
    /// let dst = tmp.path().join("layout");
    /// let dst = dst.to_str().unwrap();
    ///
    /// // Two runs plan a new layout; the second finds the first's there when it commits.
    /// let mut first = create_sink(dst, Format::OCI, &SinkOptions::default())?;
    /// let mut second = create_sink(dst, Format::OCI, &SinkOptions::default())?;
    /// first.put_images(&source.images[..1], &NoProgress)?;
    /// second.put_images(&source.images[1..2], &NoProgress)?;
    /// assert_eq!(first.commit_with_plan()?, Some(Plan::Create));
    /// assert_eq!(second.commit_with_plan()?, Some(Plan::AddToOciLayout));
    /// # Ok::<(), dockhand::Error>(())
    /// ```
    fn commit_with_plan(self: Box<Self>) -> Result<Option<Plan>> {
        let plan = self.plan();
        self.commit().map(|()| plan)
    }
    /// Where a piped input should spool its big entries (see [`ReadOptions::spool_dir`]).
    fn spool_dir(&self) -> Option<PathBuf> {
        None
    }
}

/// Options for creating a sink.
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
    pub registry: crate::registry::RegistryOptions,
    /// How many layers a directory output writes at once (`None`: one per core); a
    /// registry source asks for its `--jobs`.
    pub jobs: Option<usize>,
}

/// A layout written into a tree (a tar stream or file, a staging directory, an
/// existing layout added to).
struct LayoutSink {
    ops: &'static LayoutOps,
    writer: Box<dyn TreeWriter>,
    options: WriteOptions,
    plan: Option<Plan>,
}

impl ImageSink for LayoutSink {
    fn put_images(&mut self, images: &[Image], progress: &dyn Progress) -> Result<Vec<String>> {
        (self.ops.write)(images, &mut *self.writer, &self.options, progress)
    }
    fn commit(self: Box<Self>) -> Result<()> {
        self.commit_with_plan().map(drop)
    }
    fn plan(&self) -> Option<Plan> {
        self.plan
    }
    fn commit_with_plan(self: Box<Self>) -> Result<Option<Plan>> {
        Ok(match self.writer.commit()? {
            Committed::AsPlanned => self.plan,
            Committed::AddedToAppearedLayout => Some(Plan::AddToOciLayout),
        })
    }
    fn spool_dir(&self) -> Option<PathBuf> {
        self.writer.staging_dir().map(Path::to_path_buf)
    }
}

/// Create a sink writing `format` at `path` (`-` for stdout), after deciding what the
/// destination allows (the crate docs' `# Security` section says what).
///
/// ```
/// use dockhand::{create_sink, open_source, Format, Location, NoProgress, ReadOptions};
/// use dockhand::{ImageSink, SinkOptions};
///
/// let input = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/docker-save-multi/input.tar");
/// let source = open_source(&Location::parse(input)?, &ReadOptions::default())?;
/// let out = tempfile::tempdir().unwrap();
/// let dir = out.path().join("one");
/// let mut sink = create_sink(dir.to_str().unwrap(), Format::DIR, &SinkOptions::default())?;
/// sink.put_images(&source.images[1..2], &NoProgress)?;
/// assert!(!dir.exists()); // nothing appears before the commit
/// sink.commit()?;
/// assert!(dir.join("manifest.json").is_file());
/// # Ok::<(), dockhand::Error>(())
/// ```
pub fn create_sink(
    path: &str,
    format: Format,
    options: &SinkOptions,
) -> Result<Box<dyn ImageSink>> {
    if format.container == Container::Registry || crate::registry::is_registry(path) {
        return crate::registry::create_sink(path, &options.write, &options.registry);
    }
    // docker-daemon: hook.
    if let Some(text) = path.strip_prefix(crate::daemon::PREFIX) {
        return crate::daemon::create_sink(&crate::daemon::parse_reference(text, true)?, options);
    }
    let ops = format.ops();
    if options.write.docker_layout.is_some() && !ops.takes_docker_layout {
        return Err(Error::Usage(format!(
            "--docker-layout applies to docker-archive and docker-dir outputs, not {}",
            format.name()
        )));
    }
    if options.write.layer_compression.target().is_some() && !ops.compresses_layers {
        return Err(Error::Usage(format!(
            "{} holds uncompressed layers (as docker save writes them); --layer-compression {} applies to OCI and dir outputs",
            format.name(),
            options.write.layer_compression
        )));
    }
    options
        .write
        .layer_compression
        .level(options.write.compression_level)?;
    if path == "-" {
        if !format.is_tar() {
            return Err(Error::Usage(format!(
                "{} is a directory format; it cannot be written to stdout",
                format.name()
            )));
        }
        // Write to the descriptor directly: std's stdout is line-buffered, which would
        // scan every byte of the archive for newlines.
        let fd = std::os::fd::AsFd::as_fd(&std::io::stdout())
            .try_clone_to_owned()
            .map_err(|e| Error::io("opening stdout", e))?;
        let writer = TarStreamWriter::new(
            std::io::BufWriter::with_capacity(1 << 20, std::fs::File::from(fd)),
            "stdout",
        );
        return Ok(Box::new(LayoutSink {
            ops,
            writer: Box::new(writer),
            options: options.write.clone(),
            plan: None,
        }));
    }
    let dest = Path::new(path);
    let output = match format.container {
        Container::Tar => Output::File,
        Container::Directory | Container::Registry | Container::Daemon => Output::Directory {
            appendable: ops.append.is_some(),
        },
    };
    let plan = destination::plan(dest, output, options.force, options.source.as_deref())?;
    let writer: Box<dyn TreeWriter> = match (plan, &ops.append, format.container) {
        (Plan::AddToOciLayout, Some(append), _) => {
            (append.check)(dest).map_err(|reason| destination::not_addable(dest, &reason))?;
            Box::new(AppendWriter::open(
                dest,
                append.index,
                append.keep_existing,
                append.merge,
            )?)
        }
        (plan, _, Container::Tar) => Box::new(TarFileWriter::create(dest, plan, options.force)?),
        (plan, append, _) => {
            let mut writer = DirWriter::create(dest, plan)?.with_force(options.force);
            if let Some(append) = append {
                writer = writer.adding_to_one_that_appears(append);
            }
            Box::new(match options.jobs {
                Some(jobs) => writer.with_jobs(jobs),
                None => writer,
            })
        }
    };
    Ok(Box::new(LayoutSink {
        ops,
        writer,
        options: options.write.clone(),
        plan: Some(plan),
    }))
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
pub(crate) fn keep_platform(images: Vec<Image>, options: &ReadOptions) -> Result<Vec<Image>> {
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
        return Err(no_platform(options, &held));
    }
    Ok(kept)
}

/// The error for a source that holds no image of the wanted platform.
pub(crate) fn no_platform(options: &ReadOptions, held: &[Platform]) -> Error {
    let wanted = options.wanted_platform();
    if options.platform.is_some() {
        return Error::Selection(format!(
            "no image for {}; the source holds {}: pick one with --platform",
            shown(&wanted.to_string()),
            platform_list(held)
        ));
    }
    Error::Selection(format!(
        "no image for this machine's platform {wanted} (choose one with --platform); the source holds {}",
        platform_list(held)
    ))
}

/// Distinct platforms, escaped, in the order first seen; at most 16 named.
pub(crate) fn platform_list(held: &[Platform]) -> String {
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

/// Names a root filesystem has at its top and an image archive never has.
const ROOTFS_NAMES: &[&str] = &[
    "bin", "etc", "usr", "lib", "var", "sbin", "root", "home", "dev", "proc", "tmp", "opt",
];

/// Write `images` in `layout` as one tar stream into `out`: what an `*-archive`
/// format holds (for a layout that has no tar form, the tree it would have in a
/// directory, packed). Returns `out` and the writer's warnings.
///
/// ```
/// use dockhand::{write_tar, Layout, WriteOptions};
///
/// // No image: an empty OCI layout (oci-layout and index.json) in a tar.
/// let (tar, _) = write_tar(&[], Layout::Oci, &WriteOptions::default(), Vec::new())?;
/// assert!(tar.len() >= 1024);
/// # Ok::<(), dockhand::Error>(())
/// ```
pub fn write_tar<W: std::io::Write>(
    images: &[Image],
    layout: Layout,
    options: &WriteOptions,
    out: W,
) -> Result<(W, Vec<String>)> {
    let mut writer = TarStreamWriter::new(out, "the output");
    let warnings = (layout_ops(layout).write)(images, &mut writer, options, &NoProgress)?;
    Ok((writer.finish()?, warnings))
}

/// Which layout `meta`'s tree holds.
fn detect(meta: &Meta) -> Result<Layout> {
    let tree = meta.tree;
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
            serde_json::Value::Array(_) => Ok(Layout::DockerSave),
            serde_json::Value::Object(ref o) if o.contains_key("schemaVersion") => Ok(Layout::Dir),
            serde_json::Value::Object(ref o) if o.is_empty() && !tree.exists("index.json") => Err(
                Error::malformed("manifest.json", "is an empty object, not a list of images"),
            ),
            _ if tree.exists("index.json") => Ok(Layout::Oci),
            _ => Err(Error::malformed(
                "manifest.json",
                "is neither a docker-save image list nor an image manifest",
            )),
        };
    }
    if tree.exists("index.json") || tree.exists("oci-layout") {
        return Ok(Layout::Oci);
    }
    if tree.exists("repositories") || docker::has_v1_layers(tree) {
        return Ok(Layout::DockerSave);
    }
    let top = tree.top_level();
    let rootfs: Vec<&str> = top
        .iter()
        .map(String::as_str)
        .filter(|n| ROOTFS_NAMES.contains(n) || *n == ".dockerenv")
        .collect();
    let reason = if top.is_empty() {
        "it has no entries".to_string()
    } else if rootfs.len() >= 2 || rootfs.contains(&".dockerenv") {
        // `docker export` writes the container's root filesystem, `.dockerenv` included.
        format!(
            "it is a container filesystem, not an image (a root filesystem with {} at its top, as `docker export` or a single layer holds): use `docker save IMAGE` to get an image archive, or `docker import` this file first",
            rootfs.iter().take(5).copied().collect::<Vec<_>>().join(", ")
        )
    } else {
        format!(
            "no manifest.json, index.json, oci-layout or repositories found (top-level entries: {}); {WHAT_DOCKHAND_READS}",
            top.iter().take(8).map(|n| shown(n)).collect::<Vec<_>>().join(", ")
        )
    };
    Err(Error::NotAnImage {
        file: String::new(),
        reason,
    })
}

/// Check that a forced format (`--from`, a transport prefix) fits both the layout found
/// and its container (a tar or a directory); the layout to read it as.
fn check_forced(tree: &dyn FileTree, detected: Layout, wanted: Format) -> Result<Layout> {
    let container = if tree.is_dir() {
        Container::Directory
    } else {
        Container::Tar
    };
    // A Docker >= 25 save is an OCI layout too.
    let hybrid = detected == Layout::DockerSave && tree.exists("index.json");
    let layout_fits = detected == wanted.layout || (hybrid && wanted.layout == Layout::Oci);
    if layout_fits && wanted.container == container {
        return Ok(wanted.layout);
    }
    let natural = Format::new(detected, container);
    let what = if hybrid {
        format!(
            "{} (also {})",
            noun(natural),
            noun(Format::new(Layout::Oci, container))
        )
    } else {
        noun(natural).to_string()
    };
    // What would read it: the wanted layout in this container, else what was found.
    let suggestion = if layout_fits {
        Format::new(wanted.layout, container).transport()
    } else {
        natural.transport()
    };
    let advice = match suggestion {
        Some(t) => format!("use --from {} or leave --from out", t.name),
        None => "leave --from out".to_string(),
    };
    let container_noun = |c: Container| match c {
        Container::Directory => "a directory",
        Container::Tar => "a tar file",
        Container::Registry => "a registry",
        Container::Daemon => "a Docker daemon",
    };
    Err(Error::Selection(format!(
        "is {what} ({}), not {} ({}); {advice}",
        container_noun(container),
        wanted.name(),
        container_noun(wanted.container)
    )))
}

/// What an input may be, for messages about one that is none of it.
pub(crate) const WHAT_DOCKHAND_READS: &str = "dockhand reads docker save and OCI archives \
     (tar files, also gzip, zstd, xz or bzip2-compressed), image layout directories \
     (OCI, docker save, dir:) and docker:// registries";

/// A format as a noun for messages.
fn noun(format: Format) -> &'static str {
    format.transport().map_or("an image layout", |t| t.noun)
}

/// Reading the repository's fixtures through the library, for each format's tests.
#[cfg(test)]
pub(crate) mod fixture_check {
    use std::path::Path;

    use serde_json::Value;

    use super::{ReadOptions, Source};
    use crate::container::open_input;
    use crate::inspect::{inspect_json, write_json};

    /// Read every fixture in `names` with the library and compare what it finds (images,
    /// tags, config digests, platforms, layers with their digests and diff_ids) with the
    /// fixture's expected.json, which fixtures/expected.py made from the real tools'
    /// reports. Fails once, naming every fixture that differs and how.
    pub(crate) fn check_all(names: &[&str]) {
        assert!(!names.is_empty());
        let failures: Vec<String> = names
            .iter()
            .filter_map(|name| check(name).err().map(|e| format!("{name}: {e}")))
            .collect();
        assert!(
            failures.is_empty(),
            "{} of {} fixtures read differently:\n{}",
            failures.len(),
            names.len(),
            failures.join("\n")
        );
    }

    fn check(name: &str) -> Result<(), String> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures")
            .join(name);
        let input = std::fs::read_dir(&dir)
            .map_err(|e| e.to_string())?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("input"))
            })
            .ok_or("no input")?;
        let expected: Value = serde_json::from_slice(
            &std::fs::read(dir.join("expected.json")).map_err(|e| e.to_string())?,
        )
        .map_err(|e| e.to_string())?;
        let tree = open_input(input.to_str().ok_or("path")?).map_err(|e| e.to_string())?;
        let source = Source::read(tree.tree, &ReadOptions::default()).map_err(|e| e.to_string())?;
        let all: Vec<usize> = (0..source.images.len()).collect();
        let mut out = Vec::new();
        write_json(&inspect_json(&source, &all), &mut out).map_err(|e| e.to_string())?;
        let mut got: Value = serde_json::from_slice(&out).map_err(|e| e.to_string())?;
        // `chain_id` was added to the layers after expected.json was fixed; it is
        // checked by tests/inspect_rich.rs.
        for image in got["images"].as_array_mut().into_iter().flatten() {
            for layer in image["layers"].as_array_mut().into_iter().flatten() {
                layer.as_object_mut().map(|l| l.remove("chain_id"));
            }
        }
        if got["format"] != expected["format"] {
            return Err(format!(
                "format {} != {}",
                got["format"], expected["format"]
            ));
        }
        let (got, want) = (&got["images"], &expected["images"]);
        let count = |v: &Value| v.as_array().map_or(0, Vec::len);
        if count(got) != count(want) {
            return Err(format!("{} images, expected {}", count(got), count(want)));
        }
        for (n, (g, w)) in got
            .as_array()
            .into_iter()
            .flatten()
            .zip(want.as_array().into_iter().flatten())
            .enumerate()
        {
            for field in ["tags", "config", "manifest", "platform", "layers"] {
                if g[field] != w[field] {
                    return Err(format!("image {n}: {field} {} != {}", g[field], w[field]));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::context::tests::Shadowed;
    use super::*;
    use crate::container::DirTree;
    use crate::model::digest::Digest;

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
}
