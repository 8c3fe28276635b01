//! The registry client's own commands, beside pull and push: list a registry's
//! repositories (`/v2/_catalog`), group a repository's tags by the manifest they
//! name, put a manifest under more tags, delete a manifest, and say which digest a
//! reference resolves to. Every manifest read is verified (`tree::fetch_manifest`);
//! every list is read page by page, bounded.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use ureq::http::Method;

use super::client::{header, Client, Payload, Scope, MAX_MANIFEST_SIZE};
use super::fetch::Repo;
use super::tree::{fetch_manifest, Fetched};
use super::{for_each_listed, ListKey, Listing, RegistryOptions, RegistryRef, PREFIX};
use crate::error::{Error, Result};
use crate::model::digest::Digest;
use crate::model::image::{Descriptor, Image, Platform};
use crate::text::shown;

/// Most pages of a catalog followed.
const MAX_CATALOG_PAGES: usize = 10_000;

/// Most repositories [`list_repositories`] collects and [`for_each_repository`] hands
/// over.
pub const MAX_LISTED_REPOSITORIES: usize = 1_000_000;

/// How many tags [`tags_by_digest`] resolves unless told otherwise.
pub const DEFAULT_MAX_TAGS: usize = 1_000;

/// Options of [`for_each_repository`] and [`list_repositories`].
#[derive(Clone, Debug, Default)]
pub struct CatalogOptions {
    /// How to reach the registry.
    pub registry: RegistryOptions,
    /// How many repositories to ask for per page (`?n=`); `None` lets the registry
    /// choose.
    pub page_size: Option<u32>,
}

impl CatalogOptions {
    /// Options with `registry` and the registry's own page size.
    pub fn new(registry: RegistryOptions) -> CatalogOptions {
        CatalogOptions {
            registry,
            ..Default::default()
        }
    }
}

/// The registry `location` names (`docker://HOST[:PORT]`, nothing after it but an
/// optional `/`), checked as a reference's registry is.
fn registry_of(location: &str, command: &str) -> Result<String> {
    let usage = || {
        Error::Usage(format!(
            "{}: {command} takes a registry: docker://HOST[:PORT]",
            shown(location)
        ))
    };
    let host = location.strip_prefix(PREFIX).ok_or_else(usage)?;
    let host = host.strip_suffix('/').unwrap_or(host);
    if host.is_empty() || host.contains('/') || host.contains('@') {
        return Err(usage());
    }
    // A host is what a reference takes for one: with a dot or a port, or localhost.
    let parsed = RegistryRef::parse(&format!("{host}/x"), true).map_err(|_| usage())?;
    if parsed.registry != host {
        return Err(usage());
    }
    Ok(parsed.registry)
}

/// A client for the registry `host` as `reference` names it, as registries.conf
/// says it is reached directly (refused when blocked, unchecked TLS when insecure).
fn connect_host(host: &str, options: &RegistryOptions) -> Result<Client> {
    // What the references of that registry resolve to (docker.io's API host).
    let reference = RegistryRef::parse(&format!("{host}/x"), true)?;
    let endpoint = super::conf::RegistriesConf::load(options)?.direct_endpoint(&reference)?;
    let credentials = super::credentials::lookup(
        host,
        None,
        &super::credentials::CredentialOptions {
            creds: options.creds.clone(),
            authfile: options.authfile.clone(),
        },
        &super::credentials::Environment::from_process(),
    )?;
    let options = RegistryOptions {
        tls_verify: options.tls_verify && !endpoint.insecure,
        ..options.clone()
    };
    Client::connect(host, reference.api_host(), credentials, &options)
}

