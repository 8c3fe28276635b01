//! A bundle to a mirror: several images pushed to a registry prefix (`docker://HOST/`,
//! `docker://HOST/PREFIX/`), each to its own repository path, each blob uploaded once
//! and mounted into the other repositories that need it; checked with the registry's
//! own API, `dockhand digest` and skopeo against a real docker-registry.

use crate::common::build::{file, layer, put, tar_of, Save};
use crate::common::registry::*;
use crate::common::*;

use std::path::Path;
use std::process::Output;

use serde_json::Value;

/// dockhand with a private HOME and cache, `--tls-verify=false` after the subcommand.
fn run(tmp: &Path, args: &[&str]) -> Output {
    let mut all = vec![args[0], "--tls-verify=false"];
    all.extend_from_slice(&args[1..]);
    isolated_dockhand(tmp, &all)
        .output()
        .expect("running dockhand")
}

/// Run and require success; stdout and stderr together.
fn ok(tmp: &Path, args: &[&str]) -> String {
    let out = run(tmp, args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "dockhand {args:?} failed: {text}");
    text
}

/// Run and require exit status `code`; stderr.
fn fails(tmp: &Path, code: i32, args: &[&str]) -> String {
    let out = run(tmp, args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    stderr
}

/// The JSON body of `GET path` on the registry itself (not through the proxy).
fn api(fx: &RegistryFixture, path: &str) -> Value {
    let (status, body) = http_get(&fx.registry.addr, path).unwrap();
    assert_eq!(status, 200, "{path}: {body}");
    let start = body.find('{').expect("a JSON body");
    let end = body.rfind('}').expect("a JSON body");
    serde_json::from_str(&body[start..=end]).unwrap()
}

/// The registry's repositories, sorted.
fn catalog(fx: &RegistryFixture) -> Vec<String> {
    let doc = api(fx, "/v2/_catalog");
    let mut names: Vec<String> = doc["repositories"]
        .as_array()
        .map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect())
        .unwrap_or_default();
    names.sort();
    names
}

