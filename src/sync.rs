//! Keeping a mirror up to date: every image a list names (skopeo sync's YAML, or
//! every tag of a repository) copied to `MIRROR[/PREFIX]/<its repository>:<tag>`, into
//! one OCI layout, or into one archive per image under a directory, skipping each one
//! the destination already holds under that name after one request, several images at
//! a time, one image's failure stopping no other.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde::Deserialize;
use ureq::http::Method;

use crate::convert::{convert_between, ConvertOptions};
use crate::error::{Error, Result};
use crate::model::digest::Digest;
use crate::model::image::Platform;
use crate::model::reference::valid_tag;
use crate::progress::NoProgress;
use crate::registry::client::{header, Payload, Scope, MANIFEST_ACCEPT};
use crate::registry::conf::RegistriesConf;
use crate::registry::fetch::Repo;
use crate::registry::{for_each_listed, tag_listing, RegistryRef};
use crate::text::shown;
use crate::transport::{Format, Location, RegistryOptions};

/// Largest sync file read (bytes).
pub const MAX_SYNC_FILE: u64 = 1 << 20;
/// Most images one sync takes, after every tag list is expanded.
pub const MAX_SYNC_IMAGES: usize = 100_000;
/// Longest regular expression or semver range a sync file may give (characters).
pub const MAX_PATTERN_CHARS: usize = 1024;

/// Which tags of a repository a sync takes.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TagChoice {
    /// These tags and digests (`sha256:...`).
    Listed(Vec<String>),
    /// Every tag the registry lists (an empty list in the YAML).
    Every,
    /// The listed tags this regular expression matches (anywhere in the tag, as
    /// skopeo's `images-by-tag-regex`).
    Regex(String),
    /// The listed tags that are versions in this semver range (`images-by-semver`; a
    /// leading `v` is allowed, `1.2` reads as `1.2.0`, other tags are left out).
    Semver(String),
}

/// One repository of a [`SyncSource`] and the tags taken from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncRepository {
    /// The repository path (`team/app`), as Docker normalises it.
    pub repository: String,
    /// Its tags taken.
    pub tags: TagChoice,
}

/// One registry a sync reads from, with its own options (credentials, TLS), which
/// reach that registry only.
#[derive(Clone, Debug)]
pub struct SyncSource {
    /// The registry (`HOST[:PORT]`), as references name it.
    pub registry: String,
    /// Its repositories taken.
    pub repositories: Vec<SyncRepository>,
    /// How to reach it.
    pub options: RegistryOptions,
}

/// Where a sync writes.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SyncTarget {
    /// A registry and an optional path prefix (`HOST[:PORT][/PREFIX]`).
    Registry(String),
    /// One OCI layout directory holding every image, each under the ref name
    /// `<its repository>:<tag>` (added to when it exists).
    Layout(PathBuf),
    /// One archive per image under a directory (created when missing):
    /// `DIR/<its repository path>/<tag>.tar`, or `DIR/<its repository
    /// path>/@sha256-<hex>.tar` for an image named by digest (no tag holds an `@`, so
    /// the two never meet), each holding the image under its full source name
    /// (`HOST/team/app:1`), written atomically; an archive there that holds the image
    /// already is left as it is. No link under `DIR` is followed.
    Archives {
        /// The directory.
        dir: PathBuf,
        /// What kind of archive.
        kind: ArchiveKind,
    },
}

/// The kind of archive a sync writes one of per image ([`SyncTarget::Archives`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ArchiveKind {
    /// A docker-save archive (`docker load`, `skopeo copy docker-archive:`): it holds no
    /// manifest, so an image is found there by its config (its image ID).
    Docker,
    /// An OCI layout in a tar (`oci-archive:`): an image is found there by its
    /// manifest digest, which the copy keeps.
    Oci,
}

impl ArchiveKind {
    /// The format written.
    pub fn format(self) -> Format {
        match self {
            ArchiveKind::Docker => Format::DOCKER_ARCHIVE,
            ArchiveKind::Oci => Format::OCI_ARCHIVE,
        }
    }
}

/// How a sync runs.
#[derive(Clone, Debug)]
pub struct SyncOptions {
    /// Where the images go.
    pub target: SyncTarget,
    /// Keep the source registry's host in the destination path (skopeo's `--scoped`):
    /// `HOST/team/app:1` lands at `PREFIX/HOST/team/app:1`, a port's `:` written `_`.
    pub scoped: bool,
    /// How many images are copied at once (each moves up to
    /// `convert.dest_registry.jobs` blobs at once).
    pub images_at_once: usize,
    /// Stop starting images after the first failure (those left are
    /// [`SyncOutcome::NotStarted`]); by default every image is tried.
    pub fail_fast: bool,
    /// Copy nothing: say what would be copied ([`SyncOutcome::WouldCopy`]).
    pub dry_run: bool,
    /// Take only this worker's share of the images (`--shard I/N`): those whose
    /// source reference ([`SyncItem::source`]) it owns ([`crate::Shard::owns`]), so
    /// that N workers given the same list copy each image exactly once between them,
    /// with no coordinator. A repository whose tags cannot be listed is reported by
    /// the worker that owns `docker://HOST/REPO`.
    pub shard: Option<crate::Shard>,
    /// The options of each copy: the destination's registry options, `all_platforms`,
    /// `referrers`; its `source_registry` is replaced by each source's own options.
    pub convert: ConvertOptions,
}

/// What happened to one image.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum SyncOutcome {
    /// Copied.
    Copied,
    /// The destination already held this manifest digest under that name.
    Skipped,
    /// Not copied because of a dry run; it would have been.
    WouldCopy,
    /// The copy (or finding the image) failed.
    Failed(Error),
    /// Not tried: an earlier image failed and the sync stops at the first failure.
    NotStarted,
}

