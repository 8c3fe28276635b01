//! Command-line behaviour: exit codes, stdin/stdout pipelines, destinations, selection,
//! naming, determinism and atomicity. The catalogues (usage errors, selection and
//! naming) are tables of named rows ([`Table`]): a failure names every failing row.

use crate::common::table::Table;
use crate::common::*;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::Stdio;

use serde_json::{json, Value};

fn tar_names(bytes: &[u8]) -> Vec<String> {
    let mut archive = tar::Archive::new(bytes);
    archive
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn usage_errors_exit_2() {
    // (row, arguments)
    let rows = [
        ("convert-without-operands", vec!["convert"]),
        (
            "unknown-output-format",
            vec!["convert", "--to", "zip", "a", "b"],
        ),
        ("unknown-subcommand", vec!["frobnicate"]),
        ("unknown-option", vec!["inspect", "--nope", "x"]),
    ];
    let mut table = Table::new("usage_errors_exit_2");
    for (name, args) in rows {
        table.row(name, || {
            let out = run(&args);
            assert_eq!(out.status.code(), Some(2), "{args:?}");
        });
    }
    table.finish();
}

#[test]
fn no_arguments_prints_the_help_and_exits_2() {
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(2));
    let shown = String::from_utf8(out.stderr).unwrap();
    // The help as --help lays it out, not folded into one `error:` line.
    let help = String::from_utf8(ok(&["--help"])).unwrap();
    assert_eq!(shown, help);
    assert!(shown.lines().count() > 10, "{shown}");
    assert!(!shown.starts_with("error:"), "{shown}");
}

#[test]
fn verify_of_a_multi_platform_index_says_which_platforms_it_checked() {
    let (Some(both), Some(sparse)) = (
        corpus_item("stereoscope/multiplatform_oci_dir"),
        corpus_item("oras-go/hello-world.tar"),
    ) else {
        return;
    };
    let stderr = |args: &[&str]| {
        let out = run(args);
        let text = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{args:?}: {text}");
        text
    };
    let both = s(&both);
    for (picked, other) in [
        ("linux/amd64", "linux/arm64"),
        ("linux/arm64", "linux/amd64"),
    ] {
        let text = stderr(&["verify", "--platform", picked, both]);
        assert!(text.contains("verified 1 image(s)"), "{text}");
        let note = text.lines().nth(1).unwrap_or_default();
        assert!(
            note.starts_with(&format!("note: verified the platform(s) {picked} ")),
            "{text}"
        );
        assert!(note.contains(&format!("not verified: {other} ")), "{text}");
        assert!(
            note.contains("--all") && note.contains("--platform"),
            "{text}"
        );
    }
    // Without --platform, the host's platform is the one checked, and it says so.
    let text = stderr(&["verify", both]);
    assert!(
        text.contains("note: verified the platform(s) linux/"),
        "{text}"
    );
    // --all verifies both, and leaves nothing to say.
    let text = stderr(&["verify", "--all", both]);
    assert!(text.contains("verified 2 image(s)"), "{text}");
    assert_eq!(text.lines().count(), 1, "{text}");
    // A platform the index lists but the source lacks is named as not verified, with
    // or without --all.
    let sparse = s(&sparse);
    for args in [
        ["verify", "--platform", "linux/amd64", sparse],
        ["verify", "--all", "-v", sparse],
    ] {
        let text = stderr(&args);
        assert!(
            text.contains("listed but absent from the source, so not verified: linux/arm/v5"),
            "{args:?}: {text}"
        );
        assert!(!text.contains("verify --all checks"), "{args:?}: {text}");
    }
    // An image from no index: no note.
    let text = stderr(&["verify", fixture("docker-save-multi").input()]);
    assert_eq!(text.lines().count(), 1, "{text}");
}

