//! Formats: which files and JSON documents make up each layout (`docker/`, `oci/`,
//! `dir/`), and the one table that maps transport names to them. Readers turn a
//! [`FileTree`] into a [`Source`]; writers ([`blobs::LayoutWriter`]) take the blobs,
//! manifests and names of images into a [`crate::container::TreeWriter`], as an
//! [`crate::sink::ImageDestination`].
//!
//! Each local transport (a layout in a tar or a directory) is a [`LocalTransport`]: a
//! name, the pair, and the layout module that reads and writes it. Adding a layout is
//! one module (its reader and writer, as a `LayoutOps`) and one line per container in
//! [`LOCAL`].

pub(crate) mod blobs;
pub(crate) use docker::DockerWriter;
mod context;
mod dir;
pub(crate) use dir::{declares_schema1, schema1_payload};
mod docker;
mod manifest;
pub(crate) mod oci;
mod v1_config;

pub use context::{MAX_LAYERS_TOTAL, MAX_METADATA_TOTAL};

use context::Meta;
pub(crate) use manifest::{blob_path, BlobStore};

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use crate::container::{
    open_input_spooling_in, read_limited, AppendSpec, AppendWriter, DirWriter, FileTree,
    TarFileWriter, TarStreamWriter, TreeWriter,
};
use crate::destination::{self, Output, Plan};
use crate::error::Setting;
use crate::error::{Error, Result, WHAT_DOCKHAND_READS};
use crate::model::digest::Digest;
use crate::model::image::{parse_json, Descriptor, Image, ListedPlatform, Platform, MAX_JSON_SIZE};
use crate::model::media;
use crate::progress::NoProgress;
use crate::sink::{ImageSink, LayerPolicy};
use crate::text::shown;
use crate::transport::{
    DockerLayout, Format, Location, ManifestBytes, ReadOptions, SinkOptions, Source, Transport,
    WriteOptions,
};
use blobs::{LayoutWriter, TreeDestination};
pub(crate) use oci::referrer_descriptor;

/// Most warnings kept for one input; identical ones are shown once.
pub const MAX_WARNINGS: usize = 100;

/// How a local format lays images out: which files and documents it has.
///
/// ```
/// use dockhand::{write_tar, Layout, WriteOptions};
///
/// // The same images as a docker-save tar or as an OCI layout in a tar.
/// let (oci, _) = write_tar(&[], Layout::Oci, &WriteOptions::default(), Vec::new())?;
/// assert!(oci.windows(10).any(|name| name == b"oci-layout"));
/// # Ok::<(), dockhand::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Layout {
    /// `docker save`: manifest.json (or, before Docker 1.10, `repositories` and v1
    /// layer directories).
    DockerSave,
    /// An OCI image layout: `oci-layout`, `index.json`, `blobs/`.
    Oci,
    /// The containers/image `dir:` layout.
    Dir,
}

/// What holds a local layout's files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Container {
    /// A tar file or stream.
    Tar,
    /// A directory.
    Directory,
}

impl Format {
    /// `docker save` output in a tar.
    pub const DOCKER_ARCHIVE: Format = Format::of(&LOCAL[0]);
    /// A docker-save tree in a directory.
    pub const DOCKER_DIR: Format = Format::of(&LOCAL[1]);
    /// An OCI image layout in a directory.
    pub const OCI: Format = Format::of(&LOCAL[2]);
    /// An OCI image layout in a tar.
    pub const OCI_ARCHIVE: Format = Format::of(&LOCAL[3]);
    /// The containers/image `dir:` layout.
    pub const DIR: Format = Format::of(&LOCAL[4]);

    /// The format a destination gets when nothing names one: a docker-archive for
    /// stdout and `*.tar`, an OCI layout directory otherwise.
    pub fn for_destination(path: &str) -> Format {
        if path == "-" || path.ends_with(".tar") {
            Format::DOCKER_ARCHIVE
        } else {
            Format::OCI
        }
    }
}

