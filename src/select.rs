//! Choosing images from a source: `@N` (the number `inspect` shows), a name matched
//! after Docker's normalization, or, when no image carries it as a name, an image ID
//! (whole or a unique prefix), a manifest digest, or `NAME@sha256:...`.

use std::collections::{BTreeSet, HashMap};

use crate::error::Setting;
use crate::error::{Error, Result};
use crate::model::digest::Digest;
use crate::model::image::Image;
use crate::model::reference::{valid_tag, Reference};
use crate::text::shown;
use crate::transport::Location;

/// The fewest hex characters of an image ID taken as an ID: shorter hex strings (`abc123`,
/// `2024`) are names and tags only, as the 12-character short IDs docker shows are the
/// shortest it prints.
///
/// ```
/// use dockhand::{open_source, select, Location, ReadOptions, Selector};
///
/// let input = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/docker-save-multi/input.tar");
/// let source = open_source(&Location::parse(input)?, &ReadOptions::default())?;
/// assert_eq!(select(&source.images, &[Selector::parse("51914c0e66d5")?])?, vec![2]);
/// // Eleven characters are a name (a tag), which no image carries.
/// assert!(select(&source.images, &[Selector::parse("51914c0e66d")?]).is_err());
/// # Ok::<(), dockhand::Error>(())
/// ```
pub const MIN_ID_PREFIX: usize = 12;

/// Which images to take from a source.
///
/// ```
/// use dockhand::Selector;
///
/// assert_eq!(Selector::parse("@2")?, Selector::Index(2));
/// let Selector::Name { reference, .. } = Selector::parse("busybox")? else { panic!() };
/// assert_eq!(reference.unwrap().to_string(), "docker.io/library/busybox:latest");
/// # Ok::<(), dockhand::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Selector {
    /// The N-th image (0-based), as `@N`.
    Index(usize),
    /// The image carrying this name: a normalized reference, or an OCI ref name; when
    /// no image of the source carries it, and it has the form of one, the images with
    /// this ID or digest.
    Name {
        /// The text the user gave, matched against OCI ref names as is.
        raw: String,
        /// Its normalized form, matched against tags.
        reference: Option<Reference>,
        /// What the text picks when it names no image: an ID, a digest.
        digest: Option<ByDigest>,
    },
}

/// What a selector picks images by when no image carries its text as a name.
///
/// ```
/// use dockhand::{ByDigest, Selector};
///
/// let Selector::Name { digest, .. } = Selector::parse("sha256:60aab187e084")? else { panic!() };
/// assert_eq!(digest, Some(ByDigest::IdPrefix("60aab187e084".into())));
/// let Selector::Name { digest, .. } = Selector::parse("app")? else { panic!() };
/// assert_eq!(digest, None); // a name only
/// # Ok::<(), dockhand::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ByDigest {
    /// The start of an image ID (the config digest), at least [`MIN_ID_PREFIX`] lowercase
    /// hex characters, given bare (`60aab187e084`) or after `sha256:`; all 64 given bare
    /// is a whole ID. More than one image ID starting with it is an error.
    IdPrefix(String),
    /// `sha256:<64 hex>`: an image ID, or the digest of the manifest the source holds
    /// for an image.
    Digest(Digest),
    /// `NAME@sha256:<64 hex>`: an image with a tag in NAME's repository (and NAME's
    /// tag, when NAME has one) whose manifest digest, or image ID, is the digest. The
    /// image ID is accepted because a docker-save archive holds no manifest.
    Canonical {
        /// The normalized repository (`docker.io/library/busybox`).
        repository: String,
        /// The tag NAME gives explicitly, if any.
        tag: Option<String>,
        /// The digest.
        digest: Digest,
    },
}

