//! Media types and compression, detected from magic bytes and never from labels.

use std::io::{self, BufRead, BufReader, Read};

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

/// The media type a manifest or index names itself (`mediaType`); for one that names
/// none, what its shape makes it: schema 1 for `schemaVersion: 1`, an OCI index when
/// it lists `manifests`, else an OCI manifest (the OCI spec lets both omit the field).
/// With it, whether the document has a `schemaVersion`: every manifest and index has
/// one, a config or a layer none.
pub(crate) fn manifest_media_type(bytes: &[u8]) -> (String, bool) {
    #[derive(serde::Deserialize)]
    struct Head {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
        #[serde(rename = "schemaVersion")]
        schema_version: Option<u64>,
        manifests: Option<serde::de::IgnoredAny>,
    }
    let Ok(head) = serde_json::from_slice::<Head>(bytes) else {
        return (OCI_MANIFEST.to_string(), false);
    };
    let versioned = head.schema_version.is_some();
    let media_type = match head {
        Head {
            media_type: Some(t),
            ..
        } => t,
        Head {
            schema_version: Some(1),
            ..
        } => DOCKER_SCHEMA1.to_string(),
        Head {
            manifests: Some(_), ..
        } => OCI_INDEX.to_string(),
        _ => OCI_MANIFEST.to_string(),
    };
    (media_type, versioned)
}

/// Layer media types, both ways: (family, compression, media type).
const LAYER_MEDIA_TYPES: &[(Family, Compression, &str)] = &[
    (Family::Oci, Compression::None, OCI_LAYER_TAR),
    (Family::Oci, Compression::Gzip, OCI_LAYER_GZIP),
    (Family::Oci, Compression::Zstd, OCI_LAYER_ZSTD),
    (Family::Docker, Compression::None, DOCKER_LAYER_TAR),
    (Family::Docker, Compression::Gzip, DOCKER_LAYER_GZIP),
    (Family::Docker, Compression::Zstd, DOCKER_LAYER_ZSTD),
];

/// The family of media types an image's descriptors use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// `application/vnd.docker.*`
    Docker,
    /// `application/vnd.oci.*`
    Oci,
}

/// How a blob is compressed, as told by its first bytes.
///
/// ```
/// use dockhand::Compression;
///
/// assert_eq!(Compression::detect(&[0x1f, 0x8b, 0x08, 0x00]), Compression::Gzip);
/// assert_eq!(Compression::detect(b"BZh91AY"), Compression::Bzip2);
/// assert_eq!(Compression::detect(b"etc/passwd"), Compression::None);
/// assert_eq!(Compression::Zstd.name(), "zstd");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
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

impl serde::Serialize for Compression {
    /// As its [`Compression::name`] (`none`, `gzip`, ...), as `inspect --json` writes it.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
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
        LAYER_MEDIA_TYPES
            .iter()
            .find(|(f, c, _)| *f == family && *c == self)
            .map(|(_, _, t)| *t)
    }

    /// The compression a layer media type names: one of the table's, or by its suffix
    /// (`+gzip`, `.gzip`, `+zstd`, `.zstd`) for the foreign and non-distributable
    /// variants. A label only: stored bytes are sniffed whenever they are there.
    pub fn of_layer_media_type(media_type: &str) -> Compression {
        if let Some((_, c, _)) = LAYER_MEDIA_TYPES.iter().find(|(_, _, t)| *t == media_type) {
            return *c;
        }
        if media_type.ends_with("gzip") {
            Compression::Gzip
        } else if media_type.ends_with("zstd") {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    /// A reader that decompresses `inner`. Decoders read through a `BufReader` over the
    /// bounded input, so they can never read past the blob.
    ///
    /// Every decoder's memory is bounded whatever the stream asks for: gzip by its
    /// format (a 32 KiB window), bzip2 by its format (blocks of at most 900 kB, about
    /// 4 MiB of decoder state), xz by [`XZ_MEMORY_LIMIT`] and zstd by
    /// [`ZSTD_WINDOW_LOG_MAX`]. A stream over a limit fails with an error of kind
    /// [`io::ErrorKind::OutOfMemory`] whose message names the limit.
    pub fn decoder<'a, R: Read + Send + 'a>(
        self,
        inner: R,
    ) -> io::Result<Box<dyn Read + Send + 'a>> {
        const BUF: usize = 256 * 1024;
        match self {
            Compression::None => Ok(Box::new(inner)),
            _ => self.decoder_buffered(BufReader::with_capacity(BUF, inner)),
        }
    }

    /// [`Compression::decoder`] over a reader that buffers already, so the compressed
    /// bytes are not copied once more on their way in.
    pub(crate) fn decoder_buffered<'a, R: BufRead + Send + 'a>(
        self,
        inner: R,
    ) -> io::Result<Box<dyn Read + Send + 'a>> {
        Ok(match self {
            Compression::None => Box::new(inner),
            Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(inner)),
            Compression::Zstd => {
                let mut d = zstd::stream::read::Decoder::with_buffer(inner)?;
                // libzstd's default today, set explicitly so a library update cannot raise it.
                d.window_log_max(ZSTD_WINDOW_LOG_MAX)?;
                Box::new(MemoryCapped {
                    inner: d,
                    over: is_zstd_memory_error,
                    message: zstd_memory_message,
                })
            }
            Compression::Xz => {
                let stream = liblzma::stream::Stream::new_stream_decoder(
                    XZ_MEMORY_LIMIT,
                    liblzma::stream::CONCATENATED,
                )
                .map_err(io::Error::from)?;
                Box::new(MemoryCapped {
                    inner: liblzma::bufread::XzDecoder::new_stream(inner, stream),
                    over: is_xz_memory_error,
                    message: xz_memory_message,
                })
            }
            Compression::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(inner)),
        })
    }
}

