//! The rows of `docker images`: one per name an image has (one for an image without
//! any), in docker's order.

use crate::history::ConfigSummary;
use crate::model::digest::Digest;
use crate::model::image::Image;

/// One row of a listing like `docker images`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImageRow {
    /// The image's position in the source (its `@N`).
    pub index: usize,
    /// The image ID.
    pub id: Digest,
    /// The repository in docker's familiar form (`busybox`, `quay.io/x/y`); `None`
    /// for an unnamed image (`<none>`) and for an OCI ref name that is not a reference.
    pub repository: Option<String>,
    /// The tag, or the OCI ref name; `None` for an unnamed image.
    pub tag: Option<String>,
    /// The manifest digest the source holds for the image, if any.
    pub digest: Option<Digest>,
    /// The config's `created`, as written (RFC 3339).
    pub created: Option<String>,
    /// The same, in nanoseconds since the Unix epoch, when it reads as RFC 3339.
    pub created_at: Option<i128>,
    /// The bytes of its layers as the source stores them.
    pub size: u64,
}

/// Nanoseconds since the Unix epoch of `image`'s config's `created`, when it has one
/// that reads as RFC 3339.
///
/// ```
/// use dockhand::{created_at, open_source, Location, ReadOptions};
///
/// let input = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/docker-save-basic/input.tar");
/// let source = open_source(&Location::parse(input)?, &ReadOptions::default())?;
/// // 2026-11-22T19:35:04.18851048Z
/// assert_eq!(created_at(&source.images[0]), Some(1_795_376_104_188_510_480));
/// # Ok::<(), dockhand::Error>(())
/// ```
pub fn created_at(image: &Image) -> Option<i128> {
    parse_time(ConfigSummary::of(image).created.as_deref()?)
}

/// An RFC 3339 time in nanoseconds since the Unix epoch.
pub(crate) fn parse_time(text: &str) -> Option<i128> {
    use time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp_nanos())
}

/// The rows of the images at `selected`, as `docker images` lists them: the newest
/// image first (by its config's `created`; an image without a time last), images
/// created at the same time by their first name, then by position; within an image,
/// a row per name ordered by repository and tag (docker lists the tags of one
/// repository so), or one unnamed row.
///
/// ```
/// use dockhand::{image_rows, open_source, Location, ReadOptions};
///
/// let input = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/docker-save-basic/input.tar");
/// let source = open_source(&Location::parse(input)?, &ReadOptions::default())?;
/// let rows = image_rows(&source.images, &[0]);
/// let names: Vec<_> = rows.iter().map(|r| (r.repository.clone(), r.tag.clone())).collect();
/// let repo = Some("dockhand-fixture/basic".to_string());
/// assert_eq!(names, [(repo.clone(), Some("1.0".into())), (repo, Some("latest".into()))]);
/// # Ok::<(), dockhand::Error>(())
/// ```
pub fn image_rows(images: &[Image], selected: &[usize]) -> Vec<ImageRow> {
    let mut groups: Vec<(Option<i128>, Vec<ImageRow>)> = selected
        .iter()
        .map(|&index| {
            let image = &images[index];
            let summary = ConfigSummary::of(image);
            let created_at = summary.created.as_deref().and_then(parse_time);
            let row = |repository: Option<String>, tag: Option<String>| ImageRow {
                index,
                id: image.config.digest.clone(),
                repository,
                tag,
                digest: image.manifest.as_ref().map(|m| m.digest.clone()),
                created: summary.created.clone(),
                created_at,
                size: image.layers.iter().map(|l| l.size).sum(),
            };
            let mut rows: Vec<ImageRow> = image
                .tags
                .iter()
                .map(|t| row(Some(t.familiar_repository()), Some(t.tag().to_string())))
                .chain(image.ref_names.iter().map(|n| row(None, Some(n.clone()))))
                .collect();
            rows.sort_by(|a, b| (&a.repository, &a.tag).cmp(&(&b.repository, &b.tag)));
            rows.dedup_by(|a, b| (&a.repository, &a.tag) == (&b.repository, &b.tag));
            if rows.is_empty() {
                rows.push(row(None, None));
            }
            (created_at, rows)
        })
        .collect();
    groups.sort_by(|(a_time, a), (b_time, b)| {
        // Newest first; no time sorts as the oldest.
        let time = b_time
            .unwrap_or(i128::MIN)
            .cmp(&a_time.unwrap_or(i128::MIN));
        let first = |rows: &[ImageRow]| (rows[0].repository.clone(), rows[0].tag.clone());
        time.then_with(|| first(a).cmp(&first(b)))
            .then_with(|| a[0].index.cmp(&b[0].index))
    });
    groups.into_iter().flat_map(|(_, rows)| rows).collect()
}
