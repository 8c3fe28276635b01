//! New layers: a tar (compressed or not, from a file or a stream) spooled as given, or
//! a directory tarred deterministically, into an unnamed file whose sha256 (the
//! layer's diff_id) is computed on the way; the tar is checked as it passes.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::container::read_full;
use crate::container::{normalize_path, Decoded, ExactReader, Parents, MAX_TRAILING_BYTES};
use crate::container::{walk_entries, EntryHead, Kept, RegionReader, TarSource as Source, Visitor};
use crate::error::{Error, Result};
use crate::model::blob::Blob;
use crate::model::digest::{Digest, Hasher};
use crate::model::media::Compression;
use crate::text::shown;

/// How new layers are made.
///
/// Fields may be added in later versions: build one with `..Default::default()` so
/// that code keeps compiling.
#[derive(Clone, Debug, Default)]
pub struct LayerOptions {
    /// Where the layer is spooled: the output's staging directory
    /// ([`crate::EditContext::spool_dir`]), so that a directory output links it in
    /// instead of copying it. `None`: an anonymous temp file.
    pub spool_dir: Option<PathBuf>,
    /// For a directory: no entry is given a modification time after this one (in
    /// seconds since the epoch), as `SOURCE_DATE_EPOCH` asks.
    pub clamp_mtime: Option<i64>,
}

/// A layer made by this process: the bytes of an uncompressed tar in an unnamed file
/// of their own, with their sha256 (the layer's diff_id), checked as they were
/// spooled. Cloning it shares the file.
///
/// ```
/// use dockhand::{LayerOptions, NewLayer};
///
/// let mut tar = tar::Builder::new(Vec::new());
/// let mut header = tar::Header::new_gnu();
/// header.set_size(5);
/// header.set_mode(0o644);
/// tar.append_data(&mut header, "etc/motd", &b"hello"[..]).unwrap();
/// let tar = tar.into_inner().unwrap();
///
/// let layer = NewLayer::from_reader(&tar[..], "motd.tar", &LayerOptions::default())?;
/// assert_eq!(layer.size(), tar.len() as u64); // the tar as given
/// assert_eq!(*layer.diff_id(), dockhand::Digest::of(&tar));
///
/// // A name climbing out of the root is refused, naming the entry.
/// let mut evil = tar::Builder::new(Vec::new());
/// let mut header = tar::Header::new_gnu();
/// header.set_size(0);
/// header.as_mut_bytes()[..8].copy_from_slice(b"../owned");
/// header.set_cksum();
/// evil.append(&header, &[][..]).unwrap();
/// let evil = evil.into_inner().unwrap();
/// let err = NewLayer::from_reader(&evil[..], "evil.tar", &LayerOptions::default()).unwrap_err();
/// assert!(err.to_string().contains("../owned"), "{err}");
/// # Ok::<(), dockhand::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct NewLayer {
    blob: Arc<SpooledLayer>,
}

impl NewLayer {
    /// The layer `input` names: a tar file (gzip, zstd, xz or bzip2-compressed, or
    /// not), `-` for stdin, or a directory, tarred as [`NewLayer::from_dir`] says.
    pub fn read(input: &str, options: &LayerOptions) -> Result<NewLayer> {
        let named = |e: Error| e.in_input(input);
        if input == "-" {
            let stdin = std::os::fd::AsFd::as_fd(&io::stdin())
                .try_clone_to_owned()
                .map_err(|e| Error::io("cannot read", e))
                .map_err(|e| e.in_input("stdin"))?;
            let stdin = File::from(stdin);
            crate::sys::widen_pipe(&stdin);
            return NewLayer::from_reader(stdin, "stdin", options);
        }
        let path = Path::new(input);
        let meta = std::fs::metadata(path)
            .map_err(|e| Error::io("cannot open", e))
            .map_err(named)?;
        if meta.is_dir() {
            return NewLayer::from_dir(path, input, options);
        }
        let file = File::open(path)
            .map_err(|e| Error::io("cannot open", e))
            .map_err(named)?;
        if !meta.is_file() {
            crate::sys::widen_pipe(&file);
        }
        NewLayer::from_reader(file, input, options)
    }

