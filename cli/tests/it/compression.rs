//! `--layer-compression` and `--compression-level`: media types, unchanged image IDs and
//! diff_ids, digests that match the blobs, streams the system's gzip and zstd decode,
//! output independent of the number of cores, and the usage errors. (skopeo, umoci,
//! podman and docker reading these outputs are in the interop tests.)

use crate::common::build::*;
use crate::common::interop::*;
use crate::common::*;

use std::fs;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

const OCI_WRITERS: [Writer; 3] = [Writer::Oci, Writer::OciArchive, Writer::Dir];

/// The media type suffix and `inspect` compression name each choice gives a layer.
fn expected(compression: &str) -> (&'static str, &'static str) {
    match compression {
        "gzip" => ("tar+gzip", "gzip"),
        "zstd" => ("tar+zstd", "zstd"),
        _ => ("tar", "none"),
    }
}

fn convert_compressed(src: &str, writer: Writer, compression: &str, out: &Path, extra: &[&str]) {
    let mut args = vec!["convert", src];
    args.extend_from_slice(writer.args());
    args.extend(["--layer-compression", compression]);
    args.extend_from_slice(extra);
    args.extend([s(out), "-q"]);
    ok(&args);
}

#[test]
fn every_fixture_compresses_with_its_image_id_and_diff_ids_unchanged() {
    let tmp = tempdir();
    for f in valid_fixtures() {
        let src = inspect(f.input());
        let want: Vec<(String, Vec<String>)> = images(&src)
            .iter()
            .map(|im| (config_of(im), diff_ids_of(im)))
            .collect();
        for compression in ["gzip", "zstd", "none"] {
            for writer in OCI_WRITERS {
                let what = format!("{} -> {writer:?} {compression}", f.name);
                let out =
                    tmp.path()
                        .join(format!("{}-{compression}-{}", f.name, writer.file_name()));
                convert_compressed(f.input(), writer, compression, &out, &[]);
                let doc = inspect(s(&out));
                let got: Vec<(String, Vec<String>)> = images(&doc)
                    .iter()
                    .map(|im| (config_of(im), diff_ids_of(im)))
                    .collect();
                if writer == Writer::Dir {
                    assert_eq!(got, want[..1], "{what}");
                } else {
                    assert_eq!(got, want, "{what}");
                }
                let (suffix, name) = expected(compression);
                for image in images(&doc) {
                    for layer in image["layers"].as_array().unwrap() {
                        let media_type = layer["media_type"].as_str().unwrap();
                        assert!(
                            media_type.starts_with("application/vnd.oci.image.layer.v1.")
                                && media_type.ends_with(&format!(".{suffix}")),
                            "{what}: {media_type}"
                        );
                        assert_eq!(layer["compression"], name, "{what}");
                        if compression == "none" {
                            assert_eq!(layer["digest"], layer["diff_id"], "{what}");
                        }
                    }
                }
                // verify re-reads every blob against the manifest's digest and size,
                // and every layer against its diff_id.
                ok(&["verify", s(&out)]);
            }
        }
    }
}

/// A docker-save archive with one layer of many MiB (several gzip blocks and zstd jobs,
/// text and random parts) and a small one.
fn big_archive(dir: &Path) -> String {
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
    let mut big = noise.text(9 << 20);
    big.extend(noise.bytes(3 << 20));
    big.extend(noise.text(9 << 20));
    let layers = vec![layer("big.txt", &big), layer("small.txt", b"small\n")];
    let save = Save::with_layers(layers, "2024-01-01T00:00:00Z");
    put(dir, "big.tar", &save.tar())
}

fn have_taskset(test: &str) -> bool {
    have_tool(test, "taskset")
}

/// Every file of an output, name -> sha256 (a tar output is one file).
fn output_digests(path: &Path) -> Vec<(String, String)> {
    if path.is_dir() {
        tree_snapshot(path)
    } else {
        vec![(String::new(), sha256(&fs::read(path).unwrap()))]
    }
}

#[test]
fn output_is_byte_identical_whatever_the_number_of_cores() {
    const TEST: &str = "output_is_byte_identical_whatever_the_number_of_cores";
    if !have_taskset(TEST) {
        return;
    }
    let tmp = tempdir();
    let src = big_archive(tmp.path());
    for compression in ["gzip", "zstd"] {
        for level in ["", "1", "9"] {
            let extra: Vec<&str> = if level.is_empty() {
                vec![]
            } else {
                vec!["--compression-level", level]
            };
            let all = tmp.path().join(format!("all-{compression}-{level}"));
            convert_compressed(&src, Writer::Oci, compression, &all, &extra);
            let one = tmp.path().join(format!("one-{compression}-{level}"));
            let mut cmd = Command::new("taskset");
            cmd.args(["-c", "0", env!("CARGO_BIN_EXE_dockhand"), "convert", &src])
                .args(["--layer-compression", compression])
                .args(&extra)
                .args([&format!("oci:{}", s(&one)), "-q"]);
            run_cmd(cmd);
            assert_eq!(
                output_digests(&all),
                output_digests(&one),
                "{compression} level {level:?}: one core and every core differ"
            );
        }
    }
    // The same for a tar output written to stdout.
    let args = [
        "convert",
        &src,
        "-",
        "--to",
        "oci-archive",
        "--layer-compression",
        "gzip",
    ];
    let all = ok(&args);
    let mut cmd = Command::new("taskset");
    cmd.args(["-c", "0", env!("CARGO_BIN_EXE_dockhand")])
        .args(args);
    assert!(
        all == run_cmd(cmd),
        "oci-archive on stdout differs with one core"
    );
}