#[test]
fn runtime_errors_exit_1_with_one_line() {
    let stderr = fails(&["inspect", "/nonexistent/archive.tar"]);
    assert!(stderr.contains("/nonexistent/archive.tar"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1);
}

#[test]
fn stdin_pipeline_to_every_tar_format() {
    for name in [
        "docker-save-basic",
        "docker-save-gzip",
        "docker-save-xz",
        "skopeo-oci-archive",
        "docker-save-multi",
    ] {
        let f = fixture(name);
        let input = std::fs::read(&f.input).unwrap();
        for to in ["oci-archive", "docker-archive"] {
            let out = pipe(&["convert", "--to", to, "-", "-"], &input);
            assert!(
                out.status.success(),
                "{name} -> {to}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            // Blobs first, metadata last, nothing else on stdout.
            let names = tar_names(&out.stdout);
            let last = names.last().unwrap().as_str();
            match to {
                "oci-archive" => assert_eq!(
                    &names[names.len() - 2..],
                    ["index.json", "oci-layout"],
                    "{name}"
                ),
                _ => assert!(
                    last == "manifest.json" || last == "repositories",
                    "{name}: {last}"
                ),
            }
            let tmp = tempdir();
            let file = tmp.path().join("out.tar");
            std::fs::write(&file, &out.stdout).unwrap();
            assert_eq!(
                identity(&inspect(s(&file))).len(),
                identity(&f.expected).len()
            );
            let strip = |v: Vec<(String, Vec<String>, Vec<String>)>| {
                v.into_iter().map(|(c, d, _)| (c, d)).collect::<Vec<_>>()
            };
            assert_eq!(
                strip(identity(&inspect(s(&file)))),
                strip(identity(&f.expected)),
                "{name} -> {to}"
            );
        }
        // And stdin into a directory output.
        let tmp = tempdir();
        let dir = tmp.path().join("oci");
        let out = pipe(&["convert", "-", s(&dir)], &input);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(config_digests(&inspect(s(&dir))), f.config_digests());
    }
}

#[test]
fn stdin_temp_files_are_removed_on_success_and_failure() {
    let tmp = tempdir();
    let spool_dir = tmp.path().join("tmp");
    std::fs::create_dir(&spool_dir).unwrap();
    for name in ["docker-save-basic", "broken-diffid", "broken-truncated"] {
        let input = std::fs::read(fixture(name).input).unwrap();
        let mut child = dockhand()
            .args(["convert", "--to", "oci-archive", "-", "-"])
            .env("TMPDIR", &spool_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&input).unwrap();
        child.wait().unwrap();
        assert!(
            std::fs::read_dir(&spool_dir).unwrap().next().is_none(),
            "{name}: temp files left"
        );
    }
}

#[test]
fn closed_stdout_ends_quietly() {
    let input = std::fs::read(fixture("docker-save-multi").input).unwrap();
    let mut child = spawn_piped(&["convert", "--to", "oci-archive", "-", "-"]);
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 512];
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    stdout.read_exact(&mut first).unwrap();
    drop(stdout);
    feeder.join().unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("error"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn existing_destinations_need_force_and_failures_leave_them_intact() {
    let tmp = tempdir();
    let good = fixture("docker-save-basic");
    let dir = tmp.path().join("out");
    std::fs::create_dir(&dir).unwrap();
    // An empty directory is fine to fill. (An OCI layout is added to instead, see
    // tests/it/destinations.rs: a docker-dir output needs --force.)
    ok(&["convert", "--to", "docker-dir", good.input(), s(&dir)]);
    let before = tree_snapshot(&dir);
    let stderr = fails(&["convert", "--to", "docker-dir", good.input(), s(&dir)]);
    assert!(stderr.contains("--force"), "{stderr}");
    // A failing conversion with --force leaves the old destination exactly as it was.
    let broken = fixture("broken-diffid");
    fails(&["convert", "--force", broken.input(), s(&dir)]);
    assert_eq!(tree_snapshot(&dir), before);
    // The same for a file destination.
    let tar = tmp.path().join("out.tar");
    ok(&["convert", good.input(), s(&tar)]);
    let bytes = std::fs::read(&tar).unwrap();
    fails(&["convert", good.input(), s(&tar)]);
    fails(&["convert", "--force", broken.input(), s(&tar)]);
    assert_eq!(std::fs::read(&tar).unwrap(), bytes);
    // --force replaces.
    ok(&[
        "convert",
        "--force",
        "--image",
        "@0",
        fixture("docker-save-multi").input(),
        s(&dir),
    ]);
    assert_ne!(tree_snapshot(&dir), before);
    // Nothing but the two outputs in the parent: no staging left.
    let mut names: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["out", "out.tar"]);
}

#[test]
fn every_writer_is_deterministic() {
    let f = fixture("docker-save-multi");
    let tmp = tempdir();
    for (to, file) in [
        ("oci", false),
        ("oci-archive", true),
        ("docker-archive", true),
        ("docker-dir", false),
    ] {
        let a = tmp.path().join(format!("a-{to}"));
        let b = tmp.path().join(format!("b-{to}"));
        ok(&["convert", "--to", to, f.input(), s(&a)]);
        ok(&["convert", "--to", to, f.input(), s(&b)]);
        if file {
            assert_eq!(
                std::fs::read(&a).unwrap(),
                std::fs::read(&b).unwrap(),
                "{to}"
            );
            let mut archive = tar::Archive::new(std::fs::File::open(&a).unwrap());
            for e in archive.entries().unwrap() {
                let e = e.unwrap();
                let h = e.header();
                assert_eq!(
                    (h.mtime().unwrap(), h.uid().unwrap(), h.gid().unwrap()),
                    (0, 0, 0),
                    "{to}"
                );
            }
        } else {
            assert_eq!(tree_snapshot(&a), tree_snapshot(&b), "{to}");
        }
    }
    let a = tmp.path().join("a-dir");
    let b = tmp.path().join("b-dir");
    ok(&["convert", "--to", "dir", "--image", "@1", f.input(), s(&a)]);
    ok(&["convert", "--to", "dir", "--image", "@1", f.input(), s(&b)]);
    assert_eq!(tree_snapshot(&a), tree_snapshot(&b));
}

/// What a row of `selection_and_naming` must give.
enum Selected {
    /// Success; the output holds exactly these images (identity).
    Images(Vec<(String, Vec<String>, Vec<String>)>),
    /// Success; image @0 of the output has exactly these tags.
    Tags(Value),
    /// Success; the output's first index.json entry has this OCI ref name.
    RefName(&'static str),
    /// Exit 1 with an error line containing each of these.
    Refused(&'static [&'static str]),
}

#[test]
fn selection_and_naming() {
    let f = fixture("docker-save-multi");
    let tmp = tempdir();
    let all = identity(&f.expected);
    assert!(all.len() == 3);
    // Image @1 of the source, selected by index, by (normalized) name or by reference.
    let one = identity(&json!({"images": [f.expected["images"][1].clone()]}));
    assert_eq!(one.len(), 1);
    let name = one[0].2[0].clone();
    let familiar = name
        .trim_start_matches("docker.io/")
        .trim_start_matches("library/")
        .to_string();
    let out = |name: &str| tmp.path().join(name);
    let dest = |p: PathBuf| s(&p).to_string();
    // (row, convert arguments, the output, what it must give)
    let rows: Vec<(&str, Vec<String>, PathBuf, Selected)> = vec![
        (
            "by-index",
            vec![
                "--image".into(),
                "@1".into(),
                f.input().into(),
                dest(out("one")),
            ],
            out("one"),
            Selected::Images(one.clone()),
        ),
        (
            "by-name",
            vec![
                "--image".into(),
                familiar.clone(),
                f.input().into(),
                dest(out("two")),
            ],
            out("two"),
            Selected::Images(one.clone()),
        ),
        (
            "by-skopeo-style-source-reference",
            vec![
                format!("docker-archive:{}:{familiar}", f.input()),
                dest(out("three")),
            ],
            out("three"),
            Selected::Images(one.clone()),
        ),
        // No match lists the candidates.
        (
            "no-match-lists-the-candidates",
            vec![
                "--image".into(),
                "nosuch:tag".into(),
                f.input().into(),
                dest(out("x")),
            ],
            out("x"),
            Selected::Refused(&["@0", "@2"]),
        ),
        // dir holds one image: several selected is an error naming them.
        (
            "several-images-to-dir",
            vec![
                "--to".into(),
                "dir".into(),
                f.input().into(),
                dest(out("d")),
            ],
            out("d"),
            Selected::Refused(&["--image"]),
        ),
        // --tag names the output; a destination reference does too.
        (
            "tag-names-the-output",
            vec![
                "--image".into(),
                "@0".into(),
                "--tag".into(),
                "example.com/renamed:v9".into(),
                f.input().into(),
                dest(out("tagged.tar")),
            ],
            out("tagged.tar"),
            Selected::Tags(json!(["example.com/renamed:v9"])),
        ),
        (
            "destination-reference-names-the-output",
            vec![
                "--image".into(),
                "@0".into(),
                f.input().into(),
                format!("oci:{}:1.0", s(&out("named"))),
            ],
            out("named"),
            Selected::RefName("1.0"),
        ),
    ];
    let mut table = Table::new("selection_and_naming");
    for (name, options, out, want) in rows {
        table.row(name, || {
            let mut args = vec!["convert"];
            args.extend(options.iter().map(String::as_str));
            match want {
                Selected::Images(want) => {
                    ok(&args);
                    assert_eq!(identity(&inspect(s(&out))), want);
                }
                Selected::Tags(want) => {
                    ok(&args);
                    let doc = inspect(s(&out));
                    assert_eq!(doc["images"][0]["tags"], want);
                }
                Selected::RefName(want) => {
                    ok(&args);
                    let index: Value =
                        serde_json::from_slice(&std::fs::read(out.join("index.json")).unwrap())
                            .unwrap();
                    assert_eq!(
                        index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
                        want
                    );
                }
                Selected::Refused(needles) => {
                    let stderr = fails(&args);
                    assert!(
                        needles.iter().all(|n| stderr.contains(n)),
                        "{needles:?}: {stderr}"
                    );
                }
            }
        });
    }
    table.finish();
}

#[test]
fn oci_index_names_images_by_tag_and_full_name() {
    let f = fixture("docker-save-basic");
    let tmp = tempdir();
    let out = tmp.path().join("oci");
    ok(&["convert", f.input(), s(&out)]);
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("index.json")).unwrap()).unwrap();
    let mut pairs: Vec<(String, String)> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let a = &m["annotations"];
            (
                a["io.containerd.image.name"].as_str().unwrap().to_string(),
                a["org.opencontainers.image.ref.name"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        })
        .collect();
    pairs.sort();
    let mut expected: Vec<(String, String)> = f.expected["images"][0]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let t = t.as_str().unwrap().to_string();
            let tag = t.rsplit(':').next().unwrap().to_string();
            (t, tag)
        })
        .collect();
    expected.sort();
    assert_eq!(pairs, expected);
}

