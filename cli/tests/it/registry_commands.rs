//! The registry client's own commands against a real registry (Debian's
//! docker-registry) on 127.0.0.1: `catalog` (pages followed), `tags --digests`
//! (tags grouped by manifest, configs fetched once), `tag` (the same bytes under a new
//! tag, no blob moved), `delete` (allowed, and refused by a registry that does not
//! allow it) and `digest` (a registry's as skopeo reports it, a layout's as its
//! index.json lists it). Requests are counted by the fixture's proxy.

use crate::common::registry::*;
use crate::common::*;

use std::path::Path;
use std::process::Output;

use serde_json::Value;

/// dockhand with a private HOME and cache, `--tls-verify=false` after the subcommand.
fn dh_run(tmp: &Path, args: &[&str]) -> Output {
    let mut all = vec![args[0], "--tls-verify=false"];
    all.extend_from_slice(&args[1..]);
    isolated_dockhand(tmp, &all)
        .output()
        .expect("running dockhand")
}

/// Run dockhand and require success; returns stdout.
fn dh(tmp: &Path, args: &[&str]) -> String {
    let out = dh_run(tmp, args);
    assert!(
        out.status.success(),
        "dockhand {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Run dockhand and require exit code `code` with one error line; returns stderr.
fn dh_fails(tmp: &Path, code: i32, args: &[&str]) -> String {
    let out = dh_run(tmp, args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
    assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
    stderr
}

/// Push image `n` (`@N`) of the multi-image fixture to `remote`.
fn push(tmp: &Path, n: usize, remote: &str) {
    let input = fixture("docker-save-multi").input().to_string();
    dh(
        tmp,
        &["convert", "-q", "--image", &format!("@{n}"), &input, remote],
    );
}

/// The raw manifest skopeo reads for `reference`.
fn raw_manifest(tmp: &Path, reference: &str) -> Vec<u8> {
    skopeo(tmp, &["inspect", "--tls-verify=false", "--raw", reference])
}

/// skopeo's digest of `reference`.
fn skopeo_digest(tmp: &Path, reference: &str) -> String {
    let out = skopeo(
        tmp,
        &[
            "inspect",
            "--tls-verify=false",
            "--format",
            "{{.Digest}}",
            reference,
        ],
    );
    String::from_utf8(out).unwrap().trim().to_string()
}

/// The two-platform OCI layout of the corpus, pushed whole to `remote` by skopeo.
fn push_index(tmp: &Path, remote: &str) -> Option<std::path::PathBuf> {
    let layout = corpus_item("stereoscope/multiplatform_oci_dir")?;
    skopeo(
        tmp,
        &[
            "copy",
            "--all",
            "--dest-tls-verify=false",
            &format!("oci:{}", s(&layout)),
            remote,
        ],
    );
    Some(layout)
}

#[test]
fn catalog_follows_every_page() {
    let Some(fx) = RegistryFixture::builder().proxy().start() else {
        return;
    };
    let t = fx.dir();
    let mut names: Vec<String> = (1..=5).map(|n| format!("team/app{n}")).collect();
    names.push("other".to_string());
    for name in &names {
        push(t, 0, &fx.remote(&format!("{name}:1")));
    }
    names.sort();
    let host = format!("docker://{}", fx.addr());
    fx.proxy().reset_counters();
    let listed = dh(t, &["catalog", "--page-size", "2", &host]);
    assert_eq!(listed, names.join("\n") + "\n");
    // Six repositories, two a page: three pages, each asked for once.
    assert_eq!(fx.proxy().count("GET", "/v2/_catalog", Some(200)), 3);
    // The registry's own page size (all at once here), and JSON.
    let doc: Value = serde_json::from_str(&dh(t, &["catalog", "--json", &host])).unwrap();
    assert_eq!(doc["repositories"], serde_json::json!(names));
    let same = dh(t, &["catalog", "--page-size", "4", &format!("{host}/")]);
    assert_eq!(same, names.join("\n") + "\n");
    // A repository is not a registry.
    let err = dh_fails(t, 2, &["catalog", &fx.remote("team/app1")]);
    assert!(err.contains("docker://HOST[:PORT]"), "{err}");
}

#[test]
fn tags_with_digests_group_tags_by_image_with_platforms_and_times() {
    let Some(fx) = RegistryFixture::builder().proxy().needs("skopeo").start() else {
        return;
    };
    let t = fx.dir();
    push(t, 0, &fx.remote("r:a1"));
    push(t, 0, &fx.remote("r:a2"));
    push(t, 1, &fx.remote("r:b"));
    if push_index(t, &fx.remote("r:multi")).is_none() {
        return;
    }
    let digest = |tag: &str| sha256(&raw_manifest(t, &fx.remote(&format!("r:{tag}"))));
    let created = |tag: &str| {
        let config: Value = serde_json::from_slice(&skopeo(
            t,
            &[
                "inspect",
                "--tls-verify=false",
                "--config",
                "--raw",
                &fx.remote(&format!("r:{tag}")),
            ],
        ))
        .unwrap();
        config["created"].as_str().unwrap().to_string()
    };
    let repo = fx.remote("r");
    fx.proxy().reset_counters();
    let doc: Value = serde_json::from_str(&dh(t, &["tags", "--digests", "--json", &repo])).unwrap();
    // One config per image, none for the index; one manifest request per tag.
    assert_eq!(fx.proxy().count("GET", "/blobs/", None), 2);
    assert_eq!(fx.proxy().count("GET", "/manifests/", None), 4);
    assert_eq!(doc["tags"], 4);
    assert_eq!(doc["truncated"], false);
    // In the order the registry lists the tags (its own).
    let groups = doc["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 3, "{doc:#}");
    let group = |tag: &str| -> &Value {
        let digest = digest(tag);
        groups
            .iter()
            .find(|g| g["digest"] == digest)
            .unwrap_or_else(|| panic!("{tag}: {doc:#}"))
    };
    let a = group("a1");
    assert_eq!(a["tags"], serde_json::json!(["a1", "a2"]));
    assert_eq!(a["platforms"], serde_json::json!(["linux/amd64"]));
    assert_eq!(a["created"], created("a1"));
    assert_eq!(a["index"], false);
    let b = group("b");
    assert_eq!(b["tags"], serde_json::json!(["b"]));
    assert_eq!(b["created"], created("b"));
    assert_ne!(a["created"], b["created"]);
    let multi = group("multi");
    assert_eq!(multi["tags"], serde_json::json!(["multi"]));
    assert_eq!(multi["index"], true);
    assert_eq!(
        multi["platforms"],
        serde_json::json!(["linux/amd64", "linux/arm64"])
    );
    assert_eq!(multi["created"], Value::Null);

    // The lines: digest, platforms, created, tags.
    let text = dh(t, &["tags", "--digests", &repo]);
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort();
    let mut expected = vec![
        format!("{}  linux/amd64  {}  a1 a2", digest("a1"), created("a1")),
        format!("{}  linux/amd64  {}  b", digest("b"), created("b")),
        format!("{}  linux/amd64,linux/arm64  -  multi", digest("multi")),
    ];
    expected.sort();
    assert_eq!(lines, expected);

    // A cap on the tags resolved, said when hit.
    let out = dh_run(t, &["tags", "--digests", "--max-tags", "1", &repo]);
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("resolved only the first 1 tag(s)"),
        "{stderr}"
    );
    // Without --digests, the tags as before.
    let mut tags: Vec<String> = dh(t, &["tags", &repo]).lines().map(String::from).collect();
    tags.sort();
    assert_eq!(tags, ["a1", "a2", "b", "multi"]);
}

#[test]
fn tag_puts_the_same_bytes_under_new_tags_without_moving_a_blob() {
    let Some(fx) = RegistryFixture::builder().proxy().needs("skopeo").start() else {
        return;
    };
    let t = fx.dir();
    push(t, 1, &fx.remote("r:1"));
    if push_index(t, &fx.remote("r:multi")).is_none() {
        return;
    }
    let original = raw_manifest(t, &fx.remote("r:1"));
    let index = raw_manifest(t, &fx.remote("r:multi"));
    fx.proxy().reset_counters();
    let out = dh_run(t, &["tag", &fx.remote("r:1"), "2", "latest"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains(&format!(
            "tagged {}@{}",
            fx.remote("r:2"),
            sha256(&original)
        )),
        "{stderr}"
    );
    dh(
        t,
        &["tag", &fx.remote(&format!("r@{}", sha256(&index))), "both"],
    );
    assert_eq!(fx.proxy().count("POST", "/blobs/uploads", None), 0);
    assert_eq!(fx.proxy().count("PUT", "/blobs/", None), 0);
    assert_eq!(fx.proxy().count("PUT", "/manifests/", None), 3);
    for tag in ["2", "latest"] {
        assert_eq!(raw_manifest(t, &fx.remote(&format!("r:{tag}"))), original);
    }
    assert_eq!(raw_manifest(t, &fx.remote("r:both")), index);
    // An invalid tag is refused before anything is sent.
    let err = dh_fails(t, 2, &["tag", &fx.remote("r:1"), "bad/tag"]);
    assert!(err.contains("not a valid tag"), "{err}");
    let err = dh_fails(t, 1, &["tag", &fx.remote("r:absent"), "x"]);
    assert!(err.contains("manifest unknown"), "{err}");
}

#[test]
fn delete_removes_the_manifest_a_tag_or_digest_names() {
    let Some(fx) = RegistryFixture::builder().needs("skopeo").start() else {
        return;
    };
    let t = fx.dir();
    push(t, 0, &fx.remote("r:1"));
    push(t, 1, &fx.remote("r:2"));
    let first = sha256(&raw_manifest(t, &fx.remote("r:1")));
    let second = sha256(&raw_manifest(t, &fx.remote("r:2")));
    // Whether skopeo finds the manifest `d` in the registry.
    let held = |d: &str| {
        std::process::Command::new("skopeo")
            .env("TMPDIR", t)
            .args(["inspect", "--tls-verify=false", "--raw"])
            .arg(fx.remote(&format!("r@{d}")))
            .output()
            .unwrap()
            .status
            .success()
    };
    assert!(held(&first) && held(&second));
    // By tag: resolved to its digest first.
    let out = dh_run(t, &["delete", &fx.remote("r:1")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr, format!("deleted {}@{first}\n", fx.remote("r:1")));
    assert!(!held(&first) && held(&second));
    // By digest.
    dh(t, &["delete", &fx.remote(&format!("r@{second}"))]);
    assert!(!held(&second));
    assert_eq!(dh(t, &["tags", &fx.remote("r")]), "");
    // Gone: the error says which.
    let err = dh_fails(t, 1, &["delete", &fx.remote(&format!("r@{second}"))]);
    assert!(err.contains("manifest unknown"), "{err}");
}

#[test]
fn delete_on_a_registry_that_does_not_allow_it_says_so() {
    let Some(fx) = RegistryFixture::builder()
        .no_delete()
        .needs("skopeo")
        .start()
    else {
        return;
    };
    let t = fx.dir();
    push(t, 0, &fx.remote("r:1"));
    let digest = sha256(&raw_manifest(t, &fx.remote("r:1")));
    let err = dh_fails(t, 1, &["delete", &fx.remote("r:1")]);
    assert!(
        err.contains(
            "the registry does not allow deleting (distribution: storage.delete.enabled=true)"
        ),
        "{err}"
    );
    assert_eq!(sha256(&raw_manifest(t, &fx.remote("r:1"))), digest);
}

#[test]
fn digest_is_skopeos_for_a_registry_and_the_index_entry_for_a_layout() {
    let Some(fx) = RegistryFixture::builder().proxy().needs("skopeo").start() else {
        return;
    };
    let t = fx.dir();
    push(t, 0, &fx.remote("r:1"));
    let Some(layout) = push_index(t, &fx.remote("r:multi")) else {
        return;
    };
    for tag in ["r:1", "r:multi"] {
        let remote = fx.remote(tag);
        let expected = skopeo_digest(t, &remote) + "\n";
        fx.proxy().reset_counters();
        assert_eq!(dh(t, &["digest", &remote]), expected);
        // Without pulling: manifests only.
        assert_eq!(fx.proxy().count("GET", "/blobs/", None), 0);
    }

    // An OCI layout: its index.json entry (the index with --all, a member by platform).
    let entry = |dir: &Path| -> String {
        let index: Value =
            serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
        index["manifests"][0]["digest"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let multi = format!("oci:{}", s(&layout));
    assert_eq!(dh(t, &["digest", "--all", &multi]), entry(&layout) + "\n");
    let arm64 = dh(t, &["digest", "--platform", "linux/arm64", &multi]);
    assert_eq!(
        arm64,
        dh(
            t,
            &["digest", "--platform", "linux/arm64", &fx.remote("r:multi")]
        )
    );
    assert_ne!(arm64, entry(&layout) + "\n");
    // A layout dockhand wrote with gzip layers: what its index.json lists, which a push
    // keeps.
    let oci = t.join("gz");
    let input = fixture("docker-save-multi").input().to_string();
    dh(
        t,
        &[
            "convert",
            "-q",
            "--image",
            "@0",
            "--layer-compression",
            "gzip",
            &input,
            &format!("oci:{}:x", s(&oci)),
        ],
    );
    let digest = dh(t, &["digest", &format!("oci:{}:x", s(&oci))]);
    assert_eq!(digest, entry(&oci) + "\n");
    dh(
        t,
        &[
            "convert",
            "-q",
            &format!("oci:{}:x", s(&oci)),
            &fx.remote("r:gz"),
        ],
    );
    assert_eq!(dh(t, &["digest", &fx.remote("r:gz")]), digest);
    // A docker-archive holds no manifest: its digest is the one a push gives it, its
    // layers gzipped as the push gzips them.
    let before = dh(t, &["digest", "--image", "@0", &input]);
    let out = dh_run(
        t,
        &["convert", "--image", "@0", &input, &fx.remote("r:archive")],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(dh(t, &["digest", &fx.remote("r:archive")]), before);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains(&format!("@{}", before.trim())), "{said}");
}
