//! Arbitrary bytes as the index.json of a small OCI layout tar whose blobs hold valid
//! manifests, indexes, configs and layers; then everything the CLI does.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(init: dockhand_fuzz::init(), |data: &[u8]| {
    let tar = dockhand_fuzz::oci_tar(data);
    if let Ok(source) = dockhand_fuzz::read_tar(&tar, "fuzz.tar") {
        dockhand_fuzz::exercise(&source);
    }
});
