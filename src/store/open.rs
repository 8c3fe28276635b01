//! Opening a local store for an edit in place: which transport it is, the locks that
//! keep concurrent runs from losing each other's work, and its documents as stored.

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::container::{blob_writers_lock, read_limited, DirTree, FileTree, TarIndex};
use crate::error::{Error, IoContext, Result};
use crate::formats::{read_shared_tree, Layout};
use crate::model::digest::Digest;
use crate::model::image::MAX_JSON_SIZE;
use crate::model::media::Compression;
use crate::sys::DirLock;
use crate::transport::{Format, Location, ReadOptions, Source};

use super::StoreError;

/// What an edit does to the store, which decides the locks it takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    /// Names only (`tag`, `untag`): the index's lock.
    Names,
    /// Blobs too (`rm`, `gc`): first the lock blob writers share, exclusive, then the
    /// index's.
    Blobs,
}

/// A local store opened for an edit, locked until dropped.
pub(crate) struct Store {
    /// Its transport: `oci`, `oci-archive`, `docker-archive` or `docker-dir`.
    pub format: Format,
    /// Where it is (an archive: the file a symlink there points at).
    pub path: PathBuf,
    /// The location as given, escaped, for messages.
    pub shown: String,
    /// Its files.
    pub tree: Arc<dyn FileTree>,
    /// The archive's index, for one rewritten in place.
    pub tar: Option<Arc<TarIndex>>,
    /// The images, numbered as `inspect` numbers them.
    pub source: Source,
    /// For an OCI layout, the image manifest each `index.json` entry names.
    pub roots: Vec<Option<Digest>>,
    /// `index.json`, `manifest.json` and `repositories` as stored.
    pub index: Option<Vec<u8>>,
    pub manifest: Option<Vec<u8>>,
    pub repositories: Option<Vec<u8>>,
    /// The archive's permission bits, which its new version keeps.
    pub mode: Option<u32>,
    _locks: Vec<DirLock>,
}

/// The editable transports.
const EDITABLE: [Format; 4] = [
    Format::OCI,
    Format::OCI_ARCHIVE,
    Format::DOCKER_ARCHIVE,
    Format::DOCKER_DIR,
];

/// Open `location` for an edit that needs `access`, holding its locks.
pub(crate) fn open(location: &Location, access: Access) -> Result<Store> {
    let given = crate::text::shown(&location.path);
    let not_editable = |why: String| {
        Error::Store(Box::new(StoreError::NotEditable {
            store: given.clone(),
            reason: why,
        }))
    };
    if let Some(format) = location.transport {
        if !EDITABLE.contains(&format) {
            return Err(not_editable(match format.name() {
                "dir" => "a dir: layout holds one image and no names".into(),
                "docker" => {
                    "a registry's tags are changed with `dockhand tag` and `dockhand delete` \
                     on its docker:// reference"
                        .into()
                }
                other => format!("{other} is not a layout dockhand changes in place"),
            }));
        }
    }
    if location.path == "-" {
        return Err(not_editable(
            "stdin is read once; name the archive's file to change it in place".into(),
        ));
    }
    let path = Path::new(&location.path);
    let meta = fs::metadata(path).map_err(|e| Error::io("cannot open", e).in_input(&given))?;
    let store = if meta.is_dir() {
        open_dir(location, path, &given, access)
    } else if meta.is_file() {
        open_archive(location, path, &given)
    } else {
        Err(not_editable(
            "it is neither a layout directory nor an archive file".into(),
        ))
    };
    store.map_err(|e| match e {
        Error::Store(_) | Error::Usage(_) | Error::Input { .. } => e,
        other => other.in_input(&given),
    })
}

fn open_dir(location: &Location, path: &Path, given: &str, access: Access) -> Result<Store> {
    let mut locks = Vec::new();
    // Blob writers put blobs into `blobs/` only: a tree without it has none in flight.
    if access == Access::Blobs && path.join("blobs").is_dir() {
        locks.push(blob_writers_lock(path, "blobs", true)?);
    }
    locks.push(DirLock::exclusive(path).ctx(|| format!("locking {given}"))?);
    let tree: Arc<dyn FileTree> = Arc::new(DirTree::new(path, given));
    finish(location, path.to_path_buf(), given, tree, None, None, locks)
}

fn open_archive(location: &Location, path: &Path, given: &str) -> Result<Store> {
    // The file itself, not a link to it: the link stays and points at the new archive.
    let real = fs::canonicalize(path).ctx(|| "cannot open".into())?;
    let lock = DirLock::exclusive_current(&real).ctx(|| format!("locking {given}"))?;
    let mut file = File::open(&real).ctx(|| "cannot open".into())?;
    let mut head = [0u8; 6];
    let n = file.read(&mut head).ctx(|| "cannot read".into())?;
    let compression = Compression::detect(&head[..n]);
    if compression != Compression::None {
        return Err(Error::Store(Box::new(StoreError::NotEditable {
            store: given.to_string(),
            reason: format!(
                "it is a {}-compressed archive, which is not changed in place; \
                 decompress it first, or convert it to a new archive",
                compression.name()
            ),
        })));
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = file
        .metadata()
        .ctx(|| "cannot read".into())?
        .permissions()
        .mode();
    let file = File::open(&real).ctx(|| "cannot open".into())?;
    let tar = Arc::new(TarIndex::new(file, given)?);
    let tree: Arc<dyn FileTree> = tar.clone();
    finish(
        location,
        real,
        given,
        tree,
        Some(tar),
        Some(mode),
        vec![lock],
    )
}

fn finish(
    location: &Location,
    path: PathBuf,
    given: &str,
    tree: Arc<dyn FileTree>,
    tar: Option<Arc<TarIndex>>,
    mode: Option<u32>,
    locks: Vec<DirLock>,
) -> Result<Store> {
    let options = ReadOptions {
        format: location.transport,
        ..ReadOptions::default()
    };
    let read = read_shared_tree(tree.clone(), &options)?;
    let doc = |name: &str| -> Result<Option<Vec<u8>>> {
        match tree.find(name)? {
            Some(file) => Ok(Some(read_limited(file.open()?, MAX_JSON_SIZE, name)?)),
            None => Ok(None),
        }
    };
    let (index, manifest, repositories) = (
        doc("index.json")?,
        doc("manifest.json")?,
        doc("repositories")?,
    );
    if read.layout == Layout::DockerSave && manifest.is_none() {
        return Err(Error::Store(Box::new(StoreError::NotEditable {
            store: given.to_string(),
            reason: "a docker-save archive older than Docker 1.10 (no manifest.json) is not \
                     changed in place; convert it to a new archive first"
                .into(),
        })));
    }
    let format = read.source.format;
    if !EDITABLE.contains(&format) {
        return Err(Error::Store(Box::new(StoreError::NotEditable {
            store: given.to_string(),
            reason: format!(
                "{} is not a layout dockhand changes in place",
                format.name()
            ),
        })));
    }
    Ok(Store {
        format,
        path,
        shown: given.to_string(),
        tree,
        tar,
        source: read.source,
        roots: read.roots,
        index,
        manifest,
        repositories,
        mode,
        _locks: locks,
    })
}