/// Hand each repository of the registry `location` names (`docker://HOST[:PORT]`) to
/// `on_repository` as its page of `/v2/_catalog` arrives, following `Link`
/// pagination on the registry's own origin; returns how many there were. One page
/// (at most 4 MiB) is held at a time; more than [`MAX_LISTED_REPOSITORIES`] is an
/// error.
///
/// ```no_run
/// // no_run: it needs a registry on the network.
/// use dockhand::{for_each_repository, CatalogOptions, RegistryOptions};
///
/// let options = CatalogOptions::new(RegistryOptions::default());
/// let count = for_each_repository("docker://registry.example.com", &options, &mut |name| {
///     println!("{name}");
///     Ok(())
/// })?;
/// # Ok::<(), dockhand::Error>(())
/// ```
pub fn for_each_repository(
    location: &str,
    options: &CatalogOptions,
    on_repository: &mut dyn FnMut(&str) -> Result<()>,
) -> Result<usize> {
    let host = registry_of(location, "catalog")?;
    let client = connect_host(&host, &options.registry)?;
    let mut url = client.url("/v2/_catalog");
    if let Some(n) = options.page_size {
        url += &format!("?n={n}");
    }
    let listing = Listing {
        url,
        scope: Scope::catalog(),
        what: format!("{host}: listing repositories"),
        key: ListKey::Repositories,
        max_pages: MAX_CATALOG_PAGES,
        not_found: "the registry serves no catalog",
    };
    let mut count = 0;
    for_each_listed(&client, listing, &mut |name| {
        if count >= MAX_LISTED_REPOSITORIES {
            return Err(client.error(format!(
                "the catalog lists more than {MAX_LISTED_REPOSITORIES} repositories"
            )));
        }
        // A repository name is at most 255 characters of a reference's path: anything
        // else is refused before it is kept or shown.
        if name.is_empty()
            || name.len() > 255
            || RegistryRef::parse(&format!("{host}/{name}"), true).is_err()
        {
            return Err(client.error(format!(
                "the catalog names an invalid repository {}",
                shown(name)
            )));
        }
        count += 1;
        on_repository(name).map(|()| true)
    })
}

/// The repositories of the registry `location` names, in the registry's order (see
/// [`for_each_repository`]).
pub fn list_repositories(location: &str, options: &CatalogOptions) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for_each_repository(location, options, &mut |name| {
        names.push(name.to_string());
        Ok(())
    })?;
    Ok(names)
}

/// One manifest of a repository and the tags that name it, as [`tags_by_digest`]
/// groups them.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct TagGroup {
    /// The manifest's digest.
    pub digest: Digest,
    /// Its media type.
    #[serde(rename = "mediaType")]
    pub media_type: String,
    /// The tags naming it, in the registry's order.
    pub tags: Vec<String>,
    /// An image's platform (from its config), or every platform an index lists.
    pub platforms: Vec<String>,
    /// When the image was created (its config's `created`); `None` for an index, or
    /// a config without one.
    pub created: Option<String>,
    /// True for a multi-platform index.
    pub index: bool,
}

/// A repository's tags grouped by manifest ([`tags_by_digest`]).
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct TagDigests {
    /// The repository, `HOST/REPO`.
    pub repository: String,
    /// One group per manifest, in the order its first tag was listed.
    pub groups: Vec<TagGroup>,
    /// How many tags were resolved.
    pub tags: usize,
    /// True when the repository has more tags than the cap, which were not resolved.
    pub truncated: bool,
}

/// Group the tags of the repository `location` names (`docker://HOST/REPO`) by the
/// manifest each resolves to, with each image's platform and creation time (its
/// config fetched once per manifest) or each platform an index lists. At most
/// `max_tags` tags are resolved (one manifest request each); the rest are counted as
/// left out (`truncated`).
pub fn tags_by_digest(
    location: &str,
    options: &RegistryOptions,
    max_tags: usize,
) -> Result<TagDigests> {
    let mut tags = Vec::new();
    let mut truncated = false;
    let text = location.strip_prefix(PREFIX).unwrap_or(location);
    let reference = RegistryRef::parse(text, true)?;
    let endpoint = super::conf::RegistriesConf::load(options)?.direct_endpoint(&reference)?;
    let repo = super::repo(&endpoint, options, false)?;
    for_each_listed(&repo.client, super::tag_listing(&repo), &mut |tag| {
        if tags.len() >= max_tags {
            truncated = true;
            return Ok(false);
        }
        // Checked before it is kept: a tag is at most 128 characters.
        if !crate::model::reference::valid_tag(tag) {
            return Err(repo
                .client
                .error(format!("the tag list names an invalid tag {}", shown(tag))));
        }
        tags.push(tag.to_string());
        Ok(true)
    })?;
    let mut groups: Vec<TagGroup> = Vec::new();
    let mut by_digest: HashMap<Digest, usize> = HashMap::new();
    // Configs by digest: two manifests may share one.
    let mut configs: HashMap<Digest, (String, Option<String>)> = HashMap::new();
    for tag in &tags {
        let fetched = fetch_manifest(&repo, tag)?;
        if let Some(&n) = by_digest.get(&fetched.digest) {
            groups[n].tags.push(tag.clone());
            continue;
        }
        let group = describe(&repo, &fetched, tag, &mut configs)?;
        by_digest.insert(fetched.digest.clone(), groups.len());
        groups.push(group);
    }
    Ok(TagDigests {
        repository: format!("{}/{}", reference.registry, reference.repository),
        groups,
        tags: tags.len(),
        truncated,
    })
}