    /// The layer whose tar `input` reads (compressed or not), named `name` in
    /// messages. The layer is the uncompressed tar byte for byte, whatever follows
    /// its end-of-archive marker included (as `docker import` keeps it, up to
    /// [`crate::limits::MAX_TRAILING_BYTES`]), so its diff_id is the sha256 of the
    /// input as given (decompressed).
    ///
    /// Refused, with one line naming the input and the entry: input that is no tar;
    /// an entry whose name climbs out of the root once `..` is applied; a hard link to
    /// an absolute path or out of the root; a relative symlink pointing out of the
    /// root from where it is (Docker refuses those when it loads the layer). Symlinks
    /// to absolute paths are kept: a runtime resolves them inside the container's root.
    pub fn from_reader(
        input: impl Read + Send,
        name: &str,
        options: &LayerOptions,
    ) -> Result<NewLayer> {
        spool_tar(input, name, options).map_err(|e| e.in_input(name))
    }

    /// The layer of the directory `dir` (named `name` in messages), tarred
    /// deterministically: entries sorted by name, each directory before what it holds;
    /// modes, owners (numeric uid and gid, no user or group names), modification times
    /// (at most [`LayerOptions::clamp_mtime`]) kept; symlinks kept as symlinks; files
    /// linked to one another inside `dir` kept as tar hard links; character and block
    /// devices and FIFOs kept. Left out: the directory itself, sockets (as GNU tar
    /// leaves them out), extended attributes and ACLs.
    pub fn from_dir(dir: &Path, name: &str, options: &LayerOptions) -> Result<NewLayer> {
        tar_dir(dir, options).map_err(|e| e.in_input(name))
    }

    /// The layer whose tar `write` writes (uncompressed), named `name` in messages: for
    /// a tar made here (a flattened image's filesystem), spooled as it is written,
    /// then checked as [`NewLayer::from_reader`] checks a tar, by reading it back.
    ///
    /// ```
    /// use dockhand::{LayerOptions, NewLayer};
    ///
    /// let layer = NewLayer::from_writer("made here", &LayerOptions::default(), |out| {
    ///     let mut tar = tar::Builder::new(out);
    ///     let mut header = tar::Header::new_gnu();
    ///     header.set_size(2);
    ///     header.set_mode(0o644);
    ///     tar.append_data(&mut header, "hi", &b"hi"[..])?;
    ///     tar.finish()
    /// })?;
    /// assert_eq!(layer.size(), 2048); // a header, a data block, the end marker
    /// # Ok::<(), dockhand::Error>(())
    /// ```
    pub fn from_writer(
        name: &str,
        options: &LayerOptions,
        write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    ) -> Result<NewLayer> {
        let mut out = spooling(spool_file(options)?);
        write(&mut out)
            .map_err(|e| Error::io("writing the layer", e))
            .map_err(|e| e.in_input(name))?;
        let layer = finish(out, name)?;
        let mut check = Tee {
            input: layer.blob.open()?,
            out: io::sink(),
            total: 0,
        };
        walk_entries(&mut check, &mut LayerCheck).map_err(|e| e.in_input(name))?;
        Ok(layer)
    }

    /// The layer's diff_id: the sha256 of its tar.
    pub fn diff_id(&self) -> &Digest {
        &self.blob.digest
    }

    /// The size of its tar.
    pub fn size(&self) -> u64 {
        self.blob.size
    }

    /// Its bytes, as a blob an [`crate::Image`]'s layer holds.
    pub fn blob(&self) -> Arc<dyn Blob> {
        Arc::clone(&self.blob) as Arc<dyn Blob>
    }

    /// The name it was made from, for messages.
    pub fn name(&self) -> &str {
        &self.blob.name
    }
}

/// A spooled layer's bytes: the whole of an unnamed file.
#[derive(Debug)]
struct SpooledLayer {
    file: File,
    size: u64,
    digest: Digest,
    name: String,
}

impl Blob for SpooledLayer {
    fn open_at(&self, start: u64) -> Result<Box<dyn Read + Send>> {
        let file = self.file.try_clone().map_err(|e| {
            Error::io(
                format!("reading the spooled layer {}", shown(&self.name)),
                e,
            )
        })?;
        Ok(Box::new(RegionReader::new(
            Arc::new(file),
            start,
            self.size,
        )))
    }
    fn size(&self) -> u64 {
        self.size
    }
    fn describe(&self) -> String {
        format!("the layer made of {}", shown(&self.name))
    }
    fn whole_file(&self) -> Option<&File> {
        Some(&self.file)
    }
    fn whole_file_digest(&self) -> Option<Digest> {
        Some(self.digest.clone())
    }
}

