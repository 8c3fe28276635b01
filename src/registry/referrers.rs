//! What a registry says refers to a manifest: its referrers API, the fallback tag when
//! it has none, and cosign's digest tags. Manifests only; no layer is fetched.

use ureq::http::Method;

use super::client::{header, Payload, Scope, MAX_MANIFEST_SIZE};
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
/// pagination is followed on the registry's own origin.
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

/// Most pages of a referrers API answer followed.
const MAX_REFERRER_PAGES: usize = 100;

/// The referrers API's answer, every page of it (following `Link` on the registry's
/// own origin, at most [`MAX_REFERRER_PAGES`] pages and
/// [`crate::MAX_REFERRERS_PER_INDEX`] referrers in all); `None` when the registry has
/// no such API.
fn api(repo: &Repo, digest: &Digest) -> Result<Option<Vec<Referrer>>> {
    let shown = format!(
        "{}/{}/referrers/{digest}",
        repo.client.registry(),
        repo.repository
    );
    let mut url = repo.url(&format!("referrers/{digest}"));
    let mut found: Vec<Referrer> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for page in 0..MAX_REFERRER_PAGES {
        if !seen.insert(Digest::of(url.as_bytes())) {
            return Err(repo.client.error(format!(
                "{}: the pages lead back to a page already read",
                crate::text::shown(&shown)
            )));
        }
        let mut response = repo.client.send(
            Method::GET,
            &url,
            &Scope::pull(&repo.repository),
            &[("Accept", media::OCI_INDEX)],
            Payload::Empty,
        )?;
        match response.status().as_u16() {
            200 => {}
            404 | 405 if page == 0 => return Ok(None),
            _ => return Err(repo.client.unexpected(&shown, &mut response)),
        }
        let next = header(&response, "link").and_then(super::challenge::next_link);
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
        found.extend(parse_referrers_index(&bytes, &shown)?);
        if found.len() > crate::referrers::MAX_REFERRERS_PER_INDEX {
            return Err(repo.client.error(format!(
                "{}: the referrers API lists more than {} referrers, over the limit",
                crate::text::shown(&shown),
                crate::referrers::MAX_REFERRERS_PER_INDEX
            )));
        }
        let Some(next) = next else {
            return Ok(Some(found));
        };
        url = repo
            .client
            .same_origin_link(&url, &next, "the referrers' next page")?;
    }
    Err(repo.client.error(format!(
        "{}: the referrers API answers more than {MAX_REFERRER_PAGES} pages",
        crate::text::shown(&shown)
    )))
}
