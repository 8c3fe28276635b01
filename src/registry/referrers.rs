//! What a registry says refers to a manifest: its referrers API, the fallback tag when
//! it has none, and cosign's digest tags. Manifests only; no layer is fetched.

use ureq::http::Method;

use super::client::{Payload, Scope, MAX_MANIFEST_SIZE};
use super::fetch::Repo;
use super::tree::fetch_manifest_if_held;
use crate::error::Result;
use crate::model::digest::Digest;
use crate::model::media;
use crate::referrers::{
    fallback_tag, parse_referrers_index, referrer_of_manifest, Referrer, COSIGN_TAGS,
};

/// What refers directly to `digest` in `repo`: the referrers API's index
/// (`GET /v2/REPO/referrers/DIGEST`) or, when the registry answers 404 or 405 (no such
/// API), the index the fallback tag `sha256-<hex>` holds; then the manifests of
/// cosign's tags `sha256-<hex>.sig`, `.att` and `.sbom`. Each answer goes through the
/// client (credentials, retries) and is refused over the manifest size limit; an index
/// listing over [`crate::MAX_REFERRERS_PER_INDEX`] is refused. The API's `Link`
/// pagination is not followed: the first page is what is listed.
pub(crate) fn direct(repo: &Repo, digest: &Digest) -> Result<Vec<Referrer>> {
    let mut found = match api(repo, digest)? {
        Some(listed) => listed,
        None => {
            let tag = fallback_tag(digest);
            match fetch_manifest_if_held(repo, &tag)? {
                Some(index) if media::is_index(&media::manifest_media_type(&index.bytes).0) => {
                    parse_referrers_index(&index.bytes, &what(repo, &tag))?
                }
                _ => Vec::new(),
            }
        }
    };
    for (suffix, kind) in COSIGN_TAGS {
        let tag = format!("{}.{suffix}", fallback_tag(digest));
        if let Some(manifest) = fetch_manifest_if_held(repo, &tag)? {
            let mut referrer = referrer_of_manifest(&manifest.bytes, kind, &what(repo, &tag))?.0;
            referrer.tag = Some(tag);
            found.push(referrer);
        }
    }
    Ok(found)
}

fn what(repo: &Repo, reference: &str) -> String {
    format!("{}/{}:{reference}", repo.client.registry(), repo.repository)
}

/// The referrers API's answer; `None` when the registry has no such API.
fn api(repo: &Repo, digest: &Digest) -> Result<Option<Vec<Referrer>>> {
    let mut response = repo.client.send(
        Method::GET,
        &repo.url(&format!("referrers/{digest}")),
        &Scope::pull(&repo.repository),
        &[("Accept", media::OCI_INDEX)],
        Payload::Empty,
    )?;
    let shown = format!(
        "{}/{}/referrers/{digest}",
        repo.client.registry(),
        repo.repository
    );
    match response.status().as_u16() {
        200 => {}
        404 | 405 => return Ok(None),
        _ => return Err(repo.client.unexpected(&shown, &mut response)),
    }
    let bytes = repo
        .client
        .read_small(&mut response, MAX_MANIFEST_SIZE)
        .map_err(|e| match e {
            crate::Error::Unsupported(_) => repo.client.error(format!(
                "{}: the referrers index is over the {MAX_MANIFEST_SIZE}-byte limit",
                crate::text::shown(&shown)
            )),
            other => other,
        })?;
    parse_referrers_index(&bytes, &shown).map(Some)
}
