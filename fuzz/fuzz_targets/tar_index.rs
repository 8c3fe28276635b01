//! Arbitrary bytes as a tar file: indexing must not panic, and every file the index
//! hands back must read as exactly the number of bytes it claims.
#![no_main]

use dockhand::fuzzing::FileTree;
use libfuzzer_sys::fuzz_target;

/// Names image layouts look for, plus some that go through links.
const NAMES: &[&str] = &[
    "manifest.json",
    "index.json",
    "oci-layout",
    "repositories",
    "version",
    "a/layer.tar",
    "a/json",
    "blobs/sha256",
    "./manifest.json",
    "x/../manifest.json",
];

/// How many entry names (as the tar crate lists them) are looked up per input.
const MAX_LOOKUPS: usize = 256;

fuzz_target!(init: dockhand_fuzz::init(), |data: &[u8]| {
    let Ok(idx) = dockhand_fuzz::index(data, "fuzz.tar") else {
        return;
    };
    let tree: &dyn FileTree = &idx;
    let _ = (idx.len(), idx.is_empty(), idx.duplicates(), tree.name(), tree.is_dir());
    for name in NAMES {
        let _ = tree.exists(name);
        let _ = tree.find(name);
        dockhand_fuzz::read_whole(tree, name);
    }
    for top in tree.top_level() {
        dockhand_fuzz::read_whole(tree, &top);
        for child in ["layer.tar", "json", "VERSION"] {
            dockhand_fuzz::read_whole(tree, &format!("{top}/{child}"));
        }
    }
    // Every name the archive holds, as an independent reader of the same bytes lists
    // them (stops at the first error, which the index may have tolerated or not).
    let mut archive = tar::Archive::new(data);
    let Ok(entries) = archive.entries() else {
        return;
    };
    for entry in entries.take(MAX_LOOKUPS) {
        let Ok(entry) = entry else { break };
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let _ = tree.node(&name);
        dockhand_fuzz::read_whole(tree, &name);
        if let Some(target) = entry.link_name_bytes() {
            let target = String::from_utf8_lossy(&target).into_owned();
            dockhand_fuzz::read_whole(tree, &target);
        }
    }
});
