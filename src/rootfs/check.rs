//! A differential check of the engine, for the fuzz target and the unit tests: layers
//! generated from arbitrary bytes are applied by a naive model (one filesystem tree,
//! each layer's whiteouts applied first, then its entries extracted in order, as
//! Docker's extraction into the parent's filesystem does, with overlayfs's rule that a
//! directory over a file hides the file) and exported by the engine; both must refuse
//! the same images and agree on every path of the others. Arbitrary bytes as a raw
//! layer must never panic, and any export must be a well-formed tar.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;

use super::apply::normalize;
use super::{
    apply_layers, diff_images, export_image, ApplyOptions, DiffOptions, Digest, Image, Platform,
};
use crate::model::blob::MemoryBlob;
use crate::model::image::{Descriptor, Layer};
use crate::model::media::Compression;
use crate::progress::NoProgress;

/// Names the generated entries use: few, so that they meet; some hostile.
const NAMES: &[&str] = &[
    "a", "b", "c", "a/b", "a/c", "b/a", "a/b/c", "a/b/d", "c/a", "./a", "a/", "a/../b", "x/y",
    "..", ".", "../x", "/a", "a/./b", "b/c/d",
];

/// What one generated entry is.
#[derive(Clone, Copy, Debug)]
enum Op {
    File,
    Dir,
    Symlink,
    Hardlink,
    Whiteout,
    Opaque,
}

/// One generated entry: what, its name (an index into [`NAMES`]), a link target.
#[derive(Clone, Debug)]
struct Gen {
    op: Op,
    name: &'static str,
    target: &'static str,
    mode: u32,
}

/// Layers (base first) decoded from bytes: three bytes an entry, a layer break every
/// so often.
fn decode(data: &[u8]) -> Vec<Vec<Gen>> {
    let mut layers = vec![Vec::new()];
    for chunk in data.chunks_exact(3).take(64) {
        let op = match chunk[0] % 8 {
            0 | 1 => Op::File,
            2 => Op::Dir,
            3 => Op::Symlink,
            4 => Op::Hardlink,
            5 => Op::Whiteout,
            6 => Op::Opaque,
            _ => {
                if layers.len() < 5 {
                    layers.push(Vec::new());
                }
                continue;
            }
        };
        layers.last_mut().expect("one layer").push(Gen {
            op,
            name: NAMES[chunk[1] as usize % NAMES.len()],
            target: NAMES[chunk[2] as usize % NAMES.len()],
            mode: 0o600 | (u32::from(chunk[2]) & 0o77),
        });
    }
    layers
}

/// The raw name of a generated entry, as its tar header holds it.
fn raw_name(g: &Gen) -> String {
    let trimmed = g.name.trim_end_matches('/');
    let (parent, base) = match trimmed.rfind('/') {
        Some(i) => (&trimmed[..=i], &trimmed[i + 1..]),
        None => ("", trimmed),
    };
    match g.op {
        Op::Whiteout => format!("{parent}.wh.{base}"),
        Op::Opaque => format!("{}/.wh..wh..opq", trimmed),
        Op::Dir => format!("{trimmed}/"),
        _ => g.name.to_string(),
    }
}

/// The content of the file entry `ordinal` of `layer`: unique, so that equal contents
/// mean one file.
fn content(layer: usize, ordinal: usize) -> Vec<u8> {
    format!("layer {layer} entry {ordinal}").into_bytes()
}