#[test]
fn inspect_reads_metadata_only_and_verify_reads_everything() {
    // The broken-diffid fixture has a corrupt layer: inspect (headers and JSON only)
    // does not notice; verify does.
    let f = fixture("broken-diffid");
    let doc = inspect(f.input());
    assert_eq!(doc["format"], "docker-archive");
    let stderr = fails(&["verify", f.input()]);
    assert!(
        stderr.contains("diff_id mismatch") && stderr.contains("layer.tar"),
        "{stderr}"
    );
}

#[test]
fn inspect_table_lists_images() {
    let f = fixture("docker-save-multi");
    let text = String::from_utf8(ok(&["inspect", f.input()])).unwrap();
    assert!(text.starts_with("format: docker-archive\n"), "{text}");
    assert_eq!(
        text.lines().filter(|l| l.starts_with('@')).count(),
        3,
        "{text}"
    );
}

#[test]
fn inspect_table_details_each_image_and_the_layers_it_shares() {
    let f = fixture("docker-save-multi");
    let text = String::from_utf8(ok(&["inspect", f.input()])).unwrap();
    let header = text.lines().nth(1).unwrap();
    for column in ["IMAGE ID", "PLATFORM", "CREATED", "SIZE", "LAYERS", "NAMES"] {
        assert!(header.contains(column), "{text}");
    }
    let ids = f.config_digests();
    // One block per image, its layers listed with their compression and sharers: the
    // base image's two layers are in both other images.
    let base = text.split("\nimage @2 ").nth(1).expect("a block for @2");
    assert!(ids.iter().any(|id| base.starts_with(&id[7..19])), "{text}");
    assert!(base.contains("created:"), "{text}");
    let shared = base
        .lines()
        .filter(|l| l.contains(" none ") && l.trim_end().ends_with("@0 @1"))
        .count();
    assert_eq!(shared, 2, "{text}");
    assert!(
        text.contains("cmd:        [\"/opt/app/app.txt\"]"),
        "{text}"
    );
    // Whole IDs and digests with --no-trunc.
    let full = String::from_utf8(ok(&["inspect", "--no-trunc", f.input()])).unwrap();
    for id in &ids {
        assert!(full.contains(id.as_str()), "{full}");
    }
}