/// The layer blobs of the single image of an OCI layout, with their diff_ids.
fn layer_blobs(layout: &Path) -> Vec<(Vec<u8>, String, Value)> {
    let doc = inspect(s(layout));
    let image = &images(&doc)[0];
    image["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let digest = l["digest"].as_str().unwrap();
            let blob = fs::read(layout.join("blobs/sha256").join(&digest[7..])).unwrap();
            assert_eq!(sha256(&blob), digest, "blob content matches its digest");
            assert_eq!(blob.len() as u64, l["size"].as_u64().unwrap(), "size");
            (blob, l["diff_id"].as_str().unwrap().to_string(), l.clone())
        })
        .collect()
}

#[test]
fn the_systems_gzip_and_zstd_decode_every_layer_to_its_diff_id() {
    let tmp = tempdir();
    let src = big_archive(tmp.path());
    for (compression, tool_name) in [("gzip", "gzip"), ("zstd", "zstd")] {
        if !have_tool(
            "the_systems_gzip_and_zstd_decode_every_layer_to_its_diff_id",
            tool_name,
        ) {
            continue;
        }
        let out = tmp.path().join(compression);
        convert_compressed(&src, Writer::Oci, compression, &out, &[]);
        for (i, (blob, diff_id, _)) in layer_blobs(&out).into_iter().enumerate() {
            let path = tmp.path().join(format!("{compression}-{i}.blob"));
            fs::write(&path, &blob).unwrap();
            let plain = tool(tool_name, &["-dc", s(&path)]);
            assert_eq!(sha256(&plain), diff_id, "{compression} layer {i}");
            // `gzip -t` checks the CRC and length of the single member.
            tool(tool_name, &["-t", s(&path)]);
        }
    }
}

#[test]
fn levels_change_the_bytes_and_every_level_decodes() {
    let tmp = tempdir();
    let src = big_archive(tmp.path());
    for (compression, levels) in [("gzip", ["1", "6", "9"]), ("zstd", ["1", "3", "19"])] {
        let mut sizes = Vec::new();
        let mut digests = Vec::new();
        for level in levels {
            let out = tmp.path().join(format!("{compression}-{level}"));
            convert_compressed(
                &src,
                Writer::Oci,
                compression,
                &out,
                &["--compression-level", level],
            );
            ok(&["verify", s(&out)]);
            let blobs = layer_blobs(&out);
            sizes.push(blobs[0].0.len());
            digests.push(blobs[0].2["digest"].clone());
        }
        assert!(
            digests[0] != digests[1] && digests[1] != digests[2],
            "{compression}: levels give different bytes"
        );
        assert!(
            sizes[0] > sizes[2],
            "{compression}: level {} ({} bytes) is no smaller than level {} ({} bytes)",
            levels[2],
            sizes[2],
            levels[0],
            sizes[0]
        );
    }
    // The default levels are 1 for gzip and 3 for zstd.
    for (compression, level) in [("gzip", "1"), ("zstd", "3")] {
        let default = tmp.path().join(format!("{compression}-default"));
        convert_compressed(&src, Writer::Oci, compression, &default, &[]);
        let explicit = tmp.path().join(format!("{compression}-{level}"));
        assert_eq!(
            tree_snapshot(&default),
            tree_snapshot(&explicit),
            "{compression}: default level is {level}"
        );
    }
}

