//! A directory read in place (an unpacked docker-save tree, an OCI layout, a `dir:`).

use std::fs;
use std::path::{Path, PathBuf};

use std::io::{self, Read, Seek};
use std::sync::Arc;

use super::{FileRef, FileTree, Node};
use crate::error::{Error, Result};
use crate::model::blob::Blob;

/// A directory on disk viewed as a tree. Symlinks inside it are followed by the shared
/// resolver, which keeps them inside the directory.
pub struct DirTree {
    name: Arc<str>,
    root: PathBuf,
}

impl DirTree {
    /// View `root` as a tree; `name` is how errors refer to it.
    pub fn new(root: &Path, name: &str) -> DirTree {
        DirTree {
            name: Arc::from(name),
            root: root.to_path_buf(),
        }
    }
}

impl FileTree for DirTree {
    fn name(&self) -> &str {
        &self.name
    }
    fn is_dir(&self) -> bool {
        true
    }
    fn node(&self, path: &str) -> Option<Node> {
        let full = if path.is_empty() {
            self.root.clone()
        } else {
            self.root.join(path)
        };
        let meta = fs::symlink_metadata(&full).ok()?;
        let ft = meta.file_type();
        Some(if ft.is_symlink() {
            let target = fs::read_link(&full).ok()?;
            Node::Symlink(target.to_string_lossy().into_owned())
        } else if ft.is_dir() {
            Node::Dir
        } else if ft.is_file() {
            Node::File(FileRef {
                path: path.to_string(),
                size: meta.len(),
                blob: Arc::new(DirFile {
                    path: full,
                    size: meta.len(),
                }),
            })
        } else {
            Node::Other("special file")
        })
    }
    fn top_level(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(&self.root)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }
}

/// The bytes of a file of a directory.
#[derive(Debug)]
struct DirFile {
    path: PathBuf,
    /// The size measured when the tree was looked at: never read more.
    size: u64,
}

impl Blob for DirFile {
    fn open_at(&self, start: u64) -> Result<Box<dyn Read + Send>> {
        let start = start.min(self.size);
        let shown = || crate::text::shown(&self.path.to_string_lossy());
        let mut f =
            fs::File::open(&self.path).map_err(|e| Error::io(format!("opening {}", shown()), e))?;
        if start > 0 {
            f.seek(io::SeekFrom::Start(start))
                .map_err(|e| Error::io(format!("reading {}", shown()), e))?;
        }
        // A directory file may change under us; never read more than was measured.
        Ok(Box::new(f.take(self.size - start)))
    }
    fn size(&self) -> u64 {
        self.size
    }
    fn describe(&self) -> String {
        crate::text::shown(&self.path.to_string_lossy())
    }
}
