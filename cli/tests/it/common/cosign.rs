//! The pieces of cosign's signature format the tests build signatures from, and a
//! bare uploader that puts them into a registry as cosign would.

use serde_json::{json, Value};

use super::sha256;

/// Uploads each BLOB (POST, then a monolithic PUT with its digest) to BASE's REPO, then
/// PUTs MANIFEST under TAG with MEDIA_TYPE.
pub const UPLOADER: &str = r#"
import hashlib, sys, urllib.request
base, repo, tag, manifest, media_type = sys.argv[1:6]
for path in sys.argv[6:]:
    data = open(path, "rb").read()
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    r = urllib.request.urlopen(urllib.request.Request(
        base + "/v2/" + repo + "/blobs/uploads/", data=b"", method="POST"))
    loc = r.headers["Location"]
    if not loc.startswith("http"):
        loc = base + loc
    sep = "&" if "?" in loc else "?"
    urllib.request.urlopen(urllib.request.Request(loc + sep + "digest=" + digest, data=data,
        method="PUT", headers={"Content-Type": "application/octet-stream"}))
urllib.request.urlopen(urllib.request.Request(base + "/v2/" + repo + "/manifests/" + tag,
    data=open(manifest, "rb").read(), method="PUT", headers={"Content-Type": media_type}))
"#;

/// A simple-signing payload as cosign writes it, naming `digest`.
pub fn payload(digest: &str) -> Vec<u8> {
    format!(
        "{{\"critical\":{{\"identity\":{{\"docker-reference\":\"registry.example/app\"}},\
         \"image\":{{\"docker-manifest-digest\":\"{digest}\"}},\
         \"type\":\"cosign container image signature\"}},\"optional\":null}}"
    )
    .into_bytes()
}

/// A descriptor of `bytes` as `media_type`.
pub fn desc(media_type: &str, bytes: &[u8]) -> Value {
    json!({"mediaType": media_type, "size": bytes.len(), "digest": sha256(bytes)})
}
