//! Adding to an existing directory in place, as an OCI layout is added to: blobs are
//! written beside their final name and renamed in, and the index is merged with the
//! one already there and renamed into place last.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::read_limited;
use super::{
    copy_hashing, normalize_path, output_path, Committed, ParallelFiles, Parents, TreeWriter,
};
use crate::cleanup;
use crate::destination::CheckAddable;
use crate::error::{Error, IoContext, Result};
use crate::model::digest::Digest;
use crate::model::image::MAX_JSON_SIZE;
use crate::sys;

/// Merges the index already in the layout at `root` (if any) with the one being
/// written; it may add blobs to the layout (every blob the new index names is there).
pub type MergeIndex = fn(existing: Option<&[u8]>, new: &[u8], root: &Path) -> Result<Vec<u8>>;

/// How images are added to an existing layout (the OCI layout's `oci:DIR:REF`): by an
/// [`AppendWriter`] when the layout was there from the start, by [`add_staged_layout`]
/// when it appeared while a new one was being staged.
pub(crate) struct AppendSpec {
    /// The index file, merged and renamed in last.
    pub index: &'static str,
    /// Files written only when absent (a layout marker).
    pub keep_existing: &'static [&'static str],
    /// Merge the existing index with the new one.
    pub merge: MergeIndex,
    /// Why the layout at this path cannot be added to, checked before anything is
    /// written to it.
    pub check: CheckAddable,
    /// The directory blobs go into, whose lock runs adding to the layout share
    /// ([`blob_writers_lock`]).
    pub blobs: &'static str,
}

/// The lock on the layout at `root` that every run putting blobs into it holds, shared,
/// from before its first blob until its index is in; a collector of unreferenced blobs
/// (`gc`, `rm`) holds it exclusive. A collector therefore never takes a blob written
/// but not yet named by the index for garbage, nor removes one that a run found there
/// and decided to reuse. It is the lock of the blobs directory `blobs` (made when
/// missing), not of the layout's own directory, whose exclusive lock guards the index:
/// both kinds of holder take that one after this one, so neither waits for the other
/// in the opposite order.
pub(crate) fn blob_writers_lock(root: &Path, blobs: &str, exclusive: bool) -> Result<sys::DirLock> {
    let dir = root.join(blobs);
    let shown = || format!("locking {}", dir.display());
    fs::create_dir_all(&dir)
        .map_err(|e| Error::creating_output(&root.display().to_string(), root, shown, e))?;
    if exclusive {
        sys::DirLock::exclusive(&dir).ctx(shown)
    } else {
        sys::DirLock::shared(&dir).ctx(shown)
    }
}

/// Writes into an existing directory without removing anything from it.
///
/// Every file is written to a `.<name>.dockhand-tmp-*` sibling and renamed over its
/// final name once complete; blobs are named by their digest, so a rename over an
/// existing blob cannot change its content. The index file is held back: on commit,
/// under an exclusive lock on the directory (so two dockhand runs adding to one
/// layout never lose each other's images), the index on disk is read again, merged,
/// flushed and renamed into place, after every blob is on disk. A reader sees the old
/// index or the new one, never a mix. After a failure, blobs already added stay
/// (nothing references them) and the old index is untouched.
pub struct AppendWriter {
    root: PathBuf,
    shown: String,
    index_name: &'static str,
    keep_existing: &'static [&'static str],
    new_index: Option<Vec<u8>>,
    merge: MergeIndex,
    /// Held from the start to the end: no collector runs meanwhile.
    _writing: sys::DirLock,
}

impl AppendWriter {
    /// Add to the directory `root` as `spec` says: its index file merged last, its
    /// markers written only when absent, the blob writers' lock held meanwhile.
    pub(crate) fn open(root: &Path, spec: &AppendSpec) -> Result<AppendWriter> {
        let shown = root.display().to_string();
        if !fs::symlink_metadata(root).is_ok_and(|m| m.is_dir()) {
            return Err(Error::Unsupported(format!("{shown}: not a directory")));
        }
        let writing = blob_writers_lock(root, spec.blobs, false)?;
        Ok(AppendWriter {
            root: root.to_path_buf(),
            shown,
            index_name: spec.index,
            keep_existing: spec.keep_existing,
            new_index: None,
            merge: spec.merge,
            _writing: writing,
        })
    }

