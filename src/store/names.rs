//! The names a store holds, as each format writes them: `index.json` entries
//! (`io.containerd.image.name` and `org.opencontainers.image.ref.name`), manifest.json
//! RepoTags and the legacy `repositories` file; and how a name given on the command
//! line finds them.

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::formats::oci::{ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME};
use crate::model::digest::Digest;
use crate::model::reference::{valid_ref_name, valid_tag, Reference};
use crate::text::shown;

use super::json_edit::ListDoc;

/// A name as a store holds it: a full reference, or (in an OCI layout) a bare ref name
/// such as `1.0`, which names an image of that layout only.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Name {
    /// `docker.io/library/app:1.0`.
    Full(Reference),
    /// An OCI ref name that is not a reference.
    Bare(String),
}

impl Name {
    /// A new name given on the command line: a reference, normalized as Docker does;
    /// in an OCI layout (`bare_is_ref_name`), a tag alone (`1.0`) is a ref name, as in
    /// skopeo's `oci:DIR:1.0`.
    pub(crate) fn new(text: &str, bare_is_ref_name: bool) -> Result<Name> {
        if bare_is_ref_name && valid_tag(text) && valid_ref_name(text) {
            return Ok(Name::Bare(text.to_string()));
        }
        if text.contains('@') {
            return Err(Error::Usage(format!(
                "{}: a new name is a NAME[:TAG], not a digest reference",
                shown(text)
            )));
        }
        Reference::parse_why(text)
            .map(Name::Full)
            .map_err(|why| Error::Usage(format!("invalid image name {}: {why}", shown(text))))
    }

    /// As messages and reports show it: the whole reference, or the ref name.
    pub(crate) fn shown(&self) -> String {
        match self {
            Name::Full(r) => r.to_string(),
            Name::Bare(n) => shown(n),
        }
    }
}

/// A name to find among those a store holds (`untag`): the text as given, and its
/// normalized form when it reads as a reference.
pub(crate) struct Wanted {
    raw: String,
    reference: Option<Reference>,
}

impl Wanted {
    pub(crate) fn new(text: &str) -> Wanted {
        Wanted {
            raw: text.to_string(),
            reference: Reference::parse(text).ok(),
        }
    }

    /// The text as given, escaped.
    pub(crate) fn shown(&self) -> String {
        shown(&self.raw)
    }

    /// Does a name written as `text` (a RepoTag, a ref name) or read as `name` answer
    /// to it? A ref name or RepoTag equal to the text, or the same reference after
    /// normalization (`app` is `docker.io/library/app:latest`).
    pub(crate) fn finds(&self, text: Option<&str>, name: Option<&Name>) -> bool {
        text.is_some_and(|t| t == self.raw)
            || match name {
                Some(Name::Full(r)) => self.reference.as_ref() == Some(r),
                Some(Name::Bare(n)) => *n == self.raw,
                None => false,
            }
    }
}

/// One entry of `index.json`'s `manifests`.
pub(crate) struct IndexEntry {
    /// The entry as an object (`None` when it is not one: kept as it is, never named).
    pub object: Option<Map<String, Value>>,
    /// The digest it points at.
    pub digest: Option<Digest>,
    /// Its `io.containerd.image.name`, when it is a reference.
    pub image_name: Option<Reference>,
    /// Its `org.opencontainers.image.ref.name`, as written, when valid.
    pub ref_name: Option<String>,
}

/// The name an entry with these annotations gives, read as the OCI reader reads it: the
/// full name first, else the ref name (a reference when it looks like one).
pub(crate) fn name_of(image_name: Option<&Reference>, ref_name: Option<&str>) -> Option<Name> {
    match (image_name, ref_name) {
        (Some(r), _) => Some(Name::Full(r.clone())),
        (None, Some(n)) => {
            let looks_full = n.contains(['/', ':', '@']);
            match Reference::parse(n) {
                Ok(r) if looks_full => Some(Name::Full(r)),
                _ => Some(Name::Bare(n.to_string())),
            }
        }
        (None, None) => None,
    }
}

impl IndexEntry {
    fn parse(text: &str) -> IndexEntry {
        let object = serde_json::from_str::<Value>(text)
            .ok()
            .and_then(|v| match v {
                Value::Object(o) => Some(o),
                _ => None,
            });
        let annotation = |key: &str| -> Option<String> {
            object
                .as_ref()?
                .get("annotations")?
                .get(key)?
                .as_str()
                .filter(|s| !s.is_empty())
                .map(String::from)
        };
        let digest = object
            .as_ref()
            .and_then(|o| o.get("digest"))
            .and_then(Value::as_str)
            .and_then(|d| Digest::parse(d).ok());
        IndexEntry {
            digest,
            image_name: annotation(ANNOTATION_IMAGE_NAME).and_then(|n| Reference::parse(&n).ok()),
            ref_name: annotation(ANNOTATION_REF_NAME).filter(|n| valid_ref_name(n)),
            object,
        }
    }

    /// The name it gives.
    #[cfg(test)]
    fn name(&self) -> Option<Name> {
        name_of(self.image_name.as_ref(), self.ref_name.as_deref())
    }

