//! Checking cosign signatures offline: for each image, a cosign simple-signing
//! signature attached to it (a `sha256-<hex>.sig` tag or an OCI 1.1 referrer) that
//! verifies with a public key given and whose payload names the image's manifest
//! digest.
//!
//! What is checked, as cosign's signature specification describes it: a signature
//! manifest's layers of media type [`COSIGN_SIGNATURE_LAYER`] are payloads (JSON, the
//! "simple signing" format); each layer's annotation [`COSIGN_SIGNATURE_ANNOTATION`]
//! is the base64 of a signature over the payload's exact bytes. The signature is
//! checked first, then the payload: `critical.type` must be [`COSIGN_SIGNATURE_TYPE`]
//! and `critical.image.docker-manifest-digest` the digest of the image's manifest, or
//! of an index listing it (cosign signs the digest a tag names, a multi-platform
//! index's; the index names each platform's manifest by digest, so its signature
//! covers them).
//!
//! Keys are PEM `PUBLIC KEY` blocks (PKIX SubjectPublicKeyInfo), as `cosign
//! generate-key-pair` writes them: ECDSA P-256 (signatures ASN.1 DER over SHA-256),
//! Ed25519, and RSA (PKCS #1 v1.5 with SHA-256, 2048 to 8192 bits). The crypto is
//! `ring`'s, already linked for TLS.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;

use base64::Engine as _;
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::model::digest::Digest;
use crate::model::image::{Descriptor, Image};
use crate::referrers::{ReferrerKind, COSIGN_SIGNATURE_LAYER};
use crate::text::shown;
use crate::transport::Source;

/// The layer annotation holding the base64 signature of a cosign payload.
pub const COSIGN_SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// `critical.type` of a cosign image signature's payload.
pub const COSIGN_SIGNATURE_TYPE: &str = "cosign container image signature";
/// Largest signature payload read; a layer claiming more is refused unread.
pub const MAX_SIGNATURE_PAYLOAD: u64 = 1 << 20;
/// Most payload layers of one signature manifest that are checked (cosign adds one per
/// signing); a manifest listing more is refused.
pub const MAX_SIGNATURE_LAYERS: usize = 1_000;
/// Largest public key file [`PublicKey::read`] accepts.
pub const MAX_KEY_FILE: u64 = 64 << 10;

/// The kind of a [`PublicKey`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyAlgorithm {
    /// ECDSA on P-256, signatures ASN.1 DER over SHA-256 (`cosign generate-key-pair`).
    EcdsaP256,
    /// Ed25519.
    Ed25519,
    /// RSA, PKCS #1 v1.5 signatures over SHA-256.
    RsaPkcs1Sha256,
}

impl KeyAlgorithm {
    /// A short name: `ecdsa-p256`, `ed25519`, `rsa`.
    pub fn name(self) -> &'static str {
        match self {
            KeyAlgorithm::EcdsaP256 => "ecdsa-p256",
            KeyAlgorithm::Ed25519 => "ed25519",
            KeyAlgorithm::RsaPkcs1Sha256 => "rsa",
        }
    }
}

/// A public key to check signatures with, read from a PEM `PUBLIC KEY` block.
///
/// ```
/// use dockhand::{KeyAlgorithm, PublicKey};
///
/// let pem = "-----BEGIN PUBLIC KEY-----\n\
///            MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n\
///            -----END PUBLIC KEY-----\n";
/// let key = PublicKey::from_pem("cosign.pub", pem.as_bytes())?;
/// assert_eq!(key.algorithm(), KeyAlgorithm::Ed25519);
/// assert!(PublicKey::from_pem("x.pem", b"not a key").is_err());
/// # Ok::<(), dockhand::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    name: String,
    algorithm: KeyAlgorithm,
    /// What ring takes: the uncompressed point, the 32 bytes, or an `RSAPublicKey`.
    raw: Vec<u8>,
}

const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];
const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

impl PublicKey {
    /// Read a key file (at most [`MAX_KEY_FILE`] bytes) named `name` in messages.
    pub fn read(name: &str, reader: impl Read) -> Result<PublicKey> {
        let mut bytes = Vec::new();
        reader
            .take(MAX_KEY_FILE + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io(format!("reading the key {}", shown(name)), e))?;
        if bytes.len() as u64 > MAX_KEY_FILE {
            return Err(key_error(
                name,
                format!("over {MAX_KEY_FILE} bytes: not a public key"),
            ));
        }
        PublicKey::from_pem(name, &bytes)
    }

