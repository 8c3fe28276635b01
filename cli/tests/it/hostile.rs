//! Hostile input: paths, links, sizes, digests, resource use and faults. Every bad input
//! must give exit 1, one `error:` line naming the problem, no panic, no destination and
//! no temp files left, nothing written outside the destination, and bounded memory.

//!
//! The catalogues of bad inputs are tables of named rows ([`Table`]): every row runs,
//! and a failure names every failing row.

use crate::common::build::*;
use crate::common::table::Table;
use crate::common::*;

use std::io::Write;
use std::path::Path;

use serde_json::json;

/// `input` must be refused by convert (to a dir and to a tar) and verify, with a
/// message containing `needle`.
fn reject(input: &str, needle: &str) {
    let scratch = tempdir();
    let work = scratch.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let canary = scratch.path().join("canary");
    std::fs::write(&canary, b"canary").unwrap();
    for args in [
        vec!["convert", "--to", "oci", input, "out"],
        vec!["convert", "--to", "docker-archive", input, "out.tar"],
        vec!["verify", input],
    ] {
        let (out, rss) = run_measured(&args, &work);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?} on {input}: {stderr}");
        assert!(
            stderr.starts_with("error: ") && !stderr.contains("panicked"),
            "{args:?}: {stderr}"
        );
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(
            stderr.to_lowercase().contains(&needle.to_lowercase()),
            "{args:?}: expected {needle:?} in: {stderr}"
        );
        if let Some(kb) = rss {
            assert!(kb < RSS_LIMIT_KB, "{args:?}: peak RSS {kb} KiB");
        }
        let left: Vec<_> = std::fs::read_dir(&work)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "{args:?}: left {left:?}");
    }
    assert_eq!(std::fs::read(&canary).unwrap(), b"canary");
    let around: Vec<_> = std::fs::read_dir(scratch.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(around.len(), 2, "wrote outside the destination: {around:?}");
}

fn archive(dir: &Path, name: &str, entries: &[Entry]) -> String {
    put(dir, name, &tar_of(entries))
}

/// A valid archive of `layers` layers with `edit` applied.
fn save_with(layers: usize, edit: impl FnOnce(&mut Save)) -> Save {
    let mut save = Save::new(layers);
    edit(&mut save);
    save
}

#[test]
fn metadata_paths_that_leave_the_archive_are_refused() {
    let tmp = tempdir();
    // (row, archive, what the error must say)
    let rows = [
        (
            "config-path-climbs-out",
            save_with(1, |s| s.manifest[0]["Config"] = json!("../../etc/passwd")),
            "leaves the archive",
        ),
        (
            "absolute-layer-path",
            save_with(1, |s| s.manifest[0]["Layers"][0] = json!("/etc/passwd")),
            "absolute",
        ),
        (
            "layer-path-climbs-out-through-a-directory",
            save_with(2, |s| {
                s.manifest[0]["Layers"][1] = json!("l0/../../l1/layer.tar")
            }),
            "leaves the archive",
        ),
    ];
    let mut table = Table::new("metadata_paths_that_leave_the_archive_are_refused");
    for (name, save, needle) in rows {
        table.row(name, || {
            reject(
                &put(tmp.path(), &format!("{name}.tar"), &save.tar()),
                needle,
            )
        });
    }
    table.finish();
}

/// Symlinks `c0` -> `c1` -> ... -> `real` (a copy of the layer of `Save::new(1)`),
/// one hop more than the limit, and the layer entry linking to `c0`.
fn link_chain_past_the_limit() -> Vec<Entry> {
    let mut entries = vec![file("real", Save::new(1).layers[0].clone())];
    let hops = dockhand::limits::MAX_LINK_HOPS + 1;
    for i in 0..hops {
        let target = if i + 1 == hops {
            "real".to_string()
        } else {
            format!("c{}", i + 1)
        };
        entries.push(symlink(&format!("c{i}"), &target));
    }
    entries.push(symlink("l0/layer.tar", "../c0"));
    entries
}

