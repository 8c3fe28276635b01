//! `dockhand sync`: skopeo sync's YAML (and `--src docker`) copied to a mirror under a
//! prefix, between two real registries on 127.0.0.1 behind recording proxies; naming,
//! `--scoped`, the incremental re-run and what it costs, `--dry-run`, failures and
//! `--fail-fast`, `--json`, and where the YAML's credentials go.

use crate::common::images::Podman;
use crate::common::registry::*;
use crate::common::*;

use std::path::Path;
use std::process::Output;

use base64::Engine;
use serde_json::Value;

const ALICE: (&str, &str) = ("alice", "a-sync-source-secret");

fn run(tmp: &Path, args: &[&str]) -> Output {
    isolated_dockhand(tmp, args)
        .output()
        .expect("running dockhand")
}

/// Run dockhand, require exit `code`; stdout and stderr.
fn dh(tmp: &Path, code: i32, args: &[&str]) -> (String, String) {
    let out = run(tmp, args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(code),
        "{args:?}: {stdout}\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    (stdout, stderr)
}

/// Push a fixture to `dst` (`docker://...`), optionally with credentials.
fn push(tmp: &Path, input: &str, dst: &str, creds: Option<&str>) {
    let mut args = vec!["convert", "--tls-verify=false"];
    if let Some(c) = creds {
        args.extend(["--creds", c]);
    }
    args.extend([input, dst]);
    dh(tmp, 0, &args);
}

/// The manifest digest `reference` names.
fn digest(tmp: &Path, reference: &str, creds: Option<&str>) -> String {
    let mut args = vec!["digest", "--tls-verify=false"];
    if let Some(c) = creds {
        args.extend(["--creds", c]);
    }
    args.push(reference);
    let (out, _) = dh(tmp, 0, &args);
    out.trim().to_string()
}

fn tags(tmp: &Path, repository: &str) -> Vec<String> {
    let (out, _) = dh(tmp, 0, &["tags", "--tls-verify=false", repository]);
    let mut tags: Vec<String> = out.lines().map(str::to_string).collect();
    tags.sort();
    tags
}

fn write(tmp: &Path, name: &str, text: &str) -> String {
    let path = tmp.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

/// Requests that move a blob's bytes or start an upload.
fn blob_moves(proxy: &Proxy) -> Vec<(String, String, u16)> {
    proxy
        .requests()
        .into_iter()
        .filter(|(m, path, _)| {
            path.contains("/blobs/") && (m == "GET" || m == "POST" || m == "PATCH" || m == "PUT")
        })
        .collect()
}

#[test]
fn a_yaml_list_lands_under_the_prefix_and_a_rerun_copies_nothing() {
    let Some(src) = RegistryFixture::builder().proxy().start() else {
        return;
    };
    let Some(dst) = RegistryFixture::builder().proxy().start() else {
        return;
    };
    let t = src.dir();
    let basic = fixture("docker-save-basic");
    let multi = fixture("docker-save-multi");
    let oci = fixture("skopeo-oci");
    for tag in ["1.0", "2.0", "unlisted"] {
        push(
            t,
            basic.input(),
            &src.remote(&format!("team/app:{tag}")),
            None,
        );
    }
    for (n, tag) in ["a", "b"].iter().enumerate() {
        let (image, dst) = (format!("@{n}"), src.remote(&format!("team/multi:{tag}")));
        let args = [
            "convert",
            "--tls-verify=false",
            "--image",
            &image,
            multi.input(),
            &dst,
        ];
        dh(t, 0, &args);
    }
    for tag in ["v1", "v10", "x1"] {
        push(
            t,
            oci.input(),
            &src.remote(&format!("other/oci:{tag}")),
            None,
        );
    }
    for tag in ["1.1", "1.2", "1.3.1", "2.0", "latest"] {
        push(
            t,
            basic.input(),
            &src.remote(&format!("semver/app:{tag}")),
            None,
        );
    }
    let multi_tags = tags(t, &src.remote("team/multi"));
    assert_eq!(multi_tags, ["a", "b"]);
    let host = src.addr();
    let yaml = write(
        t,
        "sync.yaml",
        &format!(
            "{host}:\n  images:\n    team/app: ['1.0', '2.0']\n    team/multi: []\n  \
             images-by-tag-regex:\n    other/oci: ^v1$\n  images-by-semver:\n    \
             semver/app: '>= 1.2.0, < 2'\n  tls-verify: false\n"
        ),
    );
    let mut expected: Vec<(String, String)> = vec![
        ("team/app".into(), "1.0".into()),
        ("team/app".into(), "2.0".into()),
        ("other/oci".into(), "v1".into()),
        ("semver/app".into(), "1.2".into()),
        ("semver/app".into(), "1.3.1".into()),
    ];
    for tag in &multi_tags {
        expected.push(("team/multi".into(), tag.clone()));
    }
    let n = expected.len();
    let mirror = format!("docker://{}/mirror/pre", dst.addr());
    let sync = |extra: &[&str], code: i32| {
        let mut args = vec!["sync", "--src", "yaml", "--dest-tls-verify=false"];
        args.extend(extra);
        args.extend([yaml.as_str(), mirror.as_str()]);
        dh(t, code, &args)
    };

    // A dry run lists every image and writes nothing.
    let (out, _) = sync(&["--dry-run"], 0);
    for (repo, tag) in &expected {
        let line = format!("would copy docker://{host}/{repo}:{tag} -> {mirror}/{repo}:{tag}");
        assert!(out.contains(&line), "{line} in\n{out}");
    }
    assert_eq!(out.lines().count(), n, "{out}");
    assert!(!out.contains("unlisted") && !out.contains("v10") && !out.contains(":x1"));
    assert!(!out.contains(":1.1 ") && !out.contains("latest"), "{out}");
    assert!(blob_moves(dst.proxy()).is_empty());
    assert_eq!(dst.proxy().count("PUT", "/manifests/", None), 0);

    // The sync: every image at PREFIX/<repository>:<tag>, same digest.
    let (out, err) = sync(&[], 0);
    assert_eq!(out.matches("copied ").count(), n, "{out}");
    assert!(err.contains(&format!("{n} copied, 0 skipped")), "{err}");
    for (repo, tag) in &expected {
        assert_eq!(
            digest(t, &format!("docker://{host}/{repo}:{tag}"), None),
            digest(t, &format!("{mirror}/{repo}:{tag}"), None),
            "{repo}:{tag}"
        );
    }
    assert_eq!(tags(t, &format!("{mirror}/team/app")), ["1.0", "2.0"]);
    assert_eq!(tags(t, &format!("{mirror}/semver/app")), ["1.2", "1.3.1"]);

    // A re-run: every image skipped, no blob moved, two requests per image (a HEAD of
    // the manifest at each end) besides listing the three listed repositories' tags.
    src.proxy().reset_counters();
    dst.proxy().reset_counters();
    let (out, _) = sync(&["--json"], 0);
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["skipped"], n, "{report:#}");
    assert_eq!(
        (report["copied"].clone(), report["failed"].clone()),
        (0.into(), 0.into())
    );
    let images = report["images"].as_array().unwrap();
    assert_eq!(images.len(), n);
    for image in images {
        assert_eq!(image["outcome"], "skipped", "{image}");
        assert!(image["digest"].as_str().unwrap().starts_with("sha256:"));
        assert!(image["error"].is_null());
        let source = image["source"].as_str().unwrap();
        let rest = source.strip_prefix(&format!("docker://{host}/")).unwrap();
        assert_eq!(image["destination"], format!("{mirror}/{rest}"));
    }
    assert!(
        blob_moves(src.proxy()).is_empty(),
        "{:?}",
        src.proxy().requests()
    );
    assert!(
        blob_moves(dst.proxy()).is_empty(),
        "{:?}",
        dst.proxy().requests()
    );
    let (at_src, at_dst) = (src.proxy().requests(), dst.proxy().requests());
    let manifests = |r: &[(String, String, u16)]| {
        r.iter()
            .filter(|(m, p, _)| m == "HEAD" && p.contains("/manifests/"))
            .count()
    };
    assert_eq!(manifests(&at_src), n, "{at_src:?}");
    assert_eq!(manifests(&at_dst), n, "{at_dst:?}");
    let listings = at_src
        .iter()
        .filter(|(_, p, _)| p.contains("/tags/list"))
        .count();
    assert_eq!(listings, 3, "{at_src:?}");
    let other = at_src.len() + at_dst.len() - 2 * n - listings;
    eprintln!(
        "re-run of {n} unchanged images: {} requests at the source, {} at the destination \
         ({} besides the manifest HEADs and tag lists)",
        at_src.len(),
        at_dst.len(),
        other
    );
    // Nothing else: no `/v2/` probe, although both ends may speak plain HTTP
    // (`tls-verify: false`): the first HEAD at each end finds that out.
    assert_eq!(other, 0, "{at_src:?} {at_dst:?}");
    assert!(
        !at_src.iter().chain(&at_dst).any(|(_, p, _)| p == "/v2/"),
        "{at_src:?} {at_dst:?}"
    );

    // The same images with every tag written out (no list to read): at most two
    // requests per image in all, at both registries.
    let mut listed = format!("{host}:\n  images:\n");
    for repo in ["team/app", "team/multi", "other/oci", "semver/app"] {
        let tags: Vec<String> = expected
            .iter()
            .filter(|(r, _)| r == repo)
            .map(|(_, t)| format!("'{t}'"))
            .collect();
        listed.push_str(&format!("    {repo}: [{}]\n", tags.join(", ")));
    }
    listed.push_str("  tls-verify: false\n");
    let listed = write(t, "listed.yaml", &listed);
    src.proxy().reset_counters();
    dst.proxy().reset_counters();
    let args = [
        "sync",
        "--src",
        "yaml",
        "--dest-tls-verify=false",
        "--json",
        listed.as_str(),
        mirror.as_str(),
    ];
    let (out, _) = dh(t, 0, &args);
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["skipped"], n, "{report:#}");
    let (at_src, at_dst) = (src.proxy().requests(), dst.proxy().requests());
    assert!(
        at_src.len() + at_dst.len() <= 2 * n,
        "{} requests for {n} images: {at_src:?} {at_dst:?}",
        at_src.len() + at_dst.len()
    );
}