    /// The key of the first PEM `PUBLIC KEY` block of `pem`; `name` says which key in
    /// messages.
    pub fn from_pem(name: &str, pem: &[u8]) -> Result<PublicKey> {
        let text = String::from_utf8_lossy(pem);
        const BEGIN: &str = "-----BEGIN PUBLIC KEY-----";
        const END: &str = "-----END PUBLIC KEY-----";
        let Some(start) = text.find(BEGIN) else {
            let other = text
                .lines()
                .find_map(|l| l.trim().strip_prefix("-----BEGIN "))
                .and_then(|l| l.strip_suffix("-----"));
            return Err(key_error(
                name,
                match other {
                    Some(label) => format!(
                        "a PEM {} block, not a PUBLIC KEY (give the public key, as \
                         `cosign generate-key-pair` writes it to cosign.pub)",
                        shown(label)
                    ),
                    None => "no PEM PUBLIC KEY block in it".to_string(),
                },
            ));
        };
        let body = &text[start + BEGIN.len()..];
        let Some(end) = body.find(END) else {
            return Err(key_error(name, "the PEM PUBLIC KEY block has no END line"));
        };
        let b64: String = body[..end]
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64.as_bytes())
            .map_err(|_| key_error(name, "the PEM PUBLIC KEY block is not valid base64"))?;
        let (algorithm, raw) = parse_spki(&der).map_err(|problem| key_error(name, problem))?;
        Ok(PublicKey {
            name: name.to_string(),
            algorithm,
            raw,
        })
    }

    /// The name it was read under.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its kind.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// Whether `signature` is this key's over `message`.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        use ring::signature as sig;
        let algorithm: &dyn sig::VerificationAlgorithm = match self.algorithm {
            KeyAlgorithm::EcdsaP256 => &sig::ECDSA_P256_SHA256_ASN1,
            KeyAlgorithm::Ed25519 => &sig::ED25519,
            KeyAlgorithm::RsaPkcs1Sha256 => &sig::RSA_PKCS1_2048_8192_SHA256,
        };
        sig::UnparsedPublicKey::new(algorithm, &self.raw)
            .verify(message, signature)
            .is_ok()
    }
}

fn key_error(name: &str, problem: impl Into<String>) -> Error {
    Error::malformed(format!("key {}", shown(name)), problem)
}

/// One DER element: its tag, its contents, and what follows it.
fn der(input: &[u8]) -> std::result::Result<(u8, &[u8], &[u8]), String> {
    let bad = || "not a DER SubjectPublicKeyInfo".to_string();
    let (&tag, rest) = input.split_first().ok_or_else(bad)?;
    let (&first, rest) = rest.split_first().ok_or_else(bad)?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return Err(bad());
        }
        let len = rest[..n].iter().fold(0usize, |l, &b| (l << 8) | b as usize);
        (len, &rest[n..])
    };
    if rest.len() < len {
        return Err(bad());
    }
    Ok((tag, &rest[..len], &rest[len..]))
}

/// The algorithm and key bytes of a DER SubjectPublicKeyInfo.
fn parse_spki(input: &[u8]) -> std::result::Result<(KeyAlgorithm, Vec<u8>), String> {
    let bad = || "not a DER SubjectPublicKeyInfo".to_string();
    let (tag, spki, rest) = der(input)?;
    if tag != 0x30 || !rest.is_empty() {
        return Err(bad());
    }
    let (tag, algorithm, rest) = der(spki)?;
    if tag != 0x30 {
        return Err(bad());
    }
    let (tag, bits, rest) = der(rest)?;
    if tag != 0x03 || !rest.is_empty() {
        return Err(bad());
    }
    let key = match bits.split_first() {
        Some((0, key)) => key,
        _ => return Err(bad()),
    };
    let (tag, oid, params) = der(algorithm)?;
    if tag != 0x06 {
        return Err(bad());
    }
    let supported = "dockhand checks ECDSA P-256, Ed25519 and RSA keys";
    if oid == OID_EC_PUBLIC_KEY {
        let curve = match der(params) {
            Ok((0x06, curve, _)) => curve,
            _ => return Err(bad()),
        };
        if curve != OID_P256 {
            return Err(format!(
                "an ECDSA key on another curve than P-256; {supported}"
            ));
        }
        if key.len() != 65 || key[0] != 4 {
            return Err("an ECDSA P-256 key that is not an uncompressed point".into());
        }
        Ok((KeyAlgorithm::EcdsaP256, key.to_vec()))
    } else if oid == OID_ED25519 {
        if key.len() != 32 {
            return Err("an Ed25519 key that is not 32 bytes".into());
        }
        Ok((KeyAlgorithm::Ed25519, key.to_vec()))
    } else if oid == OID_RSA {
        Ok((KeyAlgorithm::RsaPkcs1Sha256, key.to_vec()))
    } else {
        Err(format!("a key of an algorithm {supported} not"))
    }
}