impl ByDigest {
    /// Parse `sha256:<hex>`, `<hex>` or `NAME@sha256:<64 hex>`; `Ok(None)` for text of
    /// none of these forms, an error for a `NAME@...` whose parts are invalid.
    fn parse(s: &str) -> Result<Option<ByDigest>> {
        if let Some((name, digest)) = s.split_once('@') {
            let invalid = |why: &str| {
                Error::Usage(format!(
                    "invalid image reference {}: {why}; expected NAME@sha256:<64 hex digits>",
                    shown(s)
                ))
            };
            let digest = Digest::parse(digest).map_err(|_| invalid("invalid digest"))?;
            let reference = Reference::parse_why(name).map_err(invalid)?;
            let explicit_tag = name
                .rfind(':')
                .is_some_and(|i| !name[i + 1..].contains('/'));
            return Ok(Some(ByDigest::Canonical {
                repository: reference.repository(),
                tag: explicit_tag.then(|| reference.tag().to_string()),
                digest,
            }));
        }
        Ok(match s.strip_prefix("sha256:") {
            Some(hex) if hex.len() == 64 => Digest::from_hex(hex).map(ByDigest::Digest),
            Some(hex) if hex.len() >= MIN_ID_PREFIX && hex.len() < 64 && is_lower_hex(hex) => {
                Some(ByDigest::IdPrefix(hex.to_string()))
            }
            Some(_) => None,
            None if s.len() >= MIN_ID_PREFIX && s.len() <= 64 && is_lower_hex(s) => {
                Some(ByDigest::IdPrefix(s.to_string()))
            }
            None => None,
        })
    }

    fn matches(&self, image: &Image) -> bool {
        let manifest_is = |d: &Digest| image.manifest.as_ref().is_some_and(|m| &m.digest == d);
        match self {
            ByDigest::IdPrefix(hex) => image.config.digest.hex().starts_with(hex.as_str()),
            ByDigest::Digest(d) => &image.config.digest == d || manifest_is(d),
            ByDigest::Canonical { digest, .. } => {
                (&image.config.digest == digest || manifest_is(digest))
                    && image.tags.iter().any(|t| self.keeps_tag(t))
            }
        }
    }

    /// Is `tag` a name an image selected this way keeps? Only for `NAME@sha256:...`:
    /// the tags in NAME's repository (with NAME's tag, if it has one).
    fn keeps_tag(&self, t: &Reference) -> bool {
        match self {
            ByDigest::Canonical {
                repository, tag, ..
            } => t.repository() == *repository && tag.as_ref().is_none_or(|x| x == t.tag()),
            _ => false,
        }
    }
}

/// Is `text` all lowercase hex digits, as image IDs are written?
fn is_lower_hex(text: &str) -> bool {
    text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// How a selector picked its images.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Via {
    Index,
    Name,
    Digest,
}

impl Selector {
    /// Parse `@N`, an image reference or OCI ref name, an image ID (`sha256:<hex>` or
    /// bare hex, whole or at least [`MIN_ID_PREFIX`] characters of it), a manifest
    /// digest, or `NAME@sha256:<hex>`; anything else is a usage error.
    ///
    /// ```
    /// use dockhand::Selector;
    ///
    /// assert_eq!(Selector::parse("@1").unwrap(), Selector::Index(1));
    /// assert!(matches!(Selector::parse("60aab187e084").unwrap(), Selector::Name { digest: Some(_), .. }));
    /// assert!(matches!(Selector::parse("abc123").unwrap(), Selector::Name { digest: None, .. }));
    /// assert!(Selector::parse("busybox@sha256:12").unwrap_err().is_usage());
    /// ```
    pub fn parse(s: &str) -> Result<Selector> {
        if let Some(n) = s.strip_prefix('@') {
            return n.parse().map(Selector::Index).map_err(|_| {
                Error::Usage(format!("invalid image index {}: expected @N", shown(s)))
            });
        }
        let digest = ByDigest::parse(s)?;
        let reference = Reference::parse(s).ok();
        if reference.is_none() && !valid_tag(s) && digest.is_none() {
            return Err(Error::Usage(format!(
                "invalid image reference {}: expected a name such as busybox:1.36, a tag, an image ID, or @N",
                shown(s)
            )));
        }
        Ok(Selector::Name {
            raw: s.to_string(),
            reference,
            digest,
        })
    }

    /// Does `image` carry the name this selector gives?
    fn named_by(&self, image: &Image) -> bool {
        match self {
            Selector::Index(_) => false,
            Selector::Name { raw, .. } => {
                image.ref_names.iter().any(|n| n == raw)
                    || image.tags.iter().any(|t| self.names_tag(t))
            }
        }
    }

