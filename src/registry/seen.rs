//! Where blobs were seen: the repositories of a registry that hold each blob a pull
//! fetched or a push put, remembered in the blob cache's directory, so that a later
//! push of that blob to another repository of the same registry mounts it instead of
//! uploading it again (skopeo's blob-info cache does the same). It is a hint: a mount
//! the registry does not make is an upload.
//!
//! The record is `locations-v1` at the cache's root, opened relative to it, never
//! through a symlink and only when it is a regular file of the user's, one line
//! `DIGEST REGISTRY REPOSITORY` appended per blob seen. It is read at most
//! [`MAX_RECORD_BYTES`] at a time; a longer record starts again empty. A wrong line can
//! only make a push try a mount the registry refuses, then upload.

use std::collections::HashMap;
use std::io::{Read, Write};

use rustix::fs::{FileType, Mode, OFlags};

use super::cache::BlobCache;
use crate::model::digest::Digest;

/// The record's name at the cache's root.
const RECORD: &str = "locations-v1";
/// Most bytes of the record read; past this it is emptied and starts again.
pub(crate) const MAX_RECORD_BYTES: u64 = 4 << 20;
/// Most repositories remembered for one blob of one registry.
const MAX_PER_BLOB: usize = 8;

/// The repositories of one registry that hold each blob, as the record says.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    by_digest: HashMap<Digest, Vec<String>>,
}

impl Seen {
    /// A repository of the registry other than `except` that holds `digest`, the one
    /// seen last.
    pub(crate) fn elsewhere(&self, digest: &Digest, except: &str) -> Option<&str> {
        let repositories = self.by_digest.get(digest)?;
        repositories
            .iter()
            .rev()
            .map(String::as_str)
            .find(|r| *r != except)
    }
}

/// Whether `text` fits in a record line: what a reference allows, no spaces.
fn plain(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 255
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-/:[]".contains(&b))
}

impl BlobCache {
    /// Open the record, for appending (created 0600) or reading, when it is a regular
    /// file of this user's.
    fn record(&self, append: bool) -> Option<std::fs::File> {
        let root = self.root_dir().ok()?;
        let mut flags = OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        flags |= if append {
            OFlags::WRONLY | OFlags::APPEND | OFlags::CREATE
        } else {
            OFlags::RDONLY
        };
        let fd = rustix::fs::openat(root, RECORD, flags, Mode::from_raw_mode(0o600)).ok()?;
        let stat = rustix::fs::fstat(&fd).ok()?;
        let regular = FileType::from_raw_mode(stat.st_mode) == FileType::RegularFile;
        let ours = stat.st_uid == rustix::process::geteuid().as_raw();
        // A second name would be another file of the user's, linked here by someone
        // who can write the cache's root: not appended to, nor emptied.
        let alone = stat.st_nlink == 1;
        (regular && ours && alone).then(|| fd.into())
    }

    /// Remember that `repository` of `registry` holds `digest`. Failing to is not an
    /// error: the record only saves uploads.
    pub(crate) fn remember(&self, digest: &Digest, registry: &str, repository: &str) {
        if !plain(registry) || !plain(repository) {
            return;
        }
        let Some(mut file) = self.record(true) else {
            return;
        };
        if file.metadata().is_ok_and(|m| m.len() > MAX_RECORD_BYTES) {
            // Too long to be read whole: start again rather than grow without end.
            let _ = file.set_len(0);
        }
        // One short line in one write: appends from several runs do not interleave.
        let line = format!("{digest} {registry} {repository}\n");
        let _ = file.write_all(line.as_bytes());
    }

    /// What the record says about the blobs of `registry`; empty when there is none,
    /// or it cannot be read.
    pub(crate) fn seen(&self, registry: &str) -> Seen {
        let mut seen = Seen::default();
        let Some(file) = self.record(false) else {
            return seen;
        };
        let mut text = Vec::new();
        if file.take(MAX_RECORD_BYTES).read_to_end(&mut text).is_err() {
            return seen;
        }
        for line in String::from_utf8_lossy(&text).lines() {
            let mut fields = line.split(' ');
            let (Some(digest), Some(line_registry), Some(repository), None) =
                (fields.next(), fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            let Ok(digest) = Digest::parse(digest) else {
                continue;
            };
            if line_registry != registry || !plain(repository) {
                continue;
            }
            let repositories = seen.by_digest.entry(digest).or_default();
            repositories.retain(|r| r != repository);
            repositories.push(repository.to_string());
            if repositories.len() > MAX_PER_BLOB {
                repositories.remove(0);
            }
        }
        seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_names_the_last_other_repository_and_skips_what_is_not_a_line_of_it() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BlobCache::new(dir.path().to_path_buf());
        let a = Digest::of(b"a");
        cache.remember(&a, "127.0.0.1:5000", "team/one");
        cache.remember(&a, "127.0.0.1:5000", "team/two");
        cache.remember(&a, "other.example", "team/three");
        cache.remember(&a, "127.0.0.1:5000", "has space");
        let path = dir.path().join(RECORD);
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        file.write_all(b"garbage line\nsha256:zz r q\n").unwrap();
        let seen = cache.seen("127.0.0.1:5000");
        assert_eq!(seen.elsewhere(&a, "team/x"), Some("team/two"));
        assert_eq!(seen.elsewhere(&a, "team/two"), Some("team/one"));
        assert_eq!(seen.elsewhere(&Digest::of(b"b"), "team/x"), None);
        assert_eq!(
            cache.seen("other.example").elsewhere(&a, "x"),
            Some("team/three")
        );
    }

    #[test]
    fn a_hard_link_in_place_of_the_record_is_neither_read_nor_written() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BlobCache::new(dir.path().to_path_buf());
        let other = dir.path().join("someone-elses");
        let theirs = format!("{} r elsewhere\n", Digest::of(b"a"));
        std::fs::write(&other, &theirs).unwrap();
        cache.remember(&Digest::of(b"b"), "r", "one");
        let path = dir.path().join(RECORD);
        std::fs::remove_file(&path).unwrap();
        std::fs::hard_link(&other, &path).unwrap();
        cache.remember(&Digest::of(b"a"), "r", "two");
        assert_eq!(std::fs::read_to_string(&other).unwrap(), theirs);
        assert!(cache.seen("r").elsewhere(&Digest::of(b"a"), "x").is_none());
    }

    #[test]
    fn a_symlink_in_place_of_the_record_is_neither_followed_nor_written() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BlobCache::new(dir.path().to_path_buf());
        cache.remember(&Digest::of(b"a"), "r", "one");
        let path = dir.path().join(RECORD);
        std::fs::remove_file(&path).unwrap();
        let target = dir.path().join("elsewhere");
        std::fs::write(&target, b"").unwrap();
        std::os::unix::fs::symlink(&target, &path).unwrap();
        cache.remember(&Digest::of(b"a"), "r", "two");
        assert_eq!(std::fs::read(&target).unwrap(), b"");
        assert!(cache.seen("r").elsewhere(&Digest::of(b"a"), "x").is_none());
    }
}