/// One image of a sync.
#[derive(Clone, Debug)]
pub struct SyncItem {
    /// The source, `docker://HOST/REPO:TAG` (or `@sha256:...`); for a repository whose
    /// tags could not be listed, `docker://HOST/REPO`.
    pub source: String,
    /// The destination: `docker://MIRROR/PREFIX/REPO:TAG`, `oci:DIR:HOST/REPO:TAG`, or
    /// `docker-archive:DIR/REPO/TAG.tar` (`oci-archive:...`).
    pub destination: String,
    /// The source's manifest digest, when it was found.
    pub digest: Option<Digest>,
    /// What happened.
    pub outcome: SyncOutcome,
}

/// What a sync did, one item per image in the order of the sync list.
#[derive(Clone, Debug, Default)]
pub struct SyncReport {
    /// Every image.
    pub items: Vec<SyncItem>,
}

impl SyncReport {
    /// How many images had each outcome: copied, skipped, would copy, failed, not
    /// started.
    pub fn counts(&self) -> [usize; 5] {
        let mut n = [0; 5];
        for item in &self.items {
            n[match item.outcome {
                SyncOutcome::Copied => 0,
                SyncOutcome::Skipped => 1,
                SyncOutcome::WouldCopy => 2,
                SyncOutcome::Failed(_) => 3,
                SyncOutcome::NotStarted => 4,
            }] += 1;
        }
        n
    }

    /// Did every image tried succeed?
    pub fn succeeded(&self) -> bool {
        let n = self.counts();
        n[3] == 0 && n[4] == 0
    }
}

/// One registry block of skopeo sync's YAML.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct YamlRegistry {
    #[serde(default)]
    images: BTreeMap<String, Option<Vec<String>>>,
    #[serde(default)]
    images_by_tag_regex: BTreeMap<String, String>,
    #[serde(default)]
    images_by_semver: BTreeMap<String, String>,
    tls_verify: Option<bool>,
    credentials: Option<YamlCredentials>,
    cert_dir: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct YamlCredentials {
    username: String,
    password: String,
}

