//! What refers to an image: OCI 1.1 referrers (manifests whose `subject` names it),
//! cosign's digest tags (`sha256-<hex>.sig`, `.att`, `.sbom`) and BuildKit attestation
//! manifests. Found from manifests and indexes only: no layer of a referrer is read.
//!
//! A transport answers one level ("what refers to this digest directly") through a
//! crate-private hook on [`Source`]; [`Source::referrers`] walks the levels, bounded.

use std::collections::{BTreeMap, HashSet};

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::model::digest::Digest;
use crate::model::image::Descriptor;
use crate::model::media;
use crate::transport::Source;

/// Most referrers one index (a referrers API answer, a fallback tag) may list; one
/// listing more is refused.
pub const MAX_REFERRERS_PER_INDEX: usize = 10_000;
/// Most referrers [`Source::referrers`] collects for one image, every level counted.
pub const MAX_REFERRERS_TOTAL: usize = 10_000;
/// How deep referrers of referrers are followed (a signature of an attestation of an
/// image is depth 2); a chain deeper than this is refused.
pub const MAX_REFERRER_DEPTH: usize = 8;

/// The layer media type of a cosign simple-signing signature.
pub const COSIGN_SIGNATURE_LAYER: &str = "application/vnd.dev.cosign.simplesigning.v1+json";

/// Something attached to an image: a manifest that refers to it, and what refers to
/// that in turn.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Referrer {
    /// The referrer's own manifest (or index): media type, digest, size.
    pub descriptor: Descriptor,
    /// Its artifact type: the manifest's `artifactType`, else its config's media type
    /// (as the referrers API reports it); `None` when neither is known.
    pub artifact_type: Option<String>,
    /// What kind of thing it is, from where it was found and what it declares.
    pub kind: ReferrerKind,
    /// Its annotations (from the manifest, or from the index entry that listed it).
    pub annotations: BTreeMap<String, String>,
    /// The tag it was found under, for a cosign tag (`sha256-<hex>.sig`); `None` for
    /// one found through its `subject` or listed in an index.
    pub tag: Option<String>,
    /// What refers to this referrer (a signature of an attestation), recursively.
    pub referrers: Vec<Referrer>,
}

/// What kind of thing a [`Referrer`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReferrerKind {
    /// An OCI 1.1 referrer: a manifest with a `subject`, found through the referrers
    /// API, its fallback tag, or a layout's manifests.
    Referrer,
    /// A cosign signature: the `sha256-<hex>.sig` tag, or a referrer whose layers are
    /// simple-signing payloads.
    CosignSignature,
    /// A cosign attestation: the `sha256-<hex>.att` tag.
    CosignAttestation,
    /// A cosign SBOM: the `sha256-<hex>.sbom` tag.
    CosignSbom,
    /// A BuildKit attestation manifest listed in an image index
    /// (`vnd.docker.reference.type: attestation-manifest`).
    BuildkitAttestation,
}

impl ReferrerKind {
    /// A short name: `referrer`, `cosign-signature`, `cosign-attestation`,
    /// `cosign-sbom`, `buildkit-attestation`.
    pub fn name(self) -> &'static str {
        match self {
            ReferrerKind::Referrer => "referrer",
            ReferrerKind::CosignSignature => "cosign-signature",
            ReferrerKind::CosignAttestation => "cosign-attestation",
            ReferrerKind::CosignSbom => "cosign-sbom",
            ReferrerKind::BuildkitAttestation => "buildkit-attestation",
        }
    }
}

/// Answers what refers directly to a digest (one level, `referrers` left empty).
pub(crate) type FindReferrers = Box<dyn Fn(&Digest) -> Result<Vec<Referrer>> + Send + Sync>;

/// cosign's tag suffixes and the kinds they hold.
pub(crate) const COSIGN_TAGS: [(&str, ReferrerKind); 3] = [
    ("sig", ReferrerKind::CosignSignature),
    ("att", ReferrerKind::CosignAttestation),
    ("sbom", ReferrerKind::CosignSbom),
];