/// The most memory an xz stream may make its decoder use (liblzma's memory limit):
/// 128 MiB, twice what `xz -9` needs (a 64 MiB dictionary), so any stream written with
/// the standard presets decodes, and a header asking for a 1.5 GiB dictionary does not.
pub const XZ_MEMORY_LIMIT: u64 = 128 << 20;

/// The largest zstd window accepted, as a power of two: 2^27 bytes = 128 MiB, libzstd's
/// own default limit, which every compression level (up to `--ultra -22`) and `--long`
/// without a larger explicit window stay within. A frame asking for more (up to 2 GiB
/// or beyond) is refused before any allocation.
pub const ZSTD_WINDOW_LOG_MAX: u32 = 27;

fn is_xz_memory_error(e: &io::Error) -> bool {
    e.get_ref()
        .and_then(|i| i.downcast_ref::<liblzma::stream::Error>())
        .is_some_and(|e| matches!(e, liblzma::stream::Error::MemLimit))
}

fn xz_memory_message() -> String {
    format!(
        "the xz stream needs more than {} MiB of memory to decode, dockhand's limit",
        XZ_MEMORY_LIMIT >> 20
    )
}

fn is_zstd_memory_error(e: &io::Error) -> bool {
    // zstd reports errors by name only; this is ZSTD_error_frameParameter_windowTooLarge.
    e.get_ref().is_some() && e.to_string().contains("requires too much memory")
}

fn zstd_memory_message() -> String {
    format!(
        "the zstd stream asks for a window of more than {} MiB, too much memory to decode \
         (dockhand's limit)",
        (1u64 << ZSTD_WINDOW_LOG_MAX) >> 20
    )
}

/// A decoder whose "over the memory limit" error is reworded to name the limit, with
/// the kind [`io::ErrorKind::OutOfMemory`] so callers can tell it from corrupt data.
struct MemoryCapped<D> {
    inner: D,
    over: fn(&io::Error) -> bool,
    message: fn() -> String,
}

