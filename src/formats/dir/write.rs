//! Writing the containers/image `dir:` layout.

use super::DIR_VERSION;
use crate::container::TreeWriter;
use crate::error::Result;
use crate::formats::blobs::{BlobWriter, TreeBlobs};
use crate::formats::oci::{put_oci_image, OciLayers};
use crate::model::image::Image;
use crate::progress::Progress;

/// Write one image as a containers/image `dir:` layout: blobs named by hex digest,
/// an OCI manifest in `manifest.json`, and the `version` file.
pub(crate) fn write_dir_transport(
    image: &Image,
    out: &mut dyn TreeWriter,
    layers: OciLayers,
    progress: &dyn Progress,
) -> Result<()> {
    let mut store = TreeBlobs {
        tree: out,
        prefix: "",
    };
    let written = put_oci_image(&mut BlobWriter::new(&mut store, progress), image, layers)?;
    let out = store.tree;
    let manifest = written.manifest_bytes;
    out.file("manifest.json", manifest.len() as u64, &mut &manifest[..])?;
    out.file(
        "version",
        DIR_VERSION.len() as u64,
        &mut DIR_VERSION.as_bytes(),
    )
}
