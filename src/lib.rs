//! dockhand moves container images between the formats people hold them in: a
//! `docker save` tar (every variant Docker 1.x to 29, containerd, skopeo, kaniko and
//! BuildKit write), the same tree unpacked in a directory, an OCI image layout
//! (directory or tar) and the containers/image `dir:` layout.
//!
//! # Design
//!
//! Every format is a *layout* (which files, which JSON) in a *container* (a tar file, a
//! tar stream or a directory). Containers are in [`tree`]: a tar on disk is indexed by
//! one pass over its headers and then read by offset; stdin and compressed archives are
//! decompressed once into an anonymous temp file and indexed the same way. Layouts are
//! in [`layout`]: readers produce a [`layout::Source`] of [`image::Image`]s, writers
//! put images into a [`tree::TreeWriter`]. [`convert()`] joins the two.
//!
//! # Invariants
//!
//! - Config bytes are copied verbatim, so the image ID (the config digest) never changes.
//! - Every blob is verified as it streams: stored size and digest, and the uncompressed
//!   digest against the config's `rootfs.diff_ids` ([`blob`]).
//! - Memory stays bounded whatever the layer size: data is streamed through fixed buffers.
//! - Outputs appear atomically: a staging directory or temp file next to the destination
//!   is renamed into place on success and removed on failure or interruption.
//! - Output is deterministic: the same input gives byte-identical files.
//!
//! # Security
//!
//! Inputs are untrusted: an archive can lie about sizes, paths, links and digests.
//!
//! - **Paths**: names from metadata (manifest.json, index.json, repositories) are
//!   normalized and refused when absolute or climbing out with `..`. Digests are
//!   validated (`sha256:` and 64 lowercase hex) before they become file names. Output
//!   names are built only from validated digests and hex ids, and the directory writer
//!   refuses any path that would leave its staging directory.
//! - **Links**: symlinks and hardlinks inside an archive or layout are resolved by
//!   dockhand itself, component by component, at most [`tree::MAX_LINK_HOPS`] hops, and
//!   never outside the tree (absolute targets and `..` past the root are errors).
//!   Nothing is ever extracted, so no link can redirect a write.
//! - **Sizes**: a tar entry claiming more bytes than the file holds is reported as a
//!   truncated archive without allocating anything; JSON documents over
//!   [`image::MAX_JSON_SIZE`] or nested deeper than [`image::MAX_JSON_DEPTH`] are refused
//!   before parsing; layers and decompression streams go through fixed-size buffers, so
//!   a decompression bomb costs time and temp disk, not memory.
//! - **Digests**: a blob whose bytes do not match its digest, size or diff_id fails the
//!   read that sees its last byte, so a corrupt layer can never be written as if whole.
//! - **Resource use**: a tar index holds at most [`tree::MAX_ENTRIES`]
//!   entries; lookups and image merging go through hash maps, so 100,000 entries or
//!   10,000 images cost seconds, not hours.
//! - **Atomicity**: a directory output is built in `.<name>.dockhand-tmp-*` next to the
//!   destination, flushed with one syncfs(2), and swapped in with
//!   `renameat2(RENAME_EXCHANGE)`, so the destination is whole at every instant; a file
//!   output is a sibling temp file renamed over the destination. On an error, SIGINT,
//!   SIGTERM or SIGHUP the staging is removed ([`cleanup`]) and the destination is
//!   absent or exactly as it was. After SIGKILL nothing can run: the destination is
//!   still absent or intact, and a leftover `.<name>.dockhand-tmp-*` may be deleted.
//!   Spooled input (stdin, compressed archives) lives in an anonymous `O_TMPFILE` that
//!   the kernel frees on every exit, SIGKILL included.
//!
//! What is not defended: a local attacker racing dockhand on the same directories
//! (paths are resolved, then opened), and disk use by a decompression bomb on stdin,
//! which is spooled in full before it is read.

#![deny(missing_docs)]

pub mod blob;
pub mod cleanup;
pub mod convert;
pub mod destination;
pub mod digest;
pub mod error;
pub mod image;
pub mod inspect;
pub mod layout;
pub mod media;
pub mod reference;
pub mod text;
pub mod tree;

pub use convert::{convert, open_source, ConvertOptions, ConvertReport, Location, Selector};
pub use error::{Error, Result};
pub use image::{Format, Image, Platform};
