//! Resource caps on hostile input: tar extension headers, entry names, endless input
//! streams and decompressors asking for too much memory. Each must end in one `error:`
//! line naming the limit, in small memory, without reading what a header claims.
//!
//! Runs go through [`guarded`], which caps CPU time and wall time. Those caps are
//! blow-up guards (a regression that reads 8 GiB or spools `/dev/zero` forever must
//! fail the test instead of hanging it or filling the disk), not speed targets: a
//! correct run takes milliseconds.

use crate::common::build::*;
use crate::common::*;

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Output, Stdio};

/// Run dockhand with `args` in `cwd` under the blow-up guards ([`run_guarded`]), with
/// `stdin` (or nothing) as input and `TMPDIR` set to `tmp`.
fn guarded(args: &[&str], cwd: &Path, stdin: Option<Stdio>, tmp: &Path) -> (Output, Option<u64>) {
    run_guarded(args, |cmd| {
        cmd.current_dir(cwd).env("TMPDIR", tmp);
        if let Some(stdin) = stdin {
            cmd.stdin(stdin);
        }
    })
}

/// The run failed with exit 1 and one `error:` line containing every needle, in
/// small memory; returns the line.
fn refused(run: (Output, Option<u64>), what: &str, needles: &[&str]) -> String {
    let (out, rss) = run;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{what}: {stderr}");
    assert!(stderr.starts_with("error: "), "{what}: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{what}: {stderr}");
    assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    for needle in needles {
        assert!(
            stderr.to_lowercase().contains(&needle.to_lowercase()),
            "{what}: expected {needle:?} in {stderr}"
        );
    }
    if let Some(kb) = rss {
        assert!(kb < RSS_LIMIT_KB, "{what}: peak RSS {kb} KiB");
    }
    stderr
}

/// The run succeeded in small memory.
fn succeeded(run: (Output, Option<u64>), what: &str) {
    let (out, rss) = run;
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    if let Some(kb) = rss {
        assert!(kb < RSS_LIMIT_KB, "{what}: peak RSS {kb} KiB");
    }
}

/// Scratch space for one test: `work` (the cwd, must stay empty on failure) and
/// `tmp` (TMPDIR, must stay empty always).
struct Scratch {
    root: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Scratch {
        let root = tempdir();
        std::fs::create_dir(root.path().join("work")).unwrap();
        std::fs::create_dir(root.path().join("tmp")).unwrap();
        Scratch { root }
    }
    fn path(&self) -> &Path {
        self.root.path()
    }
    fn work(&self) -> std::path::PathBuf {
        self.root.path().join("work")
    }
    fn tmp(&self) -> std::path::PathBuf {
        self.root.path().join("tmp")
    }
    fn run(&self, args: &[&str]) -> (Output, Option<u64>) {
        guarded(args, &self.work(), None, &self.tmp())
    }
    fn run_stdin(&self, args: &[&str], input: &Path) -> (Output, Option<u64>) {
        let stdin = Stdio::from(File::open(input).unwrap());
        guarded(args, &self.work(), Some(stdin), &self.tmp())
    }
    /// Nothing was left in the work or temp directories.
    fn assert_clean(&self, what: &str) {
        for dir in [self.work(), self.tmp()] {
            let left: Vec<_> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert!(
                left.is_empty(),
                "{what}: left {left:?} in {}",
                dir.display()
            );
        }
    }
    /// Refused by `convert` (from a file and from stdin) and `verify`.
    fn refuse_everywhere(&self, input: &str, what: &str, needles: &[&str]) {
        for args in [
            vec!["convert", "--to", "oci", input, "out"],
            vec!["verify", input],
        ] {
            refused(self.run(&args), &format!("{what} {args:?}"), needles);
            self.assert_clean(what);
        }
        refused(
            self.run_stdin(&["convert", "--to", "oci", "-", "out"], Path::new(input)),
            &format!("{what} on stdin"),
            needles,
        );
        self.assert_clean(what);
    }
}

/// A valid archive with `extra` inserted before its manifest.json.
fn archive_with(extra: &[u8]) -> Vec<u8> {
    let save = Save::new(1);
    let mut entries = save.entries();
    let manifest = entries.pop().unwrap();
    let mut bytes = tar_without_end(&entries);
    bytes.extend_from_slice(extra);
    bytes.extend(tar_of(&[manifest]));
    bytes
}

