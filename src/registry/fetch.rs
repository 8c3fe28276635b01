//! Reading blobs from a registry: a `Range` request resumes a body cut short, and the
//! blob cache keeps what an interrupted pull verified, so that the next run fetches
//! only the rest.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ureq::http::Method;

use super::client::{header, Client, Pace, Payload, Scope};
use crate::error::{Error, Result};
use crate::model::digest::{Digest, Hasher};

/// One repository of a registry, and where its blobs are cached.
#[derive(Debug)]
pub(crate) struct Repo {
    /// The client for its registry.
    pub client: Client,
    /// The repository path.
    pub repository: String,
    /// The blob cache (`blobs/sha256/<hex>` and `.partial` files), if any.
    pub cache: Option<PathBuf>,
}

impl Repo {
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

    fn cache_paths(&self, digest: &Digest) -> Option<(PathBuf, PathBuf)> {
        let dir = self.cache.as_ref()?.join("blobs").join("sha256");
        Some((
            dir.join(digest.hex()),
            dir.join(format!("{}.partial", digest.hex())),
        ))
    }

    /// Drop `digest` from the cache (once an output holds it).
    pub(crate) fn uncache(&self, digest: &Digest) {
        if let Some((done, partial)) = self.cache_paths(digest) {
            let _ = fs::remove_file(done);
            let _ = fs::remove_file(partial);
        }
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
    failures: u32,
    /// The rate floor of the current attempt.
    pace: Pace,
}

impl Fetch {
    pub(crate) fn new(repo: Arc<Repo>, digest: Digest, size: u64, start: u64) -> Fetch {
        let repo_pace = repo.client.pace();
        Fetch {
            repo,
            digest,
            size,
            pos: start.min(size),
            body: None,
            failures: 0,
            pace: repo_pace,
        }
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
            let failure = match body.read(&mut buf[..want]) {
                Ok(0) => io::Error::new(io::ErrorKind::UnexpectedEof, "the body ended early"),
                Ok(n) => match self.pace.advance(n) {
                    // The bytes are good; the next read starts a new attempt.
                    Some(slow) => {
                        self.pos += n as u64;
                        self.give_up_or_wait(slow)?;
                        return Ok(n);
                    }
                    None => {
                        self.pos += n as u64;
                        return Ok(n);
                    }
                },
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
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
        if self.failures >= self.repo.client.retries() {
            return Err(Error::io(format!("reading {}", self.what()), failure).into_io());
        }
        std::thread::sleep(self.repo.client.delay(self.failures, None));
        self.failures += 1;
        Ok(())
    }
}

/// A blob's bytes through the cache: the verified copy when there is one, else the
/// bytes a previous run kept followed by the rest from the registry, written to the
/// cache as they pass. At the end the whole is checked against the digest: a match
/// makes the cached copy complete, a mismatch removes it.
pub(crate) struct Cached {
    what: String,
    digest: Digest,
    size: u64,
    pos: u64,
    hasher: Hasher,
    /// The cache file read from (complete or partial) and, for a partial one, its
    /// length when opened.
    file: File,
    kept: u64,
    /// Where new bytes come from and go to, for a partial file.
    rest: Option<Fetch>,
    paths: (PathBuf, PathBuf),
    complete: bool,
}

impl Cached {
    /// The cached reader for `digest`, or `None` when there is no cache. When another
    /// reader (a prefetching thread, another process) is filling the same blob, this
    /// waits for it, then reads what it left: the complete blob, or the part it had.
    pub(crate) fn open(repo: &Arc<Repo>, digest: &Digest, size: u64) -> Result<Option<Cached>> {
        let Some((done, partial)) = repo.cache_paths(digest) else {
            return Ok(None);
        };
        let what = repo.describe(digest);
        let complete = |file: File| Cached {
            what: what.clone(),
            digest: digest.clone(),
            size,
            pos: 0,
            hasher: Hasher::new(),
            file,
            kept: size,
            rest: None,
            paths: (done.clone(), partial.clone()),
            complete: true,
        };
        let dir = partial.parent().expect("a cache path has a directory");
        fs::create_dir_all(dir)
            .map_err(|e| cache_error(format!("creating {}", dir.display()), e))?;
        let mut file = None;
        for _ in 0..8 {
            if let Ok(f) = File::open(&done) {
                return Ok(Some(complete(f)));
            }
            let f = OpenOptions::new()
                .read(true)
                .append(true)
                .create(true)
                .open(&partial)
                .map_err(|e| cache_error(format!("opening {}", partial.display()), e))?;
            rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive)
                .map_err(|e| Error::io(format!("locking {}", partial.display()), e.into()))?;
            // Whoever held the lock may have finished (and renamed the file) or given
            // up (and removed it) meanwhile: only a file still named `partial` is ours.
            if File::open(&done).is_ok() {
                continue;
            }
            let same = match (f.metadata(), fs::metadata(&partial)) {
                (Ok(a), Ok(b)) => {
                    use std::os::unix::fs::MetadataExt;
                    a.ino() == b.ino() && a.dev() == b.dev()
                }
                _ => false,
            };
            if same {
                file = Some(f);
                break;
            }
        }
        let Some(file) = file else {
            return Ok(None);
        };
        let mut kept = file
            .metadata()
            .map_err(|e| Error::io(format!("reading {}", partial.display()), e))?
            .len();
        if kept > size {
            file.set_len(0)
                .map_err(|e| Error::io(format!("truncating {}", partial.display()), e))?;
            kept = 0;
        }
        let rest = Fetch::new(Arc::clone(repo), digest.clone(), size, kept);
        Ok(Some(Cached {
            what,
            digest: digest.clone(),
            size,
            pos: 0,
            hasher: Hasher::new(),
            file,
            kept,
            rest: Some(rest),
            paths: (done, partial),
            complete: false,
        }))
    }