/// A file for a new layer: unnamed in `spool_dir` when that works, else anonymous.
fn spool_file(options: &LayerOptions) -> Result<File> {
    if let Some(dir) = &options.spool_dir {
        if let Ok(file) = crate::sys::unnamed_file_in(dir) {
            return Ok(file);
        }
    }
    crate::sys::anonymous_file().map_err(|e| Error::io("creating a temp file for a layer", e))
}

/// Writes to a file, hashing what passes.
struct Hashing<W> {
    inner: W,
    hasher: Hasher,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The file being filled, through a buffer, hashed.
type Spooling = BufWriter<Hashing<File>>;

fn spooling(file: File) -> Spooling {
    BufWriter::with_capacity(
        1 << 20,
        Hashing {
            inner: file,
            hasher: Hasher::new(),
        },
    )
}

/// The layer once `out` holds all of it.
fn finish(out: Spooling, name: &str) -> Result<NewLayer> {
    let hashing = out
        .into_inner()
        .map_err(|e| Error::io("writing a spooled layer", e.into_error()))?;
    let (digest, size) = hashing.hasher.finish();
    Ok(NewLayer {
        blob: Arc::new(SpooledLayer {
            file: hashing.inner,
            size,
            digest,
            name: name.to_string(),
        }),
    })
}

/// Spool the tar `input` reads (decompressing it), checking its entries.
fn spool_tar<'a>(
    mut input: impl Read + Send + 'a,
    name: &str,
    options: &LayerOptions,
) -> Result<NewLayer> {
    let mut head = [0u8; 8];
    let n = read_full(&mut input, &mut head).map_err(|e| Error::io("cannot read", e))?;
    if n == 0 {
        return Err(Error::malformed(
            "",
            "the input is empty, not a tar archive; a layer is a tar archive (compressed or not) or a directory",
        ));
    }
    let compression = Compression::detect(&head[..n]);
    let raw = io::Cursor::new(head[..n].to_vec()).chain(input);
    let decoded: Box<dyn Read + Send + 'a> = compression
        .decoder(raw)
        .map_err(|e| Error::io(format!("decompressing ({})", compression.name()), e))?;
    let mut tee = Tee {
        input: Decoded {
            inner: decoded,
            compression,
        },
        out: spooling(spool_file(options)?),
        total: 0,
    };
    walk_entries(&mut tee, &mut LayerCheck)?;
    if tee.total == 0 {
        return Err(Error::malformed(
            "",
            "the input is empty once decompressed, not a tar archive",
        ));
    }
    finish(tee.out, name)
}

/// A tar stream walked once, every byte of it (headers, data, padding, and what
/// follows the end marker) copied into the spool file as it passes.
struct Tee<R, W> {
    input: R,
    out: W,
    total: u64,
}

impl<R: Read, W: Write> Source for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = read_full(&mut self.input, buf)?;
        self.out.write_all(&buf[..n])?;
        self.total += n as u64;
        Ok(n)
    }

    fn data(&mut self, n: u64, _keep: bool) -> io::Result<(Kept, u64)> {
        let passed = io::copy(&mut (&mut self.input).take(n), &mut self.out)?;
        self.total += passed;
        Ok((Kept::At(0), passed))
    }

    fn end(&mut self) -> io::Result<()> {
        // What follows the end marker is part of the bytes as given (a writer's
        // padding to its record size): kept, within a bound.
        let after = io::copy(
            &mut (&mut self.input).take(MAX_TRAILING_BYTES + 1),
            &mut self.out,
        )?;
        self.total += after;
        if after > MAX_TRAILING_BYTES {
            return Err(Error::malformed(
                "",
                format!(
                    "more than {} MiB follow the tar's end-of-archive marker, which a layer does not hold",
                    MAX_TRAILING_BYTES >> 20
                ),
            )
            .into_io());
        }
        Ok(())
    }

    fn fail(&self, e: io::Error) -> Error {
        Error::io("reading the layer", e)
    }
}

/// Checks each entry of a layer: names and hard links inside the root, relative
/// symlinks too.
struct LayerCheck;

