//! Layers applied and exported: generated from the bytes (three bytes an entry: what it
//! is, its name, its link target; whiteouts, opaque markers, hard links and hostile
//! names among them), the export must give what a naive model of extraction gives
//! (each layer's whiteouts first, then its entries in order), and both must refuse the
//! same images; with the first byte's high bit set, the rest is one raw layer tar,
//! which must never panic and, when it applies, export a well-formed tar (each name
//! once, normalized, no whiteout, each hard link after what it links to).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(init: dockhand_fuzz::init(), |data: &[u8]| {
    dockhand::fuzzing::check_layers(data);
});
