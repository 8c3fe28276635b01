//! Layouts: which files and JSON documents make up each format. Readers turn a
//! [`FileTree`] into a [`Source`]; writers turn images into files of a [`crate::container::TreeWriter`].

mod blobs;
mod context;
mod dir;
mod docker;
mod manifest;
mod oci;
mod v1_config;

pub use context::{MAX_LAYERS_TOTAL, MAX_METADATA_TOTAL};
pub use dir::write_dir_transport;
pub use docker::{write_docker, DockerLayout};
pub(crate) use oci::merge_index;
pub use oci::write_oci;

use context::{Meta, MetaFile};

use std::collections::HashSet;
use std::sync::Arc;

use crate::container::FileTree;
use crate::error::{Error, Result};
use crate::model::image::{parse_json, Format, Image, Platform};
use crate::text::shown;

/// Most warnings kept for one input; identical ones are shown once.
pub const MAX_WARNINGS: usize = 100;

/// Options for reading a source.
#[derive(Clone, Debug, Default)]
pub struct ReadOptions {
    /// The platform to pick: `Some` when the user asked for one (an image of another
    /// platform is then never read, and no match is an error), `None` for the host's
    /// default, which only picks among the children of multi-platform indexes.
    pub platform: Option<Platform>,
    /// Read the input as this format instead of detecting it (a Docker >= 25 archive is
    /// both a docker-archive and an oci-archive). It must fit the content: a tar for
    /// `*-archive`, a directory for the others.
    pub format: Option<Format>,
}

impl ReadOptions {
    fn wanted_platform(&self) -> Platform {
        self.platform.clone().unwrap_or_else(Platform::host)
    }
}

/// An opened input: its format, its images, and the tree their blobs live in.
pub struct Source {
    /// The detected format.
    pub format: Format,
    /// The images, in the order the source lists them.
    pub images: Vec<Image>,
    /// Notes for the user about things skipped or tolerated.
    pub warnings: Vec<String>,
    tree: Box<dyn FileTree>,
}

impl Source {
    /// Detect the layout of `tree` and read its images.
    pub fn read(tree: Box<dyn FileTree>, options: &ReadOptions) -> Result<Source> {
        let (format, images, warnings) = {
            let meta = Meta::new(&*tree);
            let mut warnings = Vec::new();
            let (format, images) = read_with(&meta, options, &mut warnings)?;
            let mut all = meta.warnings.take();
            all.append(&mut warnings);
            (format, images, tidy_warnings(all))
        };
        Ok(Source {
            format,
            images,
            warnings,
            tree,
        })
    }

    /// The tree the images' blobs are read from.
    pub fn tree(&self) -> &dyn FileTree {
        &*self.tree
    }
}

fn read_with(
    meta: &Meta,
    options: &ReadOptions,
    warnings: &mut Vec<String>,
) -> Result<(Format, Vec<Image>)> {
    let tree = meta.tree;
    let is_dir = tree.is_dir();
    let mut detected = detect(meta)?;
    if let Some(wanted) = options.format {
        detected = check_forced(tree, detected, wanted)?;
    }
    let format = natural_format(&detected, is_dir);
    let images = match detected {
        Detected::DockerSave(list) => {
            let images = docker::read(meta, &list, options, warnings)?;
            keep_platform(tree, images, options)?
        }
        Detected::Oci => oci::read(meta, options, warnings)?,
        Detected::DirTransport(manifest) => dir::read(meta, &manifest.bytes, options, warnings)?,
        Detected::Legacy => {
            let images = docker::read_pre_1_10(meta, warnings)?;
            keep_platform(tree, images, options)?
        }
    };
    if images.is_empty() {
        return Err(Error::NotAnImage {
            file: tree.name().to_string(),
            reason: "it lists no images".into(),
        });
    }
    Ok((format, images))
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
pub(crate) fn keep_platform(
    tree: &dyn FileTree,
    images: Vec<Image>,
    options: &ReadOptions,
) -> Result<Vec<Image>> {
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
        return Err(no_platform(tree, options, &held));
    }
    Ok(kept)
}

