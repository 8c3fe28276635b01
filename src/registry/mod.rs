//! The `docker://` transport: images in a registry that speaks the distribution API.
//! A registry is read natively (`tree.rs`): the manifest or index its reference
//! resolves to is fetched and verified, and the readers of manifests and indexes that
//! an OCI layout's entries go through walk down from it, asking the registry for each
//! blob by digest (a schema 1 manifest is converted by the `dir:` reader's code). It
//! is written through the same blob writer as an OCI layout (`push.rs`).

pub(crate) mod cache;
pub(crate) mod cached;
pub(crate) mod challenge;
pub(crate) mod client;
pub(crate) mod commands;
pub(crate) mod conf;
pub(crate) mod credentials;
pub(crate) mod fetch;
pub(crate) mod origin;
pub(crate) mod proxy;
pub(crate) mod push;
pub(crate) mod reference;
mod referrers;
pub(crate) mod retry;
mod seen;
pub(crate) mod tree;
pub(crate) mod trust;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ureq::http::Method;

use crate::error::{Error, Result};
use crate::model::blob::Blob;
use crate::model::image::Image;
use crate::sink::ImageSink;
use crate::text::shown;
pub use crate::transport::RegistryOptions;
use crate::transport::{Location, ReadOptions, SinkOptions, Source, Transport, WriteOptions};
use client::{header, Client, Payload, Scope};
pub use commands::{
    delete_image, for_each_repository, list_repositories, push_digests, registry_digest, tag_image,
    tags_by_digest, CatalogOptions, TagDigests, TagGroup, TagReport, DEFAULT_MAX_TAGS,
    MAX_LISTED_REPOSITORIES,
};
use credentials::{CredentialOptions, Environment};
use fetch::Repo;
pub use reference::{RegistryPrefix, RegistryRef};

/// The prefix of registry references on the command line.
pub const PREFIX: &str = "docker://";

/// Most pages of a tag list followed.
pub(crate) const MAX_TAG_PAGES: usize = 10_000;

/// The `docker://` transport: a repository in a registry.
pub(crate) struct RegistryTransport;

/// The row of the transport table.
pub(crate) static DOCKER: RegistryTransport = RegistryTransport;

impl crate::transport::Format {
    /// A registry (`docker://HOST/REPO:TAG`), read and written as OCI manifests.
    pub const REGISTRY: crate::transport::Format = crate::transport::Format::of(&DOCKER);
}

impl Transport for RegistryTransport {
    fn name(&self) -> &'static str {
        "docker"
    }
    fn noun(&self) -> &'static str {
        "a registry"
    }
    fn syntax(&self) -> &'static str {
        "docker://HOST/REPO[:TAG|@DIGEST]"
    }
    /// `//HOST/REPO...` after `docker:`, checked whole (a port out of range,
    /// credentials inside it).
    fn parse(&self, rest: &str) -> Result<(String, Option<String>)> {
        let Some(text) = rest.strip_prefix("//") else {
            return Err(Error::Usage(format!(
                "docker:{}: a registry reference is written {PREFIX}HOST/REPO:TAG, e.g. {PREFIX}{}",
                shown(rest),
                shown(rest)
            )));
        };
        if RegistryPrefix::parse(text)?.is_none() {
            RegistryRef::parse(text, true)?;
        }
        Ok((text.to_string(), None))
    }
    fn holds_many(&self) -> bool {
        true
    }
    fn keeps_indexes(&self) -> bool {
        true
    }
    fn parallel_reads(&self, options: &ReadOptions) -> Option<usize> {
        Some(options.registry.jobs)
    }
    fn skips_blobs_it_holds(&self) -> bool {
        true
    }
    fn holds_referrers(&self, _options: &WriteOptions) -> bool {
        true
    }
    fn holds_annotations(&self, options: &WriteOptions) -> bool {
        options.manifest_format != Some(crate::sink::ManifestFormat::DockerV2)
    }
    fn open_source(&self, location: &Location, options: &ReadOptions) -> Result<Source> {
        open_source(&location.path, options)
    }
    fn create_sink(
        &self,
        location: &Location,
        options: &SinkOptions,
    ) -> Result<ImageSink<'static>> {
        let conf = conf::RegistriesConf::load(&options.registry)?;
        let (reference, target) = match RegistryPrefix::parse(&location.path)? {
            // Each image at its own repository path: the client is the prefix's, and
            // each repository is checked against the configuration once known.
            Some(prefix) => {
                let reference = RegistryRef {
                    registry: prefix.registry.clone(),
                    repository: prefix.prefix.trim_end_matches('/').to_string(),
                    tag: None,
                    digest: None,
                };
                let target = push::PushTarget::Paths {
                    prefix,
                    scoped: options.registry.scoped,
                    access: RepositoryAccess {
                        conf,
                        options: options.registry.clone(),
                        clients: Default::default(),
                    },
                };
                (reference, target)
            }
            None => {
                refuse_hub_by_mistake(&location.path)?;
                let reference = RegistryRef::parse(&location.path, true)?;
                (reference.clone(), push::PushTarget::Repository(reference))
            }
        };
        // A push never goes to a mirror nor to a `location`, as in containers/image;
        // the blob cache's record of where blobs were seen gives it mounts.
        let endpoint =
            conf::RegistriesConf::load(&options.registry)?.direct_endpoint(&reference)?;
        let repo = repo(&endpoint, &options.registry, true)?;
        let (destination, layers) =
            push::RegistryDestination::new(repo, target, &options.write, options.registry.jobs)?;
        Ok(ImageSink::new(Box::new(destination), layers))
    }
}

