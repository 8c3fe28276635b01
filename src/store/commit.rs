//! Writing an edit back. A directory (an OCI layout, a docker-save tree) gets its
//! changed documents renamed in one at a time, the authoritative one first, then loses
//! the files nothing needs any more. An archive is written anew beside the old one,
//! every entry it keeps copied, and renamed over it: an interruption leaves the old one
//! whole.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use crate::container::{output_path, replace_file, Node, TarFileWriter, TreeWriter};
use crate::destination::Plan;
use crate::error::{Error, IoContext, Result};
use crate::sys;
use crate::text::shown;

use super::edit::{Edit, Written};

/// What a commit removed.
#[derive(Default)]
pub(crate) struct Removed {
    pub files: usize,
    pub bytes: u64,
}

/// Write `edit` back to its store.
pub(crate) fn commit(edit: &Edit) -> Result<Removed> {
    let written = edit.written();
    let store = edit.store;
    match &store.tar {
        Some(tar) => rewrite_archive(edit, tar, &written),
        None => {
            let root = &store.path;
            // manifest.json is what docker and dockhand read a docker-save tree by:
            // first, so that what follows only catches up with it.
            for (name, bytes) in [
                ("manifest.json", &written.manifest),
                ("repositories", &written.repositories),
                ("index.json", &written.index),
            ] {
                if let Some(bytes) = bytes {
                    replace_file(root, &store.shown, name, bytes)?;
                }
            }
            remove_files(root, &store.shown, &edit.dropped)
        }
    }
}

/// Remove the files `dropped` (paths in `root`), then the directories they leave
/// empty (but the layout's own `blobs/` and `blobs/sha256/`), and flush.
fn remove_files(root: &Path, shown_root: &str, dropped: &BTreeSet<String>) -> Result<Removed> {
    let mut removed = Removed::default();
    let mut parents = BTreeSet::new();
    for rel in dropped {
        let path = output_path(root, rel)?;
        // Never through a link to a directory: what it leads to is not the tree's.
        if !within(root, rel) {
            continue;
        }
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            continue;
        }
        fs::remove_file(&path).ctx(|| format!("removing {}", path.display()))?;
        removed.files += 1;
        if meta.is_file() {
            removed.bytes += meta.len();
        }
        if let Some((parent, _)) = rel.rsplit_once('/') {
            parents.insert(parent.to_string());
        }
    }
    for parent in parents.iter().rev() {
        if parent == "blobs" || parent == "blobs/sha256" {
            continue;
        }
        // Only when empty: anything else there stays.
        let _ = fs::remove_dir(output_path(root, parent)?);
    }
    if removed.files > 0 {
        sys::sync_filesystem(root).ctx(|| format!("flushing {shown_root}"))?;
    }
    Ok(removed)
}

/// Whether every directory on the way from `root` to `rel` is a directory of its own,
/// not a link: removing `rel` then removes a file of the tree, never one elsewhere.
fn within(root: &Path, rel: &str) -> bool {
    let mut dir = root.to_path_buf();
    let parts: Vec<&str> = rel.split('/').collect();
    for part in &parts[..parts.len().saturating_sub(1)] {
        dir.push(part);
        if !fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir()) {
            return false;
        }
    }
    true
}

/// Write the archive anew beside it, without the entries `edit` drops and with its
/// documents changed, and rename it over the old one.
fn rewrite_archive(
    edit: &Edit,
    tar: &crate::container::TarIndex,
    written: &Written,
) -> Result<Removed> {
    let store = edit.store;
    let mut out = TarFileWriter::create(&store.path, Plan::Replace, true)?;
    if let Some(mode) = store.mode {
        out.set_mode(mode)?;
    }
    let docs: Vec<(&str, &Vec<u8>)> = [
        ("repositories", &written.repositories),
        ("index.json", &written.index),
        ("manifest.json", &written.manifest),
    ]
    .into_iter()
    .filter_map(|(name, bytes)| bytes.as_ref().map(|b| (name, b)))
    .collect();
    let entries: Vec<(String, Node)> = tar
        .entries()
        .map(|(path, node)| (path.to_string(), node))
        .collect();
    // Directories holding something kept, and those that held anything at all.
    let mut holding_kept = BTreeSet::new();
    let mut holding_any = BTreeSet::new();
    for (path, _) in &entries {
        let kept = !edit.dropped.contains(path);
        let mut dir = path.as_str();
        while let Some((parent, _)) = dir.rsplit_once('/') {
            holding_any.insert(parent.to_string());
            if kept {
                holding_kept.insert(parent.to_string());
            }
            dir = parent;
        }
    }
    let mut removed = Removed::default();
    for (path, node) in &entries {
        if docs.iter().any(|(name, _)| name == path) {
            continue;
        }
        if edit.dropped.contains(path) {
            if let Node::File(file) = node {
                removed.bytes += file.size;
            }
            removed.files += 1;
            continue;
        }
        match node {
            Node::Dir => {
                if holding_kept.contains(path) || !holding_any.contains(path) {
                    out.dir(path)?;
                }
            }
            Node::File(file) => out.file(path, file.size, &mut file.open()?)?,
            Node::Symlink(target) => out.symlink(path, target)?,
            Node::Hardlink(_) => {
                // Written as the file it shares, which readers take the same way.
                let file = store.tree.resolve(path)?;
                out.file(path, file.size, &mut file.open()?)?;
            }
            Node::Other(kind) => {
                return Err(Error::Unsupported(format!(
                    "{}: the archive holds a {kind} ({}), which dockhand does not copy; \
                     nothing was changed",
                    store.shown,
                    shown(path)
                )))
            }
        }
    }
    for (name, bytes) in docs {
        out.file(name, bytes.len() as u64, &mut &bytes[..])?;
    }
    Box::new(out).commit()?;
    Ok(removed)
}