#[test]
fn keep_and_compressing_to_the_stored_form_leave_layers_byte_for_byte() {
    let tmp = tempdir();
    // skopeo's OCI layout holds gzip layers, its dir: layout too.
    for name in ["skopeo-oci", "skopeo-dir-gzip", "skopeo-oci-zstd"] {
        let f = fixture(name);
        let src_doc = inspect(f.input());
        let stored: Vec<Value> = images(&src_doc)[0]["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["digest"].clone())
            .collect();
        let compression = images(&src_doc)[0]["layers"][0]["compression"]
            .as_str()
            .unwrap()
            .to_string();
        for choice in ["keep", compression.as_str()] {
            let out = tmp.path().join(format!("{name}-{choice}"));
            convert_compressed(f.input(), Writer::Oci, choice, &out, &[]);
            let layers: Vec<Value> = layer_blobs(&out)
                .into_iter()
                .map(|b| b.2["digest"].clone())
                .collect();
            assert_eq!(layers, stored, "{name} with {choice}: layers as stored");
        }
        // Another compression re-encodes them, with the same image ID.
        let other = if compression == "gzip" {
            "zstd"
        } else {
            "gzip"
        };
        let out = tmp.path().join(format!("{name}-{other}"));
        convert_compressed(f.input(), Writer::Oci, other, &out, &[]);
        let doc = inspect(s(&out));
        assert_eq!(
            config_digests(&doc)[..1],
            config_digests(&src_doc)[..1],
            "{name}"
        );
        for (_, _, layer) in layer_blobs(&out) {
            assert_eq!(layer["compression"], other, "{name} -> {other}");
        }
    }
}

#[test]
fn compressed_outputs_convert_back_to_the_same_docker_archive() {
    let tmp = tempdir();
    for name in ["docker-save-basic", "docker-save-multi", "docker-save-xz"] {
        let f = fixture(name);
        let direct = tmp.path().join(format!("{name}-direct.tar"));
        ok(&["convert", f.input(), s(&direct), "-q"]);
        for compression in ["gzip", "zstd"] {
            let layout = tmp.path().join(format!("{name}-{compression}"));
            convert_compressed(f.input(), Writer::Oci, compression, &layout, &[]);
            let back = tmp.path().join(format!("{name}-{compression}.tar"));
            ok(&[
                "convert",
                s(&layout),
                &format!("docker-archive:{}", s(&back)),
                "-q",
            ]);
            assert!(
                fs::read(&back).unwrap() == fs::read(&direct).unwrap(),
                "{name} through {compression}: not byte-identical to the direct conversion"
            );
        }
    }
}

#[test]
fn compression_options_that_cannot_apply_are_usage_errors() {
    let tmp = tempdir();
    let src = fixture("docker-save-basic").input().to_string();
    let out = |n: &str| format!("oci:{}", s(&tmp.path().join(n)));
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["--compression-level".into(), "5".into(), out("a")],
            "--compression-level",
        ),
        (
            vec![
                "--layer-compression".into(),
                "keep".into(),
                "--compression-level".into(),
                "5".into(),
                out("b"),
            ],
            "--compression-level",
        ),
        (
            vec![
                "--layer-compression".into(),
                "gzip".into(),
                "--compression-level".into(),
                "10".into(),
                out("c"),
            ],
            "1 to 9",
        ),
        (
            vec![
                "--layer-compression".into(),
                "gzip".into(),
                "--compression-level".into(),
                "0".into(),
                out("d"),
            ],
            "1 to 9",
        ),
        (
            vec![
                "--layer-compression".into(),
                "zstd".into(),
                "--compression-level".into(),
                "20".into(),
                out("e"),
            ],
            "1 to 19",
        ),
        (
            vec![
                "--layer-compression".into(),
                "zstd".into(),
                "--compression-level".into(),
                "-1".into(),
                out("f"),
            ],
            "1 to 19",
        ),
        (
            vec!["--layer-compression".into(), "brotli".into(), out("g")],
            "brotli",
        ),
        (
            vec![
                "--layer-compression".into(),
                "gzip".into(),
                format!("docker-archive:{}", s(&tmp.path().join("h.tar"))),
            ],
            "docker-archive",
        ),
        (
            vec![
                "--layer-compression".into(),
                "zstd".into(),
                format!("docker-dir:{}", s(&tmp.path().join("i"))),
            ],
            "docker-dir",
        ),
        // A plain .tar is a docker-archive: the error says how to get compressed
        // layers in a tar, or in a directory.
        (
            vec![
                "--layer-compression".into(),
                "gzip".into(),
                s(&tmp.path().join("j.tar")).to_string(),
            ],
            "for gzip layers in a tar, write an oci-archive (--to oci-archive)",
        ),
        (
            vec![
                "--layer-compression".into(),
                "zstd".into(),
                format!("docker-dir:{}", s(&tmp.path().join("k"))),
            ],
            "for zstd layers in a directory, write an OCI layout (--to oci)",
        ),
    ];
    for (args, mention) in cases {
        let mut all = vec!["convert", src.as_str()];
        all.extend(args.iter().map(String::as_str));
        let out = run(&all);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{all:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{all:?}: one line: {stderr}");
        assert!(stderr.contains(mention), "{all:?}: {stderr}");
    }
    // Nothing was written.
    assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
    // `none` to a docker output is what it does anyway, so it is accepted.
    let ok_out = tmp.path().join("fine.tar");
    ok(&[
        "convert",
        &src,
        "--layer-compression",
        "none",
        s(&ok_out),
        "-q",
    ]);
}
