//! Which blobs a layout's names still need: everything reachable from its
//! `index.json` entries (and, in a docker-save tree with an OCI part, from
//! manifest.json), through nested indexes, their members, manifests, their configs,
//! layers and subjects: a referrer kept keeps what it refers to, as umoci's walk of
//! every descriptor does (umoci gc refuses a layout where a `subject` names a missing
//! blob). Each document is read, verified and parsed once; a loop closes on a document
//! already seen.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use crate::container::{read_limited, FileTree};
use crate::error::{Error, Result};
use crate::formats::blob_path;
use crate::formats::MAX_LAYERS_TOTAL;
use crate::model::digest::Digest;
use crate::model::image::{parse_json, MAX_JSON_SIZE};
use crate::text::shown;

/// What a document (a manifest or an index) points at.
#[derive(Default)]
struct Children {
    /// Documents: an index's members, a manifest's subject.
    documents: Vec<Digest>,
    /// Blobs read as they are: a config, layers, an artifact's blobs.
    leaves: Vec<Digest>,
}

/// Walks the blobs of one tree; documents parsed once across walks.
pub(crate) struct Reach<'t> {
    tree: &'t dyn FileTree,
    parsed: HashMap<Digest, std::sync::Arc<Children>>,
}

impl<'t> Reach<'t> {
    pub(crate) fn new(tree: &'t dyn FileTree) -> Reach<'t> {
        Reach {
            tree,
            parsed: HashMap::new(),
        }
    }

    /// Every blob digest reachable from `documents` (each read as a manifest or an
    /// index, whatever media type names it: what an index lists is one) and the blobs
    /// `leaves`, themselves included. A document the tree lacks is reachable but
    /// points at nothing; one that does not match its digest fails the walk, since
    /// what it points at cannot be known.
    pub(crate) fn from(
        &mut self,
        documents: impl IntoIterator<Item = Digest>,
        leaves: impl IntoIterator<Item = Digest>,
    ) -> Result<HashSet<Digest>> {
        let mut seen: HashSet<Digest> = leaves.into_iter().collect();
        let mut queue: Vec<Digest> = Vec::new();
        for d in documents {
            if seen.insert(d.clone()) {
                queue.push(d);
            }
        }
        while let Some(digest) = queue.pop() {
            let children = self.children(&digest)?;
            for leaf in &children.leaves {
                seen.insert(leaf.clone());
            }
            for doc in &children.documents {
                if seen.insert(doc.clone()) {
                    queue.push(doc.clone());
                }
            }
            if self.parsed.len() > MAX_LAYERS_TOTAL {
                return Err(Error::malformed(
                    "index.json",
                    format!("the layout's indexes and manifests number over {MAX_LAYERS_TOTAL}"),
                ));
            }
        }
        Ok(seen)
    }

    /// The manifests reachable from the document `digest` through indexes, itself
    /// included when it is one.
    pub(crate) fn manifests_under(&mut self, digest: &Digest) -> Result<HashSet<Digest>> {
        let mut out = HashSet::new();
        let mut seen = HashSet::new();
        let mut queue = vec![digest.clone()];
        while let Some(d) = queue.pop() {
            if !seen.insert(d.clone()) {
                continue;
            }
            let children = self.children(&d)?;
            if children.documents.is_empty() || !children.leaves.is_empty() {
                out.insert(d.clone());
            }
            queue.extend(children.documents.iter().cloned());
        }
        Ok(out)
    }

    /// What the document `digest` points at, read once.
    fn children(&mut self, digest: &Digest) -> Result<std::sync::Arc<Children>> {
        if let Some(c) = self.parsed.get(digest) {
            return Ok(c.clone());
        }
        let children = std::sync::Arc::new(read_children(self.tree, digest)?);
        self.parsed.insert(digest.clone(), children.clone());
        Ok(children)
    }
}

fn read_children(tree: &dyn FileTree, digest: &Digest) -> Result<Children> {
    let path = blob_path(digest);
    let Some(file) = tree.find(&path)? else {
        return Ok(Children::default());
    };
    if file.size > MAX_JSON_SIZE {
        // Not a document any reader takes: a blob, pointing at nothing.
        return Ok(Children::default());
    }
    let bytes = read_limited(file.open()?, MAX_JSON_SIZE, &path)?;
    let actual = Digest::of(&bytes);
    if actual != *digest {
        return Err(Error::DigestMismatch {
            file: shown(&path),
            expected: digest.clone(),
            actual,
        });
    }
    let Ok(value) = parse_json::<Value>(&bytes, &path) else {
        // Not JSON: a blob listed as a manifest, pointing at nothing.
        return Ok(Children::default());
    };
    let mut children = Children::default();
    let descriptor_digest = |d: &Value| -> Result<Option<Digest>> {
        match d.get("digest").and_then(Value::as_str) {
            None => Ok(None),
            Some(text) => Digest::parse(text).map(Some).map_err(|e| {
                Error::malformed(
                    shown(&path),
                    format!("names a blob it cannot be walked to: {e}"),
                )
            }),
        }
    };
    let list = |key: &str| {
        value
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
    };
    for member in list("manifests") {
        children.documents.extend(descriptor_digest(member)?);
    }
    if let Some(subject) = value.get("subject").filter(|s| s.is_object()) {
        children.documents.extend(descriptor_digest(subject)?);
    }
    if let Some(config) = value.get("config").filter(|c| c.is_object()) {
        children.leaves.extend(descriptor_digest(config)?);
    }
    for blob in list("layers").chain(list("blobs")) {
        children.leaves.extend(descriptor_digest(blob)?);
    }
    Ok(children)
}
