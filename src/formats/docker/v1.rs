//! Reading pre-1.10 `docker save` archives: `repositories` plus `<id>/json` chains,
//! each chain an image with a config built as Docker builds it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::container::FileTree;
use crate::error::{Error, Result};
use crate::formats::context::{replay, Memo, Meta, NameList};
use crate::formats::v1_config::{synthesize, V1Layer};
use crate::model::digest::Digest;
use crate::model::image::{parse_json, Image};
use crate::model::media::Family;
use crate::model::reference::Reference;
use crate::text::shown;

/// Longest chain of v1 parents followed.
const MAX_CHAIN: usize = 1000;

/// Does the tree have `<dir>/json` + `<dir>/layer.tar` at its top level?
pub(crate) fn has_v1_layers(tree: &dyn FileTree) -> bool {
    tree.top_level()
        .iter()
        .take(64)
        .any(|d| tree.exists(&format!("{d}/json")) && tree.exists(&format!("{d}/layer.tar")))
}

/// The `<id>/json` documents of a pre-1.10 archive, each parsed once however many
/// chains pass through it.
struct V1Jsons<'m, 't> {
    meta: &'m Meta<'t>,
    parsed: HashMap<String, Memo<Arc<Map<String, Value>>>>,
}

impl V1Jsons<'_, '_> {
    /// `<id>/json`, or `None` when the archive has no such file.
    fn get(&mut self, id: &str) -> Result<Option<Arc<Map<String, Value>>>> {
        let path = format!("{id}/json");
        if let Some(memo) = self.parsed.get(&path) {
            return replay(memo).map(Some);
        }
        let Some(file) = self.meta.tree.find(&path)? else {
            return Ok(None);
        };
        let memo = self
            .meta
            .read(&file)
            .and_then(|f| parse_json(&f.bytes, &shown(&path)))
            .map(Arc::new);
        self.parsed.insert(path, memo.clone());
        replay(&memo).map(Some)
    }
}

/// Read a pre-1.10 archive: every chain named in `repositories` (or every chain end
/// when there is no such file) becomes an image with a synthesized config.
pub(crate) fn read_pre_1_10(meta: &Meta, warnings: &mut Vec<String>) -> Result<Vec<Image>> {
    let tree = meta.tree;
    let repositories: BTreeMap<String, BTreeMap<String, String>> =
        match meta.read_top("repositories")? {
            Some(f) => parse_json(&f.bytes, "repositories")?,
            None => BTreeMap::new(),
        };
    // Top layer id -> position, so many tags naming one image merge in linear time.
    let mut positions: HashMap<&str, usize> = HashMap::new();
    let mut tops: Vec<(String, NameList)> = Vec::new();
    for (repo, tags) in &repositories {
        for (tag, id) in tags {
            let name = format!("{repo}:{tag}");
            let reference = match Reference::parse_why(&name) {
                Ok(r) => Some(r),
                Err(why) => {
                    warnings.push(format!(
                        "repositories: ignoring \"{}\": {why}",
                        shown(&name)
                    ));
                    None
                }
            };
            let i = *positions.entry(id.as_str()).or_insert_with(|| {
                tops.push((id.clone(), NameList::default()));
                tops.len() - 1
            });
            tops[i].1.add(reference, []);
        }
    }
    let mut jsons = V1Jsons {
        meta,
        parsed: HashMap::new(),
    };
    if tops.is_empty() {
        // No names: every layer that is nobody's parent is an image.
        let mut ids = Vec::new();
        let mut parents = HashSet::new();
        for d in tree.top_level() {
            if let Some(json) = jsons.get(&d)? {
                if let Some(p) = json.get("parent").and_then(Value::as_str) {
                    parents.insert(p.to_string());
                }
                ids.push(d);
            }
        }
        tops = ids
            .into_iter()
            .filter(|i| !parents.contains(i))
            .map(|i| (i, NameList::default()))
            .collect();
    }
    let mut images = Vec::new();
    for (top, names) in tops {
        let chain = load_chain(&mut jsons, &top)?;
        let mut image = synthesize(meta, chain, Family::Docker)?;
        names.apply(&mut image);
        images.push(image);
    }
    Ok(images)
}

fn load_chain(jsons: &mut V1Jsons, top: &str) -> Result<Vec<V1Layer>> {
    let tree = jsons.meta.tree;
    let mut chain = Vec::new();
    let mut next = Some(top.to_string());
    while let Some(id) = next {
        if chain.len() >= MAX_CHAIN {
            return Err(Error::malformed(
                format!("{}/json", shown(top)),
                "parent chain too long (a loop?)",
            ));
        }
        if Digest::from_hex(&id).is_none() {
            return Err(Error::malformed(
                "repositories",
                format!("invalid layer id \"{}\"", shown(&id)),
            ));
        }
        let json = jsons.get(&id)?.ok_or_else(|| Error::Missing {
            file: format!("{id}/json"),
            what: "legacy image JSON".into(),
        })?;
        let layer_path = format!("{id}/layer.tar");
        let file = tree.resolve(&layer_path).map_err(|_| Error::Missing {
            file: layer_path.clone(),
            what: "legacy layer".into(),
        })?;
        next = json
            .get("parent")
            .and_then(Value::as_str)
            .filter(|p| !p.is_empty())
            .map(String::from);
        chain.push(V1Layer { id, json, file });
    }
    chain.reverse();
    Ok(chain)
}
