//! `dockhand mutate`: each edit changes its config field only and gives a new image
//! ID, fields dockhand does not know survive, annotations land in OCI manifests and
//! indexes (and are refused where no manifest of dockhand's is kept), and docker sees
//! the edits once it loads the image.

use crate::common::build::{put, Save};
use crate::common::images::{ok_at_epoch, read_config, DockerImages};
use crate::common::registry::{isolated_dockhand, RegistryFixture};
use crate::common::*;

use std::path::Path;

use serde_json::{json, Value};

/// A docker-archive whose config has fields of every kind an edit touches, and
/// fields no spec defines, at the top and inside `config`.
fn crafted(dir: &Path) -> String {
    let mut save = Save::new(1);
    let mut config: Value = serde_json::from_slice(&save.config).unwrap();
    config["config"] = json!({
        "Env": ["PATH=/bin", "MODE=dev", "OLD=1"],
        "Labels": {"keep": "1", "drop": "2"},
        "ExposedPorts": {"80/tcp": {}, "443/tcp": {}},
        "Volumes": {"/v": {}},
        "Cmd": ["/bin/serve"],
        "User": "root",
        "StopSignal": "SIGQUIT",
        "x-vendor-field": {"nested": [1, 2, 3]},
    });
    config["x-unknown-top"] = json!({"kept": true});
    config["history"] = json!([{"created": "2024-01-01T00:00:00Z", "created_by": "ADD f0"}]);
    save.config = serde_json::to_vec(&config).unwrap();
    save.manifest[0]["Config"] = json!(save.config_name());
    put(dir, "crafted.tar", &save.tar())
}