#[test]
fn hybrid_docker_archive_is_also_an_oci_layout() {
    let f = fixture("skopeo-oci");
    let tmp = tempdir();
    let out = tmp.path().join("h.tar");
    ok(&[
        "convert",
        "--to",
        "docker-archive",
        "--docker-layout",
        "hybrid",
        f.input(),
        s(&out),
    ]);
    let names = tar_names(&std::fs::read(&out).unwrap());
    for n in ["index.json", "oci-layout", "manifest.json"] {
        assert!(names.iter().any(|x| x == n), "{n} missing: {names:?}");
    }
    assert_eq!(inspect(s(&out))["format"], "docker-archive");
    let as_oci = String::from_utf8(ok(&[
        "inspect",
        "--json",
        &format!("oci-archive:{}", s(&out)),
    ]))
    .unwrap();
    let as_oci: serde_json::Value = serde_json::from_str(&as_oci).unwrap();
    assert_eq!(as_oci["format"], "oci-archive");
    assert_eq!(config_digests(&as_oci), f.config_digests());
}

#[test]
fn file_and_stdout_outputs_are_identical() {
    // Layers decompressed into a tar file are written with a patched header; on stdout
    // they are staged first. Both must give the same bytes.
    for name in ["skopeo-oci", "skopeo-oci-zstd", "umoci-layout"] {
        let f = fixture(name);
        let tmp = tempdir();
        for to in ["docker-archive", "oci-archive"] {
            let file = tmp.path().join(format!("{to}.tar"));
            ok(&["convert", "--to", to, f.input(), s(&file)]);
            let out = dockhand()
                .args(["convert", "--to", to, f.input(), "-"])
                .output()
                .unwrap();
            assert!(out.status.success());
            assert_eq!(std::fs::read(&file).unwrap(), out.stdout, "{name} -> {to}");
        }
    }
}