/// A local transport: a layout in a container, and the layout module that reads and
/// writes it.
pub(crate) struct LocalTransport {
    /// The name on the command line (`docker-archive:x.tar`, `--to oci`).
    name: &'static str,
    /// How a location is written, for help texts.
    syntax: &'static str,
    layout: Layout,
    container: Container,
    /// The format as a noun, for messages.
    noun: &'static str,
    /// What reads and writes the layout.
    ops: &'static LayoutOps,
}

/// The local transports: a name, a layout in a container, and the module that reads
/// and writes that layout. Detection finds a layout in a tar or a directory, and the
/// line with that pair names the result.
#[rustfmt::skip]
pub(crate) static LOCAL: [LocalTransport; 5] = [
    LocalTransport { name: "docker-archive", syntax: "docker-archive:PATH[:NAME:TAG]", layout: Layout::DockerSave, container: Container::Tar, noun: "a docker-archive", ops: &docker::OPS },
    LocalTransport { name: "docker-dir", syntax: "docker-dir:DIR[:NAME:TAG]", layout: Layout::DockerSave, container: Container::Directory, noun: "a docker-dir", ops: &docker::OPS },
    LocalTransport { name: "oci", syntax: "oci:DIR[:REF]", layout: Layout::Oci, container: Container::Directory, noun: "an oci layout", ops: &oci::OPS },
    LocalTransport { name: "oci-archive", syntax: "oci-archive:PATH[:REF]", layout: Layout::Oci, container: Container::Tar, noun: "an oci-archive", ops: &oci::OPS },
    LocalTransport { name: "dir", syntax: "dir:DIR", layout: Layout::Dir, container: Container::Directory, noun: "a dir layout", ops: &dir::OPS },
];

impl LocalTransport {
    /// The local transport of `layout` in `container`, if there is one (a `dir:`
    /// layout has no tar form).
    fn find(layout: Layout, container: Container) -> Option<&'static LocalTransport> {
        LOCAL
            .iter()
            .find(|t| t.layout == layout && t.container == container)
    }

    /// The local transport of `layout` in `container`, or in the one it has: what a
    /// layout found is read as.
    fn of(layout: Layout, container: Container) -> &'static LocalTransport {
        LocalTransport::find(layout, container)
            .or_else(|| LOCAL.iter().find(|t| t.layout == layout))
            .expect("every layout has a transport")
    }

    /// The local transport `format` names, if it is one.
    fn named(format: Format) -> Option<&'static LocalTransport> {
        LOCAL.iter().find(|t| t.name == format.name())
    }

    fn format(&'static self) -> Format {
        Format::of(self)
    }

    /// This row of [`LOCAL`], as the `'static` value a [`Format`] holds.
    fn row(&self) -> &'static LocalTransport {
        LOCAL
            .iter()
            .find(|t| t.name == self.name)
            .expect("a local transport is a row of LOCAL")
    }
}

impl Transport for LocalTransport {
    fn name(&self) -> &'static str {
        self.name
    }
    fn noun(&self) -> &'static str {
        self.noun
    }
    fn syntax(&self) -> &'static str {
        self.syntax
    }
    fn holds_many(&self) -> bool {
        self.ops.holds_many
    }
    fn keeps_indexes(&self) -> bool {
        self.layout == Layout::Oci
    }
    fn holds_referrers(&self, options: &WriteOptions) -> bool {
        // The OCI layout, and the OCI part of a Docker >= 25 hybrid.
        self.layout == Layout::Oci
            || (self.ops.takes_docker_layout
                && options.docker_layout.unwrap_or_default() == DockerLayout::Hybrid)
    }
    fn holds_annotations(&self, options: &WriteOptions) -> bool {
        // A `dir:` layout keeps the manifest built, unless it is a Docker v2 one.
        self.holds_referrers(options)
            || (self.layout == Layout::Dir
                && options.manifest_format != Some(crate::sink::ManifestFormat::DockerV2))
    }
    fn bare_names_are_ref_names(&self) -> bool {
        self.ops.bare_names_are_ref_names
    }
    fn writes_in_order(&self) -> bool {
        self.container == Container::Tar
    }
    fn is_local(&self) -> bool {
        true
    }
    fn open_source(&self, location: &Location, options: &ReadOptions) -> Result<Source> {
        let options = ReadOptions {
            format: Some(self.row().format()),
            ..options.clone()
        };
        open(&location.path, &options)
    }
    fn create_sink(
        &self,
        location: &Location,
        options: &SinkOptions,
    ) -> Result<ImageSink<'static>> {
        create_local_sink(&location.path, self.row(), options)
    }
}