#[test]
fn each_edit_changes_its_field_only_and_gives_a_new_image_id() {
    let tmp = tempdir();
    let base = crafted(tmp.path());
    let (base_id, base_config) = read_config(&base);
    // (flags, what becomes of `config` (the object), created_by of the entry)
    let cases: Vec<(Vec<&str>, Value, &str)> = vec![
        (
            vec!["--label", "team=core"],
            json!({"Labels": {"keep": "1", "drop": "2", "team": "core"}}),
            "LABEL team=core",
        ),
        (
            vec!["--unset-label", "drop"],
            json!({"Labels": {"keep": "1"}}),
            "unset LABEL drop",
        ),
        (
            vec!["--env", "MODE=prod"],
            json!({"Env": ["PATH=/bin", "MODE=prod", "OLD=1"]}),
            "ENV MODE=prod",
        ),
        (
            vec!["--env", "NEW=$PATH"],
            json!({"Env": ["PATH=/bin", "MODE=dev", "OLD=1", "NEW=$PATH"]}),
            "ENV NEW=$PATH",
        ),
        (
            vec!["--unset-env", "OLD"],
            json!({"Env": ["PATH=/bin", "MODE=dev"]}),
            "unset ENV OLD",
        ),
        (
            vec!["--user", "nobody"],
            json!({"User": "nobody"}),
            "USER nobody",
        ),
        (
            vec!["--workdir", "/srv"],
            json!({"WorkingDir": "/srv"}),
            "WORKDIR /srv",
        ),
        (
            vec!["--expose", "8080"],
            json!({"ExposedPorts": {"80/tcp": {}, "443/tcp": {}, "8080/tcp": {}}}),
            "EXPOSE 8080",
        ),
        (
            vec!["--unset-expose", "80"],
            json!({"ExposedPorts": {"443/tcp": {}}}),
            "unset EXPOSE 80",
        ),
        (
            vec!["--volume", "/data"],
            json!({"Volumes": {"/v": {}, "/data": {}}}),
            "VOLUME /data",
        ),
        (
            vec!["--unset-volume", "/v"],
            json!({"Volumes": {}}),
            "unset VOLUME /v",
        ),
        (
            vec!["--cmd", r#"["/app", "--serve"]"#],
            json!({"Cmd": ["/app", "--serve"]}),
            r#"CMD ["/app", "--serve"]"#,
        ),
        (
            vec!["--cmd", "run it"],
            json!({"Cmd": ["/bin/sh", "-c", "run it"]}),
            "CMD run it",
        ),
        (vec!["--clear-cmd"], json!({"Cmd": null}), "unset CMD"),
        // As a Dockerfile's ENTRYPOINT: a CMD the base sets is cleared, unless given.
        (
            vec!["--entrypoint", r#"["/tini"]"#],
            json!({"Entrypoint": ["/tini"], "Cmd": null}),
            r#"ENTRYPOINT ["/tini"]"#,
        ),
        (
            vec!["--entrypoint", r#"["/tini"]"#, "--cmd", r#"["/x"]"#],
            json!({"Entrypoint": ["/tini"], "Cmd": ["/x"]}),
            r#"CMD ["/x"]; ENTRYPOINT ["/tini"]"#,
        ),
        (
            vec!["--change", "HEALTHCHECK NONE"],
            json!({"Healthcheck": {"Test": ["NONE"]}}),
            "HEALTHCHECK NONE",
        ),
        (
            vec!["--change", "ENV PATH=/opt:$PATH"],
            json!({"Env": ["PATH=/opt:/bin", "MODE=dev", "OLD=1"]}),
            "ENV PATH=/opt:$PATH",
        ),
    ];
    for (n, (flags, changed, created_by)) in cases.into_iter().enumerate() {
        let dst = tmp.path().join(format!("out-{n}.tar"));
        let mut args = vec!["mutate", "-q"];
        args.extend(&flags);
        args.extend([base.as_str(), s(&dst)]);
        ok_at_epoch(&args);
        let (id, config) = read_config(s(&dst));
        assert_ne!(id, base_id, "{flags:?}");
        // What should be: the base's, with the field changed, a history entry, a time.
        let mut want = base_config.clone();
        for (key, value) in changed.as_object().unwrap() {
            want["config"][key] = value.clone();
        }
        want["created"] = json!("2023-11-14T22:13:20Z");
        want["history"].as_array_mut().unwrap().push(json!({
            "created": "2023-11-14T22:13:20Z",
            "created_by": format!("dockhand mutate: {created_by}"),
            "empty_layer": true,
        }));
        assert_eq!(config, want, "{flags:?}");
        // Keys keep their order: the unknown fields where they were.
        let keys = |v: &Value| {
            v["config"]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect::<Vec<_>>()
        };
        assert!(
            keys(&config).starts_with(&keys(&base_config)[..5]),
            "{flags:?}"
        );
    }
}

#[test]
fn nothing_to_change_and_bad_values_are_usage_errors() {
    let tmp = tempdir();
    let base = crafted(tmp.path());
    let dst = tmp.path().join("never.tar");
    for args in [
        vec!["mutate", &base, s(&dst)],
        vec!["mutate", "--env", "NOEQUALS", &base, s(&dst)],
        vec!["mutate", "--expose", "http", &base, s(&dst)],
        vec!["mutate", "--cmd", r#"["a", 1]"#, &base, s(&dst)],
        vec!["mutate", "--annotation", "a=b", &base, s(&dst)],
        vec!["mutate", "--label", "a=b", "--referrers", &base, s(&dst)],
    ] {
        let out = run(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(!dst.exists());
    }
    let stderr = String::from_utf8_lossy(&run(&["mutate", &base, s(&dst)]).stderr).into_owned();
    assert!(stderr.contains("nothing to change"), "{stderr}");
    let out = run(&["mutate", "--annotation", "a=b", &base, s(&dst)]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("docker-archive keeps no manifest of dockhand's, so --annotation")
            && stderr.contains("oci, oci-archive, dir"),
        "{stderr}"
    );
}

/// The manifest (or index, with `index`) the OCI layout at `layout` lists first.
fn listed(layout: &Path, index: bool) -> Value {
    let top: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let digest = top["manifests"][0]["digest"].as_str().unwrap();
    let doc: Value = serde_json::from_slice(
        &std::fs::read(layout.join("blobs/sha256").join(&digest[7..])).unwrap(),
    )
    .unwrap();
    if index {
        assert_eq!(doc["mediaType"], "application/vnd.oci.image.index.v1+json");
    }
    doc
}

#[test]
fn annotations_land_in_the_oci_manifest_and_the_config_stays_without_other_edits() {
    let tmp = tempdir();
    let base = crafted(tmp.path());
    let (base_id, _) = read_config(&base);
    let layout = tmp.path().join("layout");
    let dst = format!("oci:{}:1", s(&layout));
    ok_at_epoch(&[
        "mutate",
        "-q",
        "--annotation",
        "org.example/a=1",
        &base,
        &dst,
    ]);
    assert_eq!(
        listed(&layout, false)["annotations"],
        json!({"org.example/a": "1"})
    );
    // Annotations alone: the config, so the image ID, is the base's.
    assert_eq!(read_config(&dst).0, base_id);
    // The layout edited in place: its own annotations kept, one more, the ref moved.
    let again = format!("oci:{}:1", s(&layout));
    ok_at_epoch(&[
        "mutate",
        "-q",
        "--annotation",
        "org.example/b=2",
        "--label",
        "x=y",
        &again,
        &again,
    ]);
    let manifest = listed(&layout, false);
    let top: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let named: Vec<&Value> = top["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["annotations"]["org.opencontainers.image.ref.name"] == "1")
        .collect();
    assert_eq!(named.len(), 1);
    let digest = named[0]["digest"].as_str().unwrap();
    let manifest_now: Value = serde_json::from_slice(
        &std::fs::read(layout.join("blobs/sha256").join(&digest[7..])).unwrap(),
    )
    .unwrap();
    assert_eq!(
        manifest_now["annotations"],
        json!({"org.example/a": "1", "org.example/b": "2"}),
        "{manifest}"
    );
    assert_ne!(read_config(&again).0, base_id);
    // umoci and skopeo read it.
    if have_tool("annotations_land_in_the_oci_manifest", "skopeo") {
        let raw = skopeo(tmp.path(), &["inspect", "--raw", &again]);
        let raw: Value = serde_json::from_slice(&raw).unwrap();
        assert_eq!(raw["annotations"]["org.example/b"], "2");
    }
}

/// An OCI layout holding one image for each of linux/amd64 and linux/arm64, listed by
/// an index tagged `multi`.
fn two_platforms(dir: &Path) -> String {
    let layout = dir.join("multi");
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let blob = |bytes: &[u8]| -> (String, usize) {
        let digest = sha256(bytes);
        std::fs::write(blobs.join(&digest[7..]), bytes).unwrap();
        (digest, bytes.len())
    };
    let mut entries = Vec::new();
    for arch in ["amd64", "arm64"] {
        let layer = crate::common::build::layer("arch", arch.as_bytes());
        let (layer_digest, layer_size) = blob(&layer);
        let config = serde_json::to_vec(&json!({
            "architecture": arch, "os": "linux", "config": {"Cmd": ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        }))
        .unwrap();
        let (config_digest, config_size) = blob(&config);
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer_size}],
        }))
        .unwrap();
        let (digest, size) = blob(&manifest);
        entries.push(json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest, "size": size,
            "platform": {"architecture": arch, "os": "linux"},
        }));
    }
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": entries,
        "annotations": {"org.example/from-source": "yes"},
    }))
    .unwrap();
    let (digest, size) = blob(&index);
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.index.v1+json", "digest": digest, "size": size,
            "annotations": {"org.opencontainers.image.ref.name": "multi"},
        }]}))
        .unwrap(),
    )
    .unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    format!("oci:{}:multi", s(&layout))
}

