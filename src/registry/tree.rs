//! A registry repository read natively: the manifest its reference resolves to is
//! fetched and verified here, and the readers walk down from it
//! ([`crate::formats::read_from_store`]), asking [`RegistryBlobs`] for each manifest,
//! config and layer by digest. A schema 1 manifest is converted by the same code as a
//! `dir:` layout's, from its bytes.
//!
//! Only descriptors read from manifests already fetched can be opened, with the size
//! they give; every byte is verified by the reader or writer that streams it.

use std::collections::HashMap;
use std::io::Read;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use serde::Deserialize;
use ureq::http::Method;

use super::cached::Cached;
use super::client::{header, Payload, Scope, MANIFEST_ACCEPT, MAX_MANIFEST_SIZE};
use super::fetch::{Fetch, Repo};
use super::reference::RegistryRef;
use crate::container::FileRef;
use crate::error::{Error, Result};
use crate::formats::{BlobStore, Root};
use crate::model::blob::{Blob, MemoryBlob};
use crate::model::digest::Digest;
use crate::model::image::Descriptor;
use crate::model::media::{self, Compression};
use crate::transport::ManifestBytes;

/// Most descriptors a pull may learn of (manifests, configs and layers together).
const MAX_DESCRIPTORS: usize = 100_000;

/// What a descriptor names.
#[derive(Clone, Debug)]
enum Kind {
    /// A manifest or index, fetched from `/manifests/` (its bytes once fetched).
    Manifest(Option<Arc<Vec<u8>>>),
    /// A config: small, read into memory by the readers.
    Config,
    /// A layer (or another blob), of this media type.
    Layer(String),
}

#[derive(Clone, Debug)]
struct Known {
    size: u64,
    kind: Kind,
}

/// The descriptors learnt so far, shared by the tree and its manifest blobs.
#[derive(Debug, Default)]
struct Catalog {
    known: HashMap<Digest, Known>,
}

impl Catalog {
    /// Learn the descriptors a manifest or index names.
    fn learn(&mut self, bytes: &[u8]) -> Result<()> {
        #[derive(Deserialize)]
        struct Desc {
            #[serde(rename = "mediaType")]
            media_type: Option<String>,
            digest: String,
            size: u64,
        }
        #[derive(Deserialize)]
        struct Doc {
            manifests: Option<Vec<Desc>>,
            config: Option<Desc>,
            layers: Option<Vec<Desc>>,
        }
        let Ok(doc) = serde_json::from_slice::<Doc>(bytes) else {
            // The reader reports what is wrong with it, by name.
            return Ok(());
        };
        let mut add = |desc: &Desc, kind: Kind| -> Result<()> {
            let Ok(digest) = Digest::parse(&desc.digest) else {
                return Ok(());
            };
            if self.known.len() >= MAX_DESCRIPTORS {
                return Err(Error::Unsupported(format!(
                    "the registry's manifests name more than {MAX_DESCRIPTORS} blobs"
                )));
            }
            self.known.entry(digest).or_insert(Known {
                size: desc.size,
                kind,
            });
            Ok(())
        };
        for m in doc.manifests.iter().flatten() {
            add(m, Kind::Manifest(None))?;
        }
        if let Some(c) = &doc.config {
            add(c, Kind::Config)?;
        }
        for l in doc.layers.iter().flatten() {
            let media_type = l.media_type.clone().unwrap_or_default();
            add(l, Kind::Layer(media_type))?;
        }
        Ok(())
    }
}

/// The blobs of a registry repository that its manifests fetched so far name, by
/// digest. They are named in messages and progress as a layout would hold them
/// (`blobs/sha256/<hex>`, or `<hex>` below a schema 1 manifest, as a `dir:` layout
/// does), so that what is said about a blob reads the same whatever its source.
#[derive(Clone, Debug)]
pub(crate) struct RegistryBlobs {
    repo: Arc<Repo>,
    catalog: Arc<Mutex<Catalog>>,
    /// Below a schema 1 manifest.
    schema1: bool,
}

/// A manifest fetched from a registry: its bytes (verified), digest and media type.
pub(crate) struct Fetched {
    pub bytes: Vec<u8>,
    pub digest: Digest,
    pub media_type: String,
    /// Schema 1 (converted by the `dir:` reader's code).
    pub schema1: bool,
}