/// What a manifest is: its platforms and creation time.
fn describe(
    repo: &Repo,
    fetched: &Fetched,
    tag: &str,
    configs: &mut HashMap<Digest, (String, Option<String>)>,
) -> Result<TagGroup> {
    #[derive(Deserialize)]
    struct PlatformDoc {
        os: Option<String>,
        architecture: Option<String>,
        variant: Option<String>,
    }
    #[derive(Deserialize)]
    struct Member {
        platform: Option<PlatformDoc>,
    }
    #[derive(Deserialize)]
    struct ConfigRef {
        digest: String,
    }
    #[derive(Deserialize)]
    struct Doc {
        manifests: Option<Vec<Member>>,
        config: Option<ConfigRef>,
        architecture: Option<String>,
    }
    let platform = |p: &PlatformDoc| {
        Platform {
            os: p.os.clone().unwrap_or_default(),
            architecture: p.architecture.clone().unwrap_or_default(),
            variant: p.variant.clone().filter(|v| !v.is_empty()),
        }
        .to_string()
    };
    let what = format!("{}/{}:{tag}", repo.client.registry(), repo.repository);
    let doc: Doc = crate::model::image::parse_json(&fetched.bytes, &shown(&what))?;
    let mut group = TagGroup {
        digest: fetched.digest.clone(),
        media_type: fetched.media_type.clone(),
        tags: vec![tag.to_string()],
        platforms: Vec::new(),
        created: None,
        index: false,
    };
    if let Some(members) = doc.manifests {
        group.index = true;
        let mut seen = std::collections::HashSet::new();
        for member in &members {
            let name = member
                .platform
                .as_ref()
                .map_or_else(|| "unknown".to_string(), platform);
            if seen.insert(name.clone()) {
                group.platforms.push(name);
            }
        }
    } else if let Some(config) = doc.config {
        let digest = Digest::parse(&config.digest).map_err(|e| {
            repo.client
                .error(format!("{}: the config digest: {e}", shown(&what)))
        })?;
        if !configs.contains_key(&digest) {
            let bytes = fetch_config(repo, &digest)?;
            #[derive(Deserialize)]
            struct Config {
                #[serde(flatten)]
                platform: PlatformDoc,
                created: Option<String>,
            }
            let config: Config = crate::model::image::parse_json(
                &bytes,
                &format!("{} (config {})", shown(&what), digest.short()),
            )?;
            configs.insert(digest.clone(), (platform(&config.platform), config.created));
        }
        let (platform, created) = configs[&digest].clone();
        group.platforms.push(platform);
        group.created = created;
    } else if fetched.schema1 {
        // Schema 1 names its architecture; its configs are inside its history.
        let architecture = doc.architecture.unwrap_or_default();
        group.platforms.push(format!("linux/{architecture}"));
    }
    Ok(group)
}

/// The config blob `digest` of `repo`, read whole (at most 4 MiB) and verified.
fn fetch_config(repo: &Repo, digest: &Digest) -> Result<Vec<u8>> {
    let what = repo.describe(digest);
    let mut response = repo.client.send(
        Method::GET,
        &repo.url(&format!("blobs/{digest}")),
        &Scope::pull(&repo.repository),
        &[],
        Payload::Empty,
    )?;
    if response.status() != 200 {
        return Err(repo.client.unexpected(&shown(&what), &mut response));
    }
    let bytes = repo
        .client
        .read_small(&mut response, MAX_MANIFEST_SIZE)
        .map_err(|e| match e {
            Error::Unsupported(_) => repo.client.error(format!(
                "{}: the config is over the {MAX_MANIFEST_SIZE}-byte limit",
                shown(&what)
            )),
            other => other,
        })?;
    let actual = Digest::of(&bytes);
    if &actual != digest {
        return Err(Error::DigestMismatch {
            file: shown(&what),
            expected: digest.clone(),
            actual,
        });
    }
    Ok(bytes)
}

