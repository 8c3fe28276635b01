//! The containers/image `dir:` layout: `manifest.json`, blobs named by hex digest and a
//! `version` file. It holds one image.

mod read;
mod schema1;
mod write;

pub(crate) use read::read;
pub use write::write_dir_transport;

/// The `version` file content dockhand writes.
pub const DIR_VERSION: &str = "Directory Transport Version: 1.1\n";
