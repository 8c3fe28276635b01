//! The `dockhand` command line: argument parsing, messages and exit codes only.

// The doc comments of the arguments are clap's help text (`linux/<host arch>`), not HTML.
#![allow(rustdoc::invalid_html_tags)]

use std::io::{self, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

use anyhow::Context;
use clap::{CommandFactory, Parser, Subcommand, ValueEnum};

use dockhand::image_histories;
use dockhand::text::one_line;
use dockhand::Location;
use dockhand::Plan;
use dockhand::Progress;
use dockhand::{inspect_json, verify, write_json};
use dockhand::{select, selectors};
use dockhand::{transport_names, ReadOptions};
use dockhand::{ConvertOptions, Format, Platform, RegistryOptions};
use dockhand::{DockerLayout, LayerCompression, ManifestFormat};

mod cli;
use cli::examples;
use cli::tables::{
    family_tree, history_table, human_size, inspect_table, names_line, platforms_table,
    referrers_table,
};
use cli::verbose::{causes, Clock};

/// Move container images between docker-save archives, OCI layouts and dir: layouts.
#[derive(Parser)]
#[command(name = "dockhand", version, about, max_term_width = 100)]
#[command(after_help = examples::TOP)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

/// Options every subcommand takes, before or after its name.
#[derive(clap::Args, Clone, Copy, Debug, Default)]
struct GlobalArgs {
    /// Print nothing but the requested output (stdout) and errors (stderr): no
    /// warnings, no summary.
    #[arg(short, long, global = true)]
    quiet: bool,
    /// On an error, also print its chain of causes, one per line; print how long each
    /// phase took (stderr).
    #[arg(short, long, global = true)]
    verbose: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Convert images from SRC to DST, verifying every blob on the way.
    #[command(long_about = convert_long_about(), after_help = examples::CONVERT)]
    Convert {
        /// Read SRC as this format (default: detect from the content).
        #[arg(long, value_name = "FORMAT", value_parser = format_parser())]
        from: Option<Format>,
        /// Write DST in this format (default: docker-archive for a DST ending in .tar or
        /// `-`, an OCI layout directory otherwise).
        #[arg(long, value_name = "FORMAT", value_parser = format_parser())]
        to: Option<Format>,
        /// Take only this image (REF, matched after normalization; an image ID, 12+ hex
        /// characters of one, a manifest digest or NAME@sha256:...; or @N); repeatable.
        #[arg(long = "image", value_name = "REF|@N")]
        images: Vec<String>,
        /// Name the (single) output image REF instead of its own names; repeatable.
        #[arg(long = "tag", value_name = "REF")]
        tags: Vec<String>,
        /// Pick this platform from multi-platform indexes (default: linux/<host arch>).
        #[arg(long, value_name = "OS/ARCH[/VARIANT]", value_parser = parse_platform)]
        platform: Option<Platform>,
        /// Take every platform of a multi-platform index and keep the index whole (OCI
        /// outputs and registries).
        #[arg(long)]
        all: bool,
        /// Shape of docker-archive and docker-dir outputs [default: legacy].
        #[arg(long, value_enum)]
        docker_layout: Option<DockerLayoutArg>,
        /// What OCI and dir outputs do with layers: keep them as stored, none
        /// (uncompressed), gzip or zstd (a layer already in that compression is kept).
        /// docker-archive and docker-dir layers are always uncompressed.
        #[arg(long, value_name = "keep|none|gzip|zstd", value_parser = parse_layer_compression)]
        layer_compression: Option<LayerCompression>,
        /// gzip level 1-9 [default: 1] or zstd level 1-19 [default: 3]; the output is the
        /// same whatever the number of cores.
        #[arg(long, value_name = "N", allow_negative_numbers = true)]
        compression_level: Option<i32>,
        /// The manifests written, as skopeo's --format: to a registry, by default what
        /// the source is (Docker v2 schema 2 for a docker-archive or a Docker v2 image,
        /// as docker push writes; OCI for an OCI image); to a dir layout, OCI by default.
        #[arg(long, value_enum, value_name = "oci|v2s2")]
        format: Option<ManifestFormatArg>,
        /// Replace DST when it is something dockhand could have written: an earlier
        /// output, a regular file, an image layout and nothing else. Anything else is
        /// never replaced.
        #[arg(long)]
        force: bool,
        /// Once DST holds everything, write the manifest digest of what was written
        /// (of the index with --all) to FILE, as skopeo does; needs a single image.
        #[arg(long, value_name = "FILE")]
        digestfile: Option<std::path::PathBuf>,
        /// Copy what is attached to the images along with them: signatures,
        /// attestations, SBOMs (OCI referrers, cosign's tags, BuildKit attestations),
        /// byte for byte; with --all, those of the index too. DST must be oci,
        /// oci-archive, docker:// or a docker-archive with --docker-layout hybrid.
        #[arg(long)]
        referrers: bool,
        /// Copy only the referrers of this artifact type (repeatable), with what refers
        /// to them; implies --referrers.
        #[arg(long = "referrers-type", value_name = "TYPE")]
        referrers_type: Vec<String>,
        #[command(flatten)]
        registry: RegistryArgs,
        #[command(flatten)]
        ends: Box<EndArgs>,
        /// Read the sources from FILE too, one per line (any transport; blank lines and
        /// lines starting with # are skipped), before those given as arguments.
        #[arg(long, value_name = "FILE")]
        images_from: Option<std::path::PathBuf>,
        /// The inputs (one or more, as cp takes them), then the output: SRC... DST.
        #[arg(value_name = "SRC... DST", required = true, num_args = 1..)]
        paths: Vec<String>,
    },
    /// Show the images in SRC (reads only headers and metadata from a tar file).
    #[command(after_help = examples::INSPECT)]
    Inspect {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Show whole image IDs and layer digests.
        #[arg(long)]
        no_trunc: bool,
        /// List every platform the source's multi-platform indexes hold, present or
        /// absent, instead of the images.
        #[arg(long, conflicts_with_all = ["filter", "format", "tree"])]
        platforms: bool,
        /// Show only the images that pass, as docker images --filter: reference=PATTERN
        /// (a glob on the name, with or without its tag), label=KEY[=VALUE],
        /// before=IMAGE, since=IMAGE (by creation time), dangling=true|false (no name);
        /// repeatable: different keys all pass, several references any.
        #[arg(long, value_name = "KEY=VALUE")]
        filter: Vec<String>,
        /// Print a line per image name, newest image first, as docker images --format:
        /// {{.ID}} {{.Repository}} {{.Tag}} {{.Digest}} {{.CreatedAt}}
        /// {{.CreatedSince}} {{.Size}} {{.Index}}, \t and \n; `table` in front adds a
        /// header and aligns the columns (`--format table` alone: docker's table).
        #[arg(long, value_name = "TEMPLATE", conflicts_with_all = ["json", "tree"])]
        format: Option<String>,
        /// Draw the images as trees: each image under its parent (the image whose
        /// layers start its own), as docker's old images --tree drew them.
        #[arg(long, conflicts_with = "json")]
        tree: bool,
        #[command(flatten)]
        source: SourceArgs,
    },
    /// Show the build steps of images in SRC, newest first, as `docker history` does.
    ///
    /// A step that added a layer shows that layer's uncompressed size, as docker does
    /// (a layer stored compressed is read once, and verified, to learn it); other
    /// steps 0B.
    #[command(after_help = examples::HISTORY)]
    History {
        /// Print JSON (every field, untruncated, absolute times) instead of tables.
        #[arg(long)]
        json: bool,
        /// Do not cut the image ID and the build steps.
        #[arg(long)]
        no_trunc: bool,
        #[command(flatten)]
        source: SourceArgs,
    },
    /// Write an image's final filesystem as one tar, as `docker export` of a container
    /// created from it.
    ///
    /// The layers are applied in order, with their whiteouts (a `.wh.NAME` entry
    /// deletes NAME from the layers below, a `.wh..wh..opq` entry what they put in its
    /// directory) and hard links; each is read twice and verified both times, and
    /// memory grows with the number of paths, not their bytes. OUT is written beside
    /// itself and renamed into place once whole; `-` writes to stdout.
    #[command(after_help = examples::EXPORT)]
    Export {
        /// Read SRC as this format (default: detect from the content).
        #[arg(long, value_name = "FORMAT", value_parser = format_parser())]
        from: Option<Format>,
        /// The image to export (REF, image ID, digest or @N), when SRC holds several.
        #[arg(long = "image", value_name = "REF|@N")]
        images: Vec<String>,
        /// Pick this platform from multi-platform indexes (default: linux/<host arch>).
        #[arg(long, value_name = "OS/ARCH[/VARIANT]", value_parser = parse_platform)]
        platform: Option<Platform>,
        /// Replace OUT when it is a regular file or a symlink.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        registry: RegistryArgs,
        /// The input.
        src: String,
        /// The tar to write, or `-` for stdout.
        #[arg(value_name = "OUT|-")]
        out: String,
    },
    /// Compare two images' final filesystems: paths added, removed and changed, the
    /// layers the two share, and the config fields that differ.
    ///
    /// A and B are any two sources (`dockhand diff old.tar new.tar`), or one source
    /// holding both images (`dockhand diff multi.tar --image @0 --image @1`). The
    /// layers are applied with their whiteouts as `export` applies them; each is read
    /// once, verified (a layer both images hold is read once for both), and memory
    /// grows with the number of paths, not their bytes. Each change is one line as
    /// `docker diff` prints it, `A`, `D` or `C` and the path, a changed path followed
    /// by what differs: type, size, mode, owner, link target, device, content
    /// (sha256) and, with --times, the modification time.
    #[command(after_help = examples::DIFF)]
    Diff {
        /// Which images: with one source, twice (A then B); with two, once (for both)
        /// or twice (A's, then B's). REF, image ID, digest or @N.
        #[arg(long = "image", value_name = "REF|@N")]
        images: Vec<String>,
        /// Pick this platform from multi-platform indexes (default: linux/<host arch>).
        #[arg(long, value_name = "OS/ARCH[/VARIANT]", value_parser = parse_platform)]
        platform: Option<Platform>,
        /// Also compare modification times (a directory's changes with what is added
        /// to it or removed from it, as `docker diff` counts it).
        #[arg(long)]
        times: bool,
        /// Print the comparison as JSON: both images and their layers, a summary,
        /// and the `added`, `removed` and `changed` paths.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        registry: RegistryArgs,
        /// The image before (a source; `-` reads stdin).
        a: String,
        /// The image after, when it is in another source than A.
        b: Option<String>,
    },
    /// Check every digest, size and diff_id in SRC; exit 0 only if all match.
    #[command(after_help = examples::VERIFY)]
    Verify {
        /// Also require, for every image, a cosign signature attached to it (a .sig tag
        /// or a referrer, on its manifest or an index listing it) that verifies with
        /// this public key (PEM: ECDSA P-256, Ed25519 or RSA); repeatable: any key.
        #[arg(long = "key", value_name = "PUBKEY.pem")]
        keys: Vec<std::path::PathBuf>,
        #[command(flatten)]
        source: SourceArgs,
    },
    /// List the tags of a registry repository: docker://HOST/REPO.
    #[command(after_help = examples::TAGS)]
    Tags {
        /// Group the tags by the manifest they name, with each image's platform(s) and
        /// creation time (one manifest request per tag, one config per image).
        #[arg(long)]
        digests: bool,
        /// With --digests: resolve at most this many tags (the output says when the
        /// repository has more).
        #[arg(long, value_name = "N", default_value_t = dockhand::DEFAULT_MAX_TAGS, requires = "digests")]
        max_tags: usize,
        /// With --digests: print JSON instead of lines.
        #[arg(long, requires = "digests")]
        json: bool,
        #[command(flatten)]
        registry: RegistryArgs,
        /// The repository.
        repository: String,
    },
    /// List the repositories of a registry (its /v2/_catalog): docker://HOST[:PORT].
    #[command(after_help = examples::CATALOG)]
    Catalog {
        /// Print JSON instead of one repository per line.
        #[arg(long)]
        json: bool,
        /// Ask for this many repositories per page (the registry's `n`; default: the
        /// registry's own page size). Every page is followed either way.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        page_size: Option<u32>,
        #[command(flatten)]
        registry: RegistryArgs,
        /// The registry.
        host: String,
    },
    /// Give an image more names: in a registry, or in a layout or archive, in place.
    ///
    /// docker://HOST/REPO:TAG NEWTAG...: the manifest is put under more tags of its
    /// repository, the same bytes, so the same digest; no blob moves.
    ///
    /// SRC[:REF] NEWREF...: the image REF names (a name, an ID, @N; the only image
    /// without REF) in an OCI layout, oci-archive, docker-archive or docker-dir gets
    /// the names, as docker tag gives them: a name another image has moves. The
    /// index.json or manifest.json is changed in place (an archive is written anew
    /// beside it and renamed over it); every other entry keeps its bytes.
    #[command(after_help = examples::TAG)]
    Tag {
        #[command(flatten)]
        registry: RegistryArgs,
        /// The image: docker://HOST/REPO:TAG or docker://HOST/REPO@sha256:..., or
        /// SRC[:REF] (oci:DIR:1.0, docker-archive:app.tar:app:1, oci:layout:@0).
        #[arg(value_name = "IMAGE")]
        image: String,
        /// The names to add (a registry's: tags; in an OCI layout a bare tag is a ref
        /// name).
        #[arg(required = true, value_name = "NEWREF")]
        new_tags: Vec<String>,
    },
    /// Remove names from an OCI layout, oci-archive, docker-archive or docker-dir.
    ///
    /// Each REF must be a name SRC holds (nothing changes otherwise). An image that
    /// loses its last name stays in SRC without one, as docker keeps it (<none>);
    /// `dockhand rm` removes it.
    #[command(after_help = examples::UNTAG)]
    Untag {
        /// The layout or archive.
        src: String,
        /// The names to remove.
        #[arg(required = true, value_name = "REF")]
        names: Vec<String>,
    },
    /// Remove images from an OCI layout, oci-archive, docker-archive or docker-dir.
    ///
    /// Each image goes with all its names, what refers to it only (signatures, its
    /// referrers tags), and the blobs no other image, index or referrer uses: a
    /// layout loses those files, an archive is written anew without them.
    #[command(after_help = examples::RM)]
    Rm {
        /// The images to remove (a name, an image ID or 12+ hex characters of one, a
        /// manifest digest, @N); repeatable.
        #[arg(long = "image", value_name = "REF|@N")]
        images: Vec<String>,
        /// The layout or archive (SRC:REF names one image too).
        src: String,
    },
    /// Remove the blobs of a layout directory that nothing it names uses, as umoci gc.
    ///
    /// What index.json lists is followed down through indexes, manifests, configs,
    /// layers, subjects, referrers tags and cosign tags (and manifest.json's names in a
    /// docker-save tree); every other blob goes. Files of blobs/ not named by a digest
    /// are left alone and listed. Safe beside conversions adding to the layout: none
    /// loses a blob.
    #[command(after_help = examples::GC)]
    Gc {
        /// List what would be removed; remove nothing.
        #[arg(long)]
        dry_run: bool,
        /// The layout directory.
        layout: String,
    },
    /// Delete a manifest from a registry, as `skopeo delete`.
    ///
    /// docker://HOST/REPO@sha256:..., or :TAG, resolved to its digest first; every tag
    /// naming that manifest goes with it.
    #[command(after_help = examples::DELETE)]
    Delete {
        #[command(flatten)]
        registry: RegistryArgs,
        /// The image.
        image: String,
    },
    /// Print an image's manifest digest (a registry's without pulling).
    ///
    /// For docker://HOST/REPO:TAG, the digest of the manifest (or index) the tag
    /// names, fetched and verified, no blob read. For a local source, the digest a
    /// push to a registry would give it (with --all, its index's): the manifest it
    /// holds when a push keeps it, else the one a push builds (a docker-archive's
    /// layers are gzipped as a push gzips them, which takes that time; nothing is
    /// written).
    #[command(after_help = examples::DIGEST)]
    Digest {
        #[command(flatten)]
        source: SourceArgs,
    },
    /// Copy every image a list names to a mirror, skipping those it already holds.
    ///
    /// SOURCE is skopeo sync's YAML (--src yaml) or a repository (--src docker:
    /// docker://HOST/REPO for every tag, docker://HOST/REPO:TAG for one image).
    /// DESTINATION is docker://MIRROR[/PREFIX] (each image at
    /// MIRROR/PREFIX/<its repository>:<tag>), oci:DIR (one OCI layout holding every
    /// image under its full source name), or docker-archive:DIR/ or oci-archive:DIR/
    /// (one archive per image, at DIR/<its repository>/<tag>.tar, or
    /// @sha256-<hex>.tar for a digest, named inside by its full source name). An
    /// image the destination holds under that name is skipped after one request at
    /// each end (a docker-archive: its config, from the source's manifest). Exit
    /// status 1 when any image failed.
    #[command(after_help = examples::SYNC)]
    Sync {
        /// What SOURCE is.
        #[arg(long, value_enum)]
        src: SyncSrcArg,
        /// Copy this many images at once (each moves --jobs blobs at once).
        #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
        parallel: u32,
        /// Try every image whatever fails (the default).
        #[arg(long, conflicts_with = "fail_fast")]
        keep_going: bool,
        /// Start no other image once one failed.
        #[arg(long)]
        fail_fast: bool,
        /// Copy nothing: list what would be copied.
        #[arg(long)]
        dry_run: bool,
        /// Print a JSON report on stdout.
        #[arg(long)]
        json: bool,
        /// Copy every platform of multi-platform images, their index whole.
        #[arg(long)]
        all: bool,
        /// Copy what is attached to each image (signatures, attestations, SBOMs).
        #[arg(long)]
        referrers: bool,
        /// Take only worker I's share of N (from 0), by a hash of each source
        /// reference: N workers given the same list copy each image once, with no
        /// coordinator. `--shard index/N` takes I from JOB_COMPLETION_INDEX (a
        /// Kubernetes Indexed Job).
        #[arg(long, value_name = "I/N")]
        shard: Option<String>,
        #[command(flatten)]
        registry: RegistryArgs,
        #[command(flatten)]
        ends: EndArgs,
        /// The YAML file, or docker://HOST/REPO[:TAG].
        source: String,
        /// docker://MIRROR[/PREFIX], oci:DIR, docker-archive:DIR/ or oci-archive:DIR/.
        destination: String,
    },
    /// Make a one-layer image of a root filesystem, as `docker import` does.
    ///
    /// ROOTFS is a tar (gzip, zstd, xz or bzip2-compressed, or not), `-` for stdin, or
    /// a directory (tarred sorted by name, owners, modes and links kept, modification
    /// times at most SOURCE_DATE_EPOCH when it is set). A tar's bytes are the layer as
    /// given, so its diff_id is what docker import computes. The config's created time
    /// and history are SOURCE_DATE_EPOCH when it is set (two runs, one image ID), now
    /// otherwise.
    #[command(after_help = examples::IMPORT)]
    Import {
        /// Name the image REF; repeatable.
        #[arg(long = "tag", value_name = "REF")]
        tags: Vec<String>,
        /// The image's platform [default: linux/<host arch>].
        #[arg(long, value_name = "OS/ARCH[/VARIANT]", value_parser = parse_platform)]
        platform: Option<Platform>,
        /// A Dockerfile instruction applied to the config, as docker import --change:
        /// CMD, ENTRYPOINT, ENV, EXPOSE, HEALTHCHECK, LABEL, ONBUILD, USER, VOLUME,
        /// WORKDIR; repeatable, in order.
        #[arg(long = "change", short = 'c', value_name = "INSTRUCTION")]
        changes: Vec<String>,
        /// The history entry's comment (docker inspect's Comment) [default: Imported
        /// from -].
        #[arg(long, short = 'm', value_name = "TEXT")]
        message: Option<String>,
        #[command(flatten)]
        edit: Box<EditArgs>,
        /// The root filesystem: a tar, `-`, or a directory.
        rootfs: String,
        /// Where the image goes (any transport).
        dst: String,
    },
    /// Put layers on top of an image: each LAYER a new top layer (the last is the top).
    ///
    /// Each LAYER is a tar (compressed or not, `-` for stdin) or a directory, with a
    /// history entry; the base's config is otherwise kept, its diff_ids extended, and
    /// its layers are not written again where DST holds them (a registry skips or
    /// mounts them). A layer whose entries leave the root is refused.
    #[command(after_help = examples::APPEND)]
    Append {
        #[command(flatten)]
        select: SelectArgs,
        #[command(flatten)]
        history: HistoryArgs,
        /// A Dockerfile instruction applied to the config, as docker import --change
        /// takes them; repeatable, in order.
        #[arg(long = "change", short = 'c', value_name = "INSTRUCTION")]
        changes: Vec<String>,
        #[command(flatten)]
        edit: Box<EditArgs>,
        /// The base image, the layers, then where the new image goes: SRC LAYER... DST.
        #[arg(value_name = "SRC LAYER... DST", required = true, num_args = 3..)]
        paths: Vec<String>,
    },
    /// Change an image's config (and annotations) without adding layers.
    ///
    /// Every edit gives a new config, so a new image ID; fields not edited are kept
    /// as they are, fields dockhand does not know included. The edits apply in this
    /// order: --change (in order), --cmd, --entrypoint (as a Dockerfile's ENTRYPOINT,
    /// it clears a CMD the base sets unless --cmd is given too), --env, --unset-env,
    /// --label, --unset-label, --user, --workdir, --expose, --unset-expose, --volume,
    /// --unset-volume, --clear-cmd, --clear-entrypoint.
    #[command(after_help = examples::MUTATE)]
    Mutate {
        #[command(flatten)]
        select: SelectArgs,
        /// A Dockerfile instruction applied to the config, as docker import --change
        /// takes them; repeatable, in order.
        #[arg(long = "change", short = 'c', value_name = "INSTRUCTION")]
        changes: Vec<String>,
        /// Set Cmd: a JSON array, or a shell command run by /bin/sh -c, as CMD.
        #[arg(long, value_name = "JSON|COMMAND")]
        cmd: Option<String>,
        /// Set Entrypoint: a JSON array, or a shell command run by /bin/sh -c, as
        /// ENTRYPOINT.
        #[arg(long, value_name = "JSON|COMMAND")]
        entrypoint: Option<String>,
        /// Set an environment variable (in its place when set, else last); repeatable.
        #[arg(long, value_name = "NAME=VALUE", value_parser = parse_pair)]
        env: Vec<(String, String)>,
        /// Remove an environment variable; repeatable.
        #[arg(long, value_name = "NAME")]
        unset_env: Vec<String>,
        /// Set a label; repeatable.
        #[arg(long, value_name = "NAME=VALUE", value_parser = parse_pair)]
        label: Vec<(String, String)>,
        /// Remove a label; repeatable.
        #[arg(long, value_name = "NAME")]
        unset_label: Vec<String>,
        /// Set User.
        #[arg(long, value_name = "USER[:GROUP]")]
        user: Option<String>,
        /// Set WorkingDir (a relative path is taken from the one set, as WORKDIR).
        #[arg(long, value_name = "DIR")]
        workdir: Option<String>,
        /// Expose a port (tcp unless PROTO says udp or sctp); repeatable.
        #[arg(long, value_name = "PORT[-PORT][/PROTO]")]
        expose: Vec<String>,
        /// Stop exposing a port; repeatable.
        #[arg(long, value_name = "PORT[/PROTO]")]
        unset_expose: Vec<String>,
        /// Add a volume; repeatable.
        #[arg(long, value_name = "PATH")]
        volume: Vec<String>,
        /// Remove a volume; repeatable.
        #[arg(long, value_name = "PATH")]
        unset_volume: Vec<String>,
        /// Clear Cmd.
        #[arg(long, conflicts_with = "cmd")]
        clear_cmd: bool,
        /// Clear Entrypoint.
        #[arg(long, conflicts_with = "entrypoint")]
        clear_entrypoint: bool,
        /// Annotate the manifest written (oci, oci-archive, dir and docker:// outputs);
        /// repeatable.
        #[arg(long, value_name = "NAME=VALUE", value_parser = parse_pair)]
        annotation: Vec<(String, String)>,
        /// Annotate the index written with --all (oci, oci-archive, docker://);
        /// repeatable.
        #[arg(long, value_name = "NAME=VALUE", value_parser = parse_pair)]
        index_annotation: Vec<(String, String)>,
        #[command(flatten)]
        edit: Box<EditArgs>,
        /// The image to change.
        src: String,
        /// Where the new image goes (any transport).
        dst: String,
    },
    /// Squash an image into one layer: its final filesystem, as crane flatten does.
    ///
    /// The layers are applied in order (whiteouts, opaque directories, hard links, as
    /// export writes them) into one new layer; the config is kept but for
    /// rootfs.diff_ids (one) and history (one entry naming the image flattened), so
    /// the image ID changes. --change edits the config in the same step.
    #[command(after_help = examples::FLATTEN)]
    #[command(mut_args(flatten_history_help))]
    Flatten {
        #[command(flatten)]
        select: SelectArgs,
        #[command(flatten)]
        history: HistoryArgs,
        /// A Dockerfile instruction applied to the config, as docker import --change
        /// takes them; repeatable, in order.
        #[arg(long = "change", short = 'c', value_name = "INSTRUCTION")]
        changes: Vec<String>,
        #[command(flatten)]
        edit: Box<EditArgs>,
        /// The image to flatten.
        src: String,
        /// Where the flattened image goes (any transport).
        dst: String,
    },
    /// Print a shell completion script on stdout.
    #[command(after_help = examples::COMPLETIONS)]
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
    /// Print a man page (roff) on stdout: dockhand(1), or dockhand-COMMAND(1).
    #[command(after_help = examples::MAN)]
    Man {
        /// The subcommand whose page to print (default: the page of dockhand itself,
        /// which lists them).
        command: Option<String>,
    },
}

/// `convert --long-help`'s description, with the transports from the one table.
fn convert_long_about() -> String {
    format!(
        "Convert images from SRC to DST, verifying every blob on the way.\n\n\
         SRC and DST are a path, `-` (stdin/stdout), or a location of a transport: {}. \
         Without --to, a DST ending in .tar or `-` gets docker-archive, anything else an \
         OCI layout directory.",
        Format::all()
            .map(|f| f.transport().syntax())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// `--from` and `--to`: the formats of the transport table, so that help, errors and
/// completions list the same names.
fn format_parser() -> impl clap::builder::TypedValueParser<Value = Format> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(Format::all().map(Format::name)).try_map(
        |name: String| {
            Format::parse(&name).ok_or_else(|| format!("expected one of {}", transport_names()))
        },
    )
}

/// The source of a reading subcommand (inspect, history, verify) and the images of it
/// to take.
#[derive(clap::Args, Clone, Debug)]
struct SourceArgs {
    /// Take only this image (REF, image ID, digest or @N); repeatable.
    #[arg(long = "image", value_name = "REF|@N")]
    images: Vec<String>,
    /// Pick this platform from multi-platform indexes.
    #[arg(long, value_name = "OS/ARCH[/VARIANT]", value_parser = parse_platform)]
    platform: Option<Platform>,
    /// Take every platform of a multi-platform index.
    #[arg(long, conflicts_with = "platform")]
    all: bool,
    #[command(flatten)]
    registry: RegistryArgs,
    /// The input.
    src: String,
}

/// Which images of SRC an edit takes.
#[derive(clap::Args, Clone, Debug)]
struct SelectArgs {
    /// Take only this image of SRC (REF, image ID, digest or @N); repeatable.
    #[arg(long = "image", value_name = "REF|@N")]
    images: Vec<String>,
    /// Pick this platform from a multi-platform index (default: linux/<host arch>).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]", value_parser = parse_platform)]
    platform: Option<Platform>,
    /// Take every platform of a multi-platform index, each edited, the index rebuilt
    /// over them (OCI outputs and registries).
    #[arg(long, conflicts_with = "platform")]
    all: bool,
    /// Name the new image REF (the base's names are not its names); repeatable.
    #[arg(long = "tag", value_name = "REF")]
    tags: Vec<String>,
}

/// The history entries of the layers an edit adds (append) or makes (flatten).
#[derive(clap::Args, Clone, Debug)]
struct HistoryArgs {
    /// The history entries' comment (also the config's).
    #[arg(long, short = 'm', value_name = "TEXT")]
    message: Option<String>,
    /// The history entries' author (also the config's).
    #[arg(long, value_name = "NAME")]
    author: Option<String>,
    /// The history entries' created_by.
    #[arg(long, value_name = "TEXT")]
    created_by: Option<String>,
}

/// The help of `HistoryArgs`' flags worded for flatten's one entry; every other flag
/// as it is. Arguments keep their place (`mut_arg` would move them last, reordering
/// completions).
fn flatten_history_help(arg: clap::Arg) -> clap::Arg {
    let help = match arg.get_id().as_str() {
        "message" => "The history entry's comment (also the config's)",
        "author" => "The history entry's author (also the config's)",
        "created_by" => "The history entry's created_by (default: dockhand flatten ID (N layers))",
        _ => return arg,
    };
    arg.help(help)
}

/// The flags every edit command (import, append, mutate, flatten) ends with: how its
/// output is written and how the registries at either end are reached.
#[derive(clap::Args, Clone)]
struct EditArgs {
    #[command(flatten)]
    write: WriteArgs,
    #[command(flatten)]
    registry: RegistryArgs,
    #[command(flatten)]
    ends: EndArgs,
}

/// How an edit's output is written: convert's options for a destination.
#[derive(clap::Args, Clone)]
struct WriteArgs {
    /// Write DST in this format (default: docker-archive for a DST ending in .tar or
    /// `-`, an OCI layout directory otherwise).
    #[arg(long, value_name = "FORMAT", value_parser = format_parser())]
    to: Option<Format>,
    /// Shape of docker-archive and docker-dir outputs [default: legacy].
    #[arg(long, value_enum)]
    docker_layout: Option<DockerLayoutArg>,
    /// What OCI and dir outputs do with layers: keep them as stored (a new layer is
    /// an uncompressed tar), none, gzip or zstd; a push gzips uncompressed layers.
    #[arg(long, value_name = "keep|none|gzip|zstd", value_parser = parse_layer_compression)]
    layer_compression: Option<LayerCompression>,
    /// gzip level 1-9 [default: 1] or zstd level 1-19 [default: 3].
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    compression_level: Option<i32>,
    /// The manifests written to a registry or a dir layout, as skopeo's --format.
    #[arg(long, value_enum, value_name = "oci|v2s2")]
    format: Option<ManifestFormatArg>,
    /// Replace DST when it is something dockhand could have written.
    #[arg(long)]
    force: bool,
    /// Once DST holds everything, write the manifest digest of what was written to
    /// FILE.
    #[arg(long, value_name = "FILE")]
    digestfile: Option<std::path::PathBuf>,
}

/// How to reach registries (`docker://` sources and destinations).
#[derive(clap::Args, Clone, Debug)]
struct RegistryArgs {
    /// Registry credentials USER:PASSWORD (default: the auth files of podman, skopeo
    /// and docker, and their credential helpers).
    #[arg(long, value_name = "USER:PASSWORD")]
    creds: Option<String>,
    /// Read credentials from this auth file only (podman's auth.json or docker's
    /// config.json format).
    #[arg(long, value_name = "PATH")]
    authfile: Option<std::path::PathBuf>,
    /// Check the registry's TLS certificate; `--tls-verify=false` also allows plain HTTP.
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    tls_verify: bool,
    /// Trust the CAs (*.crt) of this directory and present its client certificate
    /// (NAME.cert + NAME.key), instead of /etc/docker/certs.d/HOST:PORT/ and
    /// /etc/containers/certs.d/HOST:PORT/.
    #[arg(long, value_name = "DIR")]
    cert_dir: Option<std::path::PathBuf>,
    /// Retry a failed request (connection error, 408, 429, 5xx) this many times, with
    /// exponential backoff and the registry's Retry-After.
    #[arg(long, value_name = "N", default_value_t = 3)]
    retry_times: u32,
    /// Keep pulled blobs here until the output holds them, so that an interrupted
    /// pull resumes [default: $XDG_CACHE_HOME/dockhand].
    #[arg(long, value_name = "DIR")]
    cache: Option<std::path::PathBuf>,
    /// Keep no blob cache.
    #[arg(long, conflicts_with = "cache")]
    no_cache: bool,
    /// Pull (into a directory output) or push this many blobs at once.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    jobs: u32,
    /// Fail (and retry) a request whose answer makes no progress for this many
    /// seconds, or whose body arrives slower than 1 KiB/s over that long; 0 waits
    /// forever.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    read_timeout: u64,
    /// Read this registries.conf (mirrors, location, insecure, blocked) instead of
    /// $CONTAINERS_REGISTRIES_CONF, ~/.config/containers/registries.conf or
    /// /etc/containers/registries.conf.
    #[arg(long, value_name = "FILE")]
    registries_conf: Option<std::path::PathBuf>,
}

/// skopeo's per-end registry options: each overrides its plain form for one end of a
/// conversion.
#[derive(clap::Args, Clone, Debug)]
struct EndArgs {
    /// Credentials USER:PASSWORD for a registry SRC (overrides --creds there).
    #[arg(long, value_name = "USER:PASSWORD")]
    src_creds: Option<String>,
    /// Credentials USER:PASSWORD for a registry DST (overrides --creds there).
    #[arg(long, value_name = "USER:PASSWORD")]
    dest_creds: Option<String>,
    /// The only auth file read for a registry SRC (overrides --authfile there).
    #[arg(long, value_name = "PATH")]
    src_authfile: Option<std::path::PathBuf>,
    /// The only auth file read for a registry DST (overrides --authfile there).
    #[arg(long, value_name = "PATH")]
    dest_authfile: Option<std::path::PathBuf>,
    /// Check a registry SRC's TLS certificate (overrides --tls-verify there);
    /// `--src-tls-verify=false` also allows plain HTTP.
    #[arg(long, value_name = "BOOL", action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    src_tls_verify: Option<bool>,
    /// Check a registry DST's TLS certificate (overrides --tls-verify there);
    /// `--dest-tls-verify=false` also allows plain HTTP.
    #[arg(long, value_name = "BOOL", action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    dest_tls_verify: Option<bool>,
    /// The certificates directory for a registry SRC (overrides --cert-dir there).
    #[arg(long, value_name = "DIR")]
    src_cert_dir: Option<std::path::PathBuf>,
    /// The certificates directory for a registry DST (overrides --cert-dir there).
    #[arg(long, value_name = "DIR")]
    dest_cert_dir: Option<std::path::PathBuf>,
    /// With a registry prefix DST (docker://HOST/ or docker://HOST/PREFIX/), keep
    /// each image's source registry in its path (HOST/PREFIX/docker.io/team/app), as
    /// skopeo sync's --scoped does.
    #[arg(long)]
    scoped: bool,
}

impl EndArgs {
    /// The options for a registry SRC: the plain ones, each overridden by --src-*.
    fn source(&self, registry: &RegistryArgs) -> RegistryOptions {
        registry.end_options(
            &self.src_creds,
            &self.src_authfile,
            self.src_tls_verify,
            &self.src_cert_dir,
        )
    }

    /// The options for a registry DST: the plain ones, each overridden by --dest-*,
    /// and --scoped.
    fn destination(&self, registry: &RegistryArgs) -> RegistryOptions {
        RegistryOptions {
            scoped: self.scoped,
            ..registry.end_options(
                &self.dest_creds,
                &self.dest_authfile,
                self.dest_tls_verify,
                &self.dest_cert_dir,
            )
        }
    }
}

impl From<DockerLayoutArg> for DockerLayout {
    fn from(arg: DockerLayoutArg) -> DockerLayout {
        match arg {
            DockerLayoutArg::Legacy => DockerLayout::Legacy,
            DockerLayoutArg::Hybrid => DockerLayout::Hybrid,
        }
    }
}

impl From<ManifestFormatArg> for ManifestFormat {
    fn from(arg: ManifestFormatArg) -> ManifestFormat {
        match arg {
            ManifestFormatArg::Oci => ManifestFormat::Oci,
            ManifestFormatArg::V2s2 => ManifestFormat::DockerV2,
        }
    }
}

impl RegistryArgs {
    /// The options of one end: the plain ones, each overridden by the end's own.
    fn end_options(
        &self,
        creds: &Option<String>,
        authfile: &Option<std::path::PathBuf>,
        tls_verify: Option<bool>,
        cert_dir: &Option<std::path::PathBuf>,
    ) -> RegistryOptions {
        let plain = self.options();
        RegistryOptions {
            creds: creds.clone().or(plain.creds.clone()),
            authfile: authfile.clone().or(plain.authfile.clone()),
            tls_verify: tls_verify.unwrap_or(plain.tls_verify),
            cert_dir: cert_dir.clone().or(plain.cert_dir.clone()),
            ..plain
        }
    }

    fn options(&self) -> RegistryOptions {
        RegistryOptions {
            creds: self.creds.clone(),
            authfile: self.authfile.clone(),
            tls_verify: self.tls_verify,
            cert_dir: self.cert_dir.clone(),
            retry_times: self.retry_times,
            cache: self.cache.clone(),
            no_cache: self.no_cache,
            jobs: self.jobs as usize,
            read_timeout: std::time::Duration::from_secs(self.read_timeout),
            registries_conf: self.registries_conf.clone(),
            ..RegistryOptions::default()
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum SyncSrcArg {
    /// skopeo sync's YAML file.
    Yaml,
    /// A registry repository (every tag) or image.
    Docker,
}

#[derive(Clone, Copy, ValueEnum)]
enum ManifestFormatArg {
    /// OCI image manifests and indexes.
    Oci,
    /// Docker v2 schema 2 manifests and manifest lists.
    V2s2,
}

#[derive(Clone, Copy, ValueEnum)]
enum DockerLayoutArg {
    /// `<v1id>/layer.tar`, manifest.json and repositories (every Docker since 1.10).
    Legacy,
    /// The Docker >= 25 shape: an OCI layout plus manifest.json.
    Hybrid,
}

fn main() -> ExitCode {
    // First of all, so that no signal finds the default action in place.
    if let Err(e) = install_signal_handlers() {
        say(&format!("warning: cannot install signal handlers: {e}"));
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return command_line_error(e),
    };
    let global = cli.global;
    let mut clock = Clock::new();
    let result = run(cli, &mut clock);
    let code = match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            if dockhand::cleanup::interrupted() {
                // The work failed because a signal came (Error::Interrupted, or a file
                // the handler removed): the handler removes the staging and exits with
                // 128 + signal.
                await_signal_exit();
            }
            say(&format!("error: {}", worded(&err)));
            if global.verbose {
                for (n, cause) in causes(&err).iter().enumerate() {
                    say(&format!("  cause {}: {cause}", n + 1));
                }
            }
            let usage = err.chain().any(|c| {
                c.downcast_ref::<dockhand::Error>()
                    .is_some_and(|e| e.is_usage())
            });
            ExitCode::from(if usage { 2 } else { 1 })
        }
    };
    if global.verbose {
        say(&clock.line());
    }
    code
}

/// On SIGINT, SIGTERM or SIGHUP: remove every staging path, say so, and exit with
/// 128 + the signal, keeping any commit from starting meanwhile.
fn install_signal_handlers() -> io::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    std::thread::Builder::new()
        .name("dockhand-signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                let _no_commit_from_now = dockhand::cleanup::interrupt();
                // Never eprintln!: it panics on a closed stderr, which would leave the
                // process running.
                let _ = writeln!(
                    io::stderr(),
                    "error: interrupted by signal {signal}; nothing was written"
                );
                std::process::exit(128 + signal);
            }
        })?;
    Ok(())
}