    fn path(&self, rel: &str) -> Result<PathBuf> {
        output_path(&self.root, rel)
    }

    /// Write `data` to a temp file beside `rel` and rename it over `rel`.
    fn place(&self, rel: &str, data: &mut dyn Read) -> Result<u64> {
        let path = self.path(rel)?;
        let dir = path.parent().expect("joined to the root").to_path_buf();
        let name = path
            .file_name()
            .expect("normalized paths end in a name")
            .to_string_lossy()
            .into_owned();
        self.place_in(&dir, &name, data, |_| name.clone())
            .map(|(_, size)| size)
    }

    /// Write `data` to a temp file in `dir` (named after `hint`), hashing it, and rename
    /// it to the name `final_name` gives for its digest.
    fn place_in(
        &self,
        dir: &Path,
        hint: &str,
        data: &mut dyn Read,
        final_name: impl FnOnce(&Digest) -> String,
    ) -> Result<(Digest, u64)> {
        // A directory that cannot be made is named by the layout it would be in.
        fs::create_dir_all(dir).map_err(|e| {
            Error::creating_output(
                &self.shown,
                &self.root,
                || format!("creating {}", dir.display()),
                e,
            )
        })?;
        let temp = temp_file_in(dir, hint).map_err(|e| {
            let context = || format!("creating a temp file in {}", dir.display());
            Error::creating_output(&self.shown, dir, context, e)
        })?;
        cleanup::register(temp.path());
        let written = (|| -> Result<(Digest, u64)> {
            let mut out = BufWriter::with_capacity(1 << 20, temp.as_file());
            let result = copy_hashing(data, &mut out, hint)?;
            out.flush().ctx(|| format!("writing {}", dir.display()))?;
            Ok(result)
        })();
        let temp_path = temp.path().to_path_buf();
        cleanup::unregister_with(&temp_path, || match written {
            Ok((digest, size)) => {
                let path = dir.join(final_name(&digest));
                temp.persist(&path)
                    .map(|_| (digest, size))
                    .map_err(|e| Error::io(format!("renaming into {}", path.display()), e.error))
            }
            Err(e) => {
                drop(temp);
                Err(e)
            }
        })
    }
}

fn temp_file_in(dir: &Path, name: &str) -> std::io::Result<tempfile::NamedTempFile> {
    tempfile::Builder::new()
        .prefix(&format!(".{name}{}", cleanup::STAGING_MARKER))
        .permissions(fs::Permissions::from_mode(0o666))
        .tempfile_in(dir)
}

impl ParallelFiles for AppendWriter {
    fn file_shared(&self, rel: &str, data: &mut dyn Read) -> Result<u64> {
        self.place(rel, data)
    }
}

impl TreeWriter for AppendWriter {
    fn dir(&mut self, rel: &str) -> Result<()> {
        let path = self.path(rel)?;
        fs::create_dir_all(&path).map_err(|e| {
            Error::creating_output(
                &self.shown,
                &self.root,
                || format!("creating {}", path.display()),
                e,
            )
        })
    }

    fn file_unsized(&mut self, rel: &str, data: &mut dyn Read) -> Result<u64> {
        if normalize_path(rel, Parents::Refused).as_deref() == Some(self.index_name) {
            let bytes = read_limited(data, MAX_JSON_SIZE, rel)?;
            let n = bytes.len() as u64;
            self.new_index = Some(bytes);
            return Ok(n);
        }
        if self.keep_existing.contains(&rel) && self.path(rel)?.symlink_metadata().is_ok() {
            return io::copy(data, &mut io::sink()).ctx(|| format!("reading {rel}"));
        }
        self.place(rel, data)
    }

