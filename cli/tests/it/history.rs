//! `dockhand history`: the build steps of an image matched to its layers, as
//! `docker history` shows them: from configs, and the uncompressed size of each layer
//! (read from a compressed layer, verified on the way).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;

use crate::common::build::{layer, put, save_with_stored_layer, Save};
use crate::common::*;
use serde_json::{json, Value};

/// A one-image docker-save archive with `layers` layers whose config has `history`.
fn save_with_history(layers: usize, history: Value) -> Vec<u8> {
    let mut save = Save::new(layers);
    let mut config: Value = serde_json::from_slice(&save.config).unwrap();
    config["history"] = history;
    save.config = serde_json::to_vec(&config).unwrap();
    save.manifest[0]["Config"] = json!(save.config_name());
    save.tar()
}

fn history_json(args: &[&str]) -> Value {
    let mut all = vec!["history", "--json"];
    all.extend(args);
    serde_json::from_slice(&ok(&all)).expect("history --json prints JSON")
}

#[test]
fn history_of_a_docker_save_lists_steps_newest_first() {
    let f = fixture("docker-save-basic");
    let text = String::from_utf8(ok(&["history", f.input()])).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("IMAGE "), "{text}");
    assert_eq!(lines.len(), 8, "{text}");
    assert!(lines[1].starts_with("6f2d02a983f5 "), "{text}");
    assert!(lines[1].contains(r#"CMD ["/bin/hello.sh"]"#), "{text}");
    assert!(
        !text.contains("#(nop)"),
        "the nop prefix is stripped: {text}"
    );
    assert!(
        lines[2..].iter().all(|l| l.starts_with("<missing> ")),
        "{text}"
    );
    assert!(lines[2].contains('…'), "long steps are cut: {text}");
    // The three layers, base last, with their tar sizes in docker's units.
    assert!(
        lines[5].contains("4.1kB") && lines[7].contains("2.56kB"),
        "{text}"
    );
    assert!(lines[1].contains("0B"), "{text}");

    let doc = history_json(&[f.input()]);
    let rows = doc["images"][0]["history"].as_array().unwrap();
    assert_eq!(rows.len(), 7);
    assert_eq!(rows[0]["id"], f.expected["images"][0]["config"]["digest"]);
    assert_eq!(rows[0]["created"], "2026-11-22T19:35:04.18851048Z");
    assert_eq!(
        rows[6]["created_by"],
        "/bin/sh -c #(nop) COPY dir:a8c5eca5c2896fa2633a5c8ab66e79fa1b790677f29d02186f0830892a7ea10d in / "
    );
    let sizes: Vec<u64> = rows.iter().map(|r| r["size"].as_u64().unwrap()).collect();
    assert_eq!(sizes, [0, 0, 0, 0, 4096, 3072, 2560]);
    let untruncated = String::from_utf8(ok(&["history", "--no-trunc", f.input()])).unwrap();
    assert!(untruncated.contains("sha256:6f2d02a983f5"), "{untruncated}");
    assert!(untruncated.contains("in / "), "{untruncated}");
}

/// `history --json` of `src`: each image's row sizes, newest first, by image ID.
fn sizes_by_id(src: &str) -> BTreeMap<String, Vec<u64>> {
    let doc = history_json(&[src]);
    doc["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|image| {
            let sizes = image["history"]
                .as_array()
                .unwrap()
                .iter()
                .map(|row| {
                    assert_eq!(row["size_exact"], true, "{row}");
                    row["size"].as_u64().unwrap()
                })
                .collect();
            (image["id"].as_str().unwrap().to_string(), sizes)
        })
        .collect()
}