#[test]
fn a_failing_image_stops_no_other_unless_fail_fast() {
    let Some(src) = RegistryFixture::builder().start() else {
        return;
    };
    let Some(dst) = RegistryFixture::builder().proxy().start() else {
        return;
    };
    let t = src.dir();
    push(
        t,
        fixture("docker-save-basic").input(),
        &src.remote("team/app:1.0"),
        None,
    );
    let host = src.addr();
    let yaml = write(
        t,
        "sync.yaml",
        &format!("{host}:\n  images:\n    team/app: ['nope', '1.0']\n  tls-verify: false\n"),
    );
    let mirror = format!("docker://{}/m", dst.addr());
    let base = [
        "sync",
        "--src",
        "yaml",
        "--dest-tls-verify=false",
        "--parallel",
        "1",
    ];

    // --fail-fast: the first failure leaves the next image unstarted.
    let mut args = base.to_vec();
    args.extend(["--fail-fast", yaml.as_str(), mirror.as_str()]);
    let (out, err) = dh(t, 1, &args);
    assert!(
        out.contains(&format!("failed docker://{host}/team/app:nope")),
        "{out}"
    );
    assert!(
        out.contains(&format!("not started docker://{host}/team/app:1.0")),
        "{out}"
    );
    assert_eq!(dst.proxy().count("PUT", "/manifests/", None), 0);
    assert!(err.contains("1 failed, 1 not started"), "{err}");

    // By default every image is tried: the good one lands, the bad one is named.
    let mut args = base.to_vec();
    args.extend(["--json", yaml.as_str(), mirror.as_str()]);
    let (out, _) = dh(t, 1, &args);
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (report["copied"].clone(), report["failed"].clone()),
        (1.into(), 1.into())
    );
    let images = report["images"].as_array().unwrap();
    assert_eq!(images[0]["outcome"], "failed");
    let why = images[0]["error"].as_str().unwrap();
    assert!(why.contains("nope") && !why.contains('\n'), "{why}");
    assert_eq!(images[1]["outcome"], "copied");
    assert_eq!(
        digest(t, &format!("{mirror}/team/app:1.0"), None),
        digest(t, &src.remote("team/app:1.0"), None)
    );
    // The words: the summary names the failure on stderr, one line each.
    let mut args = base.to_vec();
    args.extend([yaml.as_str(), mirror.as_str()]);
    let (out, err) = dh(t, 1, &args);
    assert!(
        out.contains(&format!("skipped docker://{host}/team/app:1.0")),
        "{out}"
    );
    assert!(err.contains("0 copied, 1 skipped"), "{err}");
    assert!(
        err.contains(&format!("failed: docker://{host}/team/app:nope: ")),
        "{err}"
    );
    assert!(err.contains("error: 1 of 2 images failed"), "{err}");
}

