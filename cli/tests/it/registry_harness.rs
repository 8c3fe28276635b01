//! The registry test harness (tests/it/common/registry.rs) checked against the real
//! skopeo: a registry with each kind of auth takes a push and serves it back, refuses
//! wrong credentials, and the proxy in front of it counts, records and injects faults.
//!
//! Tests return early with a visible SKIPPED line when docker-registry, htpasswd,
//! Python's cryptography or skopeo is missing (a failure under
//! DOCKHAND_REQUIRE_INTEROP=1).

use crate::common::registry::*;
use crate::common::*;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

const USER: &str = "tester";
const PASS: &str = "s3cret-pass";
const REPO: &str = "test/img";

/// A small single-image, single-tag docker-archive.
fn fixture_archive() -> String {
    format!(
        "docker-archive:{}",
        fixture("skopeo-docker-archive").input()
    )
}

/// skopeo with its scratch space inside `tmp`; the raw output (success or not).
fn skopeo_try(tmp: &Path, args: &[&str]) -> Output {
    let scratch = tmp.join("skopeo-tmp");
    std::fs::create_dir_all(&scratch).unwrap();
    Command::new("skopeo")
        .env("TMPDIR", &scratch)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running skopeo: {e}"))
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `skopeo copy` of the fixture to `addr/REPO:1`, with `creds` when given.
fn push(tmp: &Path, addr: &str, creds: Option<&str>) -> Output {
    let dest = format!("docker://{addr}/{REPO}:1");
    let archive = fixture_archive();
    let mut args = vec!["copy", "--dest-tls-verify=false"];
    if let Some(c) = creds {
        args.extend(["--dest-creds", c]);
    }
    args.extend([archive.as_str(), dest.as_str()]);
    skopeo_try(tmp, &args)
}

/// `skopeo inspect` of `addr/REPO:1`, with `creds` when given.
fn inspect_remote(tmp: &Path, addr: &str, creds: Option<&str>) -> Output {
    let src = format!("docker://{addr}/{REPO}:1");
    let mut args = vec!["inspect", "--tls-verify=false"];
    if let Some(c) = creds {
        args.extend(["--creds", c]);
    }
    args.push(&src);
    skopeo_try(tmp, &args)
}

fn assert_ok(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        stderr_of(out)
    );
}