/// Wait for the signal handler to end the process: exiting here could cut its removal
/// of the staging short, or report the wrong status.
fn await_signal_exit() -> ! {
    loop {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Counts what a conversion wrote, for its summary, when its first layer started, for
/// its timings, and drives the progress bars.
struct Tally {
    layers: AtomicUsize,
    bytes: AtomicU64,
    first_layer: OnceLock<Instant>,
    bars: Option<Bars>,
}

impl Progress for Tally {
    fn planned(&self, layers: usize, bytes: u64) {
        if let Some(bars) = &self.bars {
            bars.planned(layers, bytes);
        }
    }
    fn layer_started(&self, path: &str, size: u64) {
        self.first_layer.get_or_init(Instant::now);
        if let Some(bars) = &self.bars {
            bars.started(path, size);
        }
    }
    fn layer_advanced(&self, path: &str, bytes: u64) {
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        if let Some(bars) = &self.bars {
            bars.advanced(path, bytes);
        }
    }
    fn layer_done(&self, path: &str) {
        self.layers.fetch_add(1, Ordering::Relaxed);
        if let Some(bars) = &self.bars {
            bars.done(path);
        }
    }
}

/// Progress bars on stderr: one per layer in flight (bytes, rate) and one for the
/// whole (total, ETA).
struct Bars {
    multi: indicatif::MultiProgress,
    overall: indicatif::ProgressBar,
    layers: std::sync::Mutex<std::collections::HashMap<String, indicatif::ProgressBar>>,
    /// The lines' shape for the terminal's width when the bars started.
    layout: cli::bar_layout::Layout,
}

/// How often bars are redrawn when nothing advances, so that their rates decay
/// instead of showing the last one for as long as a layer stalls.
const BAR_TICK: std::time::Duration = std::time::Duration::from_millis(500);

impl Bars {
    /// Bars when stderr is a terminal, `quiet` is off and `CI` is not set: never
    /// anything on stdout, and nothing in a log.
    fn for_terminal(quiet: bool) -> Option<Bars> {
        use std::io::IsTerminal;
        if quiet || std::env::var_os("CI").is_some() || !io::stderr().is_terminal() {
            return None;
        }
        let layout = cli::bar_layout::for_width(cli::bar_layout::stderr_width());
        let multi =
            indicatif::MultiProgress::with_draw_target(indicatif::ProgressDrawTarget::stderr());
        let overall = multi.add(indicatif::ProgressBar::new(0));
        overall.set_style(
            indicatif::ProgressStyle::with_template(&layout.overall)
                .expect("a valid template")
                .progress_chars("=> "),
        );
        overall.set_prefix("total");
        overall.enable_steady_tick(BAR_TICK);
        Some(Bars {
            multi,
            overall,
            layers: Default::default(),
            layout,
        })
    }

    fn planned(&self, _layers: usize, bytes: u64) {
        self.overall.set_length(bytes);
        self.overall.tick();
    }

    fn started(&self, path: &str, size: u64) {
        let bar = self
            .multi
            .insert_before(&self.overall, indicatif::ProgressBar::new(size));
        bar.set_style(
            indicatif::ProgressStyle::with_template(&self.layout.layer)
                .expect("a valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix("layer");
        // The layer's name in the source, escaped (a path from an archive must not
        // drive the terminal) and shortened to what the line has room for.
        let short = cli::bar_layout::shortened(&one_line(path), self.layout.name);
        bar.enable_steady_tick(BAR_TICK);
        bar.set_message(short);
        bar.tick();
        self.layers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(path.to_string(), bar);
    }

    fn advanced(&self, path: &str, bytes: u64) {
        self.overall.inc(bytes);
        if let Some(bar) = self
            .layers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(path)
        {
            bar.inc(bytes);
        }
    }

    fn done(&self, path: &str) {
        if let Some(bar) = self
            .layers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(path)
        {
            bar.finish_and_clear();
            self.multi.remove(&bar);
        }
    }

    /// Take the bars off the screen (before the summary or an error is printed).
    fn clear(&self) {
        for (_, bar) in self
            .layers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
        {
            bar.finish_and_clear();
        }
        self.overall.finish_and_clear();
        let _ = self.multi.clear();
    }
}

impl Tally {
    fn new(quiet: bool) -> Tally {
        Tally {
            layers: AtomicUsize::new(0),
            bytes: AtomicU64::new(0),
            first_layer: OnceLock::new(),
            bars: Bars::for_terminal(quiet),
        }
    }

    /// Take the bars off the screen.
    fn clear(&self) {
        if let Some(bars) = &self.bars {
            bars.clear();
        }
    }

    fn summary(&self) -> String {
        format!(
            "{} layer(s) written, {} read",
            self.layers.load(Ordering::Relaxed),
            human_size(self.bytes.load(Ordering::Relaxed))
        )
    }
}

/// How many names of one image the convert summary lists; past that it says how many
/// more there are, so that a line stays readable whatever the input holds.
const SUMMARY_NAMES: usize = 100;

/// Print one line on stderr, escaped so that nothing from an input can add a line or
/// drive the terminal. A closed stderr is not an error worth dying for.
fn say(line: &str) {
    let _ = writeln!(io::stderr().lock(), "{}", one_line(line));
}

/// clap's errors span several lines; dockhand's are one line, exit code 2. Help and
/// version go to stdout as clap prints them.
fn command_line_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        // `dockhand` alone: the help as `--help` lays it out (on stderr, as clap prints
        // it), not folded into one line, and a usage error's exit code.
        let _ = e.print();
        return ExitCode::from(2);
    }
    let rendered = e.render().to_string();
    let words: Vec<&str> = rendered
        .lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty() && !l.starts_with("Usage:") && !l.starts_with("For more information")
        })
        .collect();
    let message = words.join(" ");
    let message = message.strip_prefix("error: ").unwrap_or(&message);
    say(&format!("error: {message} (see dockhand --help)"));
    ExitCode::from(2)
}

