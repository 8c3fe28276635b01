//! The `docker://` transport against a real registry (Debian's docker-registry, the
//! CNCF distribution registry) on 127.0.0.1: pulls and pushes checked by skopeo and
//! docker, each kind of auth, retries and resumes through a fault-injecting proxy.
//!
//! Every dockhand run here gets its own HOME and cache directory inside the test's temp
//! dir, so no test reads the machine's credentials or writes its cache.

use crate::common::build::{file, layer, tar_of, Noise, Save};
use crate::common::registry::*;
use crate::common::*;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use base64::Engine;
use serde_json::Value;

const USER: &str = "pusher";
const PASS: &str = "pa55-w0rd-secret";

/// dockhand with a private HOME and cache, and no auth file from the environment.
fn dh_command(tmp: &Path, args: &[&str]) -> Command {
    isolated_dockhand(tmp, args)
}

fn dh_run(tmp: &Path, args: &[&str]) -> Output {
    dh_command(tmp, args).output().expect("running dockhand")
}

/// Run dockhand (with `--tls-verify=false` after the subcommand) and require success;
/// returns stdout.
fn dh(tmp: &Path, args: &[&str]) -> Vec<u8> {
    let out = dh_run(tmp, &with_plain_http(args));
    assert!(
        out.status.success(),
        "dockhand {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Run dockhand and require exit code 1 with one error line; returns stderr.
fn dh_fails(tmp: &Path, args: &[&str]) -> String {
    let out = dh_run(tmp, &with_plain_http(args));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
    assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    stderr
}

fn with_plain_http<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec![args[0], "--tls-verify=false"];
    all.extend_from_slice(&args[1..]);
    all
}

fn inspect_json(tmp: &Path, src: &str) -> Value {
    serde_json::from_slice(&dh(tmp, &["inspect", "--json", src])).unwrap()
}

fn image_ids(doc: &Value) -> Vec<String> {
    config_digests(doc)
}

/// A one-image docker-archive whose single layer is `size` random bytes (so that its
/// gzip is as big), tagged `big/one:1`.
fn big_archive(dir: &Path, size: usize, seed: u64) -> String {
    let save = Save::with_layers(
        vec![
            layer("small", b"a small first layer"),
            layer("noise", &Noise(seed).bytes(size)),
        ],
        "2024-01-01T00:00:00Z",
    );
    put_archive(dir, &format!("big{seed}.tar"), &save)
}

/// The stored size of all the layers of the image at `remote`, and the size and
/// digest of the biggest.
fn layer_sizes(tmp: &Path, remote: &str) -> (u64, u64, String) {
    let doc = inspect_json(tmp, remote);
    let layers = images(&doc)[0]["layers"].as_array().unwrap().clone();
    let size = |l: &Value| l["size"].as_u64().unwrap();
    let biggest = layers.iter().max_by_key(|l| size(l)).unwrap();
    (
        layers.iter().map(size).sum(),
        size(biggest),
        biggest["digest"].as_str().unwrap().to_string(),
    )
}

fn put_archive(dir: &Path, name: &str, save: &Save) -> String {
    crate::common::build::put(dir, name, &save.tar())
}

/// A two-image docker-archive: `two/a:1` and `two/b:2`, sharing their first layer.
fn two_image_archive(dir: &Path) -> (String, Vec<String>) {
    let shared = layer("shared", b"the base both images have");
    let a = Save::with_layers(
        vec![shared.clone(), layer("a", b"only in a")],
        "2024-01-01T00:00:00Z",
    );
    let b = Save::with_layers(
        vec![shared, layer("b", b"only in b")],
        "2024-01-02T00:00:00Z",
    );
    let mut entries = Vec::new();
    let mut manifest = Vec::new();
    for (save, prefix, tag) in [(&a, "a", "two/a:1"), (&b, "b", "two/b:2")] {
        entries.push(file(&save.config_name(), save.config.clone()));
        let mut paths = Vec::new();
        for (i, l) in save.layers.iter().enumerate() {
            let path = format!("{prefix}{i}/layer.tar");
            entries.push(file(&path, l.clone()));
            paths.push(path);
        }
        manifest.push(serde_json::json!({
            "Config": save.config_name(), "RepoTags": [tag], "Layers": paths,
        }));
    }
    entries.push(file(
        "manifest.json",
        serde_json::to_vec(&Value::Array(manifest)).unwrap(),
    ));
    let path = crate::common::build::put(dir, "two.tar", &tar_of(&entries));
    (path, vec![sha256(&a.config), sha256(&b.config)])
}

fn basic_fixture() -> String {
    fixture("docker-save-basic").input().to_string()
}

/// The manifest bytes skopeo reads for `reference`, and their digest.
fn remote_manifest(tmp: &Path, reference: &str, creds: Option<&str>) -> (Value, String) {
    let mut args = vec!["inspect", "--tls-verify=false", "--raw"];
    if let Some(c) = creds {
        args.extend(["--creds", c]);
    }
    args.push(reference);
    let raw = skopeo(tmp, &args);
    (serde_json::from_slice(&raw).unwrap(), sha256(&raw))
}

/// `skopeo copy SRC DST` into the plain-HTTP test registry.
fn skopeo_push(tmp: &Path, src: &str, dst: &str) {
    skopeo(tmp, &["copy", "--dest-tls-verify=false", src, dst]);
}

#[test]
fn skopeo_pushes_dockhand_pulls_into_every_format() {
    let Some(fx) = RegistryFixture::builder().needs("skopeo").start() else {
        return;
    };
    let t = fx.dir();
    let f = fixture("skopeo-docker-archive");
    let remote = fx.remote("pulled/app:1");
    skopeo_push(t, &format!("docker-archive:{}", f.input()), &remote);
    let want = f.config_digests();
    // inspect reads the manifest and config only.
    let doc = inspect_json(t, &remote);
    assert_eq!(image_ids(&doc), want);
    assert_eq!(doc["format"], "docker", "{doc}");
    assert_eq!(
        tags_of(&images(&doc)[0]),
        vec![format!("{}/pulled/app:1", fx.registry.addr)]
    );
    let out = dh(t, &["verify", &remote]);
    assert!(out.is_empty());
    for (to, name) in [
        ("docker-archive", "out.tar"),
        ("docker-dir", "out-docker-dir"),
        ("oci", "out-oci"),
        ("oci-archive", "out-oci.tar"),
        ("dir", "out-dir"),
    ] {
        let dest = t.join(name);
        dh(t, &["convert", "-q", "--to", to, &remote, s(&dest)]);
        let doc = inspect(s(&dest));
        assert_eq!(image_ids(&doc), want, "{to}");
        ok(&["verify", s(&dest)]);
    }
    // Registry to registry: skopeo's Docker v2 manifest is pushed as it is (same
    // digest), every blob mounted or uploaded.
    let copied = fx.remote("copied/app:1");
    dh(t, &["convert", "-q", &remote, &copied]);
    let (source_manifest, source_digest) = remote_manifest(t, &remote, None);
    let (_, copied_digest) = remote_manifest(t, &copied, None);
    assert_eq!(
        source_manifest["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert_eq!(copied_digest, source_digest);
    // The cache kept nothing once the output held the blobs.
    let cache = t.join("xdg-cache/dockhand/blobs/sha256");
    let left: Vec<_> = std::fs::read_dir(&cache)
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_pulled_archive_loads_into_docker_with_the_same_id() {
    let Some(fx) = RegistryFixture::builder().needs("skopeo").docker().start() else {
        return;
    };
    let t = fx.dir();
    let f = fixture("skopeo-oci");
    let remote = fx.remote("load/me:2");
    skopeo_push(t, &format!("oci:{}", f.input()), &remote);
    // Straight into docker load, through stdout.
    let mut pull = dh_command(t, &["convert", "--tls-verify=false", "-q", &remote, "-"]);
    pull.stdout(Stdio::piped());
    let mut child = pull.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let load = Command::new("docker")
        .args(["load"])
        .stdin(stdout)
        .output()
        .unwrap();
    assert!(child.wait().unwrap().success());
    assert!(
        load.status.success(),
        "{}",
        String::from_utf8_lossy(&load.stderr)
    );
    let loaded = String::from_utf8_lossy(&load.stdout).into_owned();
    let name = format!("{}/load/me:2", fx.registry.addr);
    assert!(loaded.contains(&name), "{loaded}");
    let id = tool("docker", &["image", "inspect", "-f", "{{.Id}}", &name]);
    assert_eq!(String::from_utf8_lossy(&id).trim(), f.config_digests()[0]);
    tool("docker", &["rmi", &name]);
}

#[test]
fn a_push_is_read_back_by_skopeo_and_docker_with_the_same_ids() {
    let Some(fx) = RegistryFixture::builder().needs("skopeo").start() else {
        return;
    };
    let t = fx.dir();
    let input = basic_fixture();
    let want = fixture("docker-save-basic").config_digests();
    let remote = fx.remote("pushed/basic:1.0");
    dh(t, &["convert", "-q", &input, &remote]);
    let (manifest, digest) = remote_manifest(t, &remote, None);
    assert_eq!(manifest["config"]["digest"], want[0].as_str());
    // A docker-archive is pushed as what it is, Docker v2 schema 2 with gzip-compressed
    // layers, as docker push does.
    assert_eq!(
        manifest["mediaType"], "application/vnd.docker.distribution.manifest.v2+json",
        "{manifest}"
    );
    assert_eq!(
        manifest["config"]["mediaType"], "application/vnd.docker.container.image.v1+json",
        "{manifest}"
    );
    for l in manifest["layers"].as_array().unwrap() {
        assert_eq!(
            l["mediaType"], "application/vnd.docker.image.rootfs.diff.tar.gzip",
            "{manifest}"
        );
    }
    // Pulled back, the manifest is the same bytes (same digest) and the image the same.
    let doc = inspect_json(t, &remote);
    assert_eq!(manifest_digests(&doc), vec![digest.clone()]);
    assert_eq!(image_ids(&doc), want);
    let back = t.join("back.tar");
    dh(t, &["convert", "-q", &remote, s(&back)]);
    assert_eq!(
        identity(&inspect(s(&back)))
            .iter()
            .map(|i| i.0.clone())
            .collect::<Vec<_>>(),
        want
    );
    // skopeo copies it out again, to an archive dockhand reads with the same ID.
    let via_skopeo = t.join("skopeo.tar");
    skopeo(
        t,
        &[
            "copy",
            "--src-tls-verify=false",
            &remote,
            &format!("docker-archive:{}", s(&via_skopeo)),
        ],
    );
    assert_eq!(image_ids(&inspect(s(&via_skopeo))), want);
    if have_docker(&test_name()) {
        let _docker = docker_lock();
        let name = format!("{}/pushed/basic:1.0", fx.registry.addr);
        tool("docker", &["pull", "-q", &name]);
        let id = tool("docker", &["image", "inspect", "-f", "{{.Id}}", &name]);
        assert_eq!(String::from_utf8_lossy(&id).trim(), want[0]);
        let repo_digest = tool(
            "docker",
            &["image", "inspect", "-f", "{{index .RepoDigests 0}}", &name],
        );
        assert!(
            String::from_utf8_lossy(&repo_digest).contains(&digest),
            "{}",
            String::from_utf8_lossy(&repo_digest)
        );
        tool("docker", &["rmi", &name]);
    }
}

#[test]
fn a_push_writes_the_manifests_the_source_is_or_the_format_asked() {
    let Some(fx) = RegistryFixture::builder().start() else {
        return;
    };
    let t = fx.dir();
    let media = |remote: &str| {
        let (manifest, _) = remote_manifest(t, remote, None);
        let layers: Vec<String> = manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["mediaType"].as_str().unwrap().to_string())
            .collect();
        (
            manifest["mediaType"].as_str().unwrap().to_string(),
            manifest["config"]["mediaType"]
                .as_str()
                .unwrap()
                .to_string(),
            layers,
        )
    };
    let oci = fixture("skopeo-oci");
    // An OCI image is pushed as OCI, its manifest byte for byte.
    let remote = fx.remote("formats/oci:1");
    dh(t, &["convert", "-q", oci.input(), &remote]);
    let (manifest_type, config_type, _) = media(&remote);
    assert_eq!(manifest_type, "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(config_type, "application/vnd.oci.image.config.v1+json");
    // --format chooses: a docker-archive as OCI, an OCI image as Docker v2.
    let as_oci = fx.remote("formats/docker-as-oci:1");
    dh(
        t,
        &[
            "convert",
            "-q",
            "--format",
            "oci",
            &basic_fixture(),
            &as_oci,
        ],
    );
    let (manifest_type, _, layers) = media(&as_oci);
    assert_eq!(manifest_type, "application/vnd.oci.image.manifest.v1+json");
    assert!(
        layers
            .iter()
            .all(|l| l == "application/vnd.oci.image.layer.v1.tar+gzip"),
        "{layers:?}"
    );
    let as_v2 = fx.remote("formats/oci-as-v2s2:1");
    dh(
        t,
        &["convert", "-q", "--format", "v2s2", oci.input(), &as_v2],
    );
    let (manifest_type, config_type, layers) = media(&as_v2);
    assert_eq!(
        manifest_type,
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert_eq!(
        config_type,
        "application/vnd.docker.container.image.v1+json"
    );
    assert!(
        layers
            .iter()
            .all(|l| l.starts_with("application/vnd.docker.image.rootfs.diff.tar")),
        "{layers:?}"
    );
    // Pulled back, both are the image they were.
    for remote in [&as_oci, &as_v2] {
        let back = t.join("back");
        let _ = std::fs::remove_dir_all(&back);
        dh(t, &["convert", "-q", remote, s(&back)]);
        ok(&["verify", s(&back)]);
    }
    assert_eq!(image_ids(&inspect_json(t, &as_v2)), oci.config_digests());
    // Docker v2 has no zstd layers: said before anything is pushed.
    let out = dh_run(
        t,
        &with_plain_http(&[
            "convert",
            "--format",
            "v2s2",
            "--layer-compression",
            "zstd",
            &basic_fixture(),
            &fx.remote("formats/never:1"),
        ]),
    );
    assert_eq!(out.status.code(), Some(2));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("cannot name zstd layers") && said.contains("--format oci"),
        "{said}"
    );
    // A dir layout takes either, and skopeo reads the Docker v2 one as that image.
    let dir = t.join("v2dir");
    ok(&[
        "convert",
        "-q",
        "--format",
        "v2s2",
        oci.input(),
        &format!("dir:{}", s(&dir)),
    ]);
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    let seen = tool(
        "skopeo",
        &["inspect", "--config", &format!("dir:{}", s(&dir))],
    );
    let config: Value = serde_json::from_slice(&seen).unwrap();
    assert_eq!(config["rootfs"]["type"], "layers", "{config}");
    // A layout takes no Docker v2 manifests, a docker archive no format at all.
    let layout = t.join("layout");
    for (dst, why) in [
        (
            format!("oci:{}", s(&layout)),
            "an OCI layout lists OCI manifests",
        ),
        (
            s(&t.join("out.tar")).to_string(),
            "a docker archive holds no manifests",
        ),
    ] {
        let out = run(&["convert", "--format", "v2s2", &basic_fixture(), &dst]);
        let said = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{said}");
        assert!(said.contains(why), "{said}");
    }
    assert!(!layout.exists() && !t.join("out.tar").exists());
}

#[test]
fn every_format_pushes_and_layer_compression_chooses_the_layers() {
    let Some(fx) = RegistryFixture::builder().start() else {
        return;
    };
    let t = fx.dir();
    for name in [
        "skopeo-oci",
        "skopeo-oci-zstd",
        "skopeo-oci-uncompressed",
        "skopeo-dir",
        "docker-save-xz",
        "skopeo-oci-archive",
    ] {
        let f = fixture(name);
        let remote = format!("docker://{}/formats/{name}:1", fx.registry.addr);
        dh(t, &["convert", "-q", f.input(), &remote]);
        let doc = inspect_json(t, &remote);
        assert_eq!(image_ids(&doc), f.config_digests(), "{name}");
        dh(t, &["verify", &remote]);
        let source = inspect(f.input());
        let compressions = |d: &Value| -> Vec<String> {
            images(d)[0]["layers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["compression"].as_str().unwrap().to_string())
                .collect()
        };
        // Compressed layers are kept as they are; uncompressed ones are gzipped.
        let expected: Vec<String> = compressions(&source)
            .into_iter()
            .map(|c| {
                if c == "gzip" || c == "zstd" {
                    c
                } else {
                    "gzip".into()
                }
            })
            .collect();
        assert_eq!(compressions(&doc), expected, "{name}");
        if name == "skopeo-oci" {
            // Every layer kept as stored: the source's manifest, byte for byte.
            assert_eq!(manifest_digests(&doc), manifest_digests(&source));
        }
    }
    for (choice, want) in [("zstd", "zstd"), ("none", "none"), ("gzip", "gzip")] {
        let remote = format!("docker://{}/formats/chosen:{choice}", fx.registry.addr);
        dh(
            t,
            &[
                "convert",
                "-q",
                "--layer-compression",
                choice,
                &basic_fixture(),
                &remote,
            ],
        );
        let doc = inspect_json(t, &remote);
        assert_eq!(
            image_ids(&doc),
            fixture("docker-save-basic").config_digests()
        );
        for l in images(&doc)[0]["layers"].as_array().unwrap() {
            assert_eq!(l["compression"], want, "{choice}");
        }
        dh(t, &["verify", &remote]);
    }
}

#[test]
fn stdin_goes_to_a_registry_and_a_registry_to_stdout() {
    let Some(fx) = RegistryFixture::builder().start() else {
        return;
    };
    let t = fx.dir();
    let input = std::fs::read(basic_fixture()).unwrap();
    let remote = fx.remote("piped/in:1");
    let mut cmd = dh_command(t, &["convert", "--tls-verify=false", "-q", "-", &remote]);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(&input).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let archive = dh(t, &["convert", "-q", &remote, "-"]);
    let back = crate::common::build::put(t, "back.tar", &archive);
    assert_eq!(
        image_ids(&inspect(&back)),
        fixture("docker-save-basic").config_digests()
    );
    ok(&["verify", &back]);
}

#[test]
fn basic_auth_takes_creds_and_auth_files_and_never_shows_the_password() {
    let Some(fx) = RegistryFixture::builder()
        .auth(Auth::basic(USER, PASS))
        .start()
    else {
        return;
    };
    let t = fx.dir();
    let creds = format!("{USER}:{PASS}");
    let remote = fx.remote("private/app:1");
    let input = basic_fixture();
    // No credentials: refused, with a hint.
    let err = dh_fails(t, &["convert", "-q", &input, &remote]);
    assert!(err.contains("--creds"), "{err}");
    // Wrong ones: refused, and neither password is shown.
    let err = dh_fails(
        t,
        &[
            "convert",
            "-q",
            "--creds",
            &format!("{USER}:wrong-one"),
            &input,
            &remote,
        ],
    );
    assert!(!err.contains("wrong-one") && !err.contains(PASS), "{err}");
    dh(t, &["convert", "-q", "--creds", &creds, &input, &remote]);
    // An auth file (podman's format) gives the same access.
    let auth = t.join("auth.json");
    let encoded = base64::engine::general_purpose::STANDARD.encode(creds.as_bytes());
    std::fs::write(
        &auth,
        serde_json::to_vec(
            &serde_json::json!({"auths": {fx.registry.addr.clone(): {"auth": encoded}}}),
        )
        .unwrap(),
    )
    .unwrap();
    let doc = inspect_json_with(t, &["--authfile", s(&auth)], &remote);
    assert_eq!(
        image_ids(&doc),
        fixture("docker-save-basic").config_digests()
    );
    // So does docker's config.json in HOME.
    let docker_dir = t.join("home/.docker");
    std::fs::create_dir_all(&docker_dir).unwrap();
    std::fs::copy(&auth, docker_dir.join("config.json")).unwrap();
    let out = t.join("pulled.tar");
    dh(t, &["convert", "-q", &remote, s(&out)]);
    ok(&["verify", s(&out)]);
    let tags = dh(t, &["tags", &fx.remote("private/app")]);
    assert_eq!(String::from_utf8_lossy(&tags), "1\n");
}

fn inspect_json_with(tmp: &Path, extra: &[&str], src: &str) -> Value {
    let mut args = vec!["inspect", "--json"];
    args.extend_from_slice(extra);
    args.push(src);
    serde_json::from_slice(&dh(tmp, &args)).unwrap()
}

#[test]
fn bearer_tokens_are_fetched_once_per_scope() {
    let Some(fx) = RegistryFixture::builder()
        .auth(Auth::token(USER, PASS, true))
        .start()
    else {
        return;
    };
    let t = fx.dir();
    let creds = format!("{USER}:{PASS}");
    let remote = fx.remote("tokens/app:1");
    let input = basic_fixture();
    // Anonymous pull rights do not allow a push.
    let err = dh_fails(t, &["convert", "-q", &input, &remote]);
    assert!(err.contains("registry"), "{err}");
    dh(t, &["convert", "-q", "--creds", &creds, &input, &remote]);
    let before = fx.registry.token_requests();
    // An anonymous pull: one token for the repository's pull scope, whatever the number
    // of blobs.
    let out = t.join("anon.tar");
    dh(t, &["convert", "-q", &remote, s(&out)]);
    let used = fx.registry.token_requests() - before;
    assert!(
        (1..=2).contains(&used),
        "{used} token requests for one pull"
    );
    ok(&["verify", s(&out)]);
    let err = dh_fails(
        t,
        &[
            "convert",
            "-q",
            "--creds",
            &format!("{USER}:nope"),
            &remote,
            s(&t.join("x.tar")),
        ],
    );
    assert!(err.contains("refused") && !err.contains("nope"), "{err}");
    assert!(!t.join("x.tar").exists());
}

#[test]
fn a_multi_image_archive_pushes_each_image_to_its_tag() {
    let Some(fx) = RegistryFixture::builder().start() else {
        return;
    };
    let t = fx.dir();
    let (archive, ids) = two_image_archive(t);
    let repo = fx.remote("many/images");
    dh(t, &["convert", "-q", &archive, &repo]);
    let tags = String::from_utf8(dh(t, &["tags", &repo])).unwrap();
    let mut tags: Vec<&str> = tags.lines().collect();
    tags.sort();
    assert_eq!(tags, ["1", "2"]);
    assert_eq!(
        image_ids(&inspect_json(t, &format!("{repo}:1"))),
        vec![ids[0].clone()]
    );
    assert_eq!(
        image_ids(&inspect_json(t, &format!("{repo}:2"))),
        vec![ids[1].clone()]
    );
    // A tag in the destination names one image: two are an error.
    let err = dh_fails(t, &["convert", "-q", &archive, &format!("{repo}:x")]);
    assert!(
        err.contains("--image") || err.contains("one image"),
        "{err}"
    );
    // Two images that would land on the same tag are refused before anything is pushed.
    let multi = fixture("docker-save-multi");
    let err = dh_fails(t, &["convert", "-q", multi.input(), &fx.remote("clash/r")]);
    assert!(err.contains("both be pushed"), "{err}");
}

#[test]
fn pushes_skip_blobs_the_registry_has_and_mount_from_other_repositories() {
    let Some(fx) = RegistryFixture::builder().proxy().start() else {
        return;
    };
    let t = fx.dir();
    let f = fixture("skopeo-oci");
    let first = fx.remote("mount/from:1");
    dh(t, &["convert", "-q", f.input(), &first]);
    // Again: every blob is there, so nothing is uploaded.
    fx.proxy().reset_counters();
    dh(t, &["convert", "-q", f.input(), &first]);
    let uploads = |p: &Proxy| {
        p.requests()
            .into_iter()
            .filter(|(m, path, _)| (m == "POST" || m == "PATCH") && path.contains("/blobs/uploads"))
            .collect::<Vec<_>>()
    };
    assert!(
        uploads(fx.proxy()).is_empty(),
        "{:?}",
        fx.proxy().requests()
    );
    // From that repository to another of the same registry: blobs are mounted.
    fx.proxy().reset_counters();
    let second = fx.remote("mount/to:1");
    dh(t, &["convert", "-q", &first, &second]);
    let requests = fx.proxy().requests();
    let mounts = fx.proxy().count("POST", "mount=", Some(201));
    let layers = images(&inspect(f.input()))[0]["layers"]
        .as_array()
        .unwrap()
        .len();
    // Every layer, and the config, which sits in the same repository.
    assert_eq!(mounts, layers + 1, "{requests:?}");
    assert!(
        !requests.iter().any(|(m, _, _)| m == "PATCH"),
        "{requests:?}"
    );
    assert_eq!(
        manifest_digests(&inspect_json(t, &second)),
        manifest_digests(&inspect(f.input()))
    );
}

#[test]
fn a_blob_an_earlier_run_pushed_is_mounted_into_another_repository() {
    let Some(fx) = RegistryFixture::builder().proxy().start() else {
        return;
    };
    let t = fx.dir();
    let f = fixture("skopeo-oci");
    dh(t, &["convert", "-q", f.input(), &fx.remote("seen/first:1")]);
    // The same local image to another repository: nothing in the source says where its
    // blobs are, but the cache remembers where the first run put them.
    fx.proxy().reset_counters();
    dh(
        t,
        &["convert", "-q", f.input(), &fx.remote("seen/second:1")],
    );
    let requests = fx.proxy().requests();
    let blobs = images(&inspect(f.input()))[0]["layers"]
        .as_array()
        .unwrap()
        .len()
        + 1;
    assert_eq!(
        fx.proxy().count("POST", "mount=", Some(201)),
        blobs,
        "{requests:?}"
    );
    let uploads = |requests: &[(String, String, u16)]| {
        requests
            .iter()
            .filter(|(m, path, _)| (m == "PATCH" || m == "PUT") && path.contains("/blobs/uploads"))
            .count()
    };
    assert_eq!(uploads(&requests), 0, "{requests:?}");
    // A stale record (the first repository deleted from storage) costs a refused mount
    // and an upload, not the push.
    std::fs::remove_dir_all(
        fx.registry
            .storage_dir()
            .join("docker/registry/v2/repositories/seen"),
    )
    .unwrap();
    fx.proxy().reset_counters();
    dh(t, &["convert", "-q", f.input(), &fx.remote("seen/third:1")]);
    let pulled = t.join("third");
    dh(
        t,
        &["convert", "-q", &fx.remote("seen/third:1"), s(&pulled)],
    );
    ok(&["verify", s(&pulled)]);
    let requests = fx.proxy().requests();
    assert!(uploads(&requests) > 0, "{requests:?}");
}

#[test]
fn transient_failures_are_retried_and_counted() {
    let Some(fx) = RegistryFixture::builder().proxy().start() else {
        return;
    };
    let t = fx.dir();
    let remote = fx.remote("flaky/app:1");
    dh(t, &["convert", "-q", &basic_fixture(), &remote]);
    fx.proxy().reset_counters();
    fx.proxy().inject("GET", "/manifests/", 429, 2, Some(1));
    fx.proxy().inject("GET", "/blobs/sha256:", 500, 1, None);
    fx.proxy().inject("HEAD", "/blobs/", 503, 1, None);
    let out = t.join("out.tar");
    dh(t, &["convert", "-q", &remote, s(&out)]);
    ok(&["verify", s(&out)]);
    let statuses: Vec<u16> = fx.proxy().requests().iter().map(|r| r.2).collect();
    assert_eq!(
        statuses.iter().filter(|&&s| s == 429).count(),
        2,
        "{statuses:?}"
    );
    assert!(statuses.contains(&500), "{statuses:?}");
    // Without retries, the first 503 is the answer, named in the error.
    fx.proxy().inject("GET", "/manifests/", 503, 1, None);
    let err = dh_fails(
        t,
        &[
            "convert",
            "-q",
            "--retry-times",
            "0",
            &remote,
            s(&t.join("no.tar")),
        ],
    );
    assert!(err.contains("503"), "{err}");
    assert!(!t.join("no.tar").exists());
}

#[test]
fn an_interrupted_pull_resumes_where_it_stopped() {
    let Some(fx) = RegistryFixture::builder().proxy().start() else {
        return;
    };
    let t = fx.dir();
    let size = 12 << 20;
    let archive = big_archive(t, size, 11);
    let remote = fx.remote("resume/big:1");
    dh(t, &["convert", "-q", &archive, &remote]);
    let (total, big, digest) = layer_sizes(t, &remote);
    let big_path = format!("/blobs/{digest}");
    let cache = t.join("cache");
    let out = t.join("out.tar");
    // The connection drops after 5 MiB of the big layer, and retries are off: the pull
    // fails, no output appears, and the cache keeps what arrived.
    fx.proxy().reset_counters();
    let cut = 5 << 20;
    // Twice: the layer is fetched ahead (into the cache) and then resumed by the
    // output's own read, each cut once.
    fx.proxy().cut_after("GET", &big_path, cut, 2);
    let cache_arg = s(&cache).to_string();
    let err = dh_fails(
        t,
        &[
            "convert",
            "-q",
            "--retry-times",
            "0",
            "--cache",
            &cache_arg,
            &remote,
            s(&out),
        ],
    );
    assert!(!out.exists(), "{err}");
    // The small layer may or may not have been fetched first: the cut fell on one blob.
    let first_run = fx.proxy().blob_bytes_served();
    // Run again: only the rest is fetched.
    fx.proxy().reset_counters();
    dh(
        t,
        &["convert", "-q", "--cache", &cache_arg, &remote, s(&out)],
    );
    ok(&["verify", s(&out)]);
    let second_run = fx.proxy().blob_bytes_served();
    assert!(
        second_run + cut <= total + 4096,
        "second run fetched {second_run} of {total} bytes after {first_run} in the first"
    );
    let ranged = fx.proxy().count("GET", "/blobs/", Some(206));
    assert_eq!(ranged, 1, "{:?}", fx.proxy().requests());
    // Within one run, a cut is resumed with a Range request, not started again.
    std::fs::remove_file(&out).unwrap();
    fx.proxy().reset_counters();
    fx.proxy().cut_after("GET", &big_path, cut, 1);
    dh(t, &["convert", "-q", "--no-cache", &remote, s(&out)]);
    ok(&["verify", s(&out)]);
    assert!(
        fx.proxy().blob_bytes_served() <= total + 4096,
        "{} served for {total} ({big} in the big layer)",
        fx.proxy().blob_bytes_served()
    );
}

#[test]
fn an_interrupted_push_resumes_or_starts_the_session_again() {
    let Some(fx) = RegistryFixture::builder().proxy().start() else {
        return;
    };
    let t = fx.dir();
    // 20 MiB of noise: three chunks once gzipped.
    let archive = big_archive(t, 20 << 20, 5);
    let remote = fx.remote("upload/big:1");
    // A failed chunk: the upload's status says where to go on, in the same session.
    fx.proxy().inject("PATCH", "/blobs/uploads/", 503, 1, None);
    dh(t, &["convert", "-q", &archive, &remote]);
    let requests = fx.proxy().requests();
    let posts = fx.proxy().count("POST", "/blobs/uploads", None);
    let status_gets = fx.proxy().count("GET", "/blobs/uploads/", Some(204));
    assert_eq!(status_gets, 1, "{requests:?}");
    // One session per blob pushed (two layers and the config).
    assert_eq!(posts, 3, "{requests:?}");
    let doc = inspect_json(t, &remote);
    dh(t, &["verify", &remote]);
    // A chunk cut off mid-body: distribution drops the session, and the blob is sent
    // again in a new one.
    let remote2 = fx.remote("upload/again:1");
    fx.proxy().reset_counters();
    fx.proxy()
        .cut_upload_after("PATCH", "/blobs/uploads/", 1 << 20, 1);
    // Without the cache's record, which would mount the blobs from the first push.
    dh(t, &["convert", "-q", "--no-cache", &archive, &remote2]);
    let posts = fx.proxy().count("POST", "/blobs/uploads", None);
    assert_eq!(posts, 4, "{:?}", fx.proxy().requests());
    dh(t, &["verify", &remote2]);
    assert_eq!(image_ids(&inspect_json(t, &remote2)), image_ids(&doc));
}

#[test]
fn tags_follow_link_pagination_and_hostile_answers_are_bounded() {
    // A scripted registry: the tag list in three pages, a manifest over the size cap,
    // a manifest whose stated digest is not its own, and a redirect loop.
    let big = vec![b' '; 5 << 20];
    let server = Scripted::start(move |path| match path {
        "/v2/" => (200, vec![], b"{}".to_vec()),
        "/v2/r/tags/list" => (
            200,
            vec![(
                "Link",
                "</v2/r/tags/list?last=b&n=2>; rel=\"next\"".to_string(),
            )],
            br#"{"name":"r","tags":["a","b"]}"#.to_vec(),
        ),
        "/v2/r/tags/list?last=b&n=2" => (
            200,
            vec![(
                "Link",
                "</v2/r/tags/list?last=d&n=2>; rel=\"next\"".to_string(),
            )],
            br#"{"name":"r","tags":["c","d"]}"#.to_vec(),
        ),
        "/v2/r/tags/list?last=d&n=2" => (200, vec![], br#"{"name":"r","tags":["e"]}"#.to_vec()),
        "/v2/loop/tags/list" => (
            200,
            vec![("Link", "</v2/loop/tags/list>; rel=\"next\"".to_string())],
            br#"{"tags":["x"]}"#.to_vec(),
        ),
        "/v2/r/manifests/huge" => (
            200,
            vec![(
                "Content-Type",
                "application/vnd.oci.image.manifest.v1+json".to_string(),
            )],
            big.clone(),
        ),
        "/v2/r/manifests/lying" => (
            200,
            vec![
                (
                    "Content-Type",
                    "application/vnd.oci.image.manifest.v1+json".to_string(),
                ),
                (
                    "Docker-Content-Digest",
                    format!("sha256:{}", "0".repeat(64)),
                ),
            ],
            br#"{"schemaVersion":2,"config":{"digest":"sha256:00","size":1},"layers":[]}"#.to_vec(),
        ),
        "/v2/r/manifests/redirect" => (
            307,
            vec![("Location", "/v2/r/manifests/redirect".to_string())],
            vec![],
        ),
        _ => (
            404,
            vec![],
            br#"{"errors":[{"code":"NOT_FOUND","message":"no"}]}"#.to_vec(),
        ),
    });
    let tmp = tempdir();
    let t = tmp.path();
    let base = format!("docker://{}", server.addr);
    let tags = dh(t, &["tags", &format!("{base}/r")]);
    assert_eq!(String::from_utf8_lossy(&tags), "a\nb\nc\nd\ne\n");
    let err = dh_fails(t, &["inspect", &format!("{base}/r:huge")]);
    assert!(err.contains("limit"), "{err}");
    let err = dh_fails(t, &["inspect", &format!("{base}/r:lying")]);
    assert!(err.contains("digest mismatch"), "{err}");
    let err = dh_fails(
        t,
        &[
            "inspect",
            "--retry-times",
            "0",
            &format!("{base}/r:redirect"),
        ],
    );
    assert!(err.contains("registry"), "{err}");
    let err = dh_fails(t, &["inspect", &format!("{base}/r:absent")]);
    assert!(err.contains("manifest unknown"), "{err}");
    // A next page that is the same page again is followed a bounded number of times...
    // but never forever: it ends with an error, not a hang.
    let out = dh_run(t, &with_plain_http(&["tags", &format!("{base}/loop")]));
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn a_multi_platform_index_is_pulled_by_platform_or_kept_whole_with_all() {
    // Two platforms: linux/amd64 and linux/arm64.
    let Some(layout) = corpus_item("stereoscope/multiplatform_oci_dir") else {
        return;
    };
    let Some(fx) = RegistryFixture::builder().needs("skopeo").start() else {
        return;
    };
    let t = fx.dir();
    let source = format!("oci:{}:latest", s(&layout));
    let index_digest = {
        let index: Value =
            serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
        index["manifests"][0]["digest"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let by_platform = |p: &str| {
        image_ids(&inspect_json_with(
            t,
            &["--platform", p],
            &format!("oci:{}", s(&layout)),
        ))
    };
    let (amd64, arm64) = (by_platform("linux/amd64"), by_platform("linux/arm64"));
    assert_ne!(amd64, arm64);
    let remote = fx.remote("plat/multi:1");
    skopeo(
        t,
        &["copy", "--all", "--dest-tls-verify=false", &source, &remote],
    );
    // One platform: the host's by default, or the one asked for.
    assert_eq!(
        image_ids(&inspect_json_with(
            t,
            &["--platform", "linux/arm64"],
            &remote
        )),
        arm64
    );
    assert_eq!(
        image_ids(&inspect_json_with(
            t,
            &["--platform", "linux/amd64"],
            &remote
        )),
        amd64
    );
    let arm = t.join("arm.tar");
    dh(
        t,
        &[
            "convert",
            "-q",
            "--platform",
            "linux/arm64",
            &remote,
            s(&arm),
        ],
    );
    assert_eq!(image_ids(&inspect(s(&arm))), arm64);
    // Every platform, the index kept whole: pulled into a layout, then pushed from it.
    let whole = t.join("whole");
    dh(t, &["convert", "-q", "--all", &remote, s(&whole)]);
    let index: Value =
        serde_json::from_slice(&std::fs::read(whole.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1, "{index}");
    assert_eq!(index["manifests"][0]["digest"], index_digest.as_str());
    let mut ids = image_ids(&inspect_json_with(t, &["--all"], s(&whole)));
    ids.sort();
    let mut want = [amd64.clone(), arm64.clone()].concat();
    want.sort();
    assert_eq!(ids, want);
    ok(&["verify", s(&whole)]);
    // A destination reference names the index kept whole, as the README's mirror
    // example does: in a layout, an archive (by --tag) and a registry alike.
    let mirror = t.join("mirror");
    dh(
        t,
        &[
            "convert",
            "-q",
            "--all",
            &remote,
            &format!("oci:{}:1", s(&mirror)),
        ],
    );
    let index: Value =
        serde_json::from_slice(&std::fs::read(mirror.join("index.json")).unwrap()).unwrap();
    let listed = index["manifests"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{index}");
    assert_eq!(listed[0]["digest"], index_digest.as_str());
    assert_eq!(
        listed[0]["annotations"]["org.opencontainers.image.ref.name"],
        "1"
    );
    let archive = t.join("mirror.tar");
    dh(
        t,
        &[
            "convert",
            "-q",
            "--all",
            "--tag",
            "mirror/multi:2",
            &remote,
            &format!("oci-archive:{}", s(&archive)),
        ],
    );
    let named = inspect_json_with(
        t,
        &["--all"],
        &format!("oci-archive:{}:mirror/multi:2", s(&archive)),
    );
    let mut ids = image_ids(&named);
    ids.sort();
    assert_eq!(ids, want);
    let retagged = fx.remote("plat/retagged:3");
    let out = dh_run(
        t,
        &with_plain_http(&[
            "convert",
            "--all",
            &format!("oci:{}:1", s(&mirror)),
            &retagged,
        ]),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (raw, digest) = remote_manifest(t, &retagged, None);
    assert_eq!(digest, index_digest, "{raw}");
    // The summary names what the destination now holds: the tag and its digest.
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains(&format!("pushed {retagged}@{index_digest}\n")),
        "{said}"
    );
    // The same from the layout itself, without a registry.
    let local = t.join("local");
    dh(t, &["convert", "-q", "--all", s(&layout), s(&local)]);
    let index: Value =
        serde_json::from_slice(&std::fs::read(local.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"][0]["digest"], index_digest.as_str());
    let pushed = fx.remote("plat/again:2");
    dh(t, &["convert", "-q", "--all", s(&whole), &pushed]);
    let (raw, digest) = remote_manifest(t, &pushed, None);
    assert_eq!(digest, index_digest, "{raw}");
    skopeo(
        t,
        &[
            "copy",
            "--all",
            "--src-tls-verify=false",
            &pushed,
            &format!("oci:{}:x", s(&t.join("via-skopeo"))),
        ],
    );
    // Layers recompressed: the index is rebuilt over the new manifests.
    let zstd = fx.remote("plat/zstd:3");
    dh(
        t,
        &[
            "convert",
            "-q",
            "--all",
            "--layer-compression",
            "zstd",
            &remote,
            &zstd,
        ],
    );
    let (raw, digest) = remote_manifest(t, &zstd, None);
    assert_ne!(digest, index_digest);
    assert_eq!(raw["manifests"].as_array().unwrap().len(), 2, "{raw}");
    let mut ids = image_ids(&inspect_json_with(t, &["--all"], &zstd));
    ids.sort();
    assert_eq!(ids, want);
    // One platform per image: a docker-archive cannot take --all.
    let out = dh_run(
        t,
        &with_plain_http(&["convert", "--all", &remote, s(&t.join("x.tar"))]),
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn schema_1_manifests_are_pulled_and_oversized_configs_refused() {
    let Some(s1) = corpus_item("skopeo/uncompressed-image-s1") else {
        return;
    };
    let manifest = std::fs::read(s1.join("manifest.json")).unwrap();
    let layer_hex = "160d823fdc48e62f97ba62df31e55424f8f5eb6b679c865eec6e59adfe304710";
    let layer = std::fs::read(s1.join(layer_hex)).unwrap();
    let layer_path = format!("/v2/s1/blobs/sha256:{layer_hex}");
    let big_config = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:{}","size":{}}},"layers":[]}}"#,
        "1".repeat(64),
        5 << 20
    )
    .into_bytes();
    let server = Scripted::start(move |path| match path {
        "/v2/" => (200, vec![], b"{}".to_vec()),
        "/v2/s1/manifests/nonempty" => (
            200,
            vec![(
                "Content-Type",
                "application/vnd.docker.distribution.manifest.v1+prettyjws".to_string(),
            )],
            manifest.clone(),
        ),
        p if p == layer_path => (200, vec![], layer.clone()),
        "/v2/big/manifests/1" => (
            200,
            vec![(
                "Content-Type",
                "application/vnd.oci.image.manifest.v1+json".to_string(),
            )],
            big_config.clone(),
        ),
        _ => (404, vec![], Vec::new()),
    });
    let tmp = tempdir();
    let t = tmp.path();
    let want = image_ids(&inspect(s(&s1)));
    let remote = format!("docker://{}/s1:nonempty", server.addr);
    assert_eq!(image_ids(&inspect_json(t, &remote)), want);
    let out = t.join("s1.tar");
    dh(t, &["convert", "-q", &remote, s(&out)]);
    assert_eq!(image_ids(&inspect(s(&out))), want);
    ok(&["verify", s(&out)]);
    let err = dh_fails(t, &["inspect", &format!("docker://{}/big:1", server.addr)]);
    assert!(err.contains("config") && err.contains("limit"), "{err}");
}

#[test]
fn a_pull_killed_half_way_fetches_only_the_rest_when_run_again() {
    let Some(fx) = RegistryFixture::builder().proxy().start() else {
        return;
    };
    let t = fx.dir();
    let archive = big_archive(t, 10 << 20, 23);
    let remote = fx.remote("killed/big:1");
    dh(t, &["convert", "-q", &archive, &remote]);
    let (total, _, digest) = layer_sizes(t, &remote);
    let cache = t.join("cache");
    let partial = cache
        .join("blobs/sha256")
        .join(format!("{}.partial", &digest[7..]));
    let out = t.join("out.tar");
    // The big layer hangs after 4 MiB; once they are in the cache, the pull is killed.
    let half = 4 << 20;
    fx.proxy().reset_counters();
    fx.proxy()
        .stall_after("GET", &format!("/blobs/{digest}"), half, 1);
    let mut child = dh_command(
        t,
        &[
            "convert",
            "-q",
            "--tls-verify=false",
            "--cache",
            s(&cache),
            &remote,
            s(&out),
        ],
    )
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::fs::metadata(&partial).map_or(0, |m| m.len()) < half {
        assert!(
            std::time::Instant::now() < deadline,
            "the pull never got 4 MiB in"
        );
        assert!(child.try_wait().unwrap().is_none(), "the pull ended early");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!out.exists());
    assert_eq!(std::fs::metadata(&partial).unwrap().len(), half);
    // Run again: the 4 MiB kept are not fetched again.
    fx.proxy().reset_counters();
    dh(
        t,
        &["convert", "-q", "--cache", s(&cache), &remote, s(&out)],
    );
    ok(&["verify", s(&out)]);
    let fetched = fx.proxy().blob_bytes_served();
    assert!(
        fetched + half <= total + 4096,
        "{fetched} bytes fetched again of {total}"
    );
    assert!(!partial.exists());
}
