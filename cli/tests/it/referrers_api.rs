//! Referrers through a registry that has the OCI 1.1 referrers API (a scripted one on
//! 127.0.0.1: distribution 2.8, the loopback `docker-registry`, has none): what is
//! pushed with `--referrers` is indexed by the registry itself (`OCI-Subject`), so no
//! fallback tag is written; what it lists is found and carried; and registries that
//! lie (loops, a referrer naming itself, 100,000 entries) cost bounded work.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::Path;
use std::process::Output;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use crate::common::hostile::{Answer, Log, Request, Server};
use crate::common::registry::isolated_dockhand;
use crate::common::*;

const EMPTY: &str = "application/vnd.oci.empty.v1+json";
const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const INDEX: &str = "application/vnd.oci.image.index.v1+json";
const SPDX: &str = "application/spdx+json";
const SIG: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";
const SIMPLESIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";

/// What a scripted registry holds, for every repository alike.
#[derive(Default)]
struct Store {
    blobs: HashMap<String, Vec<u8>>,
    /// Digest -> (media type, bytes).
    manifests: HashMap<String, (String, Vec<u8>)>,
    tags: BTreeMap<String, String>,
    uploads: HashMap<String, Vec<u8>>,
    next_upload: usize,
}

impl Store {
    /// The referrers index the API answers for `digest`, filtered by `artifact_type`.
    fn referrers(&self, digest: &str, artifact_type: Option<&str>) -> Value {
        let mut listed: Vec<Value> = Vec::new();
        let mut digests: Vec<&String> = self.manifests.keys().collect();
        digests.sort();
        for d in digests {
            let (media_type, bytes) = &self.manifests[d];
            let doc: Value = serde_json::from_slice(bytes).unwrap();
            if doc["subject"]["digest"].as_str() != Some(digest) {
                continue;
            }
            let kind = doc["artifactType"]
                .as_str()
                .or(doc["config"]["mediaType"].as_str())
                .unwrap_or("")
                .to_string();
            if artifact_type.is_some_and(|t| t != kind) {
                continue;
            }
            let mut entry = json!({
                "mediaType": media_type, "digest": d, "size": bytes.len(), "artifactType": kind,
            });
            if doc["annotations"].is_object() {
                entry["annotations"] = doc["annotations"].clone();
            }
            listed.push(entry);
        }
        json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": listed})
    }
}

/// A registry that keeps what is pushed in memory and answers as distribution 1.1
/// does; with `api`, it has the referrers API (and says `OCI-Subject` when a manifest
/// with a subject is put), without it, `referrers/` is a 404. `lie` answers first,
/// for the requests it wants to.
fn registry(
    log: &Log,
    api: bool,
    lie: impl Fn(&Request) -> Option<Answer> + Send + Sync + 'static,
) -> (Server, Arc<Mutex<Store>>) {
    registry_on(Arc::new(Mutex::new(Store::default())), log, api, lie)
}

/// [`registry`], serving `store` (another server may serve it too).
fn registry_on(
    store: Arc<Mutex<Store>>,
    log: &Log,
    api: bool,
    lie: impl Fn(&Request) -> Option<Answer> + Send + Sync + 'static,
) -> (Server, Arc<Mutex<Store>>) {
    let held = Arc::clone(&store);
    let server = Server::start("registry", log, move |r| {
        if let Some(answer) = lie(r) {
            return answer;
        }
        answer(&mut held.lock().unwrap(), r, api)
    });
    (server, store)
}

