//! A local layout as an [`ImageDestination`]: a [`LayoutWriter`] (which files and
//! documents the layout has) writing into a [`TreeWriter`] (a tar stream or file, a
//! staging directory, an existing layout added to). Content-addressed layouts (OCI,
//! `dir:`, the Docker >= 25 hybrid) keep their blobs as files named by digest
//! ([`BlobFiles`]).

use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Mutex;

use crate::container::{Committed, ParallelFiles, TreeWriter};
use crate::destination::Plan;
use crate::error::Result;
use crate::model::digest::Digest;
use crate::model::image::{Descriptor, Image};
use crate::sink::{BlobInfo, CommitReport, ConcurrentBlobs, ImageDestination, ManifestInfo};

/// What a local layout does with the parts of images, in the tree it is handed: the
/// calls of [`ImageDestination`], and the documents it writes last.
pub(crate) trait LayoutWriter {
    /// See [`ImageDestination::prepare`]; the layout may start its tree here.
    fn prepare(&mut self, tree: &mut dyn TreeWriter, images: &[Image]) -> Result<Vec<String>>;
    /// The files it keeps blobs in by digest, when it does (an OCI layout, `dir:`,
    /// the Docker >= 25 hybrid): the blob calls below go there unless overridden.
    fn blob_files(&self) -> Option<&BlobFiles> {
        None
    }
    /// See [`ImageDestination::try_reusing_blob`].
    fn try_reusing_blob(
        &mut self,
        tree: &mut dyn TreeWriter,
        blob: &BlobInfo,
    ) -> Result<Option<u64>> {
        match self.blob_files() {
            Some(files) => files.try_reusing(tree, blob),
            None => Ok(None),
        }
    }
    /// See [`ImageDestination::put_blob`].
    fn put_blob(
        &mut self,
        tree: &mut dyn TreeWriter,
        blob: &BlobInfo,
        data: &mut dyn Read,
    ) -> Result<(Digest, u64)> {
        let files = self.blob_files().ok_or_else(|| {
            crate::error::Error::Unsupported("this layout keeps no blob files".into())
        })?;
        files.put(tree, blob, data)
    }
    /// See [`ImageDestination::concurrent`].
    fn concurrent<'a>(&'a self, tree: &'a dyn TreeWriter) -> Option<Box<dyn ConcurrentBlobs + 'a>> {
        self.blob_files()?.concurrent(tree)
    }
    /// See [`ImageDestination::put_manifest`].
    fn put_manifest(&mut self, tree: &mut dyn TreeWriter, manifest: &ManifestInfo) -> Result<()>;
    /// See [`ImageDestination::put_names`].
    fn put_names(
        &mut self,
        tree: &mut dyn TreeWriter,
        manifest: &Descriptor,
        image: &Image,
    ) -> Result<()>;
    /// Write the documents that list what was put (index.json, manifest.json, ...).
    fn finish(&mut self, tree: &mut dyn TreeWriter) -> Result<()>;
}

/// A layout written into a tree, committed with it.
pub(crate) struct TreeDestination<'t> {
    tree: Box<dyn TreeWriter + 't>,
    layout: Box<dyn LayoutWriter>,
    plan: Option<Plan>,
}

impl<'t> TreeDestination<'t> {
    /// `layout` written into `tree`, as `plan` decided (`None` for a stream).
    pub(crate) fn new(
        tree: Box<dyn TreeWriter + 't>,
        layout: Box<dyn LayoutWriter>,
        plan: Option<Plan>,
    ) -> Self {
        TreeDestination { tree, layout, plan }
    }
}

impl ImageDestination for TreeDestination<'_> {
    fn prepare(&mut self, images: &[Image]) -> Result<Vec<String>> {
        self.layout.prepare(&mut *self.tree, images)
    }
    fn try_reusing_blob(&mut self, blob: &BlobInfo) -> Result<Option<u64>> {
        self.layout.try_reusing_blob(&mut *self.tree, blob)
    }
    fn put_blob(&mut self, blob: &BlobInfo, data: &mut dyn Read) -> Result<(Digest, u64)> {
        self.layout.put_blob(&mut *self.tree, blob, data)
    }
    fn concurrent(&self) -> Option<Box<dyn ConcurrentBlobs + '_>> {
        self.layout.concurrent(&*self.tree)
    }
    fn put_manifest(&mut self, manifest: &ManifestInfo) -> Result<()> {
        self.layout.put_manifest(&mut *self.tree, manifest)
    }
    fn put_names(&mut self, manifest: &Descriptor, image: &Image) -> Result<()> {
        self.layout.put_names(&mut *self.tree, manifest, image)
    }
    fn commit(mut self: Box<Self>) -> Result<CommitReport> {
        self.layout.finish(&mut *self.tree)?;
        let plan = match self.tree.commit()? {
            Committed::AsPlanned => self.plan,
            Committed::AddedToAppearedLayout => Some(Plan::AddToOciLayout),
        };
        Ok(CommitReport::of_plan(plan))
    }
    fn plan(&self) -> Option<Plan> {
        self.plan
    }
    fn spool_dir(&self) -> Option<PathBuf> {
        self.tree.staging_dir().map(PathBuf::from)
    }
}