#[test]
fn every_platform_is_edited_and_the_index_annotated() {
    let tmp = tempdir();
    let src = two_platforms(tmp.path());
    let out = tmp.path().join("out");
    let dst = format!("oci:{}:edited", s(&out));
    ok_at_epoch(&[
        "mutate",
        "-q",
        "--all",
        "--label",
        "edited=yes",
        "--index-annotation",
        "org.example/index=1",
        &src,
        &dst,
    ]);
    let index = listed(&out, true);
    assert_eq!(
        index["annotations"],
        json!({"org.example/from-source": "yes", "org.example/index": "1"})
    );
    let doc: Value = serde_json::from_slice(&ok(&["inspect", "--json", "--all", &dst])).unwrap();
    let images = images(&doc);
    assert_eq!(images.len(), 2);
    for image in images {
        let labels = &image["config_summary"]["labels"];
        assert_eq!(labels["edited"], "yes", "{image}");
    }
    let platforms: Vec<&str> = images
        .iter()
        .map(|i| i["platform"]["architecture"].as_str().unwrap())
        .collect();
    assert_eq!(platforms, ["amd64", "arm64"]);
    ok(&["verify", "-q", "--all", &dst]);
    // Without --all there is no index to annotate.
    let out = run(&[
        "mutate",
        "--index-annotation",
        "a=b",
        &src,
        &format!("oci:{}:x", s(&tmp.path().join("o2"))),
    ]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("--all"));
}