/// Fetch the manifest `reference` names (a tag or digest), refusing more than
/// [`MAX_MANIFEST_SIZE`] bytes before reading them, and checking the bytes against the
/// digest asked for or the one the registry states.
pub(crate) fn fetch_manifest(repo: &Repo, reference: &str) -> Result<Fetched> {
    let mut response = request_manifest(repo, reference)?;
    if response.status() == 404 {
        return Err(repo
            .client
            .manifest_unknown(&repo.repository, reference, &mut response));
    }
    read_manifest(repo, reference, response)
}

/// [`fetch_manifest`] for a manifest the repository may not hold: `None` when the
/// registry answers 404.
pub(crate) fn fetch_manifest_if_held(repo: &Repo, reference: &str) -> Result<Option<Fetched>> {
    let response = request_manifest(repo, reference)?;
    if response.status() == 404 {
        return Ok(None);
    }
    read_manifest(repo, reference, response).map(Some)
}

fn request_manifest(repo: &Repo, reference: &str) -> Result<ureq::http::Response<ureq::Body>> {
    repo.client.send(
        Method::GET,
        &repo.url(&format!("manifests/{reference}")),
        &Scope::pull(&repo.repository),
        &[("Accept", MANIFEST_ACCEPT)],
        Payload::Empty,
    )
}

/// Read and verify the manifest in the answer `response` to a request for `reference`.
fn read_manifest(
    repo: &Repo,
    reference: &str,
    mut response: ureq::http::Response<ureq::Body>,
) -> Result<Fetched> {
    let what = format!(
        "{}/{}:{}",
        repo.client.registry(),
        repo.repository,
        reference
    );
    if response.status() != 200 {
        return Err(repo.client.unexpected(&what, &mut response));
    }
    if let Some(length) = header(&response, "content-length").and_then(|v| v.parse::<u64>().ok()) {
        if length > MAX_MANIFEST_SIZE {
            return Err(repo.client.error(format!(
                "{}: the manifest is {length} bytes, over the {MAX_MANIFEST_SIZE}-byte limit",
                crate::text::shown(&what)
            )));
        }
    }
    let stated = header(&response, "docker-content-digest").map(str::to_string);
    let content_type = header(&response, "content-type")
        .map(|v| v.split(';').next().unwrap_or(v).trim().to_string())
        .unwrap_or_default();
    let bytes = repo
        .client
        .read_small(&mut response, MAX_MANIFEST_SIZE)
        .map_err(|e| match e {
            Error::Unsupported(_) => repo.client.error(format!(
                "{}: the manifest is over the {MAX_MANIFEST_SIZE}-byte limit",
                crate::text::shown(&what)
            )),
            other => other,
        })?;
    let (actual, schema1) = manifest_identity(&bytes).map_err(|why| {
        repo.client.error(format!(
            "{}: a schema 1 manifest whose signatures cannot be read: {why}",
            crate::text::shown(&what)
        ))
    })?;
    // A pinned reference means these bytes, whatever their type; the registry's own
    // statement of the digest must agree too.
    let pinned = Digest::parse(reference).ok();
    let stated = match stated.as_deref() {
        Some(text) if text.starts_with("sha256:") => Some(Digest::parse(text).map_err(|_| {
            repo.client.error(format!(
                "{}: the registry states an invalid digest {}",
                crate::text::shown(&what),
                crate::text::shown(text)
            ))
        })?),
        // Another algorithm cannot be compared; the pin (or nothing) decides.
        _ => None,
    };
    for expected in [pinned, stated].into_iter().flatten() {
        if actual != expected {
            return Err(Error::DigestMismatch {
                file: crate::text::shown(&what),
                expected,
                actual,
            });
        }
    }
    let media_type = if schema1 {
        media::DOCKER_SCHEMA1.to_string()
    } else if content_type.is_empty() || content_type == "application/json" {
        body_media_type(&bytes)
    } else {
        content_type
    };
    Ok(Fetched {
        bytes,
        digest: actual,
        media_type,
        schema1,
    })
}

/// How many descriptors a pull learns from a manifest or index (for the fuzz targets).
#[cfg(feature = "fuzzing")]
pub(crate) fn learnt_descriptors(bytes: &[u8]) -> Result<usize> {
    let mut catalog = Catalog::default();
    catalog.learn(bytes)?;
    Ok(catalog.known.len())
}

/// The `mediaType` a manifest names itself, or what its shape makes it.
pub(crate) fn body_media_type(bytes: &[u8]) -> String {
    media::manifest_media_type(bytes).0
}