/// An error as the command line words it: the library's options named by their flags,
/// and, for an image no selector found, how to list what the source holds.
fn worded(err: &anyhow::Error) -> String {
    let Some(e) = err.downcast_ref::<dockhand::Error>() else {
        return format!("{err:#}");
    };
    let mut text = e.naming(flag_of);
    if let Some(input) = e.unselected_input() {
        let src = match input {
            // Read once: the same input fed again.
            "stdin" => "- (on the same input)".to_string(),
            input => shell_word(input),
        };
        text.push_str(&format!(
            "; `dockhand inspect {}` lists every image with its names and IDs",
            dockhand::text::shown(&src)
        ));
    }
    text
}

/// The flag that sets a library option.
fn flag_of(setting: dockhand::Setting) -> &'static str {
    use dockhand::Setting;
    match setting {
        Setting::Force => "--force",
        Setting::Image => "--image",
        Setting::Tag => "--tag",
        Setting::Platform => "--platform",
        Setting::AllPlatforms => "--all",
        Setting::From => "--from",
        Setting::To => "--to",
        Setting::DockerLayout => "--docker-layout",
        Setting::LayerCompression => "--layer-compression",
        Setting::CompressionLevel => "--compression-level",
        Setting::Creds => "--creds",
        Setting::Authfile => "--authfile",
        Setting::Cache => "--cache",
        Setting::NoCache => "--no-cache",
        Setting::RetryTimes => "--retry-times",
        Setting::TlsVerify => "--tls-verify",
        Setting::CertDir => "--cert-dir",
        Setting::ManifestFormat => "--format",
        Setting::DigestFile => "--digestfile",
        Setting::Referrers => "--referrers",
        Setting::ReferrerTypes => "--referrers-type",
        Setting::Scoped => "--scoped",
        Setting::Change => "--change",
        Setting::Annotation => "--annotation",
        Setting::IndexAnnotation => "--index-annotation",
        _ => "an option",
    }
}

