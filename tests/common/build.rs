//! Building archives by hand for hostile-input tests: raw tar entries (any name, any
//! link target, any claimed size) and small but valid docker-save archives to damage.
#![allow(dead_code)]

use std::path::Path;

use serde_json::json;

/// One raw tar entry.
pub enum Entry {
    File(String, Vec<u8>),
    Dir(String),
    Symlink(String, String),
    Hardlink(String, String),
}

pub fn file(path: &str, data: impl Into<Vec<u8>>) -> Entry {
    Entry::File(path.to_string(), data.into())
}

pub fn symlink(path: &str, target: &str) -> Entry {
    Entry::Symlink(path.to_string(), target.to_string())
}

pub fn hardlink(path: &str, target: &str) -> Entry {
    Entry::Hardlink(path.to_string(), target.to_string())
}

fn raw_header(name: &str, kind: tar::EntryType, size: u64, link: &str) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(0);
    // Write names verbatim: these tests need names the builder API would refuse.
    let old = h.as_old_mut();
    assert!(
        name.len() <= 100 && link.len() <= 100,
        "test names must fit a header"
    );
    old.name[..name.len()].copy_from_slice(name.as_bytes());
    old.linkname[..link.len()].copy_from_slice(link.as_bytes());
    h.set_cksum();
    h
}

/// A tar of `entries`, names and link targets exactly as given.
pub fn tar_of(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        let (h, data): (tar::Header, &[u8]) = match e {
            Entry::File(p, d) => (
                raw_header(p, tar::EntryType::Regular, d.len() as u64, ""),
                d,
            ),
            Entry::Dir(p) => (raw_header(p, tar::EntryType::Directory, 0, ""), &[]),
            Entry::Symlink(p, t) => (raw_header(p, tar::EntryType::Symlink, 0, t), &[]),
            Entry::Hardlink(p, t) => (raw_header(p, tar::EntryType::Link, 0, t), &[]),
        };
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// An uncompressed layer tar holding one file.
pub fn layer(name: &str, content: &[u8]) -> Vec<u8> {
    tar_of(&[file(name, content)])
}

/// The parts of a small docker-save archive, to be altered by a test.
pub struct Save {
    pub config: Vec<u8>,
    pub layers: Vec<Vec<u8>>,
    pub manifest: serde_json::Value,
}

impl Save {
    /// A valid one-image archive with `n` layers, tagged `hostile/test:1`.
    pub fn new(n: usize) -> Save {
        let layers: Vec<Vec<u8>> = (0..n)
            .map(|i| layer(&format!("f{i}"), format!("layer {i}").as_bytes()))
            .collect();
        Save::with_layers(layers, "2024-01-01T00:00:00Z")
    }

    pub fn with_layers(layers: Vec<Vec<u8>>, created: &str) -> Save {
        let diff_ids: Vec<String> = layers.iter().map(|l| super::sha256(l)).collect();
        let config = serde_json::to_vec(&json!({
            "architecture": "amd64", "os": "linux", "created": created,
            "config": {}, "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }))
        .unwrap();
        let hex = super::sha256(&config)[7..].to_string();
        let paths: Vec<String> = (0..layers.len())
            .map(|i| format!("l{i}/layer.tar"))
            .collect();
        Save {
            manifest: json!([{"Config": format!("{hex}.json"), "RepoTags": ["hostile/test:1"], "Layers": paths}]),
            config,
            layers,
        }
    }

    pub fn config_name(&self) -> String {
        format!("{}.json", &super::sha256(&self.config)[7..])
    }

    /// The archive's entries: config, layers, manifest.json last.
    pub fn entries(&self) -> Vec<Entry> {
        let mut e = vec![file(&self.config_name(), self.config.clone())];
        for (i, l) in self.layers.iter().enumerate() {
            e.push(file(&format!("l{i}/layer.tar"), l.clone()));
        }
        e.push(file(
            "manifest.json",
            serde_json::to_vec(&self.manifest).unwrap(),
        ));
        e
    }

    pub fn tar(&self) -> Vec<u8> {
        tar_of(&self.entries())
    }
}

/// Write `bytes` to `dir/name` and return the path as a string.
pub fn put(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p.to_str().unwrap().to_string()
}
