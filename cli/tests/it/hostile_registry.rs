//! A hostile registry cannot steal credentials, rewrite what a pinned pull gets, rename
//! the output, turn the shared blob cache against its user, or hold a pull forever.
//! Every server here is scripted on 127.0.0.1 (tests/it/common/hostile.rs) and logs each
//! request with its `Authorization` header, so each test says exactly where the
//! credentials went.

use crate::common::hostile::*;
use crate::common::registry::isolated_dockhand;
use crate::common::*;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const USER: &str = "alice";
const PASS: &str = "S3cret-Passw0rd";
const TOKEN: &str = "registry-token-abc";

/// Run dockhand (`--tls-verify=false` after the subcommand) with a private HOME and
/// cache; killed and failed after `limit`: a guard against a hang, not a speed target.
fn dh_within(tmp: &Path, args: &[&str], limit: Duration) -> Output {
    let mut all = vec![args[0], "--tls-verify=false"];
    all.extend_from_slice(&args[1..]);
    let mut child = isolated_dockhand(tmp, &all)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!(
                "dockhand {args:?} still ran after {limit:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn dh(tmp: &Path, args: &[&str]) -> Output {
    dh_within(tmp, args, Duration::from_secs(120))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn succeeds(tmp: &Path, args: &[&str]) -> Output {
    let out = dh(tmp, args);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    out
}

/// `dockhand inspect REMOTE`, which must fail with one line; that line.
fn inspect_fails(tmp: &Path, remote: &str) -> String {
    fails_with_one_line(tmp, &["inspect", remote])
}

/// Exit code 1, one escaped `error:` line, no panic; returns the line.
fn fails_with_one_line(tmp: &Path, args: &[&str]) -> String {
    let out = dh(tmp, args);
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {text}");
    assert!(text.starts_with("error: "), "{args:?}: {text}");
    assert_eq!(text.trim_end().lines().count(), 1, "{args:?}: {text}");
    assert!(!text.contains("panicked"), "{args:?}: {text}");
    text
}

fn creds() -> String {
    format!("{USER}:{PASS}")
}

/// A registry at `label` in `log` serving `image` as `app`, asking for Basic
/// credentials, with `hook` answering first what it wants to (a redirect, an upload
/// location).
fn basic_registry(
    log: &Log,
    image: &Image,
    hook: impl Fn(&Request) -> Option<Answer> + Send + Sync + 'static,
) -> Server {
    let image = image.clone();
    Server::start("registry", log, move |r| {
        if r.header("authorization") != Some(basic(USER, PASS).as_str()) {
            return Answer::new(401).header("WWW-Authenticate", "Basic realm=\"registry\"");
        }
        hook(r)
            .or_else(|| image.serve("app", r))
            .unwrap_or_else(|| Answer::new(404))
    })
}

/// A third host that asks for credentials with a bearer challenge of its own.
fn greedy_third_host(log: &Log) -> Server {
    Server::start("other", log, |r| {
        if r.path() == "/token" {
            return Answer::bytes(200, r#"{"token":"stolen"}"#);
        }
        let addr = r.header("host").unwrap_or("").to_string();
        Answer::new(401).header(
            "WWW-Authenticate",
            format!("Bearer realm=\"http://{addr}/token\",service=\"evil\""),
        )
    })
}

/// Nothing but the registry (and the token service its own challenge names) ever
/// received the password or the registry's token.
fn no_secret_elsewhere(log: &Log, allowed: &[&str]) {
    for secret in [PASS, TOKEN] {
        let leaked = log.secret_reached_other_than(secret, allowed);
        assert!(leaked.is_empty(), "{secret} reached {leaked:#?}");
    }
}

#[test]
fn a_redirected_blob_gets_no_credentials_and_a_third_host_cannot_ask_for_them() {
    let tmp = tempdir();
    let t = tmp.path();
    let log = Log::default();
    let image = Image::new(64 << 10, 1);
    let other = greedy_third_host(&log);
    let (layer, other_addr) = (image.layer_digest.clone(), other.addr.clone());
    let registry = basic_registry(&log, &image, move |r| {
        r.path().ends_with(&format!("/blobs/{layer}")).then(|| {
            Answer::new(307).header(
                "Location",
                format!("http://{other_addr}/storage/layer?X-Signature=abc"),
            )
        })
    });
    let remote = format!("docker://{}/app:1", registry.addr);
    let out = t.join("out.tar");
    let creds = creds();
    let line = fails_with_one_line(t, &["convert", "--creds", &creds, &remote, s(&out)]);
    assert!(line.contains(&other.addr) && line.contains("401"), "{line}");
    assert!(!line.contains("X-Signature"), "{line}");
    assert!(!out.exists());
    assert!(!log.to("other").is_empty(), "the redirect was not followed");
    assert!(
        log.authorized_to("other").is_empty(),
        "{:#?}",
        log.to("other")
    );
    assert!(
        log.to("other").iter().all(|r| r.path() != "/token"),
        "a token was asked of the third host: {:#?}",
        log.to("other")
    );
    no_secret_elsewhere(&log, &["registry"]);
}

#[test]
fn a_third_host_serving_a_redirect_works_without_credentials_and_a_realm_the_registry_names_gets_them(
) {
    // Docker Hub's shape: the registry's own challenge names a token service on
    // another host, and blobs are served by storage elsewhere.
    let tmp = tempdir();
    let t = tmp.path();
    let log = Log::default();
    let image = Image::new(64 << 10, 2);
    let tokens = Server::start("tokens", &log, |r| {
        if r.header("authorization") == Some(basic(USER, PASS).as_str()) {
            Answer::bytes(200, format!(r#"{{"token":"{TOKEN}"}}"#))
        } else {
            Answer::new(401)
        }
    });
    let storage_image = image.clone();
    let storage = Server::start("storage", &log, move |_| {
        Answer::bytes(200, storage_image.layer.clone())
    });
    let (realm, storage_addr, served) = (
        format!("http://{}/token", tokens.addr),
        storage.addr.clone(),
        image.clone(),
    );
    let layer = image.layer_digest.clone();
    let registry = Server::start("registry", &log, move |r| {
        if r.header("authorization") != Some(format!("Bearer {TOKEN}").as_str()) {
            return Answer::new(401).header(
                "WWW-Authenticate",
                format!(
                    "Bearer realm=\"{realm}\",service=\"registry\",scope=\"repository:app:pull\""
                ),
            );
        }
        if r.path().ends_with(&format!("/blobs/{layer}")) {
            return Answer::new(307).header("Location", format!("http://{storage_addr}/b/1"));
        }
        served.serve("app", r).unwrap_or_else(|| Answer::new(404))
    });
    let remote = format!("docker://{}/app:1", registry.addr);
    let out = t.join("out.tar");
    let creds = creds();
    succeeds(t, &["convert", "-q", "--creds", &creds, &remote, s(&out)]);
    ok(&["verify", s(&out)]);
    assert!(!log.to("storage").is_empty());
    assert!(
        log.authorized_to("storage").is_empty(),
        "{:#?}",
        log.to("storage")
    );
    assert!(!log.authorized_to("tokens").is_empty());
    no_secret_elsewhere(&log, &["registry", "tokens"]);
    // The token went to the registry only, never the password.
    assert!(log
        .authorized_to("registry")
        .iter()
        .all(|r| r.header("authorization") == Some(format!("Bearer {TOKEN}").as_str())));
}

/// Push the bundled fixture to `registry`, whose upload locations point wherever its
/// hook says; the output of the run.
fn push_fixture(t: &Path, registry: &Server) -> Output {
    let remote = format!("docker://{}/app:1", registry.addr);
    let basic = fixture("docker-save-basic");
    let creds = creds();
    dh(
        t,
        &["convert", "-q", "--creds", &creds, basic.input(), &remote],
    )
}

/// A registry taking a push, whose upload sessions are at `location(n)`.
fn pushable_registry(
    log: &Log,
    location: impl Fn(usize) -> String + Send + Sync + 'static,
) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    Server::serve(listener, "registry", log, taking_pushes(location))
}

/// What a registry taking a push (Basic auth) answers, its upload sessions at
/// `location(n)`.
fn taking_pushes(location: impl Fn(usize) -> String + Send + Sync + 'static) -> Arc<Handler> {
    let sessions = std::sync::atomic::AtomicUsize::new(0);
    Arc::new(move |r: &Request| {
        if r.header("authorization") != Some(basic(USER, PASS).as_str()) {
            return Answer::new(401).header("WWW-Authenticate", "Basic realm=\"registry\"");
        }
        match (r.method.as_str(), r.path()) {
            ("GET", "/v2/") => Answer::bytes(200, "{}"),
            ("HEAD", p) if p.contains("/blobs/") => Answer::new(404),
            ("POST", "/v2/app/blobs/uploads/") => {
                let n = sessions.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Answer::new(202).header("Location", location(n))
            }
            ("PUT", p) if p.contains("/manifests/") => {
                Answer::new(201).header("Docker-Content-Digest", sha256(&r.body))
            }
            ("PUT", p) if p.contains("/blobs/uploads/") => Answer::new(201),
            _ => Answer::new(404),
        }
    })
}

/// `server` was reached, never with an `Authorization`, and no secret went anywhere
/// but to the `allowed` servers.
fn reached_without_credentials(log: &Log, server: &str, allowed: &[&str]) {
    assert!(!log.to(server).is_empty(), "{server} was never asked");
    assert!(
        log.authorized_to(server).is_empty(),
        "{:#?}",
        log.to(server)
    );
    no_secret_elsewhere(log, allowed);
}

#[test]
fn a_foreign_upload_location_gets_no_credentials() {
    let tmp = tempdir();
    let t = tmp.path();
    // A third host that asks for credentials: the push fails, naming it.
    let log = Log::default();
    let other = greedy_third_host(&log);
    let other_addr = other.addr.clone();
    let registry = pushable_registry(&log, move |n| format!("http://{other_addr}/upload/{n}"));
    let out = push_fixture(t, &registry);
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains(&other.addr) && text.contains("401"), "{text}");
    reached_without_credentials(&log, "other", &["registry"]);
    // Storage that takes the uploads as they come: the push lands, and the storage
    // never saw a credential.
    let log = Log::default();
    let storage = Server::start("storage", &log, |r| match r.method.as_str() {
        "PUT" if r.target.contains("digest=sha256%3A") => Answer::new(201),
        _ => Answer::new(400),
    });
    let storage_addr = storage.addr.clone();
    let registry = pushable_registry(&log, move |n| format!("http://{storage_addr}/up/{n}?s=1"));
    let out = push_fixture(t, &registry);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(log.to("storage").len(), 4, "three layers and a config");
    assert!(log.authorized_to("storage").is_empty());
    assert_eq!(
        log.to("registry")
            .iter()
            .filter(|r| r.method == "PUT" && r.path().contains("/manifests/"))
            .count(),
        1
    );
    no_secret_elsewhere(&log, &["registry"]);
}

/// A port `p` where both `p` and `p * 10 + 1` are free on 127.0.0.1 (a registry at
/// 1808 and another host at 18081 share a string prefix), with both bound.
fn prefix_ports() -> (TcpListener, TcpListener) {
    for p in (2000..6500).step_by(37) {
        let (Ok(a), Ok(b)) = (
            TcpListener::bind(("127.0.0.1", p)),
            TcpListener::bind(("127.0.0.1", p * 10 + 1)),
        ) else {
            continue;
        };
        return (a, b);
    }
    panic!("no pair of free ports p and p*10+1");
}

#[test]
fn origins_are_compared_after_parsing_never_by_prefix() {
    let tmp = tempdir();
    let t = tmp.path();
    // A port that extends the registry's as a string is another origin.
    let log = Log::default();
    let (registry_port, other_port) = prefix_ports();
    let other = Server::serve(
        other_port,
        "other",
        &log,
        Arc::new(|r: &Request| match r.method.as_str() {
            "PUT" => Answer::new(201),
            _ => Answer::new(400),
        }),
    );
    let other_addr = other.addr.clone();
    let registry = Server::serve(
        registry_port,
        "registry",
        &log,
        taking_pushes(move |n| format!("http://{other_addr}/u/{n}")),
    );
    assert!(
        other.addr.starts_with(&registry.addr),
        "{} {}",
        other.addr,
        registry.addr
    );
    let out = push_fixture(t, &registry);
    assert!(out.status.success(), "{}", stderr(&out));
    reached_without_credentials(&log, "other", &["registry"]);

    // Userinfo in an upload location is refused before anything goes there.
    let log = Log::default();
    let other = greedy_third_host(&log);
    let (registry_addr, other_addr) = (
        std::sync::Arc::new(std::sync::Mutex::new(String::new())),
        other.addr.clone(),
    );
    let named = std::sync::Arc::clone(&registry_addr);
    let registry = pushable_registry(&log, move |n| {
        format!("http://{}@{other_addr}/u/{n}", named.lock().unwrap())
    });
    *registry_addr.lock().unwrap() = registry.addr.clone();
    let out = push_fixture(t, &registry);
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("user name or password"), "{text}");
    assert!(log.to("other").is_empty(), "{:#?}", log.to("other"));
    no_secret_elsewhere(&log, &["registry"]);

    // A redirect with userinfo, and tag pages on another host or with userinfo, too.
    let log = Log::default();
    let other = greedy_third_host(&log);
    let other_addr = other.addr.clone();
    let image = Image::new(1024, 3);
    let registry = basic_registry(&log, &image, move |r| match r.path() {
        "/v2/app/tags/list" if !r.target.contains("last=") => {
            Some(Answer::bytes(200, r#"{"name":"app","tags":["1"]}"#).header(
                "Link",
                format!("<http://127.0.0.1@{other_addr}/v2/app/tags/list?last=1>; rel=\"next\""),
            ))
        }
        p if p.contains("/manifests/") => {
            Some(Answer::new(302).header("Location", format!("http://u:p@{other_addr}/m")))
        }
        _ => None,
    });
    let creds = creds();
    for (command, reference) in [("tags", "app"), ("inspect", "app:1")] {
        let remote = format!("docker://{}/{reference}", registry.addr);
        let line = fails_with_one_line(t, &[command, "--creds", &creds, &remote]);
        assert!(line.contains("user name or password"), "{line}");
    }
    assert!(log.to("other").is_empty(), "{:#?}", log.to("other"));
    no_secret_elsewhere(&log, &["registry"]);
}

#[test]
fn references_are_validated_whole_and_never_echo_a_password() {
    let tmp = tempdir();
    let t = tmp.path();
    let log = Log::default();
    let registry = Server::start("registry", &log, |_| Answer::new(200));
    let creds = creds();
    for (args, says) in [
        (
            vec![
                "inspect",
                "--creds",
                &creds,
                "docker://127.0.0.1:99999/a/b:1",
            ],
            "1 to 65535",
        ),
        (vec!["inspect", "docker://127.0.0.1:0/a:1"], "1 to 65535"),
        (vec!["inspect", "docker://bad_host!/a:1"], "docker://"),
        (
            vec![
                "convert",
                "fixtures/none.tar",
                "docker://127.0.0.1:70000/a:1",
            ],
            "1 to 65535",
        ),
    ] {
        let out = dh(t, &args);
        let text = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {text}");
        assert!(text.contains(says), "{args:?}: {text}");
    }
    let reference = format!("docker://{USER}:{PASS}@{}/a:1", registry.addr);
    for args in [
        vec!["inspect", reference.as_str()],
        vec!["convert", reference.as_str(), "out.tar"],
        vec!["tags", reference.as_str()],
        vec!["verify", "-v", reference.as_str()],
    ] {
        let out = dh(t, &args);
        let text = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {text}");
        assert!(!text.contains(PASS), "{args:?}: {text}");
        assert!(text.contains("--creds"), "{args:?}: {text}");
    }
    assert!(log.all().is_empty(), "{:#?}", log.all());
}

/// The signed schema 1 manifest of the corpus, its layer, and the digest of its
/// payload (what distribution and skopeo call its digest).
fn schema1() -> Option<(Vec<u8>, Vec<u8>, String, String)> {
    let dir = corpus_item("skopeo/uncompressed-image-s1")?;
    let manifest = std::fs::read(dir.join("manifest.json")).unwrap();
    let layer_hex = "160d823fdc48e62f97ba62df31e55424f8f5eb6b679c865eec6e59adfe304710";
    let layer = std::fs::read(dir.join(layer_hex)).unwrap();
    // `skopeo manifest-digest` of this file.
    let payload_digest =
        "sha256:3b93a98785ed46f9fa9fefd53127c3fa91e1d0314f90c00d8fb9b8d7448ec1ad".to_string();
    Some((
        manifest,
        layer,
        format!("sha256:{layer_hex}"),
        payload_digest,
    ))
}

/// A registry serving `manifest` (of `content_type`) for every manifest request and
/// `layer` as the blob `layer_digest`, stating `stated` as Docker-Content-Digest.
fn manifest_registry(
    log: &Log,
    manifest: Vec<u8>,
    content_type: &'static str,
    stated: Option<String>,
    blobs: Vec<(String, Vec<u8>)>,
) -> Server {
    Server::start("registry", log, move |r| {
        let path = r.path();
        if path == "/v2/" {
            return Answer::bytes(200, "{}");
        }
        if path.contains("/manifests/") {
            let mut answer =
                Answer::bytes(200, manifest.clone()).header("Content-Type", content_type);
            if let Some(d) = &stated {
                answer = answer.header("Docker-Content-Digest", d.clone());
            }
            return answer;
        }
        for (digest, bytes) in &blobs {
            if path.ends_with(&format!("/blobs/{digest}")) {
                return Answer::bytes(200, bytes.clone());
            }
        }
        Answer::new(404)
    })
}

const SIGNED_S1: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
const UNSIGNED_S1: &str = "application/vnd.docker.distribution.manifest.v1+json";

#[test]
fn a_pinned_reference_means_those_bytes_for_every_manifest_type() {
    let Some((signed, layer, layer_digest, payload_digest)) = schema1() else {
        return;
    };
    let tmp = tempdir();
    let t = tmp.path();
    let wrong = format!("sha256:{}", "1".repeat(64));
    let blobs = vec![(layer_digest.clone(), layer.clone())];
    // Signed schema 1: its digest is its payload's.
    let log = Log::default();
    let registry = manifest_registry(&log, signed.clone(), SIGNED_S1, None, blobs.clone());
    let out = t.join("signed.tar");
    let line = fails_with_one_line(
        t,
        &[
            "convert",
            &format!("docker://{}/s1@{wrong}", registry.addr),
            s(&out),
        ],
    );
    assert!(
        line.contains("digest mismatch") && line.contains(&payload_digest),
        "{line}"
    );
    assert!(!out.exists());
    // The digest of the bytes as served is not the digest either.
    let whole = sha256(&signed);
    inspect_fails(t, &format!("docker://{}/s1@{whole}", registry.addr));
    succeeds(
        t,
        &[
            "convert",
            "-q",
            &format!("docker://{}/s1@{payload_digest}", registry.addr),
            s(&out),
        ],
    );
    ok(&["verify", s(&out)]);
    // A stated digest that disagrees fails a pull by tag.
    let log = Log::default();
    let registry = manifest_registry(
        &log,
        signed.clone(),
        SIGNED_S1,
        Some(wrong.clone()),
        blobs.clone(),
    );
    let line = inspect_fails(t, &format!("docker://{}/s1:1", registry.addr));
    assert!(line.contains("digest mismatch"), "{line}");
    // Unsigned schema 1 (the payload alone): its digest is its bytes'.
    let payload = payload_of(&signed);
    assert_eq!(sha256(&payload), payload_digest);
    let log = Log::default();
    let registry = manifest_registry(&log, payload.clone(), UNSIGNED_S1, None, blobs.clone());
    inspect_fails(t, &format!("docker://{}/s1@{wrong}", registry.addr));
    succeeds(
        t,
        &[
            "inspect",
            &format!("docker://{}/s1@{payload_digest}", registry.addr),
        ],
    );
    // A signature whose format points past the manifest is refused, not trusted.
    let mut forged = signed.clone();
    let at = find(&forged, b"\"protected\": \"").unwrap() + 14;
    let end = at + forged[at..].iter().position(|&b| b == b'"').unwrap();
    forged.splice(
        at..end,
        b64url(br#"{"formatLength":999999,"formatTail":"fQ"}"#).bytes(),
    );
    let log = Log::default();
    let registry = manifest_registry(&log, forged, SIGNED_S1, None, blobs.clone());
    let line = inspect_fails(t, &format!("docker://{}/s1:1", registry.addr));
    assert!(line.contains("signatures"), "{line}");
    // And a Docker v2 manifest under a wrong pin.
    let image = Image::new(1024, 4);
    let log = Log::default();
    let served = image.clone();
    let registry = Server::start("registry", &log, move |r| {
        served.serve("app", r).unwrap_or_else(|| Answer::new(404))
    });
    let line = inspect_fails(t, &format!("docker://{}/app@{wrong}", registry.addr));
    assert!(line.contains("digest mismatch"), "{line}");
    // A pinned v2 manifest with another config and layers and a schema 1 signature appended, whose
    // "payload" is the pinned manifest, served as schema 1: what is read must be what
    // is verified, so this cannot pass as the pinned image.
    let other = Image::new(1024, 5);
    let pinned = &image.manifest;
    let tail = b64url(b"}");
    let header = b64url(
        format!(
            r#"{{"formatLength":{},"formatTail":"{tail}"}}"#,
            pinned.len() - 1
        )
        .as_bytes(),
    );
    let config_and_layers =
        &other.manifest[find(&other.manifest, b"\"config\"").unwrap()..other.manifest.len() - 1];
    let mut forged = pinned[..pinned.len() - 1].to_vec();
    forged.extend_from_slice(b",");
    forged.extend_from_slice(config_and_layers);
    forged.extend_from_slice(format!(r#","signatures":[{{"protected":"{header}"}}]}}"#).as_bytes());
    for declared in ["", r#","schemaVersion":1"#] {
        let mut bytes = forged.clone();
        if !declared.is_empty() {
            let at = bytes.len() - 1;
            bytes.splice(at..at, declared.bytes());
        }
        let log = Log::default();
        let (served, bytes) = (image.clone(), bytes.clone());
        let registry = Server::start("registry", &log, move |r| {
            if r.path().contains("/manifests/") {
                return Answer::bytes(200, bytes.clone()).header("Content-Type", SIGNED_S1);
            }
            served.serve("app", r).unwrap_or_else(|| Answer::new(404))
        });
        let out = t.join("forged.tar");
        fails_with_one_line(
            t,
            &[
                "convert",
                &format!("docker://{}/app@{}", registry.addr, image.manifest_digest),
                s(&out),
            ],
        );
        assert!(!out.exists());
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn b64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A signed schema 1 manifest's payload (libtrust's pretty signature format).
fn payload_of(signed: &[u8]) -> Vec<u8> {
    use base64::Engine;
    let doc: serde_json::Value = serde_json::from_slice(signed).unwrap();
    let protected = doc["signatures"][0]["protected"].as_str().unwrap();
    let header: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(protected.trim_end_matches('='))
            .unwrap(),
    )
    .unwrap();
    let length = header["formatLength"].as_u64().unwrap() as usize;
    let tail = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header["formatTail"].as_str().unwrap().trim_end_matches('='))
        .unwrap();
    let mut payload = signed[..length].to_vec();
    payload.extend(tail);
    payload
}

/// The RepoTags of the docker-archive that `convert -q ARGS... REMOTE` writes.
fn tags_of_pull(t: &Path, args: &[&str], remote: &str) -> Vec<String> {
    let out = t.join("pulled.tar");
    let _ = std::fs::remove_file(&out);
    let mut all = vec!["convert", "-q"];
    all.extend_from_slice(args);
    all.extend([remote, s(&out)]);
    succeeds(t, &all);
    images(&inspect(s(&out)))[0]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn names_come_from_the_user_never_from_the_registry() {
    let Some((signed, layer, layer_digest, _)) = schema1() else {
        return;
    };
    let tmp = tempdir();
    let t = tmp.path();
    // An unsigned schema 1 manifest that calls itself alpine:3.20.
    let payload = String::from_utf8(payload_of(&signed)).unwrap();
    let renamed = payload
        .replacen("\"name\": \"nonempty\"", "\"name\": \"library/alpine\"", 1)
        .replacen("\"tag\": \"nonempty\"", "\"tag\": \"3.20\"", 1);
    assert_ne!(renamed, payload);
    let digest = sha256(renamed.as_bytes());
    let log = Log::default();
    let registry = manifest_registry(
        &log,
        renamed.into_bytes(),
        UNSIGNED_S1,
        None,
        vec![(layer_digest, layer)],
    );
    let (tagged, pinned) = (
        format!("docker://{}/myapp:v1", registry.addr),
        format!("docker://{}/myapp@{digest}", registry.addr),
    );
    assert_eq!(
        tags_of_pull(t, &[], &tagged),
        [format!("{}/myapp:v1", registry.addr)]
    );
    // By digest: no tag, unless one is asked for.
    assert!(tags_of_pull(t, &[], &pinned).is_empty());
    assert_eq!(
        tags_of_pull(t, &["--tag", "mine/app:2"], &pinned),
        ["docker.io/mine/app:2"]
    );
    let listed = inspect_remote(t, &format!("docker://{}/myapp:v1", registry.addr));
    assert!(!listed.contains("alpine"), "{listed}");
}

fn inspect_remote(t: &Path, remote: &str) -> String {
    String::from_utf8(succeeds(t, &["inspect", "--json", remote]).stdout).unwrap()
}

/// A registry serving `image` as `app` whose layer body is `layer_body(n)` for the
/// `n`th request of it.
fn layer_registry(
    log: &Log,
    image: &Image,
    layer_body: impl Fn(usize) -> Option<Body> + Send + Sync + 'static,
) -> Server {
    let image = image.clone();
    let count = std::sync::atomic::AtomicUsize::new(0);
    Server::start("registry", log, move |r| {
        if r.method == "GET"
            && r.path()
                .ends_with(&format!("/blobs/{}", image.layer_digest))
        {
            let n = count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if let Some(body) = layer_body(n) {
                return Answer::new(200).body(body);
            }
        }
        image.serve("app", r).unwrap_or_else(|| Answer::new(404))
    })
}

fn cache_dir(t: &Path) -> std::path::PathBuf {
    t.join("cache")
}

fn blob_path(t: &Path, digest: &str, suffix: &str) -> std::path::PathBuf {
    cache_dir(t)
        .join("blobs/sha256")
        .join(format!("{}{suffix}", &digest[7..]))
}

fn pull_through_cache(t: &Path, remote: &str, out: &Path) -> Output {
    dh(t, &["convert", "--cache", s(&cache_dir(t)), remote, s(out)])
}

/// A registry serving an image of `size` bytes of noise from `seed`, pulled once
/// through the cache (so that the cache's directories exist): the image, the server
/// (serving until dropped) and its reference.
fn cached_once(t: &Path, size: usize, seed: u64) -> (Image, Server, String) {
    let image = Image::new(size, seed);
    let registry = layer_registry(&Log::default(), &image, |_| None);
    let remote = format!("docker://{}/app:1", registry.addr);
    pulls_through_cache(t, &remote, &t.join("first.tar"));
    (image, registry, remote)
}

/// [`pull_through_cache`], which must succeed; its stderr.
fn pulls_through_cache(t: &Path, remote: &str, out: &Path) -> String {
    let run = pull_through_cache(t, remote, out);
    assert!(run.status.success(), "{}", stderr(&run));
    stderr(&run)
}

/// Pull `image` into `out` (with `args` and no cache) from a registry whose layer body
/// is always `body()`: the run, and how many times the layer was asked for.
fn pull_with_layer_body(
    t: &Path,
    image: &Image,
    args: &[&str],
    out: &Path,
    body: impl Fn() -> Body + Send + Sync + 'static,
) -> (Output, usize) {
    let log = Log::default();
    let registry = layer_registry(&log, image, move |_| Some(body()));
    let remote = format!("docker://{}/app:1", registry.addr);
    let mut all = vec!["convert", "--no-cache"];
    all.extend_from_slice(args);
    all.extend([remote.as_str(), s(out)]);
    let run = dh_within(t, &all, Duration::from_secs(60));
    let asked = log
        .to("registry")
        .iter()
        .filter(|r| r.method == "GET" && r.path().ends_with(&image.layer_digest))
        .count();
    assert_eq!(run.status.code(), Some(1), "{args:?}: {}", stderr(&run));
    assert!(!out.exists(), "{args:?}");
    (run, asked)
}

#[test]
fn a_pull_that_stalls_or_drips_fails_its_attempts_and_the_budget_counts_attempts() {
    let tmp = tempdir();
    let t = tmp.path();
    let image = Image::new(256 << 10, 5);
    let out = t.join("out.tar");
    // Headers and a few bytes, then nothing: each attempt times out.
    let first = image.layer[..100].to_vec();
    let args = ["--read-timeout", "1", "--retry-times", "1"];
    let (run, asked) =
        pull_with_layer_body(t, &image, &args, &out, move || Body::Stall(first.clone()));
    let text = stderr(&run);
    assert!(
        text.contains("timed out") || text.contains("timeout"),
        "{text}"
    );
    assert_eq!(asked, 2, "one attempt and one retry");
    // A byte every 100 ms: under the floor.
    let all = image.layer.clone();
    let args = ["--read-timeout", "1", "--retry-times", "2"];
    let (run, asked) = pull_with_layer_body(t, &image, &args, &out, move || {
        Body::Paced(all.clone(), 1, Duration::from_millis(100))
    });
    assert!(stderr(&run).contains("under the floor"), "{}", stderr(&run));
    assert_eq!(asked, 3, "one attempt and two retries");
    // A byte per attempt, then the connection closes: bytes do not buy retries.
    let layer = image.layer.clone();
    let (_, asked) = pull_with_layer_body(t, &image, &["--retry-times", "3"], &out, move || {
        Body::Cut(layer[..1].to_vec(), layer.len() as u64)
    });
    assert_eq!(asked, 4, "one attempt and three retries");
}

#[test]
fn tags_are_printed_as_their_pages_arrive() {
    use std::io::BufRead;
    let tmp = tempdir();
    let t = tmp.path();
    let log = Log::default();
    let (seen_tx, seen_rx) = std::sync::mpsc::channel::<()>();
    let seen_rx = std::sync::Mutex::new(seen_rx);
    let registry = Server::start("registry", &log, move |r| {
        if r.path() == "/v2/" {
            return Answer::bytes(200, "{}");
        }
        let page: usize = r
            .target
            .split("last=")
            .nth(1)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if page == 1 {
            // The second page is answered only once the first page's tags were read
            // from dockhand's stdout.
            let _ = seen_rx
                .lock()
                .unwrap()
                .recv_timeout(Duration::from_secs(30));
        }
        let tags: Vec<String> = (0..1000).map(|i| format!("\"p{page}-t{i}\"")).collect();
        let mut answer = Answer::bytes(200, format!(r#"{{"tags":[{}]}}"#, tags.join(",")));
        if page < 3 {
            answer = answer.header(
                "Link",
                format!("</v2/app/tags/list?last={}>; rel=\"next\"", page + 1),
            );
        }
        answer
    });
    let mut child = isolated_dockhand(
        t,
        &[
            "tags",
            "--tls-verify=false",
            &format!("docker://{}/app", registry.addr),
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let started = Instant::now();
    let first = lines.next().unwrap().unwrap();
    // Not a speed target: without streaming the first tag would come only once the
    // server gave up waiting for it (30 s) and served the second page.
    let first_at = started.elapsed();
    assert_eq!(first, "p0-t0");
    seen_tx.send(()).unwrap();
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    assert!(child.wait().unwrap().success());
    assert_eq!(rest.len(), 3999);
    assert_eq!(rest.last().unwrap(), "p3-t999");
    assert!(
        first_at < Duration::from_secs(20),
        "the first page was printed only after the second was served ({first_at:?})"
    );
}

/// The bytes of `image`'s layer with one byte of its first quarter changed.
fn corrupted(image: &Image) -> Vec<u8> {
    let mut bytes = image.layer.clone();
    let early = bytes.len() / 4;
    bytes[early] ^= 0xff;
    bytes
}

#[test]
fn a_bad_cache_entry_is_discarded_and_fetched_again() {
    let tmp = tempdir();
    let t = tmp.path();
    let (image, _registry, remote) = cached_once(t, 512 << 10, 6);
    let done = blob_path(t, &image.layer_digest, "");
    let partial = blob_path(t, &image.layer_digest, ".partial");
    for (n, (what, path, bytes)) in [
        ("a corrupt entry", &done, corrupted(&image)),
        (
            "corrupt bytes kept by a pull",
            &partial,
            corrupted(&image)[..image.layer.len() / 2].to_vec(),
        ),
        ("a short entry", &done, image.layer[..100].to_vec()),
    ]
    .into_iter()
    .enumerate()
    {
        std::fs::write(path, &bytes).unwrap();
        let out = t.join(format!("{n}.tar"));
        let text = pulls_through_cache(t, &remote, &out);
        assert!(
            text.contains("warning:") && text.contains("discarded and fetched again"),
            "{what}: {text}"
        );
        ok(&["verify", s(&out)]);
        assert!(
            !done.exists() && !partial.exists(),
            "{what}: the entry outlived the pull"
        );
    }
}

#[test]
fn odd_cache_entries_are_never_followed_opened_or_waited_on() {
    let tmp = tempdir();
    let t = tmp.path();
    let (image, _registry, remote) = cached_once(t, 128 << 10, 7);
    let victim = t.join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    let done = blob_path(t, &image.layer_digest, "");
    let partial = blob_path(t, &image.layer_digest, ".partial");
    type Plant = fn(&Path, &Path);
    let plants: [(&str, &Path, Plant); 5] = [
        ("a symlink at the partial", &partial, |at, victim| {
            std::os::unix::fs::symlink(victim, at).unwrap()
        }),
        ("a symlink at the entry", &done, |at, victim| {
            std::os::unix::fs::symlink(victim, at).unwrap()
        }),
        ("a directory at the entry", &done, |at, _| {
            std::fs::create_dir(at).unwrap()
        }),
        ("a directory at the partial", &partial, |at, _| {
            std::fs::create_dir(at).unwrap()
        }),
        ("a FIFO at the entry", &done, |at, _| {
            let c = std::ffi::CString::new(at.to_str().unwrap()).unwrap();
            // SAFETY: mkfifo(3) with a valid NUL-terminated path.
            assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        }),
    ];
    for (n, (what, at, plant)) in plants.into_iter().enumerate() {
        plant(at, &victim);
        let out = t.join(format!("{n}.tar"));
        let run = dh_within(
            t,
            &["convert", "--cache", s(&cache_dir(t)), &remote, s(&out)],
            Duration::from_secs(60),
        );
        let text = stderr(&run);
        assert!(run.status.success(), "{what}: {text}");
        assert!(
            text.contains("warning:") && text.contains("not a regular file"),
            "{what}: {text}"
        );
        ok(&["verify", s(&out)]);
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious", "{what}");
        // Left for the user to look at, not removed.
        assert!(at.symlink_metadata().is_ok(), "{what}");
        if at.is_dir() && !at.is_symlink() {
            std::fs::remove_dir(at).unwrap();
        } else {
            std::fs::remove_file(at).unwrap();
        }
    }
    // A symlink in place of the cache's own directories makes the cache unusable.
    std::fs::remove_dir_all(cache_dir(t).join("blobs")).unwrap();
    std::fs::create_dir(t.join("elsewhere")).unwrap();
    std::os::unix::fs::symlink(t.join("elsewhere"), cache_dir(t).join("blobs")).unwrap();
    let line = fails_with_one_line(
        t,
        &[
            "convert",
            "--cache",
            s(&cache_dir(t)),
            &remote,
            s(&t.join("x.tar")),
        ],
    );
    assert!(line.contains("--no-cache"), "{line}");
    assert_eq!(std::fs::read_dir(t.join("elsewhere")).unwrap().count(), 0);
}

#[test]
fn the_cache_is_private_to_its_user() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempdir();
    let t = tmp.path();
    let image = Image::new(256 << 10, 8);
    let log = Log::default();
    let first = image.layer[..1000].to_vec();
    let promised = image.layer.len() as u64;
    let registry = layer_registry(&log, &image, move |_| {
        Some(Body::Cut(first.clone(), promised))
    });
    let remote = format!("docker://{}/app:1", registry.addr);
    // Cut short with no retries: the partial entry stays.
    let run = dh(
        t,
        &[
            "convert",
            "--retry-times",
            "0",
            "--cache",
            s(&cache_dir(t)),
            &remote,
            s(&t.join("x.tar")),
        ],
    );
    assert_eq!(run.status.code(), Some(1), "{}", stderr(&run));
    let mode = |p: &Path| p.metadata().unwrap().permissions().mode() & 0o777;
    let partial = blob_path(t, &image.layer_digest, ".partial");
    assert_eq!(std::fs::metadata(&partial).unwrap().len(), 1000);
    assert_eq!(mode(&partial), 0o600);
    for dir in ["", "blobs", "blobs/sha256"] {
        assert_eq!(mode(&cache_dir(t).join(dir)), 0o700, "{dir}");
    }
    // A cache made readable by others is closed again.
    std::fs::set_permissions(
        cache_dir(t).join("blobs/sha256"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let _ = dh(
        t,
        &[
            "convert",
            "--retry-times",
            "0",
            "--cache",
            s(&cache_dir(t)),
            &remote,
            s(&t.join("y.tar")),
        ],
    );
    assert_eq!(mode(&cache_dir(t).join("blobs/sha256")), 0o700);
}

#[test]
fn pulls_sharing_a_cache_all_succeed() {
    let tmp = tempdir();
    let t = tmp.path();
    let image = Image::new(4 << 20, 9);
    let log = Log::default();
    // The layer trickles out in 64 KiB pieces, so that the runs overlap.
    let layer = image.layer.clone();
    let registry = layer_registry(&log, &image, move |_| {
        Some(Body::Paced(
            layer.clone(),
            64 << 10,
            Duration::from_millis(20),
        ))
    });
    let remote = format!("docker://{}/app:1", registry.addr);
    // A layout that already holds the image: a run into it fetches nothing and is done
    // (and releases the cache) while the others are still filling.
    let layout = t.join("layout");
    succeeds(
        t,
        &[
            "convert",
            "-q",
            "--cache",
            s(&cache_dir(t)),
            &remote,
            &format!("oci:{}:first", s(&layout)),
        ],
    );
    for round in 0..3 {
        let mut children = Vec::new();
        for i in 0..6 {
            let dest = if i % 3 == 2 {
                format!("oci:{}:r{round}-{i}", s(&layout))
            } else {
                s(&t.join(format!("{round}-{i}.tar"))).to_string()
            };
            children.push(
                isolated_dockhand(
                    t,
                    &[
                        "convert",
                        "-q",
                        "--tls-verify=false",
                        "--cache",
                        s(&cache_dir(t)),
                        &remote,
                        &dest,
                    ],
                )
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
            );
        }
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "round {round}: {}", stderr(&out));
        }
        for i in [0, 1, 3, 4] {
            ok(&["verify", s(&t.join(format!("{round}-{i}.tar")))]);
        }
    }
    ok(&["verify", s(&layout)]);
    let left: Vec<_> = std::fs::read_dir(cache_dir(t).join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "the cache kept {left:?}");
}

#[test]
fn a_run_holding_an_entry_without_progress_is_not_waited_for_forever() {
    use std::os::fd::AsRawFd;
    let tmp = tempdir();
    let t = tmp.path();
    let (image, _registry, remote) = cached_once(t, 128 << 10, 10);
    // A stopped run's lock: held, and nothing added to the entry.
    let partial = blob_path(t, &image.layer_digest, ".partial");
    let held = std::fs::File::create(&partial).unwrap();
    // SAFETY: flock(2) on a file descriptor this test owns.
    assert_eq!(unsafe { libc::flock(held.as_raw_fd(), libc::LOCK_EX) }, 0);
    let out = t.join("out.tar");
    let run = dh_within(
        t,
        &[
            "convert",
            "--read-timeout",
            "1",
            "--retry-times",
            "0",
            "--cache",
            s(&cache_dir(t)),
            &remote,
            s(&out),
        ],
        Duration::from_secs(60),
    );
    let text = stderr(&run);
    assert!(run.status.success(), "{text}");
    assert!(text.contains("without making progress"), "{text}");
    ok(&["verify", s(&out)]);
    drop(held);
}
