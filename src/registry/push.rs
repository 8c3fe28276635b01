//! Pushing images: blobs the registry lacks (a `HEAD` first, a cross-repository mount
//! when the source is another repository of the same registry), small ones in one
//! `PUT`, large ones in chunks that resume where the registry says it stopped; then
//! each manifest, byte for byte, under its tags, once every image's blobs are in.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::sync::{Arc, Mutex};

use ureq::http::Method;

use super::client::{header, Payload, Scope};
use super::fetch::Repo;
use super::reference::RegistryRef;
use super::seen::Seen;
use crate::container::Staged;
use crate::error::Setting;
use crate::error::{Error, Result};
use crate::model::blob::Blob;
use crate::model::digest::Digest;
use crate::model::image::{Descriptor, Image};
use crate::sink::ManifestInfo;
use crate::sink::{BlobInfo, CommitReport, ConcurrentBlobs, ImageDestination, LayerPolicy};
use crate::text::shown;
use crate::transport::WriteOptions;

/// Blobs up to this size go in one `PUT`; larger ones in `PATCH` chunks of this size
/// (held in memory, so that a chunk cut short is sent again from where the registry
/// stopped).
pub(crate) const CHUNK_SIZE: usize = 8 << 20;

/// A manifest waiting to be put, by digest or under its tags.
struct Pending {
    bytes: Vec<u8>,
    media_type: String,
    digest: Digest,
    references: Vec<String>,
    /// For an OCI referrer: its subject, and the entry a referrers index lists it with
    /// (for the fallback tag, when the registry has no referrers API).
    referrer: Option<(Digest, serde_json::Value)>,
}

/// Where images are pushed: a repository (and a tag, or each image's own tags). Blobs
/// go up as they are put; manifests wait for the commit, which puts each after the
/// blobs (and, for an index, the manifests) it names.
pub(crate) struct RegistryDestination {
    uploader: Uploader,
    target: RegistryRef,
    pending: Vec<Pending>,
    /// The tags of each image or index listed, in the order they are named.
    references: std::collections::VecDeque<Vec<String>>,
}

impl RegistryDestination {
    /// A destination pushing to `target` through `repo`, and how it takes layers.
    pub(crate) fn new(
        repo: Arc<Repo>,
        target: RegistryRef,
        options: &WriteOptions,
        jobs: usize,
    ) -> Result<(RegistryDestination, LayerPolicy)> {
        if options.docker_layout.is_some() {
            return Err(Error::Usage(format!(
                "{} applies to docker-archive and docker-dir outputs, not docker",
                Setting::DockerLayout
            )));
        }
        if target.digest.is_some() {
            return Err(Error::Usage(format!(
                "docker://{}: a push names a tag or only a repository, not a digest",
                shown(&target.to_string())
            )));
        }
        let mut layers = LayerPolicy::for_registry(
            options.layer_compression,
            options.compression_level,
            options.manifest_format,
        )?;
        if options.keep_manifests {
            layers = layers.keeping_manifests();
        }
        let scope = Scope::push(&repo.repository);
        repo.client.authenticate(&scope)?;
        let seen = repo
            .cache
            .as_ref()
            .map(|cache| cache.seen(repo.client.registry()))
            .unwrap_or_default();
        let destination = RegistryDestination {
            uploader: Uploader {
                repo,
                scope,
                origins: HashMap::new(),
                seen,
                sources: HashMap::new(),
                held: Mutex::default(),
                absent: Mutex::default(),
                jobs: jobs.max(1),
            },
            target,
            pending: Vec::new(),
            references: Default::default(),
        };
        Ok((destination, layers))
    }