fn assert_fails(what: &str, out: &Output) {
    assert!(
        !out.status.success(),
        "{what} should fail, printed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// The inspect JSON of a successful `skopeo inspect`: it has the fixture's layers.
fn check_inspect(out: &Output) -> Value {
    assert_ok("skopeo inspect", out);
    let v: Value = serde_json::from_slice(&out.stdout).expect("skopeo inspect prints JSON");
    let expected = fixture("skopeo-docker-archive");
    let layers = expected.expected["images"][0]["layers"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(v["Layers"].as_array().unwrap().len(), layers, "{v}");
    assert!(v["Digest"].as_str().unwrap().starts_with("sha256:"), "{v}");
    v
}

/// The repository exists in the registry's storage.
fn check_stored(reg: &Registry) {
    let repo = reg
        .storage_dir()
        .join("docker/registry/v2/repositories")
        .join(REPO);
    assert!(
        repo.join("_manifests/tags/1").is_dir(),
        "{} has no tag 1",
        repo.display()
    );
}

#[test]
fn no_auth_push_and_inspect() {
    let Some(fx) = RegistryFixture::builder().needs("skopeo").start() else {
        return;
    };
    assert_ok("push", &push(fx.dir(), &fx.registry.addr, None));
    check_inspect(&inspect_remote(fx.dir(), &fx.registry.addr, None));
    check_stored(&fx.registry);
    assert_eq!(fx.registry.creds(), None);
    assert_eq!(fx.registry.token_requests(), 0);
}

#[test]
fn basic_auth_push_inspect_and_refusals() {
    let Some(fx) = RegistryFixture::builder()
        .auth(Auth::basic(USER, PASS))
        .needs("skopeo")
        .start()
    else {
        return;
    };
    let creds = format!("{USER}:{PASS}");
    assert_eq!(fx.registry.creds().as_deref(), Some(creds.as_str()));
    assert_fails(
        "push without creds",
        &push(fx.dir(), &fx.registry.addr, None),
    );
    assert_ok("push", &push(fx.dir(), &fx.registry.addr, Some(&creds)));
    check_inspect(&inspect_remote(fx.dir(), &fx.registry.addr, Some(&creds)));
    check_stored(&fx.registry);
    let wrong = format!("{USER}:wrong");
    assert_fails(
        "inspect with a wrong password",
        &inspect_remote(fx.dir(), &fx.registry.addr, Some(&wrong)),
    );
    assert_fails(
        "inspect without creds",
        &inspect_remote(fx.dir(), &fx.registry.addr, None),
    );
    let (code, _) = http_get(&fx.registry.addr, "/v2/").unwrap();
    assert_eq!(code, 401);
}

#[test]
fn token_auth_push_inspect_and_refusals() {
    let Some(fx) = RegistryFixture::builder()
        .auth(Auth::token(USER, PASS, false))
        .needs("skopeo")
        .start()
    else {
        return;
    };
    let creds = format!("{USER}:{PASS}");
    assert_eq!(fx.registry.token_requests(), 0);
    assert_ok("push", &push(fx.dir(), &fx.registry.addr, Some(&creds)));
    let after_push = fx.registry.token_requests();
    assert!(after_push > 0, "skopeo pushed without asking for a token");
    check_inspect(&inspect_remote(fx.dir(), &fx.registry.addr, Some(&creds)));
    assert!(fx.registry.token_requests() > after_push);
    check_stored(&fx.registry);

    let wrong = format!("{USER}:wrong");
    let out = inspect_remote(fx.dir(), &fx.registry.addr, Some(&wrong));
    assert_fails("inspect with a wrong password", &out);
    let out = inspect_remote(fx.dir(), &fx.registry.addr, None);
    assert_fails("anonymous inspect without anonymous pull", &out);
    assert_fails("anonymous push", &push(fx.dir(), &fx.registry.addr, None));
}

/// What the token server and the registry answer, seen at the HTTP level.
#[test]
fn token_server_answers() {
    let Some(fx) = RegistryFixture::builder()
        .auth(Auth::token(USER, PASS, false))
        .start()
    else {
        return;
    };
    let realm = fx.registry.token_realm().unwrap();
    let token_addr = realm
        .strip_prefix("http://")
        .unwrap()
        .strip_suffix("/token")
        .unwrap()
        .to_string();
    // The challenge names the realm and the service.
    let (code, head, _) = raw_request(&fx.registry.addr, "GET", "/v2/", &[]);
    assert_eq!(code, 401);
    assert!(
        head.contains(&format!(
            "Bearer realm=\"{realm}\",service=\"{TOKEN_SERVICE}\""
        )),
        "{head}"
    );
    let query = format!("/token?service={TOKEN_SERVICE}&scope=repository:{REPO}:pull,push");
    // Wrong credentials: 401.
    let (code, _, _) = raw_request(
        &token_addr,
        "GET",
        &query,
        &[("Authorization", &basic(USER, "wrong"))],
    );
    assert_eq!(code, 401);
    // Anonymous without anonymous pull: a token with no access, which the registry
    // refuses with insufficient_scope.
    let (code, _, body) = raw_request(&token_addr, "GET", &query, &[]);
    assert_eq!(code, 200);
    let anon = token_of(&body);
    assert_eq!(claims_of(&anon)["access"], serde_json::json!([]));
    let (code, head, _) = raw_request(
        &fx.registry.addr,
        "GET",
        &format!("/v2/{REPO}/tags/list"),
        &[("Authorization", &format!("Bearer {anon}"))],
    );
    assert_eq!(code, 401);
    assert!(head.contains("insufficient_scope"), "{head}");
    // The right credentials: every action asked for, on each scope.
    let two = format!("{query}&scope=repository:other/repo:pull");
    let (code, _, body) = raw_request(
        &token_addr,
        "GET",
        &two,
        &[("Authorization", &basic(USER, PASS))],
    );
    assert_eq!(code, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["token"], v["access_token"]);
    assert_eq!(v["expires_in"], 300);
    assert!(v["issued_at"].is_string());
    let claims = claims_of(&token_of(&body));
    assert_eq!(claims["aud"], TOKEN_SERVICE);
    assert_eq!(claims["iss"], TOKEN_ISSUER);
    assert_eq!(claims["sub"], USER);
    assert_eq!(
        claims["access"],
        serde_json::json!([
            {"type": "repository", "name": REPO, "actions": ["pull", "push"]},
            {"type": "repository", "name": "other/repo", "actions": ["pull"]},
        ])
    );
    // The registry takes it (404: no such repository yet, but authorized).
    let (code, _, _) = raw_request(
        &fx.registry.addr,
        "GET",
        &format!("/v2/{REPO}/tags/list"),
        &[("Authorization", &format!("Bearer {}", token_of(&body)))],
    );
    assert_eq!(code, 404);
    assert_eq!(fx.registry.token_requests(), 3);
}

#[test]
fn token_auth_anonymous_pull() {
    let Some(fx) = RegistryFixture::builder()
        .auth(Auth::token(USER, PASS, true))
        .needs("skopeo")
        .start()
    else {
        return;
    };
    let creds = format!("{USER}:{PASS}");
    assert_fails("anonymous push", &push(fx.dir(), &fx.registry.addr, None));
    assert_ok("push", &push(fx.dir(), &fx.registry.addr, Some(&creds)));
    check_inspect(&inspect_remote(fx.dir(), &fx.registry.addr, None));
    let wrong = format!("{USER}:wrong");
    assert_fails(
        "inspect with a wrong password",
        &inspect_remote(fx.dir(), &fx.registry.addr, Some(&wrong)),
    );
}

/// A registry with the fixture pushed and a proxy in front of it.
fn registry_with_image() -> Option<RegistryFixture> {
    let fx = RegistryFixture::builder().needs("skopeo").proxy().start()?;
    assert_ok("push", &push(fx.dir(), &fx.registry.addr, None));
    Some(fx)
}

/// Total size of the blobs skopeo wrote to a dir: destination.
fn dir_blob_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n != "manifest.json" && n != "version"
        })
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

fn pull_to_dir(tmp: &Path, addr: &str, dest: &Path, extra: &[&str]) -> Output {
    let src = format!("docker://{addr}/{REPO}:1");
    let dest = format!("dir:{}", s(dest));
    let mut args = vec!["copy", "--src-tls-verify=false"];
    args.extend(extra);
    args.extend([src.as_str(), dest.as_str()]);
    skopeo_try(tmp, &args)
}

#[test]
fn proxy_counts_and_records_a_pull() {
    let Some(fx) = registry_with_image() else {
        return;
    };
    let out_dir = fx.dir().join("pulled");
    assert_ok(
        "pull",
        &pull_to_dir(fx.dir(), &fx.proxy().addr, &out_dir, &[]),
    );
    let bytes = dir_blob_bytes(&out_dir);
    assert!(bytes > 0);
    assert_eq!(fx.proxy().blob_bytes_served(), bytes);
    let reqs = fx.proxy().requests();
    assert!(
        reqs.iter()
            .any(|(m, p, st)| m == "GET" && p == "/v2/" && *st == 200),
        "{reqs:?}"
    );
    assert!(
        reqs.iter()
            .any(|(m, p, st)| m == "GET" && p == &format!("/v2/{REPO}/manifests/1") && *st == 200),
        "{reqs:?}"
    );
    let blob_gets = reqs
        .iter()
        .filter(|(m, p, st)| m == "GET" && p.contains("/blobs/sha256:") && *st == 200)
        .count();
    // The config and the three layers.
    assert_eq!(blob_gets, 4, "{reqs:?}");

    fx.proxy().reset_counters();
    assert_eq!(fx.proxy().blob_bytes_served(), 0);
    assert!(fx.proxy().requests().is_empty());
    check_inspect(&inspect_remote(fx.dir(), &fx.proxy().addr, None));
    assert!(
        fx.proxy().blob_bytes_served() > 0,
        "inspect reads the config blob"
    );
}

#[test]
fn proxy_injected_errors_reach_the_client() {
    let Some(fx) = registry_with_image() else {
        return;
    };
    let manifest = format!("/v2/{REPO}/manifests/1");
    fx.proxy().inject("GET", "/manifests/", 503, 1, Some(1));
    let out = inspect_remote(fx.dir(), &fx.proxy().addr, None);
    assert_fails("inspect answered 503", &out);
    let reqs = fx.proxy().requests();
    assert!(
        reqs.contains(&("GET".into(), manifest.clone(), 503)),
        "{reqs:?}"
    );
    // Used up: the next inspect goes through.
    check_inspect(&inspect_remote(fx.dir(), &fx.proxy().addr, None));

    // On a blob: skopeo 1.9.3's --retry-times covers network errors only, so the
    // 503 ends the copy, and its message names the status.
    fx.proxy().reset_counters();
    fx.proxy().inject("GET", "/blobs/sha256:", 503, 1, Some(1));
    let out = pull_to_dir(
        fx.dir(),
        &fx.proxy().addr,
        &fx.dir().join("failed"),
        &["--retry-times", "3"],
    );
    assert_fails("pull answered 503", &out);
    assert!(stderr_of(&out).contains("503"), "{}", stderr_of(&out));
    let reqs = fx.proxy().requests();
    let injected = reqs
        .iter()
        .filter(|(m, p, st)| m == "GET" && p.contains("/blobs/sha256:") && *st == 503)
        .count();
    assert_eq!(injected, 1, "{reqs:?}");
}

#[test]
fn proxy_cut_download_fails_the_client() {
    let Some(fx) = registry_with_image() else {
        return;
    };
    // One blob GET cut after 10 bytes: the pull fails, and skopeo 1.9.3's
    // --retry-times does not cover an unexpected EOF.
    fx.proxy().cut_after("GET", "/blobs/sha256:", 10, 1);
    let out = pull_to_dir(
        fx.dir(),
        &fx.proxy().addr,
        &fx.dir().join("cut"),
        &["--retry-times", "3"],
    );
    assert_fails("pull with a cut blob", &out);
    assert!(
        stderr_of(&out).contains("unexpected EOF"),
        "{}",
        stderr_of(&out)
    );
    let reqs = fx.proxy().requests();
    assert!(
        reqs.iter()
            .any(|(m, p, st)| m == "GET" && p.contains("/blobs/sha256:") && *st == 200),
        "the cut answer is recorded with the upstream's status: {reqs:?}"
    );
    // The rule is used up: the next pull gets everything.
    fx.proxy().reset_counters();
    let out_dir = fx.dir().join("pulled");
    assert_ok(
        "pull",
        &pull_to_dir(fx.dir(), &fx.proxy().addr, &out_dir, &[]),
    );
    assert_eq!(fx.proxy().blob_bytes_served(), dir_blob_bytes(&out_dir));
}

/// A blob cut after N bytes delivers exactly N bytes and then the end of the stream,
/// even though its Content-Length promised more.
#[test]
fn proxy_cut_after_delivers_exactly_n_bytes() {
    let Some(fx) = RegistryFixture::builder().proxy().start() else {
        return;
    };
    let mut conn = Conn::open(&fx.proxy().addr);
    let digest = conn.upload(
        &format!("http://{}/", fx.proxy().addr),
        &"x".repeat(5000),
        false,
    );
    fx.proxy().cut_after("GET", &digest, 1234, 1);
    let mut cut = Conn::open(&fx.proxy().addr);
    let (code, head, body) = cut.send_partial("GET", &format!("/v2/{REPO}/blobs/{digest}"));
    assert_eq!(code, 200);
    assert_eq!(header(&head, "content-length").as_deref(), Some("5000"));
    assert_eq!(body.len(), 1234);
    assert_eq!(fx.proxy().blob_bytes_served(), 1234);
}

#[test]
fn proxy_push_through_rewrites_locations_and_cuts_uploads() {
    let Some(fx) = RegistryFixture::builder().needs("skopeo").proxy().start() else {
        return;
    };
    // An interrupted upload body fails skopeo's push.
    fx.proxy()
        .cut_upload_after("PATCH", "/blobs/uploads/", 100, 1);
    assert_fails(
        "push with a cut upload",
        &push(fx.dir(), &fx.proxy().addr, None),
    );
    let reqs = fx.proxy().requests();
    assert!(
        reqs.iter().any(|(m, _, st)| m == "PATCH" && *st == 0),
        "{reqs:?}"
    );
    fx.proxy().reset_counters();
    assert_ok("push", &push(fx.dir(), &fx.proxy().addr, None));
    let reqs = fx.proxy().requests();
    // The uploads went on through the proxy: the Location headers named it.
    for (m, st) in [("POST", 202), ("PATCH", 202), ("PUT", 201)] {
        assert!(
            reqs.iter()
                .any(|(rm, p, rs)| rm == m && p.contains("/blobs/uploads/") && *rs == st),
            "no {m} answered {st}: {reqs:?}"
        );
    }
    check_inspect(&inspect_remote(fx.dir(), &fx.registry.addr, None));
    check_stored(&fx.registry);
}

/// The proxy at the HTTP level: keep-alive, HEAD, chunked and sized request bodies,
/// Location rewriting, injected statuses with Retry-After.
#[test]
fn proxy_http_details() {
    let Some(fx) = RegistryFixture::builder().proxy().start() else {
        return;
    };
    let mut conn = Conn::open(&fx.proxy().addr);
    // A monolithic upload with a chunked body, then one with a Content-Length, on one
    // connection.
    for chunked in [true, false] {
        let blob = format!("blob body {chunked}").repeat(1000);
        let digest = conn.upload(&format!("http://{}/", fx.proxy().addr), &blob, chunked);
        let blob_path = format!("/v2/{REPO}/blobs/{digest}");
        let (code, head, body) = conn.send("HEAD", &blob_path, &[], None);
        assert_eq!(code, 200);
        assert_eq!(
            header(&head, "content-length").as_deref(),
            Some(blob.len().to_string().as_str())
        );
        assert!(body.is_empty());
        let (code, _, body) = conn.send("GET", &blob_path, &[("Range", "bytes=5-")], None);
        assert_eq!(code, 206);
        assert_eq!(body, &blob.as_bytes()[5..]);
    }
    assert!(fx.proxy().blob_bytes_served() > 0);
    // An upload session's status and its cancellation: 204s without a body.
    let (code, head, _) = conn.send("POST", &format!("/v2/{REPO}/blobs/uploads/"), &[], None);
    assert_eq!(code, 202, "{head}");
    let location = header(&head, "location").unwrap();
    let session = &location[format!("http://{}", fx.proxy().addr).len()..];
    let (code, head, body) = conn.send("GET", session, &[], None);
    assert_eq!(code, 204, "{head}");
    assert_eq!(header(&head, "range").as_deref(), Some("0-0"));
    assert!(body.is_empty());
    let (code, head, _) = conn.send("DELETE", session, &[], None);
    assert_eq!(code, 204, "{head}");
    fx.proxy().inject("GET", "/v2/", 429, 2, Some(7));
    for _ in 0..2 {
        let (code, head, body) = conn.send("GET", "/v2/", &[], None);
        assert_eq!(code, 429);
        assert_eq!(header(&head, "retry-after").as_deref(), Some("7"));
        assert!(String::from_utf8_lossy(&body).contains("TOOMANYREQUESTS"));
    }
    let (code, _, _) = conn.send("GET", "/v2/", &[], None);
    assert_eq!(code, 200);
    let statuses: Vec<u16> = fx.proxy().requests().iter().map(|r| r.2).collect();
    assert_eq!(
        statuses,
        [202, 201, 200, 206, 202, 201, 200, 206, 202, 204, 204, 429, 429, 200]
    );
}

// ---- a tiny HTTP/1.1 client for the HTTP-level tests ----

fn basic(user: &str, pass: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

fn token_of(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap();
    v["token"].as_str().unwrap().to_string()
}

fn claims_of(jwt: &str) -> Value {
    use base64::Engine;
    let part = jwt.split('.').nth(1).unwrap();
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    serde_json::from_slice(&raw).unwrap()
}

fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

/// One request on a fresh connection; (status, head, body as text).
fn raw_request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String, String) {
    let mut c = Conn::open(addr);
    let (code, head, body) = c.send(method, path, headers, None);
    (code, head, String::from_utf8_lossy(&body).into_owned())
}

struct Conn {
    addr: String,
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Conn {
    /// A monolithic upload of `blob` to REPO (POST, then PUT to the Location, which
    /// must start with `prefix`); its digest.
    fn upload(&mut self, prefix: &str, blob: &str, chunked: bool) -> String {
        let digest = sha256(blob.as_bytes());
        let (code, head, _) = self.send("POST", &format!("/v2/{REPO}/blobs/uploads/"), &[], None);
        assert_eq!(code, 202, "{head}");
        let location = header(&head, "location").unwrap();
        assert!(location.starts_with(prefix), "{location}");
        let path = &location[prefix.len() - 1..];
        let (code, head, _) = self.send(
            "PUT",
            &format!("{path}&digest={digest}"),
            &[],
            Some((blob.as_bytes(), chunked)),
        );
        assert_eq!(code, 201, "{head}");
        digest
    }

    /// A GET whose answer body is read to the end of the stream, whatever its
    /// Content-Length says.
    fn send_partial(&mut self, method: &str, path: &str) -> (u16, String, Vec<u8>) {
        let req = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n\r\n", self.addr);
        self.writer.write_all(req.as_bytes()).unwrap();
        let head = self.read_head();
        let code: u16 = head.split_whitespace().nth(1).unwrap().parse().unwrap();
        let mut body = Vec::new();
        self.reader.read_to_end(&mut body).unwrap();
        (code, head, body)
    }

    fn read_head(&mut self) -> String {
        let mut head = String::new();
        loop {
            let mut line = String::new();
            assert!(
                self.reader.read_line(&mut line).unwrap() > 0,
                "connection closed"
            );
            if line == "\r\n" {
                return head;
            }
            head.push_str(&line);
        }
    }

    fn open(addr: &str) -> Conn {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .unwrap();
        Conn {
            addr: addr.to_string(),
            reader: BufReader::new(s.try_clone().unwrap()),
            writer: s,
        }
    }

    /// Send a request (with a body, chunked or sized) and read the whole answer.
    fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<(&[u8], bool)>,
    ) -> (u16, String, Vec<u8>) {
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.addr);
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        match body {
            Some((b, true)) => {
                req.push_str("Transfer-Encoding: chunked\r\n\r\n");
                for piece in b.chunks(1000) {
                    req.push_str(&format!("{:x}\r\n", piece.len()));
                    req.push_str(std::str::from_utf8(piece).unwrap());
                    req.push_str("\r\n");
                }
                req.push_str("0\r\n\r\n");
            }
            Some((b, false)) => {
                req.push_str(&format!("Content-Length: {}\r\n\r\n", b.len()));
                req.push_str(std::str::from_utf8(b).unwrap());
            }
            None => req.push_str("\r\n"),
        }
        self.writer.write_all(req.as_bytes()).unwrap();
        let head = self.read_head();
        let code: u16 = head.split_whitespace().nth(1).unwrap().parse().unwrap();
        let mut body = Vec::new();
        if method == "HEAD" || code == 204 {
        } else if header(&head, "transfer-encoding").is_some_and(|t| t.contains("chunked")) {
            loop {
                let mut line = String::new();
                self.reader.read_line(&mut line).unwrap();
                let n = usize::from_str_radix(line.trim(), 16).unwrap();
                let mut chunk = vec![0u8; n + 2];
                self.reader.read_exact(&mut chunk).unwrap();
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..n]);
            }
        } else if let Some(n) = header(&head, "content-length") {
            let mut b = vec![0u8; n.parse().unwrap()];
            self.reader.read_exact(&mut b).unwrap();
            body = b;
        } else {
            self.reader.read_to_end(&mut body).unwrap();
        }
        (code, head, body)
    }
}

