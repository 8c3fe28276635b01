//! Content digests (`sha256:<hex>`), validated before they are ever used as file names,
//! and readers/writers that hash what passes through them.

use std::fmt;
use std::io;

use sha2::{Digest as _, Sha256};

/// A validated `sha256` content digest.
///
/// Only sha256 is accepted: it is what every producer writes, and an unchecked algorithm
/// or encoded part would let a descriptor name a path outside the blob store
/// (`sha256:../../etc/passwd`).
///
/// ```
/// use dockhand::Digest;
///
/// let empty = Digest::of(b"");
/// assert_eq!(empty.short(), "e3b0c44298fc");
/// assert_eq!(empty.to_string(), format!("sha256:{}", empty.hex()));
/// assert_eq!(Digest::from_hex(empty.hex()), Some(empty));
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    hex: String,
}

impl Digest {
    /// Parse `sha256:<64 lowercase hex>`.
    ///
    /// ```
    /// use dockhand::Digest;
    ///
    /// let empty = Digest::of(b"");
    /// assert_eq!(Digest::parse(&empty.to_string()).unwrap(), empty);
    /// assert!(Digest::parse("sha256:../../etc/passwd").is_err());
    /// ```
    pub fn parse(s: &str) -> Result<Digest, String> {
        let Some((algorithm, encoded)) = s.split_once(':') else {
            return Err(format!("invalid digest {s:?}: no algorithm"));
        };
        if algorithm != "sha256" {
            let grammatical = !algorithm.is_empty()
                && algorithm
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b));
            return Err(if grammatical {
                format!("unsupported digest algorithm {algorithm:?}")
            } else {
                format!("invalid digest {:?}", truncate(s))
            });
        }
        Digest::from_hex(encoded).ok_or_else(|| format!("invalid digest {:?}", truncate(s)))
    }

    /// Accept a bare 64-character lowercase hex string as a sha256 digest.
    ///
    /// ```
    /// use dockhand::Digest;
    ///
    /// let hex = "6f2d02a983f5".repeat(5) + "abcd";
    /// assert_eq!(Digest::from_hex(&hex).unwrap().to_string(), format!("sha256:{hex}"));
    /// assert!(Digest::from_hex(&hex.to_uppercase()).is_none());
    /// assert!(Digest::from_hex("6f2d02a983f5").is_none()); // a prefix is not a digest
    /// ```
    pub fn from_hex(hex: &str) -> Option<Digest> {
        let valid = hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        valid.then(|| Digest {
            hex: hex.to_string(),
        })
    }

    /// The sha256 of `bytes`.
    ///
    /// ```
    /// use dockhand::Digest;
    ///
    /// let empty = Digest::of(b"");
    /// assert_eq!(empty.short(), "e3b0c44298fc");
    /// ```
    pub fn of(bytes: &[u8]) -> Digest {
        Digest::from_hasher(Sha256::new_with_prefix(bytes))
    }

    /// The digest and length of everything `reader` yields, read to its end.
    pub(crate) fn of_reader(reader: &mut dyn io::Read) -> io::Result<(Digest, u64)> {
        // Big reads: a decompressor filling a small buffer spends more of its time
        // outside its fast loop (which needs room for a whole match).
        let mut hasher = Hasher::new();
        let mut buf = vec![0u8; 128 * 1024];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => hasher.update(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(hasher.finish())
    }

    fn from_hasher(hasher: Sha256) -> Digest {
        Digest {
            hex: hex::encode(hasher.finalize()),
        }
    }

    /// The encoded part (64 hex characters), safe to use as a file name.
    ///
    /// ```
    /// use dockhand::Digest;
    ///
    /// let digest = Digest::of(b"{}");
    /// assert_eq!(format!("sha256:{}", digest.hex()), digest.to_string());
    /// assert_eq!(digest.hex().len(), 64);
    /// ```
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The first 12 hex characters, as Docker shows short IDs (and `inspect` without
    /// `--no-trunc`).
    ///
    /// ```
    /// use dockhand::Digest;
    ///
    /// let digest = Digest::of(b"{}");
    /// assert_eq!(digest.short(), &digest.hex()[..12]);
    /// ```
    pub fn short(&self) -> &str {
        &self.hex[..12]
    }

    /// The digest whole (`sha256:<hex>`) when `whole`, else [`Digest::short`]: how the
    /// tables show IDs and digests, whole with `--no-trunc`.
    pub(crate) fn whole_or_short(&self, whole: bool) -> String {
        if whole {
            self.to_string()
        } else {
            self.short().to_string()
        }
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
        let s = String::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// An incremental sha256 that also counts bytes.
#[derive(Clone, Default)]
pub struct Hasher {
    inner: Sha256,
    len: u64,
}

impl Hasher {
    /// A fresh hasher.
    pub fn new() -> Hasher {
        Hasher::default()
    }

    /// Feed bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.inner.update(bytes);
        self.len += bytes.len() as u64;
    }

    /// Bytes fed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// The digest and length of everything fed.
    pub fn finish(self) -> (Digest, u64) {
        (Digest::from_hasher(self.inner), self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects_digests() {
        let empty = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(Digest::parse(empty).unwrap(), Digest::of(b""));
        assert!(Digest::parse("sha256:../../etc/passwd").is_err());
        assert!(Digest::parse(&empty.to_uppercase()).is_err());
        assert!(
            Digest::parse("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
                .is_err()
        );
        let err = Digest::parse("sha512:abcd").unwrap_err();
        assert!(err.contains("unsupported digest algorithm"), "{err}");
    }
}