/// A layer's tar.
fn tar_of(layer: usize, gens: &[Gen]) -> Vec<u8> {
    let mut out = Vec::new();
    for (ordinal, g) in gens.iter().enumerate() {
        let name = raw_name(g);
        let (flag, link, data) = match g.op {
            Op::File => (b'0', "", content(layer, ordinal)),
            Op::Dir => (b'5', "", Vec::new()),
            Op::Symlink => (b'2', g.target, Vec::new()),
            Op::Hardlink => (b'1', g.target, Vec::new()),
            Op::Whiteout | Op::Opaque => (b'0', "", Vec::new()),
        };
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::new(flag));
        h.set_size(data.len() as u64);
        h.set_mode(g.mode);
        let old = h.as_old_mut();
        old.name[..name.len()].copy_from_slice(name.as_bytes());
        old.linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(&data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// What a path of a filesystem is, as the check compares it.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Desc {
    Dir(u32),
    File(Vec<u8>, u32),
    Symlink(String),
}

/// One node of the model's tree.
#[derive(Clone, Debug)]
enum Node {
    Dir { mode: u32 },
    Other { inode: usize, layer: usize },
}

/// The model: the filesystem after each layer is extracted in turn; `None` when a
/// layer is refused.
fn model(layers: &[Vec<Gen>]) -> Option<BTreeMap<String, Desc>> {
    let mut tree: BTreeMap<String, Node> = BTreeMap::new();
    let mut inodes: Vec<Desc> = Vec::new();
    let norm = |raw: &str| normalize(raw.as_bytes()).map(|p| String::from_utf8(p).expect("ASCII"));
    let under = |tree: &BTreeMap<String, Node>, p: &str| -> Vec<String> {
        let prefix = if p.is_empty() {
            String::new()
        } else {
            format!("{p}/")
        };
        tree.keys()
            .filter(|k| k.starts_with(&prefix))
            .cloned()
            .collect()
    };
    for (l, gens) in layers.iter().enumerate() {
        // Whiteouts and markers first: what they delete, then the directories they imply.
        let mut implied: Vec<String> = Vec::new();
        for g in gens {
            let path = norm(&raw_name(g))?;
            if path.is_empty() || path.starts_with(".wh..wh.") && path != ".wh..wh..opq" {
                continue;
            }
            let (parent, base) = match path.rfind('/') {
                Some(i) => (&path[..i], &path[i + 1..]),
                None => ("", path.as_str()),
            };
            if base == ".wh..wh..opq" {
                for k in under(&tree, parent) {
                    tree.remove(&k);
                }
                if !parent.is_empty() {
                    implied.push(parent.to_string());
                }
            } else if let Some(name) = base.strip_prefix(".wh.") {
                if name.is_empty() || name == "." || name == ".." {
                    return None;
                }
                let target = if parent.is_empty() {
                    name.to_string()
                } else {
                    format!("{parent}/{name}")
                };
                tree.remove(&target);
                for k in under(&tree, &target) {
                    tree.remove(&k);
                }
                if !parent.is_empty() {
                    implied.push(parent.to_string());
                }
            }
        }
        let ensure_parents =
            |tree: &mut BTreeMap<String, Node>, path: &str, own: bool| -> Option<()> {
                let parts: Vec<&str> = path.split('/').collect();
                for i in 1..parts.len() {
                    let a = parts[..i].join("/");
                    match tree.get(&a) {
                        Some(Node::Dir { .. }) => {}
                        Some(Node::Other { layer, .. }) if *layer == l && own => return None,
                        _ => {
                            // Absent, or a file of a layer below, which the directory hides.
                            tree.insert(a, Node::Dir { mode: 0o755 });
                        }
                    }
                }
                Some(())
            };
        for dir in &implied {
            // The directory itself and those above it.
            ensure_parents(&mut tree, &format!("{dir}/x"), false)?;
        }
        for (ordinal, g) in gens.iter().enumerate() {
            let raw = raw_name(g);
            let path = norm(&raw)?;
            if path.is_empty() || path.starts_with(".wh..wh.") {
                continue;
            }
            let base = path.rsplit('/').next().unwrap_or_default();
            if base.starts_with(".wh.") {
                // Applied above; still no entry may lie under this layer's files.
                let own_file_above = ancestors(&path)
                    .any(|a| matches!(tree.get(a), Some(Node::Other { layer, .. }) if *layer == l));
                if own_file_above {
                    return None;
                }
                continue;
            }
            ensure_parents(&mut tree, &path, true)?;
            let is_dir =
                matches!(g.op, Op::Dir) || (matches!(g.op, Op::File) && raw.ends_with('/'));
            let node = if is_dir {
                Node::Dir { mode: g.mode }
            } else {
                let inode = match g.op {
                    Op::Hardlink => {
                        let target = norm(g.target)?;
                        let inode = match tree.get(&target) {
                            Some(Node::Other { inode, .. }) if !target.is_empty() => *inode,
                            _ => return None,
                        };
                        // Extracting a link applies its mode to the file (not to a
                        // symlink), as Docker and containerd do.
                        if let Desc::File(_, mode) = &mut inodes[inode] {
                            *mode = g.mode;
                        }
                        inode
                    }
                    Op::Symlink => {
                        inodes.push(Desc::Symlink(g.target.to_string()));
                        inodes.len() - 1
                    }
                    _ => {
                        inodes.push(Desc::File(content(l, ordinal), g.mode));
                        inodes.len() - 1
                    }
                };
                Node::Other { inode, layer: l }
            };
            let both_dirs = is_dir && matches!(tree.get(&path), Some(Node::Dir { .. }));
            if !both_dirs {
                for k in under(&tree, &path) {
                    tree.remove(&k);
                }
            }
            tree.insert(path, node);
        }
    }
    Some(
        tree.into_iter()
            .map(|(k, n)| {
                let desc = match n {
                    Node::Dir { mode, .. } => Desc::Dir(mode),
                    Node::Other { inode, .. } => inodes[inode].clone(),
                };
                (k, desc)
            })
            .collect(),
    )
}

/// The strict ancestors of a path.
fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/').map(move |(i, _)| &path[..i])
}

