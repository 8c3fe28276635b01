//! The OCI image layout: `oci-layout`, `index.json` and `blobs/sha256/`, in a directory
//! (`oci`) or a tar (`oci-archive`).

mod index;
mod read;
mod write;

pub(crate) use read::{describe_for_docker, read_from_root};
pub(crate) use write::{referrer_descriptor, OciWriter};

use std::path::Path;

use super::blobs::LayoutWriter;
use super::{LayoutOps, WriteOptions};
use crate::container::AppendSpec;
use crate::error::{Error, Result, Setting};
use crate::sink::{LayerPolicy, ManifestFormat};

/// Annotation holding the full image name (containerd, Docker >= 25).
pub const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";
/// Annotation holding the reference name (a tag, or a full reference for podman/skopeo).
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Reading and writing OCI layouts; an existing one is added to.
pub(crate) const OPS: LayoutOps = LayoutOps {
    holds_many: true,
    takes_docker_layout: false,
    compresses_layers: true,
    bare_names_are_ref_names: true,
    read: read::read,
    writer,
    append: Some(AppendSpec {
        index: "index.json",
        keep_existing: &["oci-layout"],
        merge: index::merge_index,
        check: check_addable,
        blobs: "blobs",
    }),
    manifest_path: Some(crate::formats::manifest::blob_path),
};

fn writer(options: &WriteOptions) -> Result<(Box<dyn LayoutWriter>, LayerPolicy)> {
    if options.manifest_format == Some(ManifestFormat::DockerV2) {
        return Err(Error::Usage(format!(
            "an OCI layout lists OCI manifests; {} v2s2 applies to registries and dir outputs",
            Setting::ManifestFormat
        )));
    }
    let mut layers = options.layer_policy()?;
    if options.keep_manifests {
        layers = layers.keeping_manifests();
    }
    Ok((Box::new(OciWriter::new()), layers))
}

/// Why the OCI layout at `dest` cannot be added to, checked before any blob is written.
fn check_addable(dest: &Path) -> std::result::Result<(), String> {
    index::check_addable(dest)
}

#[cfg(test)]
mod tests {
    /// Every fixture of this layout, made by the real tools, reads as they describe it.
    #[test]
    fn reads_the_fixtures_as_the_real_tools_describe_them() {
        crate::formats::fixture_check::check_all(&[
            "skopeo-oci",
            "skopeo-oci-archive",
            "skopeo-oci-multi",
            "skopeo-oci-uncompressed",
            "skopeo-oci-zstd",
            "umoci-layout",
        ]);
    }
}
