//! Arbitrary bytes as the manifest.json of a small docker-save tar that also holds
//! configs and layers under the names producers use; then everything the CLI does.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(init: dockhand_fuzz::init(), |data: &[u8]| {
    let tar = dockhand_fuzz::docker_tar(data);
    if let Ok(source) = dockhand_fuzz::read_tar(&tar, "fuzz.tar") {
        dockhand_fuzz::exercise(&source);
    }
});