    /// The positions of the images this selector picks, and how it picked them: by
    /// name when any image carries the name, by ID or digest only when none does.
    fn hits(&self, images: &[Image]) -> (Vec<usize>, Via) {
        let positions = |pick: &dyn Fn(&Image) -> bool| -> Vec<usize> {
            images
                .iter()
                .enumerate()
                .filter(|(_, im)| pick(im))
                .map(|(i, _)| i)
                .collect()
        };
        match self {
            Selector::Index(n) => (
                (*n < images.len()).then_some(*n).into_iter().collect(),
                Via::Index,
            ),
            Selector::Name { digest, .. } => {
                let by_name = positions(&|im| self.named_by(im));
                match digest {
                    Some(d) if by_name.is_empty() => (positions(&|im| d.matches(im)), Via::Digest),
                    _ => (by_name, Via::Name),
                }
            }
        }
    }

    /// Is `tag` a name this selector picks an image by?
    fn names_tag(&self, tag: &Reference) -> bool {
        match self {
            Selector::Index(_) => false,
            Selector::Name { raw, reference, .. } => {
                reference.as_ref() == Some(tag) || (!raw.contains(['/', ':']) && tag.tag() == raw)
            }
        }
    }

    /// Is the OCI ref name `name` one this selector picks an image by?
    fn names_ref_name(&self, name: &str) -> bool {
        matches!(self, Selector::Name { raw, .. } if raw == name)
    }

    /// Does an image this selector picked `via` keep `tag`?
    fn keeps_tag(&self, via: Via, tag: &Reference) -> bool {
        match (self, via) {
            (_, Via::Name) => self.names_tag(tag),
            (
                Selector::Name {
                    digest: Some(d), ..
                },
                Via::Digest,
            ) => d.keeps_tag(tag),
            _ => false,
        }
    }
}

/// The positions in `images` (the numbers `inspect` shows as `@N`) of the images the
/// selectors pick, in selector order without repeats; all images when there are none.
///
/// A selector matching no image is an error, and so is an ID prefix that starts the
/// IDs of more than one image (the message lists them with their `@N`); either names the
/// input ([`Error::unselected_input`] says which, for a caller to offer a listing). A name or an ID several entries share (one image
/// listed under several manifests) picks them all.
///
/// ```
/// use dockhand::{open_source, select, Location, ReadOptions, Selector};
///
/// let input = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/docker-save-multi/input.tar");
/// let source = open_source(&Location::parse(input)?, &ReadOptions::default())?;
/// // By name (normalized as Docker does) and by @N, in the order asked.
/// let by = [Selector::parse("dockhand-multi-base:1.0")?, Selector::parse("@0")?];
/// assert_eq!(select(&source.images, &by)?, vec![2, 0]);
/// assert_eq!(select(&source.images, &[])?, vec![0, 1, 2]);
/// // No match: the error names the input and lists what it holds.
/// let none = select(&source.images, &[Selector::parse("nosuch")?]).unwrap_err();
/// assert_eq!((none.input(), none.unselected_input()), (Some(input), Some(input)));
/// assert!(none.to_string().contains("@1"));
/// # Ok::<(), dockhand::Error>(())
/// ```
pub fn select(images: &[Image], selectors: &[Selector]) -> Result<Vec<usize>> {
    if selectors.is_empty() {
        return Ok((0..images.len()).collect());
    }
    let mut out: Vec<usize> = Vec::new();
    for selector in selectors {
        let in_input = |e: Error| match images.first() {
            Some(image) => e.in_input(&image.input),
            None => e,
        };
        let (hits, via) = selector.hits(images);
        if hits.is_empty() {
            return Err(in_input(no_match(images, selector)));
        }
        if via == Via::Digest {
            let ids: BTreeSet<&Digest> = hits.iter().map(|&i| &images[i].config.digest).collect();
            if ids.len() > 1 {
                return Err(in_input(ambiguous(images, selector, &hits, ids.len())));
            }
        }
        for hit in hits {
            let same = |&o: &usize| {
                images[o].config.digest == images[hit].config.digest
                    && images[o].manifest == images[hit].manifest
            };
            if !out.iter().any(same) {
                out.push(hit);
            }
        }
    }
    Ok(out)
}

/// The one image `selectors` pick from `images` (the only image when there are no
/// selectors), read from `input`; several is a usage error listing them, worded for
/// `task` (`export writes one`).
pub(crate) fn select_one(
    images: &[Image],
    selectors: &[Selector],
    input: &str,
    task: &str,
) -> Result<usize> {
    let picked = select(images, selectors)?;
    match picked[..] {
        [one] => Ok(one),
        _ => Err(Error::Usage(format!(
            "{} holds {} images: {}; {task}: pick it with {image} @N or {image} NAME, e.g. {image} @{}",
            shown(input),
            picked.len(),
            candidates(images, &picked),
            picked.first().copied().unwrap_or(0),
            image = Setting::Image
        ))),
    }
}

