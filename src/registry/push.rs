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
use super::reference::{RegistryPrefix, RegistryRef};
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
    /// What it is put as in every repository it goes to: its digest (an index's
    /// image, a referrer), a referrer's cosign tag.
    references: Vec<String>,
    /// Its tags, by repository (an index into the destination's uploaders).
    tags: Vec<(usize, String)>,
    /// The repositories it goes to, in order.
    repositories: Vec<usize>,
    /// For an OCI referrer: its subject, and the entry a referrers index lists it with
    /// (for the fallback tag, when the registry has no referrers API).
    referrer: Option<(Digest, serde_json::Value)>,
}

impl Pending {
    fn lands_in(&mut self, repository: usize) {
        if !self.repositories.contains(&repository) {
            self.repositories.push(repository);
        }
    }
}

/// Where a push puts its images.
pub(crate) enum PushTarget {
    /// One repository: under the tag given, or each image under its own tags
    /// (`docker://HOST/REPO[:TAG]`).
    Repository(RegistryRef),
    /// Each image at its own repository path under a registry prefix
    /// (`docker://HOST/[PREFIX/]`), after its source registry when `scoped`.
    Paths {
        /// The registry and the prefix.
        prefix: RegistryPrefix,
        /// Keep each image's source registry in its path.
        scoped: bool,
        /// How each repository is reached: its own registries.conf entry and
        /// credentials.
        access: super::RepositoryAccess,
    },
}

/// Where images are pushed: a repository (and a tag, or each image's own tags), or
/// each image at its own repository path under a registry prefix. Blobs go up as they
/// are put, each once, into the repository of the first image that has it; manifests
/// wait for the commit, which mounts each blob into the other repositories whose
/// images name it and then puts each manifest after the blobs (and, for an index, the
/// manifests) it names.
pub(crate) struct RegistryDestination {
    /// The registry's client and cache (its repository is the target's, or the
    /// prefix's; by paths, each repository has a client of its own).
    base: Arc<Repo>,
    /// One per repository pushed to: the target repository's is the first.
    uploaders: Vec<Uploader>,
    target: PushTarget,
    pending: Vec<Pending>,
    /// The repository and tags of each image or index listed, in the order they are
    /// named.
    references: std::collections::VecDeque<Vec<(usize, String)>>,
    /// For a push by paths: the repository the blobs of each index's images go to.
    index_homes: HashMap<Digest, usize>,
    jobs: usize,
    seen: Arc<Seen>,
}

impl RegistryDestination {
    /// A destination pushing to `target` through `repo`, and how it takes layers.
    pub(crate) fn new(
        repo: Arc<Repo>,
        target: PushTarget,
        options: &WriteOptions,
        jobs: usize,
    ) -> Result<(RegistryDestination, LayerPolicy)> {
        if options.docker_layout.is_some() {
            return Err(Error::Usage(format!(
                "{} applies to docker-archive and docker-dir outputs, not docker",
                Setting::DockerLayout
            )));
        }
        if let PushTarget::Repository(target) = &target {
            if target.digest.is_some() {
                return Err(Error::Usage(format!(
                    "docker://{}: a push names a tag or only a repository, not a digest",
                    shown(&target.to_string())
                )));
            }
        }
        let mut layers = LayerPolicy::for_registry(
            options.layer_compression,
            options.compression_level,
            options.manifest_format,
        )?;
        if options.keep_manifests {
            layers = layers.keeping_manifests();
        }
        let seen = Arc::new(
            repo.cache
                .as_ref()
                .map(|cache| cache.seen(repo.client.registry()))
                .unwrap_or_default(),
        );
        let mut destination = RegistryDestination {
            base: Arc::clone(&repo),
            uploaders: Vec::new(),
            target,
            pending: Vec::new(),
            references: Default::default(),
            index_homes: HashMap::new(),
            jobs: jobs.max(1),
            seen,
        };
        // A push by paths asks each repository for its rights once its images are
        // placed (before any blob goes up), each with its own credentials.
        if let PushTarget::Repository(_) = &destination.target {
            let repository = repo.repository.clone();
            destination.uploader_for(&repository)?;
        }
        Ok((destination, layers))
    }