    /// Is the cached copy complete (and so nothing left to fetch)?
    pub(crate) fn complete(&self) -> bool {
        self.complete
    }

    fn finish(&mut self) -> Result<()> {
        let (actual, _) = std::mem::take(&mut self.hasher).finish();
        let (done, partial) = &self.paths;
        if actual != self.digest {
            let _ = fs::remove_file(if self.complete { done } else { partial });
            return Err(Error::DigestMismatch {
                file: self.what.clone(),
                expected: self.digest.clone(),
                actual,
            });
        }
        if !self.complete {
            self.file
                .sync_data()
                .map_err(|e| Error::io(format!("writing {}", partial.display()), e))?;
            fs::rename(partial, done)
                .map_err(|e| Error::io(format!("renaming {}", partial.display()), e))?;
            self.complete = true;
        }
        Ok(())
    }
}

impl Read for Cached {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.size || buf.is_empty() {
            return Ok(0);
        }
        let want = buf
            .len()
            .min((self.size - self.pos).min(usize::MAX as u64) as usize);
        let n = if self.pos < self.kept {
            let want = want.min((self.kept - self.pos) as usize);
            self.file.seek(SeekFrom::Start(self.pos))?;
            let n = self.file.read(&mut buf[..want])?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("{} is shorter than its size in the cache", self.what),
                ));
            }
            n
        } else {
            let rest = self.rest.as_mut().ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("{} is shorter than its size in the cache", self.what),
                )
            })?;
            let n = rest.read(&mut buf[..want])?;
            if n == 0 {
                return Ok(0);
            }
            self.file.write_all(&buf[..n])?;
            self.kept += n as u64;
            n
        };
        self.hasher.update(&buf[..n]);
        self.pos += n as u64;
        if self.pos == self.size {
            self.finish().map_err(Error::into_io)?;
        }
        Ok(n)
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

/// An error creating the blob cache: when it is a permission problem or a read-only
/// file system, say how to use another cache or none.
fn cache_error(context: String, cause: std::io::Error) -> Error {
    use std::io::ErrorKind::{PermissionDenied, ReadOnlyFilesystem};
    if matches!(cause.kind(), PermissionDenied | ReadOnlyFilesystem) {
        return Error::io(
            format!("{context} (the blob cache: choose another with --cache DIR, or none with --no-cache)"),
            cause,
        );
    }
    Error::io(context, cause)
}