/// The fallback tag of the distribution spec for `digest`: `sha256-<hex>`.
pub(crate) fn fallback_tag(digest: &Digest) -> String {
    digest.to_string().replacen(':', "-", 1)
}

/// The cosign tag kind `name` (`sha256-<hex>.sig`) is, and the digest it names.
pub(crate) fn cosign_tag(name: &str) -> Option<(Digest, ReferrerKind)> {
    let (digest, suffix) = name.rsplit_once('.')?;
    let kind = COSIGN_TAGS.iter().find(|(s, _)| *s == suffix)?.1;
    let digest = Digest::parse(&digest.replacen('-', ":", 1)).ok()?;
    Some((digest, kind))
}

#[derive(Deserialize, Default)]
struct Entry {
    #[serde(rename = "mediaType", default, deserialize_with = "null_as_default")]
    media_type: String,
    digest: String,
    #[serde(default, deserialize_with = "null_as_default")]
    size: u64,
    #[serde(rename = "artifactType")]
    artifact_type: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    annotations: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
struct Doc {
    #[serde(rename = "artifactType")]
    artifact_type: Option<String>,
    config: Option<Entry>,
    // `null` is read as absent: writers of images (BuildKit among them) put it there.
    #[serde(default, deserialize_with = "null_as_default")]
    layers: Vec<Entry>,
    #[serde(default, deserialize_with = "null_as_default")]
    manifests: Vec<Entry>,
    subject: Option<Entry>,
    #[serde(default, deserialize_with = "null_as_default")]
    annotations: BTreeMap<String, String>,
}

fn null_as_default<'de, D, T>(deserializer: D) -> std::result::Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

fn parse_doc(bytes: &[u8], what: &str) -> Result<Doc> {
    crate::model::image::parse_json(bytes, what)
}

fn entry_descriptor(entry: &Entry, what: &str) -> Result<Descriptor> {
    Ok(Descriptor {
        media_type: entry.media_type.clone(),
        digest: Digest::parse(&entry.digest).map_err(|_| {
            Error::malformed(
                what,
                format!("an invalid digest {}", crate::text::shown(&entry.digest)),
            )
        })?,
        size: entry.size,
    })
}

/// The referrers an index lists (a referrers API answer or a fallback tag), at most
/// [`MAX_REFERRERS_PER_INDEX`].
pub(crate) fn parse_referrers_index(bytes: &[u8], what: &str) -> Result<Vec<Referrer>> {
    let doc = parse_doc(bytes, what)?;
    if doc.manifests.len() > MAX_REFERRERS_PER_INDEX {
        return Err(Error::malformed(
            what,
            format!(
            "the referrers index lists {} manifests, over the limit of {MAX_REFERRERS_PER_INDEX}",
            doc.manifests.len()
        ),
        ));
    }
    doc.manifests
        .iter()
        .map(|entry| {
            let kind = kind_of_artifact(entry.artifact_type.as_deref());
            Ok(Referrer {
                descriptor: entry_descriptor(entry, what)?,
                artifact_type: entry.artifact_type.clone(),
                kind,
                annotations: entry.annotations.clone(),
                tag: None,
                referrers: Vec::new(),
            })
        })
        .collect()
}

/// The kind of an OCI referrer by its artifact type alone.
fn kind_of_artifact(artifact_type: Option<&str>) -> ReferrerKind {
    match artifact_type {
        Some(COSIGN_SIGNATURE_LAYER) | Some("application/vnd.dev.cosign.artifact.sig.v1+json") => {
            ReferrerKind::CosignSignature
        }
        _ => ReferrerKind::Referrer,
    }
}

/// A manifest read whole (`bytes`) as a referrer of `kind`; for an OCI referrer, a
/// manifest whose layers are cosign simple-signing payloads is a cosign signature.
/// Also returns the digest its `subject` names, if any.
pub(crate) fn referrer_of_manifest(
    bytes: &[u8],
    kind: ReferrerKind,
    what: &str,
) -> Result<(Referrer, Option<Digest>)> {
    let doc = parse_doc(bytes, what)?;
    let artifact_type = doc
        .artifact_type
        .clone()
        .or_else(|| doc.config.as_ref().map(|c| c.media_type.clone()));
    let signs = !doc.layers.is_empty()
        && doc
            .layers
            .iter()
            .all(|l| l.media_type == COSIGN_SIGNATURE_LAYER);
    let kind = match kind {
        ReferrerKind::Referrer if signs => ReferrerKind::CosignSignature,
        ReferrerKind::Referrer => kind_of_artifact(artifact_type.as_deref()),
        other => other,
    };
    let subject = match &doc.subject {
        Some(entry) => Some(entry_descriptor(entry, what)?.digest),
        None => None,
    };
    let referrer = Referrer {
        descriptor: Descriptor {
            media_type: media::manifest_media_type(bytes).0,
            digest: Digest::of(bytes),
            size: bytes.len() as u64,
        },
        artifact_type,
        kind,
        annotations: doc.annotations,
        tag: None,
        referrers: Vec::new(),
    };
    Ok((referrer, subject))
}

/// The BuildKit attestation manifests an index (`bytes`) lists for `digest`.
pub(crate) fn buildkit_attestations(bytes: &[u8], digest: &Digest) -> Vec<Referrer> {
    let Ok(doc) = parse_doc(bytes, "index") else {
        return Vec::new();
    };
    doc.manifests
        .iter()
        .filter(|entry| {
            entry
                .annotations
                .get("vnd.docker.reference.type")
                .map(String::as_str)
                == Some("attestation-manifest")
                && entry
                    .annotations
                    .get("vnd.docker.reference.digest")
                    .map(String::as_str)
                    == Some(digest.to_string().as_str())
        })
        .filter_map(|entry| {
            Some(Referrer {
                descriptor: entry_descriptor(entry, "index").ok()?,
                artifact_type: entry.artifact_type.clone(),
                kind: ReferrerKind::BuildkitAttestation,
                annotations: entry.annotations.clone(),
                tag: None,
                referrers: Vec::new(),
            })
        })
        .collect()
}

/// The manifests an index (`bytes`) lists, with their annotations: for walking an
/// OCI layout's `index.json` and nested indexes.
pub(crate) fn index_entries(
    bytes: &[u8],
    what: &str,
) -> Result<Vec<(Descriptor, BTreeMap<String, String>)>> {
    let doc = parse_doc(bytes, what)?;
    doc.manifests
        .into_iter()
        .map(|entry| Ok((entry_descriptor(&entry, what)?, entry.annotations)))
        .collect()
}

impl Source {
    /// What refers to the manifest or index `digest`, recursively (what refers to each
    /// referrer comes in its [`Referrer::referrers`]), found without reading any layer.
    ///
    /// Where a source looks: a registry asks its referrers API
    /// (`GET /v2/REPO/referrers/DIGEST`) and, when that answers 404, the fallback tag
    /// `sha256-<hex>`; then cosign's tags `sha256-<hex>.sig`, `.att` and `.sbom`, each
    /// with the pull's credentials, retries and size limit. An OCI layout (directory or
    /// archive) looks at the manifests its `index.json` and nested indexes list: those
    /// whose `subject` names `digest`, and those whose ref name is a cosign tag. Any
    /// source lists the BuildKit attestation manifests of the indexes it read. A
    /// docker-archive, a `dir:` layout and a library user's transport have none.
    ///
    /// Bounded: an index listing over [`MAX_REFERRERS_PER_INDEX`], over
    /// [`MAX_REFERRERS_TOTAL`] in all, and a chain deeper than [`MAX_REFERRER_DEPTH`]
    /// are refused with an error. A loop (a referrer naming, through others or itself,
    /// `digest` or a referrer above it; a registry that answers every tag with the
    /// image does) stops where it closes: a digest already listed is not listed or
    /// followed again, so each manifest is asked about at most once.
    ///
    /// ```
    /// use dockhand::{open_source, Location, ReadOptions};
    ///
    /// # let input = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/skopeo-oci/input");
    /// let source = open_source(&Location::parse(input)?, &ReadOptions::default())?;
    /// let image = source.images[0].manifest.clone().unwrap();
    /// assert!(source.referrers(&image.digest)?.is_empty());
    /// # Ok::<(), dockhand::Error>(())
    /// ```
    pub fn referrers(&self, digest: &Digest) -> Result<Vec<Referrer>> {
        let mut seen = HashSet::from([digest.clone()]);
        let mut path = vec![digest.clone()];
        let mut total = 0;
        self.referrers_below(digest, &mut path, &mut seen, &mut total)
    }