#[test]
fn annotations_go_to_a_registry_in_an_oci_manifest() {
    let Some(fx) = RegistryFixture::builder().needs("skopeo").start() else {
        return;
    };
    let tmp = fx.dir();
    let base = fixture("docker-save-basic").input().to_string();
    let remote = fx.remote("team/annotated:1");
    let out = isolated_dockhand(
        tmp,
        &[
            "mutate",
            "-q",
            "--tls-verify=false",
            "--annotation",
            "org.example/a=1",
            "--label",
            "l=1",
            &base,
            &remote,
        ],
    )
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let raw: Value = serde_json::from_slice(&skopeo(
        tmp,
        &["inspect", "--tls-verify=false", "--raw", &remote],
    ))
    .unwrap();
    assert_eq!(
        raw["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(raw["annotations"], json!({"org.example/a": "1"}));
    // A Docker v2 manifest cannot hold them: refused before anything is pushed.
    let out = isolated_dockhand(
        tmp,
        &[
            "mutate",
            "--tls-verify=false",
            "--format",
            "v2s2",
            "--annotation",
            "a=b",
            &base,
            &fx.remote("team/v2:1"),
        ],
    )
    .output()
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn docker_sees_the_edits_once_it_loads_the_image() {
    let test = "docker_sees_the_edits_once_it_loads_the_image";
    if !have_docker(test) {
        return;
    }
    let _lock = docker_lock();
    let name = format!("dockhand-edit-test/mutated-{}:1", std::process::id());
    let _cleanup = DockerImages(vec![name.clone()]);
    let base = fixture("docker-save-basic").input().to_string();
    ok_at_epoch(&[
        "mutate",
        "-q",
        "--tag",
        &name,
        "--label",
        "team=core",
        "--unset-label",
        "com.example.fixture",
        "--env",
        "MODE=prod",
        "--user",
        "1000",
        "--workdir",
        "/srv",
        "--expose",
        "8080/udp",
        "--volume",
        "/data",
        "--entrypoint",
        r#"["/bin/hello.sh"]"#,
        "--cmd=--verbose",
        &base,
        &format!("docker-daemon:{name}"),
    ]);
    let inspect: Value =
        serde_json::from_slice::<Value>(&tool("docker", &["image", "inspect", &name])).unwrap()[0]
            .clone();
    let config = &inspect["Config"];
    assert_eq!(
        config["Labels"],
        json!({"org.opencontainers.image.title": "dockhand basic fixture", "team": "core"})
    );
    assert_eq!(
        config["Env"],
        json!(["PATH=/bin", "DOCKHAND_FIXTURE=basic", "MODE=prod"])
    );
    assert_eq!(config["User"], "1000");
    assert_eq!(config["WorkingDir"], "/srv");
    assert_eq!(config["ExposedPorts"], json!({"8080/udp": {}}));
    assert_eq!(config["Volumes"], json!({"/data": {}}));
    assert_eq!(config["Entrypoint"], json!(["/bin/hello.sh"]));
    assert_eq!(config["Cmd"], json!(["/bin/sh", "-c", "--verbose"]));
    let (id, _) = read_config(&base);
    assert_ne!(inspect["Id"], id);
}