#[test]
fn links_that_escape_or_loop_are_refused() {
    let tmp = tempdir();
    // (row, the entries that stand in for the layer l0/layer.tar, what the error must say)
    let rows: Vec<(&str, Vec<Entry>, &str)> = vec![
        (
            "up",
            vec![symlink("l0/layer.tar", "../../../../etc/passwd")],
            "outside the archive",
        ),
        (
            "abs",
            vec![symlink("l0/layer.tar", "/etc/passwd")],
            "outside the archive",
        ),
        (
            "loop",
            vec![
                symlink("l0/layer.tar", "../l1/layer.tar"),
                symlink("l1/layer.tar", "../l0/layer.tar"),
            ],
            "link hops",
        ),
        (
            "hard",
            vec![hardlink("l0/layer.tar", "../etc/passwd")],
            "outside the archive",
        ),
        ("chain", link_chain_past_the_limit(), "link hops"),
    ];
    let mut table = Table::new("links_that_escape_or_loop_are_refused");
    for (name, links, needle) in rows {
        table.row(name, || {
            let save = Save::new(1);
            let mut entries: Vec<Entry> = save
                .entries()
                .into_iter()
                .filter(|e| !matches!(e, Entry::File(p, _) if p == "l0/layer.tar"))
                .collect();
            entries.extend(links);
            reject(
                &archive(tmp.path(), &format!("{name}.tar"), &entries),
                needle,
            );
        });
    }
    table.finish();
}

fn oci_layout(dir: &Path, index: serde_json::Value) -> String {
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    s(dir).to_string()
}

#[test]
fn digests_that_are_not_digests_are_refused() {
    let tmp = tempdir();
    // (row, the manifest digest index.json gives, what the error must say)
    let rows = [
        (
            "traversal",
            "sha256:../../../../etc/passwd",
            "invalid digest",
        ),
        (
            "algorithm",
            &format!("sha512:{}", "a".repeat(128)) as &str,
            "unsupported digest algorithm",
        ),
        ("short", "sha256:abcd", "invalid digest"),
        (
            "upper",
            &format!("sha256:{}", "A".repeat(64)),
            "invalid digest",
        ),
    ];
    let mut table = Table::new("digests_that_are_not_digests_are_refused");
    for (name, digest, needle) in rows {
        table.row(name, || {
            let layout = oci_layout(
                &tmp.path().join(name),
                json!({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": 10}]}),
            );
            reject(&layout, needle);
        });
    }
    table.finish();
}

#[test]
fn blob_symlinks_leaving_a_layout_directory_are_refused() {
    let tmp = tempdir();
    let secret = tmp.path().join("secret");
    std::fs::write(&secret, b"{\"not\": \"yours\"}").unwrap();
    let digest = sha256(b"{\"not\": \"yours\"}");
    // (row, where the manifest blob's symlink points); each row is a layout beside
    // `secret`, as tmp/<row>.
    let rows = [
        ("absolute-link", s(&secret).to_string()),
        ("relative-link", "../../../secret".to_string()),
    ];
    let mut table = Table::new("blob_symlinks_leaving_a_layout_directory_are_refused");
    for (name, target) in rows {
        table.row(name, || {
            let dir = tmp.path().join(name);
            let layout = oci_layout(
                &dir,
                json!({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": 16}]}),
            );
            let blob = dir.join("blobs/sha256").join(&digest[7..]);
            std::os::unix::fs::symlink(&target, &blob).unwrap();
            reject(&layout, "outside the archive");
        });
    }
    table.finish();
}

#[test]
fn names_from_input_never_become_paths() {
    // A RepoTag that looks like a path is not a valid reference: it is ignored with a
    // warning, and nothing is written outside the destination.
    let tmp = tempdir();
    let mut save = Save::new(1);
    save.manifest[0]["RepoTags"] = json!(["../../../escape:latest", "ok/name:1"]);
    let input = put(tmp.path(), "in.tar", &save.tar());
    let out = tmp.path().join("out");
    for to in ["docker-dir", "oci"] {
        let dest = out.join(to);
        std::fs::create_dir_all(&out).unwrap();
        ok(&["convert", "--to", to, &input, s(&dest)]);
        let doc = inspect(s(&dest));
        assert_eq!(doc["images"][0]["tags"], json!(["docker.io/ok/name:1"]));
    }
    let mut names: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["in.tar", "out"]);
    // A pre-1.10 archive whose repositories file names a path as a layer id.
    let entries = vec![
        file("repositories", br#"{"x":{"latest":"../../etc"}}"#.to_vec()),
        file("abc/json", b"{}".to_vec()),
        file("abc/layer.tar", layer("f", b"x")),
    ];
    reject(
        &archive(tmp.path(), "legacy.tar", &entries),
        "invalid layer id",
    );
}

#[test]
fn oversized_and_deeply_nested_json_is_refused_before_parsing() {
    let tmp = tempdir();
    let mut big = b"[".to_vec();
    big.resize(17 << 20, b' ');
    big.push(b']');
    // (row, the manifest.json of a valid archive, what the error must say)
    let rows = [
        ("big", big, "limit"),
        ("deep", "[".repeat(100_000).into_bytes(), "nested deeper"),
    ];
    let mut table = Table::new("oversized_and_deeply_nested_json_is_refused_before_parsing");
    for (name, manifest, needle) in rows {
        table.row(name, || {
            let mut entries = Save::new(1).entries();
            entries.pop();
            entries.push(file("manifest.json", manifest));
            reject(
                &archive(tmp.path(), &format!("{name}.tar"), &entries),
                needle,
            );
        });
    }
    table.finish();
}

#[test]
fn a_header_claiming_more_than_the_file_holds_is_truncation() {
    let tmp = tempdir();
    let save = Save::new(1);
    let mut bytes = save.tar();
    // Claim 2^40 bytes for the config entry (the first header), fix its checksum.
    let mut h = tar::Header::from_byte_slice(&bytes[..512]).clone();
    h.set_size(1 << 40);
    h.set_cksum();
    bytes[..512].copy_from_slice(h.as_bytes());
    reject(&put(tmp.path(), "liar.tar", &bytes), "truncated");
}

#[test]
fn decompression_bombs_stream_in_bounded_memory() {
    // A gzip layer that expands 1000-fold, and the same archive gzipped as a whole.
    let tmp = tempdir();
    let mut layer_tar = Vec::new();
    {
        let mut b = tar::Builder::new(&mut layer_tar);
        let mut h = tar::Header::new_gnu();
        h.set_size(256 << 20);
        h.set_mode(0o644);
        h.set_cksum();
        struct Zeros(u64);
        impl std::io::Read for Zeros {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = (buf.len() as u64).min(self.0) as usize;
                buf[..n].fill(0);
                self.0 -= n as u64;
                Ok(n)
            }
        }
        b.append_data(&mut h, "zeros", Zeros(256 << 20)).unwrap();
        b.finish().unwrap();
    }
    let diff_id = sha256(&layer_tar);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&layer_tar).unwrap();
    let gz = gz.finish().unwrap();
    assert!(gz.len() < (1 << 20));
    drop(layer_tar);
    let mut save = Save::with_layers(vec![gz], "2024-01-01T00:00:00Z");
    // with_layers hashed the gzip bytes: the config must list the uncompressed digest.
    save.config = serde_json::to_vec(&json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [diff_id]}})).unwrap();
    save.manifest[0]["Config"] = json!(save.config_name());
    let input = put(tmp.path(), "bomb.tar", &save.tar());
    let work = tmp.path().join("w");
    std::fs::create_dir(&work).unwrap();
    for args in [
        vec![
            "convert",
            "--to",
            "docker-archive",
            s(Path::new(&input)),
            "out.tar",
        ],
        vec!["verify", s(Path::new(&input))],
    ] {
        let (out, rss) = run_measured(&args, &work);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        if let Some(kb) = rss {
            assert!(kb < RSS_LIMIT_KB, "{args:?}: peak RSS {kb} KiB");
        }
    }
    assert!(std::fs::metadata(work.join("out.tar")).unwrap().len() > 256 << 20);
}

