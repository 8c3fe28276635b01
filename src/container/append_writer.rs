//! Adding to an existing directory in place, as an OCI layout is added to: blobs are
//! written beside their final name and renamed in, and the index is merged with the
//! one already there and renamed into place last.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::read_limited;
use super::{copy_hashing, normalize_path, output_path, ParallelFiles, TreeWriter};
use crate::cleanup;
use crate::error::{Error, IoContext, Result};
use crate::model::digest::{Digest, HashSink};
use crate::model::image::MAX_JSON_SIZE;
use crate::sys;

/// Merges the index already in the layout (if any) with the one being written.
pub type MergeIndex = fn(existing: Option<&[u8]>, new: &[u8]) -> Result<Vec<u8>>;

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
}

impl AppendWriter {
    /// Add to the directory `root`, merging the file `index_name` with `merge`. Files
    /// named in `keep_existing` (a layout marker) are written only when absent.
    pub fn open(
        root: &Path,
        index_name: &'static str,
        keep_existing: &'static [&'static str],
        merge: MergeIndex,
    ) -> Result<AppendWriter> {
        let shown = root.display().to_string();
        if !fs::symlink_metadata(root).is_ok_and(|m| m.is_dir()) {
            return Err(Error::Unsupported(format!("{shown}: not a directory")));
        }
        Ok(AppendWriter {
            root: root.to_path_buf(),
            shown,
            index_name,
            keep_existing,
            new_index: None,
            merge,
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
        if normalize_path(rel).as_deref() == Some(self.index_name) {
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
        let path = self.path(rel)?;
        let Ok(meta) = fs::symlink_metadata(&path) else {
            return Ok(None);
        };
        if !meta.is_file() || size.is_some_and(|s| s != meta.len()) {
            return Ok(None);
        }
        // A blob already there is reused only when its bytes hash to its name.
        let mut file = File::open(&path).ctx(|| format!("reading {}", path.display()))?;
        let mut sink = HashSink::default();
        io::copy(&mut file, &mut sink).ctx(|| format!("reading {}", path.display()))?;
        let (actual, len) = sink.hasher.finish();
        Ok((actual == *digest).then_some(len))
    }

    fn commit(self: Box<Self>) -> Result<()> {
        let new_index = self
            .new_index
            .as_deref()
            .ok_or_else(|| Error::Unsupported(format!("{}: no index was written", self.shown)))?;
        // Every blob the new index names must be on disk before the index is.
        sys::sync_filesystem(&self.root).ctx(|| format!("flushing {}", self.shown))?;
        let _lock =
            sys::DirLock::exclusive(&self.root).ctx(|| format!("locking {}", self.shown))?;
        let index_path = self.root.join(self.index_name);
        let existing = match File::open(&index_path) {
            Ok(f) => Some(read_limited(f, MAX_JSON_SIZE, self.index_name)?),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::io(format!("reading {}", index_path.display()), e)),
        };
        let merged = (self.merge)(existing.as_deref(), new_index)?;
        let temp = temp_file_in(&self.root, self.index_name).map_err(|e| {
            let context = || format!("creating a temp file in {}", self.shown);
            Error::creating_output(&self.shown, &self.root, context, e)
        })?;
        cleanup::register(temp.path());
        let written = (|| -> io::Result<()> {
            let mut f = temp.as_file();
            f.write_all(&merged)?;
            f.sync_all()
        })();
        let temp_path = temp.path().to_path_buf();
        cleanup::unregister_with(&temp_path, || -> Result<()> {
            written.ctx(|| format!("writing {}", index_path.display()))?;
            temp.persist(&index_path).map_err(|e| {
                Error::io(format!("renaming into {}", index_path.display()), e.error)
            })?;
            Ok(())
        })?;
        File::open(&self.root)
            .and_then(|dir| dir.sync_all())
            .ctx(|| format!("flushing {}", self.shown))
    }
}