/// The images at `picked` (from [`select`]) with the names a conversion carries: only
/// those each was selected by, as `docker save name:tag` writes only the name it was
/// asked for; every name for an image picked by `@N`, or when there are no selectors;
/// none for an image picked only by its ID or a manifest digest, as `docker save <ID>`
/// writes no RepoTags; the tags in NAME's repository for one picked by
/// `NAME@sha256:...`.
///
/// ```
/// use dockhand::{open_source, select, with_selected_names, Location, ReadOptions, Selector};
///
/// let input = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/docker-save-multi/input.tar");
/// let source = open_source(&Location::parse(input)?, &ReadOptions::default())?;
/// let by = [Selector::parse("localhost:5000/dockhand/app:v2")?];
/// let images = with_selected_names(&source.images, &select(&source.images, &by)?, &by);
/// // @0 carries two names; only the one it was selected by goes along.
/// assert_eq!(images[0].tags.len(), 1);
/// assert_eq!(images[0].tags[0].to_string(), "localhost:5000/dockhand/app:v2");
/// # Ok::<(), dockhand::Error>(())
/// ```
pub fn with_selected_names(
    images: &[Image],
    picked: &[usize],
    selectors: &[Selector],
) -> Vec<Image> {
    // Entries repeating one image (same config and manifest) share their selectors.
    let key = |image: &Image| {
        (
            image.config.digest.clone(),
            image.manifest.as_ref().map(|m| m.digest.clone()),
        )
    };
    let mut pickers: HashMap<_, Vec<(&Selector, Via)>> = HashMap::new();
    for selector in selectors {
        let (hits, via) = selector.hits(images);
        for i in hits {
            let list = pickers.entry(key(&images[i])).or_default();
            if !list.contains(&(selector, via)) {
                list.push((selector, via));
            }
        }
    }
    picked
        .iter()
        .map(|&i| {
            let mut image = images[i].clone();
            let by = pickers.get(&key(&image)).map(Vec::as_slice).unwrap_or(&[]);
            if !by.is_empty() && !by.iter().any(|(_, via)| *via == Via::Index) {
                image.retain_names(
                    |tag| by.iter().any(|(s, via)| s.keeps_tag(*via, tag)),
                    |name| {
                        by.iter()
                            .any(|(s, via)| *via == Via::Name && s.names_ref_name(name))
                    },
                );
            }
            image
        })
        .collect()
}

fn describe_selector(s: &Selector) -> String {
    match s {
        Selector::Index(n) => format!("@{n}"),
        Selector::Name { raw, .. } => format!("\"{}\"", shown(raw)),
    }
}

/// A selection error for `images`, naming their source so a caller can say how to
/// list it.
fn unselected(images: &[Image], message: String) -> Error {
    Error::Unselected {
        message,
        input: images
            .first()
            .map_or_else(String::new, |i| i.input.to_string()),
    }
}

/// The error for a selector that picks nothing: what the source holds, with image IDs
/// when an ID or digest was asked for, and how to see them all.
fn no_match(images: &[Image], selector: &Selector) -> Error {
    let all: Vec<usize> = (0..images.len()).collect();
    if images.is_empty() {
        return Error::Selection(format!(
            "no image matches {}: the source holds no image",
            describe_selector(selector)
        ));
    }
    match selector {
        Selector::Name {
            digest: Some(_), ..
        } => unselected(
            images,
            format!(
                "no image has the name, ID or digest {}; the source holds: {}",
                describe_selector(selector),
                candidates_with_ids(images, &all, false)
            ),
        ),
        _ => {
            let hint = match selector {
                Selector::Name { raw, .. } if raw.len() >= 4 && is_lower_hex(raw) => {
                    format!(" (an image ID prefix needs at least {MIN_ID_PREFIX} hex characters)")
                }
                _ => String::new(),
            };
            unselected(
                images,
                format!(
                    "no image matches {}{hint}; the source holds: {}",
                    describe_selector(selector),
                    candidates(images, &all)
                ),
            )
        }
    }
}