#[test]
fn yaml_credentials_reach_only_their_registry_and_scoped_keeps_the_host() {
    let Some(src) = RegistryFixture::builder()
        .auth(Auth::basic(ALICE.0, ALICE.1))
        .proxy()
        .start()
    else {
        return;
    };
    let Some(dst) = RegistryFixture::builder().proxy().start() else {
        return;
    };
    let t = src.dir();
    let alice = format!("{}:{}", ALICE.0, ALICE.1);
    push(
        t,
        fixture("skopeo-oci").input(),
        &src.remote("team/app:1"),
        Some(&alice),
    );
    src.proxy().reset_counters();
    let host = src.addr();
    let yaml = write(
        t,
        "sync.yaml",
        &format!(
            "{host}:\n  images:\n    team/app: []\n  tls-verify: false\n  credentials:\n    \
             username: {}\n    password: {}\n",
            ALICE.0, ALICE.1
        ),
    );
    let mirror = format!("docker://{}/m", dst.addr());
    let (out, _) = dh(
        t,
        0,
        &[
            "sync",
            "--src",
            "yaml",
            "--scoped",
            "--dest-tls-verify=false",
            &yaml,
            &mirror,
        ],
    );
    let scoped = format!("{mirror}/{}/team/app:1", host.replace(':', "_"));
    assert!(
        out.contains(&format!("copied docker://{host}/team/app:1 -> {scoped}")),
        "{out}"
    );
    assert_eq!(
        digest(t, &scoped, None),
        digest(t, &src.remote("team/app:1"), Some(&alice))
    );
    let sent = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(&alice)
    );
    assert!(src.proxy().authorizations().contains(&sent));
    let to_dst = dst.proxy().authorizations();
    assert!(
        !to_dst
            .iter()
            .any(|a| a.contains(&sent) || a.contains(ALICE.1)),
        "{to_dst:?}"
    );
}