/// A signature that verified.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifiedSignature {
    /// The digest its payload names: the image's manifest, or an index listing it.
    pub subject: Digest,
    /// The signature manifest (the `.sig` tag's, or the referrer's).
    pub signature: Digest,
    /// The payload layer whose signature verified.
    pub layer: Digest,
    /// The name of the key it verified with.
    pub key: String,
}

/// A signature that did not verify, and why.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RejectedSignature {
    /// The digest it was found attached to: the image's manifest, or an index listing it.
    pub subject: Digest,
    /// The signature manifest.
    pub signature: Digest,
    /// The payload layer at fault, when one is.
    pub layer: Option<Digest>,
    /// What is wrong.
    pub problem: SignatureProblem,
}

/// Why a signature did not verify, from the least telling to the most.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum SignatureProblem {
    /// The source holds no signature manifest or payload by that digest.
    Missing {
        /// What is missing: `the signature manifest`, `the payload`.
        what: String,
    },
    /// The signature manifest or a payload could not be read: a registry failed, the
    /// bytes are not what their descriptor says (digest, size), or too many.
    Unreadable(Error),
    /// The signature manifest lists no simple-signing payload layer.
    NoPayload,
    /// The payload layer carries no signature annotation, or one that is not base64.
    NoSignature {
        /// What is wrong with the annotation.
        detail: String,
    },
    /// No key given verifies the signature over the payload's bytes: another key
    /// signed it, or the payload or the signature was changed.
    BadSignature,
    /// The signature verifies but the payload is not a cosign simple-signing payload.
    MalformedPayload {
        /// What is wrong with it.
        detail: String,
    },
    /// The signature verifies but signs another image.
    OtherDigest {
        /// The digest its payload names (as written there, escaped for messages).
        signed: String,
    },
}

impl SignatureProblem {
    fn rank(&self) -> u8 {
        match self {
            SignatureProblem::Missing { .. } => 0,
            SignatureProblem::Unreadable(_) => 1,
            SignatureProblem::NoPayload => 2,
            SignatureProblem::NoSignature { .. } => 3,
            SignatureProblem::BadSignature => 4,
            SignatureProblem::MalformedPayload { .. } => 5,
            SignatureProblem::OtherDigest { .. } => 6,
        }
    }
}

impl fmt::Display for SignatureProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignatureProblem::Missing { what } => write!(f, "the source lacks {what}"),
            SignatureProblem::Unreadable(e) => write!(f, "{e}"),
            SignatureProblem::NoPayload => {
                write!(f, "it holds no {COSIGN_SIGNATURE_LAYER} payload")
            }
            SignatureProblem::NoSignature { detail } => write!(f, "{detail}"),
            SignatureProblem::BadSignature => write!(
                f,
                "bad signature: no key given verifies it over the payload (another key \
                 signed it, or the payload or signature was changed)"
            ),
            SignatureProblem::MalformedPayload { detail } => {
                write!(f, "the signature verifies but its payload {detail}")
            }
            SignatureProblem::OtherDigest { signed } => write!(
                f,
                "the signature verifies but signs another image, {signed}"
            ),
        }
    }
}

impl fmt::Display for RejectedSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "signature {}", self.signature)?;
        if let Some(layer) = &self.layer {
            write!(f, " (payload {layer})")?;
        }
        write!(f, ": {}", self.problem)
    }
}