/// `text` as one shell word: unchanged when it holds only characters no shell treats
/// specially, else in single quotes.
fn shell_word(text: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-./:@%+=,".contains(c);
    if !text.is_empty() && text.chars().all(plain) {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
            || cause
                .downcast_ref::<dockhand::Error>()
                .is_some_and(|e| e.is_broken_pipe())
    })
}

/// Archives do not go to or come from a terminal: a forgotten redirection would print
/// binary data, or wait for typed input.
/// The sources `--images-from` lists: one per line, blank lines and `#` comments
/// skipped, surrounding spaces trimmed.
fn sources_from(file: &std::path::Path) -> anyhow::Result<Vec<String>> {
    const MAX_SOURCES: usize = 100_000;
    let shown_file = file.display().to_string();
    const MAX_BYTES: u64 = 16 << 20;
    let mut text = Vec::new();
    std::fs::File::open(file)
        .and_then(|f| io::Read::read_to_end(&mut io::Read::take(f, MAX_BYTES + 1), &mut text))
        .with_context(|| format!("reading {shown_file}"))?;
    if text.len() as u64 > MAX_BYTES {
        return Err(dockhand::Error::Usage(format!(
            "{shown_file}: over {MAX_BYTES} bytes; a list of sources is a few lines"
        ))
        .into());
    }
    let text = String::from_utf8(text)
        .map_err(|_| dockhand::Error::Usage(format!("{shown_file}: not UTF-8 text")))?;
    let sources: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect();
    if sources.len() > MAX_SOURCES {
        return Err(dockhand::Error::Usage(format!(
            "{shown_file}: lists {} sources, over the limit of {MAX_SOURCES}",
            sources.len()
        ))
        .into());
    }
    Ok(sources)
}