/// What a manifest's digest is, and whether it is schema 1: decided by the body alone,
/// by the same rule the `dir:` reader that reads it applies, so that what is verified
/// is what is read (a signed schema 1 manifest by its payload, which is what the
/// reader parses; anything else by its bytes, whatever the `Content-Type` claims).
pub(crate) fn manifest_identity(bytes: &[u8]) -> std::result::Result<(Digest, bool), String> {
    let schema1 = serde_json::from_slice::<serde_json::Value>(bytes)
        .is_ok_and(|value| crate::formats::declares_schema1(&value));
    if schema1 {
        let payload = crate::formats::schema1_payload(bytes)?;
        Ok((Digest::of(&payload), true))
    } else {
        Ok((Digest::of(bytes), false))
    }
}

/// Resolve `reference` in `repo`: the document it names, for the readers to start
/// from, and the store of the blobs below it.
pub(crate) fn open(repo: Arc<Repo>, reference: &RegistryRef) -> Result<(Root, RegistryBlobs)> {
    let top = fetch_manifest(&repo, &reference.manifest_reference())?;
    let mut catalog = Catalog::default();
    let root = if top.schema1 {
        schema1_sizes(&repo, &top.bytes, &mut catalog)?;
        Root::Schema1(Arc::new(top.bytes))
    } else {
        catalog.learn(&top.bytes)?;
        let root = Descriptor {
            media_type: top.media_type,
            digest: top.digest.clone(),
            size: top.bytes.len() as u64,
        };
        catalog.known.insert(
            top.digest,
            Known {
                size: root.size,
                kind: Kind::Manifest(Some(Arc::new(top.bytes))),
            },
        );
        Root::Oci(root)
    };
    let blobs = RegistryBlobs {
        repo,
        catalog: Arc::new(Mutex::new(catalog)),
        schema1: top.schema1,
    };
    Ok((root, blobs))
}

impl RegistryBlobs {
    /// Read layers straight from the registry from now on, past the cache: the
    /// destination skips what it holds on a re-run, so no copy is kept to resume from.
    pub(crate) fn stream_layers(&self) {
        self.repo.streaming.store(true, Ordering::Relaxed);
    }

    /// Forget the cached copies of every blob fetched (an output now holds them); what
    /// the cache has to tell the user.
    pub(crate) fn release_cache(&self) -> Vec<String> {
        let Some(cache) = &self.repo.cache else {
            return Vec::new();
        };
        let catalog = self.catalog.lock().unwrap_or_else(|e| e.into_inner());
        cache.release(catalog.known.keys());
        cache.take_warnings()
    }
}

impl RegistryBlobs {
    /// A blob of the repository that no manifest read so far names (a referrer's config
    /// or layer), fetched by the digest and size `descriptor` gives when it is read.
    pub(crate) fn attached_blob(&self, descriptor: &Descriptor) -> Arc<dyn Blob> {
        Arc::new(RegistryBlob {
            repo: Arc::clone(&self.repo),
            digest: descriptor.digest.clone(),
            size: descriptor.size,
            layer_type: Some(descriptor.media_type.clone()),
            // Nothing lists it to release it from the cache once written: it streams.
            cached: false,
        })
    }

    /// What refers directly to `digest` in the repository (see
    /// [`super::referrers::direct`]).
    pub(crate) fn referrers(&self, digest: &Digest) -> Result<Vec<crate::referrers::Referrer>> {
        super::referrers::direct(&self.repo, digest)
    }

    /// The manifest or index `digest` of the repository, verified against it: held
    /// since the pull resolved it, or fetched now (an index member of a platform not
    /// pulled); `None` when the registry has none by that digest, or what it has is
    /// not a manifest.
    pub(crate) fn manifest(&self, digest: &Digest) -> Result<Option<ManifestBytes>> {
        let held = match self
            .catalog
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .known
            .get(digest)
        {
            Some(Known {
                kind: Kind::Manifest(Some(bytes)),
                ..
            }) => Some(Arc::clone(bytes)),
            _ => None,
        };
        let bytes = match held {
            Some(bytes) => bytes,
            None => match fetch_manifest_if_held(&self.repo, &digest.to_string())? {
                Some(fetched) => Arc::new(fetched.bytes),
                None => return Ok(None),
            },
        };
        let (media_type, versioned) = media::manifest_media_type(&bytes);
        Ok(versioned.then_some(ManifestBytes { bytes, media_type }))
    }
}