/// An image of these layer tars (base first), each stored uncompressed in memory, its
/// config listing their diff_ids, its errors naming `input`: what the check here and
/// the unit tests of `tests.rs` give the engine.
pub(crate) fn image_of(layers: &[Vec<u8>], input: &str) -> Image {
    let diff_ids: Vec<String> = layers.iter().map(|l| Digest::of(l).to_string()).collect();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .expect("a JSON value serializes");
    Image {
        annotations: Default::default(),
        tags: vec![],
        ref_names: vec![],
        oci_ref_names: Default::default(),
        config: Descriptor {
            media_type: String::new(),
            digest: Digest::of(&config),
            size: config.len() as u64,
        },
        config_bytes: Arc::new(config),
        config_path: "config".into(),
        manifest: None,
        manifest_bytes: None,
        platform: Platform::default(),
        layers: layers
            .iter()
            .enumerate()
            .map(|(i, l)| Layer {
                digest: Some(Digest::of(l)),
                size: l.len() as u64,
                media_type: "application/vnd.oci.image.layer.v1.tar".into(),
                compression: Compression::None,
                diff_id: Some(Digest::of(l)),
                blob: Some(Arc::new(MemoryBlob::new(
                    Arc::new(l.clone()),
                    format!("l{i}"),
                ))),
                path: format!("l{i}"),
            })
            .collect(),
        artifact: false,
        index: None,
        input: Arc::from(input),
    }
}