    /// The uploader of `repository` (made, and its push rights asked for, the first
    /// time): by paths, through the client its own registries.conf entry and
    /// credentials call for.
    fn uploader_for(&mut self, repository: &str) -> Result<usize> {
        if let Some(i) = self
            .uploaders
            .iter()
            .position(|u| u.repo.repository == repository)
        {
            return Ok(i);
        }
        let repo = match &self.target {
            PushTarget::Paths { prefix, access, .. } => {
                let client = access.client(&RegistryRef {
                    registry: prefix.registry.clone(),
                    repository: repository.to_string(),
                    tag: None,
                    digest: None,
                })?;
                Arc::new(Repo {
                    client,
                    repository: repository.to_string(),
                    cache: self.base.cache.clone(),
                    streaming: Default::default(),
                })
            }
            PushTarget::Repository(_) if repository == self.base.repository => {
                Arc::clone(&self.base)
            }
            PushTarget::Repository(_) => Arc::new(self.base.sibling(repository)),
        };
        let scope = Scope::push(repository);
        repo.client.authenticate(&scope)?;
        self.uploaders.push(Uploader {
            repo,
            scope,
            origins: HashMap::new(),
            seen: Arc::clone(&self.seen),
            sources: Default::default(),
            held: Mutex::default(),
            absent: Mutex::default(),
        });
        Ok(self.uploaders.len() - 1)
    }

    /// The repository and tags each image is pushed under: the destination's tag for
    /// a single image, else each image's own tags (`latest` for a single image that
    /// has none), in the target repository or, by paths, each in its own.
    fn references(&mut self, images: &[&Image]) -> Result<Vec<Vec<(usize, String)>>> {
        let mut all: Vec<Vec<(usize, String)>> = Vec::with_capacity(images.len());
        match &self.target {
            PushTarget::Repository(target) => {
                if let Some(tag) = &target.tag {
                    if images.len() != 1 {
                        return Err(Error::Selection(format!(
                            "docker://{} names one image but {} are selected; name only the repository (docker://HOST/REPO) to push each image to its own tag there, or end the destination with / (docker://HOST/ or docker://HOST/PREFIX/) to push each to its own repository",
                            shown(&target.to_string()),
                            images.len()
                        )));
                    }
                    return Ok(vec![vec![(0, tag.clone())]]);
                }
                for (i, image) in images.iter().enumerate() {
                    let mut tags: Vec<(usize, String)> = Vec::new();
                    for r in &image.tags {
                        if !tags.iter().any(|(_, t)| t == r.tag()) {
                            tags.push((0, r.tag().to_string()));
                        }
                    }
                    if tags.is_empty() {
                        if images.len() > 1 {
                            return Err(Error::Selection(format!(
                                "image @{i} has no tag to push it under; pick it with {} and name a tag in the destination",
                                Setting::Image
                            )));
                        }
                        tags.push((0, "latest".into()));
                    }
                    all.push(tags);
                }
            }
            PushTarget::Paths { prefix, scoped, .. } => {
                let (prefix, scoped) = (prefix.clone(), *scoped);
                // Every name placed first, so that nothing is asked of the registry
                // for a push that is refused.
                let mut placed: Vec<Vec<(String, String)>> = Vec::with_capacity(images.len());
                for image in images {
                    if image.tags.is_empty() {
                        return Err(Error::PushUnplaced {
                            image: shown(&image.display_name()),
                            destination: shown(&prefix.to_string()),
                            name: None,
                            problem: None,
                        });
                    }
                    let mut names = Vec::new();
                    for name in &image.tags {
                        let repository = prefix.repository_for(name, scoped).map_err(|why| {
                            Error::PushUnplaced {
                                image: shown(&image.display_name()),
                                destination: shown(&prefix.to_string()),
                                name: Some(shown(&name.to_string())),
                                problem: Some(why.to_string()),
                            }
                        })?;
                        let entry = (repository, name.tag().to_string());
                        if !names.contains(&entry) {
                            names.push(entry);
                        }
                    }
                    placed.push(names);
                }
                for (i, names) in placed.iter().enumerate() {
                    for name in names {
                        if let Some(j) = placed[..i].iter().position(|n| n.contains(name)) {
                            return Err(Error::PushCollision {
                                first: shown(&images[j].display_name()),
                                second: shown(&images[i].display_name()),
                                target: shown(&format!(
                                    "{}/{}:{}",
                                    prefix.registry, name.0, name.1
                                )),
                                scoped_would_help: !scoped,
                            });
                        }
                    }
                }
                if let PushTarget::Paths { access, .. } = &self.target {
                    for (repository, _) in placed.iter().flatten() {
                        access.check(&RegistryRef {
                            registry: prefix.registry.clone(),
                            repository: repository.clone(),
                            tag: None,
                            digest: None,
                        })?;
                    }
                }
                for names in placed {
                    let mut tags = Vec::with_capacity(names.len());
                    for (repository, tag) in names {
                        tags.push((self.uploader_for(&repository)?, tag));
                    }
                    all.push(tags);
                }
                return Ok(all);
            }
        }
        for (i, tags) in all.iter().enumerate() {
            for tag in tags {
                if let Some(j) = all[..i].iter().position(|t| t.contains(tag)) {
                    let PushTarget::Repository(target) = &self.target else {
                        unreachable!("checked above")
                    };
                    return Err(Error::PushCollision {
                        first: format!("@{j} ({})", shown(&images[j].display_name())),
                        second: format!("@{i} ({})", shown(&images[i].display_name())),
                        target: format!(
                            "{}/{}:{}",
                            target.registry,
                            shown(&target.repository),
                            shown(&tag.1)
                        ),
                        scoped_would_help: false,
                    });
                }
            }
        }
        Ok(all)
    }