#[test]
fn src_docker_takes_every_tag_of_a_repository() {
    let Some(src) = RegistryFixture::builder().start() else {
        return;
    };
    let Some(dst) = RegistryFixture::builder().start() else {
        return;
    };
    let t = src.dir();
    push(
        t,
        fixture("docker-save-basic").input(),
        &src.remote("a/b/app:1"),
        None,
    );
    push(
        t,
        fixture("skopeo-oci").input(),
        &src.remote("a/b/app:2"),
        None,
    );
    let mirror = format!("docker://{}/pre", dst.addr());
    dh(
        t,
        0,
        &[
            "sync",
            "--src",
            "docker",
            "--tls-verify=false",
            &src.remote("a/b/app"),
            &mirror,
        ],
    );
    assert_eq!(tags(t, &format!("{mirror}/a/b/app")), ["1", "2"]);
    for tag in ["1", "2"] {
        assert_eq!(
            digest(t, &format!("{mirror}/a/b/app:{tag}"), None),
            digest(t, &src.remote(&format!("a/b/app:{tag}")), None)
        );
    }
    // With a tag: that image only.
    let mirror2 = format!("docker://{}/one", dst.addr());
    dh(
        t,
        0,
        &[
            "sync",
            "--src",
            "docker",
            "--tls-verify=false",
            &src.remote("a/b/app:2"),
            &mirror2,
        ],
    );
    assert_eq!(tags(t, &format!("{mirror2}/a/b/app")), ["2"]);
}