/// The length of each layer tar a docker-save archive holds, by image ID, base first,
/// read from the archive with the tar crate (not with dockhand). A layer that is a
/// symlink to another (docker save writes one for a layer two images share) has the
/// size of its target.
fn archive_tar_sizes(archive: &str) -> BTreeMap<String, Vec<u64>> {
    let mut sizes = BTreeMap::new();
    let mut links = BTreeMap::new();
    let mut manifest = Value::Null;
    let mut tar = tar::Archive::new(std::fs::File::open(archive).unwrap());
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        if entry.header().entry_type().is_symlink() {
            let target = entry.link_name().unwrap().unwrap();
            let parent = Path::new(&path)
                .parent()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let target = target.to_string_lossy().into_owned();
            let resolved = match target.strip_prefix("../") {
                Some(up) => {
                    let grand = Path::new(&parent).parent().unwrap();
                    grand.join(up).to_string_lossy().into_owned()
                }
                None => Path::new(&parent)
                    .join(&target)
                    .to_string_lossy()
                    .into_owned(),
            };
            links.insert(path, resolved);
            continue;
        }
        sizes.insert(path.clone(), entry.size());
        if path == "manifest.json" {
            manifest = serde_json::from_reader(&mut entry).unwrap();
        }
    }
    for (link, target) in links {
        sizes.insert(link, sizes[&target]);
    }
    manifest
        .as_array()
        .unwrap()
        .iter()
        .map(|image| {
            let config = image["Config"].as_str().unwrap();
            let id = format!("sha256:{}", config.trim_end_matches(".json"));
            let layers = image["Layers"].as_array().unwrap();
            (
                id,
                layers.iter().map(|l| sizes[l.as_str().unwrap()]).collect(),
            )
        })
        .collect()
}

/// The length of each layer of every image of the OCI layout at `dir` once
/// decompressed (by flate2 and zstd here, not by dockhand), by image ID, base first;
/// with the compression each layer's media type names.
fn oci_tar_sizes(dir: &Path) -> BTreeMap<String, Vec<(u64, String)>> {
    let blob = |digest: &str| dir.join("blobs/sha256").join(&digest[7..]);
    let json =
        |path: &Path| -> Value { serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap() };
    let index = json(&dir.join("index.json"));
    let mut out = BTreeMap::new();
    for entry in index["manifests"].as_array().unwrap() {
        let manifest = json(&blob(entry["digest"].as_str().unwrap()));
        let id = manifest["config"]["digest"].as_str().unwrap().to_string();
        let layers = manifest["layers"].as_array().unwrap();
        let sizes = layers
            .iter()
            .map(|l| {
                let media_type = l["mediaType"].as_str().unwrap();
                let file = std::fs::File::open(blob(l["digest"].as_str().unwrap())).unwrap();
                let (mut reader, compression): (Box<dyn Read>, &str) =
                    match media_type.rsplit_once('+').map(|(_, c)| c) {
                        Some("gzip") => (Box::new(flate2::read::GzDecoder::new(file)), "gzip"),
                        Some("zstd") => (Box::new(zstd::Decoder::new(file).unwrap()), "zstd"),
                        _ => (Box::new(file), "none"),
                    };
                let n = std::io::copy(&mut reader, &mut std::io::sink()).unwrap();
                (n, compression.to_string())
            })
            .collect();
        out.insert(id, sizes);
    }
    out
}

/// The non-zero sizes of a history, base first: one per layer.
fn layer_sizes_of(history: &[u64]) -> Vec<u64> {
    history.iter().rev().copied().filter(|&s| s > 0).collect()
}

/// Converts `src` to an OCI layout at `out` with `compression` layers, `extra` flags
/// added.
fn convert_to_oci_with(compression: &str, extra: &[&str], src: &str, out: &Path) {
    let mut args = vec![
        "convert",
        "-q",
        "--to",
        "oci",
        "--layer-compression",
        compression,
    ];
    args.extend_from_slice(extra);
    args.extend([src, s(out)]);
    ok(&args);
}

