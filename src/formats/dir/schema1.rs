//! Reading a Docker schema1 manifest held in a `dir:` layout, as containers/image
//! converts it: a config built from the `v1Compatibility` history.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::formats::context::Meta;
use crate::formats::manifest::BlobStore;
use crate::formats::v1_config::{synthesize, V1Layer};
use crate::model::digest::Digest;
use crate::model::image::{parse_json, Descriptor, Image};
use crate::model::media::{self, Family};
use crate::model::reference::Reference;
use crate::text::shown;

/// Does a parsed `manifest.json` declare itself schema 1 (`"schemaVersion": 1`)? The
/// one rule, for the `dir:` reader and the registry's digest check alike.
pub(crate) fn declares_schema1(value: &serde_json::Value) -> bool {
    value.get("schemaVersion").and_then(|v| v.as_i64()) == Some(1)
}

/// The bytes a schema 1 manifest's digest covers: for a signed manifest (one with a
/// `signatures` member), the JWS payload as distribution and containers/image compute
/// it: the first `formatLength` bytes followed by the decoded `formatTail`, which
/// every signature's protected header must give alike; for an unsigned one, the
/// bytes themselves. Whatever reads the manifest reads these bytes, so that what is
/// used is what the digest vouches for.
pub(crate) fn schema1_payload(bytes: &[u8]) -> std::result::Result<Cow<'_, [u8]>, String> {
    use base64::Engine;
    #[derive(serde::Deserialize)]
    struct Signed {
        signatures: Option<Vec<Signature>>,
    }
    #[derive(serde::Deserialize)]
    struct Signature {
        protected: String,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Protected {
        format_length: serde_json::Number,
        format_tail: String,
    }
    let base64url = base64::engine::GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let signed: Signed =
        serde_json::from_slice(bytes).map_err(|e| format!("not a JSON object: {e}"))?;
    let Some(signatures) = signed.signatures else {
        return Ok(Cow::Borrowed(bytes));
    };
    let mut format: Option<(usize, Vec<u8>)> = None;
    for signature in &signatures {
        let protected = base64url
            .decode(&signature.protected)
            .map_err(|_| "a signature's protected header is not base64url".to_string())?;
        let protected: Protected = serde_json::from_slice(&protected).map_err(|_| {
            "a signature's protected header has no formatLength and formatTail".to_string()
        })?;
        let length = protected
            .format_length
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .filter(|&n| n <= bytes.len())
            .ok_or("a signature's formatLength is not a length within the manifest")?;
        let tail = base64url
            .decode(&protected.format_tail)
            .map_err(|_| "a signature's formatTail is not base64url".to_string())?;
        match &format {
            None => format = Some((length, tail)),
            Some(agreed) if *agreed == (length, tail) => {}
            Some(_) => return Err("the signatures give different payloads".into()),
        }
    }
    let (length, tail) = format.ok_or("a signed manifest without signatures")?;
    let mut payload = bytes[..length].to_vec();
    payload.extend_from_slice(&tail);
    Ok(Cow::Owned(payload))
}