    /// The uploader the blobs of `image` go to: the repository of its first name (of
    /// its index's, for an image of an index), the target's when there is one.
    fn home(&self, image: &Image) -> usize {
        let PushTarget::Paths { prefix, scoped, .. } = &self.target else {
            return 0;
        };
        let by_name = image
            .tags
            .first()
            .and_then(|name| prefix.repository_for(name, *scoped).ok())
            .and_then(|r| self.uploaders.iter().position(|u| u.repo.repository == r));
        by_name
            .or_else(|| {
                let index = image.index.as_ref()?;
                self.index_homes.get(&index.descriptor.digest).copied()
            })
            .unwrap_or(0)
    }

    /// The size of `digest` when this push already has it in some repository of the
    /// registry (the commit mounts it where else it is needed), or the registry has
    /// it in `home`'s.
    fn existing(&self, home: usize, digest: &Digest, size: Option<u64>) -> Result<Option<u64>> {
        for uploader in &self.uploaders {
            if let Some(have) = lock(&uploader.held).get(digest).copied() {
                if size.is_none_or(|want| want == have) {
                    return Ok(Some(have));
                }
            }
        }
        self.uploaders[home].existing(digest, size)
    }

    /// Put each blob the manifests name into each repository they go to that lacks
    /// it: mounted from the repository this push put it in (or found it in), or, when
    /// the registry does not mount, copied from there.
    fn mount_across(&self) -> Result<()> {
        if self.uploaders.len() < 2 {
            return Ok(());
        }
        let mut done: HashSet<(usize, Digest)> = HashSet::new();
        for pending in &self.pending {
            let blobs = manifest_blobs(&pending.bytes);
            for &r in &pending.repositories {
                for digest in &blobs {
                    if !done.insert((r, digest.clone())) {
                        continue;
                    }
                    let into = &self.uploaders[r];
                    if lock(&into.held).contains_key(digest) {
                        continue;
                    }
                    let Some((from, size)) = self.uploaders.iter().find_map(|u| {
                        lock(&u.held)
                            .get(digest)
                            .map(|size| (Arc::clone(&u.repo), *size))
                    }) else {
                        // Not put by this push (a foreign layer): the registry says.
                        continue;
                    };
                    into.mount_from(digest, size, from)?;
                }
            }
        }
        Ok(())
    }
}

/// The blobs a manifest names (config, layers, an artifact's blobs); none for an
/// index or what does not parse.
fn manifest_blobs(bytes: &[u8]) -> Vec<Digest> {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let config = std::iter::once(&value["config"]);
    let listed = ["layers", "blobs"]
        .iter()
        .filter_map(|k| value[*k].as_array())
        .flatten();
    for entry in config.chain(listed) {
        if let Some(digest) = entry["digest"].as_str().and_then(|d| Digest::parse(d).ok()) {
            if !out.contains(&digest) {
                out.push(digest);
            }
        }
    }
    out
}