#[test]
fn history_sizes_are_uncompressed_whatever_the_layer_compression() {
    for name in ["docker-save-basic", "docker-save-multi"] {
        let f = fixture(name);
        let tmp = tempdir();
        let original = sizes_by_id(f.input());
        let tars = archive_tar_sizes(f.input());
        assert_eq!(
            original.keys().collect::<Vec<_>>(),
            tars.keys().collect::<Vec<_>>(),
            "{name}"
        );
        for (id, sizes) in &original {
            assert_eq!(layer_sizes_of(sizes), tars[id], "{name} {id}");
        }
        for compression in ["gzip", "zstd"] {
            let out = tmp.path().join(format!("{compression}-oci"));
            convert_to_oci_with(compression, &[], f.input(), &out);
            // The layers really are compressed, and hold the archive's tars.
            for (id, layers) in oci_tar_sizes(&out) {
                assert!(layers.iter().all(|(_, c)| c == compression), "{layers:?}");
                let sizes: Vec<u64> = layers.iter().map(|(n, _)| *n).collect();
                assert_eq!(sizes, tars[&id], "{name} {compression} {id}");
            }
            assert_eq!(
                sizes_by_id(s(&out)),
                original,
                "{name}: history of the {compression} OCI layout"
            );
            // The table shows the same sizes, without any mark.
            let table = String::from_utf8(ok(&["history", s(&out)])).unwrap();
            let reference = String::from_utf8(ok(&["history", f.input()])).unwrap();
            assert_eq!(table, reference, "{name} {compression}");
            assert!(!table.contains('*'), "{table}");
        }
        // A dir: layout holds one image, its layers compressed too.
        let dir = tmp.path().join("gzip-dir");
        ok(&[
            "convert",
            "-q",
            "--to",
            "dir",
            "--layer-compression",
            "gzip",
            "--image",
            "@0",
            f.input(),
            s(&dir),
        ]);
        let from_dir = sizes_by_id(s(&dir));
        let (id, sizes) = from_dir.iter().next().unwrap();
        assert_eq!(sizes, &original[id], "{name}: dir layout");
    }
}

#[test]
fn history_of_layouts_skopeo_and_umoci_wrote_shows_tar_sizes() {
    // Written by real tools: gzip (skopeo, umoci) and zstd (skopeo) layers.
    let basic = sizes_by_id(fixture("docker-save-basic").input());
    let basic = basic.values().next().unwrap();
    for name in [
        "skopeo-oci",
        "skopeo-oci-zstd",
        "skopeo-dir-gzip",
        "skopeo-oci-multi",
    ] {
        let f = fixture(name);
        let sizes = sizes_by_id(f.input());
        // Each holds the basic fixture's layers (skopeo-oci-multi, one more image).
        assert!(sizes.values().any(|s| s == basic), "{name}: {sizes:?}");
    }
    let f = fixture("umoci-layout");
    let sizes = sizes_by_id(f.input());
    for (id, layers) in oci_tar_sizes(&f.input) {
        assert_eq!(
            layer_sizes_of(&sizes[&id]),
            layers.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            "umoci-layout"
        );
    }
}