/// What was found for one image.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ImageSignatures {
    /// The image, as [`Image::display_name`] names it.
    pub image: String,
    /// Its manifest's digest; `None` for an image whose source holds no manifest (a
    /// legacy docker-archive), which no signature can name.
    pub manifest: Option<Digest>,
    /// The digests signatures were looked for: the manifest's, then the indexes
    /// listing it.
    pub subjects: Vec<Digest>,
    /// The first signature that verified, if any did.
    pub verified: Option<VerifiedSignature>,
    /// The signatures tried before it (all of them when none verified).
    pub rejected: Vec<RejectedSignature>,
}

impl ImageSignatures {
    /// `Ok` with the signature that verified, else [`Error::Unsigned`] saying why
    /// none did (of several reasons, the most telling).
    pub fn required(&self) -> Result<&VerifiedSignature> {
        match &self.verified {
            Some(v) => Ok(v),
            None => Err(Error::Unsigned(Box::new(Unsigned {
                image: self.image.clone(),
                manifest: self.manifest.clone(),
                reason: self
                    .rejected
                    .iter()
                    .rev()
                    .max_by_key(|r| r.problem.rank())
                    .cloned(),
                tried: self.rejected.len(),
            }))),
        }
    }
}

/// [`Error::Unsigned`]'s data: an image no signature verifies for.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Unsigned {
    /// The image, as [`Image::display_name`] names it.
    pub image: String,
    /// Its manifest's digest, when it has one.
    pub manifest: Option<Digest>,
    /// The most telling of the signatures tried; `None` when none was found.
    pub reason: Option<RejectedSignature>,
    /// How many signatures were tried.
    pub tried: usize,
}

impl fmt::Display for Unsigned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "image {}", shown(&self.image))?;
        let Some(manifest) = &self.manifest else {
            return write!(
                f,
                ": not signed: the source holds no manifest for it (a docker-archive \
                 written before Docker 25 keeps none), so no signature can name it"
            );
        };
        write!(f, " (manifest {manifest}): ")?;
        match &self.reason {
            None => write!(
                f,
                "no cosign signature found (neither a .sig tag nor a signature referrer, \
                 for its manifest or an index listing it)"
            ),
            Some(reason) if self.tried == 1 => write!(f, "not verified: {reason}"),
            Some(reason) => write!(
                f,
                "none of {} signatures verifies; the closest: {reason}",
                self.tried
            ),
        }
    }
}

#[derive(Deserialize)]
struct SignatureManifest {
    #[serde(default)]
    layers: Vec<PayloadLayer>,
}

#[derive(Deserialize)]
struct PayloadLayer {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    digest: String,
    size: u64,
    #[serde(default)]
    annotations: Option<BTreeMap<String, String>>,
}

/// For each of `images` (of `source`), the cosign signatures attached to its manifest
/// or to an index listing it, checked with `keys` until one verifies. Network use is
/// the source's own (a registry source asks its registry); nothing else is reached.
///
/// `Err` only when the source cannot say what is attached (a registry failing); a
/// signature that cannot be read is a [`RejectedSignature`]. Bounded: signatures are
/// found by [`Source::referrers`] (bounded), each manifest holds at most
/// [`MAX_SIGNATURE_LAYERS`] payloads of at most [`MAX_SIGNATURE_PAYLOAD`] bytes.
pub fn verify_signatures(
    source: &Source,
    images: &[Image],
    keys: &[PublicKey],
) -> Result<Vec<ImageSignatures>> {
    images
        .iter()
        .map(|image| image_signatures(source, image, keys))
        .collect()
}

fn image_signatures(source: &Source, image: &Image, keys: &[PublicKey]) -> Result<ImageSignatures> {
    let manifest = image.manifest.as_ref().map(|m| m.digest.clone());
    let mut subjects: Vec<Digest> = Vec::new();
    if let Some(m) = &manifest {
        subjects.push(m.clone());
        let indexes = image
            .index
            .iter()
            .map(|i| i.descriptor.digest.clone())
            .chain(
                source
                    .platforms
                    .iter()
                    .filter(|p| p.manifest == *m)
                    .map(|p| p.index.clone()),
            );
        for index in indexes {
            if !subjects.contains(&index) {
                subjects.push(index);
            }
        }
    }
    let mut report = ImageSignatures {
        image: image.display_name(),
        manifest,
        subjects: subjects.clone(),
        verified: None,
        rejected: Vec::new(),
    };
    let mut tried = std::collections::HashSet::new();
    for subject in &subjects {
        for referrer in source.referrers(subject)? {
            if referrer.kind != ReferrerKind::CosignSignature
                || !tried.insert(referrer.descriptor.digest.clone())
            {
                continue;
            }
            match check_signature(source, subject, &referrer.descriptor, keys) {
                Ok(verified) => {
                    report.verified = Some(verified);
                    return Ok(report);
                }
                Err(mut rejected) => report.rejected.append(&mut rejected),
            }
        }
    }
    Ok(report)
}