/// Read a sync file in skopeo sync's YAML (at most [`MAX_SYNC_FILE`] bytes): see
/// [`parse_sync_yaml`].
pub fn read_sync_yaml(path: &Path, base: &RegistryOptions) -> Result<Vec<SyncSource>> {
    use std::io::Read;
    let what = path.display().to_string();
    let io = |e: std::io::Error| Error::Io {
        context: format!("reading {}", shown(&what)),
        cause: Arc::new(e),
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut text = String::new();
    file.take(MAX_SYNC_FILE + 1)
        .read_to_string(&mut text)
        .map_err(io)?;
    if text.len() as u64 > MAX_SYNC_FILE {
        return Err(malformed(
            &what,
            format!("over the {MAX_SYNC_FILE}-byte limit of a sync file"),
        ));
    }
    parse_sync_yaml(&text, base).map_err(|e| match e {
        Error::Malformed { file, problem } if file.is_empty() => malformed(&what, problem),
        other => other,
    })
}

fn malformed(file: &str, problem: String) -> Error {
    Error::Malformed {
        file: shown(file),
        problem,
    }
}

/// The sources skopeo sync's YAML names: per registry host, `images` (repository:
/// tags or digests, an empty list for every tag), `images-by-tag-regex`,
/// `images-by-semver`, `tls-verify`, `credentials` (`{username, password}`, sent to
/// that registry only) and `cert-dir`; `base` gives every other option. Hosts,
/// repositories, tags, patterns and ranges are checked here. An error is
/// [`Error::Malformed`] with an empty `file` ([`read_sync_yaml`] names the file).
///
/// ```
/// use dockhand::{parse_sync_yaml, RegistryOptions, TagChoice};
///
/// let yaml = "registry.example.com:\n  images:\n    team/app: []\n    redis: ['7.2']\n";
/// let sources = parse_sync_yaml(yaml, &RegistryOptions::default())?;
/// assert_eq!(sources[0].registry, "registry.example.com");
/// assert_eq!(sources[0].repositories[0].repository, "redis");
/// assert_eq!(sources[0].repositories[1].tags, TagChoice::Every);
/// # Ok::<(), dockhand::Error>(())
/// ```
pub fn parse_sync_yaml(text: &str, base: &RegistryOptions) -> Result<Vec<SyncSource>> {
    let bad = |problem: String| malformed("", problem);
    let blocks: BTreeMap<String, YamlRegistry> =
        serde_norway::from_str(text).map_err(|e| bad(e.to_string()))?;
    let mut sources = Vec::new();
    let mut count = 0usize;
    for (host, block) in blocks {
        let mut options = RegistryOptions {
            // Only this block's credentials go to this registry (else its auth files).
            creds: None,
            ..base.clone()
        };
        if let Some(c) = &block.credentials {
            if c.username.contains(':') || c.username.is_empty() {
                return Err(bad(format!(
                    "{}: credentials: the username must be non-empty and have no ':'",
                    shown(&host)
                )));
            }
            options.creds = Some(format!("{}:{}", c.username, c.password));
        }
        if let Some(v) = block.tls_verify {
            options.tls_verify = v;
        }
        if let Some(dir) = &block.cert_dir {
            options.cert_dir = Some(dir.clone());
        }
        let mut repositories = Vec::new();
        let mut add = |name: &str, tags: TagChoice| -> Result<()> {
            count += 1;
            if count > MAX_SYNC_IMAGES {
                return Err(bad(format!("more than {MAX_SYNC_IMAGES} repositories")));
            }
            let repository = repository_of(&host, name).map_err(&bad)?;
            repositories.push(SyncRepository { repository, tags });
            Ok(())
        };
        for (name, tags) in &block.images {
            let tags = tags.clone().unwrap_or_default();
            for tag in &tags {
                if !valid_tag(tag) && Digest::parse(tag).is_err() {
                    return Err(bad(format!(
                        "{}/{}: {} is neither a tag nor a digest",
                        shown(&host),
                        shown(name),
                        shown(tag)
                    )));
                }
            }
            let choice = if tags.is_empty() {
                TagChoice::Every
            } else {
                TagChoice::Listed(tags)
            };
            add(name, choice)?;
        }
        for (name, pattern) in &block.images_by_tag_regex {
            compile_regex(pattern)
                .map_err(|why| bad(format!("{}/{}: {why}", shown(&host), shown(name))))?;
            add(name, TagChoice::Regex(pattern.clone()))?;
        }
        for (name, range) in &block.images_by_semver {
            semver_range(range)
                .map_err(|why| bad(format!("{}/{}: {why}", shown(&host), shown(name))))?;
            add(name, TagChoice::Semver(range.clone()))?;
        }
        sources.push(SyncSource {
            registry: host,
            repositories,
            options,
        });
    }
    Ok(sources)
}

/// The repository `name` of registry `host`, as the reference parser normalises it;
/// refused when `host` is not read as a registry host or `name` carries a tag.
fn repository_of(host: &str, name: &str) -> std::result::Result<String, String> {
    let reference = RegistryRef::parse(&format!("{host}/{name}"), true)
        .map_err(|e| one_line_of(&e.to_string()))?;
    if reference.registry != host.to_ascii_lowercase() && reference.registry != host {
        return Err(format!(
            "{} is not a registry host (write HOST[:PORT], such as registry.example.com)",
            shown(host)
        ));
    }
    if reference.tag.is_some() || reference.digest.is_some() {
        return Err(format!(
            "{}/{}: a repository is named without a tag or digest",
            shown(host),
            shown(name)
        ));
    }
    Ok(reference.repository)
}

fn one_line_of(text: &str) -> String {
    crate::text::one_line(text)
}

fn compile_regex(pattern: &str) -> std::result::Result<regex::Regex, String> {
    if pattern.chars().count() > MAX_PATTERN_CHARS {
        return Err(format!("a pattern over {MAX_PATTERN_CHARS} characters"));
    }
    regex::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .dfa_size_limit(1 << 20)
        .build()
        .map_err(|e| {
            format!(
                "invalid regular expression: {}",
                one_line_of(&e.to_string())
            )
        })
}

fn semver_range(range: &str) -> std::result::Result<semver::VersionReq, String> {
    if range.chars().count() > MAX_PATTERN_CHARS {
        return Err(format!("a range over {MAX_PATTERN_CHARS} characters"));
    }
    semver::VersionReq::parse(range).map_err(|e| format!("invalid semver range: {e}"))
}

/// A tag read as a version: a leading `v` dropped, `1` and `1.2` completed with zeros.
fn tag_version(tag: &str) -> Option<semver::Version> {
    let text = tag.strip_prefix('v').unwrap_or(tag);
    let core_end = text.find(['-', '+']).unwrap_or(text.len());
    let (core, rest) = text.split_at(core_end);
    let parts = core.split('.').count();
    let padded = match parts {
        1 => format!("{core}.0.0{rest}"),
        2 => format!("{core}.0{rest}"),
        _ => text.to_string(),
    };
    semver::Version::parse(&padded).ok()
}

/// A source for every tag of the repository `reference` names
/// (`docker://HOST/REPO`), or for the one image `docker://HOST/REPO:TAG` or
/// `@sha256:...` names, reached with `options`.
pub fn repository_source(reference: &str, options: &RegistryOptions) -> Result<SyncSource> {
    let text = reference.strip_prefix("docker://").ok_or_else(|| {
        Error::Usage(format!(
            "{}: a sync source is a repository, docker://HOST/REPO[:TAG]",
            shown(reference)
        ))
    })?;
    let parsed = RegistryRef::parse(text, true)?;
    let tags = match (&parsed.digest, &parsed.tag) {
        (Some(d), _) => TagChoice::Listed(vec![d.to_string()]),
        (None, Some(t)) => TagChoice::Listed(vec![t.clone()]),
        (None, None) => TagChoice::Every,
    };
    Ok(SyncSource {
        registry: parsed.registry,
        repositories: vec![SyncRepository {
            repository: parsed.repository,
            tags,
        }],
        options: options.clone(),
    })
}

/// One image to copy.
struct Job {
    source: usize,
    /// `HOST/REPO` of the source.
    repository: String,
    /// The tag or digest.
    reference: String,
    /// The destination repository (`MIRROR/PREFIX/REPO`, or the ref name's repository).
    destination: String,
}

impl Job {
    fn separator(&self) -> char {
        if Digest::parse(&self.reference).is_ok() {
            '@'
        } else {
            ':'
        }
    }

    fn source_text(&self) -> String {
        format!("{}{}{}", self.repository, self.separator(), self.reference)
    }
}

/// The destination repository of `registry/repository`.
fn destination_repository(
    target: &SyncTarget,
    registry: &str,
    repository: &str,
    scoped: bool,
) -> String {
    let host = registry.to_ascii_lowercase().replace(':', "_");
    let path = if scoped {
        format!("{host}/{repository}")
    } else {
        repository.to_string()
    };
    match target {
        SyncTarget::Registry(base) => format!("{}/{path}", base.trim_end_matches('/')),
        SyncTarget::Layout(_) | SyncTarget::Archives { .. } => path,
    }
}

/// Connections reused across the images of one registry: the first request of each
/// finds out whether the registry speaks plain HTTP (with certificate checks off) and
/// meets its challenge, the others do not.
#[derive(Default)]
struct Repos(Mutex<HashMap<String, Arc<Repo>>>);

impl Repos {
    /// The repository `repository` (`HOST/PATH`) reached with `options`, under `key`
    /// (which says the side and the YAML block). Every repository of one registry on
    /// one side shares its client: one connection and one login per registry, not
    /// per repository, so that an unchanged image costs its two `HEAD`s.
    fn get(&self, key: String, repository: &str, options: &RegistryOptions) -> Result<Arc<Repo>> {
        // Held while connecting, so that two images of one repository share one
        // connection rather than racing to make two.
        let mut repos = self.0.lock().expect("repos lock");
        if let Some(repo) = repos.get(&key) {
            return Ok(repo.clone());
        }
        let reference = RegistryRef::parse(repository, true)?;
        let endpoint = RegistriesConf::load(options)?.direct_endpoint(&reference)?;
        // `src N ...` (the YAML block's options) or `dst ...` (the mirror's).
        let side: Vec<&str> = key.split_whitespace().take(2).collect();
        let side = match side.as_slice() {
            ["src", block] => format!("src {block}"),
            _ => "dst".to_string(),
        };
        let registry_key = format!("{side} @registry {}", endpoint.reference.registry);
        let repo = match repos.get(&registry_key) {
            // Another repository of that registry: its client, this path.
            Some(shared) if !endpoint.elsewhere => Arc::new(Repo {
                client: Arc::clone(&shared.client),
                repository: endpoint.reference.repository.clone(),
                cache: None,
                streaming: Default::default(),
            }),
            _ => {
                let repo = crate::registry::repo(&endpoint, options, false)?;
                repos.insert(registry_key, repo.clone());
                repo
            }
        };
        repos.insert(key, repo.clone());
        Ok(repo)
    }
}

/// The manifest digest `repo` holds under `reference` (a tag or digest), from one
/// `HEAD`; `None` when it holds none. A registry that states no digest on a `HEAD` is
/// asked with a `GET`, and the bytes hashed.
fn held_digest(repo: &Repo, reference: &str) -> Result<Option<Digest>> {
    let mut response = repo.client.send(
        Method::HEAD,
        &repo.url(&format!("manifests/{reference}")),
        &Scope::pull(&repo.repository),
        &[("Accept", MANIFEST_ACCEPT)],
        Payload::Empty,
    )?;
    let what = format!(
        "{}/{}:{}",
        repo.client.registry(),
        repo.repository,
        shown(reference)
    );
    match response.status().as_u16() {
        404 => Ok(None),
        200 => match header(&response, "docker-content-digest").map(Digest::parse) {
            Some(Ok(digest)) => Ok(Some(digest)),
            _ => Ok(
                crate::registry::tree::fetch_manifest_if_held(repo, reference)?.map(|f| f.digest),
            ),
        },
        _ => Err(repo.client.unexpected(&what, &mut response)),
    }
}

/// Copy every image `sources` name to `options.target`: the tags of each repository
/// listed (bounded, [`MAX_SYNC_IMAGES`] images in all), then each image copied with
/// [`convert_between`] unless the destination already holds its manifest digest under
/// that name (one `HEAD` at each end per unchanged image), `images_at_once` at a
/// time. `on_done` sees each image as it ends, with how many have ended and how many
/// there are. One image's failure is recorded in its item and stops no other (unless
/// `fail_fast`); an error is returned only for what stops the whole sync (a bad
/// destination).
pub fn sync(
    sources: &[SyncSource],
    options: &SyncOptions,
    on_done: &(dyn Fn(&SyncItem, usize, usize) + Sync),
) -> Result<SyncReport> {
    match &options.target {
        SyncTarget::Registry(base) => {
            // The destination with a repository under it must parse.
            RegistryRef::parse(&format!("{}/x", base.trim_end_matches('/')), true)?;
        }
        SyncTarget::Archives { kind, .. } => archives_can_hold(*kind, &options.convert)?,
        SyncTarget::Layout(_) => {}
    }
    let repos = Repos::default();
    // The archive each image goes to, and the first image that claimed it.
    let mut claimed: HashMap<PathBuf, String> = HashMap::new();
    let mut items: Vec<Option<SyncItem>> = Vec::new();
    let mut jobs: Vec<(usize, Job)> = Vec::new();
    for (s, source) in sources.iter().enumerate() {
        for wanted in &source.repositories {
            let repository = format!("{}/{}", source.registry, wanted.repository);
            let destination = destination_repository(
                &options.target,
                &source.registry,
                &wanted.repository,
                options.scoped,
            );
            let references = match expand(&repos, s, source, &repository, &wanted.tags) {
                Ok(refs) => refs,
                Err(e) => {
                    let owned = options
                        .shard
                        .is_none_or(|shard| shard.owns(&format!("docker://{repository}")));
                    if !owned {
                        continue;
                    }
                    items.push(Some(SyncItem {
                        source: format!("docker://{repository}"),
                        destination: destination_text(&options.target, &destination, None),
                        digest: None,
                        outcome: SyncOutcome::Failed(e),
                    }));
                    continue;
                }
            };
            for reference in references {
                let job = Job {
                    source: s,
                    repository: repository.clone(),
                    reference,
                    destination: destination.clone(),
                };
                if let Some(shard) = &options.shard {
                    if !shard.owns(&format!("docker://{}", job.source_text())) {
                        continue;
                    }
                }
                if jobs.len() >= MAX_SYNC_IMAGES {
                    return Err(Error::Unsupported(format!(
                        "the sync names more than {MAX_SYNC_IMAGES} images"
                    )));
                }
                if let SyncTarget::Archives { dir, .. } = &options.target {
                    // Two images on one file (two source registries, without --scoped):
                    // the first keeps it, the others fail.
                    if let Ok(path) = archive_path(dir, &job) {
                        if let Some(first) = claimed.get(&path) {
                            items.push(Some(SyncItem {
                                source: format!("docker://{}", job.source_text()),
                                destination: destination_text(
                                    &options.target,
                                    &job.destination,
                                    Some(&job),
                                ),
                                digest: None,
                                outcome: SyncOutcome::Failed(Error::DestinationRefused {
                                    path: shown(&path.display().to_string()),
                                    reason: format!(
                                        "it is the archive of {} too (--scoped keeps the \
                                         source registries apart)",
                                        shown(first)
                                    ),
                                }),
                            }));
                            continue;
                        }
                        claimed.insert(path, format!("docker://{}", job.source_text()));
                    }
                }
                items.push(None);
                jobs.push((items.len() - 1, job));
            }
        }
    }
    let total = items.len();
    let done = AtomicUsize::new(0);
    // Failures found while listing count as done already.
    for item in items.iter().flatten() {
        let n = done.fetch_add(1, Ordering::SeqCst) + 1;
        on_done(item, n, total);
    }
    let stop = AtomicBool::new(options.fail_fast && items.iter().any(Option::is_some));
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, SyncItem)>> = Mutex::new(Vec::new());
    let workers = options.images_at_once.clamp(1, 64).min(jobs.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let n = next.fetch_add(1, Ordering::SeqCst);
                let Some((slot, job)) = jobs.get(n) else {
                    return;
                };
                let item = if stop.load(Ordering::SeqCst) {
                    SyncItem {
                        source: format!("docker://{}", job.source_text()),
                        destination: destination_text(&options.target, &job.destination, Some(job)),
                        digest: None,
                        outcome: SyncOutcome::NotStarted,
                    }
                } else {
                    let item = run_one(&repos, &sources[job.source], job, options);
                    if matches!(item.outcome, SyncOutcome::Failed(_)) && options.fail_fast {
                        stop.store(true, Ordering::SeqCst);
                    }
                    item
                };
                let count = done.fetch_add(1, Ordering::SeqCst) + 1;
                on_done(&item, count, total);
                results.lock().expect("results lock").push((*slot, item));
            });
        }
    });
    for (slot, item) in results.into_inner().expect("results lock") {
        items[slot] = Some(item);
    }
    Ok(SyncReport {
        items: items.into_iter().flatten().collect(),
    })
}

