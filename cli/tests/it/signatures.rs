//! `verify --key`: cosign signatures checked offline. The signatures are built here as
//! cosign's signature specification describes them (cosign cannot be installed): a
//! simple-signing JSON payload naming the image's manifest digest, signed with a key
//! made for the test by Python's `cryptography` (ECDSA P-256 with SHA-256 and an ASN.1
//! DER signature, as `cosign generate-key-pair` keys sign; Ed25519; RSA PKCS #1 v1.5),
//! the base64 signature in the payload layer's `dev.cosignproject.cosign/signature`
//! annotation. They are attached to an image in an OCI layout (under the cosign tag
//! `sha256-<hex>.sig`, and as an OCI 1.1 referrer with a `subject`) and in a registry
//! (the `.sig` tag, uploaded by hand).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use crate::common::cosign::{desc, payload, UPLOADER};
use crate::common::registry::*;
use crate::common::*;

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const IMAGE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const EMPTY: &str = "application/vnd.oci.empty.v1+json";
const SIMPLESIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
const SIG_ARTIFACT: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";
const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";

/// Makes a private key of its kind in KEYDIR on first use (with its public key, PEM
/// PKIX, as `cosign.pub`), then prints the base64 signature of PAYLOAD's bytes.
const SIGNER: &str = r#"
import base64, os, sys
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
kind, keydir, payload = sys.argv[1:4]
private = os.path.join(keydir, "key.pem")
if os.path.exists(private):
    key = serialization.load_pem_private_key(open(private, "rb").read(), None)
