//! Helpers shared by the interop tests (tests/it/interop_*.rs): the writers dockhand has,
//! converting fixtures through them, and reading the OCI and docker metadata of outputs
//! without dockhand, to check them against what the real tools expect.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::*;

pub type Identity = Vec<(String, Vec<String>, Vec<String>)>;

// ------------------------------------------------------------------ writers

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Writer {
    Oci,
    OciArchive,
    DockerArchive,
    DockerHybrid,
    DockerDir,
    Dir,
}

pub const WRITERS: [Writer; 6] = [
    Writer::Oci,
    Writer::OciArchive,
    Writer::DockerArchive,
    Writer::DockerHybrid,
    Writer::DockerDir,
    Writer::Dir,
];

impl Writer {
    pub fn file_name(self) -> &'static str {
        match self {
            Writer::Oci => "oci",
            Writer::OciArchive => "oci-archive.tar",
            Writer::DockerArchive => "docker-archive.tar",
            Writer::DockerHybrid => "docker-hybrid.tar",
            Writer::DockerDir => "docker-dir",
            Writer::Dir => "dir",
        }
    }

    /// The `convert` options selecting this writer (`dir` holds one image: take @0).
    pub fn args(self) -> &'static [&'static str] {
        match self {
            Writer::Oci => &["--to", "oci"],
            Writer::OciArchive => &["--to", "oci-archive"],
            Writer::DockerArchive => &["--to", "docker-archive"],
            Writer::DockerHybrid => &["--to", "docker-archive", "--docker-layout", "hybrid"],
            Writer::DockerDir => &["--to", "docker-dir"],
            Writer::Dir => &["--to", "dir", "--image", "@0"],
        }
    }

    /// The format `inspect` must report for the output.
    pub fn format(self) -> &'static str {
        match self {
            Writer::Oci => "oci",
            Writer::OciArchive => "oci-archive",
            Writer::DockerArchive | Writer::DockerHybrid => "docker-archive",
            Writer::DockerDir => "docker-dir",
            Writer::Dir => "dir",
        }
    }

    pub fn is_tar(self) -> bool {
        matches!(
            self,
            Writer::OciArchive | Writer::DockerArchive | Writer::DockerHybrid
        )
    }

    pub fn is_docker(self) -> bool {
        matches!(
            self,
            Writer::DockerArchive | Writer::DockerHybrid | Writer::DockerDir
        )
    }

    /// Where the output of this writer goes back to, and whether through stdin/stdout.
    pub fn round_trip(self) -> (Writer, bool) {
        match self {
            Writer::Oci => (Writer::DockerArchive, false),
            Writer::OciArchive => (Writer::DockerArchive, true),
            Writer::DockerArchive => (Writer::OciArchive, true),
            Writer::DockerHybrid => (Writer::Oci, false),
            Writer::DockerDir => (Writer::OciArchive, false),
            Writer::Dir => (Writer::DockerDir, false),
        }
    }
}

pub fn valid_fixtures() -> Vec<Fixture> {
    let v: Vec<Fixture> = fixtures().into_iter().filter(|f| !f.is_broken()).collect();
    assert!(v.len() >= 10, "valid fixtures missing");
    v
}

/// `dockhand convert -q <writer options> SRC DIR/<label>-<writer>`; returns the output.
pub fn write(src: &str, writer: Writer, dir: &Path, label: &str) -> PathBuf {
    let dest = dir.join(format!("{label}-{}", writer.file_name()));
    let mut args = vec!["convert", "-q"];
    args.extend(writer.args());
    args.push(src);
    args.push(s(&dest));
    ok(&args);
    dest
}

pub fn config_of(image: &Value) -> String {
    image["config"]["digest"].as_str().unwrap().to_string()
}

