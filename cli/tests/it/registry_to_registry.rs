//! Copies from one registry to another (`convert docker://A/... docker://B/...`),
//! each end reached with its own options (skopeo's `--src-*` and `--dest-*`), against
//! two real registries on 127.0.0.1 behind recording proxies; manifests compared with
//! skopeo's `inspect --raw` of both ends; `--digestfile`.

use crate::common::registry::*;
use crate::common::*;

use std::path::Path;
use std::process::Output;

use base64::Engine;
use serde_json::Value;

const ALICE: (&str, &str) = ("alice", "a-source-secret");
const BOB: (&str, &str) = ("bob", "b-destination-secret");

fn creds((user, pass): (&str, &str)) -> String {
    format!("{user}:{pass}")
}

/// The `Authorization: Basic` value `creds` are sent as.
fn basic((user, pass): (&str, &str)) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    format!("Basic {encoded}")
}

fn dh_run(tmp: &Path, args: &[&str]) -> Output {
    isolated_dockhand(tmp, args)
        .output()
        .expect("running dockhand")
}

/// Run dockhand and require success; returns stderr.
fn dh(tmp: &Path, args: &[&str]) -> String {
    let out = dh_run(tmp, args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "dockhand {args:?} failed: {stderr}");
    stderr
}

/// Run dockhand and require exit code `code` with one error line; returns stderr.
fn dh_fails(tmp: &Path, code: i32, args: &[&str]) -> String {
    let out = dh_run(tmp, args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
    assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    stderr
}

/// The manifest bytes skopeo reads for `reference` (over plain HTTP), and their digest.
fn raw_manifest(tmp: &Path, reference: &str, creds: Option<&str>) -> (Vec<u8>, String) {
    let mut args = vec!["inspect", "--tls-verify=false", "--raw"];
    if let Some(c) = creds {
        args.extend(["--creds", c]);
    }
    args.push(reference);
    let raw = skopeo(tmp, &args);
    let digest = sha256(&raw);
    (raw, digest)
}

/// Requests that upload a blob (start a session, send a chunk, finish one), mounts
/// included.
fn uploads(proxy: &Proxy) -> Vec<(String, String, u16)> {
    proxy
        .requests()
        .into_iter()
        .filter(|(m, path, _)| {
            matches!(m.as_str(), "POST" | "PATCH" | "PUT") && path.contains("/blobs/uploads")
        })
        .collect()
}

fn layer_count(manifest: &[u8]) -> usize {
    let doc: Value = serde_json::from_slice(manifest).unwrap();
    doc["layers"].as_array().unwrap().len()
}

#[test]
fn each_end_gets_its_own_credentials_and_the_manifest_keeps_its_digest() {
    let Some(a) = RegistryFixture::builder()
        .auth(Auth::basic(ALICE.0, ALICE.1))
        .proxy()
        .needs("skopeo")
        .start()
    else {
        return;
    };
    let Some(b) = RegistryFixture::builder()
        .auth(Auth::basic(BOB.0, BOB.1))
        .proxy()
        .start()
    else {
        return;
    };
    let t = a.dir();
    let (alice, bob) = (creds(ALICE), creds(BOB));
    let source = a.remote("src/app:1");
    // skopeo's push of a docker-archive: a Docker v2 schema 2 manifest.
    skopeo(
        t,
        &[
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds",
            &alice,
            &format!(
                "docker-archive:{}",
                fixture("skopeo-docker-archive").input()
            ),
            &source,
        ],
    );
    let copy = b.remote("dst/app:1");
    a.proxy().reset_counters();
    let digest_file = t.join("pushed.digest");
    let said = dh(
        t,
        &[
            "convert",
            "--tls-verify=false",
            "--src-creds",
            &alice,
            "--dest-creds",
            &bob,
            "--digestfile",
            s(&digest_file),
            &source,
            &copy,
        ],
    );
    // The same manifest bytes at both ends, so the same digest.
    let (source_raw, source_digest) = raw_manifest(t, &source, Some(&alice));
    let (copy_raw, copy_digest) = raw_manifest(t, &copy, Some(&bob));
    assert_eq!(copy_raw, source_raw);
    assert_eq!(copy_digest, source_digest);
    let doc: Value = serde_json::from_slice(&source_raw).unwrap();
    assert_eq!(
        doc["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    // The summary and the digest file say what the destination holds.
    assert!(
        said.contains(&format!("pushed {copy}@{copy_digest}")),
        "{said}"
    );
    assert_eq!(std::fs::read_to_string(&digest_file).unwrap(), copy_digest);
    // Each registry saw its own credentials and never the other's.
    let (to_a, to_b) = (a.proxy().authorizations(), b.proxy().authorizations());
    assert!(to_a.contains(&basic(ALICE)), "{to_a:?}");
    assert!(to_b.contains(&basic(BOB)), "{to_b:?}");
    assert!(!to_b.iter().any(|v| v == &basic(ALICE)), "{to_b:?}");
    assert!(!to_a.iter().any(|v| v == &basic(BOB)), "{to_a:?}");
    assert!(
        !to_b.iter().chain(&to_a).any(|v| v.contains("Bearer")),
        "basic auth only: {to_a:?} {to_b:?}"
    );

    // The ends swapped: each registry refuses the other's credentials.
    let other = b.remote("dst/app:swapped");
    let err = dh_fails(
        t,
        1,
        &[
            "convert",
            "--tls-verify=false",
            "--src-creds",
            &bob,
            "--dest-creds",
            &alice,
            &source,
            &other,
        ],
    );
    assert!(!err.contains(BOB.1) && !err.contains(ALICE.1), "{err}");
    // One --creds serves both ends, which these two registries cannot share.
    dh_fails(
        t,
        1,
        &[
            "convert",
            "--tls-verify=false",
            "--creds",
            &alice,
            &source,
            &other,
        ],
    );
    // A per-end form overrides the plain one for its end only: here --creds serves the
    // destination.
    b.proxy().reset_counters();
    let again = b.remote("dst/app:2");
    dh(
        t,
        &[
            "convert",
            "-q",
            "--tls-verify=false",
            "--creds",
            &bob,
            "--src-creds",
            &alice,
            &source,
            &again,
        ],
    );
    assert_eq!(raw_manifest(t, &again, Some(&bob)).1, source_digest);
    // Everything was on B already: each blob a HEAD, nothing uploaded.
    let requests = b.proxy().requests();
    assert!(uploads(b.proxy()).is_empty(), "{requests:?}");
    assert_eq!(
        b.proxy().count("HEAD", "/blobs/sha256:", Some(200)),
        layer_count(&source_raw) + 1,
        "{requests:?}"
    );
    assert_eq!(b.proxy().blob_bytes_served(), 0);

    // Auth files per end: the plain --authfile (B's) overridden for the source by
    // --src-authfile (A's).
    let auth_file = |name: &str, addr: &str, who: (&str, &str)| {
        let path = t.join(name);
        let encoded = base64::engine::general_purpose::STANDARD.encode(creds(who));
        let doc = serde_json::json!({"auths": {addr: {"auth": encoded}}});
        std::fs::write(&path, serde_json::to_vec(&doc).unwrap()).unwrap();
        path
    };
    let (for_a, for_b) = (
        auth_file("a.json", a.addr(), ALICE),
        auth_file("b.json", b.addr(), BOB),
    );
    let third = b.remote("dst/app:3");
    dh(
        t,
        &[
            "convert",
            "-q",
            "--tls-verify=false",
            "--authfile",
            s(&for_b),
            "--src-authfile",
            s(&for_a),
            &source,
            &third,
        ],
    );
    assert_eq!(raw_manifest(t, &third, Some(&bob)).1, source_digest);
}

#[test]
fn tls_verification_is_chosen_per_end() {
    // Both registries speak plain HTTP: an end that verifies TLS cannot reach its
    // registry, which shows which end each flag set.
    let Some(a) = RegistryFixture::builder().proxy().start() else {
        return;
    };
    let Some(b) = RegistryFixture::builder().proxy().start() else {
        return;
    };
    let t = a.dir();
    let source = a.remote("src/app:1");
    dh(
        t,
        &[
            "convert",
            "-q",
            "--tls-verify=false",
            fixture("skopeo-oci").input(),
            &source,
        ],
    );
    let copy = b.remote("dst/app:1");
    // A TLS greeting to the proxy ends no request line, so the proxy waits and the
    // end refused answers nothing: a short read timeout ends that wait.
    let run = |args: &[&str]| {
        a.proxy().reset_counters();
        b.proxy().reset_counters();
        let mut all = vec!["convert", "-q", "--retry-times", "0", "--read-timeout", "2"];
        all.extend(args);
        all.extend([source.as_str(), copy.as_str()]);
        dh_fails(t, 1, &all)
    };
    // The destination verifying TLS: it is refused (before the source is read), named.
    for args in [
        ["--tls-verify=false", "--dest-tls-verify=true"],
        ["--src-tls-verify=false", "--dest-tls-verify"],
    ] {
        let err = run(&args);
        assert!(err.contains(b.addr()), "{args:?}: {err}");
        assert!(a.proxy().requests().is_empty(), "{args:?}: {err}");
    }
    // The source verifying TLS: it is refused, named; the destination gets nothing.
    for args in [
        ["--tls-verify=true", "--dest-tls-verify=false"],
        ["--dest-tls-verify=false", "--src-tls-verify"],
    ] {
        let err = run(&args);
        assert!(err.contains(a.addr()), "{args:?}: {err}");
        assert!(
            !b.proxy()
                .requests()
                .iter()
                .any(|(m, _, _)| m != "GET" && m != "HEAD"),
            "{args:?}: {err}: {:?}",
            b.proxy().requests()
        );
    }
    // Each end told to speak plain HTTP: the copy works.
    dh(
        t,
        &[
            "convert",
            "-q",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            &source,
            &copy,
        ],
    );
    let s_digest = raw_manifest(t, &source, None).1;
    assert_eq!(raw_manifest(t, &copy, None).1, s_digest);
}

#[test]
fn a_whole_index_is_copied_and_mounted_across_repositories() {
    // Two platforms: linux/amd64 and linux/arm64.
    let Some(layout) = corpus_item("stereoscope/multiplatform_oci_dir") else {
        return;
    };
    let Some(a) = RegistryFixture::builder().needs("skopeo").start() else {
        return;
    };
    let Some(b) = RegistryFixture::builder().proxy().start() else {
        return;
    };
    let t = a.dir();
    let source = a.remote("plat/multi:1");
    skopeo(
        t,
        &[
            "copy",
            "--all",
            "--dest-tls-verify=false",
            &format!("oci:{}:latest", s(&layout)),
            &source,
        ],
    );
    let (index_raw, index_digest) = raw_manifest(t, &source, None);
    let index: Value = serde_json::from_slice(&index_raw).unwrap();
    let members: Vec<String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(members.len(), 2, "{index}");

    let copy = b.remote("plat/copy:1");
    let digest_file = t.join("index.digest");
    dh(
        t,
        &[
            "convert",
            "-q",
            "--tls-verify=false",
            "--all",
            "--digestfile",
            s(&digest_file),
            &source,
            &copy,
        ],
    );
    // The index and each member, byte for byte.
    let (copy_raw, copy_digest) = raw_manifest(t, &copy, None);
    assert_eq!((copy_raw, &copy_digest), (index_raw, &index_digest));
    assert_eq!(std::fs::read_to_string(&digest_file).unwrap(), index_digest);
    let by_digest = |remote: &str, digest: &str| {
        let repo = remote.rsplit_once(':').unwrap().0;
        raw_manifest(t, &format!("{repo}@{digest}"), None)
    };
    let mut layers = 0;
    for member in &members {
        let (raw, digest) = by_digest(&copy, member);
        assert_eq!(&digest, member);
        assert_eq!(raw, by_digest(&source, member).0);
        layers += layer_count(&raw);
    }

    // To another repository of B: every blob mounted from the first, none sent.
    b.proxy().reset_counters();
    let other = b.remote("mirror/multi:1");
    dh(
        t,
        &[
            "convert",
            "-q",
            "--tls-verify=false",
            "--all",
            &copy,
            &other,
        ],
    );
    let requests = b.proxy().requests();
    let mounts = b.proxy().count("POST", "mount=", Some(201));
    // Each member's layers and its config.
    assert_eq!(mounts, layers + members.len(), "{requests:?}");
    assert!(
        !requests.iter().any(|(m, _, _)| m == "PATCH"),
        "{requests:?}"
    );
    assert!(
        !requests
            .iter()
            .any(|(m, p, _)| m == "PUT" && p.contains("/blobs/uploads")),
        "{requests:?}"
    );
    assert_eq!(raw_manifest(t, &other, None).1, index_digest);
}

#[test]
fn digestfile_needs_one_image_and_records_local_outputs_too() {
    let Some(fx) = RegistryFixture::builder().proxy().start() else {
        return;
    };
    let t = fx.dir();
    let two = fixture("docker-save-multi");
    let digest_file = t.join("digest");
    // Two images: refused before anything is pushed, and no file written.
    let err = dh_fails(
        t,
        2,
        &[
            "convert",
            "--tls-verify=false",
            "--digestfile",
            s(&digest_file),
            two.input(),
            &fx.remote("many/app"),
        ],
    );
    assert!(err.contains("--digestfile"), "{err}");
    assert!(err.contains("--image"), "{err}");
    assert!(!digest_file.exists());
    assert!(
        uploads(fx.proxy()).is_empty(),
        "{:?}",
        fx.proxy().requests()
    );
    // Picking one: its manifest digest, as the registry stores it, replacing the file.
    std::fs::write(&digest_file, "stale").unwrap();
    dh(
        t,
        &[
            "convert",
            "-q",
            "--tls-verify=false",
            "--image",
            "@1",
            "--digestfile",
            s(&digest_file),
            two.input(),
            &fx.remote("many/app:one"),
        ],
    );
    let doc: Value = serde_json::from_slice(
        &dh_run(
            t,
            &[
                "inspect",
                "--json",
                "--tls-verify=false",
                &fx.remote("many/app:one"),
            ],
        )
        .stdout,
    )
    .unwrap();
    assert_eq!(
        vec![std::fs::read_to_string(&digest_file).unwrap()],
        manifest_digests(&doc)
    );
    // A local OCI layout: the digest of the manifest written, which its index lists.
    let layout = t.join("layout");
    let local_file = t.join("sub-digest");
    dh(
        t,
        &[
            "convert",
            "-q",
            "--digestfile",
            s(&local_file),
            fixture("docker-save-basic").input(),
            &format!("oci:{}:1.0", s(&layout)),
        ],
    );
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(
        std::fs::read_to_string(&local_file).unwrap(),
        index["manifests"][0]["digest"].as_str().unwrap()
    );
    // No temp file is left beside it.
    let left: Vec<_> = std::fs::read_dir(t)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".digestfile"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_copy_streams_past_the_blob_cache_yet_remembers_where_each_layer_was() {
    let Some(a) = RegistryFixture::builder().proxy().start() else {
        return;
    };
    let Some(b) = RegistryFixture::builder().start() else {
        return;
    };
    let t = a.dir();
    let f = fixture("skopeo-oci");
    let source = a.remote("seen/src:1");
    dh(
        t,
        &["convert", "-q", "--tls-verify=false", f.input(), &source],
    );
    // What the push remembered is forgotten: only the copy below can tell the cache.
    std::fs::remove_dir_all(t.join("xdg-cache")).unwrap();
    // A directory where each layer's cache entry would be: a read through the cache
    // meets it and says so.
    let layers: Vec<String> = images(&inspect(f.input()))[0]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            l["digest"]
                .as_str()
                .unwrap()
                .trim_start_matches("sha256:")
                .to_string()
        })
        .collect();
    let entries = t.join("xdg-cache/dockhand/blobs/sha256");
    for hex in &layers {
        std::fs::create_dir_all(entries.join(hex)).unwrap();
    }
    let said = dh(
        t,
        &[
            "convert",
            "--tls-verify=false",
            &source,
            &b.remote("copy/dst:1"),
        ],
    );
    // Registry to registry: the layers went straight from one to the other, no copy
    // kept to resume from (the destination skips what it holds on a re-run).
    assert!(!said.contains("blob cache"), "{said}");
    assert!(t.join("xdg-cache/dockhand/locations-v1").is_file());
    // A pull into a directory still reads through the cache.
    let said = dh(
        t,
        &[
            "convert",
            "--tls-verify=false",
            &source,
            s(&t.join("pulled")),
        ],
    );
    assert!(said.contains("ignoring the blob cache entry"), "{said}");

    // The copy read each layer from A's repository, and said so to the cache: a push of
    // the same image from a local file into another repository of A mounts them.
    a.proxy().reset_counters();
    dh(
        t,
        &[
            "convert",
            "-q",
            "--tls-verify=false",
            f.input(),
            &a.remote("seen/other:1"),
        ],
    );
    let requests = a.proxy().requests();
    assert!(
        a.proxy().count("POST", "mount=", Some(201)) >= layers.len(),
        "{requests:?}"
    );
    assert!(
        !requests.iter().any(|(m, _, _)| m == "PATCH"),
        "{requests:?}"
    );
}