fn layout_ops(layout: Layout) -> &'static LayoutOps {
    LocalTransport::of(layout, Container::Tar).ops
}

/// The container `tree` is.
fn container_of(tree: &dyn FileTree) -> Container {
    if tree.is_dir() {
        Container::Directory
    } else {
        Container::Tar
    }
}

/// Reads every image of a layout from a tree, adding warnings.
pub(crate) type ReadLayout = fn(&Meta, &ReadOptions, &mut Vec<String>) -> Result<Vec<Image>>;

/// Makes the writer of a layout, and how it writes layers, for `WriteOptions`
/// (checked by `create_sink`).
pub(crate) type NewWriter = fn(&WriteOptions) -> Result<(Box<dyn LayoutWriter>, LayerPolicy)>;

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
    /// The writer of the layout.
    pub writer: NewWriter,
    /// How an existing layout of this kind is added to, when it can be.
    pub append: Option<AppendSpec>,
    /// Where the layout keeps a manifest by digest, when it keeps them so (an OCI
    /// layout's blobs, a `dir:` list's instances): a source answers those it did not
    /// read from there.
    pub manifest_path: Option<fn(&Digest) -> String>,
}

/// Detect the layout of `tree` and read its images.
pub fn read_tree(tree: Box<dyn FileTree>, options: &ReadOptions) -> Result<Source> {
    read_shared_tree(Arc::from(tree), options).map(|read| read.source)
}

/// A local input read to be edited in place (a tag added, an image removed): its
/// images as [`read_tree`] reads them, and for an OCI layout (not the OCI part of a
/// docker-save archive, whose image list is manifest.json) the manifest each top-level
/// `index.json` entry resolved to, in the index's order.
pub(crate) struct ReadForEdit {
    /// The images, as `inspect` numbers them.
    pub source: Source,
    /// Which layout was found.
    pub layout: Layout,
    /// Per `index.json` entry of an OCI layout, the image manifest it names.
    pub roots: Vec<Option<Digest>>,
}

/// Read `tree` as [`read_tree`] does, keeping what an edit of it in place needs.
pub(crate) fn read_shared_tree(
    tree: Arc<dyn FileTree>,
    options: &ReadOptions,
) -> Result<ReadForEdit> {
    let meta = Meta::new(&*tree);
    let mut warnings = Vec::new();
    let (local, images) = read_with(&meta, options, &mut warnings)?;
    let roots = match local.layout {
        Layout::Oci => meta.roots.take(),
        _ => Vec::new(),
    };
    let read = finish(meta, images, warnings)?;
    let source = read
        .into_source(local.format(), "")
        .in_tree(Arc::clone(&tree));
    // An OCI layout (directory or archive), and the OCI part of a Docker >= 25 hybrid,
    // are the local layouts that hold referrers.
    let source = if local.layout == Layout::Oci || tree.exists("index.json") {
        let blobs = Arc::clone(&tree);
        let source = source.answering_blobs(Box::new(move |descriptor| {
            Ok(blobs
                .find(&blob_path(&descriptor.digest))
                .map_err(|e| e.in_input(blobs.name()))?
                .map(|file| file.blob))
        }));
        let tree = Arc::clone(&tree);
        let map = std::sync::OnceLock::new();
        source.answering_referrers(Box::new(move |digest| {
            let map =
                map.get_or_init(|| layout_referrers(&*tree).map_err(|e| e.in_input(tree.name())));
            match map {
                Ok(map) => Ok(map.get(digest).cloned().unwrap_or_default()),
                Err(e) => Err(e.clone()),
            }
        }))
    } else {
        source
    };
    // The OCI part of a Docker >= 25 hybrid keeps manifests by digest too.
    let manifest_path = local.ops.manifest_path.or_else(|| {
        let hybrid = local.layout == Layout::DockerSave && tree.exists("index.json");
        hybrid.then_some(blob_path as fn(&Digest) -> String)
    });
    let source = match manifest_path {
        Some(path_of) => source.answering_manifests(Box::new(move |digest| {
            manifest_in_tree(&*tree, &path_of(digest), digest).map_err(|e| e.in_input(tree.name()))
        })),
        None => source,
    };
    Ok(ReadForEdit {
        source,
        layout: local.layout,
        roots,
    })
}