/// The tags of `repository`, sorted.
fn tags(fx: &RegistryFixture, repository: &str) -> Vec<String> {
    let doc = api(fx, &format!("/v2/{repository}/tags/list"));
    let mut tags: Vec<String> = doc["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    tags.sort();
    tags
}

/// The config digest of the image at `reference` (`docker://...`), as dockhand reads it.
fn config_of(tmp: &Path, reference: &str) -> String {
    let out = run(tmp, &["inspect", "--json", reference]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let configs = config_digests(&doc);
    assert_eq!(configs.len(), 1, "{doc}");
    configs[0].clone()
}

/// The digest the summary line `pushed docker://TARGET@sha256:...` gives for TARGET.
fn pushed_digest(summary: &str, target: &str) -> String {
    let prefix = format!("pushed docker://{target}@");
    let line = summary
        .lines()
        .find_map(|l| l.trim().strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no `{prefix}` in:\n{summary}"));
    line.trim().to_string()
}

/// A docker-save archive of one-layer images, each with the names given (none: an
/// untagged image, as `docker save <ID>` writes it), the first layer shared by all.
fn archive(dir: &Path, name: &str, images: &[&[&str]]) -> (String, Vec<String>) {
    let shared = layer("shared", b"the base every image here has");
    let mut entries = Vec::new();
    let mut manifest = Vec::new();
    let mut configs = Vec::new();
    for (i, names) in images.iter().enumerate() {
        let own = layer(&format!("own{i}"), format!("only in image {i}").as_bytes());
        let save = Save::with_layers(
            vec![shared.clone(), own],
            &format!("2024-01-0{}T00:00:00Z", i + 1),
        );
        entries.push(file(&save.config_name(), save.config.clone()));
        let mut paths = Vec::new();
        for (n, l) in save.layers.iter().enumerate() {
            let path = format!("i{i}l{n}/layer.tar");
            entries.push(file(&path, l.clone()));
            paths.push(path);
        }
        let tags: Option<Vec<&str>> = (!names.is_empty()).then(|| names.to_vec());
        manifest.push(serde_json::json!({
            "Config": save.config_name(), "RepoTags": tags, "Layers": paths,
        }));
        configs.push(sha256(&save.config));
    }
    entries.push(file(
        "manifest.json",
        serde_json::to_vec(&Value::Array(manifest)).unwrap(),
    ));
    (put(dir, name, &tar_of(&entries)), configs)
}

/// The fixture's images by config digest: docker-save-multi's README.
const APP: &str = "sha256:60aab187e084c89b131c945d46abb73c9043a54a613deb7dc00937fc5e93b5e3";
const DUP: &str = "sha256:8f7ee306570d99e23e069050a358ea003204e3d695b9cd1da31e97e3713411f2";
const BASE: &str = "sha256:51914c0e66d5cebc2ce7135505ebee9e07e80281a9f50cbbeacb096b7aedd4d0";

#[test]
fn a_bundle_to_a_bare_host_puts_each_image_at_its_own_path_each_blob_once() {
    let Some(fx) = RegistryFixture::builder().proxy().needs("skopeo").start() else {
        return;
    };
    let t = fx.dir();
    let addr = fx.addr().to_string();
    let multi = fixture("docker-save-multi");
    let dest = format!("docker://{addr}/");
    let summary = ok(t, &["convert", multi.input(), &dest]);
    assert_eq!(
        catalog(&fx),
        [
            "dockhand-fixture/multi-app",
            "dockhand/app",
            "dockhand/dup",
            "library/dockhand-multi-base"
        ]
    );
    // The blobs each repository's manifest names.
    let mut named: Vec<Vec<String>> = Vec::new();
    for (repository, tag, config) in [
        ("dockhand-fixture/multi-app", "1.0", APP),
        ("dockhand/app", "v2", APP),
        ("dockhand/dup", "1.0", DUP),
        ("library/dockhand-multi-base", "1.0", BASE),
    ] {
        assert_eq!(tags(&fx, repository), [tag], "{repository}");
        let reference = format!("docker://{addr}/{repository}:{tag}");
        assert_eq!(config_of(t, &reference), config, "{reference}");
        // The summary names the digest the registry now serves there.
        let digest = ok(t, &["digest", &reference]);
        assert_eq!(
            pushed_digest(&summary, &format!("{addr}/{repository}:{tag}")),
            digest.trim(),
            "{reference}"
        );
        // skopeo reads the same manifest, with the same config.
        let raw = skopeo(t, &["inspect", "--raw", "--tls-verify=false", &reference]);
        assert_eq!(sha256(&raw), digest.trim(), "{reference}");
        let manifest: Value = serde_json::from_slice(&raw).unwrap();
        assert_eq!(manifest["config"]["digest"], config, "{reference}");
        let mut blobs: Vec<String> = std::iter::once(&manifest["config"])
            .chain(manifest["layers"].as_array().unwrap())
            .map(|d| d["digest"].as_str().unwrap().to_string())
            .collect();
        blobs.sort();
        blobs.dedup();
        named.push(blobs);
    }
    // Each distinct blob uploaded once, into the first repository that needs it, and
    // mounted into every other repository whose manifest names it.
    let mut distinct: Vec<String> = named.iter().flatten().cloned().collect();
    distinct.sort();
    distinct.dedup();
    let in_all: usize = named.iter().map(Vec::len).sum();
    assert!(in_all > distinct.len(), "the fixture's images share blobs");
    let proxy = fx.proxy();
    let requests = proxy.requests();
    let started = requests
        .iter()
        .filter(|(m, p, _)| m == "POST" && p.contains("/blobs/uploads/") && !p.contains("mount="))
        .count();
    let mut finished: Vec<String> = requests
        .iter()
        .filter(|(m, p, s)| m == "PUT" && p.contains("/blobs/uploads/") && *s == 201)
        .map(|(_, p, _)| p.split("digest=").nth(1).unwrap().replace("%3A", ":"))
        .collect();
    finished.sort();
    assert_eq!(started, distinct.len(), "{requests:?}");
    assert_eq!(finished, distinct, "{requests:?}");
    assert_eq!(proxy.count("PATCH", "/blobs/uploads/", None), 0);
    assert_eq!(
        proxy.count("POST", "mount=", Some(201)),
        in_all - distinct.len(),
        "{requests:?}"
    );
    assert_eq!(proxy.count("POST", "mount=", None), in_all - distinct.len());
    // Again: every tag is there already; nothing is uploaded.
    proxy.reset_counters();
    ok(t, &["convert", multi.input(), &dest]);
    assert_eq!(proxy.count("PATCH", "/blobs/uploads/", None), 0);
    assert_eq!(proxy.count("PUT", "/blobs/uploads/", None), 0);
}

#[test]
fn a_bundle_goes_under_a_prefix_and_keeps_the_source_registry_when_scoped() {
    let Some(fx) = RegistryFixture::builder().start() else {
        return;
    };
    let t = fx.dir();
    let addr = fx.addr().to_string();
    let multi = fixture("docker-save-multi");
    let summary = ok(
        t,
        &[
            "convert",
            multi.input(),
            &format!("docker://{addr}/mirror/hub/"),
        ],
    );
    assert_eq!(
        catalog(&fx),
        [
            "mirror/hub/dockhand-fixture/multi-app",
            "mirror/hub/dockhand/app",
            "mirror/hub/dockhand/dup",
            "mirror/hub/library/dockhand-multi-base"
        ]
    );
    assert_eq!(
        config_of(t, &format!("docker://{addr}/mirror/hub/dockhand/dup:1.0")),
        DUP
    );
    let digest = ok(
        t,
        &[
            "digest",
            &format!("docker://{addr}/mirror/hub/dockhand/app:v2"),
        ],
    );
    assert_eq!(
        pushed_digest(&summary, &format!("{addr}/mirror/hub/dockhand/app:v2")),
        digest.trim()
    );

    // --scoped: the source registry stays in the path.
    ok(
        t,
        &[
            "convert",
            "--scoped",
            "--image",
            "example.com/dockhand/dup:1.0",
            "--image",
            "dockhand-multi-base:1.0",
            multi.input(),
            &format!("docker://{addr}/scoped/"),
        ],
    );
    let scoped: Vec<String> = catalog(&fx)
        .into_iter()
        .filter(|r| r.starts_with("scoped/"))
        .collect();
    assert_eq!(
        scoped,
        [
            "scoped/docker.io/library/dockhand-multi-base",
            "scoped/example.com/dockhand/dup"
        ]
    );
    assert_eq!(
        config_of(
            t,
            &format!("docker://{addr}/scoped/example.com/dockhand/dup:1.0")
        ),
        DUP
    );
    assert_eq!(
        config_of(
            t,
            &format!("docker://{addr}/scoped/docker.io/library/dockhand-multi-base:1.0")
        ),
        BASE
    );
    // A source registry with a port: its `:` is written `_` in the path, as sync does.
    let out = ok(
        t,
        &[
            "convert",
            "--scoped",
            multi.input(),
            &format!("docker://{addr}/again/"),
        ],
    );
    assert!(
        out.contains(&format!(
            "{addr}/again/localhost_5000/dockhand/app:v2@sha256:"
        )),
        "{out}"
    );
    assert!(catalog(&fx).contains(&"again/localhost_5000/dockhand/app".to_string()));
}

#[test]
fn two_images_on_one_target_are_refused_before_anything_is_pushed() {
    let Some(fx) = RegistryFixture::builder().proxy().start() else {
        return;
    };
    let t = fx.dir();
    let addr = fx.addr().to_string();
    let (clash, configs) = archive(t, "clash.tar", &[&["team/app:1"], &["quay.io/team/app:1"]]);
    let err = fails(t, 1, &["convert", &clash, &format!("docker://{addr}/")]);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("docker.io/team/app:1")
            && err.contains("quay.io/team/app:1")
            && err.contains(&format!("docker://{addr}/team/app:1"))
            && err.contains("--scoped"),
        "{err}"
    );
    assert!(catalog(&fx).is_empty());
    assert_eq!(
        fx.proxy().count("POST", "/blobs/uploads/", None),
        0,
        "{:?}",
        fx.proxy().requests()
    );
    // With the source registry kept, they no longer collide.
    ok(
        t,
        &["convert", "--scoped", &clash, &format!("docker://{addr}/")],
    );
    assert_eq!(catalog(&fx), ["docker.io/team/app", "quay.io/team/app"]);
    assert_eq!(
        config_of(t, &format!("docker://{addr}/docker.io/team/app:1")),
        configs[0]
    );
    assert_eq!(
        config_of(t, &format!("docker://{addr}/quay.io/team/app:1")),
        configs[1]
    );
}

#[test]
fn an_untagged_image_in_a_bundle_is_refused_before_anything_is_pushed() {
    let Some(fx) = RegistryFixture::builder().start() else {
        return;
    };
    let t = fx.dir();
    let addr = fx.addr().to_string();
    let (bundle, configs) = archive(t, "untagged.tar", &[&["team/named:1"], &[]]);
    let err = fails(t, 1, &["convert", &bundle, &format!("docker://{addr}/m/")]);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains(&configs[1])
            && err.contains("has no name")
            && err.contains("--tag")
            && err.contains("--image"),
        "{err}"
    );
    assert!(catalog(&fx).is_empty());
}

#[test]
fn one_repository_still_takes_every_image_under_its_own_tags() {
    let Some(fx) = RegistryFixture::builder().start() else {
        return;
    };
    let t = fx.dir();
    let addr = fx.addr().to_string();
    let (two, configs) = archive(t, "two.tar", &[&["team/a:1"], &["other/b:2"]]);
    let summary = ok(t, &["convert", &two, &format!("docker://{addr}/one/repo")]);
    assert_eq!(catalog(&fx), ["one/repo"]);
    assert_eq!(tags(&fx, "one/repo"), ["1", "2"]);
    assert_eq!(
        config_of(t, &format!("docker://{addr}/one/repo:1")),
        configs[0]
    );
    assert_eq!(
        config_of(t, &format!("docker://{addr}/one/repo:2")),
        configs[1]
    );
    let digest = ok(t, &["digest", &format!("docker://{addr}/one/repo:2")]);
    assert_eq!(
        pushed_digest(&summary, &format!("{addr}/one/repo:2")),
        digest.trim()
    );
    // Two images on one tag of that repository: refused, nothing pushed.
    let (clash, _) = archive(t, "clash.tar", &[&["team/a:1"], &["other/b:1"]]);
    let err = fails(
        t,
        1,
        &["convert", &clash, &format!("docker://{addr}/other/repo")],
    );
    assert!(err.contains("both be pushed"), "{err}");
    // Keeping the source registry in the path would not set them apart here.
    assert!(!err.contains("--scoped"), "{err}");
    assert_eq!(catalog(&fx), ["one/repo"]);
    // A bare host is Docker Hub's repository as Docker reads it: refused, saying how
    // to name the registry.
    let err = fails(t, 2, &["convert", &two, &format!("docker://{addr}")]);
    assert!(err.contains(&format!("docker://{addr}/")), "{err}");
}

/// `Basic base64(user:pass)`.
fn basic_value(user: &str, pass: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

#[test]
fn each_repository_under_a_prefix_gets_its_own_credentials_from_the_auth_file() {
    const USERS: [(&str, &str); 3] = [
        ("carol", "carol-whole-registry-pw"),
        ("alice", "alice-one-repository-pw"),
        ("bob", "bob-namespace-pw"),
    ];
    let Some(fx) = RegistryFixture::builder()
        .auth(Auth::basic_users(&USERS))
        .proxy()
        .start()
    else {
        return;
    };
    let t = fx.dir();
    let addr = fx.addr().to_string();
    let [carol, alice, bob] = USERS.map(|(u, p)| basic_value(u, p));
    // Entries matched as containers/image matches them: HOST/ns/repo, then HOST/ns,
    // then HOST.
    let entry = |(u, p): (&str, &str)| {
        use base64::Engine;
        serde_json::json!({"auth": base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))})
    };
    let auth = serde_json::json!({"auths": {
        addr.clone(): entry(USERS[0]),
        format!("{addr}/pre/one/app"): entry(USERS[1]),
        format!("{addr}/pre/two"): entry(USERS[2]),
    }});
    let authfile = t.join("auth.json");
    std::fs::write(&authfile, auth.to_string()).unwrap();
    let (bundle, configs) = archive(
        t,
        "three.tar",
        &[&["one/app:1"], &["two/x:1"], &["three/y:1"]],
    );
    ok(
        t,
        &[
            "convert",
            "--authfile",
            s(&authfile),
            &bundle,
            &format!("docker://{addr}/pre/"),
        ],
    );
    let requests = fx.proxy().authorized_requests();
    let login = format!("{}:{}", USERS[0].0, USERS[0].1);
    for (repository, config) in ["pre/one/app", "pre/two/x", "pre/three/y"]
        .iter()
        .zip(&configs)
    {
        let out = run(
            t,
            &[
                "inspect",
                "--json",
                "--creds",
                &login,
                &format!("docker://{addr}/{repository}:1"),
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            config_digests(&doc),
            std::slice::from_ref(config),
            "{repository}"
        );
    }
    // Each repository's requests carried its own entry's credentials, and only those.
    for (repository, own) in [
        ("pre/one/app", &alice),
        ("pre/two/x", &bob),
        ("pre/three/y", &carol),
    ] {
        let path = format!("/v2/{repository}/");
        let sent: Vec<&String> = requests
            .iter()
            .filter(|(_, p, a)| p.starts_with(&path) && !a.is_empty())
            .map(|(_, _, a)| a)
            .collect();
        assert!(sent.contains(&own), "{repository}: {requests:?}");
        assert!(
            sent.iter().all(|a| *a == own),
            "{repository} got another repository's credentials: {requests:?}"
        );
    }
    // No request of the prefix's own path or elsewhere carried alice's or bob's.
    for (_, path, authorization) in &requests {
        if *authorization == alice {
            assert!(
                path == "/v2/" || path.starts_with("/v2/pre/one/app/"),
                "{path}"
            );
        }
        if *authorization == bob {
            assert!(path == "/v2/" || path.starts_with("/v2/pre/two/"), "{path}");
        }
    }
}

#[test]
fn each_repository_under_a_prefix_follows_its_own_registries_conf_entry() {
    // No recording proxy: the registry itself answers a TLS handshake at once.
    let Some(fx) = RegistryFixture::builder().start() else {
        return;
    };
    let t = fx.dir();
    let addr = fx.addr().to_string();
    // Plain HTTP allowed for pre/one only; the prefix itself has no entry.
    let conf = t.join("registries.conf");
    std::fs::write(
        &conf,
        format!("[[registry]]\nprefix = \"{addr}/pre/one\"\ninsecure = true\n"),
    )
    .unwrap();
    // Without --tls-verify=false (which `run` adds): the configuration alone decides.
    let push = |bundle: &str| {
        isolated_dockhand(
            t,
            &[
                "convert",
                "--registries-conf",
                s(&conf),
                bundle,
                &format!("docker://{addr}/pre/"),
            ],
        )
        .output()
        .unwrap()
    };
    let (inside, configs) = archive(t, "inside.tar", &[&["one/a:1"], &["one/b:2"]]);
    let out = push(&inside);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(catalog(&fx), ["pre/one/a", "pre/one/b"]);
    assert_eq!(
        config_of(t, &format!("docker://{addr}/pre/one/b:2")),
        configs[1]
    );
    // An image landing outside pre/one is reached with certificate checks: this
    // registry speaks plain HTTP, so the push fails, naming the TLS problem.
    let (outside, _) = archive(t, "outside.tar", &[&["one/c:1"], &["two/d:1"]]);
    let out = push(&outside);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("plain HTTP"), "{err}");
    assert_eq!(catalog(&fx), ["pre/one/a", "pre/one/b"]);
}
