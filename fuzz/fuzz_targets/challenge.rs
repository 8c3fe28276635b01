//! Arbitrary text as a `WWW-Authenticate` value: the challenge parser never panics,
//! and every realm that passes as a URL credentials may go to writes out as a URL that
//! parses to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let challenges = dockhand::fuzzing::www_authenticate(&text);
    assert!(challenges.len() <= text.len());
    for (_, _, url) in challenges {
        if let Some(url) = url {
            assert_eq!(dockhand::fuzzing::url(&url).as_deref(), Ok(url.as_str()));
            let authority = url.split("://").nth(1).unwrap_or("").split('/').next().unwrap_or("");
            assert!(!authority.contains('@'), "userinfo passed: {url}");
        }
    }
});