impl Visitor for LayerCheck {
    fn keep(&mut self, _entry: &EntryHead) -> Result<bool> {
        Ok(false)
    }

    fn entry(&mut self, entry: EntryHead, _kept: Kept) -> Result<()> {
        check_entry(&entry.name, entry.kind, &entry.link)
    }

    fn not_a_tar(&self, looks_like: Option<&'static str>) -> Error {
        let what = match looks_like {
            Some(what) => format!("not a tar archive (it looks like {what})"),
            None => "not a tar archive".to_string(),
        };
        Error::malformed(
            "",
            format!(
                "{what}; a layer is a tar archive (gzip, zstd, xz or bzip2-compressed, or not) or a directory"
            ),
        )
    }
}

/// Where an entry named `name` lands, as a runtime applying the layer puts it: an
/// absolute name under the root, `..` applied; `None` when it climbs out.
fn landing(name: &str) -> Option<String> {
    normalize_path(name.trim_start_matches('/'), Parents::Applied)
}

/// Refuse an entry that would land outside the root, a hard link to outside it or to
/// an absolute path, and a relative symlink pointing out of it.
fn check_entry(name: &str, kind: tar::EntryType, link: &str) -> Result<()> {
    let refuse = |why: String| {
        Err(Error::malformed(
            "",
            format!("entry {}: {why}", shown(name)),
        ))
    };
    let Some(path) = landing(name) else {
        return refuse("its name climbs out of the root".into());
    };
    match kind {
        tar::EntryType::Link => {
            if link.starts_with('/') {
                return refuse(format!("a hard link to the absolute path {}", shown(link)));
            }
            if normalize_path(link, Parents::Applied).is_none_or(|t| t.is_empty()) {
                return refuse(format!("a hard link to {}, out of the root", shown(link)));
            }
        }
        tar::EntryType::Symlink if !link.starts_with('/') => {
            // From the entry's directory (none at the top: the target as it is).
            let from = match path.rsplit_once('/') {
                Some((dir, _)) => format!("{dir}/{link}"),
                None => link.to_string(),
            };
            if normalize_path(&from, Parents::Applied).is_none() {
                return refuse(format!(
                    "a symlink to {}, out of the root from where it is",
                    shown(link)
                ));
            }
        }
        _ => {}
    }
    Ok(())
}