/// Blobs as files of a tree named `prefix` + hex digest (`blobs/sha256/` in an OCI
/// layout, none in a `dir:` layout), and what this run put there.
pub(crate) struct BlobFiles {
    prefix: &'static str,
    /// Blobs put, or found in the layout added to, with their sizes.
    held: Mutex<HashMap<Digest, u64>>,
}

impl BlobFiles {
    pub(crate) fn new(prefix: &'static str) -> BlobFiles {
        BlobFiles {
            prefix,
            held: Mutex::default(),
        }
    }

    fn path(&self, digest: &Digest) -> String {
        format!("{}{}", self.prefix, digest.hex())
    }

    fn hold(&self, digest: &Digest, size: u64) {
        self.held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(digest.clone(), size);
    }

    fn held(&self, digest: &Digest) -> Option<u64> {
        let held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.get(digest).copied()
    }

    /// See [`ImageDestination::try_reusing_blob`]: put already, or in the layout added
    /// to (verified there).
    pub(crate) fn try_reusing(
        &self,
        tree: &dyn TreeWriter,
        blob: &BlobInfo,
    ) -> Result<Option<u64>> {
        let Some(digest) = blob.digest else {
            return Ok(None);
        };
        if let Some(size) = self.held(digest) {
            return Ok(Some(size));
        }
        let found = tree.existing_blob(&self.path(digest), digest, blob.size)?;
        if let Some(size) = found {
            self.hold(digest, size);
        }
        Ok(found)
    }

    /// See [`ImageDestination::put_blob`].
    pub(crate) fn put(
        &self,
        tree: &mut dyn TreeWriter,
        blob: &BlobInfo,
        data: &mut dyn Read,
    ) -> Result<(Digest, u64)> {
        let (digest, size) = match (blob.digest, blob.size) {
            (Some(digest), Some(size)) => {
                tree.file(&self.path(digest), size, data)?;
                (digest.clone(), size)
            }
            (Some(digest), None) => (digest.clone(), tree.file_unsized(&self.path(digest), data)?),
            (None, _) => tree.file_by_digest(self.prefix, data)?,
        };
        self.hold(&digest, size);
        Ok((digest, size))
    }

    /// Put small bytes (a manifest) as a blob, unless held already.
    pub(crate) fn put_bytes(
        &self,
        tree: &mut dyn TreeWriter,
        digest: &Digest,
        bytes: &[u8],
    ) -> Result<()> {
        if self.held(digest).is_some() {
            return Ok(());
        }
        let size = bytes.len() as u64;
        if tree
            .existing_blob(&self.path(digest), digest, Some(size))?
            .is_none()
        {
            tree.file(&self.path(digest), size, &mut &bytes[..])?;
        }
        self.hold(digest, size);
        Ok(())
    }

    /// See [`ImageDestination::concurrent`]: when the tree writes several files at once.
    pub(crate) fn concurrent<'a>(
        &'a self,
        tree: &'a dyn TreeWriter,
    ) -> Option<Box<dyn ConcurrentBlobs + 'a>> {
        let files = tree.parallel()?;
        Some(Box::new(SharedFiles { files, blobs: self }))
    }
}

/// Blob files written from several threads at once.
struct SharedFiles<'a> {
    files: &'a dyn ParallelFiles,
    blobs: &'a BlobFiles,
}

impl ConcurrentBlobs for SharedFiles<'_> {
    fn put_blob_shared(&self, blob: &BlobInfo, data: &mut dyn Read) -> Result<u64> {
        let digest = blob.digest.ok_or_else(no_digest)?;
        // The verifying reader ends the stream at the size the source states.
        let size = self.files.file_shared(&self.blobs.path(digest), data)?;
        self.blobs.hold(digest, size);
        Ok(size)
    }
    fn adopt(&self, digest: &Digest, file: &std::fs::File) -> Result<bool> {
        let adopted = self.files.adopt(&self.blobs.path(digest), file)?;
        if adopted {
            let size = file
                .metadata()
                .map_err(|e| crate::error::Error::io("reading a spooled layer's size", e))?
                .len();
            self.blobs.hold(digest, size);
        }
        Ok(adopted)
    }
    fn jobs(&self) -> usize {
        self.files.jobs()
    }
}

/// The error for a blob put concurrently without its digest, which the pipeline never
/// does (a blob whose digest is computed is put in turn).
pub(crate) fn no_digest() -> crate::error::Error {
    crate::error::Error::Unsupported("a blob put concurrently must have its digest".into())
}