/// Check each payload of the signature manifest `signature` until one verifies.
fn check_signature(
    source: &Source,
    subject: &Digest,
    signature: &Descriptor,
    keys: &[PublicKey],
) -> std::result::Result<VerifiedSignature, Vec<RejectedSignature>> {
    let rejected = |layer: Option<Digest>, problem| RejectedSignature {
        subject: subject.clone(),
        signature: signature.digest.clone(),
        layer,
        problem,
    };
    let bytes = match source.manifest(&signature.digest) {
        Ok(Some(m)) => m.bytes,
        Ok(None) => {
            return Err(vec![rejected(
                None,
                SignatureProblem::Missing {
                    what: "the signature manifest".into(),
                },
            )])
        }
        Err(e) => return Err(vec![rejected(None, SignatureProblem::Unreadable(e))]),
    };
    let what = format!("signature manifest {}", signature.digest);
    let doc: SignatureManifest = match crate::model::image::parse_json(&bytes, &what) {
        Ok(doc) => doc,
        Err(e) => return Err(vec![rejected(None, SignatureProblem::Unreadable(e))]),
    };
    let payloads: Vec<&PayloadLayer> = doc
        .layers
        .iter()
        .filter(|l| l.media_type == COSIGN_SIGNATURE_LAYER)
        .collect();
    if payloads.is_empty() {
        return Err(vec![rejected(None, SignatureProblem::NoPayload)]);
    }
    if payloads.len() > MAX_SIGNATURE_LAYERS {
        let e = Error::malformed(
            what,
            format!(
                "{} payloads, over the limit of {MAX_SIGNATURE_LAYERS}",
                payloads.len()
            ),
        );
        return Err(vec![rejected(None, SignatureProblem::Unreadable(e))]);
    }
    let mut problems = Vec::new();
    for layer in payloads {
        let digest = match Digest::parse(&layer.digest) {
            Ok(d) => d,
            Err(_) => {
                let e = Error::malformed(
                    &what,
                    format!("a layer with an invalid digest {}", shown(&layer.digest)),
                );
                problems.push(rejected(None, SignatureProblem::Unreadable(e)));
                continue;
            }
        };
        match check_payload(source, subject, layer, &digest, keys) {
            Ok(key) => {
                return Ok(VerifiedSignature {
                    subject: subject.clone(),
                    signature: signature.digest.clone(),
                    layer: digest,
                    key,
                })
            }
            Err(problem) => problems.push(rejected(Some(digest), problem)),
        }
    }
    Err(problems)
}

/// The name of the key that verifies `layer`'s signature, whose payload names `subject`.
fn check_payload(
    source: &Source,
    subject: &Digest,
    layer: &PayloadLayer,
    digest: &Digest,
    keys: &[PublicKey],
) -> std::result::Result<String, SignatureProblem> {
    let encoded = layer
        .annotations
        .as_ref()
        .and_then(|a| a.get(COSIGN_SIGNATURE_ANNOTATION))
        .ok_or_else(|| SignatureProblem::NoSignature {
            detail: format!("the payload has no {COSIGN_SIGNATURE_ANNOTATION} annotation"),
        })?;
    let signature = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim().as_bytes())
        .map_err(|_| SignatureProblem::NoSignature {
            detail: format!("its {COSIGN_SIGNATURE_ANNOTATION} annotation is not base64"),
        })?;
    let file = format!("signature payload {digest}");
    if layer.size > MAX_SIGNATURE_PAYLOAD {
        return Err(SignatureProblem::Unreadable(Error::malformed(
            file,
            format!(
                "{} bytes, over the limit of {MAX_SIGNATURE_PAYLOAD} for a signature payload",
                layer.size
            ),
        )));
    }
    let descriptor = Descriptor {
        media_type: layer.media_type.clone(),
        digest: digest.clone(),
        size: layer.size,
    };
    let payload = read_payload(source, &descriptor, &file)?;
    let key = keys
        .iter()
        .find(|k| k.verifies(&payload, &signature))
        .ok_or(SignatureProblem::BadSignature)?;
    check_claims(&payload, subject)?;
    Ok(key.name().to_string())
}