    /// The tags each image is pushed under: the destination's tag for a single image,
    /// else each image's own tags (`latest` for a single image that has none).
    fn references(&self, images: &[&Image]) -> Result<Vec<Vec<String>>> {
        if let Some(tag) = &self.target.tag {
            if images.len() != 1 {
                return Err(Error::Selection(format!(
                    "docker://{} names one image but {} are selected; name only the repository to push each image to its own tags",
                    shown(&self.target.to_string()),
                    images.len()
                )));
            }
            return Ok(vec![vec![tag.clone()]]);
        }
        let mut all = Vec::with_capacity(images.len());
        for (i, image) in images.iter().enumerate() {
            let mut tags: Vec<String> = Vec::new();
            for r in &image.tags {
                if !tags.iter().any(|t| t == r.tag()) {
                    tags.push(r.tag().to_string());
                }
            }
            if tags.is_empty() {
                if images.len() > 1 {
                    return Err(Error::Selection(format!(
                        "image @{i} has no tag to push it under; pick it with {} and name a tag in the destination",
                        Setting::Image
                    )));
                }
                tags.push("latest".into());
            }
            all.push(tags);
        }
        for (i, tags) in all.iter().enumerate() {
            for tag in tags {
                if let Some(j) = all[..i].iter().position(|t| t.contains(tag)) {
                    return Err(Error::Selection(format!(
                        "images @{j} and @{i} would both be pushed as {}:{}; pick one with {}",
                        shown(&self.target.repository),
                        shown(tag),
                        Setting::Image
                    )));
                }
            }
        }
        Ok(all)
    }
}

impl ImageDestination for RegistryDestination {
    fn prepare(&mut self, images: &[Image]) -> Result<Vec<String>> {
        // What gets tags: each image, or each index read with --all (named as its
        // first image), checked before anything is pushed.
        let mut seen_indexes = std::collections::HashSet::new();
        let listed: Vec<&Image> = images
            .iter()
            .filter(|image| match &image.index {
                Some(index) => seen_indexes.insert(index.descriptor.digest.clone()),
                None => true,
            })
            .collect();
        self.references.extend(self.references(&listed)?);
        for image in images {
            let mut image_origin = None;
            for layer in &image.layers {
                let (Some(digest), Some(blob)) = (&layer.digest, &layer.blob) else {
                    continue;
                };
                self.uploader
                    .sources
                    .insert(digest.clone(), Arc::clone(blob));
                if let Some((registry, repository)) =
                    super::tree::RegistryBlob::of(blob.as_ref()).map(|b| b.origin())
                {
                    if registry == self.uploader.repo.client.registry()
                        && repository != self.uploader.repo.repository
                    {
                        self.uploader
                            .origins
                            .insert(digest.clone(), repository.to_string());
                        image_origin = Some(repository.to_string());
                    }
                }
            }
            // The config came from the repository its layers did: mounted from there
            // too (a registry that lacks it there answers with an upload session).
            if let Some(repository) = image_origin {
                self.uploader
                    .origins
                    .insert(image.config.digest.clone(), repository);
            }
        }
        Ok(Vec::new())
    }

    fn try_reusing_blob(&mut self, blob: &BlobInfo) -> Result<Option<u64>> {
        match blob.digest {
            Some(digest) => self.uploader.existing(digest, blob.size),
            None => Ok(None),
        }
    }

    fn put_blob(&mut self, blob: &BlobInfo, data: &mut dyn Read) -> Result<(Digest, u64)> {
        match blob.digest {
            Some(digest) => {
                let size = self.uploader.put_from_source(digest, blob.size, data)?;
                Ok((digest.clone(), size))
            }
            None => self.uploader.put_hashing(data),
        }
    }

