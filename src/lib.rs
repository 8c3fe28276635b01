//! dockhand moves container images between the formats people hold them in: a
//! `docker save` tar (every variant Docker 1.x to 29, containerd, skopeo, kaniko and
//! BuildKit write), the same tree unpacked in a directory, an OCI image layout
//! (directory or tar) and the containers/image `dir:` layout.
//!
//! # Using the library
//!
//! One call converts, as the command line does ([`convert`]); or, step by step: open a
//! source ([`open_source`]), list and select its images ([`select`]), and write them to a
//! sink ([`create_sink`]), which appears at its destination only once committed.
//!
//! ```
//! use dockhand::{create_sink, open_source, Format, Location, NoProgress, ReadOptions};
//! use dockhand::{ImageSource, SinkOptions};
//!
//! # let image_tar = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/docker-save-multi/input.tar");
//! # let tmp = tempfile::tempdir().unwrap();
//! # let layout = tmp.path().join("layout");
//! # let layout = layout.to_str().unwrap();
//! let source = open_source(&Location::parse(image_tar)?, &ReadOptions::default())?;
//! for (n, image) in source.images().iter().enumerate() {
//!     println!("@{n} {} {}", image.config.digest, image.display_name());
//! }
//! let mut sink = create_sink(layout, Format::OCI, &SinkOptions::default())?;
//! sink.put_images(&source.images()[..1], &NoProgress)?;
//! sink.commit()?;
//! # Ok::<(), dockhand::Error>(())
//! ```
//!
//! Every layer read through the library is verified as it streams ([`open_layer`]);
//! [`inspect_json`] and [`verify`] are what the `inspect` and `verify` commands print.
//! A caller follows progress through a [`Progress`]; errors say which input they
//! concern ([`Error::input`]).
//!
//! # Design
//!
//! Every format is a *layout* (which files, which JSON: docker-save, OCI, `dir:`) in a
//! *container* (a tar file, a tar stream or a directory); one table maps each transport
//! name to the pair and to the module that reads and writes the layout. Containers index
//! a tar on disk by one pass over its headers and read it by offset; stdin and
//! compressed archives are decompressed once into an anonymous temp file and indexed in
//! the same pass. Readers produce [`Image`]s whose blobs sit behind the [`Blob`] trait;
//! every destination is an [`ImageDestination`] taking blobs, manifests and names (a
//! layout maps them to files of a tar stream, a tar file, a staging directory or an
//! existing layout added to; a registry to uploads), written through one pipeline,
//! [`ImageSink`]. The repository's ARCHITECTURE.md
//! has the module map and how to add a transport.
//!
//! # Invariants
//!
//! - Config bytes are copied verbatim, so the image ID (the config digest) never changes;
//!   only an edit ([`ImageEdit`]: `import`, `append`, `mutate`) makes a new config, on
//!   purpose, keeping every field it does not change.
//! - Every blob is verified as it streams: stored size and digest, and the uncompressed
//!   digest against the config's `rootfs.diff_ids`.
//! - Memory stays bounded whatever the layer size: data is streamed through fixed buffers.
//! - Outputs appear atomically: a staging directory or temp file next to the destination
//!   is renamed into place on success and removed on failure or interruption.
//! - Output is deterministic: the same input gives byte-identical files.
//!
//! # Security
//!
//! Inputs are untrusted: an archive can lie about sizes, paths, links, digests and
//! counts. Destinations are given by people and scripts, and can be anything.
//!
//! ## Destinations: what `--force` will and will not replace
//!
//! Decided before anything is read or written (what was decided is the [`Plan`] of a
//! [`ConvertReport`]):
//!
//! - **Never**, with or without `--force`, whatever they hold: `/`, the current
//!   directory and its parents, `$HOME` and its parents, the source itself, a
//!   directory that contains the source, and any path inside a source directory.
//! - **A directory output** fills an empty directory. With `--force` it replaces a
//!   directory that is recognisably an image layout dockhand reads (an OCI layout, a
//!   docker-save tree, a `dir:` layout) *and holds nothing but what such a layout
//!   holds*; names and file types are checked, nothing is read. Any other file or
//!   folder there (a README beside a layout, a project, a home directory) makes
//!   dockhand refuse with one line naming it. Without `--force`, an OCI output adds
//!   its images to an existing OCI layout (below); other layouts are refused.
//! - **A file output** (a tar) replaces, with `--force`, a regular file or a symlink
//!   (the link itself, never its target). A directory is never turned into a file,
//!   nor a file into a directory; a FIFO, socket or device node is never replaced
//!   (write to `-` and redirect instead).
//! - **Adding to an OCI layout** (without `--force`, as skopeo's `oci:DIR:REF`):
//!   blobs already there are reused only after their bytes hash to their name, the
//!   others are written beside their final name and renamed in, and the merged
//!   `index.json` is written last and renamed into place under an exclusive lock on
//!   the layout, so a reader sees the old index or the new one and two concurrent
//!   additions keep both. A ref name already in the index moves to the new image.
//!   After a failure the old index is untouched; blobs already added stay (nothing
//!   references them). Adding to the source layout itself is allowed, since it
//!   removes nothing. A new OCI layout that finds one created at its destination
//!   while it was written (runs creating one layout at once) is added to it the same
//!   way, its staged blobs renamed in, instead of failing.
//! - **Atomicity**: other outputs are built in `.<name>.dockhand-tmp-*` next to the
//!   destination and flushed with one syncfs(2). A new destination is renamed in with
//!   `renameat2(RENAME_NOREPLACE)`, so something that appears there meanwhile is kept
//!   ([`Error::DestinationAppeared`]) and of two runs writing one path only one
//!   succeeds (but for an OCI layout added to, above); a replaced directory is
//!   swapped in with `RENAME_EXCHANGE`, so the destination is whole at every instant.
//!   On an error, SIGINT, SIGTERM or SIGHUP the staging is removed ([`cleanup`]) and
//!   the destination is absent or exactly as it was. After SIGKILL nothing can run:
//!   the destination is still absent or intact, and a leftover
//!   `.<name>.dockhand-tmp-*` may be deleted. Outputs get the modes `cp` gives: 0666
//!   for files and 0777 for directories, less the umask.
//!
//! ## Inputs
//!
//! - **Paths**: names from metadata (manifest.json, index.json, repositories) are
//!   normalized and refused when absolute or climbing out with `..`. Digests are
//!   validated (`sha256:` and 64 lowercase hex) before they become file names. Output
//!   names are built only from validated digests and hex ids, and the writers refuse
//!   any path that would leave the destination.
//! - **Links**: symlinks and hardlinks inside an archive or layout are resolved by
//!   dockhand itself, component by component, at most [`limits::MAX_LINK_HOPS`] hops, and
//!   never outside the tree (absolute targets and `..` past the root are errors).
//!   Nothing is ever extracted, so no link can redirect a write.
//! - **Digests**: a blob whose bytes do not match its digest, size or diff_id fails the
//!   read that sees its last byte, so a corrupt layer can never be written as if whole.
//!
//! ## Registries
//!
//! A registry's answers are untrusted too:
//!
//! - **Credentials** and tokens go only to the registry's own origin (scheme, host
//!   and port, compared after parsing, never by string prefix) and to the token
//!   service named by that registry's own challenge. Redirects are followed hop by
//!   hop; a redirect target or an upload location on another origin gets no
//!   `Authorization`, and a `401` from it is an error naming that host. A URL a
//!   registry hands back with userinfo, a port outside 1-65535 or an odd host is
//!   refused; so is a reference with credentials or such a port in it.
//! - **Pins**: a manifest is checked against the digest in the reference and the
//!   registry's `Docker-Content-Digest`, whatever its type (a signed schema 1
//!   manifest by its JWS payload, which is also what is read). Images are named by the
//!   reference given, never by the registry.
//! - **Waiting**: a read that makes no progress for
//!   [`RegistryOptions::read_timeout`], or a body slower than
//!   [`RegistryOptions::min_rate`], fails its attempt; retries count attempts per
//!   request.
//! - **The blob cache** may be shared by concurrent runs and is not trusted: entries
//!   are opened without following symlinks or blocking on FIFOs, used only when they
//!   are regular files, verified before use (a bad one is fetched again, with a
//!   warning), and removed only when no other run is filling or reading them.
//!
//! ## Bounded work
//!
//! Every limit is a constant; going over one is an error naming it. Work grows at most
//! linearly with the input: an input of 100 KB never costs more than a few seconds.
//!
//! - **Tar headers** are read by dockhand's own walker. GNU long names and links and
//!   PAX headers larger than [`limits::MAX_EXTENSION_SIZE`] (1 MiB, as Go's archive/tar)
//!   are refused before they are read; names are at most [`limits::MAX_PATH_BYTES`]
//!   bytes and [`limits::MAX_PATH_DEPTH`] components; one index holds at most
//!   [`limits::MAX_ENTRIES`] entries and [`limits::MAX_NAME_BYTES`] of names, in memory
//!   linear in those names. A header claiming more bytes than the file holds is a
//!   truncated archive, found without allocating anything. Two zero blocks end an
//!   archive, as tar defines it: a stream is read no further than
//!   [`limits::MAX_TRAILING_BYTES`] past them, so `dockhand convert - out < /dev/zero`
//!   ends at once as an empty archive.
//! - **Metadata**: JSON documents over [`limits::MAX_JSON_SIZE`] or nested deeper than
//!   [`limits::MAX_JSON_DEPTH`] are refused before parsing. Every config, manifest and
//!   index is read, verified and parsed once per input however many times it is
//!   referenced, layers whose digests must be computed are hashed once, and one input
//!   may hold at most [`limits::MAX_METADATA_TOTAL`] of metadata and
//!   [`limits::MAX_LAYERS_TOTAL`] layers.
//! - **Filesystems**: applying an image's layers ([`apply_layers`], [`export_image`])
//!   holds a few hundred bytes per path, never an entry's data; the layers of one image
//!   may name at most [`limits::MAX_FILESYSTEM_PATHS`] paths and
//!   [`limits::MAX_FILESYSTEM_NAME_BYTES`] of names, and a layer naming anything
//!   outside the root (a name climbing out with `..`, a whiteout of `..`, a hard link
//!   out of the root or to nothing it can reach) is refused before anything is written.
//! - **Decompression**: layers and whole archives stream through fixed buffers, so a
//!   decompression bomb costs time, not memory. xz streams asking for more than
//!   [`limits::XZ_MEMORY_LIMIT`] and zstd frames with windows over
//!   2^[`limits::ZSTD_WINDOW_LOG_MAX`] bytes are refused; gzip (32 KiB window) and
//!   bzip2 (900 kB blocks) are bounded by their formats.
//!
//! ## Messages
//!
//! Text that comes from an input (entry names, paths in manifest.json, tags, ref
//! names, annotations) is escaped and cut to [`limits::MAX_SHOWN_CHARS`] characters
//! before it reaches a message ([`text::shown`]); the binary prints every error as
//! exactly one escaped line. OCI ref names outside the image-spec grammar are dropped
//! with a warning and never written. When an archive holds two different
//! `manifest.json` (or `index.json`) entries, the last one is read, as tar readers do,
//! and a warning names both (skopeo reads the first).
//!
//! What is not defended: a local attacker racing dockhand on the same directories
//! (paths are resolved, then opened), and disk use by a stream whose entries claim
//! huge sizes (stdin and compressed archives are spooled to an anonymous `O_TMPFILE`,
//! which the kernel frees on every exit, SIGKILL included).

