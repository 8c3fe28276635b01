//! What refers to an image (OCI 1.1 referrers, cosign tags, BuildKit attestations):
//! `inspect` lists them from manifests alone, in an OCI layout and in a registry.

use std::fs;
use std::path::Path;

use serde_json::{json, Value};

use crate::common::*;

const EMPTY: &str = "application/vnd.oci.empty.v1+json";
const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const INDEX: &str = "application/vnd.oci.image.index.v1+json";
const SIMPLESIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";

/// Write `bytes` as a blob of the layout `dir`; its descriptor.
fn blob(dir: &Path, media_type: &str, bytes: &[u8]) -> Value {
    let digest = sha256(bytes);
    let path = dir
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    fs::write(path, bytes).unwrap();
    json!({"mediaType": media_type, "digest": digest, "size": bytes.len()})
}

fn bytes(doc: &Value) -> Vec<u8> {
    serde_json::to_vec(doc).unwrap()
}

/// A referrer manifest of `artifact_type` with one layer `payload` (of `layer_type`),
/// whose subject is `subject` when given: its bytes.
fn artifact(
    dir: &Path,
    artifact_type: Option<&str>,
    layer_type: &str,
    payload: &[u8],
    subject: Option<&Value>,
    annotations: Value,
) -> Vec<u8> {
    let config = blob(dir, EMPTY, b"{}");
    let mut layer = blob(dir, layer_type, payload);
    layer["annotations"] = annotations;
    let mut doc = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": config,
        "layers": [layer],
    });
    if let Some(t) = artifact_type {
        doc["artifactType"] = json!(t);
    }
    if let Some(s) = subject {
        doc["subject"] = s.clone();
    }
    bytes(&doc)
}

struct Built {
    image: String,
    index: String,
    sbom: String,
    sbom_signature: String,
    cosign: String,
    buildkit: String,
    /// The referrers' layer blobs, which inspect must not need.
    layers: Vec<String>,
}