    fn referrers_below(
        &self,
        digest: &Digest,
        path: &mut Vec<Digest>,
        seen: &mut HashSet<Digest>,
        total: &mut usize,
    ) -> Result<Vec<Referrer>> {
        let refused = |problem: String| Error::Malformed {
            file: format!("the referrers of {digest}"),
            problem,
        };
        if path.len() > MAX_REFERRER_DEPTH {
            return Err(refused(format!(
                "referrers of referrers go deeper than {MAX_REFERRER_DEPTH} levels"
            )));
        }
        let mut direct = match self.direct_referrers(digest) {
            Some(find) => find?,
            None => Vec::new(),
        };
        for image in &self.images {
            if let Some(index) = &image.index {
                direct.extend(buildkit_attestations(&index.bytes, digest));
            }
        }
        let mut found = Vec::new();
        let mut here = HashSet::new();
        for mut referrer in direct {
            let id = referrer.descriptor.digest.clone();
            if !here.insert(id.clone()) {
                continue;
            }
            // A loop (a registry answering every tag with the image itself does) is
            // cut where it closes: what is already listed above is not listed again.
            if path.contains(&id) || !seen.insert(id.clone()) {
                continue;
            }
            *total += 1;
            if *total > MAX_REFERRERS_TOTAL {
                return Err(refused(format!(
                    "more than {MAX_REFERRERS_TOTAL} referrers in all"
                )));
            }
            path.push(id.clone());
            referrer.referrers = self.referrers_below(&id, path, seen, total)?;
            path.pop();
            found.push(referrer);
        }
        Ok(found)
    }
}

/// The bytes of a referrers index listing `listed` (descriptors with `artifactType` and
/// annotations), as the referrers API answers and a fallback tag holds one.
pub(crate) fn referrers_index(listed: &[serde_json::Value]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_INDEX,
        "manifests": listed,
    }))
    .expect("serializing a JSON value cannot fail")
}