#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod cleanup;
mod compress;
mod container;
mod convert;
mod daemon;
mod destination;
mod edit;
mod error;
mod formats;
mod history;
mod inspect;
mod layer;
mod location;
mod model;
mod pool;
mod progress;
mod referrers;
mod registry;
mod rootfs;
mod select;
mod shard;
mod signatures;
mod sink;
mod store;
mod sync;
mod sys;
pub mod text;
mod transport;

// Converting, in one call.
pub use convert::{
    convert, convert_between, convert_editing, convert_sources, convert_with_progress,
    ConvertOptions, ConvertReport, EditContext, EditImages,
};
// Making and changing images: import, append, mutate.
pub use destination::Plan;
pub use edit::{
    edit_images, import_rootfs, ConfigChange, EditOptions, HistoryNote, ImageEdit, Instruction,
    LayerOptions, NewLayer, CHANGE_INSTRUCTIONS,
};
// Reading: open a source, list and select its images, read their layers verified.
pub use layer::{open_layer, Digests, LayerForm, LayerReader};
pub use location::open_source;
pub use referrers::{
    AttachedBy, AttachedManifest, Referrer, ReferrerKind, COSIGN_SIGNATURE_LAYER,
    MAX_REFERRERS_PER_INDEX, MAX_REFERRERS_TOTAL, MAX_REFERRER_DEPTH,
};
pub use select::{select, selectors, with_selected_names, ByDigest, Selector, MIN_ID_PREFIX};
pub use shard::{Shard, MAX_SHARDS};
pub use signatures::{
    verify_signatures, ImageSignatures, KeyAlgorithm, PublicKey, RejectedSignature,
    SignatureProblem, Unsigned, VerifiedSignature, COSIGN_SIGNATURE_ANNOTATION,
    COSIGN_SIGNATURE_TYPE, MAX_KEY_FILE, MAX_SIGNATURE_LAYERS, MAX_SIGNATURE_PAYLOAD,
};
pub use transport::{ImageSource, Location, ManifestBytes, ReadOptions, Source};
// Writing: a sink for a format at a destination, or a tar into any `Write`.
pub use compress::{LayerCompression, GZIP_DEFAULT_LEVEL, ZSTD_DEFAULT_LEVEL};
pub use formats::write_tar;
pub use location::create_sink;
pub use sink::{
    Attachment, BlobInfo, BlobRole, CommitReport, ConcurrentBlobs, ImageDestination, ImageSink,
    LayerPolicy, ManifestFormat, ManifestInfo,
};
pub use transport::{DockerLayout, SinkOptions, WriteOptions};
// Registries.
pub use registry::{
    delete_image, for_each_repository, list_repositories, push_digests, registry_digest, tag_image,
    tags_by_digest, CatalogOptions, TagDigests, TagGroup, TagReport, DEFAULT_MAX_TAGS,
    MAX_LISTED_REPOSITORIES,
};
pub use registry::{for_each_tag, list_tags, MAX_LISTED_TAGS};
pub use transport::RegistryOptions;
// Keeping a mirror up to date.
pub use sync::{
    parse_sync_yaml, read_sync_yaml, repository_source, sync, ArchiveKind, SyncItem, SyncOptions,
    SyncOutcome, SyncReport, SyncRepository, SyncSource, SyncTarget, TagChoice, MAX_PATTERN_CHARS,
    MAX_SYNC_FILE, MAX_SYNC_IMAGES,
};
// Transports and formats.
pub use formats::Layout;
pub use location::transport_names;
pub use transport::{Format, Transport};
// An image's final filesystem: its layers applied (whiteouts, hard links), and
// exported as one tar, as `docker export` of a container created from it.
pub use rootfs::{
    apply_layers, export, export_filesystem, export_image, ApplyOptions, ExportOptions,
    ExportReport, Filesystem, FsEntry, FsKind,
};
// Two images' final filesystems compared, and the layers they share.
pub use rootfs::{
    diff, diff_images, Changes, CompareOptions, ConfigDifference, DiffLayer, DiffOptions, DiffSide,
    DiffSummary, Difference, Differences, ImageDiff, PathChange,
};
// History and config summaries.
pub use history::{
    image_histories, image_history, ConfigSummary, HistoryEntry, HistoryRow, ImageHistory,
};
// A layout or archive as an image store: names, removal, garbage, listing, families.
pub use store::{
    created_at, image_family, image_rows, store_gc, store_remove, store_tag, store_untag, Family,
    GcReport, ImageFilter, ImageFilters, ImageRow, StoreChange, StoreError, StoreReport,
};
// Inspecting and verifying.
pub use inspect::{
    by_id, chain_ids, image_referrers, inspect_json, platforms_json, referrer_json, verify,
    write_json, InspectDoc, VerifyReport,
};
// The model.
pub use model::blob::{Blob, MemoryBlob};
pub use model::digest::Digest;
pub use model::image::{Descriptor, Image, Layer, ListedPlatform, Platform};
pub use model::media::Compression;
pub use model::reference::Reference;
// Progress, errors, staging.
pub use cleanup::STAGING_MARKER;
pub use daemon::{DaemonError, DaemonProblem};
pub use error::{Error, Result, Setting, TlsProblem};
pub use progress::{NoProgress, Progress};

