//! `convert --referrers`: what is attached to an image (OCI 1.1 referrers, cosign tags,
//! BuildKit attestations) is carried along byte for byte, into OCI layouts and
//! archives, Docker >= 25 hybrid archives and registries, and refused where it has no
//! place. The layouts are built here (an image, an SBOM referring to it, a signature of
//! the SBOM, a cosign `.sig` tag with a simple-signing payload, a BuildKit attestation
//! in the image's index); the registries are distribution's `docker-registry` 2.8,
//! which has no referrers API, so the fallback tag `sha256-<hex>` is exercised.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use crate::common::cosign::{desc, payload, UPLOADER};
use crate::common::interop::read_member;
use crate::common::registry::*;
use crate::common::*;

const EMPTY: &str = "application/vnd.oci.empty.v1+json";
const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const INDEX: &str = "application/vnd.oci.image.index.v1+json";
const IMAGE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const SIMPLESIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
const SIG_ARTIFACT: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";
const SPDX: &str = "application/spdx+json";
const VEX: &str = "application/vnd.example.vex+json";
const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Makes a P-256 private key in KEYDIR on first use (with its public key, PEM PKIX, as
/// `cosign.pub`, as `cosign generate-key-pair` keys are), then prints the base64 ASN.1
/// DER ECDSA-SHA256 signature of PAYLOAD's bytes.
const SIGNER: &str = r#"
import base64, os, sys
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
keydir, payload = sys.argv[1:3]
private = os.path.join(keydir, "key.pem")
if os.path.exists(private):
    key = serialization.load_pem_private_key(open(private, "rb").read(), None)
else:
    os.makedirs(keydir, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    open(private, "wb").write(key.private_bytes(serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    open(os.path.join(keydir, "cosign.pub"), "wb").write(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
sys.stdout.write(base64.b64encode(key.sign(open(payload, "rb").read(),
    ec.ECDSA(hashes.SHA256()))).decode())
"#;

/// An ECDSA P-256 key pair made for one test.
struct Key {
    dir: PathBuf,
}

impl Key {
    /// A new key in `tmp/key`; `None` (skipped visibly, or failing under
    /// DOCKHAND_REQUIRE_INTEROP) without Python's cryptography.
    fn new(tmp: &Path) -> Option<Key> {
        if !have_python_cryptography(&test_name()) {
            return None;
        }
        let key = Key {
            dir: tmp.join("key"),
        };
        key.sign(b"make the key");
        Some(key)
    }

    fn public(&self) -> String {
        s(&self.dir.join("cosign.pub")).to_string()
    }

    /// The base64 signature of `payload`.
    fn sign(&self, payload: &[u8]) -> String {
        let file = self.dir.with_extension("payload");
        fs::write(&file, payload).unwrap();
        let mut cmd = Command::new(python());
        cmd.args(["-c", SIGNER, s(&self.dir), s(&file)]);
        String::from_utf8(run_cmd(cmd)).unwrap()
    }
}

fn bytes(doc: &Value) -> Vec<u8> {
    serde_json::to_vec(doc).unwrap()
}

/// A manifest and the blobs it names.
struct Manifest {
    bytes: Vec<u8>,
    blobs: Vec<Vec<u8>>,
}

/// A cosign `.sig` tag manifest as cosign writes one: an image config whose diff_id is
/// the payload's digest, one simple-signing layer with the base64 signature in its
/// `dev.cosignproject.cosign/signature` annotation.
fn cosign_signature(payload: &[u8], signature: &str) -> Manifest {
    let mut layer = desc(SIMPLESIGNING, payload);
    layer["annotations"] = json!({ "dev.cosignproject.cosign/signature": signature });
    let config = bytes(&json!({
        "architecture": "", "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"}], "os": "",
        "rootfs": {"type": "layers", "diff_ids": [sha256(payload)]}, "config": {},
    }));
    let doc = json!({
        "schemaVersion": 2, "mediaType": MANIFEST,
        "config": desc(IMAGE_CONFIG, &config), "layers": [layer],
    });
    Manifest {
        bytes: bytes(&doc),
        blobs: vec![config, payload.to_vec()],
    }
}

/// An OCI 1.1 artifact manifest (empty config, one layer `payload` of `layer_type`)
/// of `artifact_type`, referring to `subject` when given.
fn artifact(
    artifact_type: Option<&str>,
    layer_type: &str,
    payload: &[u8],
    subject: Option<&Value>,
) -> Manifest {
    let config = b"{}".to_vec();
    let mut doc = json!({
        "schemaVersion": 2, "mediaType": MANIFEST,
        "config": desc(EMPTY, &config), "layers": [desc(layer_type, payload)],
    });
    if let Some(t) = artifact_type {
        doc["artifactType"] = json!(t);
    }
    if let Some(s) = subject {
        doc["subject"] = s.clone();
    }
    Manifest {
        bytes: bytes(&doc),
        blobs: vec![config, payload.to_vec()],
    }
}

/// Write `bytes` as a blob of the layout `dir`.
fn put_blob(dir: &Path, bytes: &[u8]) {
    let hex = sha256(bytes).trim_start_matches("sha256:").to_string();
    fs::write(dir.join("blobs/sha256").join(hex), bytes).unwrap();
}

/// Write `m` (its blobs and manifest) into the layout `dir`; its descriptor.
fn put_manifest(dir: &Path, m: &Manifest) -> Value {
    for blob in &m.blobs {
        put_blob(dir, blob);
    }
    put_blob(dir, &m.bytes);
    desc(MANIFEST, &m.bytes)
}

/// The digests of what `build_layout` wrote.
struct Built {
    /// The image's manifest.
    image: String,
    /// The image index (tag `1.0`) listing it and the BuildKit attestation.
    index: String,
    /// An SPDX SBOM referring to the image.
    sbom: String,
    /// A cosign signature (OCI referrer) of the SBOM.
    sbom_signature: String,
    /// A VEX document referring to the image.
    vex: String,
    /// The cosign `.sig` tag manifest of the image.
    cosign: String,
    cosign_payload: Vec<u8>,
    buildkit: String,
    /// Every referrer manifest, digest → bytes.
    manifests: Vec<(String, Vec<u8>)>,
}

impl Built {
    fn fallback_tag(&self) -> String {
        self.image.replace(':', "-")
    }
    fn cosign_tag(&self) -> String {
        format!("{}.sig", self.fallback_tag())
    }
}

/// An OCI layout at `dir` holding one image (tag `1.0`, inside an image index with a
/// BuildKit attestation manifest), an SBOM and a VEX document referring to it, a
/// signature referring to the SBOM, and a cosign `.sig` tag manifest whose payload
/// names the image, signed with `key` when given (else a signature that verifies with
/// nothing).
fn build_layout(dir: &Path, key: Option<&Key>) -> Built {
    build_layout_from("skopeo-oci", dir, key)
}

/// [`build_layout`] around the image of the fixture `name` (skopeo-oci has gzip
/// layers, which every destination keeps as they are; docker-save-basic's are
/// uncompressed, which a push compresses).
fn build_layout_from(name: &str, dir: &Path, key: Option<&Key>) -> Built {
    let src = dir.with_extension("src");
    ok(&[
        "convert",
        "-q",
        fixture(name).input(),
        "--to",
        "oci",
        s(&src),
    ]);
    fs::rename(&src, dir).unwrap();
    let index_json: Value =
        serde_json::from_slice(&fs::read(dir.join("index.json")).unwrap()).unwrap();
    let mut image = index_json["manifests"][0].clone();
    let image_digest = image["digest"].as_str().unwrap().to_string();
    image.as_object_mut().unwrap().remove("annotations");
    image["platform"] = json!({"os": "linux", "architecture": "amd64"});
    let subject = json!({"mediaType": MANIFEST, "digest": image_digest, "size": image["size"]});

    let buildkit = artifact(
        None,
        "application/vnd.in-toto+json",
        b"{\"predicate\":1}",
        None,
    );
    let mut buildkit_desc = put_manifest(dir, &buildkit);
    buildkit_desc["platform"] = json!({"os": "unknown", "architecture": "unknown"});
    buildkit_desc["annotations"] = json!({
        "vnd.docker.reference.type": "attestation-manifest",
        "vnd.docker.reference.digest": image_digest,
    });
    let image_index = bytes(&json!({
        "schemaVersion": 2, "mediaType": INDEX, "manifests": [image, buildkit_desc],
    }));
    put_blob(dir, &image_index);
    let mut index_desc = desc(INDEX, &image_index);
    index_desc["annotations"] = json!({ REF_NAME: "1.0" });

    let sbom = artifact(
        Some(SPDX),
        SPDX,
        b"{\"spdxVersion\":\"SPDX-2.3\"}",
        Some(&subject),
    );
    let sbom_desc = put_manifest(dir, &sbom);
    let sig_payload = payload(&sha256(&sbom.bytes));
    let sbom_signature = artifact(
        Some(SIG_ARTIFACT),
        SIMPLESIGNING,
        &sig_payload,
        Some(&sbom_desc),
    );
    let signature_desc = put_manifest(dir, &sbom_signature);
    let vex = artifact(Some(VEX), VEX, b"{\"statements\":[]}", Some(&subject));
    let vex_desc = put_manifest(dir, &vex);
    let cosign_payload = payload(&image_digest);
    let signed = key.map_or_else(|| "MEQCIA==".to_string(), |k| k.sign(&cosign_payload));
    let cosign = cosign_signature(&cosign_payload, &signed);
    let mut cosign_desc = put_manifest(dir, &cosign);
    cosign_desc["annotations"] = json!({
        REF_NAME: format!("{}.sig", image_digest.replace(':', "-")),
    });
    let top = json!({
        "schemaVersion": 2,
        "mediaType": INDEX,
        "manifests": [index_desc, sbom_desc, signature_desc, vex_desc, cosign_desc],
    });
    fs::write(dir.join("index.json"), bytes(&top)).unwrap();
    let manifests = [&buildkit, &sbom, &sbom_signature, &vex, &cosign]
        .iter()
        .map(|m| (sha256(&m.bytes), m.bytes.clone()))
        .collect();
    Built {
        image: image_digest,
        index: sha256(&image_index),
        sbom: sha256(&sbom.bytes),
        sbom_signature: sha256(&sbom_signature.bytes),
        vex: sha256(&vex.bytes),
        cosign: sha256(&cosign.bytes),
        cosign_payload,
        buildkit: sha256(&buildkit.bytes),
        manifests,
    }
}

/// Every referrer `inspect --json` lists, depth first, as `(depth, kind, digest,
/// artifact type)`, each level sorted: two documents with the same referrers give the
/// same list.
fn referrer_tree(list: &Value) -> Vec<(usize, String, String, String)> {
    fn walk(list: &Value, depth: usize, out: &mut Vec<(usize, String, String, String)>) {
        let mut items: Vec<&Value> = list
            .as_array()
            .map(|a| a.iter().collect())
            .unwrap_or_default();
        items.sort_by_key(|r| r["digest"].as_str().unwrap_or("").to_string());
        for r in items {
            out.push((
                depth,
                r["kind"].as_str().unwrap_or("").to_string(),
                r["digest"].as_str().unwrap_or("").to_string(),
                r["artifact_type"].as_str().unwrap_or("").to_string(),
            ));
            walk(&r["referrers"], depth + 1, out);
        }
    }
    let mut out = Vec::new();
    walk(list, 0, &mut out);
    out
}

/// `inspect --json [--all]` of `input`, and the referrers of its first image.
fn inspected(input: &str, all: bool, run_in: Option<&Path>) -> Value {
    let mut args = vec!["inspect", "--json"];
    if all {
        args.push("--all");
    }
    if run_in.is_some() {
        args.push("--tls-verify=false");
    }
    args.push(input);
    let out = match run_in {
        Some(tmp) => {
            let out = isolated_dockhand(tmp, &args).output().unwrap();
            assert!(
                out.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            out.stdout
        }
        None => ok(&args),
    };
    serde_json::from_slice(&out).unwrap()
}

/// The image's referrers, as `referrer_tree`.
fn image_referrers(doc: &Value) -> Vec<(usize, String, String, String)> {
    referrer_tree(&doc["images"][0]["referrers"])
}

/// The index.json entries of a layout or archive, and the blob `digest` of it.
fn index_json(root: &Path, tar: bool) -> Vec<Value> {
    let doc: Value = serde_json::from_slice(&read_member(root, tar, "index.json")).unwrap();
    doc["manifests"].as_array().unwrap().clone()
}

fn blob_of(root: &Path, tar: bool, digest: &str) -> Vec<u8> {
    read_member(
        root,
        tar,
        &format!("blobs/sha256/{}", digest.trim_start_matches("sha256:")),
    )
}

/// The entry of index.json named `name`.
fn named<'a>(entries: &'a [Value], name: &str) -> &'a Value {
    let found: Vec<&Value> = entries
        .iter()
        .filter(|e| e["annotations"][REF_NAME] == name)
        .collect();
    assert_eq!(found.len(), 1, "{name} in {entries:#?}");
    found[0]
}

/// `(digest, artifactType)` of each referrer a fallback index lists, in order.
fn listed(index: &[u8]) -> Vec<(String, String)> {
    let doc: Value = serde_json::from_slice(index).unwrap();
    assert_eq!(doc["mediaType"], INDEX, "{doc:#}");
    doc["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert_eq!(e["mediaType"], MANIFEST, "{e}");
            (
                e["digest"].as_str().unwrap().to_string(),
                e["artifactType"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// What a layout (or archive) written with every referrer of `built` must hold:
/// the image index with its bytes, every referrer manifest with its bytes, the
/// fallback tags of the image and of the SBOM listing their referrers with their
/// artifact types, and the cosign tag; the BuildKit attestation when `index` (the
/// image index is written), else not.
fn check_carried_layout(root: &Path, tar: bool, built: &Built, index: bool) {
    let entries = index_json(root, tar);
    for (digest, bytes) in &built.manifests {
        if *digest == built.buildkit && !index {
            let path = format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"));
            let held = if tar {
                tool("tar", &["-tf", s(root)])
                    .split(|b| *b == b'\n')
                    .any(|l| l == path.as_bytes())
            } else {
                root.join(&path).exists()
            };
            assert!(!held, "{digest} written with no index to list it");
            continue;
        }
        assert_eq!(&blob_of(root, tar, digest), bytes, "{digest}");
    }
    let fallback = named(&entries, &built.fallback_tag());
    assert_eq!(fallback["mediaType"], INDEX);
    let index = blob_of(root, tar, fallback["digest"].as_str().unwrap());
    assert_eq!(sha256(&index), fallback["digest"].as_str().unwrap());
    let mut got = listed(&index);
    got.sort();
    let mut want = vec![
        (built.sbom.clone(), SPDX.to_string()),
        (built.vex.clone(), VEX.to_string()),
    ];
    want.sort();
    assert_eq!(got, want);
    let sbom_tag = built.sbom.replace(':', "-");
    let of_sbom = named(&entries, &sbom_tag);
    let index = blob_of(root, tar, of_sbom["digest"].as_str().unwrap());
    assert_eq!(
        listed(&index),
        vec![(built.sbom_signature.clone(), SIG_ARTIFACT.to_string())]
    );
    let cosign = named(&entries, &built.cosign_tag());
    assert_eq!(cosign["digest"], built.cosign.as_str());
    assert_eq!(cosign["mediaType"], MANIFEST);
}

/// The summary line of a `convert --referrers` run.
fn carried_line(stderr: &str) -> &str {
    stderr
        .lines()
        .find(|l| l.contains("referrer manifest(s) along"))
        .unwrap_or_else(|| panic!("no carried line in {stderr}"))
}

/// Run `convert` with `args`, require success; its stderr.
fn convert(args: &[&str]) -> String {
    let mut all = vec!["convert"];
    all.extend_from_slice(args);
    let out = run(&all);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{all:?}: {stderr}");
    stderr
}

#[test]
fn referrers_are_carried_into_oci_layouts_and_archives_byte_for_byte() {
    let tmp = tempdir();
    let src = tmp.path().join("layout");
    let built = build_layout(&src, None);
    let input = format!("oci:{}:1.0", s(&src));
    let source_doc = inspected(&input, true, None);
    let want = image_referrers(&source_doc);
    // Nothing silently missing from the source's own listing.
    let digests: Vec<&str> = want.iter().map(|r| r.2.as_str()).collect();
    for d in [
        &built.sbom,
        &built.sbom_signature,
        &built.vex,
        &built.cosign,
        &built.buildkit,
    ] {
        assert!(digests.contains(&d.as_str()), "{d} not in {want:?}");
    }

    for (to, name, tar) in [("oci", "out", false), ("oci-archive", "out.tar", true)] {
        let out = tmp.path().join(name);
        let stderr = convert(&["--all", "--referrers", "--to", to, &input, s(&out)]);
        assert_eq!(
            carried_line(&stderr),
            "carried 5 referrer manifest(s) along",
            "{stderr}"
        );
        check_carried_layout(&out, tar, &built, true);
        // The image index keeps its bytes (the attestation it lists came along).
        let entries = index_json(&out, tar);
        assert_eq!(named(&entries, "1.0")["digest"], built.index.as_str());
        let doc = inspected(&format!("{to}:{}:1.0", s(&out)), true, None);
        assert_eq!(doc["images"][0]["manifest"]["digest"], built.image.as_str());
        assert_eq!(image_referrers(&doc), want, "{to}: {doc:#}");
    }

    // The Docker >= 25 hybrid holds one platform's image, uncompressed: from a layout
    // whose layers are, its referrers follow, not the index's BuildKit attestation (no
    // index is written).
    let src = tmp.path().join("uncompressed");
    let built = build_layout_from("docker-save-basic", &src, None);
    let input = format!("oci:{}:1.0", s(&src));
    let want = image_referrers(&inspected(&input, true, None));
    let hybrid = tmp.path().join("hybrid.tar");
    let stderr = convert(&[
        "--referrers",
        "--to",
        "docker-archive",
        "--docker-layout",
        "hybrid",
        &input,
        s(&hybrid),
    ]);
    assert_eq!(
        carried_line(&stderr),
        "carried 4 referrer manifest(s) along",
        "{stderr}"
    );
    check_carried_layout(&hybrid, true, &built, false);
    let doc = inspected(s(&hybrid), false, None);
    assert_eq!(doc["images"][0]["manifest"]["digest"], built.image.as_str());
    let without_buildkit: Vec<_> = want
        .iter()
        .filter(|r| r.1 != "buildkit-attestation")
        .cloned()
        .collect();
    assert_eq!(image_referrers(&doc), without_buildkit, "{doc:#}");
}

#[test]
fn tools_still_read_an_oci_layout_with_referrers_carried() {
    let tmp = tempdir();
    let test = test_name();
    if !have_tool(&test, "skopeo") || !have_tool(&test, "umoci") {
        return;
    }
    let src = tmp.path().join("layout");
    let built = build_layout(&src, None);
    let out = tmp.path().join("out");
    convert(&[
        "--all",
        "--referrers",
        &format!("oci:{}:1.0", s(&src)),
        &format!("oci:{}", s(&out)),
    ]);
    let raw = skopeo(
        tmp.path(),
        &["inspect", "--raw", &format!("oci:{}:1.0", s(&out))],
    );
    assert_eq!(sha256(&raw), built.index);
    let info: Value = serde_json::from_slice(&skopeo(
        tmp.path(),
        &["inspect", &format!("oci:{}:1.0", s(&out))],
    ))
    .unwrap();
    assert_eq!(info["Digest"], built.index.as_str(), "{info:#}");
    // The fallback tag and the cosign tag are images' names to skopeo too.
    let raw = skopeo(
        tmp.path(),
        &[
            "inspect",
            "--raw",
            &format!("oci:{}:{}", s(&out), built.cosign_tag()),
        ],
    );
    assert_eq!(sha256(&raw), built.cosign);
    let copy = tmp.path().join("copy");
    skopeo(
        tmp.path(),
        &[
            "copy",
            &format!("oci:{}:1.0", s(&out)),
            &format!("oci:{}:1.0", s(&copy)),
        ],
    );
    // skopeo writes a manifest of its own; the image (its config) is the same.
    let copied = inspected(&format!("oci:{}:1.0", s(&copy)), false, None);
    let original = inspected(&format!("oci:{}:1.0", s(&out)), false, None);
    assert_eq!(config_digests(&copied), config_digests(&original));

    let ls = String::from_utf8(tool("umoci", &["ls", "--layout", s(&out)])).unwrap();
    let mut tags: Vec<&str> = ls.lines().collect();
    tags.sort();
    let mut want = vec![
        "1.0".to_string(),
        built.fallback_tag(),
        built.sbom.replace(':', "-"),
        built.cosign_tag(),
    ];
    want.sort();
    assert_eq!(tags, want, "{ls}");
}

#[test]
fn referrers_type_keeps_that_type_and_what_refers_to_it() {
    let tmp = tempdir();
    let src = tmp.path().join("layout");
    let built = build_layout(&src, None);
    let out = tmp.path().join("out");
    let stderr = convert(&[
        "--all",
        "--referrers-type",
        SPDX,
        &format!("oci:{}:1.0", s(&src)),
        &format!("oci:{}", s(&out)),
    ]);
    // The SBOM, its signature, and the BuildKit attestation the index needs.
    assert_eq!(
        carried_line(&stderr),
        "carried 3 referrer manifest(s) along",
        "{stderr}"
    );
    let doc = inspected(&format!("oci:{}:1.0", s(&out)), true, None);
    let got: Vec<(usize, String)> = image_referrers(&doc)
        .into_iter()
        .map(|r| (r.0, r.2))
        .collect();
    let mut top = vec![(0, built.buildkit.clone()), (0, built.sbom.clone())];
    top.sort_by(|a, b| a.1.cmp(&b.1));
    let mut want = Vec::new();
    for (depth, digest) in top {
        let is_sbom = digest == built.sbom;
        want.push((depth, digest));
        if is_sbom {
            want.push((1, built.sbom_signature.clone()));
        }
    }
    assert_eq!(got, want, "{doc:#}");
    let entries = index_json(&out, false);
    assert!(
        !entries
            .iter()
            .any(|e| e["annotations"][REF_NAME] == built.cosign_tag().as_str()),
        "{entries:#?}"
    );
    for absent in [&built.vex, &built.cosign] {
        assert!(
            !out.join("blobs/sha256")
                .join(absent.trim_start_matches("sha256:"))
                .exists(),
            "{absent} was carried"
        );
    }
    let fallback = named(&entries, &built.fallback_tag());
    let index = blob_of(&out, false, fallback["digest"].as_str().unwrap());
    assert_eq!(listed(&index), vec![(built.sbom.clone(), SPDX.to_string())]);
}

#[test]
fn destinations_without_a_place_for_referrers_refuse_with_one_usage_line() {
    let tmp = tempdir();
    let src = tmp.path().join("layout");
    build_layout(&src, None);
    let input = format!("oci:{}:1.0", s(&src));
    for (args, dst) in [
        (vec!["--to", "docker-archive"], "legacy.tar"),
        (
            vec!["--to", "docker-archive", "--docker-layout", "legacy"],
            "legacy2.tar",
        ),
        (vec!["--to", "dir"], "dir-out"),
        (vec!["--to", "docker-dir"], "docker-dir-out"),
    ] {
        for flag in [vec!["--referrers"], vec!["--referrers-type", SPDX]] {
            let dst = tmp.path().join(dst);
            let mut all = vec!["convert"];
            all.extend(&flag);
            all.extend(&args);
            all.push(&input);
            all.push(s(&dst));
            let out = run(&all);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{all:?}: {stderr}");
            assert_eq!(stderr.lines().count(), 1, "{stderr}");
            assert!(stderr.starts_with("error: "), "{stderr}");
            for needle in ["--referrers", "oci-archive", "docker://", "hybrid"] {
                assert!(stderr.contains(needle), "{needle} not in {stderr}");
            }
            assert!(!dst.exists(), "{all:?} wrote {}", dst.display());
        }
    }
    // The daemon, refused before it is asked anything.
    let out = run(&[
        "convert",
        "--referrers",
        &input,
        "docker-daemon:carry-test:1",
    ]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn an_image_whose_manifest_changes_cannot_take_its_referrers_and_nothing_is_written() {
    let tmp = tempdir();
    let src = tmp.path().join("layout");
    let built = build_layout(&src, None);
    let input = format!("oci:{}:1.0", s(&src));
    // zstd layers from gzip ones, and the hybrid's uncompressed layers from gzip ones.
    for (to, name) in [
        ("oci", "out"),
        ("oci-archive", "out.tar"),
        ("docker-archive", "hybrid.tar"),
    ] {
        for all in [false, true] {
            if all && to == "docker-archive" {
                continue;
            }
            let dst = tmp.path().join(name);
            let mut args = vec!["convert", "--referrers"];
            if to == "docker-archive" {
                args.extend(["--docker-layout", "hybrid"]);
            } else {
                args.extend(["--layer-compression", "zstd"]);
            }
            if all {
                args.push("--all");
            }
            args.extend(["--to", to, &input, s(&dst)]);
            let stderr = fails(&args);
            assert_eq!(stderr.lines().count(), 1, "{stderr}");
            assert!(stderr.contains(&built.image), "{stderr}");
            assert!(stderr.contains("--referrers"), "{stderr}");
            assert!(!dst.exists(), "{args:?} left {}", dst.display());
        }
    }
    // Without --referrers the same conversion is fine.
    let dst = tmp.path().join("plain");
    convert(&["--layer-compression", "zstd", &input, s(&dst)]);
}

#[test]
fn referrers_added_to_a_layout_in_two_runs_are_listed_by_one_fallback_tag() {
    let tmp = tempdir();
    let src = tmp.path().join("layout");
    let built = build_layout(&src, None);
    let input = format!("oci:{}:1.0", s(&src));
    let out = tmp.path().join("out");
    convert(&[
        "--all",
        "--referrers-type",
        SPDX,
        &input,
        &format!("oci:{}", s(&out)),
    ]);
    let first = index_json(&out, false);
    let first_fallback = named(&first, &built.fallback_tag())["digest"].clone();
    convert(&[
        "--all",
        "--referrers-type",
        VEX,
        &input,
        &format!("oci:{}", s(&out)),
    ]);
    let entries = index_json(&out, false);
    let fallback = named(&entries, &built.fallback_tag());
    let index = blob_of(&out, false, fallback["digest"].as_str().unwrap());
    // What the first run listed stays first.
    assert_eq!(
        listed(&index),
        vec![
            (built.sbom.clone(), SPDX.to_string()),
            (built.vex.clone(), VEX.to_string())
        ]
    );
    // No entry left for the superseded fallback index, named or not; every entry is
    // named, and each name once.
    assert!(
        !entries.iter().any(|e| e["digest"] == first_fallback),
        "{entries:#?}"
    );
    let mut names: Vec<&str> = entries
        .iter()
        .map(|e| {
            e["annotations"][REF_NAME]
                .as_str()
                .unwrap_or_else(|| panic!("an unnamed entry {e}"))
        })
        .collect();
    names.sort();
    let mut want = vec![
        "1.0".to_string(),
        built.fallback_tag(),
        built.sbom.replace(':', "-"),
    ];
    want.sort();
    assert_eq!(names, want, "{entries:#?}");
    let doc = inspected(&format!("oci:{}:1.0", s(&out)), true, None);
    let digests: Vec<String> = image_referrers(&doc).into_iter().map(|r| r.2).collect();
    for d in [
        &built.sbom,
        &built.sbom_signature,
        &built.vex,
        &built.buildkit,
    ] {
        assert!(digests.contains(d), "{d} not in {doc:#}");
    }
    // A third run adding nothing new changes nothing.
    let before = tree_snapshot(&out);
    convert(&[
        "--all",
        "--referrers-type",
        VEX,
        &input,
        &format!("oci:{}", s(&out)),
    ]);
    assert_eq!(index_json(&out, false), entries);
    assert_eq!(tree_snapshot(&out).len(), before.len());
}

#[test]
fn a_fallback_index_of_100000_referrers_is_refused() {
    let tmp = tempdir();
    let src = tmp.path().join("layout");
    let built = build_layout(&src, None);
    let entry = format!(
        "{{\"mediaType\":\"{MANIFEST}\",\"digest\":\"{}\",\"size\":1}}",
        sha256(b"absent")
    );
    let huge = format!(
        "{{\"schemaVersion\":2,\"mediaType\":\"{INDEX}\",\"manifests\":[{}]}}",
        vec![entry.as_str(); 100_000].join(",")
    );
    assert!(huge.len() < 16 << 20, "{}", huge.len());
    put_blob(&src, huge.as_bytes());
    let path = src.join("index.json");
    let mut top: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    let mut fallback = desc(INDEX, huge.as_bytes());
    fallback["annotations"] = json!({ REF_NAME: built.fallback_tag() });
    top["manifests"].as_array_mut().unwrap().push(fallback);
    fs::write(&path, bytes(&top)).unwrap();
    let input = format!("oci:{}:1.0", s(&src));
    let line = fails(&["inspect", "--json", &input]);
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(line.contains("10000"), "{line}");
    let dst = tmp.path().join("out");
    let line = fails(&["convert", "--all", "--referrers", &input, s(&dst)]);
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(line.contains("10000"), "{line}");
    assert!(!dst.exists());
}

/// dockhand with `args` in the fixture's private HOME; exit code and stderr, stdout.
fn dh(tmp: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = isolated_dockhand(tmp, args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn dh_ok(tmp: &Path, args: &[&str]) -> String {
    let (code, out, err) = dh(tmp, args);
    assert_eq!(code, Some(0), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    out + &err
}

/// The tags of `repo` at the registry `addr`, sorted.
fn tags(addr: &str, repo: &str) -> Vec<String> {
    let (code, body) = http_get(addr, &format!("/v2/{repo}/tags/list")).unwrap();
    assert_eq!(code, 200, "{body}");
    let doc: Value = serde_json::from_str(body.trim()).unwrap();
    let mut tags: Vec<String> = doc["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect();
    tags.sort();
    tags
}

/// The exact bytes `docker://ADDR/REPO:TAG` holds (skopeo, which sends every Accept).
fn raw(tmp: &Path, reference: &str) -> Vec<u8> {
    skopeo(tmp, &["inspect", "--raw", "--tls-verify=false", reference])
}

#[test]
fn pushing_referrers_to_a_registry_without_the_api_keeps_the_fallback_and_cosign_tags() {
    let Some(fx) = RegistryFixture::builder().needs("skopeo").start() else {
        return;
    };
    let tmp = fx.dir();
    let src = tmp.join("layout");
    let built = build_layout(&src, None);
    let input = format!("oci:{}:1.0", s(&src));
    let remote = fx.remote("carry/app:1.0");
    let out = dh_ok(
        tmp,
        &[
            "convert",
            "--tls-verify=false",
            "--all",
            "--referrers-type",
            SPDX,
            &input,
            &remote,
        ],
    );
    assert!(
        out.contains("carried 3 referrer manifest(s) along"),
        "{out}"
    );
    let mut want_tags = vec![
        "1.0".to_string(),
        built.fallback_tag(),
        built.sbom.replace(':', "-"),
    ];
    want_tags.sort();
    assert_eq!(tags(fx.addr(), "carry/app"), want_tags);
    let at = |tag: &str| format!("docker://{}/carry/app:{tag}", fx.addr());
    assert_eq!(
        listed(&raw(tmp, &at(&built.fallback_tag()))),
        vec![(built.sbom.clone(), SPDX.to_string())]
    );
    assert_eq!(sha256(&raw(tmp, &at("1.0"))), built.index);

    // Another run adds the VEX document and the cosign tag: the fallback tag lists
    // both, the first kept first.
    dh_ok(
        tmp,
        &[
            "convert",
            "--tls-verify=false",
            "--all",
            "--referrers",
            &input,
            &remote,
        ],
    );
    let mut want_tags = vec![
        "1.0".to_string(),
        built.fallback_tag(),
        built.sbom.replace(':', "-"),
        built.cosign_tag(),
    ];
    want_tags.sort();
    assert_eq!(tags(fx.addr(), "carry/app"), want_tags);
    assert_eq!(
        listed(&raw(tmp, &at(&built.fallback_tag()))),
        vec![
            (built.sbom.clone(), SPDX.to_string()),
            (built.vex.clone(), VEX.to_string())
        ]
    );
    assert_eq!(sha256(&raw(tmp, &at(&built.cosign_tag()))), built.cosign);
    for (digest, bytes) in &built.manifests {
        let got = raw(tmp, &format!("docker://{}/carry/app@{digest}", fx.addr()));
        assert_eq!(&got, bytes, "{digest}");
    }
    let source = image_referrers(&inspected(&input, true, None));
    let pushed = image_referrers(&inspected(&remote, true, Some(tmp)));
    assert_eq!(pushed, source);
}

#[test]
fn the_air_gap_copy_through_an_oci_archive_keeps_digests_referrers_and_signatures() {
    let Some(a) = RegistryFixture::builder().needs("skopeo").start() else {
        return;
    };
    let Some(b) = RegistryFixture::builder().start() else {
        return;
    };
    let tmp = a.dir();
    let Some(key) = Key::new(tmp) else {
        return;
    };
    let src = tmp.join("layout");
    let built = build_layout(&src, Some(&key));
    let input = format!("oci:{}:1.0", s(&src));
    let at_a = a.remote("team/app:1.0");
    dh_ok(
        tmp,
        &[
            "convert",
            "--tls-verify=false",
            "--all",
            "--referrers",
            &input,
            &at_a,
        ],
    );
    let verify = |remote: &str| {
        dh(
            tmp,
            &[
                "verify",
                "--tls-verify=false",
                "--key",
                &key.public(),
                remote,
            ],
        )
    };
    let (code, _, err) = verify(&at_a);
    assert_eq!(code, Some(0), "{err}");
    let digest_a = dh_ok(tmp, &["digest", "--tls-verify=false", &at_a]);
    let referrers_a = image_referrers(&inspected(&at_a, true, Some(tmp)));
    assert_eq!(referrers_a, image_referrers(&inspected(&input, true, None)));

    // Step one, connected: registry A to a file. Step two, behind the gap: to B.
    let archive = tmp.join("carry.tar");
    dh_ok(
        tmp,
        &[
            "convert",
            "--tls-verify=false",
            "--all",
            "--referrers",
            &at_a,
            &format!("oci-archive:{}", s(&archive)),
        ],
    );
    let at_b = b.remote("mirror/app:1.0");
    let out = dh_ok(
        tmp,
        &[
            "convert",
            "--tls-verify=false",
            "--all",
            "--referrers",
            &format!("oci-archive:{}:1.0", s(&archive)),
            &at_b,
        ],
    );
    assert!(
        out.contains("carried 5 referrer manifest(s) along"),
        "{out}"
    );
    let digest_b = dh_ok(tmp, &["digest", "--tls-verify=false", &at_b]);
    assert_eq!(digest_b.lines().next(), digest_a.lines().next());
    assert_eq!(digest_a.lines().next(), Some(built.index.as_str()));
    assert_eq!(
        image_referrers(&inspected(&at_b, true, Some(tmp))),
        referrers_a
    );
    assert_eq!(tags(b.addr(), "mirror/app"), tags(a.addr(), "team/app"));

    // Registry to registry directly, to another repository of B.
    let direct = b.remote("direct/app:1.0");
    dh_ok(
        tmp,
        &[
            "convert",
            "--tls-verify=false",
            "--all",
            "--referrers",
            &at_a,
            &direct,
        ],
    );
    assert_eq!(
        image_referrers(&inspected(&direct, true, Some(tmp))),
        referrers_a
    );
    let (code, _, err) = verify(&direct);
    assert_eq!(code, Some(0), "{err}");

    // The signature verifies behind the gap, and not once one byte of its payload is
    // changed there (the tag moved to a manifest naming the changed payload).
    let (code, _, err) = verify(&at_b);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains(&format!("signature {}", built.cosign)),
        "{err}"
    );
    let mut changed = built.cosign_payload.clone();
    changed[20] ^= 1;
    let signed = key.sign(&built.cosign_payload);
    let forged = cosign_signature(&changed, &signed);
    let mut paths = Vec::new();
    for (n, blob) in forged.blobs.iter().enumerate() {
        let path = tmp.join(format!("blob{n}"));
        fs::write(&path, blob).unwrap();
        paths.push(s(&path).to_string());
    }
    let manifest = tmp.join("sig.json");
    fs::write(&manifest, &forged.bytes).unwrap();
    let mut cmd = Command::new(python());
    cmd.args([
        "-c",
        UPLOADER,
        &format!("http://{}", b.addr()),
        "mirror/app",
        &built.cosign_tag(),
        s(&manifest),
        MANIFEST,
    ])
    .args(&paths);
    run_cmd(cmd);
    let (code, _, err) = verify(&at_b);
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("bad signature"), "{err}");
}

#[test]
fn a_push_with_referrers_keeps_uncompressed_layers_and_refuses_to_compress_them() {
    let Some(fx) = RegistryFixture::builder().start() else {
        return;
    };
    let tmp = fx.dir();
    let src = tmp.join("layout");
    // Uncompressed layers: a plain push gzips them (as `docker push` does), which would
    // change the image's manifest and strand its referrers.
    let built = build_layout_from("docker-save-basic", &src, None);
    let input = format!("oci:{}:1.0", s(&src));
    // Compressing on request: refused in one line, nothing tagged.
    let refused = fx.remote("gzipped/app:1.0");
    for all in [false, true] {
        let mut args = vec![
            "convert",
            "--tls-verify=false",
            "--referrers",
            "--layer-compression",
            "gzip",
        ];
        if all {
            args.push("--all");
        }
        args.extend([input.as_str(), refused.as_str()]);
        let (code, _, err) = dh(tmp, &args);
        assert_eq!(code, Some(1), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(&built.image), "{err}");
        let (status, body) = http_get(fx.addr(), "/v2/gzipped/app/tags/list").unwrap();
        assert_eq!(status, 404, "{body}");
    }
    // By default, carrying referrers keeps the layers as they are, so the manifest
    // keeps its digest and its referrers follow.
    let remote = fx.remote("plain/app:1.0");
    let out = dh_ok(
        tmp,
        &[
            "convert",
            "--tls-verify=false",
            "--all",
            "--referrers",
            &input,
            &remote,
        ],
    );
    assert!(
        out.contains("carried 5 referrer manifest(s) along"),
        "{out}"
    );
    let mut want = vec![
        "1.0".to_string(),
        built.fallback_tag(),
        built.sbom.replace(':', "-"),
        built.cosign_tag(),
    ];
    want.sort();
    assert_eq!(tags(fx.addr(), "plain/app"), want);
    // Without --referrers the same push gzips the layers: another manifest.
    let plain = fx.remote("gzipped/app:1.0");
    dh_ok(
        tmp,
        &["convert", "--tls-verify=false", "--all", &input, &plain],
    );
    let digest = |r: &str| dh_ok(tmp, &["digest", "--tls-verify=false", r]);
    assert_eq!(digest(&remote).trim(), built.index);
    assert_ne!(digest(&plain).trim(), built.index);
}

#[test]
fn one_platform_picked_from_its_index_leaves_the_index_attestation_behind() {
    let tmp = tempdir();
    let src = tmp.path().join("layout");
    let built = build_layout(&src, None);
    let out = tmp.path().join("out");
    let stderr = convert(&[
        "--referrers",
        &format!("oci:{}:1.0", s(&src)),
        &format!("oci:{}", s(&out)),
    ]);
    // No index is written, so nothing would list the BuildKit attestation: it is
    // neither counted nor put.
    assert_eq!(
        carried_line(&stderr),
        "carried 4 referrer manifest(s) along",
        "{stderr}"
    );
    let entries = index_json(&out, false);
    assert_eq!(named(&entries, "1.0")["digest"], built.image.as_str());
    check_carried_layout(&out, false, &built, false);
}