/// The line `diff` ends with on stderr: the two images, their layers, the counts.
fn diff_summary(diff: &dockhand::ImageDiff) -> String {
    let side = |s: &dockhand::DiffSide| {
        format!(
            "{}{} {} {}",
            s.input,
            s.index.map(|i| format!(" @{i}")).unwrap_or_default(),
            s.image_id.short(),
            s.image
        )
    };
    let summary = diff.summary();
    format!(
        "diff of A {} and B {}: {} layer(s) shared, {} of A's own ({}), {} of B's own ({}); {} added, {} removed, {} changed; {}",
        side(&diff.a),
        side(&diff.b),
        diff.b.shared_layers(),
        diff.a.layers.len() - diff.a.shared_layers(),
        human_size(diff.a.own_bytes()),
        diff.b.layers.len() - diff.b.shared_layers(),
        human_size(diff.b.own_bytes()),
        summary.added,
        summary.removed,
        summary.changed,
        if diff.config.is_empty() {
            "the same config".to_string()
        } else {
            let keys: Vec<&str> = diff.config.iter().map(|c| c.key.as_str()).collect();
            format!("config differs in {}", one_line(&keys.join(", ")))
        }
    )
}

fn check_terminals(src: Option<&str>, dst: Option<&str>) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    if src == Some("-") && io::stdin().is_terminal() {
        return Err(dockhand::Error::Usage(
            "refusing to read an archive from a terminal; pipe one into stdin".into(),
        )
        .into());
    }
    if dst == Some("-") && io::stdout().is_terminal() {
        return Err(dockhand::Error::Usage(
            "refusing to write an archive to a terminal; redirect stdout".into(),
        )
        .into());
    }
    Ok(())
}

fn parse_platform(s: &str) -> Result<Platform, String> {
    Platform::parse(s)
}

fn parse_layer_compression(s: &str) -> Result<LayerCompression, String> {
    LayerCompression::parse(s).ok_or_else(|| "expected keep, none, gzip or zstd".to_string())
}

