//! A directory output, built in a sibling staging directory and renamed into place.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use std::os::unix::fs::PermissionsExt;

use super::append_writer::{add_staged_layout, AppendSpec};
use super::output_file::PipelinedFile;
use super::tar_writer::split_dest;
use super::{output_path, Committed, ParallelFiles, TreeWriter};
use crate::cleanup;
use crate::destination::{self, classify_dir, Contents, Output, Plan};
use crate::error::{Error, IoContext, Result};
use crate::model::digest::Digest;
use crate::model::digest::Hasher;
use crate::sys;

/// Writes a directory tree atomically: everything goes into `.<name>.dockhand-tmp-*`
/// next to the destination, which is renamed into place on commit as the [`Plan`]
/// says (see [`crate::destination`] for which plans a destination allows).
///
/// A new output whose destination was taken meanwhile keeps what is there, except
/// that a new layout which can be added to one of its kind (an OCI layout, see
/// [`DirWriter::adding_to_one_that_appears`]) adds its images to the one that appeared.
pub struct DirWriter {
    staging: Option<PathBuf>,
    dest: PathBuf,
    plan: Plan,
    jobs: usize,
    force: bool,
    adds_to_appeared: Option<&'static AppendSpec>,
}

impl DirWriter {
    /// Start writing `dest`, to be committed following `plan` (`Create`, `FillEmpty` or
    /// `Replace`).
    pub fn create(dest: &Path, plan: Plan) -> Result<DirWriter> {
        if cleanup::interrupted() {
            return Err(Error::Interrupted);
        }
        let shown = dest.display().to_string();
        let (parent, name) = split_dest(dest)?;
        // Mode 0777 before the umask, as mkdir(1) gives: not tempfile's 0700.
        let staging = tempfile::Builder::new()
            .prefix(&format!(".{name}{}", cleanup::STAGING_MARKER))
            .permissions(fs::Permissions::from_mode(0o777))
            .tempdir_in(&parent)
            .map_err(|e| {
                let context = || format!("creating a staging directory next to {shown}");
                Error::creating_output(&shown, &parent, context, e)
            })?
            .keep();
        cleanup::register(&staging);
        Ok(DirWriter {
            staging: Some(staging),
            dest: dest.to_path_buf(),
            plan,
            jobs: crate::pool::cores(),
            force: false,
            adds_to_appeared: None,
        })
    }

    /// Say whether `--force` was given, so that an error about a destination that
    /// appeared meanwhile suggests it only when it was not (and would replace that).
    pub fn with_force(mut self, force: bool) -> DirWriter {
        self.force = force;
        self
    }

    /// When a layout that `spec` can add to appears at the destination before this new
    /// one is renamed in (concurrent runs creating one OCI layout), add this one's
    /// images to it, as an [`super::AppendWriter`] would have, instead of failing.
    pub(crate) fn adding_to_one_that_appears(mut self, spec: &'static AppendSpec) -> DirWriter {
        self.adds_to_appeared = Some(spec);
        self
    }

    /// Write up to `jobs` files at once (default: one per core): more when the bytes
    /// come from a network rather than a disk.
    pub fn with_jobs(mut self, jobs: usize) -> DirWriter {
        self.jobs = jobs.max(1);
        self
    }

    fn path(&self, rel: &str) -> Result<PathBuf> {
        output_path(self.staging.as_ref().expect("used after commit"), rel)
    }

    fn create_file(&self, rel: &str) -> Result<(PathBuf, File)> {
        let path = self.path(rel)?;
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).ctx(|| format!("creating {}", parent.display()))?;
        }
        let file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .ctx(|| format!("creating {}", path.display()))?;
        Ok((path, file))
    }
}

impl Drop for DirWriter {
    fn drop(&mut self) {
        if let Some(staging) = self.staging.take() {
            cleanup::unregister_with(&staging, || {
                let _ = fs::remove_dir_all(&staging);
            });
        }
    }
}

impl ParallelFiles for DirWriter {
    fn jobs(&self) -> usize {
        self.jobs
    }

    fn file_shared(&self, rel: &str, data: &mut dyn Read) -> Result<u64> {
        let (path, file) = self.create_file(rel)?;
        // Written by a thread of its own, so that reading and verifying the next bytes
        // overlap with writing these.
        let shown = path.display().to_string();
        let mut out = PipelinedFile::new(file).ctx(|| "starting a writing thread".into())?;
        let n = out.append_from(data, None, &shown, &shown)?;
        out.finish().ctx(|| format!("writing {shown}"))?;
        Ok(n)
    }

