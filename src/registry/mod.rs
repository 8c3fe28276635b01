//! The `docker://` transport: images in a registry that speaks the distribution API.

pub(crate) mod challenge;
pub(crate) mod credentials;