/// An export, read back: every path as the check compares it. Panics when the tar is
/// not what an export must be: each name once, normalized, no whiteout, directories
/// with a trailing `/`, each hard link after what it links to.
fn read_export(tar: &[u8]) -> BTreeMap<String, Desc> {
    let mut out = BTreeMap::new();
    let mut archive = tar::Archive::new(tar);
    for entry in archive.entries().expect("an export is a tar") {
        let mut entry = entry.expect("an export's entries read");
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let kind = entry.header().entry_type();
        let name = raw.trim_end_matches('/').to_string();
        assert_eq!(
            kind.is_dir(),
            raw.ends_with('/'),
            "{raw}: a directory's name ends in /"
        );
        assert_eq!(
            normalize(name.as_bytes()).as_deref(),
            Some(name.as_bytes()),
            "{raw}"
        );
        assert!(!name.is_empty(), "the root is not written");
        assert!(
            !name
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .starts_with(".wh."),
            "{raw}: a whiteout in the export"
        );
        let mode = entry.header().mode().expect("a mode") & 0o7777;
        let desc = match kind.as_byte() {
            b'5' => Desc::Dir(mode),
            b'2' => Desc::Symlink(
                String::from_utf8_lossy(&entry.link_name_bytes().expect("a target")).into_owned(),
            ),
            b'1' => {
                let target = String::from_utf8_lossy(&entry.link_name_bytes().expect("a target"))
                    .into_owned();
                out.get(&target)
                    .cloned()
                    .unwrap_or_else(|| panic!("{raw}: a link to {target}, not written before"))
            }
            b'0' => {
                let mut data = Vec::new();
                entry.read_to_end(&mut data).expect("data");
                Desc::File(data, mode)
            }
            other => panic!("{raw}: unexpected type {other}"),
        };
        assert!(out.insert(name, desc).is_none(), "{raw}: written twice");
    }
    out
}

/// Check the engine on `data`: the first byte's high bit makes the rest one raw layer
/// (only robustness and the export's shape are checked); otherwise layers are
/// generated from it and the export must match the model.
pub fn check(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    if first & 0x80 != 0 {
        let image = image_of(&[rest.to_vec()], "check");
        let mut tar = Vec::new();
        if export_image(&image, &mut tar, &NoProgress).is_ok() {
            read_export(&tar);
        }
        return;
    }
    let gens = decode(rest);
    let tars: Vec<Vec<u8>> = gens.iter().enumerate().map(|(i, g)| tar_of(i, g)).collect();
    let image = image_of(&tars, "check");
    let mut tar = Vec::new();
    let engine = export_image(&image, &mut tar, &NoProgress);
    let expected = model(&gens);
    match (engine, expected) {
        (Ok(_), Some(expected)) => {
            let got = read_export(&tar);
            if got != expected {
                let differing: Vec<_> = got
                    .keys()
                    .chain(expected.keys())
                    .filter(|k| got.get(*k) != expected.get(*k))
                    .map(|k| (k, got.get(k), expected.get(k)))
                    .collect();
                panic!("engine and model differ on {differing:?}\nlayers: {gens:?}");
            }
        }
        (Err(_), None) => {}
        (Ok(_), None) => panic!("the model refuses what the engine applies\nlayers: {gens:?}"),
        (Err(e), Some(_)) => {
            panic!("the engine refuses what the model applies: {e}\nlayers: {gens:?}")
        }
    }
    check_diff(&tars);
}

/// A diff of the image without its top layer and the image reads the layers both
/// hold once for both: each side must get what applying its own layers alone gives,
/// and an image compared with itself must show no change.
fn check_diff(tars: &[Vec<u8>]) {
    let Some((_, below)) = tars.split_last() else {
        return;
    };
    let (base, full) = (image_of(below, "check"), image_of(tars, "check"));
    let options = ApplyOptions {
        content_digests: true,
    };
    let alone =
        |image: &Image| apply_layers(image, &options, &NoProgress).map(|fs| fs.entries().to_vec());
    let compared = diff_images(&base, &full, &DiffOptions::default(), &NoProgress);
    match (alone(&base), alone(&full), compared) {
        (Ok(a), Ok(b), Ok(diff)) => {
            let (fs_a, fs_b) = diff.filesystems();
            assert_eq!(fs_a.entries(), &a[..], "the base's side");
            assert_eq!(fs_b.entries(), &b[..], "the image's side");
            assert_eq!(diff.layers_read, tars.len());
            let same = diff_images(&full, &full, &DiffOptions::default(), &NoProgress)
                .expect("the image applied alone");
            assert!(same.is_empty() && same.layers_read == tars.len());
        }
        (Err(_), _, Err(_)) | (_, Err(_), Err(_)) => {}
        (a, b, diff) => panic!(
            "diff and apply disagree: base {:?}, image {:?}, diff {:?}",
            a.err(),
            b.err(),
            diff.err()
        ),
    }
}