fn run(cli: Cli, clock: &mut Clock) -> anyhow::Result<()> {
    let GlobalArgs { quiet, verbose } = cli.global;
    match cli.command {
        Command::Convert {
            from,
            to,
            images,
            tags,
            platform,
            all,
            docker_layout,
            layer_compression,
            compression_level,
            format,
            force,
            digestfile,
            referrers,
            referrers_type,
            registry,
            ends,
            images_from,
            mut paths,
        } => {
            let dst = paths.pop().expect("clap requires one path");
            let mut srcs = match &images_from {
                Some(file) => sources_from(file)?,
                None => Vec::new(),
            };
            srcs.extend(paths);
            if srcs.is_empty() {
                return Err(dockhand::Error::Usage(format!(
                    "convert needs a source and a destination (SRC... DST), or {} FILE and DST",
                    "--images-from"
                ))
                .into());
            }
            let options = ConvertOptions {
                from,
                to,
                images,
                tags,
                force,
                platform,
                docker_layout: docker_layout.map(Into::into),
                layer_compression: layer_compression.unwrap_or_default(),
                compression_level,
                manifest_format: format.map(Into::into),
                source_registry: ends.source(&registry),
                dest_registry: ends.destination(&registry),
                digest_file: digestfile,
                all_platforms: all,
                referrers,
                referrer_types: referrers_type,
                keep_manifests: false,
            };
            let path = |s: &str| Location::parse(s).map(|l| l.path).ok();
            for src in &srcs {
                check_terminals(path(src).as_deref(), None)?;
            }
            check_terminals(None, path(&dst).as_deref())?;
            let locations = srcs
                .iter()
                .map(|s| Location::parse(s))
                .collect::<Result<Vec<_>, _>>()?;
            let several = locations.len() > 1;
            let tally = Tally::new(quiet);
            let report =
                dockhand::convert_sources(&locations, &Location::parse(&dst)?, &options, &tally);
            tally.clear();
            if let Some(&at) = tally.first_layer.get() {
                clock.mark_at("open and read metadata", at);
                clock.mark("write layers and commit");
            }
            let report = report?;
            if verbose {
                for detail in &report.details {
                    say(detail);
                }
            }
            if !quiet {
                for w in &report.warnings {
                    say(&format!("warning: {w}"));
                }
                for note in &report.notes {
                    say(note);
                }
                let how = match report.plan {
                    Some(Plan::AddToOciLayout) => " (added to the existing layout)",
                    Some(Plan::Replace) => " (replaced the destination)",
                    _ => "",
                };
                say(&format!(
                    "converted {} image(s) from {} to {}{how}, {}:",
                    report.images.len(),
                    report.from.map_or("?", Format::name),
                    report.to.map_or("?", Format::name),
                    tally.summary()
                ));
                for ((image, index), source) in report
                    .images
                    .iter()
                    .zip(&report.source_indices)
                    .zip(&report.source_of)
                {
                    // With several sources, which one: its number, from 1.
                    let from = if several {
                        format!("{}:", source + 1)
                    } else {
                        String::new()
                    };
                    say(&format!(
                        "  {from}@{index} {} {}",
                        image.config.digest.short(),
                        names_line(image, SUMMARY_NAMES)
                    ));
                }
                if referrers || !report.referrers.is_empty() {
                    say(&format!(
                        "carried {} referrer manifest(s) along",
                        report.referrers.len()
                    ));
                }
            }
            Ok(())
        }
        Command::Inspect {
            json,
            no_trunc,
            platforms,
            filter,
            format,
            tree,
            source,
        } => {
            let filters = dockhand::ImageFilters::parse(&filter)?;
            let template = format
                .as_deref()
                .map(cli::format::Template::parse)
                .transpose()
                .map_err(dockhand::Error::Usage)?;
            // Listing platforms walks every platform, so that none is an error.
            let all = platforms && source.platform.is_none();
            let source_all = source.all;
            let (mut source, selected) = open_selected(&source, all)?;
            let selected = filters.apply(&mut source.images, &selected)?;
            clock.mark("open and read metadata");
            if !quiet {
                for w in &source.warnings {
                    say(&format!("warning: {w}"));
                }
            }
            let mut out = stdout_buffer()?;
            if let Some(template) = template {
                let rows = dockhand::image_rows(&source.images, &selected);
                let text = template.render(&rows, no_trunc, std::time::SystemTime::now());
                // Each value is escaped already; the template is the caller's own.
                out.write_all(text.as_bytes())
                    .context("writing to stdout")?;
            } else if tree {
                out.write_all(family_tree(&source, &selected, no_trunc).as_bytes())
                    .context("writing to stdout")?;
            } else if platforms {
                let text = if json {
                    serde_json::to_string_pretty(&dockhand::platforms_json(&source))
                        .context("writing to stdout")?
                        + "\n"
                } else {
                    platforms_table(&source, no_trunc)
                };
                out.write_all(text.as_bytes())
                    .context("writing to stdout")?;
            } else {
                // Signatures, attestations, SBOMs: manifests only, no layer is read.
                let referrers = dockhand::image_referrers(&source, &selected, source_all)?;
                if json {
                    let doc = inspect_json(&source, &selected).with_referrers(&referrers);
                    write_json(&doc, &mut out)?;
                    out.write_all(b"\n").context("writing to stdout")?;
                } else {
                    let text = inspect_table(&source, &selected, no_trunc)
                        + &referrers_table(&source, &selected, &referrers, no_trunc);
                    out.write_all(text.as_bytes())
                        .context("writing to stdout")?;
                }
            }
            out.flush().context("writing to stdout")?;
            Ok(())
        }
        Command::History {
            json,
            no_trunc,
            source,
        } => {
            let (source, selected) = open_selected(&source, false)?;
            clock.mark("open and read metadata");
            let tally = Tally::new(quiet);
            let histories = image_histories(&source.images, &selected, &tally);
            tally.clear();
            let histories = histories?;
            if tally.first_layer.get().is_some() {
                clock.mark("read compressed layers");
            }
            // Nothing is kept of what was read (a registry's blobs leave the cache).
            let late = source.finished();
            if !quiet {
                for w in source.warnings.iter().chain(&late) {
                    say(&format!("warning: {w}"));
                }
                for history in &histories {
                    let image = &source.images[history.index];
                    let guessed = history.history.iter().filter(|r| !r.size_exact);
                    for layer in guessed.filter_map(|r| r.layer).map(|i| &image.layers[i]) {
                        say(&format!(
                            "warning: image @{} {}: layer {} is absent from the source, \
                             so its SIZE is its compressed size",
                            history.index,
                            dockhand::text::shown(&image.display_name()),
                            dockhand::text::shown(&layer.path)
                        ));
                    }
                }
            }
            let mut out = stdout_buffer()?;
            if json {
                write_json(&serde_json::json!({ "images": histories }), &mut out)?;
                out.write_all(b"\n").context("writing to stdout")?;
            } else {
                let now = std::time::SystemTime::now();
                for (n, (history, &i)) in histories.iter().zip(&selected).enumerate() {
                    if histories.len() > 1 {
                        let gap = if n > 0 { "\n" } else { "" };
                        let name = one_line(&names_line(&source.images[i], SUMMARY_NAMES));
                        writeln!(out, "{gap}@{i} {name}").context("writing to stdout")?;
                    }
                    out.write_all(history_table(history, no_trunc, now).as_bytes())
                        .context("writing to stdout")?;
                }
            }
            out.flush().context("writing to stdout")?;
            Ok(())
        }
        Command::Export {
            from,
            images,
            platform,
            force,
            registry,
            src,
            out,
        } => {
            let location = Location::parse(&src)?;
            check_terminals(Some(&location.path), Some(&out))?;
            let options = dockhand::ExportOptions {
                from,
                images,
                platform,
                registry: registry.options(),
                force,
            };
            let tally = Tally::new(quiet);
            let report = dockhand::export(&location, &out, &options, &tally);
            tally.clear();
            let report = report?;
            clock.mark("export");
            if !quiet {
                let to = if out == "-" { "stdout" } else { out.as_str() };
                say(&format!(
                    "exported image @{} {} {}: {} path(s), {} to {}",
                    report.index.unwrap_or(0),
                    report.image_id.short(),
                    one_line(&report.image),
                    report.entries,
                    human_size(report.bytes),
                    one_line(to)
                ));
            }
            Ok(())
        }
        Command::Diff {
            images,
            platform,
            times,
            json,
            registry,
            a,
            b,
        } => {
            let a = Location::parse(&a)?;
            let b = b.as_deref().map(Location::parse).transpose()?;
            for side in std::iter::once(&a).chain(&b) {
                check_terminals(Some(&side.path), None)?;
            }
            let options = dockhand::DiffOptions {
                images,
                platform,
                registry: registry.options(),
                compare: dockhand::CompareOptions { times },
            };
            let tally = Tally::new(quiet);
            let diff = dockhand::diff(&a, b.as_ref(), &options, &tally);
            tally.clear();
            let diff = diff?;
            clock.mark("diff");
            let mut out = io::BufWriter::new(io::stdout().lock());
            if json {
                diff.write_json(&mut out).context("writing to stdout")?;
            } else {
                diff.write_lines(&mut out).context("writing to stdout")?;
            }
            out.flush().context("writing to stdout")?;
            if !quiet && !json {
                say(&diff_summary(&diff));
            }
            Ok(())
        }
        Command::Verify { keys, source } => {
            // Keys first: a bad key file fails before anything is read.
            let keys = read_keys(&keys)?;
            let (source, selected) = open_selected(&source, false)?;
            clock.mark("open and read metadata");
            let chosen: Vec<dockhand::Image> =
                selected.iter().map(|&i| source.images[i].clone()).collect();
            let mut signed = Vec::new();
            if !keys.is_empty() {
                let checks = dockhand::verify_signatures(&source, &chosen, &keys)?;
                clock.mark("verify signatures");
                for (check, &i) in checks.iter().zip(&selected) {
                    let v = check.required()?;
                    let through = if Some(&v.subject) == check.manifest.as_ref() {
                        String::new()
                    } else {
                        format!(" through its index {}", v.subject)
                    };
                    signed.push(format!(
                        "image @{i} {}: signature {} (payload {}) verifies with {}{through}",
                        one_line(&check.image),
                        v.signature,
                        v.layer,
                        one_line(&v.key)
                    ));
                }
            }
            let tally = Tally::new(quiet);
            let report = verify(&chosen, &tally);
            tally.clear();
            let report = report?;
            clock.mark("verify layers");
            // Nothing is kept of what was verified (a registry's blobs leave the cache).
            let late = source.finished();
            if !quiet {
                for w in source.warnings.iter().chain(&late) {
                    say(&format!("warning: {w}"));
                }
                for line in &signed {
                    say(line);
                }
                say(&format!(
                    "verified {} image(s), {} layer(s), {} bytes: all digests and diff_ids match",
                    report.images, report.layers, report.bytes
                ));
                if let Some(note) = platforms_left_out(&source, &chosen) {
                    say(&note);
                }
            }
            Ok(())
        }
        Command::Tags {
            digests: true,
            max_tags,
            json,
            registry,
            repository,
        } => {
            let report = dockhand::tags_by_digest(&repository, &registry.options(), max_tags)?;
            clock.mark("resolve tags");
            let mut out = stdout_buffer()?;
            if json {
                write_json(&report, &mut out)?;
                out.write_all(b"\n").context("writing to stdout")?;
            } else {
                for group in &report.groups {
                    writeln!(
                        out,
                        "{}  {}  {}  {}",
                        group.digest,
                        one_line(&group.platforms.join(",")),
                        one_line(group.created.as_deref().unwrap_or("-")),
                        one_line(&group.tags.join(" "))
                    )
                    .context("writing to stdout")?;
                }
            }
            out.flush().context("writing to stdout")?;
            if report.truncated {
                say(&format!(
                    "note: resolved only the first {} tag(s); the repository has more \
                     (--max-tags N resolves more)",
                    report.tags
                ));
            }
            Ok(())
        }
        Command::Catalog {
            json,
            page_size,
            registry,
            host,
        } => {
            let options = dockhand::CatalogOptions {
                page_size,
                ..dockhand::CatalogOptions::new(registry.options())
            };
            if json {
                let names = dockhand::list_repositories(&host, &options)?;
                let mut out = stdout_buffer()?;
                write_json(&serde_json::json!({ "repositories": names }), &mut out)?;
                out.write_all(b"\n").context("writing to stdout")?;
                out.flush().context("writing to stdout")?;
            } else {
                // Printed as each page arrives.
                let mut out = io::stdout().lock();
                dockhand::for_each_repository(&host, &options, &mut |name| {
                    writeln!(out, "{}", one_line(name))
                        .map_err(|e| dockhand::Error::io("writing to stdout", e))
                })?;
                out.flush().context("writing to stdout")?;
            }
            clock.mark("list repositories");
            Ok(())
        }
        Command::Tag {
            registry: _,
            image,
            new_tags,
        } if !image.starts_with("docker://") => {
            let report = dockhand::store_tag(&Location::parse(&image)?, &new_tags)?;
            clock.mark("tag");
            if !quiet {
                say_store_report(&report);
            }
            Ok(())
        }
        Command::Untag { src, names } => {
            let report = dockhand::store_untag(&Location::parse(&src)?, &names)?;
            clock.mark("untag");
            if !quiet {
                say_store_report(&report);
            }
            Ok(())
        }
        Command::Rm { images, src } => {
            let location = Location::parse(&src)?;
            let chosen = images
                .iter()
                .map(|i| dockhand::Selector::parse(i))
                .collect::<Result<Vec<_>, _>>()?;
            let report = dockhand::store_remove(&location, &chosen)?;
            clock.mark("remove");
            if !quiet {
                say_store_report(&report);
            }
            Ok(())
        }
        Command::Gc { dry_run, layout } => {
            let report = dockhand::store_gc(std::path::Path::new(&layout), dry_run)?;
            clock.mark("collect");
            let mut text = String::new();
            for (digest, _) in &report.removed {
                text += &format!("{digest}\n");
            }
            write_stdout(text.as_bytes())?;
            if !quiet {
                for unknown in &report.unknown {
                    say(&format!(
                        "left alone: {} (not a blob named by its digest)",
                        dockhand::text::shown(unknown)
                    ));
                }
                let bytes: u64 = report.removed.iter().map(|(_, size)| size).sum();
                say(&format!(
                    "{} {} blob(s), {}; {} blob(s) in use kept",
                    if dry_run { "would remove" } else { "removed" },
                    report.removed.len(),
                    human_size(bytes),
                    report.kept
                ));
            }
            Ok(())
        }
        Command::Tag {
            registry,
            image,
            new_tags,
        } => {
            let report = dockhand::tag_image(&image, &new_tags, &registry.options())?;
            clock.mark("tag");
            if !quiet {
                for tag in &report.tags {
                    say(&format!(
                        "tagged docker://{}:{}@{}",
                        one_line(&report.repository),
                        one_line(tag),
                        report.digest
                    ));
                }
            }
            Ok(())
        }
        Command::Delete { registry, image } => {
            let digest = dockhand::delete_image(&image, &registry.options())?;
            clock.mark("delete");
            if !quiet {
                say(&format!(
                    "deleted {}@{digest}",
                    one_line(image.split('@').next().unwrap_or(&image))
                ));
            }
            Ok(())
        }
        Command::Digest { source } => {
            let digests = digests_of(&source)?;
            clock.mark("resolve");
            let mut text = String::new();
            for digest in digests {
                text += &format!("{digest}\n");
            }
            write_stdout(text.as_bytes())
        }
        Command::Tags {
            digests: false,
            registry,
            repository,
            ..
        } => {
            // Printed as each page arrives: a repository with millions of tags costs
            // one page of memory.
            let mut out = io::stdout().lock();
            dockhand::for_each_tag(&repository, &registry.options(), &mut |tag| {
                writeln!(out, "{}", one_line(tag))
                    .map_err(|e| dockhand::Error::io("writing to stdout", e))
            })?;
            clock.mark("list tags");
            out.flush().context("writing to stdout")?;
            Ok(())
        }
        Command::Sync {
            src,
            parallel,
            keep_going: _,
            fail_fast,
            dry_run,
            json,
            all,
            referrers,
            shard,
            registry,
            ends,
            source,
            destination,
        } => run_sync(
            SyncArgs {
                src,
                scoped: ends.scoped,
                parallel,
                fail_fast,
                dry_run,
                json,
                all,
                referrers,
                shard: shard.as_deref().map(parse_shard).transpose()?,
            },
            &registry,
            &ends,
            &source,
            &destination,
            quiet,
        ),
        Command::Import {
            tags,
            platform,
            changes,
            message,
            edit,
            rootfs,
            dst,
        } => {
            let mut options = edit.options()?;
            options.convert.tags = tags;
            options.convert.platform = platform;
            options.edit.changes = instructions(&changes)?;
            options.edit.history.comment = message;
            check_terminals(Some(&rootfs), location_path(&dst).as_deref())?;
            let tally = Tally::new(quiet);
            let report =
                dockhand::import_rootfs(&rootfs, &Location::parse(&dst)?, &options, &tally);
            edit_summary("imported", report, &tally, quiet, clock)
        }
        Command::Append {
            select,
            history,
            changes,
            edit,
            mut paths,
        } => {
            let dst = paths.pop().expect("clap requires three paths");
            let src = paths.remove(0);
            let mut options = edit.options()?;
            select.apply(&mut options.convert);
            options.edit.changes = instructions(&changes)?;
            options.edit.history = history.note();
            check_terminals(
                location_path(&src).as_deref(),
                location_path(&dst).as_deref(),
            )?;
            for layer in &paths {
                check_terminals(Some(layer), None)?;
            }
            options.layers = paths;
            let tally = Tally::new(quiet);
            let report = dockhand::edit_images(
                &Location::parse(&src)?,
                &Location::parse(&dst)?,
                &options,
                &tally,
            );
            edit_summary("appended to", report, &tally, quiet, clock)
        }
        Command::Flatten {
            select,
            history,
            changes,
            edit,
            src,
            dst,
        } => {
            let mut options = edit.options()?;
            select.apply(&mut options.convert);
            options.edit.changes = instructions(&changes)?;
            options.edit.history = history.note();
            options.flatten = true;
            check_terminals(
                location_path(&src).as_deref(),
                location_path(&dst).as_deref(),
            )?;
            let tally = Tally::new(quiet);
            let report = dockhand::edit_images(
                &Location::parse(&src)?,
                &Location::parse(&dst)?,
                &options,
                &tally,
            );
            edit_summary("flattened", report, &tally, quiet, clock)
        }
        Command::Mutate {
            select,
            changes,
            cmd,
            entrypoint,
            env,
            unset_env,
            label,
            unset_label,
            user,
            workdir,
            expose,
            unset_expose,
            volume,
            unset_volume,
            clear_cmd,
            clear_entrypoint,
            annotation,
            index_annotation,
            edit,
            src,
            dst,
        } => {
            use dockhand::ConfigChange as C;
            let mut options = edit.options()?;
            select.apply(&mut options.convert);
            let mut all = instructions(&changes)?;
            for (keyword, value) in [("CMD", &cmd), ("ENTRYPOINT", &entrypoint)] {
                if let Some(value) = value {
                    all.extend(flag_instruction(keyword, value)?);
                }
            }
            all.extend(env.into_iter().map(|(name, value)| C::Env { name, value }));
            all.extend(unset_env.into_iter().map(C::UnsetEnv));
            all.extend(
                label
                    .into_iter()
                    .map(|(name, value)| C::Label { name, value }),
            );
            all.extend(unset_label.into_iter().map(C::UnsetLabel));
            all.extend(user.map(C::User));
            all.extend(workdir.map(C::WorkingDir));
            all.extend(expose.into_iter().map(C::Expose));
            all.extend(unset_expose.into_iter().map(C::UnsetExpose));
            all.extend(volume.into_iter().map(C::Volume));
            all.extend(unset_volume.into_iter().map(C::UnsetVolume));
            if clear_cmd {
                all.push(C::ClearCmd);
            }
            if clear_entrypoint {
                all.push(C::ClearEntrypoint);
            }
            // The history entry says what changed.
            let described: Vec<String> = all.iter().map(ToString::to_string).collect();
            options.edit.history.created_by = (!described.is_empty())
                .then(|| format!("dockhand mutate: {}", described.join("; ")));
            options.edit.changes = all;
            options.edit.annotations = annotation.into_iter().collect();
            options.edit.index_annotations = index_annotation.into_iter().collect();
            check_terminals(
                location_path(&src).as_deref(),
                location_path(&dst).as_deref(),
            )?;
            let tally = Tally::new(quiet);
            let report = dockhand::edit_images(
                &Location::parse(&src)?,
                &Location::parse(&dst)?,
                &options,
                &tally,
            );
            edit_summary("changed", report, &tally, quiet, clock)
        }
        Command::Completions { shell } => {
            // Rendered in memory first: clap_complete panics on a failed write.
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "dockhand", &mut script);
            write_stdout(&script)
        }
        Command::Man { command } => write_stdout(&man_page(command.as_deref())?),
    }
}