/// The repository and the manifest a reference (`docker://HOST/REPO:TAG` or
/// `@sha256:...`) resolves to, fetched and verified.
fn resolve(location: &str, options: &RegistryOptions, command: &str) -> Result<(Repo, Fetched)> {
    let text = location.strip_prefix(PREFIX).ok_or_else(|| {
        Error::Usage(format!(
            "{}: {command} takes a registry image: docker://HOST/REPO:TAG or docker://HOST/REPO@sha256:...",
            shown(location)
        ))
    })?;
    let reference = RegistryRef::parse(text, false)?;
    // Tags are set and deleted at the registry itself, never at a mirror.
    let endpoint = super::conf::RegistriesConf::load(options)?.direct_endpoint(&reference)?;
    let repo = Repo {
        client: std::sync::Arc::new(super::connect(&endpoint, options)?),
        repository: reference.repository.clone(),
        cache: None,
        streaming: Default::default(),
    };
    let fetched = fetch_manifest(&repo, &reference.manifest_reference())?;
    Ok((repo, fetched))
}

/// The manifest digest the registry image `location` names resolves to
/// (`docker://HOST/REPO:TAG`; for a multi-platform image, its index), from the
/// manifest's bytes, fetched and verified against what the registry states; no blob
/// is read. A signed schema 1 manifest's digest is its payload's, as the registry
/// and skopeo compute it.
pub fn registry_digest(location: &str, options: &RegistryOptions) -> Result<Digest> {
    Ok(resolve(location, options, "digest")?.1.digest)
}

/// What [`tag_image`] did.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct TagReport {
    /// The repository, `HOST/REPO`.
    pub repository: String,
    /// The manifest's digest, which every new tag now names.
    pub digest: Digest,
    /// Its media type, as it was put.
    pub media_type: String,
    /// The tags put, in the order given.
    pub tags: Vec<String>,
}

/// Put the manifest the registry image `location` names (`docker://HOST/REPO:TAG` or
/// `@sha256:...`) under each of `new_tags` in the same repository: its exact bytes,
/// with its media type, so its digest is unchanged and no blob moves. The registry's
/// `Docker-Content-Digest` for each must be that digest.
pub fn tag_image(
    location: &str,
    new_tags: &[String],
    options: &RegistryOptions,
) -> Result<TagReport> {
    for tag in new_tags {
        if !crate::model::reference::valid_tag(tag) {
            return Err(Error::Usage(format!(
                "{}: not a valid tag (up to 128 of A-Z a-z 0-9 _ . -, not starting with . or -)",
                shown(tag)
            )));
        }
    }
    let (repo, fetched) = resolve(location, options, "tag")?;
    let scope = Scope::push(&repo.repository);
    for tag in new_tags {
        let what = format!(
            "{}/{}:{tag} (manifest {})",
            repo.client.registry(),
            repo.repository,
            fetched.digest.short()
        );
        let mut response = repo.client.send(
            Method::PUT,
            &repo.url(&format!("manifests/{tag}")),
            &scope,
            &[("Content-Type", fetched.media_type.as_str())],
            Payload::Bytes(&fetched.bytes),
        )?;
        if !response.status().is_success() {
            return Err(repo.client.unexpected(&shown(&what), &mut response));
        }
        if let Some(stated) = header(&response, "docker-content-digest") {
            if stated != fetched.digest.to_string() {
                return Err(repo.client.error(format!(
                    "{}: the registry stored the manifest as {}",
                    shown(&what),
                    shown(stated)
                )));
            }
        }
    }
    Ok(TagReport {
        repository: format!("{}/{}", repo.client.registry(), repo.repository),
        digest: fetched.digest,
        media_type: fetched.media_type,
        tags: new_tags.to_vec(),
    })
}

