//! A random-access index over a tar file: one pass over the headers that seeks over
//! entry data, then reads by offset.

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::sync::Arc;

use tar::EntryType;

use super::{split_components, FileRef, FileTree, Location, Node};
use crate::error::{Error, Result};

/// Upper bound on indexed entries, so a hostile archive cannot grow the index without
/// limit (a real image archive has a few entries per layer).
pub const MAX_ENTRIES: usize = 1_000_000;

/// An indexed tar archive.
pub struct TarIndex {
    name: String,
    entries: HashMap<String, Node>,
    top: BTreeSet<String>,
    duplicates: usize,
}

impl TarIndex {
    /// Index `file`, a tar archive. `name` is how errors refer to it.
    pub fn new(file: File, name: &str) -> Result<TarIndex> {
        let len = file
            .metadata()
            .map_err(|e| Error::io(format!("reading {name}"), e))?
            .len();
        let file = Arc::new(file);
        let mut archive = tar::Archive::new(&*file);
        archive.set_ignore_zeros(false);
        let mut entries = HashMap::new();
        let mut top = BTreeSet::new();
        let mut duplicates = 0;
        let bad = |e: std::io::Error| -> Error {
            let msg = e.to_string();
            if msg.contains("failed to read entire block")
                || e.kind() == std::io::ErrorKind::UnexpectedEof
            {
                Error::Truncated {
                    file: name.to_string(),
                    detail: "the archive ends inside a header".into(),
                }
            } else {
                Error::malformed(name, format!("not a valid tar archive: {msg}"))
            }
        };
        let iter = archive.entries_with_seek().map_err(bad)?;
        for entry in iter {
            let entry = entry.map_err(bad)?;
            if entries.len() >= MAX_ENTRIES {
                return Err(Error::malformed(
                    name,
                    format!("more than {MAX_ENTRIES} entries"),
                ));
            }
            let raw_path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let size = entry.size();
            let offset = entry.raw_file_position();
            let kind = entry.header().entry_type();
            if matches!(kind, EntryType::Regular | EntryType::Continuous)
                && offset.checked_add(size).is_none_or(|end| end > len)
            {
                return Err(Error::Truncated {
                    file: name.to_string(),
                    detail: format!(
                        "entry {raw_path} claims {size} bytes but the archive ends first"
                    ),
                });
            }
            let node = match kind {
                EntryType::Regular | EntryType::Continuous => Node::File(FileRef {
                    path: String::new(),
                    size,
                    location: Location::Region {
                        file: Arc::clone(&file),
                        offset,
                    },
                }),
                EntryType::Directory => Node::Dir,
                EntryType::Symlink | EntryType::Link => {
                    let target = entry
                        .link_name_bytes()
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .unwrap_or_default();
                    if kind == EntryType::Symlink {
                        Node::Symlink(target)
                    } else {
                        Node::Hardlink(target)
                    }
                }
                EntryType::XGlobalHeader
                | EntryType::XHeader
                | EntryType::GNULongName
                | EntryType::GNULongLink => continue,
                EntryType::GNUSparse => Node::Other("sparse file"),
                _ => Node::Other("special file"),
            };
            // Entries whose names leave the root can never be referenced: skip them.
            let Some(components) = split_components(&raw_path) else {
                continue;
            };
            if components.is_empty() {
                continue;
            }
            let path = components.join("/");
            top.insert(components[0].clone());
            let node = match node {
                Node::File(mut f) => {
                    f.path = path.clone();
                    Node::File(f)
                }
                other => other,
            };
            // Tar semantics: the last of duplicate names wins.
            if entries.insert(path, node).is_some() {
                duplicates += 1;
            }
        }
        Ok(TarIndex {
            name: name.to_string(),
            entries,
            top,
            duplicates,
        })
    }

    /// Number of indexed entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if the archive has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// How many entries were shadowed by a later entry of the same name.
    pub fn duplicates(&self) -> usize {
        self.duplicates
    }
}

impl FileTree for TarIndex {
    fn name(&self) -> &str {
        &self.name
    }
    fn is_dir(&self) -> bool {
        false
    }
    fn node(&self, path: &str) -> Option<Node> {
        match self.entries.get(path) {
            Some(node) => Some(node.clone()),
            // Directories are often implied by their children rather than listed.
            None if self.has_children(path) => Some(Node::Dir),
            None => None,
        }
    }
    fn top_level(&self) -> Vec<String> {
        self.top.iter().cloned().collect()
    }
}

impl TarIndex {
    fn has_children(&self, path: &str) -> bool {
        // Only asked for paths that are not entries; such lookups are rare (a missing
        // file), so a scan is acceptable.
        let prefix = format!("{path}/");
        self.entries.keys().any(|k| k.starts_with(&prefix))
    }
}