    fn concurrent(&self) -> Option<Box<dyn ConcurrentBlobs + '_>> {
        Some(Box::new(&self.uploader))
    }

    fn put_manifest(&mut self, manifest: &ManifestInfo) -> Result<()> {
        // An index's images go in by digest, before the index; the rest waits for
        // its names.
        let digest = &manifest.descriptor.digest;
        // A referrer goes in under its cosign tag, or by digest (its subject then lists
        // it, through the referrers API or the fallback tag).
        let (references, referrer) = match &manifest.attached {
            Some(attached) => match attached.tag {
                Some(tag) => (vec![tag.to_string()], None),
                None => (
                    vec![digest.to_string()],
                    Some((
                        attached.subject.clone(),
                        crate::formats::referrer_descriptor(manifest, attached),
                    )),
                ),
            },
            None if manifest.listed_by_index => (vec![digest.to_string()], None),
            None => (Vec::new(), None),
        };
        self.pending.push(Pending {
            bytes: manifest.bytes.to_vec(),
            media_type: manifest.descriptor.media_type.clone(),
            digest: digest.clone(),
            references,
            referrer,
        });
        Ok(())
    }

    fn put_names(&mut self, manifest: &Descriptor, _image: &Image) -> Result<()> {
        let references = self.references.pop_front().ok_or_else(|| {
            Error::Unsupported("more images named than prepared for the push".into())
        })?;
        let pending = self
            .pending
            .iter_mut()
            .rev()
            .find(|p| p.digest == manifest.digest)
            .ok_or_else(|| {
                Error::Unsupported(format!("{}: named before it was put", manifest.digest))
            })?;
        for reference in references {
            if !pending.references.contains(&reference) {
                pending.references.push(reference);
            }
        }
        Ok(())
    }

    fn commit(self: Box<Self>) -> Result<CommitReport> {
        let repo = &self.uploader.repo;
        let mut report = CommitReport::default();
        // Referrers the registry did not index itself (no `OCI-Subject` in its answer),
        // by subject: the fallback tag lists them.
        let mut unindexed: Vec<(Digest, Vec<serde_json::Value>)> = Vec::new();
        for pending in &self.pending {
            for reference in &pending.references {
                let indexed = put_manifest(repo, &self.uploader.scope, reference, pending)?;
                if let (Some((subject, entry)), false) = (&pending.referrer, indexed) {
                    match unindexed.iter_mut().find(|(s, _)| s == subject) {
                        Some((_, entries)) => entries.push(entry.clone()),
                        None => unindexed.push((subject.clone(), vec![entry.clone()])),
                    }
                }
                // Each tag, as the destination now holds it: its manifest digest.
                if *reference != pending.digest.to_string() {
                    report.notes.push(format!(
                        "pushed docker://{}/{}:{}@{}",
                        self.target.registry,
                        shown(&self.target.repository),
                        shown(reference),
                        pending.digest
                    ));
                    report.stored.push((
                        format!(
                            "docker://{}/{}:{reference}",
                            self.target.registry, self.target.repository
                        ),
                        pending.digest.clone(),
                    ));
                }
            }
        }
        for (subject, entries) in &unindexed {
            if let Some(note) = update_fallback_tag(repo, &self.uploader.scope, subject, entries)? {
                report.notes.push(format!(
                    "{note} docker://{}/{}:{}",
                    self.target.registry,
                    shown(&self.target.repository),
                    crate::referrers::fallback_tag(subject)
                ));
            }
        }
        Ok(report)
    }
}

/// Add `entries` to the referrers index the fallback tag `sha256-<hex>` of `subject`
/// holds (created when absent), as the distribution spec has a client do for a
/// registry without the referrers API: what is listed there stays, in its order, and
/// entries already listed are not added twice. Returns what was done for the user, or
/// `None` when the tag listed them all already.
fn update_fallback_tag(
    repo: &Repo,
    scope: &Scope,
    subject: &Digest,
    entries: &[serde_json::Value],
) -> Result<Option<&'static str>> {
    use serde_json::{json, Value};
    let tag = crate::referrers::fallback_tag(subject);
    let what = format!("{}/{}:{tag}", repo.client.registry(), repo.repository);
    let (mut index, created) = match super::tree::fetch_manifest_if_held(repo, &tag)? {
        Some(found) => {
            let index: Value = crate::model::image::parse_json(&found.bytes, &shown(&what))?;
            let is_index = index["manifests"].is_array()
                && crate::model::media::is_index(
                    &crate::model::media::manifest_media_type(&found.bytes).0,
                );
            if !is_index {
                return Err(Error::Unsupported(format!(
                    "{}: the referrers fallback tag holds something other than an index of referrers; not replaced",
                    shown(&what)
                )));
            }
            let listed = index["manifests"].as_array().map_or(0, Vec::len);
            if listed + entries.len() > crate::referrers::MAX_REFERRERS_PER_INDEX {
                return Err(Error::Unsupported(format!(
                    "{}: the referrers fallback tag would list more than {} referrers",
                    shown(&what),
                    crate::referrers::MAX_REFERRERS_PER_INDEX
                )));
            }
            (index, false)
        }
        None => (
            json!({"schemaVersion": 2, "mediaType": crate::model::media::OCI_INDEX, "manifests": []}),
            true,
        ),
    };
    let listed = index["manifests"].as_array_mut().expect("checked above");
    let mut added = false;
    for entry in entries {
        if !listed.iter().any(|e| e["digest"] == entry["digest"]) {
            listed.push(entry.clone());
            added = true;
        }
    }
    if !added {
        return Ok(None);
    }
    let bytes = serde_json::to_vec(&index).expect("serializing a JSON value cannot fail");
    let pending = Pending {
        digest: Digest::of(&bytes),
        bytes,
        media_type: crate::model::media::OCI_INDEX.to_string(),
        references: vec![tag.clone()],
        referrer: None,
    };
    put_manifest(repo, scope, &tag, &pending)?;
    Ok(Some(if created {
        "created the referrers fallback tag"
    } else {
        "added to the referrers fallback tag"
    }))
}