/// Every referrer an OCI layout holds, by the digest it refers to: the manifests its
/// `index.json` and nested indexes list whose `subject` names a digest, those whose
/// ref name is a cosign tag (`sha256-<hex>.sig`, `.att`, `.sbom`), and the BuildKit
/// attestation manifests of its indexes. Each manifest is read once (no layer is);
/// at most [`MAX_LAYERS_TOTAL`] index entries are walked, nested at most
/// [`crate::limits::MAX_JSON_DEPTH`] deep.
fn layout_referrers(
    tree: &dyn FileTree,
) -> Result<std::collections::HashMap<Digest, Vec<crate::referrers::Referrer>>> {
    use crate::referrers::{
        buildkit_attestations, cosign_tag, index_entries, referrer_of_manifest, ReferrerKind,
    };
    let mut map: std::collections::HashMap<Digest, Vec<crate::referrers::Referrer>> =
        Default::default();
    let Some(file) = tree.find("index.json")? else {
        return Ok(map);
    };
    let bytes = read_limited(file.open()?, MAX_JSON_SIZE, "index.json")?;
    let mut queue = vec![(bytes, "index.json".to_string(), 0usize)];
    let mut seen = HashSet::new();
    let mut walked = 0usize;
    while let Some((bytes, what, depth)) = queue.pop() {
        let entries = index_entries(&bytes, &what)?;
        for (descriptor, annotations) in entries {
            walked += 1;
            if walked > MAX_LAYERS_TOTAL {
                return Err(Error::malformed(
                    &what,
                    format!("the indexes list more than {MAX_LAYERS_TOTAL} manifests"),
                ));
            }
            if let Some(subject) = annotations
                .get("vnd.docker.reference.digest")
                .and_then(|d| Digest::parse(d).ok())
            {
                let found = buildkit_attestations(&bytes, &subject);
                if let Some(one) = found.into_iter().find(|r| r.descriptor == descriptor) {
                    map.entry(subject).or_default().push(one);
                }
            }
            if !seen.insert(descriptor.digest.clone()) {
                continue;
            }
            let path = blob_path(&descriptor.digest);
            let Some(found) = manifest_in_tree(tree, &path, &descriptor.digest)? else {
                continue;
            };
            let cosign = annotations
                .get("org.opencontainers.image.ref.name")
                .and_then(|name| cosign_tag(name));
            let kind = cosign
                .as_ref()
                .map_or(ReferrerKind::Referrer, |(_, kind)| *kind);
            // A manifest that is not one a referrer can be (the image reader says what
            // is wrong with it, if anything) refers to nothing.
            let Ok((referrer, subject)) = referrer_of_manifest(&found.bytes, kind, &path) else {
                continue;
            };
            if let Some((named, _)) = cosign {
                let mut tagged = referrer.clone();
                tagged.tag = annotations
                    .get("org.opencontainers.image.ref.name")
                    .cloned();
                map.entry(named).or_default().push(tagged);
            }
            if let Some(subject) = subject {
                map.entry(subject).or_default().push(referrer);
            }
            if media::is_index(&found.media_type) && depth < crate::model::image::MAX_JSON_DEPTH {
                queue.push((found.bytes.to_vec(), path, depth + 1));
            }
        }
    }
    Ok(map)
}