#[test]
fn oci_to_oci_keeps_manifest_digests_unless_the_manifest_lies() {
    let tmp = tempdir();
    for name in [
        "skopeo-oci",
        "skopeo-oci-zstd",
        "umoci-layout",
        "skopeo-oci-multi",
    ] {
        let f = fixture(name);
        let out = tmp.path().join(name);
        ok(&["convert", f.input(), s(&out)]);
        assert_eq!(
            manifest_digests(&inspect(s(&out))),
            manifest_digests(&f.expected),
            "{name}"
        );
    }
    // skopeo labelled these uncompressed layers +gzip: the manifest is rewritten with
    // the real media type, so its digest changes (the config digest does not).
    let f = fixture("skopeo-oci-uncompressed");
    let out = tmp.path().join("relabelled");
    ok(&["convert", f.input(), s(&out)]);
    let doc = inspect(s(&out));
    assert_ne!(manifest_digests(&doc), manifest_digests(&f.expected));
    assert_eq!(config_digests(&doc), f.config_digests());
    assert_eq!(
        doc["images"][0]["layers"][0]["media_type"],
        "application/vnd.oci.image.layer.v1.tar"
    );
}

#[test]
fn names_survive_docker_archive_round_trips() {
    // Found by fuzzing: docker.io/a.b/c in Docker's familiar form (a.b/c) reads back
    // as an image of registry a.b.
    let f = fixture("docker-save-basic");
    let tmp = tempdir();
    for name in [
        "docker.io/a.b/c:1",
        "docker.io/localhost/x:2",
        "localhost/x:3",
        "quay.io/a/b:4",
        "busybox:5",
        "user/app:6",
    ] {
        let out = tmp
            .path()
            .join(format!("{}.tar", name.replace(['/', ':'], "_")));
        ok(&["convert", "--tag", name, f.input(), s(&out)]);
        let want = dockhand::Reference::parse(name).unwrap().to_string();
        assert_eq!(
            inspect(s(&out))["images"][0]["tags"],
            serde_json::json!([want]),
            "{name}"
        );
    }
}

#[test]
fn stdin_as_a_pipe_a_file_or_a_path_gives_the_same_bytes() {
    // A regular file on stdin is indexed in place; a pipe is spooled; both as the path.
    for name in [
        "docker-save-basic",
        "docker-save-gzip",
        "skopeo-oci-archive",
    ] {
        let f = fixture(name);
        let args = ["convert", "-", "-", "--to", "oci-archive", "-q"];
        let by_path = ok(&["convert", f.input(), "-", "--to", "oci-archive", "-q"]);
        let piped = pipe(&args, &std::fs::read(f.input()).unwrap());
        assert!(
            piped.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&piped.stderr)
        );
        let from_file = dockhand()
            .args(args)
            .stdin(std::fs::File::open(f.input()).unwrap())
            .output()
            .unwrap();
        assert!(from_file.status.success(), "{name}");
        assert!(piped.stdout == by_path, "{name}: pipe differs from path");
        assert!(
            from_file.stdout == by_path,
            "{name}: file on stdin differs from path"
        );
    }
    // A file on stdin read from an offset (the start was consumed) is spooled from there.
    let f = fixture("docker-save-basic");
    let tmp = tempdir();
    let shifted = tmp.path().join("shifted");
    let mut bytes = vec![b'x'; 7];
    bytes.extend(std::fs::read(f.input()).unwrap());
    std::fs::write(&shifted, &bytes).unwrap();
    let mut file = std::fs::File::open(&shifted).unwrap();
    std::io::Read::read_exact(&mut file, &mut [0u8; 7]).unwrap();
    let mut inspect = dockhand();
    inspect.args(["inspect", "--json", "-"]).stdin(file);
    let doc: Value = serde_json::from_slice(&run_cmd(inspect)).unwrap();
    assert_eq!(config_digests(&doc), f.config_digests());
}