fn answer(store: &mut Store, r: &Request, api: bool) -> Answer {
    let path = r.path().to_string();
    if path == "/v2/" {
        return Answer::bytes(200, "{}");
    }
    let query = r.target.split_once('?').map_or("", |(_, q)| q);
    let param = |name: &str| {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .map(|v| {
                v.replace("%3A", ":")
                    .replace("%2B", "+")
                    .replace("%2F", "/")
            })
    };
    let Some(rest) = path.strip_prefix("/v2/") else {
        return Answer::new(404);
    };
    let split = |marker: &str| {
        rest.split_once(marker)
            .map(|(repo, tail)| (repo.to_string(), tail.to_string()))
    };
    if let Some((repo, _)) = split("/tags/list") {
        let tags: Vec<&String> = store.tags.keys().collect();
        return Answer::bytes(200, json!({"name": repo, "tags": tags}).to_string());
    }
    if let Some((_, digest)) = split("/referrers/") {
        if !api {
            return Answer::new(404);
        }
        let index = store.referrers(&digest, param("artifactType").as_deref());
        return Answer::bytes(200, index.to_string()).header("Content-Type", INDEX);
    }
    if let Some((repo, tail)) = split("/blobs/uploads/") {
        return match (r.method.as_str(), tail.as_str()) {
            ("POST", _) => {
                store.next_upload += 1;
                let id = store.next_upload.to_string();
                store.uploads.insert(id.clone(), Vec::new());
                Answer::new(202)
                    .header("Location", format!("/v2/{repo}/blobs/uploads/{id}"))
                    .header("Range", "0-0")
            }
            ("PATCH", id) => {
                let Some(upload) = store.uploads.get_mut(id) else {
                    return Answer::new(404);
                };
                upload.extend_from_slice(&r.body);
                let end = upload.len().saturating_sub(1);
                Answer::new(202)
                    .header("Location", format!("/v2/{repo}/blobs/uploads/{id}"))
                    .header("Range", format!("0-{end}"))
            }
            ("PUT", id) => {
                let Some(mut upload) = store.uploads.remove(id) else {
                    return Answer::new(404);
                };
                upload.extend_from_slice(&r.body);
                let digest = param("digest").unwrap_or_default();
                if sha256(&upload) != digest {
                    return Answer::bytes(400, "{\"errors\":[{\"code\":\"DIGEST_INVALID\"}]}");
                }
                store.blobs.insert(digest.clone(), upload);
                Answer::new(201)
                    .header("Location", format!("/v2/{repo}/blobs/{digest}"))
                    .header("Docker-Content-Digest", digest)
            }
            _ => Answer::new(405),
        };
    }
    if let Some((_, digest)) = split("/blobs/") {
        return match store.blobs.get(&digest) {
            Some(bytes) => {
                Answer::bytes(200, bytes.clone()).header("Docker-Content-Digest", digest)
            }
            None => Answer::new(404),
        };
    }
    if let Some((_, reference)) = split("/manifests/") {
        if r.method == "PUT" {
            let digest = sha256(&r.body);
            let media_type = r.header("content-type").unwrap_or(MANIFEST).to_string();
            let doc: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
            store
                .manifests
                .insert(digest.clone(), (media_type, r.body.clone()));
            if !reference.starts_with("sha256:") {
                store.tags.insert(reference.clone(), digest.clone());
            }
            let mut answer = Answer::new(201).header("Docker-Content-Digest", digest);
            if let (true, Some(subject)) = (api, doc["subject"]["digest"].as_str()) {
                answer = answer.header("OCI-Subject", subject);
            }
            return answer;
        }
        let digest = match store.tags.get(&reference) {
            Some(digest) => digest.clone(),
            None => reference,
        };
        return match store.manifests.get(&digest) {
            Some((media_type, bytes)) => Answer::bytes(200, bytes.clone())
                .header("Content-Type", media_type.clone())
                .header("Docker-Content-Digest", digest),
            None => Answer::new(404),
        };
    }
    Answer::new(404)
}

/// Write `bytes` as a blob of the layout `dir`; its descriptor.
fn blob(dir: &Path, media_type: &str, bytes: &[u8]) -> Value {
    let digest = sha256(bytes);
    let path = dir
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    fs::write(path, bytes).unwrap();
    json!({"mediaType": media_type, "digest": digest, "size": bytes.len()})
}

/// A referrer manifest of `artifact_type` with one layer `payload`, whose subject is
/// `subject`: its descriptor in the layout `dir`.
fn referrer(
    dir: &Path,
    artifact_type: &str,
    layer_type: &str,
    payload: &[u8],
    subject: &Value,
) -> Value {
    let doc = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "artifactType": artifact_type,
        "config": blob(dir, EMPTY, b"{}"),
        "layers": [blob(dir, layer_type, payload)],
        "subject": subject,
        "annotations": {"org.opencontainers.image.created": "2026-01-01T00:00:00Z"},
    });
    blob(dir, MANIFEST, &serde_json::to_vec(&doc).unwrap())
}

/// The digests of an image, an SBOM referring to it, a signature of the SBOM and a
/// cosign `.sig` tag, in an OCI layout at `dir` (tag `1.0`).
struct Built {
    image: String,
    sbom: String,
    sbom_signature: String,
    cosign: String,
}

