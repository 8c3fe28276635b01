//! Outputs never change by accident: every output of every fixture (and of every valid
//! corpus item, when `DOCKHAND_CORPUS` points at it) in every format must hash to the
//! digest recorded in `tests/golden/outputs.tsv`. A restructuring must leave them all
//! byte-identical; a deliberate change of output re-records them with
//! `DOCKHAND_BLESS=1 cargo test --release --test it golden` and says why in its commit.

use crate::common::*;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The outputs checked for each input: (label, dockhand arguments before SRC DST,
/// whether the output is a directory).
const OUTPUTS: &[(&str, &[&str], bool)] = &[
    ("oci", &["--to", "oci"], true),
    ("oci-archive", &["--to", "oci-archive"], false),
    ("docker-archive", &["--to", "docker-archive"], false),
    (
        "docker-archive-hybrid",
        &["--to", "docker-archive", "--docker-layout", "hybrid"],
        false,
    ),
    ("docker-dir", &["--to", "docker-dir"], true),
    ("dir-@0", &["--to", "dir", "--image", "@0"], true),
];

fn golden_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/outputs.tsv")
}

/// One digest for a whole output: the file's sha256, or for a directory the sha256 of
/// its sorted listing of paths, kinds, contents and link targets (not modes, which
/// follow the umask).
fn output_digest(path: &Path, is_dir: bool) -> String {
    if !is_dir {
        return sha256(&std::fs::read(path).unwrap());
    }
    let listing: Vec<String> = tree_snapshot(path)
        .into_iter()
        .map(|(rel, what)| format!("{rel}\t{what}\n"))
        .collect();
    sha256(listing.concat().as_bytes())
}

/// The inputs: every valid fixture, then every valid corpus item when the corpus is
/// there. Keys are stable names (relative to their root).
fn inputs() -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = fixtures()
        .into_iter()
        .filter(|f| !f.is_broken())
        .map(|f| (format!("fixtures/{}", f.name), f.input))
        .collect();
    if let Some(root) = std::env::var_os("DOCKHAND_CORPUS").map(PathBuf::from) {
        for item in corpus_items(&root).into_iter().filter(|i| i.valid) {
            out.push((format!("corpus/{}", item.name), item.path));
        }
    }
    out
}

/// Run every conversion of every input; returns row key -> digest (or `error`).
fn record() -> BTreeMap<String, String> {
    let tmp = tempdir();
    let mut rows = BTreeMap::new();
    for (n, (name, input)) in inputs().into_iter().enumerate() {
        for (label, args, is_dir) in OUTPUTS {
            let dest = tmp.path().join(format!("{n}-{label}"));
            let mut full: Vec<&str> = vec!["convert", "-q"];
            full.extend_from_slice(args);
            full.push(input.to_str().unwrap());
            full.push(dest.to_str().unwrap());
            let out = run(&full);
            let value = if out.status.success() {
                output_digest(&dest, *is_dir)
            } else {
                format!("error (exit {:?})", out.status.code())
            };
            rows.insert(format!("{name}\t{label}"), value);
        }
    }
    rows
}

fn parse(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (key, value) = l.rsplit_once('\t').expect("key<TAB>value rows");
            (key.to_string(), value.to_string())
        })
        .collect()
}

#[test]
fn every_output_is_byte_identical_to_the_recorded_one() {
    let got = record();
    let path = golden_path();
    if std::env::var("DOCKHAND_BLESS").as_deref() == Ok("1") {
        // Keep rows of inputs not present in this run (the corpus, when absent).
        let mut all = std::fs::read_to_string(&path)
            .map(|t| parse(&t))
            .unwrap_or_default();
        all.extend(got);
        let mut text =
            String::from("# input\toutput\tdigest of the output (see tests/it/golden.rs)\n");
        for (key, value) in &all {
            text.push_str(&format!("{key}\t{value}\n"));
        }
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        return;
    }
    let want =
        parse(&std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!("{}: {e}; record it with DOCKHAND_BLESS=1", path.display())
        }));
    let mut problems = Vec::new();
    for (key, value) in &got {
        match want.get(key) {
            Some(w) if w == value => {}
            Some(w) => problems.push(format!("{key}: recorded {w}, now {value}")),
            None => problems.push(format!("{key}: not recorded (now {value})")),
        }
    }
    // Every recorded fixture row must still be produced (corpus rows only with the corpus).
    let corpus = std::env::var_os("DOCKHAND_CORPUS").is_some();
    for key in want.keys() {
        if (corpus || key.starts_with("fixtures/")) && !got.contains_key(key) {
            problems.push(format!("{key}: recorded but no longer produced"));
        }
    }
    assert!(
        problems.is_empty(),
        "{} output(s) changed:\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert!(got.len() >= 6 * 15, "only {} outputs checked", got.len());
}