impl<D: Read> Read for MemoryCapped<D> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).map_err(|e| {
            if (self.over)(&e) {
                io::Error::new(io::ErrorKind::OutOfMemory, (self.message)())
            } else {
                e
            }
        })
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

    fn decode(compression: Compression, bytes: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        compression.decoder(bytes)?.read_to_end(&mut out)?;
        Ok(out)
    }

    /// A zstd frame of raw blocks holding `data`, with a window descriptor byte
    /// `window` (exponent << 3 | mantissa; the window is 2^(10 + exponent) bytes).
    fn zstd_frame(window: u8, data: &[u8]) -> Vec<u8> {
        let mut f = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, window];
        let size = data.len() as u32;
        f.extend_from_slice(&((size << 3) | 1).to_le_bytes()[..3]); // last, raw
        f.extend_from_slice(data);
        f
    }

    #[test]
    fn zstd_windows_over_the_cap_are_refused_as_memory() {
        let ok = zstd_frame(10 << 3, b"hello"); // 1 MiB
        assert_eq!(decode(Compression::Zstd, &ok).unwrap(), b"hello");
        let at_cap = zstd_frame(((ZSTD_WINDOW_LOG_MAX - 10) as u8) << 3, b"hello");
        assert_eq!(decode(Compression::Zstd, &at_cap).unwrap(), b"hello");
        let huge = zstd_frame(21 << 3, b"hello"); // 2 GiB
        let err = decode(Compression::Zstd, &huge).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::OutOfMemory, "{err}");
        assert!(err.to_string().contains("memory"), "{err}");
        assert!(err.to_string().contains("128 MiB"), "{err}");
    }

    /// `data` as xz whose LZMA2 dictionary-size property is set to `dict` (the byte
    /// encoding: 40 is 4 GiB - 1, 37 is 1.5 GiB), with the block header's CRC32 fixed.
    fn xz_with_dictionary(data: &[u8], dict: u8) -> Vec<u8> {
        let mut enc = liblzma::write::XzEncoder::new(Vec::new(), 0);
        std::io::Write::write_all(&mut enc, data).unwrap();
        let mut xz = enc.finish().unwrap();
        let block = 12; // after the stream header
        let header_len = (xz[block] as usize + 1) * 4;
        let flags = xz[block + 1];
        let mut at = block + 2;
        for present in [flags & 0x40 != 0, flags & 0x80 != 0] {
            if present {
                while xz[at] & 0x80 != 0 {
                    at += 1;
                }
                at += 1;
            }
        }
        assert_eq!(&xz[at..at + 2], [0x21, 0x01], "one LZMA2 filter");
        xz[at + 2] = dict;
        let crc_at = block + header_len - 4;
        let mut crc = flate2::Crc::new();
        crc.update(&xz[block..crc_at]);
        xz[crc_at..crc_at + 4].copy_from_slice(&crc.sum().to_le_bytes());
        xz
    }

    #[test]
    fn xz_dictionaries_over_the_cap_are_refused_as_memory() {
        let data = b"a layer".repeat(100);
        // 64 MiB, what xz -9 uses: decodes.
        assert_eq!(
            decode(Compression::Xz, &xz_with_dictionary(&data, 28)).unwrap(),
            data
        );
        let err = decode(Compression::Xz, &xz_with_dictionary(&data, 37)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::OutOfMemory, "{err}");
        assert!(err.to_string().contains("128 MiB of memory"), "{err}");
        // Corrupt data is not reported as a memory problem.
        let mut bad = xz_with_dictionary(&data, 20);
        let n = bad.len();
        bad[n / 2] ^= 0x55;
        let err = decode(Compression::Xz, &bad).unwrap_err();
        assert_ne!(err.kind(), io::ErrorKind::OutOfMemory, "{err}");
    }

    #[test]
    fn every_decoder_round_trips_concatenated_streams() {
        let data = b"layer bytes ".repeat(1000);
        let gz = |d: &[u8]| {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut e, d).unwrap();
            e.finish().unwrap()
        };
        let xz = |d: &[u8]| {
            let mut e = liblzma::write::XzEncoder::new(Vec::new(), 1);
            std::io::Write::write_all(&mut e, d).unwrap();
            e.finish().unwrap()
        };
        let bz = |d: &[u8]| {
            let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
            std::io::Write::write_all(&mut e, d).unwrap();
            e.finish().unwrap()
        };
        let zst = |d: &[u8]| zstd::encode_all(d, 3).unwrap();
        type Encode<'a> = &'a dyn Fn(&[u8]) -> Vec<u8>;
        let encoders: [(Compression, Encode); 4] = [
            (Compression::Gzip, &gz),
            (Compression::Xz, &xz),
            (Compression::Bzip2, &bz),
            (Compression::Zstd, &zst),
        ];
        for (c, encode) in encoders {
            let mut two = encode(&data[..5000]);
            two.extend(encode(&data[5000..]));
            assert_eq!(Compression::detect(&two), c);
            assert_eq!(decode(c, &two).unwrap(), data, "{c:?}");
        }
    }
}