    /// The digest a referrers tag in this entry's ref name names: the fallback tag
    /// `sha256-<hex>`, or cosign's `sha256-<hex>.sig`, `.att`, `.sbom`.
    pub(crate) fn referrers_of(&self) -> Option<Digest> {
        let name = self.ref_name.as_deref()?;
        if let Some((digest, _)) = crate::referrers::cosign_tag(name) {
            return Some(digest);
        }
        let hex = name.strip_prefix("sha256-")?;
        Digest::from_hex(hex)
    }

    /// This entry pointing where it points, with the name annotations `image_name` and
    /// `ref_name` (either may be absent; both absent: no name), its other annotations
    /// and every other field kept (an `annotations` left empty goes).
    pub(crate) fn with_names(
        &self,
        image_name: Option<&Reference>,
        ref_name: Option<&str>,
    ) -> String {
        let mut object = self.object.clone().unwrap_or_default();
        let mut map = match object.remove("annotations") {
            Some(Value::Object(map)) => map,
            _ => Map::new(),
        };
        map.remove(ANNOTATION_IMAGE_NAME);
        map.remove(ANNOTATION_REF_NAME);
        if let Some(r) = image_name {
            map.insert(ANNOTATION_IMAGE_NAME.into(), Value::String(r.to_string()));
        }
        if let Some(n) = ref_name {
            map.insert(ANNOTATION_REF_NAME.into(), Value::String(n.to_string()));
        }
        if !map.is_empty() {
            // Back where it was: the annotations keep their place among the fields.
            let position = self
                .object
                .as_ref()
                .and_then(|o| o.keys().position(|k| k == "annotations"))
                .unwrap_or(object.len());
            let position = position.min(object.len());
            object.shift_insert(position, "annotations".into(), Value::Object(map));
        }
        serde_json::to_string(&Value::Object(object)).expect("JSON serializes")
    }
}

/// `index.json`, its entries read, each kept byte for byte unless changed.
pub(crate) struct IndexDoc {
    pub doc: ListDoc,
    pub entries: Vec<IndexEntry>,
}

impl IndexDoc {
    pub(crate) fn parse(bytes: &[u8]) -> Result<IndexDoc> {
        let doc = ListDoc::in_object(bytes, "manifests", "index.json")?;
        let entries = (0..doc.len())
            .map(|i| IndexEntry::parse(doc.element(i)))
            .collect();
        Ok(IndexDoc { doc, entries })
    }
}

/// One entry of a docker-save `manifest.json`.
pub(crate) struct SaveEntry {
    /// The entry as an object (`None` when it is not one).
    pub object: Option<Map<String, Value>>,
    /// Its RepoTags, as written, each with the reference it reads as.
    pub tags: Vec<(String, Option<Reference>)>,
    /// Its `Config` path.
    pub config: Option<String>,
    /// Its `Layers` paths.
    pub layers: Vec<String>,
}

impl SaveEntry {
    fn parse(text: &str) -> SaveEntry {
        let object = serde_json::from_str::<Value>(text)
            .ok()
            .and_then(|v| match v {
                Value::Object(o) => Some(o),
                _ => None,
            });
        let strings = |key: &str| -> Vec<String> {
            object
                .as_ref()
                .and_then(|o| o.get(key))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|t| t.as_str().map(String::from))
                .collect()
        };
        let tags = strings("RepoTags")
            .into_iter()
            .map(|t| {
                let r = Reference::parse(&t).ok();
                (t, r)
            })
            .collect();
        SaveEntry {
            config: object
                .as_ref()
                .and_then(|o| o.get("Config"))
                .and_then(Value::as_str)
                .map(String::from),
            layers: strings("Layers"),
            tags,
            object,
        }
    }

    /// This entry with the RepoTags `tags` (written as given; none: `null`, as
    /// `docker save` writes an image without a name), every other field kept.
    pub(crate) fn with_tags(&self, tags: &[String]) -> String {
        let mut object = self.object.clone().unwrap_or_default();
        let value = if tags.is_empty() {
            Value::Null
        } else {
            Value::Array(tags.iter().cloned().map(Value::String).collect())
        };
        match object.get_mut("RepoTags") {
            Some(slot) => *slot = value,
            None => {
                object.insert("RepoTags".into(), value);
            }
        }
        serde_json::to_string(&Value::Object(object)).expect("JSON serializes")
    }
}

/// A docker-save `manifest.json`, its entries read.
pub(crate) struct SaveDoc {
    pub doc: ListDoc,
    pub entries: Vec<SaveEntry>,
}

impl SaveDoc {
    pub(crate) fn parse(bytes: &[u8]) -> Result<SaveDoc> {
        let doc = ListDoc::whole(bytes, "manifest.json")?;
        let entries = (0..doc.len())
            .map(|i| SaveEntry::parse(doc.element(i)))
            .collect();
        Ok(SaveDoc { doc, entries })
    }
}