#[test]
fn history_verifies_the_compressed_layers_it_reads() {
    let tmp = tempdir();
    let tar = layer("f", b"the layer's one file");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let stored = gz.finish().unwrap();
    // A docker-save archive may hold a compressed layer: its size is still the tar's.
    let good = put(
        tmp.path(),
        "good.tar",
        &save_with_stored_layer(stored.clone(), &tar).tar(),
    );
    let doc = history_json(&[&good]);
    let row = &doc["images"][0]["history"][0];
    assert_eq!(row["size"], tar.len() as u64, "{doc}");
    assert_eq!(row["compression"], "gzip", "{doc}");
    // A layer whose content is not what the config's diff_id says: an error naming it.
    let wrong = layer("f", b"another file");
    let bad = put(
        tmp.path(),
        "bad.tar",
        &save_with_stored_layer(stored, &wrong).tar(),
    );
    for args in [vec!["history", &bad], vec!["history", "--json", &bad]] {
        let stderr = fails(&args);
        assert!(stderr.contains("diff_id mismatch"), "{stderr}");
        assert!(stderr.contains("l0/layer.tar"), "names the layer: {stderr}");
        assert!(stderr.contains("bad.tar"), "names the input: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
}

#[test]
fn history_of_an_absent_compressed_layer_keeps_its_stored_size_and_says_so() {
    let f = fixture("docker-save-basic");
    let tmp = tempdir();
    let out = tmp.path().join("oci");
    ok(&[
        "convert",
        "-q",
        "--layer-compression",
        "zstd",
        f.input(),
        s(&out),
    ]);
    // Remove the middle layer's blob, as a layout without a foreign layer lacks it.
    let blob = |digest: &str| out.join("blobs/sha256").join(&digest[7..]);
    let index: Value =
        serde_json::from_slice(&std::fs::read(out.join("index.json")).unwrap()).unwrap();
    let manifest = index["manifests"][0]["digest"].as_str().unwrap();
    let manifest: Value = serde_json::from_slice(&std::fs::read(blob(manifest)).unwrap()).unwrap();
    let middle = &manifest["layers"][1];
    std::fs::remove_file(blob(middle["digest"].as_str().unwrap())).unwrap();

    let output = run(&["history", "--json", s(&out)]);
    assert!(output.status.success(), "{output:?}");
    let doc: Value = serde_json::from_slice(&output.stdout).unwrap();
    let rows = doc["images"][0]["history"].as_array().unwrap();
    let row = rows.iter().find(|r| r["layer"] == 1).unwrap();
    assert_eq!(row["size"], middle["size"], "{row}");
    assert_eq!(row["size_exact"], false, "{row}");
    // The other layers were read: their tar sizes.
    let exact: Vec<&Value> = rows.iter().filter(|r| r["size_exact"] == true).collect();
    assert!(exact.iter().any(|r| r["size"] == 4096) && exact.iter().any(|r| r["size"] == 2560));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("is absent from the source, so its SIZE is its compressed size"),
        "{stderr}"
    );
    assert!(
        run(&["history", "-q", s(&out)]).stderr.is_empty(),
        "-q is quiet"
    );
}

#[test]
fn history_reads_a_big_compressed_layer_in_bounded_memory() {
    // 256 MiB of zeros in one file, gzip-compressed to a few hundred KiB.
    const FILE: u64 = 256 << 20;
    let tmp = tempdir();
    let mut header = tar::Header::new_gnu();
    header.set_path("zeros").unwrap();
    header.set_size(FILE);
    header.set_mode(0o644);
    header.set_cksum();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    use sha2::Digest as _;
    let mut diff_id = sha2::Sha256::new();
    let mut put_both = |bytes: &[u8]| {
        gz.write_all(bytes).unwrap();
        diff_id.update(bytes);
    };
    put_both(header.as_bytes());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..FILE / (1 << 20) {
        put_both(&zeros);
    }
    put_both(&[0u8; 1024]);
    let stored = gz.finish().unwrap();
    let tar_size = 512 + FILE + 1024;
    let diff_id = format!("sha256:{}", hex::encode(diff_id.finalize()));
    let mut save = save_with_stored_layer(stored, b"");
    save.config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }))
    .unwrap();
    save.manifest[0]["Config"] = json!(save.config_name());
    let path = put(tmp.path(), "zeros.tar", &save.tar());
    let (out, rss) = run_measured(&["history", "--json", &path], tmp.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["images"][0]["history"][0]["size"], tar_size);
    if let Some(kb) = rss {
        assert!(kb < RSS_LIMIT_KB, "peak RSS {kb} KiB for a 256 MiB layer");
    }
}