/// Every limit dockhand applies to an input (see the `# Security` section above).
///
/// Each is a constant a caller can show or check against; every one of them is what an
/// input is refused for (exit code 1), never a panic or unbounded work:
///
/// ```
/// use dockhand::limits::*;
///
/// // Tar entries: how many, their paths and names, extension headers, links, and what
/// // is read past the end-of-archive marker of a piped input.
/// assert_eq!((MAX_ENTRIES, MAX_PATH_BYTES, MAX_PATH_DEPTH), (250_000, 4096, 128));
/// assert_eq!((MAX_NAME_BYTES, MAX_EXTENSION_SIZE), (32 << 20, 1 << 20));
/// assert_eq!((MAX_LINK_HOPS, MAX_TRAILING_BYTES), (16, 1 << 20));
/// // Metadata: each JSON document, all of them, their nesting, layers, warnings.
/// assert_eq!((MAX_JSON_SIZE, MAX_METADATA_TOTAL), (16 << 20, 128 << 20));
/// assert_eq!((MAX_JSON_DEPTH, MAX_LAYERS_TOTAL, MAX_WARNINGS), (64, 100_000, 100));
/// // Decompression memory: 128 MiB for xz and for a zstd window.
/// assert_eq!((XZ_MEMORY_LIMIT, 1u64 << ZSTD_WINDOW_LOG_MAX), (128 << 20, 128 << 20));
/// // Archive text shown in one message, and one message line.
/// assert_eq!((MAX_SHOWN_CHARS, MAX_LINE_CHARS), (200, 4000));
/// // An image's filesystem (export): the paths its layers name, and their names' bytes.
/// assert_eq!((MAX_FILESYSTEM_PATHS, MAX_FILESYSTEM_NAME_BYTES), (1 << 20, 128 << 20));
/// ```
pub mod limits {
    pub use crate::container::{
        MAX_ENTRIES, MAX_EXTENSION_SIZE, MAX_LINK_HOPS, MAX_NAME_BYTES, MAX_PATH_BYTES,
        MAX_PATH_DEPTH, MAX_TRAILING_BYTES,
    };
    pub use crate::formats::{MAX_LAYERS_TOTAL, MAX_METADATA_TOTAL, MAX_WARNINGS};
    pub use crate::model::image::{MAX_JSON_DEPTH, MAX_JSON_SIZE};
    pub use crate::model::media::{XZ_MEMORY_LIMIT, ZSTD_WINDOW_LOG_MAX};
    pub use crate::rootfs::{MAX_FILESYSTEM_NAME_BYTES, MAX_FILESYSTEM_PATHS};
    pub use crate::text::{MAX_LINE_CHARS, MAX_SHOWN_CHARS};
}

/// Internals the fuzz targets drive directly (the tar index, the tree of an input).
/// Not part of the API: only with the `fuzzing` feature.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::container::{open_input, FileTree, TarIndex};
    pub use crate::formats::read_tree;
    pub use crate::registry::fuzzing::*;
    pub use crate::rootfs::check::check as check_layers;
}