fn build_layout(dir: &Path) -> Built {
    let src = dir.with_extension("src");
    ok(&[
        "convert",
        fixture("skopeo-oci").input(),
        "--to",
        "oci",
        s(&src),
    ]);
    fs::rename(&src, dir).unwrap();
    let index: Value = serde_json::from_slice(&fs::read(dir.join("index.json")).unwrap()).unwrap();
    let image = index["manifests"][0].clone();
    let image_digest = image["digest"].as_str().unwrap().to_string();
    let subject = json!({"mediaType": MANIFEST, "digest": image_digest, "size": image["size"]});
    let sbom = referrer(dir, SPDX, SPDX, b"{\"spdxVersion\":\"SPDX-2.3\"}", &subject);
    let sbom_subject = sbom.clone();
    let signature = referrer(dir, SIG, SIMPLESIGNING, b"{\"critical\":{}}", &sbom_subject);
    let cosign_doc = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": blob(dir, "application/vnd.oci.image.config.v1+json", b"{\"architecture\":\"\",\"os\":\"\"}"),
        "layers": [blob(dir, SIMPLESIGNING, b"{\"critical\":{\"image\":{}}}")],
    });
    let mut cosign = blob(dir, MANIFEST, &serde_json::to_vec(&cosign_doc).unwrap());
    let sig_tag = format!("{}.sig", image_digest.replace(':', "-"));
    cosign["annotations"] = json!({"org.opencontainers.image.ref.name": sig_tag});
    let mut top = index.clone();
    let manifests = top["manifests"].as_array_mut().unwrap();
    manifests.push(sbom.clone());
    manifests.push(signature.clone());
    manifests.push(cosign.clone());
    fs::write(dir.join("index.json"), serde_json::to_vec(&top).unwrap()).unwrap();
    Built {
        image: image_digest,
        sbom: sbom["digest"].as_str().unwrap().to_string(),
        sbom_signature: signature["digest"].as_str().unwrap().to_string(),
        cosign: cosign["digest"].as_str().unwrap().to_string(),
    }
}

fn dh(tmp: &Path, args: &[&str]) -> Output {
    isolated_dockhand(tmp, args)
        .output()
        .expect("running dockhand")
}