/// `PUT` a manifest's exact bytes under `reference`, and check the digest the
/// registry computed. Returns whether the registry said it indexed the manifest's
/// subject (an `OCI-Subject` header: it has the referrers API).
fn put_manifest(repo: &Repo, scope: &Scope, reference: &str, pending: &Pending) -> Result<bool> {
    let url = repo.url(&format!("manifests/{reference}"));
    let mut response = repo.client.send(
        Method::PUT,
        &url,
        scope,
        &[("Content-Type", pending.media_type.as_str())],
        Payload::Bytes(&pending.bytes),
    )?;
    let what = format!(
        "{}/{}:{} (manifest {})",
        repo.client.registry(),
        repo.repository,
        reference,
        pending.digest.short()
    );
    if !response.status().is_success() {
        return Err(repo.client.unexpected(&shown(&what), &mut response));
    }
    if let Some(stated) = header(&response, "docker-content-digest") {
        if stated != pending.digest.to_string() {
            return Err(repo.client.error(format!(
                "{}: the registry stored the manifest as {}",
                shown(&what),
                shown(stated)
            )));
        }
    }
    Ok(header(&response, "oci-subject").is_some())
}

/// Reopens a blob's bytes from the start, for an upload the registry lost.
type Reopen<'a> = dyn Fn() -> Result<Box<dyn Read + Send>> + 'a;

/// Why an upload stopped.
enum Failure {
    /// The registry no longer knows the upload session: start again.
    Lost(Error),
    /// Anything else.
    Fatal(Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure::Fatal(e)
    }
}

impl From<Failure> for Error {
    fn from(f: Failure) -> Error {
        match f {
            Failure::Lost(e) | Failure::Fatal(e) => e,
        }
    }
}

/// The blob store of the target repository: a blob put is an upload.
struct Uploader {
    repo: Arc<Repo>,
    scope: Scope,
    /// Blobs another repository of the same registry holds, to mount from there.
    origins: HashMap<Digest, String>,
    /// Where earlier runs saw blobs in this registry: other repositories to try a
    /// mount from.
    seen: Seen,
    /// Where each layer pushed as stored can be read again from the start.
    sources: HashMap<Digest, Arc<dyn Blob>>,
    /// Blobs the registry holds (found, or put by this push), with their sizes.
    held: Mutex<HashMap<Digest, u64>>,
    /// Blobs the registry was asked for and lacks, so that it is not asked again.
    absent: Mutex<HashSet<Digest>>,
    /// Uploads at once.
    jobs: usize,
}

impl Uploader {
    /// The registry's size for `digest`, when it has the blob.
    fn head(&self, digest: &Digest) -> Result<Option<u64>> {
        let mut response = self.repo.client.send(
            Method::HEAD,
            &self.repo.url(&format!("blobs/{digest}")),
            &self.scope,
            &[],
            Payload::Empty,
        )?;
        match response.status().as_u16() {
            200 => Ok(header(&response, "content-length").and_then(|v| v.parse().ok())),
            404 => Ok(None),
            _ => Err(self
                .repo
                .client
                .unexpected(&self.repo.describe(digest), &mut response)),
        }
    }

