//! A random-access index over a tar file: one pass over the headers that seeks over
//! entry data, then reads by offset.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs::File;
use std::sync::Arc;

use tar::EntryType;

use super::{split_components, FileRef, FileTree, Location, Node};
use crate::error::{Error, Result};

/// Upper bound on indexed entries, so a hostile archive cannot grow the index without
/// limit (a real image archive has a few entries per layer).
pub const MAX_ENTRIES: usize = 250_000;

/// An indexed tar archive.
pub struct TarIndex {
    name: String,
    entries: HashMap<String, Node>,
    /// Directories implied by the paths of entries (tars often omit directory entries).
    implied_dirs: HashSet<String>,
    top: BTreeSet<String>,
    duplicates: usize,
}

impl TarIndex {
    /// Index `file`, a tar archive. `name` is how errors refer to it.
    pub fn new(mut file: File, name: &str) -> Result<TarIndex> {
        std::io::Seek::rewind(&mut file).map_err(|e| Error::io(format!("reading {name}"), e))?;
        let len = file
            .metadata()
            .map_err(|e| Error::io(format!("reading {name}"), e))?
            .len();
        let file = Arc::new(file);
        let mut archive = tar::Archive::new(&*file);
        archive.set_ignore_zeros(false);
        let mut entries = HashMap::new();
        let mut implied_dirs = HashSet::new();
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
            // Longest prefix first: once one is known, its own parents are too.
            for end in (1..components.len()).rev() {
                if !implied_dirs.insert(components[..end].join("/")) {
                    break;
                }
            }
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
            implied_dirs,
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
            None if self.implied_dirs.contains(path) => Some(Node::Dir),
            None => None,
        }
    }
    fn top_level(&self) -> Vec<String> {
        self.top.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use tar::{Builder, EntryType, Header};

    use super::*;
    use crate::error::Error;

    fn header(kind: EntryType, size: u64) -> Header {
        let mut h = Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(0o644);
        h
    }

    fn file(b: &mut Builder<Vec<u8>>, path: &str, data: &[u8]) {
        b.append_data(
            &mut header(EntryType::Regular, data.len() as u64),
            path,
            data,
        )
        .unwrap();
    }

    fn link(b: &mut Builder<Vec<u8>>, kind: EntryType, path: &str, target: &str) {
        b.append_link(&mut header(kind, 0), path, target).unwrap();
    }

    fn index(bytes: Vec<u8>) -> Result<TarIndex> {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&bytes).unwrap();
        TarIndex::new(f, "test.tar")
    }

    fn read(tree: &dyn FileTree, path: &str) -> Result<Vec<u8>> {
        let f = tree.resolve(path)?;
        let mut out = Vec::new();
        f.open()?.read_to_end(&mut out).unwrap();
        Ok(out)
    }

    #[test]
    fn reads_entries_by_offset_with_long_names_and_pax() {
        let long = format!("{}/layer.tar", "d".repeat(150));
        let mut b = Builder::new(Vec::new());
        file(&mut b, "./manifest.json", b"[]");
        // GNU long name (the builder emits ././@LongLink for names over 100 bytes).
        file(&mut b, &long, b"long");
        // A PAX path record overriding the header name.
        let mut pax = Builder::new(Vec::new());
        pax.append_pax_extensions([("path", "pax/renamed.json".as_bytes())])
            .unwrap();
        file(&mut pax, "short", b"pax data");
        let mut bytes = b.into_inner().unwrap();
        bytes.truncate(bytes.len() - 1024);
        bytes.extend(pax.into_inner().unwrap());
        let idx = index(bytes).unwrap();
        let tree: &dyn FileTree = &idx;
        assert_eq!(read(tree, "manifest.json").unwrap(), b"[]");
        assert_eq!(read(tree, &long).unwrap(), b"long");
        assert_eq!(read(tree, "pax/renamed.json").unwrap(), b"pax data");
        assert!(tree.find("short").unwrap().is_none());
        assert!(tree.exists("pax"), "implied directory");
    }

    #[test]
    fn follows_symlink_chains_and_hardlinks_inside_the_archive() {
        let mut b = Builder::new(Vec::new());
        file(&mut b, "a/layer.tar", b"layer");
        link(&mut b, EntryType::Symlink, "b/layer.tar", "../a/layer.tar");
        link(&mut b, EntryType::Symlink, "c/layer.tar", "../b/layer.tar");
        link(&mut b, EntryType::Link, "d/layer.tar", "a/layer.tar");
        link(&mut b, EntryType::Symlink, "e", "a");
        let idx = index(b.into_inner().unwrap()).unwrap();
        let tree: &dyn FileTree = &idx;
        for p in ["b/layer.tar", "c/layer.tar", "d/layer.tar", "e/layer.tar"] {
            assert_eq!(read(tree, p).unwrap(), b"layer", "{p}");
            assert_eq!(tree.resolve(p).unwrap().path, "a/layer.tar");
        }
    }

    #[test]
    fn refuses_links_that_escape_or_loop() {
        let mut b = Builder::new(Vec::new());
        link(&mut b, EntryType::Symlink, "up", "../../etc/passwd");
        link(&mut b, EntryType::Symlink, "abs", "/etc/passwd");
        link(&mut b, EntryType::Symlink, "loop1", "loop2");
        link(&mut b, EntryType::Symlink, "loop2", "loop1");
        link(&mut b, EntryType::Link, "hard", "../outside");
        let idx = index(b.into_inner().unwrap()).unwrap();
        let tree: &dyn FileTree = &idx;
        for p in ["up", "abs", "loop1", "hard"] {
            let err = tree.resolve(p).unwrap_err();
            assert!(matches!(err, Error::Malformed { .. }), "{p}: {err}");
        }
        assert!(tree.resolve("../x").is_err());
    }

    /// A tar whose only entry claims `size` bytes, in a sparse file of that length, with
    /// the size given by a PAX record (Go, Docker) or in base-256 (GNU tar).
    fn huge_entry(size: u64, pax: bool) -> TarIndex {
        let mut bytes = Vec::new();
        if pax {
            let mut b = Builder::new(Vec::new());
            b.append_pax_extensions([("size", size.to_string().as_bytes())])
                .unwrap();
            bytes = b.into_inner().unwrap();
            bytes.truncate(bytes.len() - 1024);
        }
        let mut h = header(EntryType::Regular, if pax { 0 } else { size });
        h.set_path("huge/layer.tar").unwrap();
        h.set_cksum();
        bytes.extend_from_slice(h.as_bytes());
        let data_start = bytes.len() as u64;
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&bytes).unwrap();
        f.set_len(data_start + size + 1024).unwrap();
        TarIndex::new(f, "huge.tar").unwrap()
    }

    #[test]
    fn sizes_over_8_gib_in_pax_and_base_256() {
        let size = (9u64 << 30) + 5;
        for pax in [true, false] {
            let idx = huge_entry(size, pax);
            let f = (&idx as &dyn FileTree).resolve("huge/layer.tar").unwrap();
            assert_eq!(f.size, size, "pax={pax}");
        }
    }

    #[test]
    fn last_duplicate_wins() {
        let mut b = Builder::new(Vec::new());
        file(&mut b, "x", b"first");
        file(&mut b, "./x", b"second");
        let idx = index(b.into_inner().unwrap()).unwrap();
        assert_eq!(idx.duplicates(), 1);
        assert_eq!(read(&idx, "x").unwrap(), b"second");
    }

    #[test]
    fn truncated_and_garbage_archives_are_errors_not_panics() {
        let mut b = Builder::new(Vec::new());
        file(&mut b, "big", &[7u8; 5000]);
        let bytes = b.into_inner().unwrap();
        let err = index(bytes[..3000].to_vec()).err().expect("truncated");
        assert!(matches!(err, Error::Truncated { .. }), "{err}");
        let err = index(vec![0x55; 2048]).err().expect("garbage");
        assert!(err.to_string().contains("not a valid tar"), "{err}");
        // A header claiming far more data than exists allocates nothing.
        let mut h = header(EntryType::Regular, 1 << 40);
        h.set_path("huge").unwrap();
        h.set_cksum();
        let mut bytes = h.as_bytes().to_vec();
        bytes.extend([0u8; 1024]);
        assert!(matches!(index(bytes), Err(Error::Truncated { .. })));
    }
}