#[test]
fn many_images_and_many_entries_stay_fast_and_small() {
    let tmp = tempdir();
    // 10,000 images sharing one layer, each with its own config.
    let shared = layer("f", b"shared");
    let diff_id = sha256(&shared);
    let mut entries = vec![file("l/layer.tar", shared)];
    let mut manifest = Vec::new();
    for i in 0..10_000 {
        let config = serde_json::to_vec(&json!({"os": "linux", "architecture": "amd64", "created": format!("{i}"), "rootfs": {"type": "layers", "diff_ids": [diff_id]}})).unwrap();
        let name = format!("{}.json", &sha256(&config)[7..]);
        manifest.push(json!({"Config": name, "RepoTags": [format!("many/image:{i}")], "Layers": ["l/layer.tar"]}));
        entries.push(file(&name, config));
    }
    entries.push(file(
        "manifest.json",
        serde_json::to_vec(&manifest).unwrap(),
    ));
    let input = archive(tmp.path(), "many.tar", &entries);
    let work = tmp.path().join("w");
    std::fs::create_dir(&work).unwrap();
    let (out, rss) = run_measured(&["convert", &input, "out"], &work);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    if let Some(kb) = rss {
        assert!(kb < 200 * 1024, "10,000 images: peak RSS {kb} KiB");
    }
    assert_eq!(
        inspect(s(&work.join("out")))["images"]
            .as_array()
            .unwrap()
            .len(),
        10_000
    );
    // 100,000 entries in one archive.
    let mut entries = Save::new(1).entries();
    for i in 0..100_000 {
        entries.push(file(&format!("junk/{i}"), Vec::new()));
    }
    let input = archive(tmp.path(), "entries.tar", &entries);
    let (out, rss) = run_measured(&["convert", &input, "out2"], &work);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    if let Some(kb) = rss {
        assert!(kb < 200 * 1024, "100,000 entries: peak RSS {kb} KiB");
    }
}