/// Add to `listed` each of `new` it does not list yet (by digest), keeping its order;
/// whether anything was added. More than [`MAX_REFERRERS_PER_INDEX`] in all is
/// refused, naming `what`.
pub(crate) fn add_listed(
    listed: &mut Vec<serde_json::Value>,
    new: &[serde_json::Value],
    what: &str,
) -> Result<bool> {
    let mut held: HashSet<String> = listed
        .iter()
        .filter_map(|e| e["digest"].as_str().map(String::from))
        .collect();
    let before = listed.len();
    for entry in new {
        let Some(digest) = entry["digest"].as_str() else {
            continue;
        };
        if held.insert(digest.to_string()) {
            listed.push(entry.clone());
        }
    }
    if listed.len() > MAX_REFERRERS_PER_INDEX {
        return Err(Error::malformed(
            what,
            format!("the referrers fallback tag would list more than {MAX_REFERRERS_PER_INDEX}"),
        ));
    }
    Ok(listed.len() > before)
}

/// How a carried manifest hangs off what it refers to, at the destination.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AttachedBy {
    /// Its `subject` names it: a registry's referrers API or the fallback tag lists it.
    Subject,
    /// A cosign tag (`sha256-<hex>.sig`, `.att`, `.sbom`) names it.
    Tag(String),
    /// An index put after it lists it: a BuildKit attestation in an image's index, or a
    /// member of a referrer that is an index.
    Index,
}