    /// Upload `data` as blob `digest` (of `size` bytes when known); its size. When the
    /// registry drops the upload session (distribution does when a chunk is cut off
    /// mid-body), the upload starts again in a new session from `reopen`, if given.
    fn upload(
        &self,
        digest: &Digest,
        size: Option<u64>,
        data: &mut dyn Read,
        reopen: Option<&Reopen<'_>>,
    ) -> Result<u64> {
        let mut owned: Option<Box<dyn Read + Send>> = None;
        // A lost session is one more attempt of the upload, under the one retry policy.
        let mut attempts = self.repo.client.retry_policy().attempts();
        loop {
            let reader: &mut dyn Read = match owned.as_mut() {
                Some(r) => r.as_mut(),
                None => &mut *data,
            };
            match self.upload_once(digest, size, reader) {
                Ok(n) => return Ok(n),
                Err(Failure::Lost(e)) => match reopen {
                    Some(reopen) if attempts.wait_for_another(None) => {
                        owned = Some(reopen()?);
                    }
                    _ => return Err(e),
                },
                Err(Failure::Fatal(e)) => return Err(e),
            }
        }
    }

    /// Start an upload session (or mount the blob): `None` when mounted, else the
    /// session's location. A blob the source read from another repository of this
    /// registry is mounted from there; one an earlier run saw in another repository is
    /// tried from there, and uploaded when that fails (a hint may be stale, or name a
    /// repository these credentials cannot read).
    fn start(&self, digest: &Digest, what: &str) -> Result<Option<String>> {
        if let Some(from) = self.origins.get(digest) {
            return self.start_from(digest, what, Some(from));
        }
        if let Some(from) = self.seen.elsewhere(digest, &self.repo.repository) {
            if let Ok(started) = self.start_from(digest, what, Some(from)) {
                return Ok(started);
            }
        }
        self.start_from(digest, what, None)
    }

    /// [`Uploader::start`], mounting from the repository `from` when given.
    fn start_from(
        &self,
        digest: &Digest,
        what: &str,
        from: Option<&str>,
    ) -> Result<Option<String>> {
        let mut scope = self.scope.clone();
        let mut start_url = self.repo.url("blobs/uploads/");
        if let Some(from) = from {
            start_url = format!(
                "{start_url}?mount={}&from={}",
                super::client::encode(&digest.to_string()),
                super::client::encode(from)
            );
            scope = Scope::push_mounting(&self.repo.repository, from);
        }
        let mut response = self.repo.client.send(
            Method::POST,
            &start_url,
            &scope,
            &[("Content-Length", "0")],
            Payload::Empty,
        )?;
        match response.status().as_u16() {
            201 => Ok(None),
            202 => self.location(&start_url, &response, what).map(Some),
            _ => Err(self
                .repo
                .client
                .unexpected(&format!("{what}: starting an upload"), &mut response)),
        }
    }

    fn upload_once(
        &self,
        digest: &Digest,
        size: Option<u64>,
        data: &mut dyn Read,
    ) -> std::result::Result<u64, Failure> {
        let what = self.repo.describe(digest);
        let Some(mut location) = self.start(digest, &what)? else {
            // Mounted: the registry had it in the other repository.
            return match size {
                Some(size) => Ok(size),
                None => Ok(self.head(digest)?.ok_or_else(|| {
                    self.repo
                        .client
                        .error(format!("{what}: mounted, then absent"))
                })?),
            };
        };
        let mut sent: u64 = 0;
        let mut chunk = Vec::with_capacity(match size {
            Some(s) if s <= CHUNK_SIZE as u64 => s as usize,
            _ => CHUNK_SIZE,
        });
        loop {
            chunk.clear();
            (&mut *data)
                .take(CHUNK_SIZE as u64)
                .read_to_end(&mut chunk)
                .map_err(|e| Error::io(format!("reading {what}"), e))?;
            let last = chunk.len() < CHUNK_SIZE;
            if last && sent == 0 {
                // Small: one PUT with the whole body.
                break;
            }
            if !chunk.is_empty() {
                location = self.patch(&location, sent, &chunk, &what)?;
                sent += chunk.len() as u64;
                chunk.clear();
            }
            if last {
                break;
            }
        }
        let total = sent + chunk.len() as u64;
        if let Some(size) = size {
            if size != total {
                return Err(Failure::Fatal(Error::SizeMismatch {
                    file: what,
                    expected: size,
                    actual: total,
                }));
            }
        }
        let mut attempts = self.repo.client.retry_policy().attempts();
        loop {
            let sep = if location.contains('?') { '&' } else { '?' };
            let url = format!(
                "{location}{sep}digest={}",
                super::client::encode(&digest.to_string())
            );
            let length = chunk.len().to_string();
            let mut response = self.repo.client.send(
                Method::PUT,
                &url,
                &self.scope,
                &[
                    ("Content-Type", "application/octet-stream"),
                    ("Content-Length", length.as_str()),
                ],
                Payload::Bytes(&chunk),
            )?;
            let status = response.status().as_u16();
            if status == 201 {
                return Ok(total);
            }
            let error = self
                .repo
                .client
                .unexpected(&format!("{what}: finishing the upload"), &mut response);
            if status != 404 {
                return Err(Failure::Fatal(error));
            }
            // A small blob is all in memory: a new session takes it again, as one more
            // attempt under the retry policy.
            if sent > 0 || !attempts.wait_for_another(None) {
                return Err(Failure::Lost(error));
            }
            match self.start(digest, &what)? {
                Some(next) => location = next,
                None => return Ok(total),
            }
        }
    }

