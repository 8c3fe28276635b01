//! Writing the containers/image `dir:` layout.

use super::DIR_VERSION;
use crate::container::TreeWriter;
use crate::error::{Error, Result};
use crate::formats::blobs::{BlobFiles, LayoutWriter};

use crate::model::image::{Descriptor, Image};
use crate::sink::ManifestInfo;

/// One image as a containers/image `dir:` layout: blobs named by hex digest, its
/// manifest in `manifest.json`, and the `version` file.
pub(crate) struct DirWriter {
    blobs: BlobFiles,
    manifest: Option<Vec<u8>>,
}

impl DirWriter {
    pub(crate) fn new() -> DirWriter {
        DirWriter {
            blobs: BlobFiles::new(""),
            manifest: None,
        }
    }
}

impl LayoutWriter for DirWriter {
    fn prepare(&mut self, _tree: &mut dyn TreeWriter, images: &[Image]) -> Result<Vec<String>> {
        match images {
            [_] => Ok(Vec::new()),
            _ => Err(Error::Selection(format!(
                "a dir layout holds one image, not {}",
                images.len()
            ))),
        }
    }
    fn blob_files(&self) -> Option<&BlobFiles> {
        Some(&self.blobs)
    }
    fn put_manifest(&mut self, _tree: &mut dyn TreeWriter, manifest: &ManifestInfo) -> Result<()> {
        // The layout holds one image, and no index.
        if manifest.image.is_some() {
            self.manifest = Some(manifest.bytes.to_vec());
        }
        Ok(())
    }
    fn put_names(
        &mut self,
        _tree: &mut dyn TreeWriter,
        _manifest: &Descriptor,
        _image: &Image,
    ) -> Result<()> {
        // A `dir:` layout has no names.
        Ok(())
    }
    fn finish(&mut self, tree: &mut dyn TreeWriter) -> Result<()> {
        if let Some(manifest) = &self.manifest {
            tree.file("manifest.json", manifest.len() as u64, &mut &manifest[..])?;
        }
        tree.file(
            "version",
            DIR_VERSION.len() as u64,
            &mut DIR_VERSION.as_bytes(),
        )
    }
}