/// A push destination that Docker reads as a repository of Docker Hub but that
/// names a registry host (`mirror.internal`, `localhost:5000`, `10.0.0.1:5000`): a
/// user who meant that registry would push to Docker Hub. Refused, saying how to
/// write the registry.
fn refuse_hub_by_mistake(text: &str) -> Result<()> {
    if text.contains('/') || text.contains('@') {
        return Ok(());
    }
    let (name, port) = match text.split_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (text, None),
    };
    let hostlike = name == "localhost" || name.contains('.');
    if hostlike && port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())) {
        return Err(Error::Usage(format!(
            "{PREFIX}{}: as Docker reads it, this is a repository of Docker Hub, not a registry; \
             write {PREFIX}{}/ to push each image to its own repository there, or \
             {PREFIX}{}/REPO for one repository (and {PREFIX}docker.io/library/... for Docker Hub)",
            shown(text),
            shown(text),
            shown(text)
        )));
    }
    Ok(())
}

/// A client for `endpoint`: the credentials of its own host (a mirror never gets
/// `creds`, given for the registry the user named), certificate checks off when the
/// registries configuration calls it insecure.
fn connect(endpoint: &conf::Endpoint, options: &RegistryOptions) -> Result<Client> {
    let credentials = endpoint_credentials(endpoint, options)?;
    connect_with(endpoint, options, credentials)
}

/// The credentials for `endpoint`'s repository: `creds` (unless the endpoint is
/// another host), else the auth files' most specific entry for it (`HOST/ns/repo`,
/// then `HOST/ns`, then `HOST`), as containers/image matches them.
fn endpoint_credentials(
    endpoint: &conf::Endpoint,
    options: &RegistryOptions,
) -> Result<Option<credentials::Credentials>> {
    let reference = &endpoint.reference;
    credentials::lookup(
        &reference.registry,
        Some(&reference.repository),
        &CredentialOptions {
            creds: if endpoint.elsewhere {
                None
            } else {
                options.creds.clone()
            },
            authfile: options.authfile.clone(),
        },
        &Environment::from_process(),
    )
}

/// Whether `endpoint` is reached with certificate checks.
fn verifies_tls(endpoint: &conf::Endpoint, options: &RegistryOptions) -> bool {
    options.tls_verify && !endpoint.insecure
}

