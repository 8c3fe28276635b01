//! Collecting the blobs of a layout directory that nothing it names uses any more, as
//! `umoci gc` does; under the lock every run adding blobs shares, so that a blob
//! written by a conversion whose index is not in yet is never taken for garbage.

use std::fs;
use std::path::Path;

use crate::container::{blob_writers_lock, read_limited, DirTree, FileTree};
use crate::error::{Error, IoContext, Result};
use crate::model::digest::Digest;
use crate::model::image::MAX_JSON_SIZE;
use crate::sys::{self, DirLock};

use super::names::{IndexDoc, SaveDoc};
use super::reach::Reach;
use super::{GcReport, StoreError};

/// Collect the garbage of the layout directory at `path` (with `dry_run`, only say
/// what would go).
pub(crate) fn collect(path: &Path, dry_run: bool) -> Result<GcReport> {
    let given = crate::text::shown(&path.display().to_string());
    let not_a_layout = |reason: &str| {
        Error::Store(Box::new(StoreError::NotEditable {
            store: given.clone(),
            reason: reason.to_string(),
        }))
    };
    let meta = fs::metadata(path).map_err(|e| Error::io("cannot open", e).in_input(&given))?;
    if !meta.is_dir() {
        return Err(not_a_layout(
            "gc collects the blobs of a layout directory; an archive holds no garbage \
             dockhand made (rm writes it anew without what it drops)",
        ));
    }
    let mut report = GcReport {
        dry_run,
        ..GcReport::default()
    };
    if !path.join("blobs").is_dir() {
        if path.join("index.json").is_file() || path.join("oci-layout").is_file() {
            return Ok(report);
        }
        return Err(not_a_layout(
            "it is not an OCI layout (no index.json, no blobs/)",
        ));
    }
    // A blobs directory that is a link may be shared with other layouts (as
    // containers/image can share one): what they use is not known here.
    for dir in ["blobs", "blobs/sha256"] {
        if fs::symlink_metadata(path.join(dir)).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(not_a_layout(&format!(
                "its {dir} is a link, maybe to blobs other layouts share too, so gc removes nothing"
            )));
        }
    }
    let _writers = blob_writers_lock(path, "blobs", true)?;
    let _index = DirLock::exclusive(path).ctx(|| format!("locking {given}"))?;
    let tree: &dyn FileTree = &DirTree::new(path, &given);
    let doc = |name: &str| -> Result<Option<Vec<u8>>> {
        match tree.find(name)? {
            Some(file) => Ok(Some(read_limited(file.open()?, MAX_JSON_SIZE, name)?)),
            None => Ok(None),
        }
    };
    let Some(index) = doc("index.json").map_err(|e| e.in_input(&given))? else {
        return Err(not_a_layout(
            "it has no index.json, so nothing tells which blobs are used; gc removes nothing",
        ));
    };
    let index = IndexDoc::parse(&index).map_err(|e| e.in_input(&given))?;
    let documents: Vec<Digest> = index
        .entries
        .iter()
        .filter_map(|e| e.digest.clone())
        .collect();
    // A docker-save tree of Docker >= 25 names its configs and layers in manifest.json.
    let leaves: Vec<Digest> = match doc("manifest.json").map_err(|e| e.in_input(&given))? {
        Some(bytes) if bytes.trim_ascii_start().starts_with(b"[") => SaveDoc::parse(&bytes)
            .map_err(|e| e.in_input(&given))?
            .entries
            .iter()
            .flat_map(|e| e.config.iter().chain(&e.layers))
            .filter_map(|p| p.strip_prefix("blobs/sha256/").and_then(Digest::from_hex))
            .collect(),
        _ => Vec::new(),
    };
    let used = Reach::new(tree)
        .from(documents, leaves)
        .map_err(|e| e.in_input(&given))?;
    let blobs = path.join("blobs");
    for entry in fs::read_dir(&blobs).ctx(|| format!("listing {}", blobs.display()))? {
        let entry = entry.ctx(|| format!("listing {}", blobs.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name != "sha256" {
            report.unknown.push(format!("blobs/{name}"));
        }
    }
    let dir = blobs.join("sha256");
    let listing = match fs::read_dir(&dir) {
        Ok(listing) => listing,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(report),
        Err(e) => return Err(Error::io(format!("listing {}", dir.display()), e)),
    };
    let mut names: Vec<String> = Vec::new();
    for entry in listing {
        let entry = entry.ctx(|| format!("listing {}", dir.display()))?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    for name in names {
        let file = dir.join(&name);
        let Ok(meta) = fs::symlink_metadata(&file) else {
            continue;
        };
        let digest = Digest::from_hex(&name).filter(|_| !meta.is_dir());
        let Some(digest) = digest else {
            report.unknown.push(format!("blobs/sha256/{name}"));
            continue;
        };
        if used.contains(&digest) {
            report.kept += 1;
            continue;
        }
        if !dry_run {
            fs::remove_file(&file).ctx(|| format!("removing {}", file.display()))?;
        }
        report
            .removed
            .push((digest, if meta.is_file() { meta.len() } else { 0 }));
    }
    if !dry_run && !report.removed.is_empty() {
        sys::sync_filesystem(path).ctx(|| format!("flushing {given}"))?;
    }
    Ok(report)
}