    fn adopt(&self, rel: &str, file: &File) -> Result<bool> {
        let path = self.path(rel)?;
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).ctx(|| format!("creating {}", parent.display()))?;
        }
        // Another filesystem, no /proc, an old kernel: the caller copies instead.
        Ok(sys::link_unnamed(file, &path).is_ok())
    }
}

impl TreeWriter for DirWriter {
    fn dir(&mut self, rel: &str) -> Result<()> {
        let path = self.path(rel)?;
        fs::create_dir_all(&path).ctx(|| format!("creating {}", path.display()))
    }

    fn file_unsized(&mut self, rel: &str, data: &mut dyn Read) -> Result<u64> {
        self.file_shared(rel, data)
    }

    fn parallel(&self) -> Option<&dyn ParallelFiles> {
        Some(self)
    }

    fn staging_dir(&self) -> Option<&Path> {
        self.staging.as_deref()
    }

    fn file_by_digest(&mut self, prefix: &str, data: &mut dyn Read) -> Result<(Digest, u64)> {
        // The staging directory is dockhand's own: write under a fixed name, then
        // rename once the content, and so the name, is known.
        let (incoming, file) = self.create_file(&format!("{prefix}.incoming"))?;
        let shown = incoming.display().to_string();
        let mut out = PipelinedFile::new(file).ctx(|| "starting a writing thread".into())?;
        let mut hasher = Hasher::new();
        out.append_from(data, Some(&mut hasher), prefix, &shown)?;
        out.finish().ctx(|| format!("writing {shown}"))?;
        let (digest, size) = hasher.finish();
        let path = self.path(&format!("{prefix}{}", digest.hex()))?;
        fs::rename(&incoming, &path).ctx(|| format!("renaming into {}", path.display()))?;
        Ok((digest, size))
    }

    fn symlink(&mut self, rel: &str, target: &str) -> Result<()> {
        let path = self.path(rel)?;
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).ctx(|| format!("creating {}", parent.display()))?;
        }
        std::os::unix::fs::symlink(target, &path)
            .ctx(|| format!("creating symlink {}", path.display()))
    }

    fn commit(mut self: Box<Self>) -> Result<Committed> {
        let staging = self.staging.take().expect("committed twice");
        let shown = self.dest.display().to_string();
        flush_tree(&staging).ctx(|| format!("flushing {shown}"))?;
        let dest = self.dest.clone();
        let plan = self.plan;
        // `Ok(false)`: the destination was taken meanwhile, and the staging stays
        // registered for whatever is done about that.
        let renamed = cleanup::unregister_if(
            &staging,
            || -> Result<bool> {
                let taken_or = |renamed: io::Result<()>| match renamed {
                    Ok(()) => Ok(true),
                    Err(e) if sys::is_taken(&e) => Ok(false),
                    Err(e) => Err(Error::io(format!("renaming into {shown}"), e)),
                };
                match plan {
                    // Never over something that appeared since the destination was checked.
                    Plan::Create => taken_or(sys::rename_noreplace(&staging, &dest)),
                    // rename(2) replaces an empty directory and nothing else.
                    Plan::FillEmpty => taken_or(fs::rename(&staging, &dest)),
                    Plan::Replace => replace_dir(&staging, &dest, &shown).map(|()| true),
                    Plan::AddToOciLayout => unreachable!("layouts are added to in place"),
                }
            },
            |renamed| !matches!(renamed, Ok(false)),
        );
        let result = match renamed {
            Ok(true) => return Ok(Committed::AsPlanned),
            Ok(false) => self.meet_appeared(&staging),
            Err(e) => Err(e),
        };
        // Only ever our own staging: whatever was not moved out of it.
        cleanup::unregister_with(&staging, || {
            let _ = fs::remove_dir_all(&staging);
        });
        result
    }
}

impl DirWriter {
    /// The destination appeared while the output was staged in `staging`: add to it
    /// when it is a layout this output can be added to, else keep it and say what
    /// appeared.
    fn meet_appeared(&self, staging: &Path) -> Result<Committed> {
        let output = Output::Directory {
            appendable: self.adds_to_appeared.is_some(),
        };
        let check = self.adds_to_appeared.map(|spec| spec.check);
        let plan = destination::appeared(&self.dest, output, self.force, check)?;
        debug_assert_eq!(plan, Plan::AddToOciLayout);
        let spec = self
            .adds_to_appeared
            .expect("only an appendable output adds");
        add_staged_layout(staging, &self.dest, spec)?;
        Ok(Committed::AddedToAppearedLayout)
    }
}