/// A client for `endpoint` with `credentials`.
fn connect_with(
    endpoint: &conf::Endpoint,
    options: &RegistryOptions,
    credentials: Option<credentials::Credentials>,
) -> Result<Client> {
    let reference = &endpoint.reference;
    // Another host reads its own certs.d folders, never the cert dir given for the
    // registry named (its client pair is that registry's credential).
    let options = RegistryOptions {
        tls_verify: verifies_tls(endpoint, options),
        cert_dir: if endpoint.elsewhere {
            None
        } else {
            options.cert_dir.clone()
        },
        ..options.clone()
    };
    let client = Client::connect(
        &reference.registry,
        reference.api_host(),
        credentials,
        &options,
    )?;
    Ok(if endpoint.mirror {
        client.for_mirror()
    } else {
        client
    })
}

/// How a push by paths (`docker://HOST/[PREFIX/]`) reaches each repository: as a push
/// to that very repository would, by its own registries.conf entry (the longest
/// prefix that matches it: `blocked`, `insecure`) and its own credentials (its auth
/// files' most specific entry). Repositories reached the same way (the same
/// credentials and certificate checks) share one client.
pub(crate) struct RepositoryAccess {
    conf: conf::RegistriesConf,
    options: RegistryOptions,
    /// The clients made so far.
    clients: std::sync::Mutex<Vec<ReachedAs>>,
}

/// A client, with the credentials it sends and whether it checks certificates.
type ReachedAs = (Option<credentials::Credentials>, bool, Arc<Client>);

impl RepositoryAccess {
    /// Refuse `reference`'s repository when the configuration blocks it; no request
    /// is made.
    pub(crate) fn check(&self, reference: &RegistryRef) -> Result<()> {
        self.conf.direct_endpoint(reference).map(drop)
    }

    /// The client for `reference`'s repository.
    pub(crate) fn client(&self, reference: &RegistryRef) -> Result<Arc<Client>> {
        let endpoint = self.conf.direct_endpoint(reference)?;
        let credentials = endpoint_credentials(&endpoint, &self.options)?;
        let verify = verifies_tls(&endpoint, &self.options);
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, _, client)) = clients
            .iter()
            .find(|(c, v, _)| *c == credentials && *v == verify)
        {
            return Ok(Arc::clone(client));
        }
        let client = Arc::new(connect_with(&endpoint, &self.options, credentials.clone())?);
        clients.push((credentials, verify, Arc::clone(&client)));
        Ok(client)
    }
}

pub(crate) fn repo(
    endpoint: &conf::Endpoint,
    options: &RegistryOptions,
    cache: bool,
) -> Result<Arc<Repo>> {
    let reference = &endpoint.reference;
    let client = connect(endpoint, options)?;
    let cache = if cache && !options.no_cache {
        options
            .cache
            .clone()
            .or_else(fetch::default_cache_dir)
            .map(|dir| Arc::new(cache::BlobCache::new(dir)))
    } else {
        None
    };
    Ok(Arc::new(Repo {
        client: Arc::new(client),
        repository: reference.repository.clone(),
        cache,
        streaming: Default::default(),
    }))
}

