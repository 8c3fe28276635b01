//! `dockhand diff`: two images' final filesystems compared, checked against what
//! `docker diff` lists for a container committed as the second image, and against
//! exact expectations on images built here for the purpose (a file changed, one
//! deleted through a whiteout, an opaque directory, a symlink retargeted, a mode or
//! owner change only, a file made a directory and the reverse, a new hard link); the
//! layers two images share, each read once; usage errors, hostile layers, and memory
//! bounded by paths.

use crate::common::build::{pax_header, put};
use crate::common::images::{DockerContainers, DockerImages};
use crate::common::layer_tar::{gzip_archive, save_of, LayerTar};
use crate::common::registry::{isolated_dockhand, Auth, Registry};
use crate::common::*;

use std::collections::BTreeSet;

use serde_json::{json, Value};

/// The base layer of the built images.
fn base_layer() -> Vec<u8> {
    LayerTar::new(100)
        .dir("etc/")
        .file("etc/motd", b"hello\n")
        .file("etc/keep", b"same")
        .file("etc/mode", b"same")
        .file("etc/owned", b"o")
        .symlink("etc/link", "motd")
        .file("gone", b"bye")
        .dir("opt/")
        .dir("opt/cache/")
        .file("opt/cache/a", b"a")
        .file("opt/cache/b", b"b")
        .file("todir", b"x")
        .dir("tofile/")
        .done()
}

/// The layer on top of it: one case of each kind.
fn top_layer() -> Vec<u8> {
    LayerTar::new(200)
        .file("etc/motd", b"hello, world\n")
        .file_owned("etc/mode", b"same", 0o755, 0)
        .file_owned("etc/owned", b"o", 0o644, 1000)
        .symlink("etc/link", "keep")
        .hardlink("etc/hard", "etc/keep")
        .whiteout(".wh.gone")
        .whiteout("opt/cache/.wh..wh..opq")
        .file("opt/cache/b", b"b")
        .file("opt/cache/c", b"c")
        .dir("todir/")
        .file("todir/inside", b"i")
        .file("tofile", b"now a file")
        .done()
}

/// Two archives: A the base alone, B the base and the top layer.
fn built_pair(dir: &std::path::Path) -> (String, String) {
    let a = put(dir, "a.tar", &save_of(vec![base_layer()], "diff/a:1"));
    let b = put(
        dir,
        "b.tar",
        &save_of(vec![base_layer(), top_layer()], "diff/b:1"),
    );
    (a, b)
}

/// The short form of the sha256 of `bytes`, as the change lines show it.
fn short(bytes: &[u8]) -> String {
    sha256(bytes)[7..19].to_string()
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap()
}

#[test]
fn built_images_differ_exactly_as_their_layers_say() {
    let tmp = tempdir();
    let (a, b) = built_pair(tmp.path());
    let lines = text(ok(&["diff", &a, &b]));
    let expected = [
        "A /etc/hard".to_string(),
        "C /etc/link  link_target motd->keep".into(),
        "C /etc/mode  mode 0644->0755".into(),
        format!(
            "C /etc/motd  size 6->13, content {}->{}",
            short(b"hello\n"),
            short(b"hello, world\n")
        ),
        "C /etc/owned  owner 0:0->1000:1000".into(),
        "D /gone".into(),
        // The opaque directory hides the base's a and b; b comes back the same.
        "D /opt/cache/a".into(),
        "A /opt/cache/c".into(),
        "C /todir  type file->dir, mode 0644->0755".into(),
        "A /todir/inside".into(),
        "C /tofile  type dir->file, mode 0755->0644".into(),
    ];
    assert_eq!(lines.lines().collect::<Vec<_>>(), expected, "{lines}");

    // The other way round: what was added is removed, and each change reversed.
    let reverse = text(ok(&["diff", &b, &a]));
    let reverse: Vec<&str> = reverse.lines().collect();
    for line in ["D /etc/hard", "A /gone", "A /opt/cache/a", "D /opt/cache/c"] {
        assert!(reverse.contains(&line), "{line} not in {reverse:?}");
    }
    assert!(
        reverse.contains(&"C /etc/mode  mode 0755->0644"),
        "{reverse:?}"
    );
    assert_eq!(reverse.len(), expected.len(), "{reverse:?}");
}