#[test]
fn three_shards_copy_each_image_exactly_once_sharing_one_cache() {
    let Some(src) = RegistryFixture::builder().start() else {
        return;
    };
    let Some(dst) = RegistryFixture::builder().start() else {
        return;
    };
    let t = src.dir();
    let basic = fixture("docker-save-basic");
    let oci = fixture("skopeo-oci");
    // Twelve images in three repositories, sharing layers.
    let mut sources: Vec<String> = Vec::new();
    for n in 0..6 {
        let (a, b) = (
            src.remote(&format!("team/app:{n}")),
            src.remote(&format!("other/oci:{n}")),
        );
        push(t, basic.input(), &a, None);
        push(t, oci.input(), &b, None);
        sources.extend([a, b]);
    }
    let host = src.addr();
    let yaml = write(
        t,
        "all.yaml",
        &format!("{host}:\n  images:\n    team/app: []\n    other/oci: []\n  tls-verify: false\n"),
    );
    let mirror = format!("docker://{}/shards", dst.addr());
    // Three workers at once, one shared blob cache (the same HOME for all three).
    let workers: Vec<std::process::Child> = (0..3)
        .map(|i| {
            isolated_dockhand(
                t,
                &[
                    "sync",
                    "--src",
                    "yaml",
                    "--dest-tls-verify=false",
                    "--shard",
                    &format!("{i}/3"),
                    "--json",
                    &yaml,
                    &mirror,
                ],
            )
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    let mut copied: Vec<String> = Vec::new();
    for worker in workers {
        let out = worker.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "{stderr}\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        for image in report["images"].as_array().unwrap() {
            assert_eq!(image["outcome"], "copied", "{image}");
            copied.push(image["source"].as_str().unwrap().to_string());
        }
    }
    // The union is the whole list, each image once.
    copied.sort();
    let mut want = sources.clone();
    want.sort();
    assert_eq!(copied, want);
    for source in &sources {
        let rest = source.split_once(&format!("{host}/")).unwrap().1;
        assert_eq!(
            digest(t, &format!("{mirror}/{rest}"), None),
            digest(t, source, None)
        );
    }
    // `index/N` takes I from JOB_COMPLETION_INDEX, as an Indexed Job sets it.
    let out = isolated_dockhand(
        t,
        &[
            "sync",
            "--src",
            "yaml",
            "--dest-tls-verify=false",
            "--shard",
            "index/3",
            "--dry-run",
            "--json",
            &yaml,
            &mirror,
        ],
    )
    .env("JOB_COMPLETION_INDEX", "7")
    .output()
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (listed, _) = {
        let out = isolated_dockhand(
            t,
            &[
                "sync",
                "--src",
                "yaml",
                "--dest-tls-verify=false",
                "--shard",
                "index/3",
                "--json",
                &yaml,
                &mirror,
            ],
        )
        .env("JOB_COMPLETION_INDEX", "1")
        .output()
        .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (String::from_utf8(out.stdout).unwrap(), ())
    };
    // Worker 1 again: its share, all already there.
    let report: Value = serde_json::from_str(&listed).unwrap();
    let images = report["images"].as_array().unwrap();
    assert!(
        !images.is_empty() && images.len() < sources.len(),
        "{report:#}"
    );
    assert!(
        images.iter().all(|i| i["outcome"] == "skipped"),
        "{report:#}"
    );
}

#[test]
fn a_sync_into_one_oci_layout_names_each_image_and_a_rerun_copies_nothing() {
    let Some(src) = RegistryFixture::builder().start() else {
        return;
    };
    let t = src.dir();
    let basic = fixture("docker-save-basic");
    let oci = fixture("skopeo-oci");
    // A Docker v2 image (a docker-archive pushed) and an OCI one.
    push(t, basic.input(), &src.remote("team/app:1"), None);
    push(t, oci.input(), &src.remote("other/oci:2"), None);
    let host = src.addr();
    let yaml = write(
        t,
        "layout.yaml",
        &format!(
            "{host}:\n  images:\n    team/app: ['1']\n    other/oci: []\n  tls-verify: false\n"
        ),
    );
    let layout = t.join("mirror");
    let dest = format!("oci:{}", s(&layout));
    let (out, _) = dh(t, 0, &["sync", "--src", "yaml", "--json", &yaml, &dest]);
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["copied"], 2, "{report:#}");
    // Each image under its full source name, with the digest the registry has.
    let doc = inspect(s(&layout));
    let mut named: Vec<(String, String)> = images(&doc)
        .iter()
        .map(|i| {
            (
                i["tags"][0].as_str().unwrap().to_string(),
                i["manifest"]["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    named.sort();
    let mut want = vec![
        (
            format!("{host}/other/oci:2"),
            digest(t, &src.remote("other/oci:2"), None),
        ),
        (
            format!("{host}/team/app:1"),
            digest(t, &src.remote("team/app:1"), None),
        ),
    ];
    want.sort();
    assert_eq!(named, want);
    ok(&["verify", s(&layout)]);
    // Nothing new: both skipped, the layout untouched.
    let before = std::fs::read(layout.join("index.json")).unwrap();
    let (out, _) = dh(t, 0, &["sync", "--src", "yaml", "--json", &yaml, &dest]);
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (report["copied"].clone(), report["skipped"].clone()),
        (0.into(), 2.into()),
        "{report:#}"
    );
    assert_eq!(std::fs::read(layout.join("index.json")).unwrap(), before);
}

#[test]
fn a_multi_platform_image_synced_as_one_platform_is_skipped_next_time() {
    // Two platforms: linux/amd64 and linux/arm64.
    let Some(layout) = corpus_item("stereoscope/multiplatform_oci_dir") else {
        return;
    };
    let Some(src) = RegistryFixture::builder().needs("skopeo").start() else {
        return;
    };
    let Some(dst) = RegistryFixture::builder().proxy().start() else {
        return;
    };
    let t = src.dir();
    skopeo(
        t,
        &[
            "copy",
            "--all",
            "--dest-tls-verify=false",
            &format!("oci:{}:latest", s(&layout)),
            &src.remote("plat/multi:1"),
        ],
    );
    let host = src.addr();
    let yaml = write(
        t,
        "multi.yaml",
        &format!("{host}:\n  images:\n    plat/multi: ['1']\n  tls-verify: false\n"),
    );
    let mirror = format!("docker://{}/m", dst.addr());
    let args = [
        "sync",
        "--src",
        "yaml",
        "--dest-tls-verify=false",
        "--json",
        yaml.as_str(),
        mirror.as_str(),
    ];
    let (out, _) = dh(t, 0, &args);
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["copied"], 1, "{report:#}");
    // One platform's manifest at the mirror, not the index.
    let at_mirror = digest(t, &format!("{mirror}/plat/multi:1"), None);
    assert_ne!(at_mirror, digest(t, &src.remote("plat/multi:1"), None));
    dst.proxy().reset_counters();
    let (out, _) = dh(t, 0, &args);
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["skipped"], 1, "{report:#}");
    assert!(
        blob_moves(dst.proxy()).is_empty(),
        "{:?}",
        dst.proxy().requests()
    );
    // The same into one archive per image: that platform's manifest (oci-archive) or
    // config (docker-archive) is found there next time.
    for kind in ["oci-archive", "docker-archive"] {
        let dest = format!("{kind}:{}/", s(&t.join(kind)));
        let args = [
            "sync",
            "--src",
            "yaml",
            "--json",
            yaml.as_str(),
            dest.as_str(),
        ];
        for want in ["copied", "skipped"] {
            let (out, _) = dh(t, 0, &args);
            let report: Value = serde_json::from_str(&out).unwrap();
            assert_eq!(report[want], 1, "{kind}: {report:#}");
        }
    }
}

/// Every file under `dir`, relative to it, sorted.
fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(dir).unwrap();
                out.push(rel.to_str().unwrap().to_string());
            }
        }
    }
    out.sort();
    out
}