/// The legacy `repositories` file: familiar repository -> tag -> top layer id. Read
/// as an object of objects; anything else is left as it is.
pub(crate) struct Repositories {
    map: Map<String, Value>,
    /// Whether it ended with a newline (as `docker save` writes it).
    newline: bool,
    changed: bool,
}

impl Repositories {
    pub(crate) fn parse(bytes: &[u8]) -> Option<Repositories> {
        let map = match serde_json::from_slice::<Value>(bytes).ok()? {
            Value::Object(map) => map,
            _ => return None,
        };
        Some(Repositories {
            map,
            newline: bytes.ends_with(b"\n"),
            changed: false,
        })
    }

    /// The top layer id `name` points at, when the file lists it.
    pub(crate) fn top_of(&self, name: &Reference) -> Option<String> {
        let repo = self.map.get(&name.familiar_repository())?;
        repo.get(name.tag())?.as_str().map(String::from)
    }

    /// Point `name` at `top`.
    pub(crate) fn set(&mut self, name: &Reference, top: &str) {
        let repo = self
            .map
            .entry(name.familiar_repository())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(tags) = repo {
            tags.insert(name.tag().to_string(), Value::String(top.to_string()));
            self.changed = true;
        }
    }

    /// Forget `name`; a repository left with no tag goes too.
    pub(crate) fn remove(&mut self, name: &Reference) {
        let key = name.familiar_repository();
        let Some(Value::Object(tags)) = self.map.get_mut(&key) else {
            return;
        };
        if tags.remove(name.tag()).is_some() {
            self.changed = true;
        }
        if tags.is_empty() {
            self.map.remove(&key);
        }
    }

    /// The file's new bytes, when anything changed.
    pub(crate) fn bytes(&self) -> Option<Vec<u8>> {
        if !self.changed {
            return None;
        }
        let mut out = serde_json::to_vec(&Value::Object(self.map.clone())).expect("serializes");
        if self.newline {
            out.push(b'\n');
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_named_as_the_reader_names_them() {
        let entry = |text: &str| IndexEntry::parse(text);
        let full = entry(
            r#"{"digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","annotations":{"io.containerd.image.name":"docker.io/library/app:1","org.opencontainers.image.ref.name":"1"}}"#,
        );
        assert_eq!(
            full.name(),
            Some(Name::Full(Reference::parse("app:1").unwrap()))
        );
        let bare = entry(r#"{"annotations":{"org.opencontainers.image.ref.name":"latest"}}"#);
        assert_eq!(bare.name(), Some(Name::Bare("latest".into())));
        let looks_full =
            entry(r#"{"annotations":{"org.opencontainers.image.ref.name":"quay.io/a/b:2"}}"#);
        assert_eq!(
            looks_full.name(),
            Some(Name::Full(Reference::parse("quay.io/a/b:2").unwrap()))
        );
        assert_eq!(entry("[1]").name(), None);
        let wanted = Wanted::new("app:1");
        assert!(wanted.finds(None, full.name().as_ref()));
        assert!(Wanted::new("1").finds(full.ref_name.as_deref(), full.name().as_ref()));
        assert!(!Wanted::new("2").finds(full.ref_name.as_deref(), full.name().as_ref()));
    }

    #[test]
    fn a_renamed_entry_keeps_its_other_fields() {
        let e = IndexEntry::parse(
            r#"{"mediaType":"m","digest":"d","size":1,"annotations":{"org.opencontainers.image.ref.name":"old","x":"y"},"platform":{"os":"linux"}}"#,
        );
        let name = Reference::parse("app:2").unwrap();
        assert_eq!(
            e.with_names(Some(&name), Some("2")),
            r#"{"mediaType":"m","digest":"d","size":1,"annotations":{"x":"y","io.containerd.image.name":"docker.io/library/app:2","org.opencontainers.image.ref.name":"2"},"platform":{"os":"linux"}}"#
        );
        assert_eq!(
            e.with_names(None, None),
            r#"{"mediaType":"m","digest":"d","size":1,"annotations":{"x":"y"},"platform":{"os":"linux"}}"#
        );
        let plain = IndexEntry::parse(
            r#"{"digest":"d","annotations":{"org.opencontainers.image.ref.name":"a"}}"#,
        );
        assert_eq!(plain.with_names(None, None), r#"{"digest":"d"}"#);
        let added = IndexEntry::parse(r#"{"digest":"d","size":1}"#);
        assert_eq!(
            added.with_names(None, Some("b")),
            r#"{"digest":"d","size":1,"annotations":{"org.opencontainers.image.ref.name":"b"}}"#
        );
    }

    #[test]
    fn the_repositories_file_follows_the_names() {
        let mut repos = Repositories::parse(b"{\"app\":{\"1\":\"aa\"}}\n").unwrap();
        let one = Reference::parse("app:1").unwrap();
        let two = Reference::parse("quay.io/x/app:2").unwrap();
        assert_eq!(repos.top_of(&one).as_deref(), Some("aa"));
        repos.set(&two, "bb");
        repos.remove(&one);
        assert_eq!(
            repos.bytes().unwrap(),
            b"{\"quay.io/x/app\":{\"2\":\"bb\"}}\n"
        );
    }
}