fn destination_text(target: &SyncTarget, repository: &str, job: Option<&Job>) -> String {
    let name = match job {
        Some(job) => format!("{repository}{}{}", job.separator(), job.reference),
        None => repository.to_string(),
    };
    match (target, job) {
        (SyncTarget::Registry(_), _) => format!("docker://{name}"),
        // In a layout, an image goes under its full source name.
        (SyncTarget::Layout(dir), Some(job)) if job.separator() == ':' => {
            format!("oci:{}:{}", dir.display(), job.source_text())
        }
        (SyncTarget::Layout(dir), _) => format!("oci:{}", dir.display()),
        (SyncTarget::Archives { dir, kind }, Some(job)) => {
            let path = archive_path(dir, job)
                .unwrap_or_else(|_| dir.join(repository).join(&job.reference));
            format!("{}:{}", kind.format().name(), path.display())
        }
        (SyncTarget::Archives { dir, kind }, None) => {
            format!(
                "{}:{}",
                kind.format().name(),
                dir.join(repository).display()
            )
        }
    }
}

/// Refuse, before anything is listed, what an archive of `kind` cannot hold: an index
/// kept whole (`--all`), and referrers where the layout has no place for them.
fn archives_can_hold(kind: ArchiveKind, convert: &ConvertOptions) -> Result<()> {
    let transport = kind.format().transport();
    if convert.all_platforms && !transport.keeps_indexes() {
        return Err(Error::Usage(format!(
            "{} keeps a multi-platform index whole, which {} cannot hold (it has one \
             platform per image); sync to oci-archive:DIR/, oci:DIR or docker://, or leave \
             {0} out to copy one platform",
            crate::error::Setting::AllPlatforms,
            kind.format().name(),
        )));
    }
    let write = crate::transport::WriteOptions {
        docker_layout: convert.docker_layout,
        keep_manifests: true,
        ..Default::default()
    };
    if (convert.referrers || !convert.referrer_types.is_empty())
        && !transport.holds_referrers(&write)
    {
        return Err(Error::Usage(format!(
            "{} has no place for what is attached to images; {} needs oci-archive:DIR/, \
             oci:DIR or docker://",
            kind.format().name(),
            crate::error::Setting::Referrers
        )));
    }
    Ok(())
}