#[test]
fn bad_input_catalogue() {
    let tmp = tempdir();
    let rootfs = vec![
        Entry::Dir("bin/".into()),
        file("bin/sh", b"#!".to_vec()),
        Entry::Dir("etc/".into()),
        file("etc/passwd", b"root".to_vec()),
        Entry::Dir("usr/".into()),
    ];
    let manifest_only =
        |manifest: &str| tar_of(&[file("manifest.json", manifest.as_bytes().to_vec())]);
    let save = Save::new(1);
    let mut bad = save.clone_layers();
    bad[0][600] ^= 1;
    let with_entries = |edit: &dyn Fn(&mut Vec<Entry>)| {
        let mut entries = save.entries();
        edit(&mut entries);
        tar_of(&entries)
    };
    let whole = save.tar();
    let cut_at = whole.windows(7).position(|w| w == b"layer 0").unwrap() + 3;
    let mut s2 = Save::new(2);
    s2.manifest[0]["Layers"] = json!(["l0/layer.tar"]);
    // (row, file name, bytes, what the error must say)
    let rows: Vec<(&str, &str, Vec<u8>, &str)> = vec![
        (
            "random-bytes",
            "random.bin",
            vec![0x5a; 4096],
            "not a tar archive",
        ),
        ("empty-file", "empty.tar", Vec::new(), "empty"),
        (
            "a-root-filesystem",
            "rootfs.tar",
            tar_of(&rootfs),
            "root filesystem",
        ),
        ("manifest-null", "null.tar", manifest_only("null"), "null"),
        (
            "manifest-empty-object",
            "object.tar",
            manifest_only("{}"),
            "empty object",
        ),
        (
            "manifest-empty-list",
            "list.tar",
            manifest_only("[]"),
            "empty list",
        ),
        (
            "manifest-a-string",
            "string.tar",
            manifest_only("\"x\""),
            "neither",
        ),
        (
            "config-not-json",
            "config.tar",
            with_entries(&|e| e[0] = file(&save.config_name(), b"not json".to_vec())),
            "invalid json",
        ),
        (
            "layer-missing",
            "missing.tar",
            with_entries(&|e| {
                e.remove(1);
            }),
            "missing",
        ),
        (
            "layer-corrupt",
            "diffid.tar",
            with_entries(&|e| e[1] = file("l0/layer.tar", bad[0].clone())),
            "diff_id mismatch",
        ),
        // Cut in the middle of the layer's data.
        (
            "cut-in-a-layer",
            "cut.tar",
            whole[..cut_at].to_vec(),
            "truncated",
        ),
        // Duplicate entries: the last one wins, and here it is corrupt.
        (
            "duplicate-layer-last-corrupt",
            "dup.tar",
            with_entries(&|e| e.insert(2, file("l0/layer.tar", bad[0].clone()))),
            "diff_id mismatch",
        ),
        // Layers listed but fewer than the config's diff_ids.
        (
            "fewer-layers-than-diff-ids",
            "count.tar",
            s2.tar(),
            "diff_ids",
        ),
    ];
    let mut table = Table::new("bad_input_catalogue");
    for (name, file_name, bytes, needle) in rows {
        table.row(name, || reject(&put(tmp.path(), file_name, &bytes), needle));
    }
    table.finish();
}

trait CloneLayers {
    fn clone_layers(&self) -> Vec<Vec<u8>>;
}

impl CloneLayers for Save {
    fn clone_layers(&self) -> Vec<Vec<u8>> {
        self.layers.clone()
    }
}

#[test]
fn fuzz_regressions_fail_cleanly() {
    let dir = fixtures_dir().join("hostile");
    // One row an input the fuzzers found, named by its file.
    let mut rows: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    rows.sort();
    let mut table = Table::new("fuzz_regressions_fail_cleanly");
    for path in rows {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        table.row(&name, || {
            let out = run(&["inspect", s(&path)]);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!stderr.contains("panicked"), "{}: {stderr}", path.display());
            assert!(
                matches!(out.status.code(), Some(0) | Some(1)),
                "{}: {stderr}",
                path.display()
            );
            let tmp = tempdir();
            let out = run(&["convert", s(&path), s(&tmp.path().join("o"))]);
            assert!(
                matches!(out.status.code(), Some(0) | Some(1)),
                "{}",
                path.display()
            );
        });
    }
    table.finish();
}
