//! Hostile input: paths, links, sizes, digests, resource use and faults. Every bad input
//! must give exit 1, one `error:` line naming the problem, no panic, no destination and
//! no temp files left, nothing written outside the destination, and bounded memory.

mod common;
use common::build::*;
use common::*;

use std::io::Write;
use std::path::Path;

use serde_json::json;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

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

#[test]
fn metadata_paths_that_leave_the_archive_are_refused() {
    let tmp = tempdir();
    let mut save = Save::new(1);
    save.manifest[0]["Config"] = json!("../../etc/passwd");
    reject(&put(tmp.path(), "a.tar", &save.tar()), "leaves the archive");
    let mut save = Save::new(1);
    save.manifest[0]["Layers"][0] = json!("/etc/passwd");
    reject(&put(tmp.path(), "b.tar", &save.tar()), "absolute");
    let mut save = Save::new(2);
    save.manifest[0]["Layers"][1] = json!("l0/../../l1/layer.tar");
    reject(&put(tmp.path(), "c.tar", &save.tar()), "leaves the archive");
}

#[test]
fn links_that_escape_or_loop_are_refused() {
    let tmp = tempdir();
    let cases: Vec<(&str, Vec<Entry>, &str)> = vec![
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
    ];
    for (name, links, needle) in cases {
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
    }
    // A chain one hop longer than the limit.
    let save = Save::new(1);
    let mut entries: Vec<Entry> = save
        .entries()
        .into_iter()
        .filter(|e| !matches!(e, Entry::File(p, _) if p == "l0/layer.tar"))
        .collect();
    entries.push(file("real", save.layers[0].clone()));
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
    reject(&archive(tmp.path(), "chain.tar", &entries), "link hops");
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
    for (name, digest, needle) in [
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
    ] {
        let layout = oci_layout(
            &tmp.path().join(name),
            json!({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": 10}]}),
        );
        reject(&layout, needle);
    }
}

#[test]
fn blob_symlinks_leaving_a_layout_directory_are_refused() {
    let tmp = tempdir();
    let secret = tmp.path().join("secret");
    std::fs::write(&secret, b"{\"not\": \"yours\"}").unwrap();
    let digest = sha256(b"{\"not\": \"yours\"}");
    let dir = tmp.path().join("layout");
    let layout = oci_layout(
        &dir,
        json!({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": 16}]}),
    );
    let blob = dir.join("blobs/sha256").join(&digest[7..]);
    std::os::unix::fs::symlink(&secret, &blob).unwrap();
    reject(&layout, "outside the archive");
    std::fs::remove_file(&blob).unwrap();
    std::os::unix::fs::symlink("../../../secret", &blob).unwrap();
    reject(&layout, "outside the archive");
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
    let save = Save::new(1);
    let mut entries = save.entries();
    entries.pop();
    let mut big = b"[".to_vec();
    big.resize(17 << 20, b' ');
    big.push(b']');
    entries.push(file("manifest.json", big));
    reject(&archive(tmp.path(), "big.tar", &entries), "limit");
    let mut entries = save.entries();
    entries.pop();
    entries.push(file("manifest.json", "[".repeat(100_000).into_bytes()));
    reject(&archive(tmp.path(), "deep.tar", &entries), "nested deeper");
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
    let d = tmp.path();
    reject(&put(d, "random.bin", &[0x5a; 4096]), "not a tar archive");
    reject(&put(d, "empty.tar", b""), "empty");
    let rootfs = vec![
        Entry::Dir("bin/".into()),
        file("bin/sh", b"#!".to_vec()),
        Entry::Dir("etc/".into()),
        file("etc/passwd", b"root".to_vec()),
        Entry::Dir("usr/".into()),
    ];
    reject(&archive(d, "rootfs.tar", &rootfs), "root filesystem");
    for (name, manifest, needle) in [
        ("null", "null", "null"),
        ("object", "{}", "empty object"),
        ("list", "[]", "empty list"),
        ("string", "\"x\"", "neither"),
    ] {
        reject(
            &archive(
                d,
                &format!("{name}.tar"),
                &[file("manifest.json", manifest.as_bytes().to_vec())],
            ),
            needle,
        );
    }
    let save = Save::new(1);
    let mut entries = save.entries();
    entries[0] = file(&save.config_name(), b"not json".to_vec());
    reject(&archive(d, "config.tar", &entries), "invalid json");
    let mut entries = save.entries();
    entries.remove(1);
    reject(&archive(d, "missing.tar", &entries), "missing");
    let mut bad = save.clone_layers();
    bad[0][600] ^= 1;
    let mut entries = save.entries();
    entries[1] = file("l0/layer.tar", bad[0].clone());
    reject(&archive(d, "diffid.tar", &entries), "diff_id mismatch");
    // Cut in the middle of the layer's data.
    let bytes = save.tar();
    let at = bytes.windows(7).position(|w| w == b"layer 0").unwrap() + 3;
    reject(&put(d, "cut.tar", &bytes[..at]), "truncated");
    // Duplicate entries: the last one wins, and here it is corrupt.
    let mut entries = save.entries();
    entries.insert(2, file("l0/layer.tar", bad[0].clone()));
    reject(&archive(d, "dup.tar", &entries), "diff_id mismatch");
    // Layers listed but fewer than the config's diff_ids.
    let mut s2 = Save::new(2);
    s2.manifest[0]["Layers"] = json!(["l0/layer.tar"]);
    reject(&put(d, "count.tar", &s2.tar()), "diff_ids");
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
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    for e in entries {
        let path = e.unwrap().path();
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
    }
}