/// Longest name of one file or directory under an archive directory.
const MAX_FILE_NAME: usize = 255;

/// The archive `job` goes to under `dir`: `DIR/<its repository path>/<tag>.tar`, or
/// `.../@sha256-<hex>.tar` for a digest. Every part is checked to be one plain name
/// (no `/`, `.`, `..`, control character, nor over 255 bytes), whatever the sync list
/// or the registry said, so that nothing lands outside `dir`.
fn archive_path(dir: &Path, job: &Job) -> Result<PathBuf> {
    let refuse = |why: String| Error::DestinationRefused {
        path: shown(&format!("{}/{}", dir.display(), job.destination)),
        reason: why,
    };
    let file = match Digest::parse(&job.reference) {
        Ok(digest) => {
            let text = digest.to_string();
            let (algorithm, hex) = text.split_once(':').unwrap_or(("sha256", &text));
            format!("@{algorithm}-{hex}.tar")
        }
        Err(_) if valid_tag(&job.reference) => format!("{}.tar", job.reference),
        Err(_) => {
            return Err(refuse(format!(
                "{} is neither a tag nor a digest",
                shown(&job.reference)
            )))
        }
    };
    let mut path = dir.to_path_buf();
    for part in job
        .destination
        .split('/')
        .chain(std::iter::once(file.as_str()))
    {
        let plain = !part.is_empty()
            && part != "."
            && part != ".."
            && part.len() <= MAX_FILE_NAME
            && !part.chars().any(|c| c == '\\' || c.is_control());
        if !plain {
            return Err(refuse(format!(
                "{} cannot be a file name there",
                shown(part)
            )));
        }
        path.push(part);
    }
    Ok(path)
}