else:
    os.makedirs(keydir, exist_ok=True)
    if kind == "ecdsa":
        key = ec.generate_private_key(ec.SECP256R1())
    elif kind == "ed25519":
        key = ed25519.Ed25519PrivateKey.generate()
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    open(private, "wb").write(key.private_bytes(serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    open(os.path.join(keydir, "cosign.pub"), "wb").write(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
data = open(payload, "rb").read()
if kind == "ecdsa":
    sig = key.sign(data, ec.ECDSA(hashes.SHA256()))
elif kind == "ed25519":
    sig = key.sign(data)
else:
    sig = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
sys.stdout.write(base64.b64encode(sig).decode())
"#;

/// A key pair made for one test.
struct Key {
    kind: &'static str,
    dir: PathBuf,
}

impl Key {
    /// A new key of `kind` (`ecdsa`, `ed25519`, `rsa`) in `tmp/name`; `None` (skipped
    /// visibly, or failing under DOCKHAND_REQUIRE_INTEROP) without Python's cryptography.
    fn new(tmp: &Path, name: &str, kind: &'static str) -> Option<Key> {
        if !have_python_cryptography(&test_name()) {
            return None;
        }
        let key = Key {
            kind,
            dir: tmp.join(name),
        };
        key.sign(b"make the key");
        Some(key)
    }

    /// The public key file, PEM.
    fn public(&self) -> String {
        s(&self.dir.join("cosign.pub")).to_string()
    }

    /// The base64 signature of `payload`.
    fn sign(&self, payload: &[u8]) -> String {
        let file = self.dir.with_extension("payload");
        fs::write(&file, payload).unwrap();
        let mut cmd = Command::new(python());
        cmd.args(["-c", SIGNER, self.kind, s(&self.dir), s(&file)]);
        String::from_utf8(run_cmd(cmd)).unwrap()
    }
}

/// A signature manifest and the blobs it names.
struct Signature {
    manifest: Vec<u8>,
    blobs: Vec<Vec<u8>>,
}

impl Signature {
    fn digest(&self) -> String {
        sha256(&self.manifest)
    }
}

/// A cosign signature manifest with one payload layer signed `signature` (base64).
/// Without `subject`, the shape of cosign's `.sig` tags (an image config whose diff_id
/// is the payload's digest); with it, an OCI 1.1 referrer (artifact type
/// `application/vnd.dev.cosign.artifact.sig.v1+json`, the empty config).
fn signature(payload: &[u8], signature: &str, subject: Option<&Value>) -> Signature {
    let mut layer = desc(SIMPLESIGNING, payload);
    layer["annotations"] = json!({ SIGNATURE_ANNOTATION: signature });
    let (config, mut doc) = match subject {
        None => {
            let config = serde_json::to_vec(&json!({
                "architecture": "", "created": "0001-01-01T00:00:00Z",
                "history": [{"created": "0001-01-01T00:00:00Z"}], "os": "",
                "rootfs": {"type": "layers", "diff_ids": [sha256(payload)]}, "config": {},
            }))
            .unwrap();
            let doc = json!({
                "schemaVersion": 2, "mediaType": MANIFEST,
                "config": desc(IMAGE_CONFIG, &config), "layers": [layer],
            });
            (config, doc)
        }
        Some(subject) => {
            let config = b"{}".to_vec();
            let doc = json!({
                "schemaVersion": 2, "mediaType": MANIFEST, "artifactType": SIG_ARTIFACT,
                "config": desc(EMPTY, &config), "layers": [layer], "subject": subject,
            });
            (config, doc)
        }
    };
    if subject.is_some() {
        doc["annotations"] = json!({"org.opencontainers.image.created": "2024-01-01T00:00:00Z"});
    }
    Signature {
        manifest: serde_json::to_vec(&doc).unwrap(),
        blobs: vec![config, payload.to_vec()],
    }
}

/// An OCI layout holding the skopeo-oci fixture's image (tag `1.0`).
struct Layout {
    dir: PathBuf,
    /// The image's manifest digest.
    image: String,
    /// Its descriptor, as a `subject`.
    subject: Value,
    /// `oci:DIR:1.0`.
    input: String,
}

impl Layout {
    fn new(tmp: &Path) -> Layout {
        fs::create_dir_all(tmp).unwrap();
        let dir = tmp.join("layout");
        ok(&[
            "convert",
            "-q",
            fixture("skopeo-oci").input(),
            "--to",
            "oci",
            s(&dir),
        ]);
        let index: Value =
            serde_json::from_slice(&fs::read(dir.join("index.json")).unwrap()).unwrap();
        let entry = &index["manifests"][0];
        assert_eq!(
            entry["annotations"]["org.opencontainers.image.ref.name"],
            "1.0"
        );
        let image = entry["digest"].as_str().unwrap().to_string();
        Layout {
            input: format!("oci:{}:1.0", s(&dir)),
            subject: json!({"mediaType": MANIFEST, "digest": image, "size": entry["size"]}),
            image,
            dir,
        }
    }

    fn put_blob(&self, bytes: &[u8]) {
        let hex = sha256(bytes).trim_start_matches("sha256:").to_string();
        fs::write(self.dir.join("blobs/sha256").join(hex), bytes).unwrap();
    }

    /// Add `sig` to the layout: its blobs, and its manifest listed in index.json under
    /// the cosign tag of the image when `as_tag`, else plainly (a referrer is found by
    /// its subject).
    fn attach(&self, sig: &Signature, as_tag: bool) {
        for blob in &sig.blobs {
            self.put_blob(blob);
        }
        self.put_blob(&sig.manifest);
        let mut entry = desc(MANIFEST, &sig.manifest);
        if as_tag {
            entry["annotations"] = json!({
                "org.opencontainers.image.ref.name": format!("{}.sig", self.image.replace(':', "-")),
            });
        }
        let path = self.dir.join("index.json");
        let mut index: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        index["manifests"].as_array_mut().unwrap().push(entry);
        fs::write(&path, serde_json::to_vec(&index).unwrap()).unwrap();
    }
}

/// `verify` with `keys` fails with exit 1 and one escaped error line; the line.
fn refused(keys: &[&Key], input: &str) -> String {
    let mut args = vec!["verify".to_string()];
    for key in keys {
        args.extend(["--key".to_string(), key.public()]);
    }
    args.push(input.to_string());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let stderr = fails(&args);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    stderr
}

/// `verify` with `keys` passes; its stderr.
fn verified(keys: &[&Key], input: &str) -> String {
    let mut args = vec!["verify".to_string()];
    for key in keys {
        args.extend(["--key".to_string(), key.public()]);
    }
    args.push(input.to_string());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(&args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
    stderr
}

#[test]
fn an_ecdsa_signature_under_the_cosign_tag_verifies_and_names_itself() {
    let tmp = tempdir();
    let Some(key) = Key::new(tmp.path(), "key", "ecdsa") else {
        return;
    };
    let layout = Layout::new(tmp.path());
    let payload = payload(&layout.image);
    let sig = signature(&payload, &key.sign(&payload), None);
    layout.attach(&sig, true);
    let out = verified(&[&key], &layout.input);
    let line = format!(
        "signature {} (payload {}) verifies with {}",
        sig.digest(),
        sha256(&payload),
        key.public()
    );
    assert!(out.contains(&line), "{line} not in {out}");
    assert!(out.contains("all digests and diff_ids match"), "{out}");
}

#[test]
fn an_ecdsa_signature_as_an_oci_referrer_verifies() {
    let tmp = tempdir();
    let Some(key) = Key::new(tmp.path(), "key", "ecdsa") else {
        return;
    };
    let layout = Layout::new(tmp.path());
    let payload = payload(&layout.image);
    let sig = signature(&payload, &key.sign(&payload), Some(&layout.subject));
    layout.attach(&sig, false);
    let out = verified(&[&key], &layout.input);
    assert!(
        out.contains(&format!("signature {}", sig.digest())),
        "{out}"
    );
}

#[test]
fn ed25519_and_rsa_signatures_verify_and_any_key_given_may_match() {
    let tmp = tempdir();
    let (Some(ed), Some(rsa), Some(other)) = (
        Key::new(tmp.path(), "ed", "ed25519"),
        Key::new(tmp.path(), "rsa", "rsa"),
        Key::new(tmp.path(), "other", "ecdsa"),
    ) else {
        return;
    };
    let layout = Layout::new(tmp.path());
    let payload = payload(&layout.image);
    layout.attach(&signature(&payload, &ed.sign(&payload), None), true);
    verified(&[&other, &ed], &layout.input);
    let line = refused(&[&rsa], &layout.input);
    assert!(line.contains("bad signature"), "{line}");

    let layout = Layout::new(&tmp.path().join("second"));
    let payload = self::payload(&layout.image);
    layout.attach(&signature(&payload, &rsa.sign(&payload), None), true);
    verified(&[&rsa], &layout.input);
}

#[test]
fn one_byte_of_the_payload_changed_is_a_bad_signature() {
    let tmp = tempdir();
    let Some(key) = Key::new(tmp.path(), "key", "ecdsa") else {
        return;
    };
    let layout = Layout::new(tmp.path());
    let good = payload(&layout.image);
    let signed = key.sign(&good);
    // One byte of the payload changed (`registry.example` to `registry.exbmple`), the
    // manifest's descriptor updated to the new bytes: every digest matches, only the
    // signature can tell.
    let at = good.windows(7).position(|w| w == b"example").unwrap() + 2;
    for (n, as_tag) in [(0, true), (1, false)] {
        let layout = Layout::new(&tmp.path().join(n.to_string()));
        let payload = self::payload(&layout.image);
        let signed = key.sign(&payload);
        let mut changed = payload.clone();
        changed[at] = b'b';
        let subject = (!as_tag).then_some(&layout.subject);
        layout.attach(&signature(&changed, &signed, subject), as_tag);
        let line = refused(&[&key], &layout.input);
        assert!(line.contains("bad signature"), "{line}");
        assert!(line.contains(&layout.image), "{line}");
        assert!(line.contains(&sha256(&changed)), "{line}");
    }
    // The unchanged payload verifies with that very signature.
    layout.attach(&signature(&good, &signed, None), true);
    verified(&[&key], &layout.input);
}

#[test]
fn a_signature_over_another_digest_or_by_another_key_or_none_at_all_is_refused() {
    let tmp = tempdir();
    let (Some(key), Some(stranger)) = (
        Key::new(tmp.path(), "key", "ecdsa"),
        Key::new(tmp.path(), "stranger", "ecdsa"),
    ) else {
        return;
    };
    let layout = Layout::new(tmp.path());
    let line = refused(&[&key], &layout.input);
    assert!(line.contains("no cosign signature found"), "{line}");
    assert!(line.contains(&layout.image), "{line}");

    // Properly signed, but for another image.
    let other = sha256(b"another image");
    let payload = payload(&other);
    layout.attach(&signature(&payload, &key.sign(&payload), None), true);
    let line = refused(&[&key], &layout.input);
    assert!(
        line.contains(&format!("signs another image, {other}")),
        "{line}"
    );
    // With the wrong key, the signature itself fails first.
    let line = refused(&[&stranger], &layout.input);
    assert!(line.contains("bad signature"), "{line}");
}

#[test]
fn the_most_telling_reason_is_given_when_several_signatures_fail() {
    let tmp = tempdir();
    let Some(key) = Key::new(tmp.path(), "key", "ecdsa") else {
        return;
    };
    let layout = Layout::new(tmp.path());
    // A referrer whose payload was changed, and a tag signature of another image.
    let good = payload(&layout.image);
    let mut changed = good.clone();
    changed[10] ^= 1;
    layout.attach(
        &signature(&changed, &key.sign(&good), Some(&layout.subject)),
        false,
    );
    let other = payload(&sha256(b"x"));
    layout.attach(&signature(&other, &key.sign(&other), None), true);
    let line = refused(&[&key], &layout.input);
    assert!(line.contains("none of 2 signatures verifies"), "{line}");
    assert!(line.contains("signs another image"), "{line}");
}

#[test]
fn a_missing_or_altered_payload_blob_is_said_to_be_one() {
    let tmp = tempdir();
    let Some(key) = Key::new(tmp.path(), "key", "ecdsa") else {
        return;
    };
    let layout = Layout::new(tmp.path());
    let payload = payload(&layout.image);
    let sig = signature(&payload, &key.sign(&payload), None);
    layout.attach(&sig, true);
    let blob = layout
        .dir
        .join("blobs/sha256")
        .join(sha256(&payload).trim_start_matches("sha256:"));
    // Changed in place, its descriptor not updated: a digest mismatch, not a signature.
    let mut altered = payload.clone();
    altered[5] ^= 1;
    fs::write(&blob, &altered).unwrap();
    let line = refused(&[&key], &layout.input);
    assert!(line.contains("digest mismatch"), "{line}");
    fs::remove_file(&blob).unwrap();
    let line = refused(&[&key], &layout.input);
    assert!(
        line.contains(&format!("lacks the payload {}", sha256(&payload))),
        "{line}"
    );
}

#[test]
fn a_key_file_that_is_no_public_key_is_refused_before_reading_the_source() {
    let tmp = tempdir();
    let private = tmp.path().join("key.pem");
    fs::write(
        &private,
        "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n",
    )
    .unwrap();
    let line = fails(&["verify", "--key", s(&private), "oci:/nonexistent:1.0"]);
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(line.contains("a PEM EC PRIVATE KEY block"), "{line}");
    let garbage = tmp.path().join("garbage.pem");
    fs::write(
        &garbage,
        "-----BEGIN PUBLIC KEY-----\nMAMCAQA=\n-----END PUBLIC KEY-----\n",
    )
    .unwrap();
    let line = fails(&["verify", "--key", s(&garbage), "oci:/nonexistent:1.0"]);
    assert!(line.contains("not a DER SubjectPublicKeyInfo"), "{line}");
}

#[test]
fn a_registry_image_signed_under_its_cosign_tag_verifies_and_fails_once_altered() {
    let Some(fx) = RegistryFixture::builder().start() else {
        return;
    };
    let tmp = fx.dir();
    let Some(key) = Key::new(tmp, "key", "ecdsa") else {
        return;
    };
    let remote = fx.remote("signed/app:1.0");
    let dh = |args: &[&str]| {
        let out = isolated_dockhand(tmp, args).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, _, err) = dh(&[
        "convert",
        "-q",
        "--tls-verify=false",
        fixture("skopeo-oci").input(),
        &remote,
    ]);
    assert_eq!(code, Some(0), "{err}");
    let (code, digest, err) = dh(&["digest", "--tls-verify=false", &remote]);
    assert_eq!(code, Some(0), "{err}");
    let image = digest.trim().to_string();
    assert!(image.starts_with("sha256:"), "{image}");

    let upload = |sig: &Signature| {
        let mut paths = Vec::new();
        for (n, blob) in sig.blobs.iter().enumerate() {
            let path = tmp.join(format!("blob{n}"));
            fs::write(&path, blob).unwrap();
            paths.push(s(&path).to_string());
        }
        let manifest = tmp.join("sig.json");
        fs::write(&manifest, &sig.manifest).unwrap();
        let mut cmd = Command::new(python());
        cmd.args([
            "-c",
            UPLOADER,
            &format!("http://{}", fx.addr()),
            "signed/app",
            &format!("{}.sig", image.replace(':', "-")),
            s(&manifest),
            MANIFEST,
        ])
        .args(&paths);
        run_cmd(cmd);
    };
    let verify = |code: i32| {
        let (got, _, err) = dh(&[
            "verify",
            "--tls-verify=false",
            "--key",
            &key.public(),
            &remote,
        ]);
        assert_eq!(got, Some(code), "{err}");
        err
    };
    let line = verify(1);
    assert!(line.contains("no cosign signature found"), "{line}");

    let payload = payload(&image);
    let sig = signature(&payload, &key.sign(&payload), None);
    upload(&sig);
    let out = verify(0);
    assert!(
        out.contains(&format!("signature {}", sig.digest())),
        "{out}"
    );

    // The tag moved to a signature whose payload differs by one byte.
    let mut changed = payload.clone();
    changed[20] ^= 1;
    upload(&signature(&changed, &key.sign(&payload), None));
    let line = verify(1);
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(line.contains("bad signature"), "{line}");
}

#[test]
fn a_signature_of_a_multi_platform_index_covers_the_platform_manifest_it_lists() {
    let tmp = tempdir();
    let Some(key) = Key::new(tmp.path(), "key", "ecdsa") else {
        return;
    };
    let layout = Layout::new(tmp.path());
    // The image wrapped in an index, which index.json lists as `1.0`.
    let mut member = layout.subject.clone();
    member["platform"] = json!({"os": "linux", "architecture": "amd64"});
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [member],
    }))
    .unwrap();
    layout.put_blob(&index);
    let mut entry = desc("application/vnd.oci.image.index.v1+json", &index);
    entry["annotations"] = json!({"org.opencontainers.image.ref.name": "1.0"});
    let index_digest = sha256(&index);
    let payload = payload(&index_digest);
    let sig = signature(&payload, &key.sign(&payload), None);
    for blob in &sig.blobs {
        layout.put_blob(blob);
    }
    layout.put_blob(&sig.manifest);
    let mut sig_entry = desc(MANIFEST, &sig.manifest);
    sig_entry["annotations"] = json!({
        "org.opencontainers.image.ref.name": format!("{}.sig", index_digest.replace(':', "-")),
    });
    let top = json!({"schemaVersion": 2, "manifests": [entry, sig_entry]});
    fs::write(
        layout.dir.join("index.json"),
        serde_json::to_vec(&top).unwrap(),
    )
    .unwrap();
    for all in [false, true] {
        let mut args = vec!["verify", "--key"];
        let public = key.public();
        args.push(&public);
        if all {
            args.push("--all");
        }
        args.push(&layout.input);
        let out = run(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "verifies with {public} through its index {index_digest}"
            )),
            "{stderr}"
        );
    }
}
