//! How the images of one source relate, as docker's image graph related them: an image
//! is the parent of another when its layers (diff_ids) are a strict prefix of the
//! other's, the nearest such (the longest prefix); its children are the images it is
//! the parent of; a head is an image with no child.

use std::collections::HashMap;

use crate::inspect::chain_ids;
use crate::model::digest::Digest;
use crate::model::image::Image;

/// The parents and children of a source's images, by position (the `@N` `inspect`
/// shows).
///
/// ```
/// use dockhand::{image_family, open_source, Location, ReadOptions};
///
/// let input = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/docker-save-multi/input.tar");
/// let source = open_source(&Location::parse(input)?, &ReadOptions::default())?;
/// let family = image_family(&source.images);
/// // The base image's layers start both others'.
/// assert_eq!(family.parent, vec![Some(2), Some(2), None]);
/// assert_eq!(family.children[2], vec![0, 1]);
/// assert!(family.is_head(0) && family.is_head(1) && !family.is_head(2));
/// # Ok::<(), dockhand::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Family {
    /// Each image's parent, when it has one in the source.
    pub parent: Vec<Option<usize>>,
    /// Each image's children, in the source's order.
    pub children: Vec<Vec<usize>>,
}

impl Family {
    /// Whether the image at `image` has no child.
    pub fn is_head(&self, image: usize) -> bool {
        self.children[image].is_empty()
    }

    /// The images without a parent, in the source's order: where the trees start.
    pub fn roots(&self) -> Vec<usize> {
        (0..self.parent.len())
            .filter(|&i| self.parent[i].is_none())
            .collect()
    }
}

/// The family of `images`: each image's parent is the image whose diff_ids are the
/// longest strict prefix of its own (of images with the same layers, the first in the
/// source's order). Images without layers, or with layers of unknown diff_id
/// (artifacts), have neither parent nor children: an empty prefix starts every image
/// and relates none.
///
/// Work grows with the number of layers, not the number of pairs of images: each
/// image's chain IDs ([`chain_ids`]) are looked up in a map of the images' own.
pub fn image_family(images: &[Image]) -> Family {
    let chains: Vec<Vec<Digest>> = images
        .iter()
        .map(|image| {
            let chain = chain_ids(image);
            if image.artifact || chain.iter().any(Option::is_none) {
                Vec::new()
            } else {
                chain.into_iter().flatten().collect()
            }
        })
        .collect();
    // Each whole chain, to the first image that has it.
    let mut by_chain: HashMap<&Digest, usize> = HashMap::new();
    for (i, chain) in chains.iter().enumerate() {
        if let Some(top) = chain.last() {
            by_chain.entry(top).or_insert(i);
        }
    }
    let mut family = Family {
        parent: vec![None; images.len()],
        children: vec![Vec::new(); images.len()],
    };
    for (i, chain) in chains.iter().enumerate() {
        let shorter = &chain[..chain.len().saturating_sub(1)];
        if let Some(&p) = shorter.iter().rev().find_map(|c| by_chain.get(c)) {
            family.parent[i] = Some(p);
            family.children[p].push(i);
        }
    }
    family
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use super::*;
    use crate::model::image::{Descriptor, Layer, Platform};

    /// An image whose layers have the diff_ids `layers` (one character each).
    fn image(layers: &str) -> Image {
        let digest = |s: &str| Digest::of(s.as_bytes());
        Image {
            annotations: Default::default(),
            tags: Vec::new(),
            ref_names: Vec::new(),
            oci_ref_names: BTreeMap::new(),
            config: Descriptor {
                media_type: "application/vnd.oci.image.config.v1+json".into(),
                digest: digest(&format!("config {layers}")),
                size: 2,
            },
            config_bytes: Arc::new(b"{}".to_vec()),
            config_path: "config".into(),
            manifest: None,
            manifest_bytes: None,
            platform: Platform::default(),
            layers: layers
                .chars()
                .map(|c| Layer {
                    digest: None,
                    size: 1,
                    media_type: "m".into(),
                    compression: crate::model::media::Compression::None,
                    diff_id: Some(digest(&c.to_string())),
                    blob: None,
                    path: c.to_string(),
                })
                .collect(),
            artifact: false,
            index: None,
            input: Arc::from("test"),
        }
    }

    #[test]
    fn the_nearest_strict_prefix_is_the_parent() {
        let images: Vec<Image> = ["abc", "a", "ab", "abcd", "abx", "ab", "", "b", "abcd"]
            .iter()
            .map(|l| image(l))
            .collect();
        let family = image_family(&images);
        assert_eq!(
            family.parent,
            vec![
                Some(2), // abc: ab (the first of the two)
                None,    // a
                Some(1), // ab
                Some(0), // abcd: abc
                Some(2), // abx: ab
                Some(1), // the second ab: a
                None,    // no layers
                None,    // b: no image starts with it and is shorter
                Some(0), // the second abcd: abc, not the first abcd (not strict)
            ]
        );
        assert_eq!(family.children[2], vec![0, 4]);
        assert_eq!(family.roots(), vec![1, 6, 7]);
        assert!(family.is_head(3) && !family.is_head(0));
    }
}
