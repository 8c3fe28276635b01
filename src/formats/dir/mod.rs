//! The containers/image `dir:` layout: `manifest.json`, blobs named by hex digest and a
//! `version` file. It holds one image.

mod read;
mod schema1;
pub(crate) use schema1::{declares_schema1, read_schema1, schema1_payload};
mod write;

use super::blobs::LayoutWriter;
use super::context::Meta;
use super::{LayoutOps, ReadOptions, WriteOptions};
use crate::error::{Error, Result};
use crate::model::digest::Digest;
use crate::model::image::Image;
use crate::sink::LayerPolicy;

/// Where a list copied with `--all` keeps the manifest of its instance `digest`.
pub(crate) fn instance_manifest_path(digest: &Digest) -> String {
    format!("{}.manifest.json", digest.hex())
}

/// The `version` file content dockhand writes.
pub const DIR_VERSION: &str = "Directory Transport Version: 1.1\n";

/// Reading and writing `dir:` layouts.
pub(crate) const OPS: LayoutOps = LayoutOps {
    holds_many: false,
    takes_docker_layout: false,
    compresses_layers: true,
    bare_names_are_ref_names: false,
    read: read_any,
    writer,
    append: None,
    manifest_path: Some(instance_manifest_path),
};

fn read_any(meta: &Meta, options: &ReadOptions, warnings: &mut Vec<String>) -> Result<Vec<Image>> {
    let manifest = meta
        .read_top("manifest.json")?
        .ok_or_else(|| Error::Missing {
            file: "manifest.json".into(),
            what: "the image manifest".into(),
        })?;
    read::read(meta, &manifest.bytes, options, warnings)
}

fn writer(options: &WriteOptions) -> Result<(Box<dyn LayoutWriter>, LayerPolicy)> {
    let layers = options.layer_policy()?;
    Ok((Box::new(write::DirWriter::new()), layers))
}

#[cfg(test)]
mod tests {
    /// Every fixture of this layout, made by the real tools, reads as they describe it.
    #[test]
    fn reads_the_fixtures_as_the_real_tools_describe_them() {
        crate::formats::fixture_check::check_all(&["skopeo-dir", "skopeo-dir-gzip"]);
    }
}
