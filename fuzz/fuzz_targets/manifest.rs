//! Arbitrary bytes as a manifest a registry serves: identifying it (its digest, by
//! the schema 1 payload when signed), naming its media type and learning its
//! descriptors never panic; an unsigned manifest's digest is its bytes', and a signed
//! one's payload is a prefix of it plus a tail.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};

fuzz_target!(|data: &[u8]| {
    let payload = dockhand::fuzzing::schema1_payload(data);
    if let Ok((digest, schema1, _media_type, _learnt)) = dockhand::fuzzing::manifest(data) {
        let of = |bytes: &[u8]| format!("sha256:{}", hex(&Sha256::digest(bytes)));
        if schema1 {
            assert_eq!(digest, of(&payload.expect("a schema 1 digest comes from its payload")));
        } else {
            assert_eq!(digest, of(data));
        }
    }
});

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
