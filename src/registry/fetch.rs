//! Reading blobs from a registry: a `Range` request resumes a body cut short (the
//! blob cache, `cache.rs`, keeps what an interrupted pull got for the next run).

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use ureq::http::Method;

use super::cache::BlobCache;
use super::client::{header, Client, Pace, Payload, Scope};
use super::retry::Attempts;
use crate::error::{Error, Result};
use crate::model::digest::Digest;

/// One repository of a registry, and where its blobs are cached.
#[derive(Debug)]
pub(crate) struct Repo {
    /// The client for its registry (shared by the repositories of one push).
    pub client: Arc<Client>,
    /// The repository path.
    pub repository: String,
    /// The blob cache, if any.
    pub cache: Option<Arc<BlobCache>>,
    /// Layers stream past the cache (set when the destination skips what it holds on
    /// a re-run, as a registry does, so that a copy kept to resume from is not needed).
    pub streaming: AtomicBool,
}

impl Repo {
    /// Another repository of the same registry, through the same client and cache.
    pub(crate) fn sibling(&self, repository: &str) -> Repo {
        Repo {
            client: Arc::clone(&self.client),
            repository: repository.to_string(),
            cache: self.cache.clone(),
            streaming: Default::default(),
        }
    }

    /// `/v2/<repository>/<rest>`.
    pub(crate) fn url(&self, rest: &str) -> String {
        self.client.url(&format!("/v2/{}/{rest}", self.repository))
    }

    /// What a blob is called in messages.
    pub(crate) fn describe(&self, digest: &Digest) -> String {
        format!(
            "{}/{}@{}",
            self.client.registry(),
            self.repository,
            digest.short()
        )
    }
}

/// A reader over a blob's bytes from `start`, resuming with `Range` requests when the
/// connection fails or the body stalls or crawls, at most the client's retry count
/// for the whole blob (however many bytes each attempt got: a registry that sends a
/// byte per attempt cannot keep a pull going forever).
pub(crate) struct Fetch {
    repo: Arc<Repo>,
    digest: Digest,
    size: u64,
    pos: u64,
    body: Option<ureq::BodyReader<'static>>,
    /// The failed attempts so far, for the whole blob.
    attempts: Attempts,
    /// The rate floor of the current attempt.
    pace: Pace,
    /// Whether the cache is told where the blob was seen once all of it was read, so
    /// that a later push to another repository of this registry mounts it.
    remember: bool,
}

impl Fetch {
    pub(crate) fn new(repo: Arc<Repo>, digest: Digest, size: u64, start: u64) -> Fetch {
        let repo_pace = repo.client.pace();
        let attempts = repo.client.retry_policy().attempts();
        Fetch {
            repo,
            digest,
            size,
            pos: start.min(size),
            body: None,
            attempts,
            pace: repo_pace,
            remember: false,
        }
    }

    /// The fetch, telling the cache where the blob was seen once all of it was read
    /// (the reader above checks its digest; a registry checks a mount's itself).
    pub(crate) fn remembering(mut self) -> Fetch {
        self.remember = true;
        self
    }

    fn open(&mut self) -> Result<()> {
        let url = self.repo.url(&format!("blobs/{}", self.digest));
        let range = format!("bytes={}-", self.pos);
        let headers: Vec<(&str, &str)> = if self.pos > 0 {
            vec![("Range", range.as_str())]
        } else {
            Vec::new()
        };
        let scope = Scope::pull(&self.repo.repository);
        let mut response =
            self.repo
                .client
                .send(Method::GET, &url, &scope, &headers, Payload::Empty)?;
        let status = response.status().as_u16();
        let mut skip = 0;
        match status {
            200 => skip = self.pos,
            206 => {
                let start = header(&response, "content-range")
                    .and_then(|v| v.strip_prefix("bytes "))
                    .and_then(|v| v.split('-').next())
                    .and_then(|v| v.parse::<u64>().ok());
                if start != Some(self.pos) {
                    return Err(self.repo.client.error(format!(
                        "{}: answered another range than asked",
                        self.what()
                    )));
                }
            }
            404 => {
                return Err(Error::Missing {
                    file: self.what(),
                    what: "blob".into(),
                })
            }
            _ => return Err(self.repo.client.unexpected(&self.what(), &mut response)),
        }
        let mut body = response.into_body().into_reader();
        if skip > 0 {
            // The registry ignored the range: the bytes already had are read past.
            io::copy(&mut (&mut body).take(skip), &mut io::sink())
                .map_err(|e| Error::io(format!("reading {}", self.what()), e))?;
        }
        self.body = Some(body);
        self.pace.restart();
        Ok(())
    }

    fn what(&self) -> String {
        self.repo.describe(&self.digest)
    }
}

impl Read for Fetch {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.size || buf.is_empty() {
            return Ok(0);
        }
        loop {
            if self.body.is_none() {
                match self.open() {
                    Ok(()) => {}
                    Err(e) => return Err(e.into_io()),
                }
            }
            let want = buf
                .len()
                .min((self.size - self.pos).min(usize::MAX as u64) as usize);
            let body = self.body.as_mut().expect("opened above");
            let failure = match self.pace.read(body, &mut buf[..want]) {
                Ok(0) => io::Error::new(io::ErrorKind::UnexpectedEof, "the body ended early"),
                Ok(n) => {
                    self.pos += n as u64;
                    if self.pos == self.size && self.remember {
                        if let Some(cache) = &self.repo.cache {
                            let registry = self.repo.client.registry();
                            cache.remember(&self.digest, registry, &self.repo.repository);
                        }
                    }
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // A stall (the per-read timeout), a crawl (the pace) or a cut: the
                // next attempt asks for the rest with a Range request.
                Err(e) => e,
            };
            self.give_up_or_wait(failure)?;
        }
    }
}

impl Fetch {
    /// After a failed attempt: drop the body, then fail with `failure` when the retry
    /// budget is spent, else wait the backoff before the next attempt.
    fn give_up_or_wait(&mut self, failure: io::Error) -> io::Result<()> {
        self.body = None;
        if !self.attempts.wait_for_another(None) {
            return Err(Error::io(format!("reading {}", self.what()), failure).into_io());
        }
        Ok(())
    }
}

/// The blob cache directory by default: `$XDG_CACHE_HOME/dockhand`, else
/// `~/.cache/dockhand`.
pub(crate) fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))?;
    Some(base.join("dockhand"))
}
