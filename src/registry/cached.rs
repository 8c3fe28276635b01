//! Reading a blob through the cache: a verified entry, or the registry's bytes
//! written to `<hex>.partial` as they pass and renamed to `<hex>` once they hash
//! right (the cache itself, and why it can be trusted, is `cache.rs`).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::sync::Arc;

use rustix::fs::FlockOperation;

use super::cache::{holds, partial_name, BlobCache, Entry, Locked};
use super::fetch::{Fetch, Repo};
use crate::error::{Error, Result};
use crate::model::digest::{Digest, Hasher};

/// How often opening one entry is tried again when other runs keep renaming it.
const MAX_RACES: usize = 8;

/// A blob's bytes through the cache: a verified copy, or the registry's bytes written
/// to `<hex>.partial` as they pass and renamed to `<hex>` once they hash right.
pub(crate) struct Cached {
    repo: Arc<Repo>,
    digest: Digest,
    size: u64,
    pos: u64,
    file: File,
    /// `None` for a verified copy; else the registry's bytes and their running hash.
    filling: Option<(Fetch, Hasher)>,
}

impl Cached {
    /// The cached reader for `digest`, or `None` when the blob cannot go through the
    /// cache (no cache, or an odd entry in the way, with a warning). When another run
    /// or thread is filling the same blob, this waits for it, then reads what it left.
    pub(crate) fn open(repo: &Arc<Repo>, digest: &Digest, size: u64) -> Result<Option<Cached>> {
        let Some(cache) = &repo.cache else {
            return Ok(None);
        };
        let what = repo.describe(digest);
        let done = digest.hex().to_string();
        let partial = partial_name(digest);
        let odd = |name: &str, kind: &str| {
            cache.warn(format!(
                "{}: ignoring the blob cache entry {}: it is {kind}, not a regular file; \
                 fetching {what} without the cache",
                crate::text::shown(&what),
                crate::text::shown(&cache.path_of(name))
            ));
            Ok(None)
        };
        let reading =
            |e: io::Error, name: &str| Error::io(format!("reading {}", cache.path_of(name)), e);
        for _ in 0..MAX_RACES {
            match cache.open_entry(&done, false)? {
                Entry::Odd(kind) => return odd(&done, kind),
                Entry::File(file) => {
                    rustix::fs::flock(&file, FlockOperation::LockShared)
                        .map_err(|e| reading(e.into(), &done))?;
                    // One this run verified as it filled it (a prefetching thread) and
                    // has held since is not read twice; every reader still checks
                    // the bytes as they stream.
                    if cache.pinned_same(digest, &file)
                        || holds(&file, digest, size).map_err(|e| reading(e, &done))?
                    {
                        cache.pin(digest, &file);
                        return Ok(Some(Cached::verified(repo, digest, size, file)));
                    }
                    cache.warn(format!(
                        "{}: the blob cache entry {} does not match its digest; discarded \
                         and fetched again",
                        crate::text::shown(&what),
                        crate::text::shown(&cache.path_of(&done))
                    ));
                    // Removed only if no other run reads it and the name is still this
                    // file (another may have put a good copy there meanwhile).
                    if rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive).is_ok() {
                        cache.remove_if_still(&done, &file);
                    }
                }
                Entry::Absent => {}
            }
            let mut file = match cache.open_entry(&partial, true)? {
                Entry::File(file) => file,
                Entry::Odd(kind) => return odd(&partial, kind),
                Entry::Absent => continue,
            };
            // Whoever holds the lock may finish (and rename the file) or give up (and
            // remove it) meanwhile: only a file still named `partial` is ours.
            match cache.lock_partial(&partial, &file, repo.client.stall_patience())? {
                Locked::Ours => {}
                Locked::Gone => continue,
                Locked::Stuck => {
                    cache.warn(format!(
                        "{}: another run holds its blob cache entry without making \
                         progress; fetched without the cache",
                        crate::text::shown(&what)
                    ));
                    return Ok(None);
                }
            }
            let mut kept = file.metadata().map_err(|e| reading(e, &partial))?.len();
            if kept > size {
                file.set_len(0).map_err(|e| reading(e, &partial))?;
                kept = 0;
            }
            if kept > 0 {
                // What an earlier run kept is checked with the rest before any byte is
                // served, so that a bad entry can still be fetched again.
                if fill_rest(repo, cache, &mut file, kept, digest, size)? {
                    commit(cache, &partial, &done, &file)?;
                    cache.pin(digest, &file);
                    file.seek(SeekFrom::Start(0))
                        .map_err(|e| reading(e, &done))?;
                    return Ok(Some(Cached::verified(repo, digest, size, file)));
                }
                cache.warn(format!(
                    "{}: the bytes an earlier pull kept in {} do not match its digest; \
                     discarded and fetched again",
                    crate::text::shown(&what),
                    crate::text::shown(&cache.path_of(&partial))
                ));
                file.set_len(0).map_err(|e| reading(e, &partial))?;
            }
            file.seek(SeekFrom::Start(0))
                .map_err(|e| reading(e, &partial))?;
            let fetch = Fetch::new(Arc::clone(repo), digest.clone(), size, 0);
            return Ok(Some(Cached {
                filling: Some((fetch, Hasher::new())),
                ..Cached::verified(repo, digest, size, file)
            }));
        }
        cache.warn(format!(
            "{}: other runs kept changing its blob cache entry; fetched without the cache",
            crate::text::shown(&what)
        ));
        Ok(None)
    }

    fn verified(repo: &Arc<Repo>, digest: &Digest, size: u64, file: File) -> Cached {
        Cached {
            repo: Arc::clone(repo),
            digest: digest.clone(),
            size,
            pos: 0,
            file,
            filling: None,
        }
    }

    /// Is the cached copy complete (and so nothing left to fetch)?
    pub(crate) fn complete(&self) -> bool {
        self.filling.is_none()
    }

    /// The last byte arrived: a match makes the entry complete, a mismatch removes it.
    fn finish(&mut self) -> Result<()> {
        let Some((_, hasher)) = self.filling.take() else {
            return Ok(());
        };
        let cache = self.repo.cache.as_ref().expect("filling needs a cache");
        let partial = partial_name(&self.digest);
        let (actual, _) = hasher.finish();
        if actual != self.digest {
            cache.remove_if_still(&partial, &self.file);
            return Err(Error::DigestMismatch {
                file: self.repo.describe(&self.digest),
                expected: self.digest.clone(),
                actual,
            });
        }
        commit(cache, &partial, self.digest.hex(), &self.file)?;
        cache.pin(&self.digest, &self.file);
        // A later push of it to another repository of this registry mounts it.
        cache.remember(
            &self.digest,
            self.repo.client.registry(),
            &self.repo.repository,
        );
        Ok(())
    }
}