#[test]
fn history_of_several_images_has_one_table_each() {
    let f = fixture("docker-save-multi");
    let text = String::from_utf8(ok(&["history", f.input()])).unwrap();
    let heads: Vec<&str> = text.lines().filter(|l| l.starts_with('@')).collect();
    assert_eq!(heads.len(), 3, "{text}");
    assert_eq!(text.lines().filter(|l| l.starts_with("IMAGE ")).count(), 3);
    let one = String::from_utf8(ok(&["history", "--image", "@1", f.input()])).unwrap();
    assert!(!one.lines().any(|l| l.starts_with('@')), "{one}");
}

#[test]
fn history_naming_more_layers_than_the_image_has_fails() {
    let tmp = tempdir();
    let history = json!([{"created_by": "ADD a"}, {"created_by": "ADD b"}, {"created_by": "CMD", "empty_layer": true}]);
    let path = put(tmp.path(), "h.tar", &save_with_history(1, history));
    let stderr = fails(&["history", &path]);
    assert!(
        stderr.contains("hostile/test:1"),
        "names the image: {stderr}"
    );
    assert!(stderr.contains("2 layer(s), but it has 1"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn history_escapes_control_characters() {
    let tmp = tempdir();
    let history = json!([
        {"created_by": "ADD \u{1b}[2J evil\u{202e}", "comment": "a\nb"},
        {"created_by": "RUN\ttab", "empty_layer": true, "created": "not a time"},
    ]);
    let path = put(tmp.path(), "e.tar", &save_with_history(1, history));
    for args in [
        vec!["history", &path],
        vec!["history", "--no-trunc", &path],
        vec!["history", "--json", &path],
    ] {
        let out = String::from_utf8(ok(&args)).unwrap();
        assert!(
            !out.contains('\u{1b}') && !out.contains('\u{202e}'),
            "{out:?}"
        );
        assert!(out.lines().count() >= 3, "no forged line: {out}");
    }
    let text = String::from_utf8(ok(&["history", &path])).unwrap();
    assert!(text.contains("\\x1b[2J"), "{text}");
    assert!(text.contains("a\\nb"), "{text}");
    assert!(
        text.contains("RUN tab"),
        "tabs become spaces, as docker shows them: {text}"
    );
    let doc = history_json(&[&path]);
    assert_eq!(
        doc["images"][0]["history"][1]["created_by"],
        "ADD \u{1b}[2J evil\u{202e}"
    );
}

#[test]
fn history_without_history_shows_one_row_per_layer() {
    let tmp = tempdir();
    for history in [Value::Null, json!([]), json!("junk"), json!([5])] {
        let path = put(tmp.path(), "n.tar", &save_with_history(2, history.clone()));
        let text = String::from_utf8(ok(&["history", &path])).unwrap();
        assert_eq!(text.lines().count(), 3, "{history}: {text}");
        assert!(
            text.lines().nth(2).unwrap().starts_with("<missing>"),
            "{text}"
        );
    }
}

/// docker history's CREATED BY and SIZE columns, newest first.
fn docker_history(reference: &str) -> Vec<(String, String)> {
    let out = tool(
        "docker",
        &[
            "history",
            "--no-trunc",
            "--format",
            "{{.CreatedBy}}|{{.Size}}",
            reference,
        ],
    );
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| {
            let (by, size) = l.rsplit_once('|').unwrap();
            (by.to_string(), size.to_string())
        })
        .collect()
}

/// The value of a size docker prints (`55B`, `2.56kB`).
fn size_value(s: &str) -> f64 {
    let at = s.find(|c: char| c.is_ascii_alphabetic()).unwrap();
    let (n, unit) = s.split_at(at);
    let scale = match unit {
        "B" => 1.0,
        "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        _ => panic!("unit {unit}"),
    };
    n.parse::<f64>().unwrap() * scale
}

#[test]
fn history_matches_docker_history() {
    const TEST: &str = "history_matches_docker_history";
    if !have_docker(TEST) {
        return;
    }
    let _docker = docker_lock();
    for (name, reference) in [
        ("docker-save-basic", "dockhand-fixture/basic:1.0"),
        (
            "docker-save-multi",
            "docker.io/dockhand-fixture/multi-app:1.0",
        ),
    ] {
        let f = fixture(name);
        tool("docker", &["load", "-q", "-i", f.input()]);
        let theirs = docker_history(reference);
        // The archive docker loaded, and the same image in OCI layouts with gzip and
        // zstd layers: each must match docker.
        let tmp = tempdir();
        let mut sources = vec![f.input().to_string()];
        for compression in ["gzip", "zstd"] {
            let out = tmp.path().join(compression);
            convert_to_oci_with(compression, &["--image", reference], f.input(), &out);
            sources.push(s(&out).to_string());
        }
        for src in &sources {
            compare_with_docker(name, reference, src, &theirs);
        }
    }
    // WORKDIR adds a layer holding one directory: docker shows 0B (no file bytes),
    // dockhand the size of that layer's tar, as the README says.
    let tmp = tempdir();
    std::fs::write(
        tmp.path().join("Dockerfile"),
        "FROM scratch\nWORKDIR /app\n",
    )
    .unwrap();
    let reference = "dockhand-test/history-workdir:1";
    tool("docker", &["build", "-q", "-t", reference, s(tmp.path())]);
    let theirs = docker_history(reference);
    assert_eq!(theirs.len(), 1, "{theirs:?}");
    assert!(
        theirs[0].0.contains("WORKDIR /app") && theirs[0].1 == "0B",
        "{theirs:?}"
    );
    let archive = tmp.path().join("workdir.tar");
    let saved = tool("docker", &["save", reference]);
    std::fs::write(&archive, saved).unwrap();
    compare_with_docker("workdir", reference, s(&archive), &theirs);
    let doc = history_json(&[s(&archive)]);
    let row = &doc["images"][0]["history"][0];
    let size = row["size"].as_u64().unwrap();
    assert!(size > 0 && size % 512 == 0, "the layer's tar: {row}");
}

/// `dockhand history` of `reference` in `src` against docker's rows.
fn compare_with_docker(name: &str, reference: &str, src: &str, theirs: &[(String, String)]) {
    let name = format!("{name} ({src})");
    let text =
        String::from_utf8(ok(&["history", "--no-trunc", "--image", reference, src])).unwrap();
    let doc = history_json(&["--image", reference, src]);
    let rows = doc["images"][0]["history"].as_array().unwrap();
    assert_eq!(rows.len(), theirs.len(), "{name}: {theirs:?}\n{text}");
    let table: Vec<&str> = text.lines().skip(1).collect();
    for ((row, line), (by, size)) in rows.iter().zip(&table).zip(theirs) {
        // Docker before 25 prints the raw step; dockhand strips the nop prefix as
        // newer docker does: compare both without it.
        let strip = |s: &str| {
            s.strip_prefix("/bin/sh -c #(nop) ")
                .map_or(s.to_string(), |r| r.trim_start().to_string())
        };
        assert_eq!(
            strip(row["created_by"].as_str().unwrap()),
            strip(by),
            "{name}"
        );
        assert!(line.contains(&strip(by)), "{name}: {line} lacks {by}");
        let ours = row["size"].as_u64().unwrap() as f64;
        let theirs = size_value(size);
        // Docker counts the bytes of the unpacked files on its storage driver,
        // dockhand the layer's tar (what docker save writes): a step without a layer
        // is 0B in both, and the tar is never smaller than the files it holds (a
        // layer of directories only is 0B in docker, a tar of headers here).
        if ours == 0.0 {
            assert_eq!(theirs, 0.0, "{name}: {row} vs {size}");
        }
        assert!(ours >= theirs, "{name}: {row} vs {size}");
    }
}