/// Something attached to an image, ready to copy: a referrer's manifest (or a member of
/// a referrer that is an index) with its exact bytes and the blobs they name.
#[derive(Clone)]
#[non_exhaustive]
pub struct AttachedManifest {
    /// Its media type, digest and size.
    pub descriptor: Descriptor,
    /// Its exact bytes (verified against the digest), so every signature over it and
    /// every digest naming it stays valid.
    pub bytes: std::sync::Arc<Vec<u8>>,
    /// The digest of what it refers to.
    pub subject: Digest,
    /// How it hangs off that.
    pub by: AttachedBy,
    /// Its artifact type (`artifactType`, else its config's media type).
    pub artifact_type: Option<String>,
    /// Its annotations.
    pub annotations: BTreeMap<String, String>,
    /// The blobs its config and layers name, in order, with where to read each; every
    /// read is checked against the descriptor as it streams.
    pub blobs: Vec<(Descriptor, std::sync::Arc<dyn crate::model::blob::Blob>)>,
}

impl std::fmt::Debug for AttachedManifest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttachedManifest")
            .field("descriptor", &self.descriptor)
            .field("subject", &self.subject)
            .field("by", &self.by)
            .field("artifact_type", &self.artifact_type)
            .field("blobs", &self.blobs.len())
            .finish()
    }
}

/// The empty JSON config OCI artifacts use (`application/vnd.oci.empty.v1+json`): its
/// two bytes are known, so a source that does not hold it still gives it.
const EMPTY_CONFIG: &[u8] = b"{}";

impl Source {
    /// Everything attached to the manifests or indexes `subjects`, ready to copy, in
    /// the order a destination takes it: what an index lists before the index,
    /// a referrer before what refers to it. `artifact_types`, when not empty, keeps
    /// only the referrers of those artifact types that refer to a subject directly,
    /// with everything that refers to them (a signature of a kept SBOM comes along);
    /// BuildKit attestations are always kept, since their image index lists them and
    /// changes digest without them. A referrer whose manifest or blob the source does
    /// not hold is an error naming it: a referrer is copied whole or not at all.
    ///
    /// ```
    /// use dockhand::{open_source, Location, ReadOptions};
    ///
    /// # let input = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/skopeo-oci/input");
    /// let source = open_source(&Location::parse(input)?, &ReadOptions::default())?;
    /// let image = source.images[0].manifest.clone().unwrap();
    /// assert!(source.attachments(&[image.digest], &[])?.is_empty());
    /// # Ok::<(), dockhand::Error>(())
    /// ```
    pub fn attachments(
        &self,
        subjects: &[Digest],
        artifact_types: &[String],
    ) -> Result<Vec<AttachedManifest>> {
        let mut out = Vec::new();
        let mut done: HashSet<(Digest, AttachedBy)> = HashSet::new();
        for subject in subjects {
            let tree = self.referrers(subject)?;
            for referrer in tree {
                let kept = artifact_types.is_empty()
                    || referrer.kind == ReferrerKind::BuildkitAttestation
                    || referrer
                        .artifact_type
                        .as_ref()
                        .is_some_and(|t| artifact_types.contains(t));
                if kept {
                    self.attach_tree(subject, &referrer, &mut out, &mut done)?;
                }
            }
        }
        Ok(out)
    }

    /// `referrer` of `subject`, then what refers to it, appended to `out`.
    fn attach_tree(
        &self,
        subject: &Digest,
        referrer: &Referrer,
        out: &mut Vec<AttachedManifest>,
        done: &mut HashSet<(Digest, AttachedBy)>,
    ) -> Result<()> {
        let by = match (&referrer.tag, referrer.kind) {
            (Some(tag), _) => AttachedBy::Tag(tag.clone()),
            (None, ReferrerKind::BuildkitAttestation) => AttachedBy::Index,
            (None, _) => AttachedBy::Subject,
        };
        let digest = &referrer.descriptor.digest;
        if done.insert((digest.clone(), by.clone())) {
            self.attach_manifest(subject, &referrer.descriptor, by, out, 0)?;
            // What the manifest itself says comes first; what listed it fills gaps.
            if let Some(last) = out.last_mut() {
                if last.annotations.is_empty() {
                    last.annotations = referrer.annotations.clone();
                }
                if last.artifact_type.is_none() {
                    last.artifact_type = referrer.artifact_type.clone();
                }
            }
        }
        for below in &referrer.referrers {
            self.attach_tree(digest, below, out, done)?;
        }
        Ok(())
    }