/// What distribution 2.8.2 does with an upload session whose PATCH body was cut (the
/// proxy forwards the first bytes, the client gets no answer): the session is dead, as
/// the offset in its `_state` no longer matches what the registry stored, and GET on it
/// answers 404 BLOB_UPLOAD_INVALID. A client must start a new upload, not resume.
#[test]
fn proxy_cut_upload_kills_the_session() {
    let Some(fx) = RegistryFixture::builder().proxy().start() else {
        return;
    };
    let mut conn = Conn::open(&fx.proxy().addr);
    let (code, head, _) = conn.send("POST", &format!("/v2/{REPO}/blobs/uploads/"), &[], None);
    assert_eq!(code, 202, "{head}");
    let location = header(&head, "location").unwrap();
    let session = location[format!("http://{}", fx.proxy().addr).len()..].to_string();

    fx.proxy()
        .cut_upload_after("PATCH", "/blobs/uploads/", 1000, 1);
    let mut cut = TcpStream::connect(&fx.proxy().addr).unwrap();
    cut.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let req = format!(
        "PATCH {session} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/octet-stream\r\n\
         Content-Range: 0-4999\r\nContent-Length: 5000\r\n\r\n",
        fx.proxy().addr
    );
    cut.write_all(req.as_bytes()).unwrap();
    let _ = cut.write_all(&[b'a'; 5000]);
    let mut answer = Vec::new();
    let _ = cut.read_to_end(&mut answer);
    assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
    let last = fx.proxy().requests().last().unwrap().clone();
    assert_eq!((last.0.as_str(), last.2), ("PATCH", 0));

    let (code, _, body) = conn.send("GET", &session, &[], None);
    assert_eq!(code, 404);
    assert!(
        String::from_utf8_lossy(&body).contains("BLOB_UPLOAD_INVALID"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    // A new session takes the blob.
    conn.upload(
        &format!("http://{}/", fx.proxy().addr),
        &"a".repeat(5000),
        true,
    );
}