/// An OCI layout at `dir` holding one image (tag `1.0`, inside an image index with a
/// BuildKit attestation manifest), an SBOM referring to it, a signature referring to
/// the SBOM, and a cosign `.sig` tag manifest.
fn build_layout(dir: &Path) -> Built {
    let src = dir.with_extension("src");
    ok(&[
        "convert",
        fixture("docker-save-basic").input(),
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
    let before: Vec<String> = fs::read_dir(dir.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();

    let buildkit = artifact(
        dir,
        None,
        "application/vnd.in-toto+json",
        b"{\"predicate\":1}",
        None,
        json!({}),
    );
    let mut buildkit_desc = blob(dir, MANIFEST, &buildkit);
    buildkit_desc["platform"] = json!({"os": "unknown", "architecture": "unknown"});
    buildkit_desc["annotations"] = json!({
        "vnd.docker.reference.type": "attestation-manifest",
        "vnd.docker.reference.digest": image_digest,
    });
    let image_index = bytes(&json!({
        "schemaVersion": 2, "mediaType": INDEX, "manifests": [image, buildkit_desc],
    }));
    let mut index_desc = blob(dir, INDEX, &image_index);

    let sbom = artifact(
        dir,
        Some("application/spdx+json"),
        "application/spdx+json",
        b"{\"spdxVersion\":\"SPDX-2.3\"}",
        Some(&subject),
        json!({}),
    );
    let sbom_desc = blob(dir, MANIFEST, &sbom);
    let sbom_subject = sbom_desc.clone();
    let signature = artifact(
        dir,
        Some("application/vnd.dev.cosign.artifact.sig.v1+json"),
        SIMPLESIGNING,
        b"{\"critical\":{}}",
        Some(&sbom_subject),
        json!({"dev.cosignproject.cosign/signature": "MEUCIQ=="}),
    );
    let signature_desc = blob(dir, MANIFEST, &signature);
    let cosign = artifact(
        dir,
        None,
        SIMPLESIGNING,
        b"{\"critical\":{\"image\":{}}}",
        None,
        json!({"dev.cosignproject.cosign/signature": "MEQCIA=="}),
    );
    let mut cosign_desc = blob(dir, MANIFEST, &cosign);
    cosign_desc["annotations"] = json!({
        "org.opencontainers.image.ref.name": format!("{}.sig", image_digest.replace(':', "-")),
    });
    index_desc["annotations"] = json!({"org.opencontainers.image.ref.name": "1.0"});
    let top = json!({
        "schemaVersion": 2,
        "mediaType": INDEX,
        "manifests": [index_desc, sbom_desc, signature_desc, cosign_desc],
    });
    fs::write(dir.join("index.json"), bytes(&top)).unwrap();
    // Every blob written here that is not a manifest is a referrer's layer (the empty
    // config aside).
    let manifests = [&buildkit, &image_index, &sbom, &signature, &cosign].map(|b| sha256(b));
    let layers = fs::read_dir(dir.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| !before.contains(name))
        .filter(|name| !manifests.iter().any(|m| m.ends_with(name.as_str())))
        .filter(|name| format!("sha256:{name}") != sha256(b"{}"))
        .collect();
    Built {
        image: image_digest,
        index: sha256(&image_index),
        sbom: sha256(&sbom),
        sbom_signature: sha256(&signature),
        cosign: sha256(&cosign),
        buildkit: sha256(&buildkit),
        layers,
    }
}

fn kinds(list: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["kind"].as_str().unwrap().to_string(),
                r["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn an_oci_layout_lists_referrers_cosign_tags_and_buildkit_attestations_without_layers() {
    let tmp = tempdir();
    let dir = tmp.path().join("layout");
    let built = build_layout(&dir);
    assert_eq!(built.layers.len(), 4, "{:?}", built.layers);
    for layer in &built.layers {
        fs::remove_file(dir.join("blobs/sha256").join(layer)).unwrap();
    }
    let input = format!("oci:{}:1.0", s(&dir));
    let doc: Value = serde_json::from_slice(&ok(&["inspect", "--json", &input])).unwrap();
    let image = &doc["images"][0];
    assert_eq!(image["manifest"]["digest"], built.image.as_str());
    let mut want = vec![
        ("buildkit-attestation".to_string(), built.buildkit.clone()),
        ("cosign-signature".to_string(), built.cosign.clone()),
        ("referrer".to_string(), built.sbom.clone()),
    ];
    want.sort();
    assert_eq!(kinds(&image["referrers"]), want, "{doc:#}");
    let sbom = image["referrers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["digest"] == built.sbom.as_str())
        .unwrap();
    assert_eq!(sbom["artifact_type"], "application/spdx+json");
    assert_eq!(
        kinds(&sbom["referrers"]),
        vec![("cosign-signature".to_string(), built.sbom_signature.clone())]
    );
    // The index's own referrers are listed with --all (none here).
    let all: Value = serde_json::from_slice(&ok(&["inspect", "--json", "--all", &input])).unwrap();
    assert_eq!(
        all["index_referrers"][0]["digest"],
        built.index.as_str(),
        "{all:#}"
    );

    let table = String::from_utf8(ok(&["inspect", "--no-trunc", &input])).unwrap();
    for needle in [
        format!("referrers of image @0 (manifest {})", built.image),
        "application/spdx+json".to_string(),
        built.sbom_signature.clone(),
        built.buildkit.clone(),
        built.cosign.clone(),
    ] {
        assert!(table.contains(&needle), "{needle} not in\n{table}");
    }
}

#[test]
fn a_docker_archive_has_no_referrers() {
    let input = fixture("docker-save-basic").input().to_string();
    let doc: Value = serde_json::from_slice(&ok(&["inspect", "--json", &input])).unwrap();
    assert!(
        doc["images"][0].get("referrers").is_none() || doc["images"][0]["referrers"] == json!([])
    );
    assert_eq!(doc["index_referrers"], json!([]));
}

#[test]
fn a_referrer_that_refers_to_itself_is_listed_once_and_not_followed() {
    // A referrer of the image whose cosign tag (`sha256-<its own hex>.sig`) names
    // itself: following it would never end.
    let tmp = tempdir();
    let dir = tmp.path().join("layout");
    let built = build_layout(&dir);
    let subject = json!({"mediaType": MANIFEST, "digest": built.image, "size": 1});
    let looping = artifact(
        &dir,
        Some("application/example"),
        "application/example",
        b"x",
        Some(&subject),
        json!({}),
    );
    let mut desc = blob(&dir, MANIFEST, &looping);
    desc["annotations"] = json!({
        "org.opencontainers.image.ref.name": format!("{}.sig", sha256(&looping).replace(':', "-")),
    });
    let path = dir.join("index.json");
    let mut top: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    top["manifests"].as_array_mut().unwrap().push(desc);
    fs::write(&path, bytes(&top)).unwrap();
    let doc: Value =
        serde_json::from_slice(&ok(&["inspect", "--json", &format!("oci:{}:1.0", s(&dir))]))
            .unwrap();
    let listed = doc["images"][0]["referrers"].as_array().unwrap();
    let found = listed
        .iter()
        .find(|r| r["digest"] == sha256(&looping).as_str())
        .unwrap();
    // Listed once, as the image's referrer; the loop back to itself is cut.
    assert_eq!(found["referrers"], json!([]), "{doc:#}");
}