    /// Send `chunk`, which starts at `offset` of the blob, to the upload at
    /// `location`; returns the upload's next location. A failed `PATCH` is followed by
    /// a `GET` of the upload's status, and the chunk is sent again from the offset the
    /// registry reports; a session the registry no longer knows is [`Failure::Lost`].
    fn patch(
        &self,
        location: &str,
        offset: u64,
        chunk: &[u8],
        what: &str,
    ) -> std::result::Result<String, Failure> {
        let client = &self.repo.client;
        let mut location = location.to_string();
        let mut from = 0usize;
        let mut attempts = client.retry_policy().attempts();
        loop {
            let part = &chunk[from..];
            let start = offset + from as u64;
            let range = format!("{start}-{}", offset + chunk.len() as u64 - 1);
            let length = part.len().to_string();
            let result = client.send_once(
                Method::PATCH,
                &location,
                &self.scope,
                &[
                    ("Content-Type", "application/octet-stream"),
                    ("Content-Range", range.as_str()),
                    ("Content-Length", length.as_str()),
                ],
                Payload::Bytes(part),
            );
            let failure = match result {
                Ok(response) if response.status().as_u16() == 202 => {
                    return Ok(self.location(&location, &response, what)?);
                }
                Ok(mut response) => {
                    let status = response.status().as_u16();
                    let error = client.unexpected(&format!("{what}: uploading"), &mut response);
                    if status == 404 {
                        return Err(Failure::Lost(error));
                    }
                    if !(super::retry::retryable(status) || status == 416) {
                        return Err(Failure::Fatal(error));
                    }
                    error
                }
                Err(e) => e,
            };
            if !attempts.wait_for_another(None) {
                return Err(Failure::Fatal(failure));
            }
            // Where did the registry stop?
            let (next, resume_at) = self.upload_status(&location, what)?;
            location = next;
            if resume_at < offset || resume_at > offset + chunk.len() as u64 {
                return Err(Failure::Lost(client.error(format!(
                    "{what}: the upload stopped at byte {resume_at}, outside the chunk being sent ({offset}-{})",
                    offset + chunk.len() as u64
                ))));
            }
            from = (resume_at - offset) as usize;
            if from == chunk.len() {
                return Ok(location);
            }
        }
    }

    /// The upload's current location and the offset it accepts next.
    fn upload_status(
        &self,
        location: &str,
        what: &str,
    ) -> std::result::Result<(String, u64), Failure> {
        let client = &self.repo.client;
        let mut response = client.send(Method::GET, location, &self.scope, &[], Payload::Empty)?;
        match response.status().as_u16() {
            204 => {}
            status => {
                let error =
                    client.unexpected(&format!("{what}: the upload's status"), &mut response);
                return Err(if status == 404 {
                    Failure::Lost(error)
                } else {
                    Failure::Fatal(error)
                });
            }
        }
        let next = match header(&response, "location") {
            Some(_) => self.location(location, &response, what)?,
            None => location.to_string(),
        };
        // `Range: 0-N` names the bytes received; none received is `0-0` or absent.
        let end = header(&response, "range")
            .and_then(|v| v.split_once('-'))
            .and_then(|(_, end)| end.trim().parse::<u64>().ok());
        let resume_at = match end {
            Some(end) if end > 0 => end + 1,
            _ => 0,
        };
        Ok((next, resume_at))
    }