/// Open `HOST/REPO[:TAG|@DIGEST]` as a source: its manifest and configs are read now,
/// layers when they are written.
fn open_source(text: &str, options: &ReadOptions) -> Result<Source> {
    let reference = RegistryRef::parse(text, false)?;
    let endpoints = conf::RegistriesConf::load(&options.registry)?.pull_endpoints(&reference)?;
    // Each mirror in order, then the registry itself: the first that answers with the
    // manifest serves the pull, as podman does.
    let mut failed: Vec<String> = Vec::new();
    let mut opened = None;
    for endpoint in &endpoints {
        let attempt = repo(endpoint, &options.registry, true)
            .and_then(|repo| tree::open(repo, &endpoint.reference));
        match attempt {
            Ok(found) => {
                opened = Some((endpoint, found));
                break;
            }
            Err(e) if endpoint.mirror => {
                failed.push(format!("{PREFIX}{}: {e}", endpoint.reference))
            }
            Err(e) if failed.is_empty() => return Err(e),
            Err(Error::Registry { registry, message }) => {
                return Err(Error::Registry {
                    registry,
                    message: format!("{message} (the mirrors failed too: {})", failed.join("; ")),
                })
            }
            Err(e) => return Err(e),
        }
    }
    let (endpoint, (root, blobs)) = opened.expect("the registry itself is the last endpoint");
    let mut details: Vec<String> = failed
        .iter()
        .map(|why| format!("mirror skipped: {why}"))
        .collect();
    if endpoint.mirror {
        details.push(format!(
            "pulled {PREFIX}{reference} from the mirror {PREFIX}{}",
            endpoint.reference
        ));
    } else if endpoint.reference != reference {
        details.push(format!(
            "pulled {PREFIX}{reference} from {PREFIX}{} (its location in the registries configuration)",
            endpoint.reference
        ));
    }
    let mut source = crate::formats::read_from_store(
        crate::transport::Format::REGISTRY,
        &format!("{PREFIX}{reference}"),
        &root,
        &blobs,
        options,
    )?;
    // The images the reference resolves to (one, or every platform with --all) are
    // named by it and by nothing the registry says: a schema 1 manifest's `name` and
    // `tag`, or annotations, would otherwise rename the output (and `docker load`
    // would tag what it names). A pull by digest has no tag.
    for image in &mut source.images {
        image.tags = reference.tagged().into_iter().collect();
        image.ref_names.clear();
        image.oci_ref_names.clear();
    }
    source.details = details;
    // A tar output writes layers one after another: they are fetched ahead, `jobs`
    // at once, into the cache, which the output then reads.
    let (jobs, cached) = (options.registry.jobs, !options.registry.no_cache);
    let manifests = blobs.clone();
    let streamed = blobs.clone();
    let referrers = blobs.clone();
    let attached = blobs.clone();
    Ok(source
        .answering_manifests(Box::new(move |digest| manifests.manifest(digest)))
        .answering_referrers(Box::new(move |digest| referrers.referrers(digest)))
        .answering_blobs(Box::new(move |descriptor| {
            Ok(Some(attached.attached_blob(descriptor)))
        }))
        .streaming_with(Box::new(move || streamed.stream_layers()))
        .reading_ahead(Box::new(move |images, stop| {
            if jobs > 1 && cached {
                prefetch(images, jobs, stop);
            }
        }))
        .finishing_with(Box::new(move || blobs.release_cache())))
}

/// Fetch the registry layers of `images` into the blob cache, `jobs` at once, until
/// `stop` is set: an output that writes layers one after another (a tar) then finds
/// each in the cache, or waits for the fetch under way, instead of fetching them one
/// at a time itself. Failures are left for that output to meet.
fn prefetch(images: &[Image], jobs: usize, stop: &AtomicBool) {
    let mut seen = std::collections::HashSet::new();
    let blobs: Vec<&tree::RegistryBlob> = images
        .iter()
        .flat_map(|image| &image.layers)
        .filter_map(|layer| tree::RegistryBlob::of(layer.blob.as_deref()?))
        .filter(|blob| seen.insert(blob.describe()))
        .collect();
    crate::pool::run_all(&blobs, jobs, |blob| {
        if stop.load(Ordering::Relaxed) {
            return Ok::<(), Error>(());
        }
        let _ = blob.prefetch();
        Ok(())
    });
}

/// The tags of the repository `location` names (`docker://HOST/REPO`), following
/// `Link` pagination, in the registry's order; at most [`MAX_LISTED_TAGS`] (use
/// [`for_each_tag`] to take them as they arrive, in bounded memory).
///
/// ```no_run
/// // no_run: it needs a registry on the network.
/// use dockhand::{list_tags, RegistryOptions};
///
/// let tags = list_tags("docker://docker.io/library/busybox", &RegistryOptions::default())?;
/// assert!(tags.iter().any(|t| t == "latest"));
/// # Ok::<(), dockhand::Error>(())
/// ```
pub fn list_tags(location: &str, options: &RegistryOptions) -> Result<Vec<String>> {
    let mut tags = Vec::new();
    for_each_tag(location, options, &mut |tag| {
        if tags.len() >= MAX_LISTED_TAGS {
            return Err(Error::Unsupported(format!(
                "{}: the repository lists more than {MAX_LISTED_TAGS} tags",
                shown(location)
            )));
        }
        tags.push(tag.to_string());
        Ok(())
    })?;
    Ok(tags)
}