/// The manifest or index `digest` that `tree` holds at `path`, verified against it;
/// `None` when there is no such file or it is not a manifest.
fn manifest_in_tree(
    tree: &dyn FileTree,
    path: &str,
    digest: &Digest,
) -> Result<Option<ManifestBytes>> {
    let Some(file) = tree.find(path)? else {
        return Ok(None);
    };
    // No manifest is read that big (the readers refuse one): it is a layer.
    if file.size > MAX_JSON_SIZE {
        return Ok(None);
    }
    let bytes = read_limited(file.open()?, MAX_JSON_SIZE, &shown(&file.path))?;
    let actual = Digest::of(&bytes);
    if actual != *digest {
        return Err(Error::DigestMismatch {
            file: shown(&file.path),
            expected: digest.clone(),
            actual,
        });
    }
    let (media_type, versioned) = media::manifest_media_type(&bytes);
    Ok(versioned.then(|| ManifestBytes {
        bytes: Arc::new(bytes),
        media_type,
    }))
}

/// What an input without files (a registry) reads first: the document its reference
/// resolved to, already fetched and verified.
pub(crate) enum Root {
    /// A manifest or index, whose bytes the store holds under its digest.
    Oci(Descriptor),
    /// A Docker schema 1 manifest (its bytes), converted as the `dir:` reader does.
    Schema1(Arc<Vec<u8>>),
}

/// Read the images below `root`, whose blobs `store` holds, as the `format` input
/// named `input`; with the same limits, warnings and checks as a layout's.
pub(crate) fn read_from_store(
    format: Format,
    input: &str,
    root: &Root,
    store: &dyn BlobStore,
    options: &ReadOptions,
) -> Result<Source> {
    let meta = Meta::without_files(input);
    let mut warnings = Vec::new();
    let images = match root {
        Root::Oci(descriptor) => {
            oci::read_from_root(&meta, store, descriptor, input, options, &mut warnings)
        }
        Root::Schema1(bytes) => meta
            // Charged as a layout's manifest.json is.
            .charge(bytes.len() as u64, input)
            .and_then(|()| dir::read_schema1(&meta, store, bytes, &mut warnings))
            .and_then(|image| keep_platform(vec![image], options)),
    }?;
    Ok(finish(meta, images, warnings)?.into_source(format, input))
}

/// The images one input read, with what the reading had to say.
struct Read {
    images: Vec<Image>,
    warnings: Vec<String>,
    platforms: Vec<ListedPlatform>,
}

impl Read {
    fn into_source(self, format: Format, input: &str) -> Source {
        let mut source = Source::new(format, input, self.images);
        source.warnings = self.warnings;
        source.platforms = self.platforms;
        source
    }
}

/// The images read in `meta`, unless there are none; the reader's `warnings` after
/// the context's, tidied.
fn finish(meta: Meta, images: Vec<Image>, mut warnings: Vec<String>) -> Result<Read> {
    if images.is_empty() {
        return Err(Error::NotAnImage {
            file: String::new(),
            reason: "it lists no images".into(),
        });
    }
    let mut all = meta.warnings.take();
    all.append(&mut warnings);
    Ok(Read {
        images,
        warnings: tidy_warnings(all),
        platforms: meta.platforms.take(),
    })
}

/// Open and read the input at `path` (`-` for stdin), in the format `options.format`
/// names or the one detected. Every error names the input.
pub(crate) fn open(path: &str, options: &ReadOptions) -> Result<Source> {
    let name = if path == "-" { "stdin" } else { path };
    let input =
        open_input_spooling_in(path, options.spool_dir.as_deref()).map_err(|e| e.in_input(name))?;
    read_tree(input.tree, options).map_err(|e| e.in_input(name))
}

