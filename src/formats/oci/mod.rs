//! The OCI image layout: `oci-layout`, `index.json` and `blobs/sha256/`, in a directory
//! (`oci`) or a tar (`oci-archive`).

mod index;
mod read;
mod write;

pub(crate) use index::merge_index;
pub(crate) use read::{describe_for_docker, read};
pub use write::write_oci;
pub(crate) use write::{put_oci_image, write_oci_with, OciLayers};

/// Annotation holding the full image name (containerd, Docker >= 25).
pub const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";
/// Annotation holding the reference name (a tag, or a full reference for podman/skopeo).
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
