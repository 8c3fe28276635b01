//! Arbitrary text as a `Retry-After` value, at an arbitrary moment (the first eight
//! bytes, as seconds around the epoch): never a panic, never a wait over the cap.
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (clock, value) = data.split_at(data.len().min(8));
    let mut seconds = [0u8; 8];
    seconds[..clock.len()].copy_from_slice(clock);
    let seconds = i64::from_le_bytes(seconds) % (400 * 366 * 86_400);
    let now = if seconds >= 0 {
        UNIX_EPOCH + Duration::from_secs(seconds as u64)
    } else {
        UNIX_EPOCH - Duration::from_secs(seconds.unsigned_abs())
    };
    let max = Duration::from_secs(60);
    if let Some(wait) = dockhand::fuzzing::retry_after(&String::from_utf8_lossy(value), now, max) {
        assert!(wait <= max);
    }
});