/// Make the directories between `dir` (created when missing, with its parents) and
/// the archive `path` under it, one at a time, following no link: a link or a file
/// where a directory must be is refused.
fn make_archive_dirs(dir: &Path, path: &Path) -> Result<()> {
    let io = |what: &Path, e: std::io::Error| Error::Io {
        context: format!(
            "creating the directory {}",
            shown(&what.display().to_string())
        ),
        cause: Arc::new(e),
    };
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let Ok(below) = path.parent().unwrap_or(dir).strip_prefix(dir) else {
        return Ok(());
    };
    let mut at = dir.to_path_buf();
    for part in below.components() {
        at.push(part);
        match std::fs::symlink_metadata(&at) {
            Ok(meta) if meta.file_type().is_dir() => continue,
            Ok(meta) => {
                return Err(Error::DestinationRefused {
                    path: shown(&path.display().to_string()),
                    reason: format!(
                        "{} is {}, where a directory of archives goes (no link is followed)",
                        shown(&at.display().to_string()),
                        if meta.file_type().is_symlink() {
                            "a symbolic link"
                        } else {
                            "not a directory"
                        }
                    ),
                })
            }
            Err(_) => match std::fs::create_dir(&at) {
                Ok(()) => {}
                // Made meanwhile by another image's copy: checked again.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let meta = std::fs::symlink_metadata(&at).map_err(|e| io(&at, e))?;
                    if !meta.file_type().is_dir() {
                        return Err(Error::DestinationRefused {
                            path: shown(&path.display().to_string()),
                            reason: format!(
                                "{} appeared meanwhile, and is no directory",
                                shown(&at.display().to_string())
                            ),
                        });
                    }
                }
                Err(e) => return Err(io(&at, e)),
            },
        }
    }
    Ok(())
}

/// What an archive already at `path` holds of `job`'s image: for each image there
/// named by the job's full source name (any image, for a job by digest), its
/// manifest digest, the digest of the index it was read from, and its config digest.
/// `None` when there is no archive; an error when what is there reads as no archive
/// of `kind` (it is then not replaced).
fn archive_holds(
    path: &Path,
    kind: ArchiveKind,
    job: &Job,
    all_platforms: bool,
) -> Result<Option<Vec<Digest>>> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_file() => {}
        Ok(_) => {
            return Err(Error::DestinationRefused {
                path: shown(&path.display().to_string()),
                reason: "it is there and is no regular file (no link is followed)".into(),
            })
        }
        Err(_) => return Ok(None),
    }
    let location = Location::new(kind.format(), path.display().to_string());
    let read = crate::transport::ReadOptions {
        format: Some(kind.format()),
        all_platforms,
        ..Default::default()
    };
    let source = crate::location::open_source(&location, &read)?;
    let by_name = job.separator() == ':';
    let name = job.source_text();
    let mut held = Vec::new();
    for image in &source.images {
        if by_name && !image.tags.iter().any(|t| t.to_string() == name) {
            continue;
        }
        held.extend(image.manifest.as_ref().map(|m| m.digest.clone()));
        held.extend(image.index.as_ref().map(|i| i.descriptor.digest.clone()));
        held.push(image.config.digest.clone());
    }
    Ok(Some(held))
}

/// The config digest of the image `reference` names in `repo` (its bytes `fetched`),
/// or of its `wanted` platform when it is an index (one more request); `None` when
/// its manifest names no config (schema 1) or the index lists no such platform.
fn source_config(
    repo: &Repo,
    fetched: &crate::registry::tree::Fetched,
    wanted: &Platform,
) -> Result<Option<Digest>> {
    let media_type = crate::model::media::manifest_media_type(&fetched.bytes).0;
    let manifest = if crate::model::media::is_index(&media_type) {
        let Some(member) = member_for(&fetched.bytes, wanted, &fetched.digest)? else {
            return Ok(None);
        };
        match crate::registry::tree::fetch_manifest_if_held(repo, &member.to_string())? {
            Some(found) => found.bytes,
            None => return Ok(None),
        }
    } else {
        fetched.bytes.clone()
    };
    let value: serde_json::Value =
        crate::model::image::parse_json(&manifest, &shown(&fetched.digest.to_string()))?;
    Ok(value["config"]["digest"]
        .as_str()
        .and_then(|d| Digest::parse(d).ok()))
}

/// The tags or digests of `wanted` in `repository`.
fn expand(
    repos: &Repos,
    s: usize,
    source: &SyncSource,
    repository: &str,
    wanted: &TagChoice,
) -> Result<Vec<String>> {
    let filter: Box<dyn Fn(&str) -> bool> = match wanted {
        TagChoice::Listed(tags) => return Ok(tags.clone()),
        TagChoice::Every => Box::new(|_| true),
        TagChoice::Regex(pattern) => {
            let re = compile_regex(pattern).map_err(Error::Usage)?;
            Box::new(move |tag| re.is_match(tag))
        }
        TagChoice::Semver(range) => {
            let req = semver_range(range).map_err(Error::Usage)?;
            Box::new(move |tag| tag_version(tag).is_some_and(|v| req.matches(&v)))
        }
    };
    let repo = repos.get(format!("src {s} {repository}"), repository, &source.options)?;
    let mut tags = Vec::new();
    for_each_listed(&repo.client, tag_listing(&repo), &mut |tag| {
        if tags.len() >= MAX_SYNC_IMAGES {
            return Err(Error::Unsupported(format!(
                "{}: more than {MAX_SYNC_IMAGES} tags",
                shown(repository)
            )));
        }
        if valid_tag(tag) && filter(tag) {
            tags.push(tag.to_string());
        }
        Ok(true)
    })?;
    Ok(tags)
}