/// The error for a source that holds no image of the wanted platform.
pub(crate) fn no_platform(tree: &dyn FileTree, options: &ReadOptions, held: &[Platform]) -> Error {
    let wanted = options.wanted_platform();
    let why = if options.platform.is_some() {
        format!("no image for {}", shown(&wanted.to_string()))
    } else {
        format!("no image for this machine's platform {wanted} (choose one with --platform)")
    };
    Error::Selection(format!(
        "{}: {why}; the source holds {}",
        tree.name(),
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

enum Detected {
    DockerSave(serde_json::Value),
    Oci,
    DirTransport(Arc<MetaFile>),
    Legacy,
}

/// The format a detected layout is in its container.
fn natural_format(detected: &Detected, is_dir: bool) -> Format {
    match (detected, is_dir) {
        (Detected::DockerSave(_) | Detected::Legacy, true) => Format::DockerDir,
        (Detected::DockerSave(_) | Detected::Legacy, false) => Format::DockerArchive,
        (Detected::Oci, true) => Format::Oci,
        (Detected::Oci, false) => Format::OciArchive,
        (Detected::DirTransport(_), _) => Format::Dir,
    }
}

/// Names a root filesystem has at its top and an image archive never has.
const ROOTFS_NAMES: &[&str] = &[
    "bin", "etc", "usr", "lib", "var", "sbin", "root", "home", "dev", "proc", "tmp", "opt",
];

fn detect(meta: &Meta) -> Result<Detected> {
    let tree = meta.tree;
    let name = tree.name().to_string();
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
            serde_json::Value::Array(_) => Ok(Detected::DockerSave(value)),
            serde_json::Value::Object(ref o) if o.contains_key("schemaVersion") => {
                Ok(Detected::DirTransport(file))
            }
            serde_json::Value::Object(ref o) if o.is_empty() && !tree.exists("index.json") => Err(
                Error::malformed("manifest.json", "is an empty object, not a list of images"),
            ),
            _ if tree.exists("index.json") => Ok(Detected::Oci),
            _ => Err(Error::malformed(
                "manifest.json",
                "is neither a docker-save image list nor an image manifest",
            )),
        };
    }
    if tree.exists("index.json") || tree.exists("oci-layout") {
        return Ok(Detected::Oci);
    }
    if tree.exists("repositories") || docker::has_v1_layers(tree) {
        return Ok(Detected::Legacy);
    }
    let top = tree.top_level();
    let reason = if top.is_empty() {
        "it has no entries".to_string()
    } else if top
        .iter()
        .filter(|n| ROOTFS_NAMES.contains(&n.as_str()))
        .count()
        >= 2
    {
        "it looks like a root filesystem (a `docker export` or a single layer), not an image archive; use `docker save` to export an image".to_string()
    } else {
        format!(
            "no manifest.json, index.json, oci-layout or repositories found (top-level entries: {})",
            top.iter().take(8).map(|n| shown(n)).collect::<Vec<_>>().join(", ")
        )
    };
    Err(Error::NotAnImage { file: name, reason })
}

/// Check that a forced format (`--from`, a transport prefix) fits both the layout found
/// and its container (a tar or a directory), and prepare to read it as that format.
fn check_forced(tree: &dyn FileTree, detected: Detected, wanted: Format) -> Result<Detected> {
    let is_dir = tree.is_dir();
    // A Docker >= 25 save is an OCI layout too.
    let hybrid = matches!(detected, Detected::DockerSave(_)) && tree.exists("index.json");
    let layout_fits = match (&detected, wanted) {
        (Detected::DockerSave(_) | Detected::Legacy, Format::DockerArchive | Format::DockerDir) => {
            true
        }
        (Detected::Oci, Format::Oci | Format::OciArchive) => true,
        (Detected::DirTransport(_), Format::Dir) => true,
        (Detected::DockerSave(_), Format::Oci | Format::OciArchive) => hybrid,
        _ => false,
    };
    let wanted_dir = !wanted.is_tar();
    if layout_fits && wanted_dir == is_dir {
        return Ok(match (detected, wanted) {
            (Detected::DockerSave(_), Format::Oci | Format::OciArchive) => Detected::Oci,
            (d, _) => d,
        });
    }
    let natural = natural_format(&detected, is_dir);
    let container = |dir: bool| if dir { "a directory" } else { "a tar file" };
    let what = if hybrid {
        format!(
            "{} (also {})",
            described(natural),
            described(same_layout_in(Format::Oci, is_dir).unwrap_or(Format::Oci))
        )
    } else {
        described(natural).to_string()
    };
    // What would read it: the wanted layout in this container, else what was found.
    let suggestion = if layout_fits {
        same_layout_in(wanted, is_dir)
    } else if natural.is_tar() != is_dir {
        Some(natural)
    } else {
        None
    };
    let advice = match suggestion {
        Some(f) => format!("use --from {} or leave --from out", f.name()),
        None => "leave --from out".to_string(),
    };
    Err(Error::Selection(format!(
        "{}: is {what} ({}), not {} ({}); {advice}",
        tree.name(),
        container(is_dir),
        wanted.name(),
        container(wanted_dir)
    )))
}

/// A format as a noun for messages.
fn described(format: Format) -> &'static str {
    match format {
        Format::DockerArchive => "a docker-archive",
        Format::DockerDir => "a docker-dir",
        Format::Oci => "an oci layout",
        Format::OciArchive => "an oci-archive",
        Format::Dir => "a dir layout",
    }
}

/// `format`'s layout in a directory or a tar, when it has that form.
fn same_layout_in(format: Format, is_dir: bool) -> Option<Format> {
    match (format, is_dir) {
        (Format::DockerArchive | Format::DockerDir, true) => Some(Format::DockerDir),
        (Format::DockerArchive | Format::DockerDir, false) => Some(Format::DockerArchive),
        (Format::Oci | Format::OciArchive, true) => Some(Format::Oci),
        (Format::Oci | Format::OciArchive, false) => Some(Format::OciArchive),
        (Format::Dir, true) => Some(Format::Dir),
        (Format::Dir, false) => None,
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