#[test]
fn oversized_extension_headers_are_refused_naming_the_limit() {
    let scratch = Scratch::new();
    let big = vec![b'n'; 2 << 20];
    let mut pax = pax_header(&[("path", &big)]);
    pax.extend(raw_entry(b'0', "x", 0, b""));
    let input = put(scratch.path(), "pax.tar", &archive_with(&pax));
    scratch.refuse_everywhere(&input, "2 MiB PAX header", &["PAX", "limit of 1 MiB"]);
    let mut long = gnu_long_name(&big);
    long.extend(raw_entry(b'0', "x", 0, b""));
    let input = put(scratch.path(), "long.tar", &archive_with(&long));
    scratch.refuse_everywhere(
        &input,
        "2 MiB long name",
        &["GNU long name", "limit of 1 MiB"],
    );
    // Just under the cap is read (and the name is then refused for its own length).
    let mut ok = pax_header(&[("comment", &vec![b'c'; (1 << 20) - 100])]);
    ok.extend(raw_entry(b'0', "x", 0, b""));
    let input = put(scratch.path(), "ok.tar", &archive_with(&ok));
    succeeded(scratch.run(&["verify", &input]), "a 1 MiB PAX comment");
}

#[test]
fn a_claimed_8_gib_long_name_is_refused_before_reading() {
    let scratch = Scratch::new();
    let mut head = tar_without_end(&Save::new(1).entries());
    head.extend(raw_entry(b'L', "././@LongLink", 8 << 30, b""));
    let path = scratch.path().join("claim.tar");
    let mut f = File::create(&path).unwrap();
    f.write_all(&head).unwrap();
    // Sparse: the file really is 8 GiB long, but takes no disk.
    f.set_len(head.len() as u64 + (8 << 30) + 1024).unwrap();
    drop(f);
    for args in [vec!["verify", s(&path)], vec!["inspect", s(&path)]] {
        refused(
            scratch.run(&args),
            &format!("{args:?}"),
            &["GNU long name", "8589934592 bytes", "limit"],
        );
    }
    scratch.assert_clean("8 GiB long name");
}

#[test]
fn names_over_the_length_and_depth_caps_are_refused() {
    let scratch = Scratch::new();
    let long = format!("{}/layer.tar", "a".repeat(4990));
    let mut entry = pax_header(&[("path", long.as_bytes())]);
    entry.extend(raw_entry(b'0', "x", 0, b""));
    let input = put(scratch.path(), "long.tar", &archive_with(&entry));
    let line = refused(
        scratch.run(&["verify", &input]),
        "5000-byte name",
        &["5000 bytes long", "limit of 4096 bytes"],
    );
    assert!(line.len() < 600, "the name is cut in the message: {line}");
    let deep = vec!["d"; 200].join("/");
    let mut entry = pax_header(&[("path", deep.as_bytes())]);
    entry.extend(raw_entry(b'0', "x", 0, b""));
    let input = put(scratch.path(), "deep.tar", &archive_with(&entry));
    refused(
        scratch.run(&["verify", &input]),
        "200-deep name",
        &["200 components", "limit of 128"],
    );
    scratch.assert_clean("names");
}

#[test]
fn many_distinct_deep_paths_within_the_caps_stay_small() {
    // 4000 names of 127 components and about 3900 bytes each: 15 MiB of names. Storing
    // every prefix of every path would take about 1 GiB.
    let scratch = Scratch::new();
    let tail = vec!["c".repeat(30); 126].join("/");
    let mut extra = Vec::new();
    for i in 0..4000 {
        let name = format!("p{i:06}/{tail}");
        extra.extend(pax_header(&[("path", name.as_bytes())]));
        extra.extend(raw_entry(b'0', "x", 1, b"z"));
    }
    let input = put(scratch.path(), "deep.tar", &archive_with(&extra));
    succeeded(
        scratch.run(&["convert", "--to", "oci", &input, "out"]),
        "4000 deep paths",
    );
    succeeded(
        scratch.run_stdin(&["inspect", "-"], Path::new(&input)),
        "4000 deep paths on stdin",
    );
    assert!(inspect(s(&scratch.work().join("out")))["images"][0].is_object());
}