    /// The absolute upload URL a response's `Location` gives (relative to `from`, the
    /// URL that answered). It may be on another host (a storage service): `send`
    /// sends no credentials there.
    fn location(
        &self,
        from: &str,
        response: &ureq::http::Response<ureq::Body>,
        what: &str,
    ) -> Result<String> {
        let value = header(response, "location").ok_or_else(|| {
            self.repo
                .client
                .error(format!("{what}: the registry gave no upload location"))
        })?;
        let url = self
            .repo
            .client
            .join(from, value, &format!("{what}: the upload location"))?;
        Ok(url.to_string())
    }
}

impl Uploader {
    /// The size of blob `digest` when the registry holds it (with `size`, when known):
    /// remembered, or asked once with a `HEAD`.
    fn existing(&self, digest: &Digest, size: Option<u64>) -> Result<Option<u64>> {
        let held = lock(&self.held).get(digest).copied();
        let have = match held {
            Some(have) => Some(have),
            None if lock(&self.absent).contains(digest) => None,
            None => {
                let have = self.head(digest)?;
                match have {
                    Some(have) => {
                        lock(&self.held).insert(digest.clone(), have);
                    }
                    None => {
                        lock(&self.absent).insert(digest.clone());
                    }
                }
                have
            }
        };
        Ok(have.filter(|have| size.is_none_or(|want| want == *have)))
    }

    /// A layer compressed anew: staged in a temp file, which gives its digest (to
    /// skip it when the registry has it) and a copy to start again from.
    fn put_hashing(&mut self, data: &mut dyn Read) -> Result<(Digest, u64)> {
        let (staged, digest) = Staged::hashing(data, "a layer")?;
        let size = staged.size();
        if self.existing(&digest, Some(size))?.is_some() {
            return Ok((digest, size));
        }
        let reopen = || -> Result<Box<dyn Read + Send>> { Ok(Box::new(staged.reader()?)) };
        let mut first = reopen()?;
        self.upload(&digest, Some(size), &mut first, Some(&reopen))?;
        self.uploaded(&digest, size);
        Ok((digest, size))
    }

    /// Remember that the registry now holds `digest`: for this push, and in the
    /// cache's record for later ones.
    fn uploaded(&self, digest: &Digest, size: u64) {
        lock(&self.absent).remove(digest);
        lock(&self.held).insert(digest.clone(), size);
        if let Some(cache) = &self.repo.cache {
            cache.remember(digest, self.repo.client.registry(), &self.repo.repository);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Uploader {
    /// Upload `data` as `digest`; a lost session starts again from the source's blob.
    fn put_from_source(
        &self,
        digest: &Digest,
        size: Option<u64>,
        data: &mut dyn Read,
    ) -> Result<u64> {
        let source = self.sources.get(digest).cloned();
        let reopen = move || -> Result<Box<dyn Read + Send>> {
            match &source {
                Some(blob) => blob.open(),
                None => Err(Error::Unsupported(
                    "no copy to start the upload again from".into(),
                )),
            }
        };
        let reopen: Option<&Reopen<'_>> = if self.sources.contains_key(digest) {
            Some(&reopen)
        } else {
            None
        };
        let size = self.upload(digest, size, data, reopen)?;
        self.uploaded(digest, size);
        Ok(size)
    }
}

impl ConcurrentBlobs for &Uploader {
    fn put_blob_shared(&self, blob: &BlobInfo, data: &mut dyn Read) -> Result<u64> {
        let digest = blob.digest.ok_or_else(crate::formats::blobs::no_digest)?;
        self.put_from_source(digest, blob.size, data)
    }
    fn jobs(&self) -> usize {
        self.jobs
    }
}