impl BlobStore for RegistryBlobs {
    fn blob_path(&self, digest: &Digest) -> String {
        if self.schema1 {
            digest.hex().to_string()
        } else {
            crate::formats::blob_path(digest)
        }
    }
    /// A blob a manifest fetched so far names; a manifest fetched when first opened.
    fn find_blob(&self, digest: &Digest) -> Result<Option<FileRef>> {
        let known = self
            .catalog
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .known
            .get(digest)
            .cloned();
        let Some(known) = known else {
            return Ok(None);
        };
        let path = self.blob_path(digest);
        let digest = digest.clone();
        let blob: Arc<dyn Blob> = match known.kind {
            Kind::Manifest(Some(bytes)) => Arc::new(MemoryBlob::new(bytes, &path)),
            Kind::Manifest(None) => Arc::new(ManifestBlob {
                repo: Arc::clone(&self.repo),
                catalog: Arc::clone(&self.catalog),
                digest,
                size: known.size,
                bytes: Mutex::new(None),
            }),
            Kind::Config => Arc::new(RegistryBlob {
                repo: Arc::clone(&self.repo),
                digest,
                size: known.size,
                layer_type: None,
                cached: true,
            }),
            Kind::Layer(media_type) => Arc::new(RegistryBlob {
                repo: Arc::clone(&self.repo),
                digest,
                size: known.size,
                layer_type: Some(media_type),
                cached: true,
            }),
        };
        Ok(Some(FileRef {
            path,
            size: known.size,
            blob,
        }))
    }
}

/// Learn the sizes of a schema 1 manifest's blobs (it gives none) with `HEAD`s.
fn schema1_sizes(repo: &Repo, bytes: &[u8], catalog: &mut Catalog) -> Result<()> {
    #[derive(Deserialize)]
    struct FsLayer {
        #[serde(rename = "blobSum")]
        blob_sum: String,
    }
    #[derive(Deserialize)]
    struct Schema1 {
        #[serde(rename = "fsLayers")]
        fs_layers: Vec<FsLayer>,
    }
    // The payload is what the digest covers and what the reader parses.
    let Ok(payload) = crate::formats::schema1_payload(bytes) else {
        return Ok(());
    };
    let Ok(doc) = serde_json::from_slice::<Schema1>(&payload) else {
        return Ok(());
    };
    if doc.fs_layers.len() > 1000 {
        return Err(repo
            .client
            .error("a schema 1 manifest with more than 1000 layers"));
    }
    for layer in &doc.fs_layers {
        let Ok(digest) = Digest::parse(&layer.blob_sum) else {
            continue;
        };
        if catalog.known.contains_key(&digest) {
            continue;
        }
        let mut response = repo.client.send(
            Method::HEAD,
            &repo.url(&format!("blobs/{digest}")),
            &Scope::pull(&repo.repository),
            &[],
            Payload::Empty,
        )?;
        if response.status() == 404 {
            continue;
        }
        if !response.status().is_success() {
            return Err(repo
                .client
                .unexpected(&repo.describe(&digest), &mut response));
        }
        let size = header(&response, "content-length")
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| {
                repo.client
                    .error(format!("{}: no Content-Length", repo.describe(&digest)))
            })?;
        catalog.known.insert(
            digest,
            Known {
                size,
                // No media type: the compression is read off the bytes.
                kind: Kind::Layer(String::new()),
            },
        );
    }
    Ok(())
}

/// A manifest named by an index, fetched when first opened; the descriptors it names
/// become openable then.
#[derive(Debug)]
struct ManifestBlob {
    repo: Arc<Repo>,
    catalog: Arc<Mutex<Catalog>>,
    digest: Digest,
    size: u64,
    bytes: Mutex<Option<Arc<Vec<u8>>>>,
}

impl ManifestBlob {
    fn bytes(&self) -> Result<Arc<Vec<u8>>> {
        let mut held = self.bytes.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(bytes) = &*held {
            return Ok(Arc::clone(bytes));
        }
        if self.size > MAX_MANIFEST_SIZE {
            return Err(self.repo.client.error(format!(
                "{}: the manifest is {} bytes, over the {MAX_MANIFEST_SIZE}-byte limit",
                self.describe(),
                self.size
            )));
        }
        let fetched = fetch_manifest(&self.repo, &self.digest.to_string())?;
        let bytes = Arc::new(fetched.bytes);
        self.catalog
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .learn(&bytes)?;
        *held = Some(Arc::clone(&bytes));
        Ok(bytes)
    }
}

