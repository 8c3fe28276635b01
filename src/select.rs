//! Choosing images from a source: `@N` (the number `inspect` shows) or a name matched
//! after Docker's normalization.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::location::Location;
use crate::model::image::Image;
use crate::model::reference::{valid_tag, Reference};
use crate::text::shown;

/// Which images to take from a source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selector {
    /// The N-th image (0-based), as `@N`.
    Index(usize),
    /// The image carrying this name: a normalized reference, or an OCI ref name.
    Name {
        /// The text the user gave, matched against OCI ref names as is.
        raw: String,
        /// Its normalized form, matched against tags.
        reference: Option<Reference>,
    },
}

impl Selector {
    /// Parse `@N` or an image reference; anything else is a usage error.
    pub fn parse(s: &str) -> Result<Selector> {
        if let Some(n) = s.strip_prefix('@') {
            return n.parse().map(Selector::Index).map_err(|_| {
                Error::Usage(format!("invalid image index {}: expected @N", shown(s)))
            });
        }
        let reference = Reference::parse(s).ok();
        if reference.is_none() && !valid_tag(s) {
            return Err(Error::Usage(format!(
                "invalid image reference {}: expected a name such as busybox:1.36, a tag, or @N",
                shown(s)
            )));
        }
        Ok(Selector::Name {
            raw: s.to_string(),
            reference,
        })
    }

    fn matches(&self, index: usize, image: &Image) -> bool {
        match self {
            Selector::Index(n) => *n == index,
            Selector::Name { raw, .. } => {
                image.ref_names.iter().any(|n| n == raw)
                    || image.tags.iter().any(|t| self.names_tag(t))
            }
        }
    }

    /// Is `tag` a name this selector picks an image by?
    fn names_tag(&self, tag: &Reference) -> bool {
        match self {
            Selector::Index(_) => false,
            Selector::Name { raw, reference } => {
                reference.as_ref() == Some(tag) || (!raw.contains(['/', ':']) && tag.tag() == raw)
            }
        }
    }

    /// Is the OCI ref name `name` one this selector picks an image by?
    fn names_ref_name(&self, name: &str) -> bool {
        matches!(self, Selector::Name { raw, .. } if raw == name)
    }
}

/// The positions in `images` (the numbers `inspect` shows as `@N`) of the images the
/// selectors pick, in selector order without repeats; all images when there are none.
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
/// // No match: the error lists what the source holds.
/// let none = select(&source.images, &[Selector::parse("nosuch")?]).unwrap_err();
/// assert!(none.to_string().contains("@1"));
/// # Ok::<(), dockhand::Error>(())
/// ```
pub fn select(images: &[Image], selectors: &[Selector]) -> Result<Vec<usize>> {
    if selectors.is_empty() {
        return Ok((0..images.len()).collect());
    }
    let mut out: Vec<usize> = Vec::new();
    for selector in selectors {
        let hits: Vec<usize> = images
            .iter()
            .enumerate()
            .filter(|(i, im)| selector.matches(*i, im))
            .map(|(i, _)| i)
            .collect();
        if hits.is_empty() {
            let all: Vec<usize> = (0..images.len()).collect();
            return Err(Error::Selection(format!(
                "no image matches {}; the source holds: {}",
                describe_selector(selector),
                candidates(images, &all)
            )));
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

/// The images at `picked` (from [`select`]) with the names a conversion carries: only
/// those each was selected by, as `docker save name:tag` writes only the name it was
/// asked for; every name for an image picked by `@N`, or when there are no selectors.
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
    let mut pickers: HashMap<_, Vec<&Selector>> = HashMap::new();
    for selector in selectors {
        for (i, image) in images.iter().enumerate() {
            if selector.matches(i, image) {
                let list = pickers.entry(key(image)).or_default();
                if !list.contains(&selector) {
                    list.push(selector);
                }
            }
        }
    }
    picked
        .iter()
        .map(|&i| {
            let mut image = images[i].clone();
            let by = pickers.get(&key(&image)).map(Vec::as_slice).unwrap_or(&[]);
            if !by.is_empty() && !by.iter().any(|s| matches!(s, Selector::Index(_))) {
                image.retain_names(
                    |tag| by.iter().any(|s| s.names_tag(tag)),
                    |name| by.iter().any(|s| s.names_ref_name(name)),
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

/// A one-line list of the images at `indices` of `images`, numbered as `inspect`
/// numbers them, for messages.
pub fn candidates(images: &[Image], indices: &[usize]) -> String {
    const SHOWN: usize = 20;
    let mut text = indices
        .iter()
        .take(SHOWN)
        .map(|&i| {
            let image = &images[i];
            let name = image.display_name();
            let id = image.config.digest.short();
            if name == image.config.digest.to_string() {
                format!("@{i} {id} (no name)")
            } else {
                format!("@{i} {id} {name}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    if indices.len() > SHOWN {
        text.push_str(&format!(" and {} more", indices.len() - SHOWN));
    }
    text
}

/// The selectors of a source reference (`TRANSPORT:PATH:REF`) and `--image` values.
pub fn selectors(location: &Location, images: &[String]) -> Result<Vec<Selector>> {
    location
        .reference
        .iter()
        .chain(images)
        .map(|s| Selector::parse(s))
        .collect()
}