#[test]
fn the_json_form_lists_entries_layers_and_counts() {
    let tmp = tempdir();
    let (a, b) = built_pair(tmp.path());
    let doc: Value = serde_json::from_slice(&ok(&["diff", "--json", &a, &b])).unwrap();
    let paths = |key: &str| -> Vec<String> {
        doc[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["path"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        paths("added"),
        ["/etc/hard", "/opt/cache/c", "/todir/inside"]
    );
    assert_eq!(paths("removed"), ["/gone", "/opt/cache/a"]);
    assert_eq!(
        paths("changed"),
        [
            "/etc/link",
            "/etc/mode",
            "/etc/motd",
            "/etc/owned",
            "/todir",
            "/tofile"
        ]
    );
    // A new name of a base file: its content is that file's.
    let hard = &doc["added"][0];
    assert_eq!(
        (hard["type"].as_str(), hard["size"].as_u64()),
        (Some("file"), Some(4))
    );
    assert_eq!(hard["digest"], sha256(b"same"));
    let motd = &doc["changed"][2];
    assert_eq!(motd["changes"], json!(["size", "content"]));
    assert_eq!(motd["a"]["digest"], sha256(b"hello\n"));
    assert_eq!(motd["b"]["digest"], sha256(b"hello, world\n"));
    assert_eq!(doc["changed"][0]["b"]["link_target"], "keep");
    assert_eq!(doc["changed"][1]["b"]["mode"], "0755");
    assert_eq!(doc["changed"][3]["b"]["uid"], 1000);
    assert_eq!(
        doc["changed"][4]["changes"],
        json!(["type", "mode"]),
        "{}",
        doc["changed"][4]
    );
    let summary = &doc["summary"];
    assert_eq!(
        (&summary["added"], &summary["removed"], &summary["changed"]),
        (&json!(3), &json!(2), &json!(6))
    );
    // "same" (4) + "c" (1) + "i" (1); "bye" (3) + "a" (1).
    assert_eq!(summary["added_bytes"], 6);
    assert_eq!(summary["removed_bytes"], 4);
    // The base layer both hold is read once for both: 2 reads for 3 layers.
    let layers = &doc["layers"];
    assert_eq!(
        (
            &layers["shared"],
            &layers["a_only"],
            &layers["b_only"],
            &layers["read"]
        ),
        (&json!(1), &json!(0), &json!(1), &json!(2))
    );
    assert_eq!(layers["b_only_bytes"], top_layer().len());
    assert_eq!(doc["a"]["layers"][0]["diff_id"], sha256(&base_layer()));
    assert_eq!(doc["a"]["layers"][0]["shared"], true);
    assert_eq!(doc["b"]["layers"][1]["shared"], false);
    assert_eq!(
        (doc["a"]["image"].as_str(), doc["b"]["index"].as_u64()),
        (Some("docker.io/diff/a:1"), Some(0))
    );
}

#[test]
fn layers_are_shared_by_diff_id_whatever_their_compression() {
    let tmp = tempdir();
    let t = tmp.path();
    let (a, b) = built_pair(t);
    let local = ok(&["diff", &a, &b]);
    // B in a registry: its layers gzipped by the push, A's stored uncompressed.
    let Some(reg) = Registry::start(Auth::None) else {
        return;
    };
    let remote = format!("docker://{}/diff/b:1", reg.addr);
    let push = isolated_dockhand(t, &["convert", "-q", "--tls-verify=false", &b, &remote])
        .output()
        .unwrap();
    assert!(push.status.success(), "{push:?}");
    let run = isolated_dockhand(t, &["diff", "--tls-verify=false", &a, &remote])
        .output()
        .unwrap();
    assert!(run.status.success(), "{run:?}");
    assert_eq!(text(run.stdout), text(local));
    let run = isolated_dockhand(t, &["diff", "--json", "--tls-verify=false", &a, &remote])
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(
        (&doc["layers"]["shared"], &doc["layers"]["read"]),
        (&json!(1), &json!(2))
    );
    // The shared layer is stored smaller (gzip) in the registry than in A.
    let (in_a, in_b) = (
        &doc["a"]["layers"][0]["size"],
        &doc["b"]["layers"][0]["size"],
    );
    assert!(in_b.as_u64() < in_a.as_u64(), "{in_a} {in_b}");
}

#[test]
fn two_images_of_one_source_the_same_image_and_other_transports() {
    let multi = fixture("docker-save-multi").input;
    let multi = multi.to_str().unwrap();
    // @0 is @2 (the base) with a layer adding /opt/app/app.txt.
    let lines = text(ok(&["diff", "--image", "@2", "--image", "@0", multi]));
    assert_eq!(lines, "A /opt/app\nA /opt/app/app.txt\n");
    // An image compared with itself: nothing differs, each layer read once.
    let same: Value = serde_json::from_slice(&ok(&[
        "diff", "--json", "--image", "@1", "--image", "@1", multi,
    ]))
    .unwrap();
    for key in ["added", "removed", "changed"] {
        assert_eq!(same[key], json!([]), "{key}");
    }
    let layers = same["a"]["layers"].as_array().unwrap().len();
    assert_eq!(same["layers"]["read"], layers);
    assert_eq!(same["layers"]["shared"], layers);
    // The same image in an OCI layout: one --image picks in both sources.
    let tmp = tempdir();
    let layout = tmp.path().join("layout");
    ok(&["convert", "-q", multi, s(&layout)]);
    let across = text(ok(&["diff", "--image", "@0", multi, s(&layout)]));
    assert_eq!(across, "");
    let across = text(ok(&[
        "diff",
        "--image",
        "@2",
        "--image",
        "@0",
        multi,
        s(&layout),
    ]));
    assert_eq!(across, lines);
    // Through a pipe: A read from stdin.
    let piped = pipe(
        &["diff", "--image", "@2", "--image", "@0", "-", s(&layout)],
        &std::fs::read(multi).unwrap(),
    );
    assert!(piped.status.success(), "{piped:?}");
    assert_eq!(text(piped.stdout), lines);
}

#[test]
fn images_that_cannot_be_told_apart_are_usage_errors() {
    let multi = fixture("docker-save-multi").input;
    let multi = multi.to_str().unwrap();
    let basic = fixture("docker-save-basic").input;
    let basic = basic.to_str().unwrap();
    let cases: [(&[&str], &str); 4] = [
        (&["diff", multi], "--image"),
        (&["diff", "--image", "@0", multi], "1 given"),
        (&["diff", multi, basic], "holds 3 images"),
        (
            &[
                "diff", "--image", "@0", "--image", "@0", "--image", "@0", multi, basic,
            ],
            "not 3 times",
        ),
    ];
    for (args, needle) in cases {
        let run = run(args);
        assert_eq!(run.status.code(), Some(2), "{args:?}: {run:?}");
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(needle), "{needle:?} not in {stderr}");
    }
    let run = run(&["diff", "-", "-"]);
    assert_eq!(run.status.code(), Some(2), "{run:?}");
}

#[test]
fn a_hostile_layer_fails_with_one_line_naming_it() {
    let tmp = tempdir();
    let a = put(
        tmp.path(),
        "a.tar",
        &save_of(vec![base_layer()], "diff/a:1"),
    );
    let escaping = LayerTar::new(300).file("../escape", b"x").done();
    let b = put(
        tmp.path(),
        "b.tar",
        &save_of(vec![base_layer(), escaping], "hostile/diff:1"),
    );
    let run = run(&["diff", &a, &b]);
    assert_eq!(run.status.code(), Some(1), "{run:?}");
    assert!(run.stdout.is_empty(), "{run:?}");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    for part in ["b.tar: image docker.io/hostile/diff:1: layer 2 ", "escape"] {
        assert!(stderr.contains(part), "{part:?} not in {stderr}");
    }
}

#[test]
fn memory_grows_with_paths_not_bytes() {
    // Two 160 MiB files differing in their last byte, each in a gzip layer.
    let tmp = tempdir();
    let t = tmp.path();
    let size = 160usize << 20;
    let archive = |name: &str, last: u8| {
        let layer = LayerTar::new(5)
            .dir("big/")
            .big_file("big/file", size, 7, last)
            .done();
        gzip_archive(t, name, &layer)
    };
    let (a, b) = (archive("a.tar", 1), archive("b.tar", 2));
    let (run, rss) = run_measured(&["diff", "-q", &a, &b], t);
    assert!(run.status.success(), "{run:?}");
    let out = text(run.stdout);
    assert!(out.starts_with("C /big/file  content "), "{out}");
    assert_eq!(out.lines().count(), 1, "{out}");
    if let Some(kb) = rss {
        assert!(
            kb < RSS_LIMIT_KB,
            "peak RSS {kb} KiB for two {size}-byte files"
        );
    }
}

/// A name of this test's own in the daemon.
fn unique(label: &str) -> String {
    format!("dockhand-diff-test/{label}:{}", std::process::id())
}

/// The containers and images a test made, removed when it ends (fields drop in
/// their order: the containers before their images).
struct Made {
    containers: DockerContainers,
    images: DockerImages,
}

/// `docker run` `script` (busybox sh) in a container of `image`, commit the
/// container as `committed`, and return what `docker diff` listed for it, as
/// `LETTER /path` lines.
fn run_and_commit(image: &str, script: &str, committed: &str, made: &mut Made) -> BTreeSet<String> {
    let name = format!(
        "dockhand-diff-{}-{}",
        std::process::id(),
        made.containers.0.len()
    );
    made.containers.0.push(name.clone());
    tool(
        "docker",
        &[
            "run",
            "--name",
            &name,
            "--network",
            "none",
            image,
            "sh",
            "-c",
            script,
        ],
    );
    let listed = text(tool("docker", &["diff", &name]));
    tool("docker", &["commit", &name, committed]);
    made.images.0.push(committed.to_string());
    listed.lines().map(str::to_string).collect()
}

#[test]
fn a_committed_container_differs_from_its_image_as_docker_diff_says() {
    if !have_docker(&test_name()) {
        return;
    }
    let Some(busybox) = corpus_item("imgutil/busybox") else {
        return;
    };
    let _lock = docker_lock();
    let base = unique("base");
    let mut made = Made {
        containers: DockerContainers(Vec::new()),
        images: DockerImages(vec![base.clone()]),
    };
    ok(&[
        "convert",
        "-q",
        s(&busybox),
        &format!("docker-daemon:{base}"),
    ]);
    // The first commit makes what the second changes; the pause puts the changes a
    // second later than what they change (times are compared to the second).
    let before = unique("before");
    run_and_commit(
        &base,
        "mkdir -p /opt/d && echo old > /opt/d/old && echo same > /opt/mode-only \
         && echo keep > /opt/file && echo gone > /opt/gone && echo own > /opt/owned \
         && ln -s a /opt/link && mkdir /opt/tofile && echo x > /opt/todir",
        &before,
        &mut made,
    );
    let after = unique("after");
    let listed = run_and_commit(
        &before,
        "sleep 1.1 && ln -sfn b /opt/link && chmod 600 /opt/mode-only && rm /opt/gone \
         && rm -rf /opt/d && mkdir /opt/d && echo new > /opt/d/new \
         && echo changed >> /opt/file && chown 1:1 /opt/owned \
         && rm -rf /opt/tofile && echo now-a-file > /opt/tofile \
         && rm /opt/todir && mkdir /opt/todir",
        &after,
        &mut made,
    );
    for line in ["D /opt/gone", "D /opt/d/old", "A /opt/d/new", "C /opt/link"] {
        assert!(
            listed.contains(line),
            "docker diff lists no {line}: {listed:?}"
        );
    }
    let (a, b) = (
        format!("docker-daemon:{before}"),
        format!("docker-daemon:{after}"),
    );
    // With times compared, exactly the paths docker diff lists, with its letters.
    let timed: BTreeSet<String> = text(ok(&["diff", "--times", &a, &b]))
        .lines()
        .map(|l| l.split("  ").next().unwrap().to_string())
        .collect();
    assert_eq!(timed, listed);
    // Without: what docker lists but directories whose time alone changed.
    let lines = text(ok(&["diff", &a, &b]));
    let lines: Vec<&str> = lines.lines().collect();
    let expected = [
        "D /opt/d/old",
        "A /opt/d/new",
        "C /opt/file  size 5->13, content ",
        "D /opt/gone",
        "C /opt/link  link_target a->b",
        "C /opt/mode-only  mode 0644->0600",
        "C /opt/owned  owner 0:0->1:1",
        "C /opt/todir  type file->dir, mode 0644->0755",
        "C /opt/tofile  type dir->file, mode 0755->0644",
    ];
    assert_eq!(lines.len(), expected.len(), "{lines:?}");
    for want in expected {
        assert!(
            lines.iter().any(|l| l.starts_with(want)),
            "{want:?} not in {lines:?}"
        );
    }
    // The layers of `before` are `after`'s but its last, each read once.
    let doc: Value = serde_json::from_slice(&ok(&["diff", "--json", &a, &b])).unwrap();
    let shared = doc["a"]["layers"].as_array().unwrap().len();
    assert_eq!(doc["layers"]["shared"], shared);
    assert_eq!(doc["layers"]["b_only"], 1);
    assert_eq!(doc["layers"]["read"], shared + 1);
}

#[test]
fn an_image_and_its_flattening_have_the_same_filesystem() {
    // dive's real 14-layer image: whiteouts, opaque directories, files replaced.
    let Some(dive) = corpus_item("dive/test-docker-image.tar") else {
        return;
    };
    let tmp = tempdir();
    let flat = tmp.path().join("flat.tar");
    ok(&["flatten", "-q", s(&dive), s(&flat)]);
    let doc: Value = serde_json::from_slice(&ok(&["diff", "--json", s(&dive), s(&flat)])).unwrap();
    for key in ["added", "removed", "changed"] {
        assert_eq!(doc[key], json!([]), "{key}");
    }
    assert_eq!(doc["a"]["layers"].as_array().unwrap().len(), 14);
    assert_eq!(
        (&doc["layers"]["shared"], &doc["layers"]["read"]),
        (&json!(0), &json!(15))
    );
    // The export keeps each entry's own time: with times compared, still nothing.
    let timed = text(ok(&["diff", "-q", "--times", s(&dive), s(&flat)]));
    assert_eq!(timed, "");
    // While a different build of the same Dockerfile (kaniko's) differs.
    let Some(kaniko) = corpus_item("dive/test-kaniko-image.tar") else {
        return;
    };
    let other = text(ok(&["diff", "-q", s(&dive), s(&kaniko)]));
    assert!(other.contains("\nD /root/.data/test.sh\n"), "{other}");
}

#[test]
fn names_a_terminal_would_act_on_are_escaped_and_never_cut() {
    let tmp = tempdir();
    // A name longer than a message shows (a PAX path record).
    let long = format!("d/{}", "x".repeat(300));
    let mut top = LayerTar::new(300)
        .file("evil\nD passwd", b"x")
        .file("right\u{202e}left", b"y");
    top.bytes.extend(pax_header(&[("path", long.as_bytes())]));
    let top = top.file("short", b"z").done();
    let a = put(
        tmp.path(),
        "a.tar",
        &save_of(vec![base_layer()], "diff/a:1"),
    );
    let b = put(
        tmp.path(),
        "b.tar",
        &save_of(vec![base_layer(), top], "diff/names:1"),
    );
    let lines = text(ok(&["diff", &a, &b]));
    let lines: Vec<&str> = lines.lines().collect();
    assert!(lines.contains(&"A /evil\\nD passwd"), "{lines:?}");
    assert!(lines.contains(&"A /right\\u{202e}left"), "{lines:?}");
    assert!(lines.contains(&format!("A /{long}").as_str()), "{lines:?}");
    assert_eq!(lines.len(), 4, "{lines:?}"); // and the implied /d
                                             // The JSON form: the same values, escaped inside the strings.
    let raw = ok(&["diff", "--json", &a, &b]);
    assert!(!String::from_utf8_lossy(&raw).contains('\u{202e}'));
    let doc: Value = serde_json::from_slice(&raw).unwrap();
    let added: Vec<&str> = doc["added"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert!(added.contains(&"/evil\nD passwd"), "{added:?}");
    assert!(added.contains(&"/right\u{202e}left"), "{added:?}");
}

#[test]
fn a_config_change_alone_shows_in_the_summary_and_the_json() {
    let tmp = tempdir();
    let basic = fixture("docker-save-basic").input;
    let basic = basic.to_str().unwrap();
    let mutated = tmp.path().join("mutated.tar");
    ok(&[
        "mutate",
        "-q",
        "--env",
        "X=1",
        "--cmd",
        r#"["/bin/true"]"#,
        basic,
        s(&mutated),
    ]);
    let changed = run(&["diff", basic, s(&mutated)]);
    assert!(changed.status.success(), "{changed:?}");
    // The same files: no change line, every layer shared.
    assert!(changed.stdout.is_empty(), "{changed:?}");
    let stderr = String::from_utf8_lossy(&changed.stderr);
    assert!(
        stderr.contains("3 layer(s) shared")
            && stderr.ends_with("; config differs in config.Cmd, config.Env\n"),
        "{stderr}"
    );
    let doc: Value = serde_json::from_slice(&ok(&["diff", "--json", basic, s(&mutated)])).unwrap();
    assert_eq!(
        doc["config"],
        json!([
            {"key": "config.Cmd", "a": ["/bin/hello.sh"], "b": ["/bin/true"]},
            {
                "key": "config.Env",
                "a": ["PATH=/bin", "DOCKHAND_FIXTURE=basic"],
                "b": ["PATH=/bin", "DOCKHAND_FIXTURE=basic", "X=1"]
            },
        ])
    );
    // An image and itself: the same config.
    let same = run(&["diff", basic, basic]);
    assert!(
        String::from_utf8_lossy(&same.stderr).ends_with("; the same config\n"),
        "{same:?}"
    );
}