#[test]
fn dev_zero_ends_at_once_and_leaves_nothing() {
    let scratch = Scratch::new();
    let zero = Path::new("/dev/zero");
    for (what, run) in [
        ("stdin", scratch.run_stdin(&["convert", "-", "out"], zero)),
        ("file", scratch.run(&["convert", "/dev/zero", "out"])),
        (
            "stdin to a tar",
            scratch.run_stdin(&["convert", "--to", "docker-archive", "-", "out.tar"], zero),
        ),
    ] {
        refused(run, what, &["no entries"]);
        scratch.assert_clean(what);
    }
    // Random bytes are no tar, said without quoting them.
    let line = refused(
        scratch.run_stdin(&["inspect", "-"], Path::new("/dev/urandom")),
        "urandom",
        &["not a tar archive"],
    );
    assert!(line.is_ascii(), "{line}");
}

#[test]
fn bytes_after_the_end_marker_are_not_read() {
    let scratch = Scratch::new();
    let mut bytes = Save::new(2).tar();
    bytes.extend(vec![0x5a; 3 << 20]);
    let input = put(scratch.path(), "trailing.tar", &bytes);
    succeeded(scratch.run(&["verify", &input]), "file with garbage after");
    succeeded(
        scratch.run_stdin(&["verify", "-"], Path::new(&input)),
        "stdin with garbage after",
    );
    // A producer padding to a record size may write it all: no broken pipe.
    let mut padded = Save::new(1).tar();
    padded.resize(padded.len().div_ceil(10240) * 10240 + 20480, 0);
    let mut child = dockhand()
        .args(["verify", "-"])
        .env("TMPDIR", scratch.tmp())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let written = stdin.write_all(&padded);
    drop(stdin);
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(child.wait().unwrap().success(), "{stderr}");
    assert!(written.is_ok(), "the padding was not read: {written:?}");
    scratch.assert_clean("trailing bytes");
}

#[test]
fn compressed_archives_over_a_decoder_memory_cap_are_refused() {
    let scratch = Scratch::new();
    let tar = Save::new(1).tar();
    // Controls: the same construction within the caps reads fine.
    for (name, bytes) in [
        ("ok.tar.xz", xz_with_dictionary(&tar, 28)),
        ("ok.tar.zst", zstd_with_window(20, &tar)),
    ] {
        let input = put(scratch.path(), name, &bytes);
        succeeded(scratch.run(&["verify", &input]), name);
    }
    let input = put(scratch.path(), "dict.tar.xz", &xz_with_dictionary(&tar, 37));
    scratch.refuse_everywhere(&input, "xz asking 1.5 GiB", &["xz", "128 MiB of memory"]);
    let input = put(
        scratch.path(),
        "window.tar.zst",
        &zstd_with_window(31, &tar),
    );
    scratch.refuse_everywhere(&input, "zstd asking 2 GiB", &["zstd", "memory"]);
}

#[test]
fn compressed_layers_over_a_decoder_memory_cap_are_refused() {
    let scratch = Scratch::new();
    let layer_tar = layer("f", &[7u8; 5000]);
    let controls = [
        ("ok-xz.tar", xz_with_dictionary(&layer_tar, 28)),
        ("ok-zstd.tar", zstd_with_window(20, &layer_tar)),
    ];
    for (name, stored) in controls {
        let input = put(
            scratch.path(),
            name,
            &save_with_stored_layer(stored, &layer_tar).tar(),
        );
        succeeded(scratch.run(&["verify", &input]), name);
    }
    let cases = [
        ("xz.tar", xz_with_dictionary(&layer_tar, 37), "xz"),
        ("zstd.tar", zstd_with_window(31, &layer_tar), "zstd"),
    ];
    for (name, stored, kind) in cases {
        let input = put(
            scratch.path(),
            name,
            &save_with_stored_layer(stored, &layer_tar).tar(),
        );
        for to in ["oci", "docker-archive"] {
            refused(
                scratch.run(&["convert", "--to", to, &input, "out"]),
                &format!("{name} to {to}"),
                &[kind, "memory", "l0/layer.tar"],
            );
        }
        scratch.refuse_everywhere(&input, name, &[kind, "memory"]);
    }
}