/// Copy one image, unless the destination holds it already.
fn run_one(repos: &Repos, source: &SyncSource, job: &Job, options: &SyncOptions) -> SyncItem {
    let mut item = SyncItem {
        source: format!("docker://{}", job.source_text()),
        destination: destination_text(&options.target, &job.destination, Some(job)),
        digest: None,
        outcome: SyncOutcome::NotStarted,
    };
    item.outcome = match copy_one(repos, source, job, options, &mut item.digest) {
        Ok(outcome) => outcome,
        Err(e) => SyncOutcome::Failed(e),
    };
    item
}

/// The error for a source image that is not there.
fn no_such_image(repo: &Repo, job: &Job) -> Error {
    repo.client
        .error(format!("{}: no such image", shown(&job.source_text())))
}

fn copy_one(
    repos: &Repos,
    source: &SyncSource,
    job: &Job,
    options: &SyncOptions,
    digest: &mut Option<Digest>,
) -> Result<SyncOutcome> {
    let src_repo = repos.get(
        format!("src {} {}", job.source, job.repository),
        &job.repository,
        &source.options,
    )?;
    let wanted = options
        .convert
        .platform
        .clone()
        .unwrap_or_else(Platform::host);
    if let SyncTarget::Archives {
        dir,
        kind: ArchiveKind::Docker,
    } = &options.target
    {
        // A docker-archive holds no manifest: the image is found there by its config,
        // which the source's manifest names (one GET in place of the HEAD).
        let path = archive_path(dir, job)?;
        let Some(fetched) =
            crate::registry::tree::fetch_manifest_if_held(&src_repo, &job.reference)?
        else {
            return Err(no_such_image(&src_repo, job));
        };
        *digest = Some(fetched.digest.clone());
        if let Some(held) = archive_holds(&path, ArchiveKind::Docker, job, false)? {
            if let Some(config) = source_config(&src_repo, &fetched, &wanted)? {
                if held.contains(&config) {
                    return Ok(SyncOutcome::Skipped);
                }
            }
        }
    } else {
        let Some(held) = held_digest(&src_repo, &job.reference)? else {
            return Err(no_such_image(&src_repo, job));
        };
        *digest = Some(held.clone());
        let present: Vec<Digest> = match &options.target {
            SyncTarget::Registry(_) => {
                let dst = repos.get(
                    format!("dst {}", job.destination),
                    &job.destination,
                    &options.convert.dest_registry,
                )?;
                held_digest(&dst, &job.reference)?.into_iter().collect()
            }
            SyncTarget::Layout(dir) => layout_digest(dir, job, &held).into_iter().collect(),
            SyncTarget::Archives { dir, kind } => archive_holds(
                &archive_path(dir, job)?,
                *kind,
                job,
                options.convert.all_platforms,
            )?
            .unwrap_or_default(),
        };
        if present.contains(&held) {
            return Ok(SyncOutcome::Skipped);
        }
        // A multi-platform image copied as one platform: the destination holds that
        // platform's manifest, which the source's index lists (one more request, only
        // when the digests differ).
        if !present.is_empty() && !options.convert.all_platforms {
            if let Some(member) = platform_member(&src_repo, &job.reference, &wanted)? {
                if present.contains(&member) {
                    return Ok(SyncOutcome::Skipped);
                }
            }
        }
    }
    if options.dry_run {
        return Ok(SyncOutcome::WouldCopy);
    }
    let convert = ConvertOptions {
        // A mirror keeps each image's digest: what is compared on the next run.
        keep_manifests: true,
        source_registry: source.options.clone(),
        images: Vec::new(),
        tags: Vec::new(),
        digest_file: None,
        ..options.convert.clone()
    };
    let src = Location::new(Format::REGISTRY, job.source_text());
    // Named by its full source name (`io.containerd.image.name`, as docker and
    // containerd name the images of a multi-image layout; its tag is the ref name;
    // a docker-archive's `RepoTags`); one pulled by digest is listed unnamed.
    let full_name = (job.separator() == ':').then(|| job.source_text());
    let (dst, convert) = match &options.target {
        SyncTarget::Registry(_) => (
            Location::new(
                Format::REGISTRY,
                format!("{}{}{}", job.destination, job.separator(), job.reference),
            ),
            convert,
        ),
        SyncTarget::Layout(dir) => (
            Location {
                reference: full_name,
                ..Location::new(Format::OCI, dir.display().to_string())
            },
            convert,
        ),
        SyncTarget::Archives { dir, kind } => {
            let path = archive_path(dir, job)?;
            make_archive_dirs(dir, &path)?;
            // An archive there holds another image (or an older one): replaced, once
            // the new one is whole.
            let force = std::fs::symlink_metadata(&path).is_ok();
            (
                Location {
                    reference: full_name,
                    ..Location::new(kind.format(), path.display().to_string())
                },
                ConvertOptions { force, ..convert },
            )
        }
    };
    convert_between(&src, &dst, &convert, &NoProgress)?;
    Ok(SyncOutcome::Copied)
}

/// The digest of the manifest for `wanted` that the index `reference` names in `repo`
/// lists; `None` when `reference` is no index or lists no such platform.
fn platform_member(repo: &Repo, reference: &str, wanted: &Platform) -> Result<Option<Digest>> {
    let Some(fetched) = crate::registry::tree::fetch_manifest_if_held(repo, reference)? else {
        return Ok(None);
    };
    if !crate::model::media::is_index(&crate::model::media::manifest_media_type(&fetched.bytes).0) {
        return Ok(None);
    }
    member_for(&fetched.bytes, wanted, &fetched.digest)
}

