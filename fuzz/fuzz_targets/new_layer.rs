//! Arbitrary bytes as a layer (`append`'s LAYER, `import`'s ROOTFS): spooling must
//! not panic, and a layer it accepts is the input as given (decompressed), its
//! diff_id the sha256 of its bytes, with no entry landing outside the root and no
//! hard link leaving it.
#![no_main]

use std::io::Read;

use dockhand::{Compression, Digest, LayerOptions, NewLayer};
use libfuzzer_sys::fuzz_target;

/// How many entries (as the tar crate lists them) are checked per input.
const MAX_ENTRIES: usize = 256;

/// `path` with `..` applied from the root (a leading `/` ignored); `None` when it
/// climbs out.
fn inside(path: &str) -> Option<Vec<&str>> {
    let mut parts = Vec::new();
    for part in path.trim_start_matches('/').split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            _ => parts.push(part),
        }
    }
    Some(parts)
}

fuzz_target!(init: dockhand_fuzz::init(), |data: &[u8]| {
    let Ok(layer) = NewLayer::from_reader(data, "fuzz.tar", &LayerOptions::default()) else {
        return;
    };
    let mut bytes = Vec::new();
    layer
        .blob()
        .open()
        .expect("a spooled layer opens")
        .read_to_end(&mut bytes)
        .expect("a spooled layer reads");
    assert_eq!(bytes.len() as u64, layer.size());
    assert_eq!(Digest::of(&bytes), *layer.diff_id());
    if Compression::detect(data) == Compression::None {
        assert_eq!(bytes, data, "an uncompressed layer is the input as given");
    }
    let mut archive = tar::Archive::new(&bytes[..]);
    let Ok(entries) = archive.entries() else {
        return;
    };
    for entry in entries.take(MAX_ENTRIES) {
        let Ok(entry) = entry else { break };
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        assert!(inside(&name).is_some(), "{name:?} leaves the root");
        if entry.header().entry_type() == tar::EntryType::Link {
            if let Some(target) = entry.link_name_bytes() {
                let target = String::from_utf8_lossy(&target).into_owned();
                assert!(!target.starts_with('/'), "{name:?} links to {target:?}");
                assert!(inside(&target).is_some(), "{name:?} links to {target:?}");
            }
        }
    }
});