    fn file_by_digest(&mut self, prefix: &str, data: &mut dyn Read) -> Result<(Digest, u64)> {
        let (sub, name_prefix) = prefix.rsplit_once('/').unwrap_or(("", prefix));
        let dir = match sub {
            "" => self.root.clone(),
            sub => self.path(sub)?,
        };
        self.place_in(&dir, "blob", data, |digest| {
            format!("{name_prefix}{}", digest.hex())
        })
    }

    fn symlink(&mut self, rel: &str, _target: &str) -> Result<()> {
        Err(Error::Unsupported(format!(
            "{rel}: links are not added to an existing layout"
        )))
    }

    fn parallel(&self) -> Option<&dyn ParallelFiles> {
        Some(self)
    }

    fn existing_blob(&self, rel: &str, digest: &Digest, size: Option<u64>) -> Result<Option<u64>> {
        blob_matching(&self.path(rel)?, digest, size)
    }

    fn commit(self: Box<Self>) -> Result<Committed> {
        let new_index = self
            .new_index
            .as_deref()
            .ok_or_else(|| Error::Unsupported(format!("{}: no index was written", self.shown)))?;
        // Every blob the new index names must be on disk before the index is.
        sys::sync_filesystem(&self.root).ctx(|| format!("flushing {}", self.shown))?;
        merge_index_into(
            &self.root,
            &self.shown,
            self.index_name,
            self.merge,
            new_index,
        )?;
        Ok(Committed::AsPlanned)
    }
}

/// The size of the file at `path` when it is a blob whose bytes hash to `digest` (and
/// whose size is `size`, when known): only then is a blob already in a layout reused.
fn blob_matching(path: &Path, digest: &Digest, size: Option<u64>) -> Result<Option<u64>> {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return Ok(None);
    };
    if !meta.is_file() || size.is_some_and(|s| s != meta.len()) {
        return Ok(None);
    }
    let mut file = File::open(path).ctx(|| format!("reading {}", path.display()))?;
    let (actual, len) =
        Digest::of_reader(&mut file).ctx(|| format!("reading {}", path.display()))?;
    Ok((actual == *digest).then_some(len))
}

/// Merge `new_index` into the layout at `root` and rename the result over its index
/// file: under the layout's exclusive lock, so that concurrent additions never lose
/// each other's entries, and flushed, so that a reader sees the old index or the new
/// one. Every blob the new index names must be on disk already.
fn merge_index_into(
    root: &Path,
    shown: &str,
    index_name: &str,
    merge: MergeIndex,
    new_index: &[u8],
) -> Result<()> {
    let _lock = sys::DirLock::exclusive(root).ctx(|| format!("locking {shown}"))?;
    let index_path = root.join(index_name);
    let existing = match File::open(&index_path) {
        Ok(f) => Some(read_limited(f, MAX_JSON_SIZE, index_name)?),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(Error::io(format!("reading {}", index_path.display()), e)),
    };
    let merged = merge(existing.as_deref(), new_index, root)?;
    replace_file(root, shown, index_name, &merged)
}