/// The error for an ID prefix (or digest) that picks more than one image ID.
fn ambiguous(images: &[Image], selector: &Selector, hits: &[usize], ids: usize) -> Error {
    unselected(
        images,
        format!(
            "{} is ambiguous: it starts {ids} image IDs: {}; give more characters of the ID, or pick one by its number ({} @N)",
            describe_selector(selector),
            candidates_with_ids(images, hits, true),
            Setting::Image,
        ),
    )
}

/// A one-line list of the images at `indices` of `images`, numbered as `inspect`
/// numbers them, for messages.
pub(crate) fn candidates(images: &[Image], indices: &[usize]) -> String {
    listed(indices, |i| {
        let image = &images[i];
        let name = image.display_name();
        let id = image.config.digest.short();
        if name == image.config.digest.to_string() {
            format!("@{i} {id} (no name)")
        } else {
            format!("@{i} {id} {name}")
        }
    })
}

/// Like [`candidates`], with each image's ID (whole, or short as docker shows it) and
/// every name it carries.
fn candidates_with_ids(images: &[Image], indices: &[usize], whole: bool) -> String {
    listed(indices, |i| {
        let image = &images[i];
        let id = image.config.digest.whole_or_short(whole);
        let names: Vec<String> = image
            .tags
            .iter()
            .map(|t| t.to_string())
            .chain(image.ref_names.iter().map(|n| shown(n)))
            .collect();
        if names.is_empty() {
            format!("@{i} {id} (no names)")
        } else {
            format!("@{i} {id} ({})", names.join(", "))
        }
    })
}

fn listed(indices: &[usize], item: impl Fn(usize) -> String) -> String {
    const SHOWN: usize = 20;
    let mut text = indices
        .iter()
        .take(SHOWN)
        .map(|&i| item(i))
        .collect::<Vec<_>>()
        .join(", ");
    if indices.len() > SHOWN {
        text.push_str(&format!(" and {} more", indices.len() - SHOWN));
    }
    text
}