fn read_with(
    meta: &Meta,
    options: &ReadOptions,
    warnings: &mut Vec<String>,
) -> Result<(&'static LocalTransport, Vec<Image>)> {
    let tree = meta.tree;
    let mut layout = detect(meta)?;
    if let Some(wanted) = options.format.and_then(LocalTransport::named) {
        layout = check_forced(tree, layout, wanted)?;
    }
    let local = LocalTransport::of(layout, container_of(tree));
    let images = (local.ops.read)(meta, options, warnings)?;
    Ok((local, images))
}

/// Create a sink writing the local transport `local` at `path` (`-` for stdout),
/// after deciding what the destination allows (the crate docs' `# Security` section
/// says what).
fn create_local_sink(
    path: &str,
    local: &'static LocalTransport,
    options: &SinkOptions,
) -> Result<ImageSink<'static>> {
    let format = local.format();
    let ops = local.ops;
    if options.write.docker_layout.is_some() && !ops.takes_docker_layout {
        return Err(Error::Usage(format!(
            "{} applies to docker-archive and docker-dir outputs, not {}",
            Setting::DockerLayout,
            format.name()
        )));
    }
    if options.write.layer_compression.target().is_some() && !ops.compresses_layers {
        let compression = options.write.layer_compression;
        let (holder, instead, to) = if format.is_tar() {
            ("a tar", "an oci-archive", "oci-archive")
        } else {
            ("a directory", "an OCI layout", "oci")
        };
        return Err(Error::Usage(format!(
            "{} holds uncompressed layers (as docker save writes them); {} {compression} applies to OCI and dir outputs: for {compression} layers in {holder}, write {instead} ({} {to})",
            format.name(),
            Setting::LayerCompression,
            Setting::To,
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
        return layout_sink(ops, Box::new(writer), &options.write, None);
    }
    let dest = Path::new(path);
    let output = match local.container {
        Container::Tar => Output::File,
        Container::Directory => Output::Directory {
            appendable: ops.append.is_some(),
        },
    };
    let plan = destination::plan(dest, output, options.force, options.source.as_deref())?;
    let writer: Box<dyn TreeWriter> = match (plan, &ops.append, local.container) {
        (Plan::AddToOciLayout, Some(append), _) => {
            (append.check)(dest).map_err(|reason| destination::not_addable(dest, &reason))?;
            Box::new(AppendWriter::open(dest, append)?)
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
    layout_sink(ops, writer, &options.write, Some(plan))
}

/// The sink writing the layout of `ops` into `tree`, as `plan` decided.
fn layout_sink<'t>(
    ops: &LayoutOps,
    tree: Box<dyn TreeWriter + 't>,
    options: &WriteOptions,
    plan: Option<Plan>,
) -> Result<ImageSink<'t>> {
    let (layout, layers) = (ops.writer)(options)?;
    Ok(ImageSink::new(
        Box::new(TreeDestination::new(tree, layout, plan)),
        layers,
    ))
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
            "no image for {}; the source holds {}: pick one with {}",
            shown(&wanted.to_string()),
            platform_list(held),
            Setting::Platform
        ));
    }
    Error::Selection(format!(
        "no image for this machine's platform {wanted} (choose one with {}); the source holds {}",
        Setting::Platform,
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
    let mut out = out;
    let tree = TarStreamWriter::new(&mut out, "the output");
    let mut sink = layout_sink(layout_ops(layout), Box::new(tree), options, None)?;
    let warnings = sink.put_images(images, &NoProgress)?;
    sink.commit()?;
    Ok((out, warnings))
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
fn check_forced(
    tree: &dyn FileTree,
    detected: Layout,
    wanted: &'static LocalTransport,
) -> Result<Layout> {
    let container = container_of(tree);
    // A Docker >= 25 save is an OCI layout too.
    let hybrid = detected == Layout::DockerSave && tree.exists("index.json");
    let layout_fits = detected == wanted.layout || (hybrid && wanted.layout == Layout::Oci);
    if layout_fits && wanted.container == container {
        return Ok(wanted.layout);
    }
    let noun =
        |layout| LocalTransport::find(layout, container).map_or("an image layout", |t| t.noun);
    let what = if hybrid {
        format!("{} (also {})", noun(detected), noun(Layout::Oci))
    } else {
        noun(detected).to_string()
    };
    // What would read it: the wanted layout in this container, else what was found.
    let suggestion = if layout_fits {
        LocalTransport::find(wanted.layout, container)
    } else {
        LocalTransport::find(detected, container)
    };
    let advice = match suggestion {
        Some(t) => format!("use {} {} or leave {0} out", Setting::From, t.name),
        None => format!("leave {} out", Setting::From),
    };
    let container_noun = |c: Container| match c {
        Container::Directory => "a directory",
        Container::Tar => "a tar file",
    };
    Err(Error::Selection(format!(
        "is {what} ({}), not {} ({}); {advice}",
        container_noun(container),
        wanted.name,
        container_noun(wanted.container)
    )))
}

/// Reading the repository's fixtures through the library, for each format's tests.
#[cfg(test)]
pub(crate) mod fixture_check {
    use std::path::Path;

    use serde_json::Value;

    use super::{read_tree, ReadOptions};
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
        let source = read_tree(tree.tree, &ReadOptions::default()).map_err(|e| e.to_string())?;
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
    use crate::transport::ImageSource;

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

    /// Reading down from a root descriptor through a blob store (as a registry does,
    /// with no index.json) gives each image its index.json entry gives in the layout.
    #[test]
    fn a_root_descriptor_reads_as_its_index_json_entry_does() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/skopeo-oci-multi/input");
        let options = ReadOptions::default();
        let layout = read_tree(Box::new(DirTree::new(&dir, "layout")), &options).unwrap();
        let tree = DirTree::new(&dir, "layout");
        let store = manifest::OciStore(&tree);
        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
        let facts = |image: &Image| {
            let layers: Vec<_> = image
                .layers
                .iter()
                .map(|l| (l.digest.clone(), l.path.clone()))
                .collect();
            (
                image.manifest.clone(),
                image.config.clone(),
                image.config_path.clone(),
                image.platform.clone(),
                layers,
            )
        };
        let entries = index["manifests"].as_array().unwrap();
        assert_eq!(entries.len(), 3);
        for entry in entries {
            let root = Root::Oci(Descriptor {
                media_type: entry["mediaType"].as_str().unwrap().into(),
                digest: Digest::parse(entry["digest"].as_str().unwrap()).unwrap(),
                size: entry["size"].as_u64().unwrap(),
            });
            let native = read_from_store(Format::OCI, "native", &root, &store, &options).unwrap();
            assert_eq!(native.input(), "native");
            assert!(native.warnings.is_empty(), "{:?}", native.warnings);
            let [image] = &native.images[..] else {
                panic!("{} images", native.images.len());
            };
            assert_eq!(&*image.input, "native");
            assert!(image.tags.is_empty() && image.ref_names.is_empty());
            let same = layout
                .images
                .iter()
                .find(|i| i.manifest == image.manifest)
                .expect("the layout lists the entry's image");
            assert_eq!(facts(image), facts(same));
        }
    }

    #[test]
    fn a_shadowed_manifest_json_with_other_content_is_named_in_a_warning() {
        let (_dir, tree) = save_with_shadow("last:1", "first:1");
        let source = read_tree(Box::new(tree), &ReadOptions::default()).unwrap();
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
        let source = read_tree(Box::new(tree), &ReadOptions::default()).unwrap();
        assert!(source.warnings.is_empty(), "{:?}", source.warnings);
    }
}
