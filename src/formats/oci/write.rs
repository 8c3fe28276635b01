//! Writing OCI image layouts, to a directory or a tar.

use super::index::index_json;
use crate::container::TreeWriter;
use crate::error::Result;
use crate::formats::blobs::{BlobFiles, LayoutWriter};
use crate::formats::manifest::BLOBS_PREFIX;

use crate::model::image::{Descriptor, Image};
use crate::sink::ManifestInfo;

/// The `oci-layout` file dockhand writes (the same bytes as Docker >= 25).
pub const OCI_LAYOUT_FILE: &str = "{\"imageLayoutVersion\": \"1.0.0\"}";

/// The OCI image layout: blobs under `blobs/sha256/`, and `index.json` listing each
/// image or index put under its names, written last with `oci-layout`.
pub(crate) struct OciWriter {
    blobs: BlobFiles,
    /// What index.json lists, in order: each image or index with the names it is
    /// listed under.
    named: Vec<(Image, Descriptor)>,
}

impl OciWriter {
    pub(crate) fn new() -> OciWriter {
        OciWriter {
            blobs: BlobFiles::new(BLOBS_PREFIX),
            named: Vec::new(),
        }
    }
}

impl LayoutWriter for OciWriter {
    fn prepare(&mut self, tree: &mut dyn TreeWriter, _images: &[Image]) -> Result<Vec<String>> {
        tree.dir("blobs")?;
        tree.dir("blobs/sha256")?;
        Ok(Vec::new())
    }
    fn blob_files(&self) -> Option<&BlobFiles> {
        Some(&self.blobs)
    }
    fn put_manifest(&mut self, tree: &mut dyn TreeWriter, manifest: &ManifestInfo) -> Result<()> {
        self.blobs
            .put_bytes(tree, &manifest.descriptor.digest, manifest.bytes)
    }
    fn put_names(
        &mut self,
        _tree: &mut dyn TreeWriter,
        manifest: &Descriptor,
        image: &Image,
    ) -> Result<()> {
        self.named.push((image.clone(), manifest.clone()));
        Ok(())
    }
    fn finish(&mut self, tree: &mut dyn TreeWriter) -> Result<()> {
        let pairs: Vec<(&Image, &Descriptor)> = self.named.iter().map(|(i, d)| (i, d)).collect();
        let index = index_json(&pairs);
        tree.file("index.json", index.len() as u64, &mut &index[..])?;
        tree.file(
            "oci-layout",
            OCI_LAYOUT_FILE.len() as u64,
            &mut OCI_LAYOUT_FILE.as_bytes(),
        )
    }
}