/// Most tags [`list_tags`] collects.
pub const MAX_LISTED_TAGS: usize = 1_000_000;

/// Hand each tag of the repository `location` names (`docker://HOST/REPO`) to
/// `on_tag` as its page arrives, following `Link` pagination on the registry's own
/// origin; returns how many there were. One page (at most 4 MiB) is held at a time.
///
/// ```no_run
/// // no_run: it needs a registry on the network.
/// use dockhand::{for_each_tag, RegistryOptions};
///
/// let count = for_each_tag("docker://docker.io/library/busybox", &RegistryOptions::default(), &mut |tag| {
///     println!("{tag}");
///     Ok(())
/// })?;
/// assert!(count > 0);
/// # Ok::<(), dockhand::Error>(())
/// ```
pub fn for_each_tag(
    location: &str,
    options: &RegistryOptions,
    on_tag: &mut dyn FnMut(&str) -> Result<()>,
) -> Result<usize> {
    let text = location.strip_prefix(PREFIX).ok_or_else(|| {
        Error::Usage(format!(
            "{}: tags lists a registry repository: docker://HOST/REPO",
            shown(location)
        ))
    })?;
    let reference = RegistryRef::parse(text, true)?;
    let endpoint = conf::RegistriesConf::load(options)?.direct_endpoint(&reference)?;
    let repo = repo(&endpoint, options, false)?;
    for_each_listed(&repo.client, tag_listing(&repo), &mut |tag| {
        on_tag(tag).map(|()| true)
    })
}

/// The tag list of `repo`, as [`for_each_listed`] pages it.
pub(crate) fn tag_listing(repo: &Repo) -> Listing {
    Listing {
        url: repo.url("tags/list"),
        scope: Scope::pull(&repo.repository),
        what: format!(
            "{}/{}: listing tags",
            repo.client.registry(),
            repo.repository
        ),
        key: ListKey::Tags,
        max_pages: MAX_TAG_PAGES,
        not_found: "no such repository: check the name",
    }
}

/// Which array of a listed page holds the entries.
#[derive(Clone, Copy)]
pub(crate) enum ListKey {
    /// `tags` (`/v2/REPO/tags/list`).
    Tags,
    /// `repositories` (`/v2/_catalog`).
    Repositories,
}

/// A paginated list the registry serves: where its first page is, the scope it needs,
/// how it is named in messages, and its bounds.
pub(crate) struct Listing {
    /// The first page's URL.
    pub url: String,
    /// The token scope it needs.
    pub scope: Scope,
    /// The request, for messages (`HOST/REPO: listing tags`).
    pub what: String,
    /// Which array holds the entries.
    pub key: ListKey,
    /// Most pages followed.
    pub max_pages: usize,
    /// What a 404 means, said after the registry's own words.
    pub not_found: &'static str,
}