pub fn diff_ids_of(image: &Value) -> Vec<String> {
    image["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["diff_id"].as_str().unwrap().to_string())
        .collect()
}

/// The tags of each image `dockhand inspect` finds in `path`, sorted, by image ID.
pub fn tags_by_config(path: &str) -> std::collections::BTreeMap<String, Vec<String>> {
    images(&inspect(path))
        .iter()
        .map(|image| {
            let mut tags = tags_of(image);
            tags.sort();
            (config_of(image), tags)
        })
        .collect()
}

/// Docker's familiar form of a normalized reference (what RepoTags shows).
pub fn familiar(full: &str) -> String {
    match full.strip_prefix("docker.io/") {
        Some(rest) => match rest.strip_prefix("library/") {
            Some(name) if !name.contains('/') => name.to_string(),
            _ => rest.to_string(),
        },
        None => full.to_string(),
    }
}

pub fn familiar_tags(image: &Value) -> Vec<String> {
    let mut v: Vec<String> = tags_of(image).iter().map(|t| familiar(t)).collect();
    v.sort();
    v
}

pub fn json_strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(|x| x.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

// ------------------------------------------------------------------ reading outputs

/// A file of a layout: from a directory, or from a tar (entry names with or without `./`).
pub fn read_member(root: &Path, tar: bool, name: &str) -> Vec<u8> {
    if !tar {
        return fs::read(root.join(name))
            .unwrap_or_else(|e| panic!("{}/{name}: {e}", root.display()));
    }
    let mut archive = tar::Archive::new(fs::File::open(root).unwrap());
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        if path.trim_start_matches("./") == name {
            let mut buf = Vec::new();
            entry.read_to_end(&mut buf).unwrap();
            return buf;
        }
    }
    panic!("{} has no entry {name}", root.display());
}

pub fn read_json(root: &Path, tar: bool, name: &str) -> Value {
    serde_json::from_slice(&read_member(root, tar, name))
        .unwrap_or_else(|e| panic!("{}: {name} is not JSON: {e}", root.display()))
}

/// One index.json entry of an OCI layout, with the config its manifest names.
#[derive(Debug)]
pub struct IndexEntry {
    pub image_name: Option<String>,
    pub ref_name: Option<String>,
    pub config: String,
}

pub fn oci_entries(root: &Path, tar: bool) -> Vec<IndexEntry> {
    let index = read_json(root, tar, "index.json");
    index["manifests"]
        .as_array()
        .expect("index.json lists manifests")
        .iter()
        .map(|m| {
            let digest = m["digest"].as_str().unwrap();
            let hex = digest.strip_prefix("sha256:").unwrap();
            let manifest = read_json(root, tar, &format!("blobs/sha256/{hex}"));
            let annotation = |k: &str| m["annotations"][k].as_str().map(str::to_string);
            IndexEntry {
                image_name: annotation("io.containerd.image.name"),
                ref_name: annotation("org.opencontainers.image.ref.name"),
                config: manifest["config"]["digest"].as_str().unwrap().to_string(),
            }
        })
        .collect()
}

/// The bare OCI ref names (`1.0`, `latest`: no repository) of an OCI fixture, with the
/// config of the image each names. They are not tags, so `inspect` does not show them.
pub fn bare_ref_names(f: &Fixture) -> Vec<(String, String)> {
    let tar = match f.expected["format"].as_str() {
        Some("oci") => false,
        Some("oci-archive") => true,
        _ => return Vec::new(),
    };
    oci_entries(&f.input, tar)
        .into_iter()
        .filter(|e| e.image_name.is_none())
        .filter_map(|e| {
            let name = e.ref_name?;
            (!name.is_empty() && !name.contains(['/', ':', '@'])).then_some((e.config, name))
        })
        .collect()
}

/// `skopeo copy` from one location to another (which reads and digest-checks every blob).
pub fn skopeo_copy(tmp: &Path, from: &str, to: &str) {
    skopeo(tmp, &["--insecure-policy", "copy", "-q", from, to]);
}

/// sha256 of the config skopeo reads at `location`.
pub fn skopeo_config(tmp: &Path, location: &str) -> String {
    sha256(&skopeo(tmp, &["inspect", "--config", "--raw", location]))
}
