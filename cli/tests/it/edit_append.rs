//! `dockhand append`: new top layers with a history entry, the base's config otherwise
//! kept field by field, its chain IDs extended; into a registry only the new layer is
//! uploaded; from and to a Docker daemon; hostile layers refused; umoci and skopeo
//! read what it writes.

use crate::common::build::{file, hardlink, put, symlink, tar_of};
use crate::common::images::{
    ok_at_epoch, only_image, read_config, unique_edit_name, DockerImages, EPOCH,
};
use crate::common::registry::{isolated_dockhand, RegistryFixture};
use crate::common::rootfs::{echo_rootfs, gnu_tar};
use crate::common::*;

use serde_json::{json, Value};

fn basic() -> String {
    fixture("docker-save-basic").input().to_string()
}

fn column(image: &Value, field: &str) -> Vec<String> {
    image["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l[field].as_str().unwrap().to_string())
        .collect()
}

/// `config` without the fields an append changes.
fn unchanged_part(config: &Value) -> Value {
    let mut rest = config.clone();
    for field in ["rootfs", "history", "created", "comment", "author"] {
        rest.as_object_mut().unwrap().remove(field);
    }
    rest
}

#[test]
fn an_append_extends_the_base_and_keeps_the_rest_of_its_config() {
    let tmp = tempdir();
    let base = basic();
    let first = tar_of(&[file(
        "etc/ca.pem",
        b"-----BEGIN CERTIFICATE-----\n".to_vec(),
    )]);
    let first_path = put(tmp.path(), "ca.tar", &first);
    let dir = tmp.path().join("app");
    std::fs::create_dir_all(dir.join("opt/app")).unwrap();
    std::fs::write(dir.join("opt/app/run"), "#!/bin/sh\n").unwrap();
    let out = tmp.path().join("appended.tar");
    ok_at_epoch(&[
        "append",
        "-q",
        "-m",
        "add the CA and the app",
        "--author",
        "Build Bot <bot@example.com>",
        "--created-by",
        "dockhand append ca.tar app/",
        "--tag",
        "example/app:1",
        &base,
        &first_path,
        s(&dir),
        s(&out),
    ]);
    let (old, new) = (only_image(&base), only_image(s(&out)));
    assert_eq!(new["tags"], json!(["docker.io/example/app:1"]));
    // The diff_ids extend the base's, so do the chain IDs.
    let (old_ids, new_ids) = (column(&old, "diff_id"), column(&new, "diff_id"));
    assert_eq!(new_ids.len(), old_ids.len() + 2);
    assert_eq!(new_ids[..old_ids.len()], old_ids[..]);
    assert_eq!(new_ids[old_ids.len()], sha256(&first));
    let (old_chain, new_chain) = (column(&old, "chain_id"), column(&new, "chain_id"));
    assert_eq!(new_chain[..old_chain.len()], old_chain[..]);
    // The base's config otherwise identical, field by field, its unknown fields too.
    let (old_config, new_config) = (read_config(&base).1, read_config(s(&out)).1);
    assert_eq!(unchanged_part(&new_config), unchanged_part(&old_config));
    assert!(new_config["container_config"].is_object());
    let old_history = old_config["history"].as_array().unwrap();
    let new_history = new_config["history"].as_array().unwrap();
    assert_eq!(new_history[..old_history.len()], old_history[..]);
    let entry = json!({
        "created": "2023-11-14T22:13:20Z",
        "created_by": "dockhand append ca.tar app/",
        "author": "Build Bot <bot@example.com>",
        "comment": "add the CA and the app",
    });
    assert_eq!(new_history[old_history.len()..], [entry.clone(), entry]);
    assert_eq!(new_config["comment"], "add the CA and the app");
    assert_eq!(new_config["author"], "Build Bot <bot@example.com>");
    assert_eq!(new_config["created"], "2023-11-14T22:13:20Z");
    // docker history counts a layer per entry without empty_layer: one each.
    let history = String::from_utf8(ok(&["history", "--no-trunc", s(&out)])).unwrap();
    assert!(history.contains("dockhand append ca.tar app/"), "{history}");
    ok(&["verify", "-q", s(&out)]);
}

#[test]
fn new_layers_follow_the_destination_s_compression() {
    let tmp = tempdir();
    let layer = put(
        tmp.path(),
        "l.tar",
        &tar_of(&[file("x", b"x".repeat(5000))]),
    );
    for (compression, want) in [("keep", "none"), ("gzip", "gzip"), ("zstd", "zstd")] {
        let out = format!("oci:{}", s(&tmp.path().join(compression)));
        ok_at_epoch(&[
            "append",
            "-q",
            "--layer-compression",
            compression,
            &basic(),
            &layer,
            &out,
        ]);
        let image = only_image(&out);
        let layers = image["layers"].as_array().unwrap();
        let top = layers.last().unwrap();
        assert_eq!(top["compression"], want, "{compression}");
        assert_eq!(top["diff_id"], sha256(&std::fs::read(&layer).unwrap()));
        ok(&["verify", "-q", &out]);
    }
}

#[test]
fn into_a_registry_only_the_new_layer_and_config_are_uploaded() {
    let Some(fx) = RegistryFixture::builder().proxy().needs("skopeo").start() else {
        return;
    };
    let tmp = fx.dir();
    let dh_reg = |args: &[&str]| {
        let mut all = vec![args[0], "--tls-verify=false"];
        all.extend_from_slice(&args[1..]);
        let out = isolated_dockhand(tmp, &all)
            .env("SOURCE_DATE_EPOCH", EPOCH)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let base = fx.remote("team/base:1");
    dh_reg(&["convert", "-q", &basic(), &base]);
    let layer = put(
        tmp,
        "extra.tar",
        &tar_of(&[file("etc/extra", b"extra\n".to_vec())]),
    );
    let other_layer = put(
        tmp,
        "other.tar",
        &tar_of(&[file("etc/other", b"other\n".to_vec())]),
    );
    let proxy = fx.proxy();
    let uploaded = || -> Vec<String> {
        proxy
            .requests()
            .into_iter()
            .filter(|(method, path, _)| method == "PUT" && path.contains("/blobs/uploads/"))
            .map(|(_, path, _)| {
                path.split("digest=")
                    .nth(1)
                    .unwrap_or_default()
                    .replace("%3A", ":")
            })
            .collect()
    };
    // Into another repository of the registry: the base's layers are mounted, the new
    // layer and the new config uploaded, nothing else.
    proxy.reset_counters();
    let other = fx.remote("team/app:1");
    dh_reg(&["append", "-q", &base, &layer, &other]);
    let config = skopeo(
        tmp,
        &["inspect", "--tls-verify=false", "--config", "--raw", &other],
    );
    let up = uploaded();
    assert_eq!(up.len(), 2, "{:?}", proxy.requests());
    assert!(up.contains(&sha256(&config)), "{up:?}");
    assert_eq!(
        proxy.count("POST", "mount=", Some(201)),
        3,
        "{:?}",
        proxy.requests()
    );
    // Into the base's own repository: its layers are there (no mount), two uploads.
    proxy.reset_counters();
    dh_reg(&[
        "append",
        "-q",
        &base,
        &other_layer,
        &fx.remote("team/base:2"),
    ]);
    assert_eq!(uploaded().len(), 2, "{:?}", proxy.requests());
    assert_eq!(proxy.count("POST", "mount=", None), 0);
    // What was pushed is whole, and extends the base.
    let raw = skopeo(tmp, &["inspect", "--tls-verify=false", "--raw", &other]);
    let manifest: Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 4);
    let pulled = tmp.join("pulled");
    dh_reg(&["convert", "-q", &other, &format!("oci:{}", s(&pulled))]);
    ok(&["verify", "-q", s(&pulled)]);
    let (old, new) = (only_image(&basic()), only_image(s(&pulled)));
    assert_eq!(column(&new, "diff_id")[..3], column(&old, "diff_id")[..]);
}

#[test]
fn from_a_daemon_to_a_daemon_and_docker_runs_the_result() {
    let test = "from_a_daemon_to_a_daemon_and_docker_runs_the_result";
    if !have_docker(test) {
        return;
    }
    let _lock = docker_lock();
    let tmp = tempdir();
    let root = echo_rootfs(tmp.path());
    let tar = tmp.path().join("rootfs.tar");
    gnu_tar(&root, &tar);
    let (base, appended) = (
        unique_edit_name("append-base"),
        unique_edit_name("append-new"),
    );
    let _cleanup = DockerImages(vec![base.clone(), appended.clone()]);
    tool(
        "docker",
        &[
            "import",
            "--change",
            "CMD [\"/bin/echo\", \"base\"]",
            s(&tar),
            &base,
        ],
    );
    let extra = tmp.path().join("extra");
    std::fs::create_dir_all(extra.join("etc")).unwrap();
    std::fs::write(extra.join("etc/extra"), "appended\n").unwrap();
    ok_at_epoch(&[
        "append",
        "-q",
        "-m",
        "one more layer",
        "--change",
        "CMD [\"/bin/echo\", \"appended\"]",
        &format!("docker-daemon:{base}"),
        s(&extra),
        &format!("docker-daemon:{appended}"),
    ]);
    let inspected = |name: &str| -> Value {
        serde_json::from_slice::<Value>(&tool("docker", &["image", "inspect", name])).unwrap()[0]
            .clone()
    };
    let (old, new) = (inspected(&base), inspected(&appended));
    let (old_layers, new_layers) = (
        old["RootFS"]["Layers"].as_array().unwrap(),
        new["RootFS"]["Layers"].as_array().unwrap(),
    );
    assert_eq!(new_layers.len(), 2);
    assert_eq!(new_layers[0], old_layers[0]);
    assert_eq!(new["Comment"], "one more layer");
    let out = tool("docker", &["run", "--rm", "--network", "none", &appended]);
    assert_eq!(String::from_utf8_lossy(&out), "appended\n");
    let history = String::from_utf8(tool(
        "docker",
        &["history", "--format", "{{.Comment}}", &appended],
    ))
    .unwrap();
    assert_eq!(history.lines().next(), Some("one more layer"), "{history}");
}

#[test]
fn a_hostile_layer_is_refused_with_one_line_and_nothing_is_written() {
    let tmp = tempdir();
    let out_dir = tmp.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let base = basic();
    let gz = |bytes: &[u8]| {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("readme.md", b"# not a tar\n".to_vec(), "not a tar archive"),
        (
            "random.bin",
            (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect(),
            "not a tar archive",
        ),
        (
            "climb.tar",
            tar_of(&[file("a/../../x", b"x".to_vec())]),
            "entry a/../../x: its name climbs out of the root",
        ),
        (
            "climb.tar.gz",
            gz(&tar_of(&[file("../x", b"x".to_vec())])),
            "entry ../x: its name climbs out of the root",
        ),
        (
            "hard-abs.tar",
            tar_of(&[hardlink("x", "/etc/passwd")]),
            "a hard link to the absolute path /etc/passwd",
        ),
        (
            "hard-up.tar",
            tar_of(&[hardlink("x", "../etc/passwd")]),
            "a hard link to ../etc/passwd, out of the root",
        ),
        (
            "truncated.tar",
            tar_of(&[file("big", vec![1u8; 4096])])[..1024].to_vec(),
            "claims 4096 bytes",
        ),
    ];
    for (name, bytes, words) in cases {
        let layer = put(tmp.path(), name, &bytes);
        for dst in [
            s(&out_dir.join("image.tar")).to_string(),
            format!("oci:{}", s(&out_dir.join("layout"))),
            format!("dir:{}", s(&out_dir.join("dir"))),
        ] {
            let stderr = fails(&["append", &base, &layer, &dst]);
            assert_eq!(stderr.lines().count(), 1, "{name}: {stderr}");
            assert!(
                stderr.contains(name) && stderr.contains(words),
                "{name}: {stderr}"
            );
            let left: Vec<_> = std::fs::read_dir(&out_dir).unwrap().collect();
            assert!(left.is_empty(), "{name} -> {dst}: left {left:?}");
        }
    }
    // Absolute symlinks are what root filesystems hold: kept.
    let ok_layer = put(
        tmp.path(),
        "links.tar",
        &tar_of(&[symlink("bin/sh", "/bin/busybox")]),
    );
    ok_at_epoch(&[
        "append",
        "-q",
        &base,
        &ok_layer,
        s(&out_dir.join("fine.tar")),
    ]);
}

#[test]
fn stdin_once_and_usage_errors() {
    let tmp = tempdir();
    let dst = tmp.path().join("out.tar");
    // A layer from stdin.
    let layer = tar_of(&[file("from/stdin", b"piped\n".to_vec())]);
    let out = pipe(&["append", "-q", &basic(), "-", s(&dst)], &layer);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let image = only_image(s(&dst));
    assert_eq!(column(&image, "diff_id").last().unwrap(), &sha256(&layer));
    // Two stdins, a bad change, referrers: usage errors, nothing written.
    let dst2 = tmp.path().join("never.tar");
    for args in [
        vec!["append", &basic(), "-", "-", s(&dst2)],
        vec!["append", "--change", "RUN make", &basic(), "-", s(&dst2)],
    ] {
        let out = run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 1);
        assert!(!dst2.exists());
    }
}

#[test]
fn umoci_and_skopeo_read_what_append_writes() {
    let test = "umoci_and_skopeo_read_what_append_writes";
    if !have_tool(test, "umoci") || !have_tool(test, "skopeo") {
        return;
    }
    let tmp = tempdir();
    let layout = tmp.path().join("layout");
    let layer = put(
        tmp.path(),
        "l.tar",
        &tar_of(&[file("etc/appended", b"yes\n".to_vec())]),
    );
    ok_at_epoch(&[
        "append",
        "-q",
        "--layer-compression",
        "gzip",
        &basic(),
        &layer,
        &format!("oci:{}:app", s(&layout)),
    ]);
    // umoci unpacks it: the new file is there, over the base's.
    let bundle = tmp.path().join("bundle");
    tool(
        "umoci",
        &[
            "unpack",
            "--rootless",
            "--image",
            &format!("{}:app", s(&layout)),
            s(&bundle),
        ],
    );
    assert_eq!(
        std::fs::read_to_string(bundle.join("rootfs/etc/appended")).unwrap(),
        "yes\n"
    );
    assert!(bundle.join("rootfs/bin/hello.sh").exists());
    // skopeo copies it whole to a docker-archive, which dockhand then verifies.
    let archive = tmp.path().join("via-skopeo.tar");
    skopeo(
        tmp.path(),
        &[
            "copy",
            &format!("oci:{}:app", s(&layout)),
            &format!("docker-archive:{}:example/app:1", s(&archive)),
        ],
    );
    ok(&["verify", "-q", s(&archive)]);
    assert_eq!(
        only_image(s(&archive))["config"]["digest"],
        only_image(&format!("oci:{}:app", s(&layout)))["config"]["digest"]
    );
}