/// The manifests an index lists.
fn index_members(bytes: &[u8]) -> Vec<Digest> {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return Vec::new();
    };
    value["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["digest"].as_str().and_then(|d| Digest::parse(d).ok()))
        .collect()
}

/// Blobs put concurrently, each into the repository of the image it is put for.
struct Routed<'a>(&'a RegistryDestination);

impl ConcurrentBlobs for Routed<'_> {
    fn put_blob_shared(&self, blob: &BlobInfo, data: &mut dyn Read) -> Result<u64> {
        let digest = blob.digest.ok_or_else(crate::formats::blobs::no_digest)?;
        self.0.uploaders[self.0.home(blob.image)].put_from_source(digest, blob.size, data)
    }
    fn jobs(&self) -> usize {
        self.0.jobs
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
        let references = self.references(&listed)?;
        for (image, tags) in listed.iter().zip(&references) {
            if let (Some(index), Some((home, _))) = (&image.index, tags.first()) {
                self.index_homes
                    .insert(index.descriptor.digest.clone(), *home);
            }
        }
        self.references.extend(references);
        let registry = self.base.client.registry().to_string();
        let mut sources: HashMap<Digest, Arc<dyn Blob>> = HashMap::new();
        // Blobs another repository of this registry holds, by the repository.
        let mut origins: Vec<(Digest, String)> = Vec::new();
        for image in images {
            let mut image_origin = None;
            for layer in &image.layers {
                let (Some(digest), Some(blob)) = (&layer.digest, &layer.blob) else {
                    continue;
                };
                sources.insert(digest.clone(), Arc::clone(blob));
                if let Some((from, repository)) =
                    super::tree::RegistryBlob::of(blob.as_ref()).map(|b| b.origin())
                {
                    if from == registry {
                        origins.push((digest.clone(), repository.to_string()));
                        image_origin = Some(repository.to_string());
                    }
                }
            }
            // The config came from the repository its layers did: mounted from there
            // too (a registry that lacks it there answers with an upload session).
            if let Some(repository) = image_origin {
                origins.push((image.config.digest.clone(), repository));
            }
        }
        let sources = Arc::new(sources);
        for uploader in &mut self.uploaders {
            uploader.sources = Arc::clone(&sources);
            for (digest, repository) in &origins {
                if *repository != uploader.repo.repository {
                    uploader.origins.insert(digest.clone(), repository.clone());
                }
            }
        }
        Ok(Vec::new())
    }

    fn try_reusing_blob(&mut self, blob: &BlobInfo) -> Result<Option<u64>> {
        match blob.digest {
            Some(digest) => self.existing(self.home(blob.image), digest, blob.size),
            None => Ok(None),
        }
    }

    fn put_blob(&mut self, blob: &BlobInfo, data: &mut dyn Read) -> Result<(Digest, u64)> {
        let home = self.home(blob.image);
        match blob.digest {
            Some(digest) => {
                let size = self.uploaders[home].put_from_source(digest, blob.size, data)?;
                Ok((digest.clone(), size))
            }
            None => {
                // A layer compressed anew: staged in a temp file, which gives its
                // digest (to skip it when the registry has it) and a copy to start
                // again from.
                let (staged, digest) = Staged::hashing(data, "a layer")?;
                let size = staged.size();
                if self.existing(home, &digest, Some(size))?.is_some() {
                    return Ok((digest, size));
                }
                let uploader = &self.uploaders[home];
                let reopen = || -> Result<Box<dyn Read + Send>> { Ok(Box::new(staged.reader()?)) };
                let mut first = reopen()?;
                uploader.upload(&digest, Some(size), &mut first, Some(&reopen))?;
                uploader.uploaded(&digest, size);
                Ok((digest, size))
            }
        }
    }

    fn concurrent(&self) -> Option<Box<dyn ConcurrentBlobs + '_>> {
        Some(Box::new(Routed(self)))
    }

    fn put_manifest(&mut self, manifest: &ManifestInfo) -> Result<()> {
        // An index's images go in by digest, before the index; the rest waits for
        // its names.
        let digest = &manifest.descriptor.digest;
        // A referrer goes in under its cosign tag, or by digest (its subject then lists
        // it, through the referrers API or the fallback tag), wherever its subject is.
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
        let repositories = match &manifest.attached {
            Some(attached) => self
                .pending
                .iter()
                .rev()
                .find(|p| p.digest == *attached.subject)
                .map(|p| p.repositories.clone())
                .unwrap_or_default(),
            None => Vec::new(),
        };
        self.pending.push(Pending {
            bytes: manifest.bytes.to_vec(),
            media_type: manifest.descriptor.media_type.clone(),
            digest: digest.clone(),
            references,
            tags: Vec::new(),
            repositories,
            referrer,
        });
        Ok(())
    }

    fn put_names(&mut self, manifest: &Descriptor, _image: &Image) -> Result<()> {
        let references = self.references.pop_front().ok_or_else(|| {
            Error::Unsupported("more images named than prepared for the push".into())
        })?;
        let at = self
            .pending
            .iter()
            .rposition(|p| p.digest == manifest.digest)
            .ok_or_else(|| {
                Error::Unsupported(format!("{}: named before it was put", manifest.digest))
            })?;
        let pending = &mut self.pending[at];
        for reference in references {
            pending.lands_in(reference.0);
            if !pending.tags.contains(&reference) {
                pending.tags.push(reference);
            }
        }
        // What an index lists goes wherever the index does.
        let repositories = pending.repositories.clone();
        let members = index_members(&pending.bytes);
        for p in &mut self.pending[..at] {
            if members.contains(&p.digest) {
                for &r in &repositories {
                    p.lands_in(r);
                }
            }
        }
        Ok(())
    }

    fn commit(mut self: Box<Self>) -> Result<CommitReport> {
        for pending in &mut self.pending {
            if pending.repositories.is_empty() {
                pending.lands_in(0);
            }
        }
        self.mount_across()?;
        let registry = self.base.client.registry().to_string();
        let mut report = CommitReport::default();
        // Referrers the registry did not index itself (no `OCI-Subject` in its answer),
        // by repository and subject: the fallback tag lists them.
        let mut unindexed: Vec<(usize, Digest, Vec<serde_json::Value>)> = Vec::new();
        for pending in &self.pending {
            for &r in &pending.repositories {
                let uploader = &self.uploaders[r];
                let repo = &uploader.repo;
                let tags = pending
                    .tags
                    .iter()
                    .filter(|(at, _)| *at == r)
                    .map(|(_, t)| t);
                for reference in pending.references.iter().chain(tags) {
                    let indexed = put_manifest(repo, &uploader.scope, reference, pending)?;
                    if let (Some((subject, entry)), false) = (&pending.referrer, indexed) {
                        match unindexed
                            .iter_mut()
                            .find(|(at, s, _)| *at == r && s == subject)
                        {
                            Some((_, _, entries)) => entries.push(entry.clone()),
                            None => unindexed.push((r, subject.clone(), vec![entry.clone()])),
                        }
                    }
                    // Each tag, as the destination now holds it: its manifest digest.
                    if *reference != pending.digest.to_string() {
                        report.notes.push(format!(
                            "pushed docker://{registry}/{}:{}@{}",
                            shown(&repo.repository),
                            shown(reference),
                            pending.digest
                        ));
                        report.stored.push((
                            format!("docker://{registry}/{}:{reference}", repo.repository),
                            pending.digest.clone(),
                        ));
                    }
                }
            }
        }
        for (r, subject, entries) in &unindexed {
            let uploader = &self.uploaders[*r];
            if let Some(note) =
                update_fallback_tag(&uploader.repo, &uploader.scope, subject, entries)?
            {
                report.notes.push(format!(
                    "{note} docker://{registry}/{}:{}",
                    shown(&uploader.repo.repository),
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
    let tag = crate::referrers::fallback_tag(subject);
    let what = format!("{}/{}:{tag}", repo.client.registry(), repo.repository);
    let (mut listed, created) = match super::tree::fetch_manifest_if_held(repo, &tag)? {
        Some(found) => {
            let is_index = crate::model::media::is_index(
                &crate::model::media::manifest_media_type(&found.bytes).0,
            );
            let index: serde_json::Value =
                crate::model::image::parse_json(&found.bytes, &shown(&what))?;
            match index["manifests"].as_array() {
                Some(listed) if is_index => (listed.clone(), false),
                _ => {
                    return Err(Error::Unsupported(format!(
                        "{}: the referrers fallback tag holds something other than an index of referrers; not replaced",
                        shown(&what)
                    )))
                }
            }
        }
        None => (Vec::new(), true),
    };
    if !crate::referrers::add_listed(&mut listed, entries, &shown(&what))? {
        return Ok(None);
    }
    let bytes = crate::referrers::referrers_index(&listed);
    let pending = Pending {
        digest: Digest::of(&bytes),
        bytes,
        media_type: crate::model::media::OCI_INDEX.to_string(),
        references: vec![tag.clone()],
        tags: Vec::new(),
        repositories: Vec::new(),
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
    let what = format!(
        "{}/{}:{} (manifest {})",
        repo.client.registry(),
        repo.repository,
        reference,
        pending.digest.short()
    );
    // A blob another run is committing into the same repository at this moment can
    // read as unknown for an instant (distribution links it after its upload ends):
    // the manifest is put again after a short wait, a few times, before that counts.
    let mut waits = [100u64, 400, 1600].into_iter();
    let response = loop {
        let mut response = repo.client.send(
            Method::PUT,
            &url,
            scope,
            &[("Content-Type", pending.media_type.as_str())],
            Payload::Bytes(&pending.bytes),
        )?;
        if response.status().is_success() {
            break response;
        }
        let status = response.status().as_u16();
        let error = repo.client.unexpected(&shown(&what), &mut response);
        match waits.next() {
            Some(ms) if status == 400 && error.to_string().contains("BLOB_UNKNOWN") => {
                std::thread::sleep(std::time::Duration::from_millis(ms));
            }
            _ => return Err(error),
        }
    };
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
    seen: Arc<Seen>,
    /// Where each layer pushed as stored can be read again from the start.
    sources: Arc<HashMap<Digest, Arc<dyn Blob>>>,
    /// Blobs the registry holds (found, or put by this push), with their sizes.
    held: Mutex<HashMap<Digest, u64>>,
    /// Blobs the registry was asked for and lacks, so that it is not asked again.
    absent: Mutex<HashSet<Digest>>,
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
        self.upload_mounting(digest, size, data, reopen, None)
    }

    /// [`Uploader::upload`], trying a mount from the repository `from` first.
    fn upload_mounting(
        &self,
        digest: &Digest,
        size: Option<u64>,
        data: &mut dyn Read,
        reopen: Option<&Reopen<'_>>,
        from: Option<&str>,
    ) -> Result<u64> {
        let mut owned: Option<Box<dyn Read + Send>> = None;
        // A lost session is one more attempt of the upload, under the one retry policy.
        let mut attempts = self.repo.client.retry_policy().attempts();
        loop {
            let reader: &mut dyn Read = match owned.as_mut() {
                Some(r) => r.as_mut(),
                None => &mut *data,
            };
            match self.upload_once(digest, size, reader, from) {
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
    fn start(&self, digest: &Digest, what: &str, from: Option<&str>) -> Result<Option<String>> {
        if let Some(from) = from.or(self.origins.get(digest).map(String::as_str)) {
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
        from: Option<&str>,
    ) -> std::result::Result<u64, Failure> {
        let what = self.repo.describe(digest);
        let Some(mut location) = self.start(digest, &what, from)? else {
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
            match self.start(digest, &what, from)? {
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

impl Uploader {
    /// Put `digest` (of `size` bytes), which the repository of `from` (of this
    /// registry) holds: mounted from there, or copied from there when the registry
    /// answers the mount with an upload session instead.
    fn mount_from(&self, digest: &Digest, size: u64, from: Arc<Repo>) -> Result<()> {
        let repository = from.repository.clone();
        let open = move || -> Result<Box<dyn Read + Send>> {
            Ok(Box::new(super::fetch::Fetch::new(
                Arc::clone(&from),
                digest.clone(),
                size,
                0,
            )))
        };
        let mut first = Lazy {
            open: &open,
            inner: None,
        };
        self.upload_mounting(
            digest,
            Some(size),
            &mut first,
            Some(&open),
            Some(&repository),
        )?;
        self.uploaded(digest, size);
        Ok(())
    }
}

/// A reader opened on its first read: a mount that succeeds reads nothing.
struct Lazy<'a> {
    open: &'a Reopen<'a>,
    inner: Option<Box<dyn Read + Send>>,
}

impl Read for Lazy<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.inner.is_none() {
            self.inner = Some((self.open)().map_err(Error::into_io)?);
        }
        self.inner.as_mut().expect("opened above").read(buf)
    }
}