/// The digest of the manifest for `wanted` that the index `bytes` (whose digest is
/// `digest`) lists, if it lists one.
fn member_for(bytes: &[u8], wanted: &Platform, digest: &Digest) -> Result<Option<Digest>> {
    let index: serde_json::Value =
        crate::model::image::parse_json(bytes, &shown(&digest.to_string()))?;
    let member = index["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|entry| {
            let p = &entry["platform"];
            let platform = Platform {
                os: p["os"].as_str().unwrap_or_default().to_string(),
                architecture: p["architecture"].as_str().unwrap_or_default().to_string(),
                variant: p["variant"].as_str().map(str::to_string),
            };
            platform.satisfies(wanted)
        })
        .and_then(|entry| Digest::parse(entry["digest"].as_str()?).ok());
    Ok(member)
}

/// The manifest digest the OCI layout `dir` lists for `job`: under its full source
/// name (`io.containerd.image.name`), or, for an image pulled by digest, `held` when
/// the layout lists it at all.
fn layout_digest(dir: &Path, job: &Job, held: &Digest) -> Option<Digest> {
    use std::io::Read;
    let file = std::fs::File::open(dir.join("index.json")).ok()?;
    let mut text = Vec::new();
    file.take(crate::model::image::MAX_JSON_SIZE + 1)
        .read_to_end(&mut text)
        .ok()?;
    if text.len() as u64 > crate::model::image::MAX_JSON_SIZE {
        return None;
    }
    let index: serde_json::Value = serde_json::from_slice(&text).ok()?;
    let by_name = job.separator() == ':';
    let name = job.source_text();
    index["manifests"].as_array()?.iter().find_map(|m| {
        let digest = Digest::parse(m["digest"].as_str()?).ok()?;
        let matches = if by_name {
            m["annotations"]["io.containerd.image.name"].as_str() == Some(name.as_str())
        } else {
            digest == *held
        };
        matches.then_some(digest)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_skopeo_yaml() {
        let yaml = "r.example.com:5000:\n  images:\n    busybox: []\n    team/redis: ['1.0', 'sha256:0000000000000000000000000000000000000000000000000000000000000000']\n  images-by-tag-regex:\n    nginx: ^1\\.13\n  images-by-semver:\n    alpine: '>= 3.12.0'\n  credentials: {username: john, password: secret}\n  tls-verify: false\n";
        let s = parse_sync_yaml(yaml, &RegistryOptions::default()).unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].registry, "r.example.com:5000");
        assert_eq!(s[0].options.creds.as_deref(), Some("john:secret"));
        assert!(!s[0].options.tls_verify);
        let names: Vec<_> = s[0]
            .repositories
            .iter()
            .map(|r| r.repository.as_str())
            .collect();
        assert_eq!(names, ["busybox", "team/redis", "nginx", "alpine"]);
        assert_eq!(s[0].repositories[0].tags, TagChoice::Every);
    }

    #[test]
    fn refuses_what_is_not_a_host_a_tag_or_a_pattern() {
        let o = RegistryOptions::default();
        assert!(parse_sync_yaml("notahost:\n  images:\n    a: []\n", &o).is_err());
        assert!(parse_sync_yaml("r.io:\n  images:\n    a: ['bad tag']\n", &o).is_err());
        assert!(parse_sync_yaml("r.io:\n  images:\n    A: []\n", &o).is_err());
        assert!(parse_sync_yaml("r.io:\n  images-by-tag-regex:\n    a: '('\n", &o).is_err());
        assert!(parse_sync_yaml("r.io:\n  images-by-semver:\n    a: '>= banana'\n", &o).is_err());
        assert!(parse_sync_yaml("r.io:\n  imagez: {}\n", &o).is_err());
    }

    #[test]
    fn tags_read_as_versions() {
        let req = semver_range(">= 3.12.0, < 4").unwrap();
        let ok = |t: &str| tag_version(t).is_some_and(|v| req.matches(&v));
        assert!(ok("3.12") && ok("v3.13.1") && ok("3.20.0"));
        assert!(!ok("3.11") && !ok("4.0") && !ok("latest") && !ok("3.12.0-rc1"));
    }

    #[test]
    fn archives_are_plain_names_under_their_directory() {
        let job = |destination: &str, reference: &str| Job {
            source: 0,
            repository: "h.io/team/app".into(),
            reference: reference.into(),
            destination: destination.into(),
        };
        let dir = Path::new("/srv/a");
        let path = |d: &str, r: &str| archive_path(dir, &job(d, r));
        assert_eq!(
            path("team/app", "1.0").unwrap(),
            Path::new("/srv/a/team/app/1.0.tar")
        );
        let hex = "0".repeat(64);
        assert_eq!(
            path("team/app", &format!("sha256:{hex}")).unwrap(),
            Path::new(&format!("/srv/a/team/app/@sha256-{hex}.tar"))
        );
        // A tag that reads like a digest's file cannot be one: tags hold no `@`.
        assert_eq!(
            path("team/app", &format!("sha256-{hex}")).unwrap(),
            Path::new(&format!("/srv/a/team/app/sha256-{hex}.tar"))
        );
        for (destination, reference) in [
            ("../x", "1"),
            ("team/..", "1"),
            ("/etc", "1"),
            ("team//app", "1"),
            ("team/./app", "1"),
            ("team/app", "../1"),
            ("team/app", "a/b"),
            ("team/app", ".."),
            ("team/a\u{0}pp", "1"),
            ("team/a\\pp", "1"),
            ("team/app", ""),
        ] {
            assert!(
                path(destination, reference).is_err(),
                "{destination} {reference}"
            );
        }
        let long = "a".repeat(256);
        assert!(path(&format!("team/{long}"), "1").is_err());
    }

    #[test]
    fn names_destinations() {
        let t = SyncTarget::Registry("m:5000/pre".into());
        assert_eq!(
            destination_repository(&t, "h.io:5000", "team/app", false),
            "m:5000/pre/team/app"
        );
        assert_eq!(
            destination_repository(&t, "h.io:5000", "team/app", true),
            "m:5000/pre/h.io_5000/team/app"
        );
    }
}