/// The config digest (image ID) of the one image `reference` names.
fn config_digest(tmp: &Path, reference: &str) -> String {
    let (out, _) = dh(
        tmp,
        0,
        &["inspect", "--tls-verify=false", "--json", reference],
    );
    let doc: Value = serde_json::from_str(&out).unwrap();
    let configs = config_digests(&doc);
    assert_eq!(configs.len(), 1, "{doc}");
    configs[0].clone()
}

/// (inode, modification time) of a file: what a replacement changes.
fn identity(path: &Path) -> (u64, std::time::SystemTime) {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).unwrap();
    (meta.ino(), meta.modified().unwrap())
}

#[test]
fn a_sync_into_archives_writes_one_per_image_that_docker_skopeo_and_podman_read_back() {
    let Some(src) = RegistryFixture::builder()
        .proxy()
        .needs("skopeo")
        .needs("podman")
        .start()
    else {
        return;
    };
    if !have_docker(&test_name()) {
        return;
    }
    let _docker = docker_lock();
    let t = src.dir();
    let host = src.addr().to_string();
    push(
        t,
        fixture("docker-save-basic").input(),
        &src.remote("team/app:1"),
        None,
    );
    push(
        t,
        fixture("skopeo-oci").input(),
        &src.remote("other/oci:2"),
        None,
    );
    let app = digest(t, &src.remote("team/app:1"), None);
    let hex = app.strip_prefix("sha256:").unwrap();
    let yaml = write(
        t,
        "archives.yaml",
        &format!(
            "{host}:\n  images:\n    team/app: ['1', '{app}']\n    other/oci: []\n  \
             tls-verify: false\n"
        ),
    );
    // Sorted as the files are: the unchanged other/oci, team/app:1, the digest.
    let files = [
        "other/oci/2.tar".to_string(),
        "team/app/1.tar".to_string(),
        format!("team/app/@sha256-{hex}.tar"),
    ];
    let sources = [
        format!("docker://{host}/other/oci:2"),
        format!("docker://{host}/team/app:1"),
        format!("docker://{host}/team/app@{app}"),
    ];
    let mut loaded: Vec<String> = Vec::new();
    for kind in ["docker-archive", "oci-archive"] {
        let dir = t.join(kind);
        let dest = format!("{kind}:{}/", s(&dir));
        let sync = |extra: &[&str]| -> Value {
            let mut args = vec!["sync", "--src", "yaml", "--json"];
            args.extend(extra);
            args.extend([yaml.as_str(), dest.as_str()]);
            let (out, _) = dh(t, 0, &args);
            serde_json::from_str(&out).unwrap()
        };
        let destinations = |report: &Value| -> Vec<(String, String)> {
            let mut out: Vec<(String, String)> = report["images"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| {
                    (
                        i["source"].as_str().unwrap().to_string(),
                        i["destination"].as_str().unwrap().to_string(),
                    )
                })
                .collect();
            out.sort();
            out
        };
        let mut want: Vec<(String, String)> = sources
            .iter()
            .zip(&files)
            .map(|(source, file)| (source.clone(), format!("{kind}:{}/{file}", s(&dir))))
            .collect();
        want.sort();

        // A dry run names each archive and writes nothing, not even the directory.
        let report = sync(&["--dry-run"]);
        assert_eq!(report["would_copy"], 3, "{report:#}");
        assert_eq!(destinations(&report), want);
        assert!(!dir.exists());
        // Two shards share the list between them, each image once.
        let mut shared: Vec<(String, String)> = Vec::new();
        for shard in ["0/2", "1/2"] {
            shared.extend(destinations(&sync(&["--dry-run", "--shard", shard])));
        }
        shared.sort();
        assert_eq!(shared, want);

        // Each image in its own archive, and nothing else there.
        let report = sync(&[]);
        assert_eq!(report["copied"], 3, "{report:#}");
        assert_eq!(destinations(&report), want);
        assert_eq!(files_under(&dir), files);

        // Each archive holds the image under its full source name (none for the one
        // named by digest), as the tools read it.
        let named = dir.join("team/app/1.tar");
        let config = config_digest(t, &src.remote("team/app:1"));
        if kind == "docker-archive" {
            // skopeo finds the image by that name, with the source's config.
            let reference = format!("docker-archive:{}:{host}/team/app:1", s(&named));
            let raw = skopeo(t, &["inspect", "--config", "--raw", &reference]);
            assert_eq!(sha256(&raw), config);
            // docker load names it so, with the same image ID.
            let out = tool("docker", &["load", "-i", s(&named)]);
            let name = format!("{host}/team/app:1");
            loaded.push(name.clone());
            assert!(
                String::from_utf8_lossy(&out).contains(&format!("Loaded image: {name}")),
                "{}",
                String::from_utf8_lossy(&out)
            );
            let id = tool(
                "docker",
                &["image", "inspect", "--format", "{{.Id}}", &name],
            );
            assert_eq!(String::from_utf8_lossy(&id).trim(), config);
            let by_digest = dir.join(&files[2]);
            let out = tool("docker", &["load", "-i", s(&by_digest)]);
            assert!(
                String::from_utf8_lossy(&out).contains(&format!("Loaded image ID: {config}")),
                "{}",
                String::from_utf8_lossy(&out)
            );
        } else {
            // The manifest kept: the source's digest (a Docker v2 manifest, which
            // skopeo reads but does not pick by ref name: the archive's one image).
            let raw = skopeo(
                t,
                &["inspect", "--raw", &format!("oci-archive:{}", s(&named))],
            );
            assert_eq!(sha256(&raw), app);
            let other = dir.join("other/oci/2.tar");
            let raw = skopeo(
                t,
                &["inspect", "--raw", &format!("oci-archive:{}", s(&other))],
            );
            assert_eq!(sha256(&raw), digest(t, &src.remote("other/oci:2"), None));
            // podman load names it by its full source name.
            let podman = Podman::new(&t.join("p"));
            let out = podman.run(&["load", "-i", s(&named)]);
            assert!(
                String::from_utf8_lossy(&out).contains(&format!("Loaded image: {host}/team/app:1")),
                "{}",
                String::from_utf8_lossy(&out)
            );
            assert_eq!(podman.id_of(&format!("{host}/team/app:1")), config);
        }

        // Nothing new: every image skipped, no archive rewritten, no blob read, one
        // manifest request per image at the source.
        let before: Vec<_> = files.iter().map(|f| identity(&dir.join(f))).collect();
        src.proxy().reset_counters();
        let report = sync(&[]);
        assert_eq!(report["skipped"], 3, "{report:#}");
        let after: Vec<_> = files.iter().map(|f| identity(&dir.join(f))).collect();
        assert_eq!(before, after);
        let requests = src.proxy().requests();
        assert!(blob_moves(src.proxy()).is_empty(), "{requests:?}");
        let manifests = requests
            .iter()
            .filter(|(_, p, _)| p.contains("/manifests/"))
            .count();
        assert_eq!(manifests, 3, "{requests:?}");

        // A new image under team/app:1 at the source: that archive alone is replaced.
        dh(
            t,
            0,
            &[
                "convert",
                "--tls-verify=false",
                "--image",
                "@0",
                fixture("docker-save-multi").input(),
                &src.remote("team/app:1"),
            ],
        );
        let report = sync(&[]);
        assert_eq!(
            (report["copied"].clone(), report["skipped"].clone()),
            (1.into(), 2.into()),
            "{report:#}"
        );
        assert_eq!(files_under(&dir), files);
        let changed = config_digest(t, &src.remote("team/app:1"));
        assert_ne!(changed, config);
        assert_eq!(config_digest(t, &format!("{kind}:{}", s(&named))), changed);
        assert_eq!(identity(&dir.join(&files[0])), before[0]);
        assert_eq!(identity(&dir.join(&files[2])), before[2]);
        assert_ne!(identity(&named), before[1]);
        // Back as it was, for the next kind.
        push(
            t,
            fixture("docker-save-basic").input(),
            &src.remote("team/app:1"),
            None,
        );
    }
    for name in loaded {
        let _ = tool("docker", &["rmi", "-f", &name]);
    }
}