/// Hand each entry of `listing` to `on_item` as its page arrives, following `Link`
/// pagination on the registry's own origin, until the last page or until `on_item`
/// answers `false`; returns how many entries were handed over. One page (at most
/// 4 MiB) is held at a time, and no page is read twice.
pub(crate) fn for_each_listed(
    client: &Client,
    listing: Listing,
    on_item: &mut dyn FnMut(&str) -> Result<bool>,
) -> Result<usize> {
    let Listing {
        mut url,
        scope,
        what,
        key,
        max_pages,
        not_found,
    } = listing;
    let mut count = 0;
    // Pages read, by the digest of their URL (a bounded record of a bounded number).
    let mut seen = std::collections::HashSet::new();
    for _ in 0..max_pages {
        if !seen.insert(crate::model::digest::Digest::of(url.as_bytes())) {
            return Err(client.error(format!(
                "{}: the pages lead back to a page already read",
                shown(&what)
            )));
        }
        let mut response = client.send(Method::GET, &url, &scope, &[], Payload::Empty)?;
        if !response.status().is_success() {
            let status = response.status().as_u16();
            let error = client.unexpected(&shown(&what), &mut response);
            return Err(match error {
                Error::Registry { registry, message } if status == 404 => Error::Registry {
                    registry,
                    message: format!("{message} ({not_found})"),
                },
                other => other,
            });
        }
        let next = header(&response, "link").and_then(challenge::next_link);
        let body = client.read_small(&mut response, client::MAX_MANIFEST_SIZE)?;
        #[derive(serde::Deserialize)]
        struct Page {
            tags: Option<Vec<String>>,
            repositories: Option<Vec<String>>,
        }
        let page: Page = serde_json::from_slice(&body)
            .map_err(|e| client.error(format!("{}: the answer is not JSON: {e}", shown(&what))))?;
        drop(body);
        let entries = match key {
            ListKey::Tags => page.tags,
            ListKey::Repositories => page.repositories,
        };
        for entry in entries.unwrap_or_default() {
            if !on_item(&entry)? {
                return Ok(count);
            }
            count += 1;
        }
        let Some(next) = next else {
            return Ok(count);
        };
        url = client.same_origin_link(&url, &next, "the list's next page")?;
    }
    Err(client.error(format!(
        "{}: the list has more than {max_pages} pages",
        shown(&what)
    )))
}

/// The registry client's parsers of what a registry says, for the fuzz targets (with
/// the `fuzzing` feature only): each returns plain values, so a target can check
/// properties without the crate's private types.
#[cfg(feature = "fuzzing")]
pub mod fuzzing {
    use std::time::{Duration, SystemTime};

    use super::origin::Url;

    /// The challenges of a `WWW-Authenticate` value: `(scheme, realm)` each, and for
    /// each realm whether it is a URL credentials could be sent to and, if so, that
    /// URL written out again.
    pub fn www_authenticate(value: &str) -> Vec<(&'static str, String, Option<String>)> {
        super::challenge::parse_www_authenticate(value)
            .into_iter()
            .map(|c| match c {
                super::challenge::Challenge::Bearer { realm, .. } => {
                    let url = Url::parse(&realm).ok().map(|u| u.to_string());
                    ("bearer", realm, url)
                }
                super::challenge::Challenge::Basic { realm } => ("basic", realm, None),
            })
            .collect()
    }

    /// The next page a `Link` value names, resolved against `base` (an absolute URL):
    /// `None` without one, `Some(Err)` when it cannot be used.
    pub fn next_link(value: &str, base: &str) -> Option<Result<String, &'static str>> {
        let link = super::challenge::next_link(value)?;
        let base = match Url::parse(base) {
            Ok(base) => base,
            Err(e) => return Some(Err(e)),
        };
        Some(base.join(&link).map(|u| u.to_string()))
    }

    /// Parse a URL a registry hands back and write it out again.
    pub fn url(text: &str) -> Result<String, &'static str> {
        Url::parse(text).map(|u| u.to_string())
    }

    /// The delay a `Retry-After` value asks for at `now`, capped at `max`.
    pub fn retry_after(value: &str, now: SystemTime, max: Duration) -> Option<Duration> {
        super::challenge::retry_after(value, now, max)
    }

    /// A manifest's digest (of its bytes, or of a schema 1 payload) and whether it is
    /// schema 1; then the media type it names and the descriptors a pull would learn.
    pub fn manifest(bytes: &[u8]) -> Result<(String, bool, String, usize), String> {
        let (digest, schema1) = super::tree::manifest_identity(bytes)?;
        let media_type = super::tree::body_media_type(bytes);
        let learnt = super::tree::learnt_descriptors(bytes).map_err(|e| e.to_string())?;
        Ok((digest.to_string(), schema1, media_type, learnt))
    }

    /// The payload a schema 1 manifest's digest covers (the bytes when unsigned).
    pub fn schema1_payload(bytes: &[u8]) -> Result<Vec<u8>, String> {
        crate::formats::schema1_payload(bytes).map(|p| p.into_owned())
    }
}