impl SelectArgs {
    /// Set the selection of `options` from these flags.
    fn apply(self, options: &mut ConvertOptions) {
        options.images = self.images;
        options.platform = self.platform;
        options.all_platforms = self.all;
        options.tags = self.tags;
    }
}

impl HistoryArgs {
    /// The history entry these flags describe.
    fn note(self) -> dockhand::HistoryNote {
        dockhand::HistoryNote {
            created_by: self.created_by,
            author: self.author,
            comment: self.message,
        }
    }
}

impl EditArgs {
    /// The library's options for an edit command: its destination flags, its
    /// registries, and SOURCE_DATE_EPOCH for the times it writes.
    fn options(&self) -> anyhow::Result<dockhand::EditOptions> {
        let EditArgs {
            write,
            registry,
            ends,
        } = self;
        let epoch = source_date_epoch()?;
        Ok(dockhand::EditOptions {
            convert: ConvertOptions {
                to: write.to,
                force: write.force,
                docker_layout: write.docker_layout.map(Into::into),
                layer_compression: write.layer_compression.unwrap_or_default(),
                compression_level: write.compression_level,
                manifest_format: write.format.map(Into::into),
                source_registry: ends.source(registry),
                dest_registry: ends.destination(registry),
                digest_file: write.digestfile.clone(),
                ..ConvertOptions::default()
            },
            edit: dockhand::ImageEdit {
                created: epoch.map(|secs| {
                    std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs.max(0) as u64)
                }),
                ..Default::default()
            },
            clamp_mtime: epoch,
            ..Default::default()
        })
    }
}

/// `SOURCE_DATE_EPOCH`, when set: seconds since the epoch, as reproducible builds
/// define it.
fn source_date_epoch() -> anyhow::Result<Option<i64>> {
    let Some(value) = std::env::var_os("SOURCE_DATE_EPOCH") else {
        return Ok(None);
    };
    let text = value.to_string_lossy();
    match text.trim().parse::<i64>() {
        Ok(secs) if secs >= 0 => Ok(Some(secs)),
        _ => Err(dockhand::Error::Usage(format!(
            "SOURCE_DATE_EPOCH={} is not a number of seconds since 1970",
            dockhand::text::shown(&text)
        ))
        .into()),
    }
}

/// The instructions of every `--change`.
fn instructions(changes: &[String]) -> anyhow::Result<Vec<dockhand::ConfigChange>> {
    let mut all = Vec::new();
    for change in changes {
        all.extend(dockhand::ConfigChange::instructions(change)?);
    }
    Ok(all)
}

/// `--cmd` or `--entrypoint` as the Dockerfile instruction `KEYWORD VALUE`; words of
/// the error name the flag.
fn flag_instruction(keyword: &str, value: &str) -> anyhow::Result<Vec<dockhand::ConfigChange>> {
    if value.contains(['\n', '\r']) {
        return Err(dockhand::Error::Usage(format!(
            "--{}: one line, a JSON array or a command",
            keyword.to_ascii_lowercase()
        ))
        .into());
    }
    Ok(dockhand::ConfigChange::instructions(&format!(
        "{keyword} {value}"
    ))?)
}

/// `NAME=VALUE`.
fn parse_pair(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_string(), value.to_string())),
        _ => Err(format!("expected NAME=VALUE, not {}", one_line(text))),
    }
}

/// The path of a location as given (`-` for stdio), for the terminal checks.
fn location_path(text: &str) -> Option<String> {
    Location::parse(text).map(|l| l.path).ok()
}

/// What an edit command says when it is done: the images it wrote, by their new IDs.
fn edit_summary(
    verb: &str,
    report: dockhand::Result<dockhand::ConvertReport>,
    tally: &Tally,
    quiet: bool,
    clock: &mut Clock,
) -> anyhow::Result<()> {
    tally.clear();
    if let Some(&at) = tally.first_layer.get() {
        clock.mark_at("open, read metadata and make layers", at);
        clock.mark("write layers and commit");
    }
    let report = report?;
    if !quiet {
        for w in &report.warnings {
            say(&format!("warning: {w}"));
        }
        for note in &report.notes {
            say(note);
        }
        let how = match report.plan {
            Some(Plan::AddToOciLayout) => " (added to the existing layout)",
            Some(Plan::Replace) => " (replaced the destination)",
            _ => "",
        };
        say(&format!(
            "{verb} {} image(s), written to {}{how}, {}:",
            report.images.len(),
            report.to.map_or("?", Format::name),
            tally.summary()
        ));
        for image in &report.images {
            say(&format!(
                "  {} {}",
                image.config.digest,
                names_line(image, SUMMARY_NAMES)
            ));
        }
    }
    Ok(())
}

/// The man page of dockhand (`command` None) or of one of its subcommands, named as
/// the top page's list names it (dockhand-convert(1), ...), so that every page it
/// refers to exists.
fn man_page(command: Option<&str>) -> anyhow::Result<Vec<u8>> {
    // Built, as clap_mangen's generate_to builds it: subcommands get their global
    // options and their names (dockhand-convert, `dockhand convert`). No `help`
    // subcommand: it would be listed as a page that does not exist.
    let mut top = Cli::command().disable_help_subcommand(true);
    top.build();
    let cmd = match command {
        None => top,
        Some(name) => match top.find_subcommand(name) {
            Some(sub) => sub.clone(),
            None => {
                let names: Vec<&str> = top.get_subcommands().map(|c| c.get_name()).collect();
                return Err(dockhand::Error::Usage(format!(
                    "man: no subcommand {:?}; there are pages for {}",
                    one_line(name),
                    names.join(", ")
                ))
                .into());
            }
        },
    };
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut page)
        .context("rendering the man page")?;
    Ok(page)
}

/// What an edit of a store did, a line each on stderr, as docker's `Untagged:` and
/// `Deleted:` lines say it.
fn say_store_report(report: &dockhand::StoreReport) {
    use dockhand::StoreChange;
    for change in &report.changes {
        match change {
            StoreChange::Tagged { name, image } => {
                say(&format!("tagged {name} ({})", image.short()))
            }
            StoreChange::AlreadyTagged { name, image } => {
                say(&format!("{name} already names {}", image.short()))
            }
            StoreChange::Moved { name, from } => {
                say(&format!("{name} no longer names {}", from.short()))
            }
            StoreChange::Untagged { name, image } => match image {
                Some(image) => say(&format!("untagged {name} ({})", image.short())),
                None => say(&format!("untagged {name}")),
            },
            StoreChange::LeftUnnamed { image } => say(&format!(
                "image {} has no name left and stays, as <none> (dockhand rm --image {0} removes it)",
                image.short()
            )),
            StoreChange::Removed { image, names } => {
                let names = if names.is_empty() {
                    "no name".to_string()
                } else {
                    names.join(", ")
                };
                say(&format!("removed image {} ({names})", image.short()))
            }
            StoreChange::StillReferred { image } => say(&format!(
                "the blobs of image {} stay: an artifact kept in the layout refers to it",
                image.short()
            )),
            StoreChange::ReferrerRemoved { subject, entry } => say(&format!(
                "removed {entry}, which referred to {} only",
                subject.short()
            )),
            _ => {}
        }
    }
    if report.files_removed > 0 {
        say(&format!(
            "removed {} file(s) no image uses any more, {}",
            report.files_removed,
            human_size(report.bytes_removed)
        ));
    }
}

/// How many platforms a note lists before it counts the rest.
const NOTE_PLATFORMS: usize = 4;

/// The public keys of `verify --key`, each file read whole (bounded) and parsed.
fn read_keys(paths: &[std::path::PathBuf]) -> anyhow::Result<Vec<dockhand::PublicKey>> {
    paths
        .iter()
        .map(|path| {
            let name = path.display().to_string();
            let file = std::fs::File::open(path)
                .with_context(|| format!("--key {}: cannot open", one_line(&name)))?;
            Ok(dockhand::PublicKey::read(&name, file)?)
        })
        .collect()
}