/// Flush every file and directory of `root` to disk: fsyncs on many threads, which the
/// filesystem's journal serves together. (syncfs would also flush whatever else is
/// dirty on the filesystem, such as the spool file of a piped input: a second write of
/// the whole image that nobody needs.)
fn flush_tree(root: &Path) -> io::Result<()> {
    const FLUSHERS: usize = 16;
    let mut paths = Vec::new();
    for entry in walkdir::WalkDir::new(root) {
        let entry = entry.map_err(io::Error::other)?;
        if entry.file_type().is_file() || entry.file_type().is_dir() {
            paths.push(entry.into_path());
        }
    }
    for result in crate::pool::run_all(&paths, FLUSHERS, |path| File::open(path)?.sync_all()) {
        result.unwrap_or_else(|| Err(io::Error::other("not flushed")))?;
    }
    Ok(())
}

/// Swap the staging tree and the old destination in one step, so the destination is
/// whole at every instant (even under SIGKILL), then delete the old tree from the
/// staging name. The destination is checked again first: it must still be a
/// directory that dockhand may replace.
fn replace_dir(staging: &Path, dest: &Path, shown: &str) -> Result<()> {
    let still_ours = fs::symlink_metadata(dest).is_ok_and(|m| m.is_dir())
        && matches!(classify_dir(dest), Contents::Empty | Contents::Layout(_));
    if !still_ours {
        return Err(Error::DestinationRefused {
            path: shown.to_string(),
            reason: "it changed while dockhand was writing and is no longer a directory dockhand may replace".into(),
        });
    }
    if sys::rename_exchange(staging, dest).is_ok() {
        let _ = fs::remove_dir_all(staging);
        return Ok(());
    }
    // Filesystems without RENAME_EXCHANGE: move aside, move in, delete.
    let aside = staging.with_extension("old");
    fs::rename(dest, &aside).ctx(|| format!("moving aside {shown}"))?;
    if let Err(e) = fs::rename(staging, dest) {
        let _ = fs::rename(&aside, dest);
        return Err(Error::io(format!("renaming into {shown}"), e));
    }
    let _ = fs::remove_dir_all(&aside);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn joined(existing: Option<&[u8]>, new: &[u8], _root: &Path) -> Result<Vec<u8>> {
        Ok([existing.unwrap_or(b"none"), b"+", new].concat())
    }

    static SPEC: AppendSpec = AppendSpec {
        index: "index.json",
        keep_existing: &["oci-layout"],
        merge: joined,
        check: |_| Ok(()),
        blobs: "blobs",
    };

    /// A writer for a new layout at `dest` holding `index` and one blob.
    fn staged(dest: &Path, index: &[u8], blob: &[u8]) -> Box<DirWriter> {
        let mut writer = DirWriter::create(dest, Plan::Create)
            .unwrap()
            .adding_to_one_that_appears(&SPEC);
        writer.file("oci-layout", 2, &mut &b"{}"[..]).unwrap();
        writer
            .file("index.json", index.len() as u64, &mut &index[..])
            .unwrap();
        writer
            .file_by_digest("blobs/sha256/", &mut &blob[..])
            .unwrap();
        Box::new(writer)
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_new_layout_adds_to_one_created_meanwhile() {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("layout");
        // Both were planned while nothing was there.
        let first = staged(&dest, b"first", b"one");
        let second = staged(&dest, b"second", b"two");
        assert_eq!(first.commit().unwrap(), Committed::AsPlanned);
        assert_eq!(second.commit().unwrap(), Committed::AddedToAppearedLayout);
        assert_eq!(fs::read(dest.join("index.json")).unwrap(), b"first+second");
        let mut both = [b"one", b"two"].map(|b| Digest::of(b).hex().to_string());
        both.sort();
        assert_eq!(names(&dest.join("blobs/sha256")), both);
        // Only the layout is left: the second staging was removed.
        assert_eq!(names(tmp.path()), ["layout"]);
    }

    #[test]
    fn a_new_output_keeps_what_appeared_when_it_cannot_add_to_it() {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("out");
        for force in [false, true] {
            let mut writer = DirWriter::create(&dest, Plan::Create)
                .unwrap()
                .with_force(force);
            writer.file("manifest.json", 2, &mut &b"[]"[..]).unwrap();
            fs::create_dir(&dest).unwrap();
            fs::write(dest.join("notes"), b"theirs").unwrap();
            let err = Box::new(writer).commit().unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::DestinationAppeared {
                        force_would_replace: false,
                        ..
                    }
                ),
                "{err:?}"
            );
            assert_eq!(fs::read(dest.join("notes")).unwrap(), b"theirs");
            assert_eq!(names(tmp.path()), ["out"]);
            fs::remove_dir_all(&dest).unwrap();
        }
    }
}