/// Tar the directory `dir` into a new layer, deterministically.
fn tar_dir(dir: &Path, options: &LayerOptions) -> Result<NewLayer> {
    let mut builder = tar::Builder::new(spooling(spool_file(options)?));
    // Files with several links, by device and inode: the first path written.
    let mut linked: HashMap<(u64, u64), PathBuf> = HashMap::new();
    let walk = walkdir::WalkDir::new(dir)
        .follow_links(false)
        .min_depth(1)
        .sort_by(|a, b| a.file_name().cmp(b.file_name()));
    for entry in walk {
        let entry = entry.map_err(|e| {
            let path = e
                .path()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            Error::io(
                format!("reading {}", shown(&path)),
                e.into_io_error()
                    .unwrap_or_else(|| io::Error::other("a directory loop")),
            )
        })?;
        let rel = entry
            .path()
            .strip_prefix(dir)
            .expect("walkdir yields paths under its root")
            .to_path_buf();
        let shown_path = || shown(&rel.display().to_string());
        let meta = entry
            .metadata()
            .map_err(|e| Error::io(format!("reading {}", shown_path()), e.into()))?;
        let file_type = meta.file_type();
        let mut header = tar::Header::new_gnu();
        header.set_mode(meta.mode() & 0o7777);
        header.set_uid(u64::from(meta.uid()));
        header.set_gid(u64::from(meta.gid()));
        let mut mtime = meta.mtime().max(0);
        if let Some(clamp) = options.clamp_mtime {
            mtime = mtime.min(clamp.max(0));
        }
        header.set_mtime(mtime as u64);
        header.set_size(0);
        let failed = |e: io::Error| Error::io(format!("adding {} to the layer", shown_path()), e);
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_dir() {
            header.set_entry_type(tar::EntryType::Directory);
            let mut name = rel.clone().into_os_string();
            name.push("/");
            builder
                .append_data(&mut header, Path::new(&name), io::empty())
                .map_err(failed)?;
        } else if file_type.is_symlink() {
            let target = std::fs::read_link(entry.path())
                .map_err(|e| Error::io(format!("reading the link {}", shown_path()), e))?;
            header.set_entry_type(tar::EntryType::Symlink);
            builder
                .append_link(&mut header, &rel, &target)
                .map_err(failed)?;
        } else if file_type.is_file() {
            if meta.nlink() > 1 {
                if let Some(first) = linked.get(&(meta.dev(), meta.ino())) {
                    header.set_entry_type(tar::EntryType::Link);
                    builder
                        .append_link(&mut header, &rel, first)
                        .map_err(failed)?;
                    continue;
                }
                linked.insert((meta.dev(), meta.ino()), rel.clone());
            }
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(meta.len());
            let mut file = File::open(entry.path())
                .map_err(|e| Error::io(format!("reading {}", shown_path()), e))?;
            // Exactly the size the header says: a file that shrinks or grows while it
            // is read fails the layer.
            let shown = shown_path();
            let mut exact = ExactReader::new(&mut file, meta.len(), &shown);
            builder
                .append_data(&mut header, &rel, &mut exact)
                .map_err(failed)?;
            exact.finish()?;
        } else if file_type.is_char_device() || file_type.is_block_device() {
            header.set_entry_type(if file_type.is_char_device() {
                tar::EntryType::Char
            } else {
                tar::EntryType::Block
            });
            let rdev = meta.rdev();
            header
                .set_device_major(rustix::fs::major(rdev))
                .map_err(failed)?;
            header
                .set_device_minor(rustix::fs::minor(rdev))
                .map_err(failed)?;
            builder
                .append_data(&mut header, &rel, io::empty())
                .map_err(failed)?;
        } else if file_type.is_fifo() {
            header.set_entry_type(tar::EntryType::Fifo);
            builder
                .append_data(&mut header, &rel, io::empty())
                .map_err(failed)?;
        }
        // Sockets: a tar cannot hold one.
    }
    let out = builder
        .into_inner()
        .map_err(|e| Error::io("writing the layer", e))?;
    finish(out, &dir.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, kind: tar::EntryType, link: &str) -> Result<()> {
        check_entry(name, kind, link)
    }

    #[test]
    fn a_written_layer_is_checked_as_a_read_one() {
        let bad = |out: &mut dyn Write| -> io::Result<()> {
            let mut tar = tar::Builder::new(out);
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Link);
            header.set_size(0);
            tar.append_link(&mut header, "x", "/etc/shadow")?;
            tar.finish()
        };
        let err = NewLayer::from_writer("flat", &LayerOptions::default(), bad).unwrap_err();
        assert!(
            err.to_string().starts_with("flat: entry x: a hard link"),
            "{err}"
        );
        let mut bytes = Vec::new();
        bad(&mut bytes).unwrap();
        let err = NewLayer::from_reader(&bytes[..], "flat", &LayerOptions::default());
        assert!(err.is_err());
    }

    #[test]
    fn names_and_links_must_stay_inside_the_root() {
        use tar::EntryType::*;
        for ok in [
            ("etc/x", Regular, ""),
            ("/etc/x", Regular, ""),
            ("a/../b", Regular, ""),
            ("./", Directory, ""),
            ("bin/sh", Symlink, "/bin/busybox"),
            ("bin/sh", Symlink, "busybox"),
            ("link", Symlink, "usr/bin/tool"),
            ("./link", Symlink, "etc"),
            ("usr/bin/x", Symlink, "../../bin/x"),
            ("usr/lib/x", Link, "usr/lib/y"),
            ("etc/.wh.passwd", Regular, ""),
        ] {
            assert!(entry(ok.0, ok.1, ok.2).is_ok(), "{ok:?}");
        }
        for bad in [
            ("../x", Regular, ""),
            ("/../x", Regular, ""),
            ("a/../../x", Directory, ""),
            ("x", Link, "/etc/shadow"),
            ("x", Link, "../etc/shadow"),
            ("x", Link, "a/../.."),
            ("bin/x", Symlink, "../../etc"),
            ("link", Symlink, "../etc"),
        ] {
            let err = entry(bad.0, bad.1, bad.2).unwrap_err();
            assert!(
                err.to_string().contains(&format!("entry {}", bad.0)),
                "{err}"
            );
        }
    }
}
