//! The in-memory model every reader produces and every writer consumes: images,
//! layers, descriptors, platforms, digests, references and media types. It names no
//! container and no format: a layer's bytes are behind the [`blob::Blob`] trait.

pub mod blob;
pub mod digest;
pub mod image;
pub mod media;
pub mod reference;