/// Delete the manifest the registry image `location` names (`docker://HOST/REPO@sha256:...`,
/// or `:TAG`, resolved to its digest first, as `skopeo delete` does): `DELETE
/// /v2/REPO/manifests/DIGEST`, which removes every tag naming it. Returns the digest
/// deleted. A registry that does not allow deleting (distribution answers 405
/// `UNSUPPORTED` unless `storage.delete.enabled` is set) is an error saying so.
pub fn delete_image(location: &str, options: &RegistryOptions) -> Result<Digest> {
    let (repo, fetched) = resolve(location, options, "delete")?;
    let digest = fetched.digest;
    let what = format!("{}/{}@{}", repo.client.registry(), repo.repository, digest);
    let mut response = repo.client.send(
        Method::DELETE,
        &repo.url(&format!("manifests/{digest}")),
        &Scope::delete(&repo.repository),
        &[],
        Payload::Empty,
    )?;
    match response.status().as_u16() {
        200..=299 => Ok(digest),
        405 => Err(repo.client.error(format!(
            "{}: the registry does not allow deleting (distribution: storage.delete.enabled=true)",
            shown(&what)
        ))),
        404 => {
            Err(repo
                .client
                .manifest_unknown(&repo.repository, &digest.to_string(), &mut response))
        }
        _ => Err(repo.client.unexpected(&shown(&what), &mut response)),
    }
}

/// The manifest digests a push of `images` (to a registry, with the default options)
/// gives what it tags: each image's, or with an index read with `--all`, the index's.
/// They come from the push's own pipeline into a destination that keeps nothing: a
/// manifest kept byte for byte when it still describes what is pushed, else the one a
/// push builds (Docker v2 schema 2 for a docker-archive). Layers the push keeps as
/// stored are not read; uncompressed ones are gzipped as a push does (deterministic,
/// so the digest is the one the push gives), which costs that CPU time.
///
/// ```
/// use dockhand::{open_source, push_digests, Location, NoProgress, ReadOptions};
///
/// let input = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/skopeo-oci/input");
/// let source = open_source(&Location::parse(input)?, &ReadOptions::default())?;
/// // An OCI image whose layers are gzipped already is pushed with its own manifest.
/// let own = source.images[0].manifest.clone().unwrap().digest;
/// assert_eq!(push_digests(&source.images[..1], &NoProgress)?, [own]);
/// # Ok::<(), dockhand::Error>(())
/// ```
pub fn push_digests(
    images: &[Image],
    progress: &dyn crate::progress::Progress,
) -> Result<Vec<Digest>> {
    let layers = crate::sink::LayerPolicy::for_registry(
        crate::compress::LayerCompression::Keep,
        None,
        None,
    )?;
    let mut named = Vec::new();
    let mut sink = crate::sink::ImageSink::new(Box::new(Digests(&mut named)), layers);
    sink.put_images(images, progress)?;
    sink.commit()?;
    Ok(named)
}

/// A destination that holds every blob already, hashes the ones computed for it, and
/// keeps only the digests of what it names.
struct Digests<'a>(&'a mut Vec<Digest>);

impl crate::sink::ImageDestination for Digests<'_> {
    fn try_reusing_blob(&mut self, blob: &crate::sink::BlobInfo) -> Result<Option<u64>> {
        // A blob whose digest and size are known needs no reading.
        Ok(blob.digest.and(blob.size))
    }
    fn put_blob(
        &mut self,
        _blob: &crate::sink::BlobInfo,
        data: &mut dyn std::io::Read,
    ) -> Result<(Digest, u64)> {
        let mut hasher = crate::model::digest::Hasher::new();
        let mut buffer = vec![0u8; 1 << 16];
        loop {
            let n = data
                .read(&mut buffer)
                .map_err(|e| Error::io("reading a layer", e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
        }
        Ok(hasher.finish())
    }
    fn put_manifest(&mut self, _manifest: &crate::sink::ManifestInfo) -> Result<()> {
        Ok(())
    }
    fn put_names(&mut self, manifest: &Descriptor, _image: &Image) -> Result<()> {
        if !self.0.contains(&manifest.digest) {
            self.0.push(manifest.digest.clone());
        }
        Ok(())
    }
    fn commit(self: Box<Self>) -> Result<crate::sink::CommitReport> {
        Ok(crate::sink::CommitReport::default())
    }
}