/// Append the blob's bytes from `kept` to `file` (held under the exclusive lock), then
/// tell whether the whole hashes to `digest`.
fn fill_rest(
    repo: &Arc<Repo>,
    cache: &BlobCache,
    file: &mut File,
    kept: u64,
    digest: &Digest,
    size: u64,
) -> Result<bool> {
    let path = cache.path_of(&partial_name(digest));
    file.seek(SeekFrom::Start(kept))
        .map_err(|e| Error::io(format!("writing {path}"), e))?;
    let mut rest = Fetch::new(Arc::clone(repo), digest.clone(), size, kept);
    io::copy(&mut rest, file)
        .map_err(|e| Error::io(format!("fetching {}", repo.describe(digest)), e))?;
    holds(file, digest, size).map_err(|e| Error::io(format!("reading {path}"), e))
}

/// Make the filled `partial` the verified entry `done`, and keep a shared lock on it.
fn commit(cache: &BlobCache, partial: &str, done: &str, file: &File) -> Result<()> {
    let dir = cache.dir()?;
    file.sync_data()
        .map_err(|e| Error::io(format!("writing {}", cache.path_of(partial)), e))?;
    rustix::fs::renameat(dir, partial, dir, done)
        .map_err(|e| Error::io(format!("renaming {}", cache.path_of(partial)), e.into()))?;
    // Readers waiting for the entry may take it now; removers may not.
    rustix::fs::flock(file, FlockOperation::LockShared)
        .map_err(|e| Error::io(format!("locking {}", cache.path_of(done)), e.into()))
}

impl Read for Cached {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.size || buf.is_empty() {
            return Ok(0);
        }
        let want = buf
            .len()
            .min((self.size - self.pos).min(usize::MAX as u64) as usize);
        let n = match &mut self.filling {
            None => {
                let n = self.file.read(&mut buf[..want])?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "{} is shorter than its size in the cache",
                            self.repo.describe(&self.digest)
                        ),
                    ));
                }
                n
            }
            Some((fetch, hasher)) => {
                let n = fetch.read(&mut buf[..want])?;
                if n == 0 {
                    return Ok(0);
                }
                self.file.write_all(&buf[..n])?;
                hasher.update(&buf[..n]);
                n
            }
        };
        self.pos += n as u64;
        if self.pos == self.size {
            self.finish().map_err(Error::into_io)?;
        }
        Ok(n)
    }
}