#[test]
fn archives_stay_inside_their_directory_whatever_the_names() {
    use crate::common::hostile::{Answer, Image, Log, Server};
    let t = tempfile::tempdir().unwrap();
    let t = t.path();
    let image = Image::new(300, 7);
    let log = Log::default();
    // A registry whose tag list holds names that would leave the directory, or
    // hide in it, beside one plain tag.
    let served = image.clone();
    let server = Server::start("hostile", &log, move |request| {
        if request.path() == "/v2/team/app/tags/list" {
            let tags = serde_json::json!({
                "name": "team/app",
                "tags": ["../../../../escape", "..", "a/b", "ok", ".hidden", "-dash", "x\\y", ""],
            });
            return Answer::bytes(200, tags.to_string()).header("Content-Type", "application/json");
        }
        served
            .serve("team/app", request)
            .unwrap_or_else(|| Answer::new(404))
    });
    let host = server.addr.clone();
    let yaml = write(
        t,
        "hostile.yaml",
        &format!("{host}:\n  images:\n    team/app: []\n  tls-verify: false\n"),
    );
    let dir = t.join("out");
    let dest = format!("docker-archive:{}/", s(&dir));
    let (out, _) = dh(t, 0, &["sync", "--src", "yaml", "--json", &yaml, &dest]);
    let report: Value = serde_json::from_str(&out).unwrap();
    // Only the plain tag is taken.
    assert_eq!(report["copied"], 1, "{report:#}");
    assert_eq!(report["images"].as_array().unwrap().len(), 1, "{report:#}");
    assert_eq!(files_under(&dir), ["team/app/ok.tar"]);
    // Nothing else was written anywhere in the test's directory (but the blob cache).
    let written: Vec<String> = files_under(t)
        .into_iter()
        .filter(|f| !f.starts_with("home/") && !f.starts_with("xdg-cache/"))
        .collect();
    assert_eq!(written, ["hostile.yaml", "out/team/app/ok.tar"]);
    assert_eq!(
        config_digest(t, &format!("docker-archive:{}/team/app/ok.tar", s(&dir))),
        image.config_digest
    );

    // A sync list naming a way out is refused before anything is asked.
    let bad = write(
        t,
        "bad.yaml",
        &format!("{host}:\n  images:\n    team/app: ['../x']\n  tls-verify: false\n"),
    );
    let before = log.all().len();
    let (_, err) = dh(t, 1, &["sync", "--src", "yaml", &bad, &dest]);
    assert!(err.contains("../x"), "{err}");
    assert_eq!(log.all().len(), before);

    // A link under the directory is not followed: the image fails, the place it
    // points to stays empty.
    let linked = t.join("linked");
    let outside = t.join("outside");
    std::fs::create_dir_all(&linked).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, linked.join("team")).unwrap();
    let listed = write(
        t,
        "listed.yaml",
        &format!("{host}:\n  images:\n    team/app: ['ok']\n  tls-verify: false\n"),
    );
    let (out, _) = dh(
        t,
        1,
        &[
            "sync",
            "--src",
            "yaml",
            &listed,
            &format!("oci-archive:{}/", s(&linked)),
        ],
    );
    assert!(out.contains("symbolic link"), "{out}");
    assert!(std::fs::read_dir(&outside).unwrap().next().is_none());

    // Something that is no archive where one goes is not replaced.
    let foreign = t.join("foreign");
    std::fs::create_dir_all(foreign.join("team/app")).unwrap();
    std::fs::write(foreign.join("team/app/ok.tar"), "notes, not an archive").unwrap();
    let (out, _) = dh(
        t,
        1,
        &[
            "sync",
            "--src",
            "yaml",
            &listed,
            &format!("docker-archive:{}/", s(&foreign)),
        ],
    );
    assert!(out.contains("failed"), "{out}");
    assert_eq!(
        std::fs::read(foreign.join("team/app/ok.tar")).unwrap(),
        b"notes, not an archive"
    );

    // Two source registries on one archive (the same server by two names): the
    // first keeps it, the second fails; --scoped keeps them apart.
    let port = host.rsplit_once(':').unwrap().1;
    let two = write(
        t,
        "two.yaml",
        &format!(
            "{host}:\n  images:\n    team/app: ['ok']\n  tls-verify: false\n\
             localhost:{port}:\n  images:\n    team/app: ['ok']\n  tls-verify: false\n"
        ),
    );
    let both = t.join("both");
    let dest = format!("docker-archive:{}/", s(&both));
    let (out, _) = dh(t, 1, &["sync", "--src", "yaml", &two, &dest]);
    assert!(
        out.contains("is the archive of") && out.contains("--scoped"),
        "{out}"
    );
    assert_eq!(files_under(&both), ["team/app/ok.tar"]);
    dh(t, 0, &["sync", "--src", "yaml", "--scoped", &two, &dest]);
    assert_eq!(
        files_under(&both),
        [
            format!("{}/team/app/ok.tar", host.replace(':', "_")),
            format!("localhost_{port}/team/app/ok.tar"),
            "team/app/ok.tar".to_string(),
        ]
    );
    drop(server);
}
