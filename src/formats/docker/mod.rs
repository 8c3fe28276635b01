//! The `docker save` layout, in a tar (`docker-archive`) or a directory (`docker-dir`):
//! manifest.json archives of every Docker since 1.10 and of the tools that imitate it,
//! pre-1.10 archives, and the Docker >= 25 hybrid with an OCI layout inside.

mod read;
mod v1;
mod write;

pub(crate) use read::read;
pub(crate) use v1::{has_v1_layers, read_pre_1_10};
pub use write::{write_docker, DockerLayout};