/// The selectors of a source reference (`TRANSPORT:PATH:REF`) and `--image` values.
///
/// ```
/// use dockhand::{selectors, Location, Selector};
///
/// let location = Location::parse("oci:layout:myapp:1.0")?;
/// let picked = selectors(&location, &["@1".to_string()])?;
/// assert_eq!(picked.len(), 2);
/// assert_eq!(picked[0], Selector::parse("myapp:1.0")?);
/// assert_eq!(picked[1], Selector::Index(1));
/// # Ok::<(), dockhand::Error>(())
/// ```
pub fn selectors(location: &Location, images: &[String]) -> Result<Vec<Selector>> {
    location
        .reference
        .iter()
        .chain(images)
        .map(|s| Selector::parse(s))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use super::*;
    use crate::model::image::{Descriptor, Platform};

    fn descriptor(digest: Digest) -> Descriptor {
        Descriptor {
            media_type: "application/vnd.oci.image.config.v1+json".into(),
            digest,
            size: 2,
        }
    }

    /// An image with config digest `sha256:<id>` (`id` padded with zeros to 64 hex
    /// characters), the manifest digest `manifest`, and `tags`.
    fn image(id: &str, manifest: Option<&str>, tags: &[&str]) -> Image {
        let hex = |s: &str| Digest::from_hex(&format!("{s:0<64}")).unwrap();
        Image {
            tags: tags.iter().map(|t| Reference::parse(t).unwrap()).collect(),
            ref_names: Vec::new(),
            oci_ref_names: BTreeMap::new(),
            config: descriptor(hex(id)),
            config_bytes: Arc::new(b"{}".to_vec()),
            config_path: "config".into(),
            manifest: manifest.map(|m| descriptor(hex(m))),
            manifest_bytes: None,
            platform: Platform::default(),
            layers: Vec::new(),
            artifact: false,
            index: None,
            input: Arc::from("test"),
            annotations: Default::default(),
        }
    }

    fn parse(list: &[&str]) -> Vec<Selector> {
        list.iter().map(|s| Selector::parse(s).unwrap()).collect()
    }

    fn pick(images: &[Image], list: &[&str]) -> Result<Vec<usize>> {
        select(images, &parse(list))
    }

    fn names(images: &[Image], list: &[&str]) -> Vec<Vec<String>> {
        let selectors = parse(list);
        let picked = select(images, &selectors).unwrap();
        with_selected_names(images, &picked, &selectors)
            .iter()
            .map(|im| im.tags.iter().map(|t| t.familiar()).collect())
            .collect()
    }

    fn sample() -> Vec<Image> {
        vec![
            image(
                "aaaa1111bbbb2222",
                Some("cccc"),
                &["app:1", "app:2", "other:1"],
            ),
            image("aaaa1111bbbb3333", None, &["base:1"]),
            image("dddd", Some("eeee"), &[]),
        ]
    }

    #[test]
    fn candidates_name_each_image_by_position_id_and_name() {
        let listed = candidates(&sample(), &[1, 2]);
        assert!(
            listed.contains("@1 aaaa1111bbbb docker.io/library/base:1"),
            "{listed}"
        );
        assert!(listed.contains("@2 dddd00000000 (no name)"), "{listed}");
    }

    #[test]
    fn parses_ids_digests_and_canonical_references() {
        let full = format!("{:0<64}", "ab12");
        let prefix = |s: &str| Some(ByDigest::IdPrefix(s.to_string()));
        let by = |s: &str| match Selector::parse(s).unwrap() {
            Selector::Name { digest, .. } => digest,
            Selector::Index(_) => panic!("{s}"),
        };
        assert_eq!(by(&full), prefix(&full));
        assert_eq!(by("ab12ab12ab12"), prefix("ab12ab12ab12"));
        assert_eq!(by("sha256:ab12ab12ab12"), prefix("ab12ab12ab12"));
        assert_eq!(
            by(&format!("sha256:{full}")),
            Some(ByDigest::Digest(Digest::from_hex(&full).unwrap()))
        );
        // Shorter than 12, longer than 64, not hex, upper case: names and tags only.
        assert_eq!(by(&format!("{full}0")), None);
        assert_eq!(by(&format!("sha256:{full}0")), None);
        for name in [
            "ab12ab12ab1",
            "abc123",
            "latest",
            "1.0",
            "AB12AB12AB12",
            "sha256:ab12",
        ] {
            assert_eq!(by(name), None, "{name}");
        }
        assert_eq!(
            by(&format!("busybox@sha256:{full}")),
            Some(ByDigest::Canonical {
                repository: "docker.io/library/busybox".into(),
                tag: None,
                digest: Digest::from_hex(&full).unwrap(),
            })
        );
        assert_eq!(
            by(&format!("quay.io/a/b:1.0@sha256:{full}")),
            Some(ByDigest::Canonical {
                repository: "quay.io/a/b".into(),
                tag: Some("1.0".into()),
                digest: Digest::from_hex(&full).unwrap(),
            })
        );
        for bad in [
            "busybox@sha256:ab12",
            "busybox@md5:ab12",
            "Busybox@sha256:",
            "@sha256:ab12",
            &format!("Bad@sha256:{full}"),
        ] {
            assert!(Selector::parse(bad).unwrap_err().is_usage(), "{bad}");
        }
    }

    #[test]
    fn selects_by_id_prefix_whole_id_and_manifest_digest() {
        let images = sample();
        let full = format!("{:0<64}", "aaaa1111bbbb2222");
        assert_eq!(pick(&images, &[&full]).unwrap(), [0]);
        assert_eq!(pick(&images, &[&format!("sha256:{full}")]).unwrap(), [0]);
        assert_eq!(pick(&images, &["aaaa1111bbbb2"]).unwrap(), [0]);
        assert_eq!(pick(&images, &["sha256:aaaa1111bbbb3"]).unwrap(), [1]);
        let manifest = format!("sha256:{:0<64}", "eeee");
        assert_eq!(pick(&images, &[&manifest]).unwrap(), [2]);
        // A manifest digest is taken whole only, and never bare.
        let err = pick(&images, &[&format!("{:0<64}", "eeee")]).unwrap_err();
        assert!(
            matches!(err.without_input(), Error::Unselected { .. }),
            "{err}"
        );
        assert!(pick(&images, &["sha256:eeee00000000"]).is_err());
    }

    #[test]
    fn an_ambiguous_prefix_lists_the_images_and_how_to_pick_one() {
        let images = sample();
        let err = pick(&images, &["aaaa1111bbbb"]).unwrap_err();
        assert!(
            matches!(err.without_input(), Error::Unselected { input, .. } if input == "test"),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(!text.contains('\n'), "{text}");
        let id0 = format!("sha256:{:0<64}", "aaaa1111bbbb2222");
        let id1 = format!("sha256:{:0<64}", "aaaa1111bbbb3333");
        assert_eq!(
            text,
            format!(
                "test: \"aaaa1111bbbb\" is ambiguous: it starts 2 image IDs: \
                 @0 {id0} (docker.io/library/app:1, docker.io/library/app:2, docker.io/library/other:1), \
                 @1 {id1} (docker.io/library/base:1); \
                 give more characters of the ID, or pick one by its number (`images` @N)"
            )
        );
        assert!(pick(&images, &["sha256:aaaa1111bbbb"]).is_err());
        // Entries repeating one image (one ID under two manifests) are not ambiguous.
        let twice = vec![
            image("aaaa1111bbbb2222", Some("cccc"), &["app:1"]),
            image("aaaa1111bbbb2222", Some("ffff"), &["app:2"]),
        ];
        assert_eq!(pick(&twice, &["aaaa1111bbbb"]).unwrap(), [0, 1]);
    }

    #[test]
    fn names_are_matched_before_ids() {
        // A tag that looks like an ID prefix picks by the tag.
        let images = vec![
            image("aaaa1111bbbb2222", None, &["app:1"]),
            image("bbbb", None, &["app:aaaa1111bbbb"]),
        ];
        assert_eq!(pick(&images, &["aaaa1111bbbb"]).unwrap(), [1]);
        assert_eq!(pick(&images, &["aaaa1111bbbb2"]).unwrap(), [0]);
        let err = pick(&images, &["aaaa1111bbb"]).unwrap_err().to_string();
        assert!(
            err.starts_with("test: no image matches \"aaaa1111bbb\" (an image ID prefix needs at least 12 hex characters); the source holds: @0 aaaa1111bbbb docker.io/library/app:1, @1"),
            "{err}"
        );
        let err = pick(&images, &["cccc1111bbbb"]).unwrap_err().to_string();
        assert_eq!(
            err,
            "test: no image has the name, ID or digest \"cccc1111bbbb\"; the source holds: \
             @0 aaaa1111bbbb (docker.io/library/app:1), @1 bbbb00000000 (docker.io/library/app:aaaa1111bbbb)"
        );
    }

    #[test]
    fn canonical_references_need_the_repository_and_the_digest() {
        let images = sample();
        let manifest = format!("sha256:{:0<64}", "cccc");
        let id1 = format!("sha256:{:0<64}", "aaaa1111bbbb3333");
        assert_eq!(pick(&images, &[&format!("app@{manifest}")]).unwrap(), [0]);
        assert_eq!(pick(&images, &[&format!("app:2@{manifest}")]).unwrap(), [0]);
        // Without a manifest (a docker-save archive), the image ID.
        assert_eq!(pick(&images, &[&format!("base@{id1}")]).unwrap(), [1]);
        for miss in [
            format!("base@{manifest}"),
            format!("app:3@{manifest}"),
            format!("docker.io/other/app@{manifest}"),
        ] {
            let err = pick(&images, &[&miss]).unwrap_err();
            assert!(
                matches!(err.without_input(), Error::Unselected { .. }),
                "{miss}: {err}"
            );
        }
    }

    #[test]
    fn an_image_selected_by_id_keeps_no_names_unless_also_selected_by_one() {
        let images = sample();
        let manifest = format!("sha256:{:0<64}", "cccc");
        let none: Vec<Vec<String>> = vec![vec![]];
        assert_eq!(names(&images, &["aaaa1111bbbb2"]), none);
        assert_eq!(names(&images, &[&manifest]), none);
        assert_eq!(names(&images, &["aaaa1111bbbb2", "app:2"]), [["app:2"]]);
        assert_eq!(
            names(&images, &["aaaa1111bbbb2", "@0"]),
            [["app:1", "app:2", "other:1"]]
        );
        // NAME@sha256: keeps the tags of NAME's repository (of its tag, if given).
        assert_eq!(
            names(&images, &[&format!("app@{manifest}")]),
            [["app:1", "app:2"]]
        );
        assert_eq!(names(&images, &[&format!("app:2@{manifest}")]), [["app:2"]]);
    }

    #[test]
    fn a_selection_from_stdin_names_stdin_as_its_input() {
        let mut images = vec![image("aaaa", None, &["app:1"])];
        images[0].input = Arc::from("stdin");
        let err = pick(&images, &["nope"]).unwrap_err();
        assert_eq!(err.unselected_input(), Some("stdin"));
    }
}