/// Put `bytes` at `root/name` in one step: written to a temp file beside it, flushed,
/// renamed over it, and the directory flushed, so that a reader sees the old file or
/// the new one, and an interruption leaves the old one. The caller holds whatever lock
/// guards that file. `shown` names the directory in errors.
pub(crate) fn replace_file(root: &Path, shown: &str, name: &str, bytes: &[u8]) -> Result<()> {
    let path = root.join(name);
    let temp = temp_file_in(root, name).map_err(|e| {
        let context = || format!("creating a temp file in {shown}");
        Error::creating_output(shown, root, context, e)
    })?;
    cleanup::register(temp.path());
    let written = (|| -> io::Result<()> {
        let mut f = temp.as_file();
        f.write_all(bytes)?;
        f.sync_all()
    })();
    let temp_path = temp.path().to_path_buf();
    cleanup::unregister_with(&temp_path, || -> Result<()> {
        written.ctx(|| format!("writing {}", path.display()))?;
        temp.persist(&path)
            .map_err(|e| Error::io(format!("renaming into {}", path.display()), e.error))?;
        Ok(())
    })?;
    sync_dir(root).ctx(|| format!("flushing {shown}"))
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Add the layout staged (complete and flushed) in `staging` to the layout that
/// appeared at `dest` while it was written, as an [`AppendWriter`] would have added
/// it had it started after that layout existed.
///
/// Blobs are content-addressed: each is renamed in under its name unless one is there
/// already, which is reused when its bytes hash to that name; only a damaged one is
/// replaced, by bytes that do. Files of `keep_existing` are moved in only when absent.
/// Then the directories are flushed and the staged index is merged in last, under the
/// layout's lock. What is left in `staging` (reused blobs) is the caller's to remove.
/// After a failure the layout's index is untouched; blobs already moved in stay,
/// unreferenced.
pub(crate) fn add_staged_layout(staging: &Path, dest: &Path, spec: &AppendSpec) -> Result<()> {
    let shown = crate::text::shown(&dest.to_string_lossy());
    let _writing = blob_writers_lock(dest, spec.blobs, false)?;
    // Every staged file is sorted out before anything is moved, so that one this
    // cannot add fails with the layout untouched.
    let mut dirs = Vec::new();
    let mut markers = Vec::new();
    let mut blobs = Vec::new();
    let mut new_index = None;
    for entry in walkdir::WalkDir::new(staging).sort_by_file_name() {
        let entry =
            entry.map_err(|e| Error::io(format!("listing {}", staging.display()), e.into()))?;
        let rel = entry
            .path()
            .strip_prefix(staging)
            .expect("walked from the staging root")
            .to_string_lossy()
            .into_owned();
        let kind = entry.file_type();
        if kind.is_dir() {
            dirs.push(rel);
        } else if kind.is_file() && rel == spec.index {
            let file =
                File::open(entry.path()).ctx(|| format!("reading {}", entry.path().display()))?;
            new_index = Some(read_limited(file, MAX_JSON_SIZE, spec.index)?);
        } else if kind.is_file() && spec.keep_existing.contains(&rel.as_str()) {
            markers.push(rel);
        } else if let Some(digest) = kind.is_file().then(|| blob_digest(&rel)).flatten() {
            blobs.push((rel, digest));
        } else {
            return Err(Error::Unsupported(format!(
                "{}: not a blob, so it cannot be added to the existing layout {shown}",
                crate::text::shown(&rel)
            )));
        }
    }
    let new_index =
        new_index.ok_or_else(|| Error::Unsupported(format!("{shown}: no index was written")))?;
    for rel in &dirs {
        let dir = output_path_or_root(dest, rel)?;
        fs::create_dir_all(&dir).map_err(|e| {
            Error::creating_output(&shown, dest, || format!("creating {}", dir.display()), e)
        })?;
    }
    for rel in &markers {
        let target = output_path(dest, rel)?;
        match sys::rename_noreplace(&staging.join(rel), &target) {
            Err(e) if !sys::is_taken(&e) => {
                return Err(Error::io(format!("renaming into {}", target.display()), e))
            }
            _ => {}
        }
    }
    for (rel, digest) in &blobs {
        add_blob(&staging.join(rel), &output_path(dest, rel)?, digest)?;
    }
    // The renames must be on disk before the index that names what they brought.
    for rel in dirs.iter().rev() {
        sync_dir(&output_path_or_root(dest, rel)?).ctx(|| format!("flushing {shown}"))?;
    }
    merge_index_into(dest, &shown, spec.index, spec.merge, &new_index)
}

/// `rel` under `root`, or `root` itself for the empty path.
fn output_path_or_root(root: &Path, rel: &str) -> Result<PathBuf> {
    if rel.is_empty() {
        return Ok(root.to_path_buf());
    }
    output_path(root, rel)
}

/// The digest a blob path (`blobs/sha256/<hex>`) names.
fn blob_digest(rel: &str) -> Option<Digest> {
    let hex = rel.strip_prefix("blobs/sha256/")?;
    Digest::from_hex(hex)
}

/// Rename the staged blob `staged` (same filesystem) to `target` unless a blob is
/// there that hashes to `digest`; a damaged one is replaced.
fn add_blob(staged: &Path, target: &Path, digest: &Digest) -> Result<()> {
    let moving = || format!("moving a blob into {}", target.display());
    match sys::rename_noreplace(staged, target) {
        Ok(()) => return Ok(()),
        Err(e) if sys::is_taken(&e) => {}
        Err(e) => return Err(Error::io(moving(), e)),
    }
    if blob_matching(target, digest, None)?.is_some() {
        return Ok(());
    }
    fs::rename(staged, target).ctx(moving)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    /// Joins the two indexes' texts, so the test sees what was merged with what.
    fn joined(existing: Option<&[u8]>, new: &[u8], _root: &Path) -> Result<Vec<u8>> {
        Ok([existing.unwrap_or(b"none"), b"+", new].concat())
    }

    fn always_addable(_: &Path) -> std::result::Result<(), String> {
        Ok(())
    }

    const SPEC: AppendSpec = AppendSpec {
        index: "index.json",
        keep_existing: &["oci-layout"],
        merge: joined,
        check: always_addable,
        blobs: "blobs",
    };

    fn put(root: &Path, rel: &str, bytes: &[u8]) {
        let path = root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, bytes).unwrap();
    }

    fn blob(bytes: &[u8]) -> String {
        format!("blobs/sha256/{}", Digest::of(bytes).hex())
    }

    #[test]
    fn a_staged_layout_is_added_to_one_that_appeared() {
        let tmp = tempfile::tempdir().unwrap();
        let (dest, staging) = (tmp.path().join("layout"), tmp.path().join("staging"));
        // The layout that appeared: a good blob, one whose bytes no longer hash to
        // its name, its own marker and index.
        put(&dest, "oci-layout", b"theirs");
        put(&dest, "index.json", b"old");
        put(&dest, &blob(b"shared"), b"shared");
        put(&dest, &blob(b"fixed"), b"damaged");
        let shared_inode = fs::metadata(dest.join(blob(b"shared"))).unwrap().ino();
        // What this run staged.
        put(&staging, "oci-layout", b"ours");
        put(&staging, "index.json", b"new");
        for bytes in [&b"shared"[..], b"fixed", b"only ours"] {
            put(&staging, &blob(bytes), bytes);
        }

        add_staged_layout(&staging, &dest, &SPEC).unwrap();

        let read = |rel: &str| fs::read(dest.join(rel)).unwrap();
        assert_eq!(read("index.json"), b"old+new");
        assert_eq!(read("oci-layout"), b"theirs");
        for bytes in [&b"shared"[..], b"fixed", b"only ours"] {
            assert_eq!(read(&blob(bytes)), bytes);
        }
        // A blob already there that hashes right is reused, not rewritten.
        let inode = fs::metadata(dest.join(blob(b"shared"))).unwrap().ino();
        assert_eq!(inode, shared_inode);
        // What was not moved stays in the staging, for the caller to remove.
        assert!(staging.join(blob(b"shared")).is_file());
        assert!(!staging.join(blob(b"only ours")).exists());
        // No temp file is left in the layout.
        for entry in walkdir::WalkDir::new(&dest) {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            assert!(!name.contains(cleanup::STAGING_MARKER), "{name}");
        }
    }

    #[test]
    fn a_staged_file_that_is_no_blob_leaves_the_layout_untouched() {
        let tmp = tempfile::tempdir().unwrap();
        let (dest, staging) = (tmp.path().join("layout"), tmp.path().join("staging"));
        put(&dest, "index.json", b"old");
        put(&staging, "index.json", b"new");
        put(&staging, &blob(b"a"), b"a");
        put(&staging, "notes.txt", b"not content-addressed");
        let err = add_staged_layout(&staging, &dest, &SPEC).unwrap_err();
        assert!(err.to_string().contains("notes.txt"), "{err}");
        assert_eq!(fs::read(dest.join("index.json")).unwrap(), b"old");
        assert!(!dest.join(blob(b"a")).exists());
    }
}
