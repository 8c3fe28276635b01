//! Arbitrary text as a `Link` value (and, after a NUL, as the URL it answered): the
//! next page never panics, never carries userinfo, and writes out as a URL that parses
//! to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (value, base) = text.split_once('\0').unwrap_or((&text, "http://127.0.0.1:5000/v2/a/tags/list"));
    if let Ok(url) = dockhand::fuzzing::url(base) {
        assert_eq!(dockhand::fuzzing::url(&url).as_deref(), Ok(url.as_str()));
    }
    if let Some(Ok(next)) = dockhand::fuzzing::next_link(value, base) {
        assert_eq!(dockhand::fuzzing::url(&next).as_deref(), Ok(next.as_str()));
        let authority = next.split("://").nth(1).unwrap_or("").split('/').next().unwrap_or("");
        assert!(!authority.contains('@'), "userinfo passed: {next}");
    }
});
