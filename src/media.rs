//! Media types and compression, detected from magic bytes and never from labels.

use std::io::{self, BufReader, Read, Write};

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI uncompressed layer.
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// OCI gzip layer.
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// OCI zstd layer.
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// Docker schema2 manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker uncompressed layer.
pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
/// Docker gzip layer.
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Docker zstd layer (containerd only; most schema2 consumers reject it).
pub const DOCKER_LAYER_ZSTD: &str = "application/vnd.docker.image.rootfs.diff.tar.zstd";
/// Docker schema1 manifest.
pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";

/// Is this the media type of an image index or manifest list?
pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
}

/// Is this config media type one of a container image (rather than an artifact)?
pub fn is_image_config(media_type: &str) -> bool {
    media_type == OCI_CONFIG || media_type == DOCKER_CONFIG
}

/// The family of media types an image's descriptors use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// `application/vnd.docker.*`
    Docker,
    /// `application/vnd.oci.*`
    Oci,
}

/// How a blob is compressed, as told by its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Compression {
    /// Not compressed (a plain tar for layers).
    None,
    /// gzip (one or more members).
    Gzip,
    /// zstd (one or more frames).
    Zstd,
    /// xz; accepted for whole archives and, like `docker load`, for layers.
    Xz,
    /// bzip2; accepted for whole archives and, like `docker load`, for layers.
    Bzip2,
}

impl Compression {
    /// Sniff the compression from the first bytes of a stream (6 are enough).
    pub fn detect(head: &[u8]) -> Compression {
        if head.starts_with(b"BZh") {
            Compression::Bzip2
        } else if head.starts_with(&[0x1f, 0x8b, 0x08]) {
            Compression::Gzip
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
            Compression::Xz
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
            || (head.len() >= 4
                && u32::from_le_bytes([head[0], head[1], head[2], head[3]]) & 0xFFFF_FFF0
                    == 0x184D_2A50)
        {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    /// The name used in `inspect` output.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::Xz => "xz",
            Compression::Bzip2 => "bzip2",
        }
    }

    /// The layer media type for this compression in `family`, if the family has one.
    pub fn layer_media_type(self, family: Family) -> Option<&'static str> {
        match (family, self) {
            (Family::Oci, Compression::None) => Some(OCI_LAYER_TAR),
            (Family::Oci, Compression::Gzip) => Some(OCI_LAYER_GZIP),
            (Family::Oci, Compression::Zstd) => Some(OCI_LAYER_ZSTD),
            (Family::Docker, Compression::None) => Some(DOCKER_LAYER_TAR),
            (Family::Docker, Compression::Gzip) => Some(DOCKER_LAYER_GZIP),
            (Family::Docker, Compression::Zstd) => Some(DOCKER_LAYER_ZSTD),
            _ => None,
        }
    }

    /// A reader that decompresses `inner`. Decoders read through a `BufReader` over the
    /// bounded input, so they can never read past the blob.
    pub fn decoder<'a, R: Read + Send + 'a>(
        self,
        inner: R,
    ) -> io::Result<Box<dyn Read + Send + 'a>> {
        const BUF: usize = 256 * 1024;
        Ok(match self {
            Compression::None => Box::new(inner),
            Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(
                BufReader::with_capacity(BUF, inner),
            )),
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(
                BufReader::with_capacity(BUF, inner),
            )?),
            Compression::Xz => Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(
                BufReader::with_capacity(BUF, inner),
            )),
            Compression::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(
                BufReader::with_capacity(BUF, inner),
            )),
        })
    }
}

/// A `Write` that decompresses what it is given into `inner`, so a stream can be hashed
/// in both its stored and its uncompressed form in one pass.
pub enum DecodingWriter<W: Write> {
    /// Uncompressed: bytes pass straight through.
    Plain(W),
    /// gzip.
    Gzip(Box<flate2::write::MultiGzDecoder<W>>),
    /// zstd.
    Zstd(Box<zstd::stream::write::Decoder<'static, W>>),
    /// xz.
    Xz(Box<liblzma::write::XzDecoder<W>>),
    /// bzip2.
    Bzip2(Box<bzip2::write::BzDecoder<W>>),
}

impl<W: Write> DecodingWriter<W> {
    /// A decoding writer for `compression` over `inner`.
    pub fn new(compression: Compression, inner: W) -> io::Result<Self> {
        Ok(match compression {
            Compression::None => DecodingWriter::Plain(inner),
            Compression::Gzip => {
                DecodingWriter::Gzip(Box::new(flate2::write::MultiGzDecoder::new(inner)))
            }
            Compression::Zstd => {
                DecodingWriter::Zstd(Box::new(zstd::stream::write::Decoder::new(inner)?))
            }
            Compression::Xz => DecodingWriter::Xz(Box::new(
                liblzma::write::XzDecoder::new_multi_decoder(inner),
            )),
            Compression::Bzip2 => {
                DecodingWriter::Bzip2(Box::new(bzip2::write::BzDecoder::new(inner)))
            }
        })
    }

    /// Flush the decoder and hand back the inner writer. Fails if the compressed stream
    /// was incomplete.
    pub fn finish(self) -> io::Result<W> {
        match self {
            DecodingWriter::Plain(w) => Ok(w),
            DecodingWriter::Gzip(d) => d.finish(),
            DecodingWriter::Zstd(mut d) => {
                d.flush()?;
                Ok(d.into_inner())
            }
            DecodingWriter::Xz(d) => d.finish(),
            DecodingWriter::Bzip2(mut d) => d.finish(),
        }
    }
}

impl<W: Write> Write for DecodingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            DecodingWriter::Plain(w) => w.write(buf),
            DecodingWriter::Gzip(d) => d.write(buf),
            DecodingWriter::Zstd(d) => d.write(buf),
            DecodingWriter::Xz(d) => d.write(buf),
            DecodingWriter::Bzip2(d) => d.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            DecodingWriter::Plain(w) => w.flush(),
            DecodingWriter::Gzip(d) => d.flush(),
            DecodingWriter::Zstd(d) => d.flush(),
            DecodingWriter::Xz(d) => d.flush(),
            DecodingWriter::Bzip2(d) => d.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_magic_bytes() {
        assert_eq!(
            Compression::detect(&[0x1f, 0x8b, 0x08, 0]),
            Compression::Gzip
        );
        assert_eq!(
            Compression::detect(&[0x28, 0xb5, 0x2f, 0xfd]),
            Compression::Zstd
        );
        assert_eq!(
            Compression::detect(&[0x50, 0x2a, 0x4d, 0x18]),
            Compression::Zstd
        );
        assert_eq!(Compression::detect(b"\xfd7zXZ\x00"), Compression::Xz);
        assert_eq!(Compression::detect(b"BZh91AY"), Compression::Bzip2);
        assert_eq!(Compression::detect(b"manifest.json\0"), Compression::None);
        assert_eq!(Compression::detect(b""), Compression::None);
    }

    #[test]
    fn decoding_writer_round_trips_gzip() {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(b"layer bytes").unwrap();
        let gz = enc.finish().unwrap();
        let mut w = DecodingWriter::new(Compression::detect(&gz), Vec::new()).unwrap();
        w.write_all(&gz).unwrap();
        assert_eq!(w.finish().unwrap(), b"layer bytes");
    }
}
