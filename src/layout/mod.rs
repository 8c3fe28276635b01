//! Layouts: which files and JSON documents make up each format. Readers turn a
//! [`FileTree`] into a [`Source`]; writers turn images into files of a [`crate::tree::TreeWriter`].

mod dir_transport;
mod docker_save;
mod docker_write;
mod legacy;
mod oci;
mod oci_write;

pub use docker_write::{write_docker, DockerLayout};
pub(crate) use oci_write::merge_index;
pub use oci_write::{write_dir_transport, write_oci};

use crate::digest::{read_limited, Digest};
use crate::error::{Error, Result};
use crate::image::{parse_json, Format, Image, Platform, MAX_JSON_SIZE};
use crate::tree::{normalize_path, FileRef, FileTree};

/// Options for reading a source.
#[derive(Clone, Debug, Default)]
pub struct ReadOptions {
    /// The platform to pick from multi-platform indexes (default: the host's).
    pub platform: Option<Platform>,
    /// Read the input as this format instead of detecting it (a Docker >= 25 archive is
    /// both a docker-archive and an oci-archive).
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
        let is_dir = tree.is_dir();
        let mut warnings = Vec::new();
        let detected = match options.format {
            None => detect(&*tree)?,
            Some(wanted) => detect_as(&*tree, wanted)?,
        };
        let (format, images) = match detected {
            Detected::DockerSave(list) => {
                let images = docker_save::read(&*tree, &list, options, &mut warnings)?;
                (
                    if is_dir {
                        Format::DockerDir
                    } else {
                        Format::DockerArchive
                    },
                    images,
                )
            }
            Detected::Oci => {
                let images = oci::read(&*tree, options, &mut warnings)?;
                (
                    if is_dir {
                        Format::Oci
                    } else {
                        Format::OciArchive
                    },
                    images,
                )
            }
            Detected::DirTransport(manifest) => {
                let images = dir_transport::read(&*tree, &manifest, options, &mut warnings)?;
                (Format::Dir, images)
            }
            Detected::Legacy => {
                let images = legacy::read_pre_1_10(&*tree, &mut warnings)?;
                (
                    if is_dir {
                        Format::DockerDir
                    } else {
                        Format::DockerArchive
                    },
                    images,
                )
            }
        };
        if images.is_empty() {
            return Err(Error::NotAnImage {
                file: tree.name().to_string(),
                reason: "it lists no images".into(),
            });
        }
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

enum Detected {
    DockerSave(serde_json::Value),
    Oci,
    DirTransport(Vec<u8>),
    Legacy,
}

/// Names a root filesystem has at its top and an image archive never has.
const ROOTFS_NAMES: &[&str] = &[
    "bin", "etc", "usr", "lib", "var", "sbin", "root", "home", "dev", "proc", "tmp", "opt",
];

fn detect(tree: &dyn FileTree) -> Result<Detected> {
    let name = tree.name().to_string();
    if let Some(file) = tree.find("manifest.json")? {
        let bytes = read_json_file(&file)?;
        let value: serde_json::Value = parse_json(&bytes, "manifest.json")?;
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
                Ok(Detected::DirTransport(bytes))
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
    if tree.exists("repositories") || legacy::has_v1_layers(tree) {
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
            top.iter().take(8).cloned().collect::<Vec<_>>().join(", ")
        )
    };
    Err(Error::NotAnImage { file: name, reason })
}

/// Check that `tree` holds `wanted`, and prepare to read it as that format.
fn detect_as(tree: &dyn FileTree, wanted: Format) -> Result<Detected> {
    let detected = detect(tree)?;
    let name = tree.name().to_string();
    let fits = match (&detected, wanted) {
        (Detected::DockerSave(_) | Detected::Legacy, Format::DockerArchive | Format::DockerDir) => {
            true
        }
        (Detected::Oci, Format::Oci | Format::OciArchive) => true,
        (Detected::DirTransport(_), Format::Dir) => true,
        // A Docker >= 25 save is an OCI layout too.
        (Detected::DockerSave(_), Format::Oci | Format::OciArchive)
            if tree.exists("index.json") =>
        {
            return Ok(Detected::Oci);
        }
        _ => false,
    };
    if !fits {
        let found = match detected {
            Detected::DockerSave(_) | Detected::Legacy => "a docker-save archive",
            Detected::Oci => "an OCI image layout",
            Detected::DirTransport(_) => "a containers/image dir: layout",
        };
        return Err(Error::NotAnImage {
            file: name,
            reason: format!("it is {found}, not {}", wanted.name()),
        });
    }
    Ok(detected)
}

/// Read a small JSON file (bounded by [`MAX_JSON_SIZE`]).
pub(crate) fn read_json_file(file: &FileRef) -> Result<Vec<u8>> {
    if file.size > MAX_JSON_SIZE {
        return Err(Error::malformed(
            &file.path,
            format!(
                "is {} bytes, over the {MAX_JSON_SIZE}-byte limit for metadata",
                file.size
            ),
        ));
    }
    read_limited(file.open()?, MAX_JSON_SIZE, &file.path)
}

/// Normalize a path named by metadata, refusing any that would leave the tree.
pub(crate) fn safe_path(path: &str, named_in: &str) -> Result<String> {
    match normalize_path(path) {
        Some(p) if !p.is_empty() => Ok(p),
        _ => Err(Error::malformed(
            named_in,
            format!(
                "path {:?} is empty, absolute or leaves the archive",
                path.chars().take(200).collect::<String>()
            ),
        )),
    }
}

/// Read a blob that must be small JSON, verifying its digest (and size when known).
pub(crate) fn read_verified(file: &FileRef, digest: &Digest, size: Option<u64>) -> Result<Vec<u8>> {
    if let Some(size) = size {
        if size != file.size {
            return Err(Error::SizeMismatch {
                file: file.path.clone(),
                expected: size,
                actual: file.size,
            });
        }
    }
    let bytes = read_json_file(file)?;
    let actual = Digest::of(&bytes);
    if actual != *digest {
        return Err(Error::DigestMismatch {
            file: file.path.clone(),
            expected: digest.clone(),
            actual,
        });
    }
    Ok(bytes)
}

/// Hash a whole file (used when a layer's stored digest is not recorded anywhere).
pub(crate) fn hash_file(file: &FileRef) -> Result<Digest> {
    let mut hasher = crate::digest::HashSink::default();
    std::io::copy(&mut file.open()?, &mut hasher)
        .map_err(|e| Error::io(format!("reading {}", file.path), e))?;
    Ok(hasher.hasher.finish().0)
}

/// Sniff a stored blob's compression from its first bytes.
pub(crate) fn sniff(file: &FileRef) -> Result<crate::media::Compression> {
    Ok(crate::media::Compression::detect(&file.head(8)?))
}