fn dh_ok(tmp: &Path, args: &[&str]) -> String {
    let out = dh(tmp, args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "dockhand {args:?} failed: {stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Run dockhand, require exit code 1 and one escaped error line; the line.
fn dh_refused(tmp: &Path, args: &[&str]) -> String {
    let out = dh(tmp, args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

/// What `inspect --json` says refers to each image: (subject, kind, digest) sorted,
/// nested referrers flattened under the digest they refer to.
fn listed(tmp: &Path, source: &str) -> Vec<(String, String, String)> {
    let doc: Value = serde_json::from_str(&dh_ok(
        tmp,
        &["inspect", "--json", "--tls-verify=false", source],
    ))
    .unwrap();
    fn walk(subject: &str, list: &Value, out: &mut Vec<(String, String, String)>) {
        for r in list.as_array().into_iter().flatten() {
            let digest = r["digest"].as_str().unwrap().to_string();
            out.push((
                subject.to_string(),
                r["kind"].as_str().unwrap().to_string(),
                digest.clone(),
            ));
            walk(&digest, &r["referrers"], out);
        }
    }
    let mut out = Vec::new();
    for image in doc["images"].as_array().unwrap() {
        let subject = image["manifest"]["digest"].as_str().unwrap_or("");
        walk(subject, &image["referrers"], &mut out);
    }
    out.sort();
    out
}

fn expected(built: &Built) -> Vec<(String, String, String)> {
    let mut want = vec![
        (built.image.clone(), "referrer".into(), built.sbom.clone()),
        (
            built.image.clone(),
            "cosign-signature".into(),
            built.cosign.clone(),
        ),
        (
            built.sbom.clone(),
            "cosign-signature".into(),
            built.sbom_signature.clone(),
        ),
    ];
    want.sort();
    want
}

#[test]
fn a_registry_with_the_referrers_api_indexes_what_is_pushed_and_lists_it_back() {
    let tmp = tempdir();
    let t = tmp.path();
    let layout = t.join("layout");
    let built = build_layout(&layout);
    assert_eq!(listed(t, s(&layout)), expected(&built));

    let log = Log::default();
    let (server, store) = registry(&log, true, |_| None);
    let remote = format!("docker://{}/app/signed:1", server.addr);
    let said = dh(
        t,
        &[
            "convert",
            "--referrers",
            "--tls-verify=false",
            s(&layout),
            &remote,
        ],
    );
    let stderr = String::from_utf8_lossy(&said.stderr);
    assert!(said.status.success(), "{stderr}");
    assert!(
        stderr.contains("carried 3 referrer manifest(s) along"),
        "{stderr}"
    );
    // The registry indexed the referrers itself: no fallback tag, the cosign tag kept.
    let tags: Vec<String> = store.lock().unwrap().tags.keys().cloned().collect();
    let sig_tag = format!("{}.sig", built.image.replace(':', "-"));
    assert_eq!(tags, vec!["1".to_string(), sig_tag], "{tags:?}");
    let puts: Vec<String> = log
        .all()
        .iter()
        .filter(|r| r.method == "PUT" && r.path().contains("/manifests/"))
        .map(|r| r.path().to_string())
        .collect();
    for digest in [&built.sbom, &built.sbom_signature] {
        assert!(
            puts.iter()
                .any(|p| p.ends_with(&format!("/manifests/{digest}"))),
            "{puts:?}"
        );
    }
    // Each manifest's exact bytes.
    for digest in [
        &built.image,
        &built.sbom,
        &built.sbom_signature,
        &built.cosign,
    ] {
        let held = store.lock().unwrap().manifests[digest.as_str()].1.clone();
        let file = layout
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"));
        assert_eq!(held, fs::read(file).unwrap(), "{digest}");
    }

    // Found back through the API (and the cosign tag), and carried into a layout.
    assert_eq!(listed(t, &remote), expected(&built));
    let asked: Vec<String> = log
        .all()
        .iter()
        .filter(|r| r.path().contains("/referrers/"))
        .map(|r| r.path().to_string())
        .collect();
    assert!(asked.iter().any(|p| p.ends_with(&built.image)), "{asked:?}");
    let out = t.join("out");
    dh_ok(
        t,
        &[
            "convert",
            "-q",
            "--referrers",
            "--tls-verify=false",
            &remote,
            s(&out),
        ],
    );
    assert_eq!(listed(t, s(&out)), expected(&built));

    // Filtered by artifact type: the SBOM and its signature, not the cosign tag.
    let log2 = Log::default();
    let (plain, plain_store) = registry(&log2, false, |_| None);
    let filtered = format!("docker://{}/app/sbom-only:1", plain.addr);
    dh_ok(
        t,
        &[
            "convert",
            "-q",
            "--referrers-type",
            SPDX,
            "--tls-verify=false",
            &remote,
            &filtered,
        ],
    );
    let tags: Vec<String> = plain_store.lock().unwrap().tags.keys().cloned().collect();
    // No referrers API there: the fallback tags of the image and of the SBOM.
    let mut want = vec![
        "1".to_string(),
        built.image.replace(':', "-"),
        built.sbom.replace(':', "-"),
    ];
    want.sort();
    assert_eq!(tags, want);
    let mut want_listed = expected(&built);
    want_listed.retain(|(_, _, d)| *d != built.cosign);
    assert_eq!(listed(t, &filtered), want_listed);
}

#[test]
fn lying_registries_cost_bounded_work() {
    let tmp = tempdir();
    let t = tmp.path();
    let layout = t.join("layout");
    let built = build_layout(&layout);
    let log = Log::default();
    let (server, store) = registry(&log, true, |_| None);
    let remote = format!("docker://{}/app/signed:1", server.addr);
    dh_ok(
        t,
        &[
            "convert",
            "-q",
            "--referrers",
            "--tls-verify=false",
            s(&layout),
            &remote,
        ],
    );

    // A loop: the SBOM's referrers are the image itself and the SBOM (a subject
    // pointing at itself). Each is listed once and each manifest asked about once.
    let sbom = built.sbom.clone();
    let image = built.image.clone();
    let (liar, _) = registry_on(Arc::clone(&store), &log, true, move |r| {
        if !r.path().ends_with(&format!("/referrers/{sbom}")) {
            return None;
        }
        let loop_back = json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": [
            {"mediaType": MANIFEST, "digest": image, "size": 1, "artifactType": "x/loop"},
            {"mediaType": MANIFEST, "digest": sbom, "size": 1, "artifactType": "x/self"},
        ]});
        Some(Answer::bytes(200, loop_back.to_string()).header("Content-Type", INDEX))
    });
    let lying = format!("docker://{}/app/signed:1", liar.addr);
    let before = log.all().len();
    // The image and the SBOM are listed where they first appear, not again below.
    let listing = listed(t, &lying);
    let mut want = expected(&built);
    want.retain(|(_, _, d)| *d != built.sbom_signature);
    assert_eq!(listing, want, "the loop is cut where it closes");
    let asked: Vec<String> = log.all()[before..]
        .iter()
        .filter(|r| r.path().contains("/referrers/"))
        .map(|r| r.path().to_string())
        .collect();
    let mut unique = asked.clone();
    unique.sort();
    unique.dedup();
    // Each digest's referrers asked for once: the image, the SBOM, the cosign tag's.
    assert_eq!(asked.len(), unique.len(), "{asked:?}");
    assert_eq!(unique.len(), 3, "{asked:?}");

    // The API's answer in pages (`Link`), followed; a page leading back to itself is
    // refused in one line.
    let image = built.image.clone();
    let held = Arc::clone(&store);
    let (paged, _) = registry_on(Arc::clone(&store), &log, true, move |r| {
        let (path, query) = (r.path(), r.target.split_once('?').map_or("", |(_, q)| q));
        if !path.ends_with(&format!("/referrers/{image}")) {
            return None;
        }
        let all = held.lock().unwrap().referrers(&image, None);
        let entries = all["manifests"].as_array().unwrap().clone();
        // The first page lists nothing: only a client that follows the link finds them.
        let (page, link) = match query {
            "page=2" => (&entries[..], None),
            _ => (
                &entries[..0],
                Some(format!("<{path}?page=2>; rel=\"next\"")),
            ),
        };
        let body = json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": page});
        let mut answer = Answer::bytes(200, body.to_string()).header("Content-Type", INDEX);
        if let Some(link) = link {
            answer = answer.header("Link", link);
        }
        Some(answer)
    });
    let paged_remote = format!("docker://{}/app/signed:1", paged.addr);
    assert_eq!(listed(t, &paged_remote), expected(&built));
    let image = built.image.clone();
    let (circular, _) = registry_on(Arc::clone(&store), &log, true, move |r| {
        let path = r.path();
        path.ends_with(&format!("/referrers/{image}")).then(|| {
            let body = json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": []});
            Answer::bytes(200, body.to_string())
                .header("Content-Type", INDEX)
                .header("Link", format!("<{path}>; rel=\"next\""))
        })
    });
    let said = dh_refused(
        t,
        &[
            "inspect",
            "--tls-verify=false",
            &format!("docker://{}/app/signed:1", circular.addr),
        ],
    );
    assert!(said.contains("a page already read"), "{said}");

    // 100,000 referrers in one answer: refused in one line.
    let image = built.image.clone();
    let (flood, _) = registry(&log, true, move |r| {
        if r.path().ends_with(&format!("/referrers/{image}")) {
            let entry = format!(
                "{{\"mediaType\":\"{MANIFEST}\",\"digest\":\"sha256:{}\",\"size\":2}}",
                "0".repeat(64)
            );
            let body = format!(
                "{{\"schemaVersion\":2,\"mediaType\":\"{INDEX}\",\"manifests\":[{}]}}",
                vec![entry; 100_000].join(",")
            );
            return Some(Answer::bytes(200, body).header("Content-Type", INDEX));
        }
        None
    });
    let flooded = format!("docker://{}/app/signed:1", flood.addr);
    dh_ok(
        t,
        &["convert", "-q", "--tls-verify=false", s(&layout), &flooded],
    );
    let said = dh_refused(t, &["inspect", "--tls-verify=false", &flooded]);
    assert!(said.contains("limit"), "{said}");
    let said = dh_refused(
        t,
        &[
            "convert",
            "--referrers",
            "--tls-verify=false",
            &flooded,
            s(&t.join("never")),
        ],
    );
    assert!(said.contains("limit"), "{said}");
    assert!(!t.join("never").exists());
}

#[test]
fn the_air_gap_copy_works_between_a_registry_with_the_api_and_one_without() {
    let Some(plain) = crate::common::registry::RegistryFixture::builder().start() else {
        return;
    };
    let t = plain.dir();
    let layout = t.join("layout");
    let built = build_layout(&layout);
    let log = Log::default();
    let (server, _) = registry(&log, true, |_| None);
    let with_api = format!("docker://{}/team/app:1", server.addr);
    dh_ok(
        t,
        &[
            "convert",
            "-q",
            "--referrers",
            "--tls-verify=false",
            s(&layout),
            &with_api,
        ],
    );

    // With the API → a file → distribution 2.8 (the fallback tag), and back again.
    let archive = t.join("carried.tar");
    let carried = format!("oci-archive:{}", s(&archive));
    dh_ok(
        t,
        &[
            "convert",
            "-q",
            "--referrers",
            "--tls-verify=false",
            &with_api,
            &carried,
        ],
    );
    // Nothing of the pull stays in the blob cache, the referrers' blobs included.
    let cache = t.join("xdg-cache/dockhand/blobs/sha256");
    let left: Vec<_> = fs::read_dir(&cache)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
    let without_api = plain.remote("mirror/app:1");
    dh_ok(
        t,
        &[
            "convert",
            "-q",
            "--referrers",
            "--tls-verify=false",
            &carried,
            &without_api,
        ],
    );
    let digest = |r: &str| dh_ok(t, &["digest", "--tls-verify=false", r]);
    assert_eq!(digest(&without_api).trim(), built.image);
    assert_eq!(listed(t, &without_api), expected(&built));

    let (second, store) = registry(&log, true, |_| None);
    let back = format!("docker://{}/team/back:1", second.addr);
    let archive2 = t.join("back.tar");
    let carried2 = format!("oci-archive:{}", s(&archive2));
    dh_ok(
        t,
        &[
            "convert",
            "-q",
            "--referrers",
            "--tls-verify=false",
            &without_api,
            &carried2,
        ],
    );
    dh_ok(
        t,
        &[
            "convert",
            "-q",
            "--referrers",
            "--tls-verify=false",
            &carried2,
            &back,
        ],
    );
    assert_eq!(digest(&back).trim(), built.image);
    assert_eq!(listed(t, &back), expected(&built));
    // The registry with the API indexed them: no fallback tag came along to it.
    let tags: Vec<String> = store.lock().unwrap().tags.keys().cloned().collect();
    assert!(!tags.iter().any(|t| t.len() == 71), "{tags:?}");
}

#[test]
fn every_referrer_of_a_real_layout_survives_an_archive_and_a_registry() {
    // regclient's test repository: multi-platform indexes with referrers of the index
    // and of each platform, chains, a referrer that is an index, fallback tags.
    let Some(repo) = corpus_item("regclient/testrepo") else {
        return;
    };
    let Some(fx) = crate::common::registry::RegistryFixture::builder().start() else {
        return;
    };
    let t = fx.dir();
    let referrers_section = |source: &str| -> String {
        let text = dh_ok(t, &["inspect", "--all", "--tls-verify=false", source]);
        text.find("\nreferrers")
            .map(|at| text[at..].to_string())
            .unwrap_or_default()
    };
    let archive = t.join("all.tar");
    let carried = format!("oci-archive:{}", s(&archive));
    dh_ok(
        t,
        &["convert", "-q", "--all", "--referrers", s(&repo), &carried],
    );
    let want = referrers_section(s(&repo));
    assert!(want.matches("\nreferrers").count() >= 5, "{want}");
    assert_eq!(referrers_section(&carried), want);
    for tag in ["v1", "v2", "v3"] {
        let source = format!("oci:{}:{tag}", s(&repo));
        let remote = fx.remote(&format!("test/repo:{tag}"));
        dh_ok(
            t,
            &[
                "convert",
                "-q",
                "--all",
                "--referrers",
                "--tls-verify=false",
                &source,
                &remote,
            ],
        );
        let numbered = |text: String| -> String {
            text.lines()
                .map(|l| match l.split_once(" @") {
                    Some((head, rest)) => {
                        format!("{head} @N{}", rest.trim_start_matches(char::is_numeric))
                    }
                    None => l.to_string(),
                })
                .collect::<Vec<_>>()
                .join("\n")
        };
        let at_source = numbered(dh_ok(t, &["inspect", "--all", &source]));
        let at_registry = numbered(dh_ok(
            t,
            &["inspect", "--all", "--tls-verify=false", &remote],
        ));
        let section = |text: &str| text.find("\nreferrers").map(|at| text[at..].to_string());
        assert!(section(&at_source).is_some(), "{tag}: {at_source}");
        assert_eq!(section(&at_registry), section(&at_source), "{tag}");
        assert_eq!(
            dh_ok(t, &["digest", "--tls-verify=false", &remote]),
            dh_ok(t, &["digest", "--all", &source]),
            "{tag}"
        );
    }
}