impl Blob for ManifestBlob {
    fn open_at(&self, start: u64) -> Result<Box<dyn Read + Send>> {
        MemoryBlob::new(self.bytes()?, self.describe()).open_at(start)
    }
    fn size(&self) -> u64 {
        self.size
    }
    fn describe(&self) -> String {
        self.repo.describe(&self.digest)
    }
}

/// A config or layer in a registry.
#[derive(Debug)]
pub(crate) struct RegistryBlob {
    repo: Arc<Repo>,
    digest: Digest,
    size: u64,
    /// The media type, for a layer (empty when the manifest gives none: schema 1).
    layer_type: Option<String>,
    /// Whether a layer is read through the blob cache (a referrer's blob is not).
    cached: bool,
}

impl RegistryBlob {
    /// The blob of a registry's behind `blob`, when it is one.
    pub(crate) fn of(blob: &dyn Blob) -> Option<&RegistryBlob> {
        (blob as &dyn std::any::Any).downcast_ref()
    }

    /// The registry and repository it is in: a push to another repository of that
    /// registry mounts it from there instead of uploading it.
    pub(crate) fn origin(&self) -> (&str, &str) {
        (self.repo.client.registry(), &self.repo.repository)
    }

    /// Fetch a layer's bytes ahead of their use into the cache, which a later
    /// [`Blob::open`] then reads. Errors are for the caller to ignore; the later read
    /// meets them again.
    pub(crate) fn prefetch(&self) -> Result<()> {
        if self.layer_type.is_none() {
            return Ok(());
        }
        if let Some(mut cached) = Cached::open(&self.repo, &self.digest, self.size)? {
            if !cached.complete() {
                std::io::copy(&mut cached, &mut std::io::sink())
                    .map_err(|e| Error::io(format!("fetching {}", self.describe()), e))?;
            }
        }
        Ok(())
    }
}

impl Blob for RegistryBlob {
    fn open_at(&self, start: u64) -> Result<Box<dyn Read + Send>> {
        if self.layer_type.is_none() && self.size > MAX_MANIFEST_SIZE {
            return Err(self.repo.client.error(format!(
                "{}: the config is {} bytes, over the {MAX_MANIFEST_SIZE}-byte limit",
                self.describe(),
                self.size
            )));
        }
        if start == 0 && self.layer_type.is_some() {
            if !self.cached || self.repo.streaming.load(Ordering::Relaxed) {
                let fetch = Fetch::new(Arc::clone(&self.repo), self.digest.clone(), self.size, 0);
                return Ok(Box::new(fetch.remembering()));
            }
            if let Some(cached) = Cached::open(&self.repo, &self.digest, self.size)? {
                return Ok(Box::new(cached));
            }
        }
        Ok(Box::new(Fetch::new(
            Arc::clone(&self.repo),
            self.digest.clone(),
            self.size,
            start,
        )))
    }
    fn size(&self) -> u64 {
        self.size
    }
    fn describe(&self) -> String {
        self.repo.describe(&self.digest)
    }
    fn rereading_is_cheap(&self) -> bool {
        false
    }
    /// A layer's first bytes as its media type gives them, so that reading an image's
    /// metadata fetches no layer bytes; the layer is checked when it streams (a wrong
    /// compression then fails to decompress or to match its diff_id).
    fn head(&self, n: usize) -> Result<Vec<u8>> {
        let Some(media_type) = self.layer_type.as_ref().filter(|t| !t.is_empty()) else {
            let mut out = Vec::new();
            self.open()?
                .take(n as u64)
                .read_to_end(&mut out)
                .map_err(|e| Error::io(format!("reading {}", self.describe()), e))?;
            return Ok(out);
        };
        let magic: &[u8] = match Compression::of_layer_media_type(media_type) {
            Compression::Gzip => &[0x1f, 0x8b, 0x08],
            Compression::Zstd => &[0x28, 0xb5, 0x2f, 0xfd],
            Compression::Bzip2 => b"BZh",
            Compression::Xz => &[0xfd, b'7', b'z', b'X', b'Z', 0x00],
            Compression::None => &[],
        };
        Ok(magic[..magic.len().min(n)].to_vec())
    }
}