/// Read a Docker schema1 manifest whose blobs are in `store` (a `dir:` layout's, a
/// registry's), converting it as containers/image does: a config from the
/// `v1Compatibility` history.
pub(crate) fn read_schema1(
    meta: &Meta,
    store: &dyn BlobStore,
    manifest_bytes: &[u8],
    warnings: &mut Vec<String>,
) -> Result<Image> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct FsLayer {
        blob_sum: String,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct HistoryEntry {
        v1_compatibility: String,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Schema1 {
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        tag: Option<String>,
        fs_layers: Vec<FsLayer>,
        history: Vec<HistoryEntry>,
    }
    let payload = schema1_payload(manifest_bytes)
        .map_err(|why| Error::malformed("manifest.json", format!("schema 1 signatures: {why}")))?;
    let manifest: Schema1 = parse_json(&payload, "manifest.json")?;
    if manifest.fs_layers.len() != manifest.history.len() || manifest.fs_layers.is_empty() {
        return Err(Error::malformed(
            "manifest.json",
            "schema1 fsLayers and history differ in length",
        ));
    }
    // Entries are top first; collapse consecutive duplicates as containers/image does.
    let mut chain: Vec<V1Layer> = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (fs, h) in manifest.fs_layers.iter().zip(&manifest.history).rev() {
        let json: Map<String, Value> = parse_json(
            h.v1_compatibility.as_bytes(),
            "manifest.json v1Compatibility",
        )?;
        let id = json
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if Digest::from_hex(&id).is_none() {
            return Err(Error::malformed(
                "manifest.json",
                format!("invalid v1 id \"{}\"", shown(&id)),
            ));
        }
        if chain.last().is_some_and(|l| l.id == id) {
            continue;
        }
        if seen.insert(id.clone(), chain.len()).is_some() {
            return Err(Error::malformed(
                "manifest.json",
                format!("v1 id {id} appears twice"),
            ));
        }
        let digest =
            Digest::parse(&fs.blob_sum).map_err(|e| Error::malformed("manifest.json", e))?;
        let file = store.find_blob(&digest)?.ok_or_else(|| Error::Missing {
            file: store.blob_path(&digest),
            what: format!("layer {digest}"),
        })?;
        chain.push(V1Layer {
            id,
            json: Arc::new(json),
            file,
        });
    }
    let mut image = synthesize(meta, chain, Family::Docker)?;
    // The stored blobs are content addressed: keep their digests and verify them.
    for layer in &mut image.layers {
        if let Some(hex) = layer.path.strip_suffix(".tar").or(Some(&layer.path)) {
            if let Some(d) = Digest::from_hex(hex) {
                layer.digest = Some(d);
            }
        }
    }
    image.manifest = Some(Descriptor {
        media_type: media::DOCKER_SCHEMA1.to_string(),
        digest: Digest::of(&payload),
        size: manifest_bytes.len() as u64,
    });
    if let (Some(name), Some(tag)) = (manifest.name, manifest.tag) {
        let full = format!("{name}:{tag}");
        match Reference::parse_why(&full) {
            Ok(r) => image.add_names([r], []),
            Err(why) => warnings.push(format!(
                "manifest.json: ignoring schema1 name \"{}\": {why}",
                shown(&full)
            )),
        }
    }
    Ok(image)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    /// `payload` signed the way libtrust writes it: the signatures spliced in before the
    /// closing brace, the protected headers giving how to cut them out again.
    fn signed(payload: &str, headers: &[String]) -> Vec<u8> {
        let cut = payload.len() - 2;
        let signatures: Vec<String> = headers
            .iter()
            .map(|h| format!(r#"{{"signature":"x","protected":"{}"}}"#, b64(h.as_bytes())))
            .collect();
        format!(
            "{},\n   \"signatures\": [{}]\n}}",
            &payload[..cut],
            signatures.join(",")
        )
        .into_bytes()
    }

    fn header(length: usize, tail: &[u8]) -> String {
        format!(
            r#"{{"formatLength":{length},"formatTail":"{}","time":"t"}}"#,
            b64(tail)
        )
    }

    #[test]
    fn the_payload_is_what_libtrust_signed() {
        let payload = "{\n   \"schemaVersion\": 1,\n   \"name\": \"a\"\n}";
        let good = header(payload.len() - 2, b"\n}");
        let bytes = signed(payload, &[good.clone(), good.clone()]);
        assert_eq!(&*schema1_payload(&bytes).unwrap(), payload.as_bytes());
        // Unsigned: the bytes themselves.
        assert!(matches!(
            schema1_payload(payload.as_bytes()).unwrap(),
            Cow::Borrowed(_)
        ));
        // Padded base64 is read too, as libtrust's decoder does.
        let padded = format!(
            r#"{{"formatLength":{},"formatTail":"Cn0="}}"#,
            payload.len() - 2
        );
        assert_eq!(
            &*schema1_payload(&signed(payload, &[padded])).unwrap(),
            payload.as_bytes()
        );
    }

    #[test]
    fn signatures_that_cannot_say_what_was_signed_are_refused() {
        let payload = "{\n   \"schemaVersion\": 1\n}";
        let cut = payload.len() - 2;
        for (why, headers) in [
            ("none", vec![]),
            ("past the end", vec![header(1 << 20, b"\n}")]),
            (
                "negative",
                vec![r#"{"formatLength":-1,"formatTail":"fQ"}"#.to_string()],
            ),
            (
                "fractional",
                vec![r#"{"formatLength":1.5,"formatTail":"fQ"}"#.to_string()],
            ),
            ("no tail", vec![format!(r#"{{"formatLength":{cut}}}"#)]),
            (
                "tail not base64",
                vec![format!(r#"{{"formatLength":{cut},"formatTail":"*"}}"#)],
            ),
            (
                "disagreeing",
                vec![header(cut, b"\n}"), header(cut - 1, b"\n}")],
            ),
            (
                "disagreeing tails",
                vec![header(cut, b"\n}"), header(cut, b"}")],
            ),
        ] {
            assert!(
                schema1_payload(&signed(payload, &headers)).is_err(),
                "{why}"
            );
        }
        let not_base64 = br#"{"schemaVersion":1,"signatures":[{"protected":"***"}]}"#;
        assert!(schema1_payload(not_base64).is_err());
        assert!(schema1_payload(b"[1]").is_err());
    }
}