/// After `verify` of images taken from multi-platform indexes: which platforms were
/// verified, and which platforms those indexes list were not (another platform the
/// source holds, with how to verify it; one it lacks), so that a run that checked
/// only the host's platform says so. None when nothing was left out.
fn platforms_left_out(source: &dockhand::Source, chosen: &[dockhand::Image]) -> Option<String> {
    use std::collections::BTreeSet;
    let verified: BTreeSet<_> = chosen
        .iter()
        .filter_map(|i| i.manifest.as_ref())
        .map(|m| &m.digest)
        .collect();
    // The indexes the verified images were taken from: those listing one of them.
    let indexes: BTreeSet<_> = source
        .platforms
        .iter()
        .filter(|listed| verified.contains(&listed.manifest))
        .map(|listed| &listed.index)
        .collect();
    let (mut held, mut absent) = (Vec::new(), Vec::new());
    for listed in &source.platforms {
        if !indexes.contains(&listed.index) || verified.contains(&listed.manifest) {
            continue;
        }
        let list = if listed.present {
            &mut held
        } else {
            &mut absent
        };
        let name = listed.platform.to_string();
        if !list.contains(&name) {
            list.push(name);
        }
    }
    if held.is_empty() && absent.is_empty() {
        return None;
    }
    let listed = |names: &[String]| match names.len() {
        n if n > NOTE_PLATFORMS => format!(
            "{} and {} more",
            names[..NOTE_PLATFORMS].join(", "),
            n - NOTE_PLATFORMS
        ),
        _ => names.join(", "),
    };
    let mut done: Vec<String> = Vec::new();
    let from_index = |image: &&dockhand::Image| {
        image.manifest.as_ref().is_some_and(|m| {
            source
                .platforms
                .iter()
                .any(|listed| listed.manifest == m.digest)
        })
    };
    for image in chosen.iter().filter(from_index) {
        let name = image.platform.to_string();
        if !done.contains(&name) {
            done.push(name);
        }
    }
    let mut note = format!(
        "note: verified the platform(s) {} of a multi-platform index",
        listed(&done)
    );
    if !held.is_empty() {
        note += &format!(
            "; not verified: {} (verify --all checks every platform, --platform OS/ARCH[/VARIANT] one)",
            listed(&held)
        );
    }
    if !absent.is_empty() {
        note += &format!(
            "; listed but absent from the source, so not verified: {}",
            listed(&absent)
        );
    }
    Some(note)
}

/// `digest SRC`: a registry reference's manifest digest without pulling (when no
/// image or platform is picked from it), or each selected image's digest as a push
/// keeps it (with --all, the index's, once).
fn digests_of(args: &SourceArgs) -> anyhow::Result<Vec<dockhand::Digest>> {
    let location = Location::parse(&args.src)?;
    if location.transport == Some(Format::REGISTRY)
        && args.images.is_empty()
        && args.platform.is_none()
    {
        let text = format!("docker://{}", location.path);
        return Ok(vec![dockhand::registry_digest(
            &text,
            &args.registry.options(),
        )?]);
    }
    let (source, selected) = open_selected(args, false)?;
    let images: Vec<dockhand::Image> = selected.iter().map(|&i| source.images[i].clone()).collect();
    let digests = dockhand::push_digests(&images, &dockhand::NoProgress)?;
    let _ = source.finished();
    Ok(digests)
}

/// Write `bytes` to stdout (a closed stdout ends quietly, as everywhere).
fn write_stdout(bytes: &[u8]) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(bytes).context("writing to stdout")?;
    out.flush().context("writing to stdout")
}

/// stdout, buffered by hand: std's stdout handle flushes at every newline.
fn stdout_buffer() -> anyhow::Result<io::BufWriter<std::fs::File>> {
    let fd = std::os::fd::AsFd::as_fd(&io::stdout())
        .try_clone_to_owned()
        .context("writing to stdout")?;
    Ok(io::BufWriter::with_capacity(
        1 << 16,
        std::fs::File::from(fd),
    ))
}

/// Open SRC and select its images as `args` ask; `all_platforms` takes every platform
/// even without `--all`.
fn open_selected(
    args: &SourceArgs,
    all_platforms: bool,
) -> anyhow::Result<(dockhand::Source, Vec<usize>)> {
    let location = Location::parse(&args.src)?;
    let selectors = selectors(&location, &args.images)?;
    let options = ReadOptions {
        platform: args.platform.clone(),
        registry: args.registry.options(),
        all_platforms: args.all || all_platforms,
        ..ReadOptions::default()
    };
    check_terminals(Some(&location.path), None)?;
    let source = dockhand::open_source(&location, &options)?;
    let selected = select(&source.images, &selectors)?;
    Ok((source, selected))
}

/// The switches of `sync`.
struct SyncArgs {
    src: SyncSrcArg,
    scoped: bool,
    parallel: u32,
    fail_fast: bool,
    dry_run: bool,
    json: bool,
    all: bool,
    referrers: bool,
    shard: Option<dockhand::Shard>,
}

/// `--shard I/N`, or `index/N` for I from `JOB_COMPLETION_INDEX`.
fn parse_shard(text: &str) -> anyhow::Result<dockhand::Shard> {
    if let Some(count) = text.strip_prefix("index/") {
        let count: u64 = count.trim().parse().map_err(|_| {
            dockhand::Error::Usage(format!(
                "--shard index/N takes a number of workers, not {}",
                dockhand::text::shown(count)
            ))
        })?;
        return Ok(dockhand::Shard::from_env("JOB_COMPLETION_INDEX", count)?);
    }
    Ok(dockhand::Shard::parse(text)?)
}

/// Where `sync` writes: `docker://MIRROR[/PREFIX]`, `oci:DIR`, or a directory of
/// archives, `docker-archive:DIR/` or `oci-archive:DIR/` (the trailing `/` says
/// "under", as `docker://HOST/PREFIX/` does for a push).
fn sync_target(destination: &str) -> anyhow::Result<dockhand::SyncTarget> {
    use dockhand::{ArchiveKind, SyncTarget};
    let usage = |why: &str| -> anyhow::Error {
        dockhand::Error::Usage(format!("{}: {why}", dockhand::text::shown(destination))).into()
    };
    if let Some(rest) = destination.strip_prefix("docker://") {
        return Ok(SyncTarget::Registry(rest.to_string()));
    }
    if let Some(dir) = destination.strip_prefix("oci:") {
        return Ok(SyncTarget::Layout(dir.into()));
    }
    for (prefix, kind) in [
        ("docker-archive:", ArchiveKind::Docker),
        ("oci-archive:", ArchiveKind::Oci),
    ] {
        if let Some(dir) = destination.strip_prefix(prefix) {
            let Some(dir) = dir.strip_suffix('/').filter(|d| !d.is_empty()) else {
                return Err(usage(&format!(
                    "a sync writes one archive per image into a directory: end it with / \
                     ({prefix}DIR/)"
                )));
            };
            return Ok(SyncTarget::Archives {
                dir: dir.into(),
                kind,
            });
        }
    }
    Err(usage(
        "a sync destination is docker://MIRROR[/PREFIX], oci:DIR, docker-archive:DIR/ or \
         oci-archive:DIR/",
    ))
}

/// `dockhand sync`: the library's sync, worded.
fn run_sync(
    args: SyncArgs,
    registry: &RegistryArgs,
    ends: &EndArgs,
    source: &str,
    destination: &str,
    quiet: bool,
) -> anyhow::Result<()> {
    use dockhand::{SyncOptions, SyncOutcome};
    use std::io::IsTerminal;
    let src_options = ends.source(registry);
    let dest_options = ends.destination(registry);
    // A bad destination is a usage error before the list is read.
    let target = sync_target(destination)?;
    let sources = match args.src {
        SyncSrcArg::Yaml => dockhand::read_sync_yaml(std::path::Path::new(source), &src_options)?,
        SyncSrcArg::Docker => vec![dockhand::repository_source(source, &src_options)?],
    };
    let options = SyncOptions {
        target,
        scoped: args.scoped,
        images_at_once: args.parallel as usize,
        fail_fast: args.fail_fast,
        dry_run: args.dry_run,
        shard: args.shard,
        convert: ConvertOptions {
            all_platforms: args.all,
            referrers: args.referrers,
            dest_registry: dest_options,
            ..ConvertOptions::default()
        },
    };
    let live = !quiet && !args.json && io::stderr().is_terminal();
    let report = dockhand::sync(&sources, &options, &|_, done, total| {
        if live {
            eprint!("\rsync: {done}/{total} images");
        }
    })?;
    if live {
        eprintln!();
    }
    let reason = |e: &dockhand::Error| one_line(&e.naming(flag_of));
    let [copied, skipped, would, failed, not_started] = report.counts();
    let mut out = stdout_buffer()?;
    if args.json {
        let images: Vec<serde_json::Value> = report
            .items
            .iter()
            .map(|item| {
                let (outcome, error) = match &item.outcome {
                    SyncOutcome::Copied => ("copied", None),
                    SyncOutcome::Skipped => ("skipped", None),
                    SyncOutcome::WouldCopy => ("would-copy", None),
                    SyncOutcome::Failed(e) => ("failed", Some(reason(e))),
                    SyncOutcome::NotStarted => ("not-started", None),
                    _ => ("unknown", None),
                };
                serde_json::json!({
                    "source": item.source,
                    "destination": item.destination,
                    "digest": item.digest.as_ref().map(|d| d.to_string()),
                    "outcome": outcome,
                    "error": error,
                })
            })
            .collect();
        let doc = serde_json::json!({
            "copied": copied,
            "skipped": skipped,
            "would_copy": would,
            "failed": failed,
            "not_started": not_started,
            "images": images,
        });
        writeln!(out, "{doc:#}").context("writing to stdout")?;
    } else {
        for item in &report.items {
            let (word, why) = match &item.outcome {
                SyncOutcome::Copied => ("copied", String::new()),
                SyncOutcome::Skipped => ("skipped", " (up to date)".to_string()),
                SyncOutcome::WouldCopy => ("would copy", String::new()),
                SyncOutcome::Failed(e) => ("failed", format!(": {}", reason(e))),
                SyncOutcome::NotStarted => ("not started", " (an image failed)".to_string()),
                _ => ("?", String::new()),
            };
            writeln!(
                out,
                "{}",
                one_line(&format!(
                    "{word} {} -> {}{why}",
                    item.source, item.destination
                ))
            )
            .context("writing to stdout")?;
        }
    }
    out.flush().context("writing to stdout")?;
    if !quiet && !args.json {
        say(&format!(
            "sync: {copied} copied, {skipped} skipped, {would} would be copied, {failed} failed, \
             {not_started} not started, of {}",
            report.items.len()
        ));
        for item in &report.items {
            if let SyncOutcome::Failed(e) = &item.outcome {
                say(&one_line(&format!(
                    "failed: {}: {}",
                    item.source,
                    reason(e)
                )));
            }
        }
    }
    if !report.succeeded() {
        anyhow::bail!(
            "{} of {} images failed{}",
            failed,
            report.items.len(),
            if not_started > 0 {
                format!(", {not_started} not started")
            } else {
                String::new()
            }
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listing_hint_names_the_input_as_one_shell_word() {
        assert_eq!(shell_word("dir/x-1.tar"), "dir/x-1.tar");
        assert_eq!(shell_word("oci:lay out:1.0"), "'oci:lay out:1.0'");
        assert_eq!(shell_word("it's $HOME"), r"'it'\''s $HOME'");
        assert_eq!(shell_word(""), "''");
    }
}