    /// The manifest `descriptor` names with its blobs (an index's members first, each
    /// with theirs), appended to `out`.
    fn attach_manifest(
        &self,
        subject: &Digest,
        descriptor: &Descriptor,
        by: AttachedBy,
        out: &mut Vec<AttachedManifest>,
        depth: usize,
    ) -> Result<()> {
        let what = format!("the referrer {} of {subject}", descriptor.digest);
        if depth > MAX_REFERRER_DEPTH {
            return Err(Error::malformed(
                &what,
                format!("indexes nest deeper than {MAX_REFERRER_DEPTH} levels"),
            ));
        }
        let found = self
            .manifest(&descriptor.digest)?
            .ok_or_else(|| Error::Missing {
                file: what.clone(),
                what: "manifest".into(),
            })?;
        let doc = parse_doc(&found.bytes, &what)?;
        for member in &doc.manifests {
            let member = entry_descriptor(member, &what)?;
            self.attach_manifest(
                &descriptor.digest,
                &member,
                AttachedBy::Index,
                out,
                depth + 1,
            )?;
        }
        let mut blobs = Vec::new();
        for entry in doc.config.iter().chain(&doc.layers) {
            let wanted = entry_descriptor(entry, &what)?;
            let blob = match self.attached_blob(&wanted)? {
                Some(blob) => blob,
                None if wanted.digest == Digest::of(EMPTY_CONFIG) => {
                    std::sync::Arc::new(crate::model::blob::MemoryBlob::new(
                        std::sync::Arc::new(EMPTY_CONFIG.to_vec()),
                        wanted.digest.to_string(),
                    ))
                }
                None => {
                    return Err(Error::Missing {
                        file: format!("{what}: blob {}", wanted.digest),
                        what: "blob".into(),
                    })
                }
            };
            if !blobs
                .iter()
                .any(|(d, _): &(Descriptor, _)| d.digest == wanted.digest)
            {
                blobs.push((wanted, blob));
            }
        }
        let artifact_type = doc
            .artifact_type
            .clone()
            .or_else(|| doc.config.as_ref().map(|c| c.media_type.clone()));
        out.push(AttachedManifest {
            descriptor: Descriptor {
                media_type: found.media_type.clone(),
                digest: descriptor.digest.clone(),
                size: found.bytes.len() as u64,
            },
            bytes: found.bytes,
            subject: subject.clone(),
            by,
            artifact_type,
            annotations: doc.annotations,
            blobs,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosign_tags_name_a_digest_and_a_kind() {
        let digest = Digest::of(b"x");
        let tag = format!("{}.att", fallback_tag(&digest));
        assert_eq!(
            cosign_tag(&tag),
            Some((digest, ReferrerKind::CosignAttestation))
        );
        assert_eq!(cosign_tag("latest"), None);
        assert_eq!(cosign_tag("sha256-abc.sig"), None);
    }

    #[test]
    fn an_oversized_referrers_index_is_refused() {
        let entry = format!(
            "{{\"mediaType\":\"{}\",\"digest\":\"{}\",\"size\":1}}",
            media::OCI_MANIFEST,
            Digest::of(b"x")
        );
        let entries = vec![entry; MAX_REFERRERS_PER_INDEX + 1].join(",");
        let index = format!("{{\"schemaVersion\":2,\"manifests\":[{entries}]}}");
        let err = parse_referrers_index(index.as_bytes(), "x").unwrap_err();
        assert!(err.to_string().contains("over the limit"), "{err}");
    }
}
