//! Arbitrary text as `--change` instructions, applied to a small image: parsing and
//! applying must not panic, and what an edit makes is a JSON config that keeps the
//! fields no instruction touches.
#![no_main]

use std::collections::BTreeMap;
use std::sync::Arc;

use dockhand::{ConfigChange, Descriptor, Digest, Image, ImageEdit, Platform};
use libfuzzer_sys::fuzz_target;

const CONFIG: &[u8] = br#"{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin","A=1"],"Cmd":["/bin/sh"],"Shell":["/bin/sh","-c"]},"rootfs":{"type":"layers","diff_ids":[]},"x-unknown":{"kept":[1,2]}}"#;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(changes) = ConfigChange::instructions(text) else {
        return;
    };
    let image = Image {
        tags: Vec::new(),
        ref_names: Vec::new(),
        oci_ref_names: BTreeMap::new(),
        config: Descriptor {
            media_type: "application/vnd.oci.image.config.v1+json".into(),
            digest: Digest::of(CONFIG),
            size: CONFIG.len() as u64,
        },
        config_bytes: Arc::new(CONFIG.to_vec()),
        config_path: "config".into(),
        manifest: None,
        manifest_bytes: None,
        platform: Platform::host(),
        layers: Vec::new(),
        artifact: false,
        index: None,
        input: Arc::from("fuzz"),
        annotations: BTreeMap::new(),
    };
    let edit = ImageEdit {
        changes,
        created: Some(std::time::UNIX_EPOCH),
        ..Default::default()
    };
    let Ok(edited) = edit.apply(&image) else {
        return;
    };
    let config: serde_json::Value =
        serde_json::from_slice(&edited.config_bytes).expect("an edited config is JSON");
    assert_eq!(Digest::of(&edited.config_bytes), edited.config.digest);
    assert_eq!(config["os"], "linux");
    assert_eq!(config["x-unknown"]["kept"], serde_json::json!([1, 2]));
    assert_eq!(config["history"].as_array().map(Vec::len), Some(1));
});