/// The payload's bytes, checked against its descriptor's size and digest.
fn read_payload(
    source: &Source,
    descriptor: &Descriptor,
    file: &str,
) -> std::result::Result<Vec<u8>, SignatureProblem> {
    let blob = match source.attached_blob(descriptor) {
        Ok(Some(blob)) => blob,
        Ok(None) => {
            return Err(SignatureProblem::Missing {
                what: format!("the payload {}", descriptor.digest),
            })
        }
        Err(e) => return Err(SignatureProblem::Unreadable(e)),
    };
    let mut payload = Vec::new();
    blob.open_at(0)
        .and_then(|r| {
            r.take(descriptor.size + 1)
                .read_to_end(&mut payload)
                .map_err(|e| Error::io(file, e))
        })
        .map_err(SignatureProblem::Unreadable)?;
    if payload.len() as u64 != descriptor.size {
        return Err(SignatureProblem::Unreadable(Error::SizeMismatch {
            file: file.to_string(),
            expected: descriptor.size,
            actual: payload.len() as u64,
        }));
    }
    let actual = Digest::of(&payload);
    if actual != descriptor.digest {
        return Err(SignatureProblem::Unreadable(Error::DigestMismatch {
            file: file.to_string(),
            expected: descriptor.digest.clone(),
            actual,
        }));
    }
    Ok(payload)
}

/// A simple-signing payload's claims: `critical.type` and the digest it signs.
fn check_claims(payload: &[u8], subject: &Digest) -> std::result::Result<(), SignatureProblem> {
    let malformed = |detail: String| SignatureProblem::MalformedPayload { detail };
    let doc: serde_json::Value = crate::model::image::parse_json(payload, "payload")
        .map_err(|_| malformed("is not JSON".into()))?;
    let critical = doc
        .get("critical")
        .filter(|c| c.is_object())
        .ok_or_else(|| malformed("has no `critical` object".into()))?;
    match critical.get("type").and_then(|t| t.as_str()) {
        Some(COSIGN_SIGNATURE_TYPE) => {}
        Some(other) => {
            return Err(malformed(format!(
                "is of type {}, not {COSIGN_SIGNATURE_TYPE:?}",
                shown(other)
            )))
        }
        None => return Err(malformed("has no `critical.type`".into())),
    }
    let signed = critical
        .get("image")
        .and_then(|i| i.get("docker-manifest-digest"))
        .and_then(|d| d.as_str())
        .ok_or_else(|| malformed("has no `critical.image.docker-manifest-digest`".into()))?;
    if signed != subject.to_string() {
        return Err(SignatureProblem::OtherDigest {
            signed: shown(signed),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_lengths_past_the_input_are_refused() {
        assert!(der(&[0x30, 0x82, 0xff, 0xff, 0]).is_err());
        assert!(der(&[0x30, 0x85, 1, 1, 1, 1, 1]).is_err());
        assert!(der(&[0x30]).is_err());
        assert_eq!(
            der(&[0x30, 1, 7, 9]).unwrap(),
            (0x30, &[7u8][..], &[9u8][..])
        );
    }

    #[test]
    fn claims_name_the_digest_and_the_type() {
        let subject = Digest::of(b"m");
        let good = format!(
            "{{\"critical\":{{\"identity\":{{\"docker-reference\":\"r\"}},\"image\":\
             {{\"docker-manifest-digest\":\"{subject}\"}},\"type\":\"{COSIGN_SIGNATURE_TYPE}\"}},\
             \"optional\":null}}"
        );
        assert!(check_claims(good.as_bytes(), &subject).is_ok());
        let other = check_claims(good.as_bytes(), &Digest::of(b"n")).unwrap_err();
        assert!(matches!(other, SignatureProblem::OtherDigest { .. }));
        let typed = good.replace("container image", "x");
        assert!(matches!(
            check_claims(typed.as_bytes(), &subject).unwrap_err(),
            SignatureProblem::MalformedPayload { .. }
        ));
        assert!(matches!(
            check_claims(b"[1]", &subject).unwrap_err(),
            SignatureProblem::MalformedPayload { .. }
        ));
    }
}
