//! Arbitrary bytes as a whole input file, opened the way the CLI opens one
//! (`open_input`: whole-archive gzip/zstd/xz/bzip2 detection and spooling), then
//! everything the CLI does with the images.
#![no_main]

use std::io::Write;

use dockhand::ReadOptions;
use libfuzzer_sys::fuzz_target;

fuzz_target!(init: dockhand_fuzz::init(), |data: &[u8]| {
    let mut file = tempfile::NamedTempFile::new().expect("creating a temp file");
    file.write_all(data).expect("writing a temp file");
    file.flush().expect("writing a temp file");
    let path = file.path().to_str().expect("temp paths are UTF-8").to_string();
    let Ok(input) = dockhand::fuzzing::open_input(&path) else {
        return;
    };
    if let Ok(source) = dockhand::fuzzing::read_tree(input.tree, &ReadOptions::default()) {
        dockhand_fuzz::exercise(&source);
    }
});
