//! `inspect` (metadata only) and `verify` (every byte).

use std::collections::BTreeMap;
use std::io;

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::json;
use serde_json::ser::{Formatter, PrettyFormatter};

use crate::error::Result;
use crate::history::ConfigSummary;
use crate::layer::verify_layer;
use crate::model::digest::Digest;
use crate::model::image::{Image, Layer};
use crate::progress::Progress;
use crate::referrers::Referrer;
use crate::text::escape_json_text;
use crate::transport::Source;

/// The `inspect --json` document for the images of `source` at `selected` (positions
/// in `source.images`, which are the `index` each image is shown with). It serializes
/// straight from the images, so writing it costs no memory beyond theirs.
///
/// ```
/// use dockhand::{inspect_json, open_source, write_json, Location, ReadOptions};
///
/// let input = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/docker-save-basic/input.tar");
/// let source = open_source(&Location::parse(input)?, &ReadOptions::default())?;
/// let mut out = Vec::new();
/// write_json(&inspect_json(&source, &[0]), &mut out)?;
/// let doc: serde_json::Value = serde_json::from_slice(&out).unwrap();
/// assert_eq!(doc["format"], "docker-archive");
/// assert_eq!(doc["images"][0]["tags"][0], "docker.io/dockhand-fixture/basic:1.0");
/// assert_eq!(doc["images"][0]["layers"].as_array().unwrap().len(), 3);
/// # Ok::<(), dockhand::Error>(())
/// ```
pub fn inspect_json<'a>(source: &'a Source, selected: &'a [usize]) -> InspectDoc<'a> {
    InspectDoc {
        source,
        selected,
        referrers: None,
    }
}

/// What refers to each image at `selected` (by its manifest digest) and, with
/// `with_indexes`, to each index they were read from (by its digest), as
/// [`Source::referrers`] finds them: the map [`InspectDoc::with_referrers`] shows.
/// Images without a manifest (a docker-archive's) have no entry.
///
/// ```
/// use dockhand::{image_referrers, open_source, Location, ReadOptions};
///
/// # let input = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/skopeo-oci/input");
/// let source = open_source(&Location::parse(input)?, &ReadOptions::default())?;
/// let found = image_referrers(&source, &[0], true)?;
/// let manifest = &source.images[0].manifest.as_ref().unwrap().digest;
/// assert!(found[manifest].is_empty());
/// # Ok::<(), dockhand::Error>(())
/// ```
pub fn image_referrers(
    source: &Source,
    selected: &[usize],
    with_indexes: bool,
) -> Result<BTreeMap<Digest, Vec<Referrer>>> {
    let mut found = BTreeMap::new();
    for &i in selected {
        let image = &source.images[i];
        let index = image.index.as_ref().filter(|_| with_indexes);
        let digests = index
            .map(|index| &index.descriptor.digest)
            .into_iter()
            .chain(image.manifest.as_ref().map(|m| &m.digest));
        for digest in digests {
            if !found.contains_key(digest) {
                found.insert(digest.clone(), source.referrers(digest)?);
            }
        }
    }
    Ok(found)
}

/// A referrer as `inspect --json` shows it: `kind`, `artifact_type`, `digest`,
/// `size`, `media_type`, `annotations` and its own `referrers`.
pub fn referrer_json(referrer: &Referrer) -> serde_json::Value {
    json!({
        "kind": referrer.kind.name(),
        "artifact_type": referrer.artifact_type,
        "digest": referrer.descriptor.digest.to_string(),
        "size": referrer.descriptor.size,
        "media_type": referrer.descriptor.media_type,
        "annotations": referrer.annotations,
        "referrers": referrer.referrers.iter().map(referrer_json).collect::<Vec<_>>(),
    })
}

/// Write `doc` (an [`InspectDoc`], a list of [`crate::ImageHistory`], any document) as
/// indented JSON, with the characters a terminal would act on escaped (see
/// [`crate::text::escape_json_text`]); the JSON value is unchanged.
///
/// ```
/// let mut out = Vec::new();
/// dockhand::write_json(&serde_json::json!({ "name": "a\u{1b}[31m" }), &mut out)?;
/// // The escape character is written as \u001b: the JSON value is the same.
/// assert_eq!(String::from_utf8(out).unwrap(), "{\n  \"name\": \"a\\u001b[31m\"\n}");
/// # Ok::<(), dockhand::Error>(())
/// ```
pub fn write_json<T: Serialize + ?Sized>(doc: &T, out: impl io::Write) -> Result<()> {
    let mut serializer = serde_json::Serializer::with_formatter(out, TerminalSafe::default());
    doc.serialize(&mut serializer)
        .map_err(|e| crate::error::Error::io("writing the JSON document", e.into()))
}

/// See [`inspect_json`].
///
/// ```
/// use dockhand::{inspect_json, open_source, Location, ReadOptions};
///
/// # let input = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/docker-save-basic/input.tar");
/// let source = open_source(&Location::parse(input)?, &ReadOptions::default())?;
/// let doc = serde_json::to_value(inspect_json(&source, &[0])).unwrap();
/// assert_eq!(doc["images"][0]["platform"]["architecture"], "amd64");
/// assert_eq!(doc["images"][0]["config_summary"]["cmd"][0], "/bin/hello.sh");
/// # Ok::<(), dockhand::Error>(())
/// ```
pub struct InspectDoc<'a> {
    source: &'a Source,
    selected: &'a [usize],
    referrers: Option<&'a BTreeMap<Digest, Vec<Referrer>>>,
}

impl<'a> InspectDoc<'a> {
    /// The document, with what refers to its images ([`image_referrers`]): each image
    /// gains `referrers` (those of its manifest) and the document `index_referrers`
    /// (`digest` and `referrers` of each index in `found`).
    pub fn with_referrers(mut self, found: &'a BTreeMap<Digest, Vec<Referrer>>) -> Self {
        self.referrers = Some(found);
        self
    }
}

impl Serialize for InspectDoc<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("format", self.source.format.name())?;
        // How the source's images relate, whichever are shown.
        let family = crate::store::image_family(&self.source.images);
        let images: Vec<ImageDoc> = self
            .selected
            .iter()
            .map(|&index| ImageDoc {
                index,
                image: &self.source.images[index],
                referrers: self.referrers,
                images: &self.source.images,
                family: &family,
            })
            .collect();
        map.serialize_entry("images", &images)?;
        map.serialize_entry("by_id", &by_id(self.source, self.selected))?;
        if let Some(found) = self.referrers {
            let manifests: std::collections::HashSet<&Digest> = self
                .selected
                .iter()
                .filter_map(|&i| self.source.images[i].manifest.as_ref().map(|m| &m.digest))
                .collect();
            let indexes: Vec<serde_json::Value> = found
                .iter()
                .filter(|(digest, _)| !manifests.contains(digest))
                .map(|(digest, list)| {
                    json!({
                        "digest": digest.to_string(),
                        "referrers": list.iter().map(referrer_json).collect::<Vec<_>>(),
                    })
                })
                .collect();
            map.serialize_entry("index_referrers", &indexes)?;
        }
        map.end()
    }
}

/// Every image ID of the images at `selected`, with every name that points at it
/// (tags, full references), sorted and without duplicates, as Docker's tag store keeps
/// them: several images of a source may share one ID.
///
/// ```
/// use dockhand::{by_id, open_source, Location, ReadOptions};
///
/// let input = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/docker-save-basic/input.tar");
/// let source = open_source(&Location::parse(input)?, &ReadOptions::default())?;
/// let ids = by_id(&source, &[0]);
/// let names = &ids["sha256:6f2d02a983f5599378f56176fd32b3365f1b90831cf663fdd2ed2c0e03ee4503"];
/// assert_eq!(names[0], "docker.io/dockhand-fixture/basic:1.0");
/// assert_eq!(names[1], "docker.io/dockhand-fixture/basic:latest");
/// # Ok::<(), dockhand::Error>(())
/// ```
pub fn by_id(
    source: &Source,
    selected: &[usize],
) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut map: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for &i in selected {
        let image = &source.images[i];
        let names = map.entry(image.config.digest.to_string()).or_default();
        names.extend(image.tags.iter().map(|t| t.to_string()));
    }
    for names in map.values_mut() {
        names.sort();
        names.dedup();
    }
    map
}

/// The chain IDs of `image`'s layers, base first, as Docker's layer store computes
/// them: `ChainID(0) = DiffID(0)`, `ChainID(n) = sha256(ChainID(n-1) + " " +
/// DiffID(n))` over the full `sha256:<hex>` strings. `None` from the first layer
/// without a diff_id on (an artifact's).
///
/// ```
/// use dockhand::{chain_ids, open_source, Location, ReadOptions};
///
/// let input = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/docker-save-basic/input.tar");
/// let source = open_source(&Location::parse(input)?, &ReadOptions::default())?;
/// let image = &source.images[0];
/// let chain = chain_ids(image);
/// assert_eq!(chain.len(), 3);
/// // The base layer's chain ID is its diff_id; the others hash the chain so far.
/// assert_eq!(chain[0], image.layers[0].diff_id);
/// assert_eq!(chain[2].as_ref().unwrap().short(), "000314485e63");
/// # Ok::<(), dockhand::Error>(())
/// ```
pub fn chain_ids(image: &Image) -> Vec<Option<Digest>> {
    let mut chain: Option<Digest> = None;
    image
        .layers
        .iter()
        .enumerate()
        .map(|(n, layer)| {
            chain = match (n, &chain, &layer.diff_id) {
                (0, _, Some(diff_id)) => Some(diff_id.clone()),
                (_, Some(previous), Some(diff_id)) => {
                    Some(Digest::of(format!("{previous} {diff_id}").as_bytes()))
                }
                _ => None,
            };
            chain.clone()
        })
        .collect()
}

struct ImageDoc<'a> {
    index: usize,
    image: &'a Image,
    referrers: Option<&'a BTreeMap<Digest, Vec<Referrer>>>,
    images: &'a [Image],
    family: &'a crate::store::Family,
}

impl Serialize for ImageDoc<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let image = self.image;
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("index", &self.index)?;
        if let (Some(found), Some(manifest)) = (self.referrers, &image.manifest) {
            let list = found
                .get(&manifest.digest)
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            map.serialize_entry(
                "referrers",
                &list.iter().map(referrer_json).collect::<Vec<_>>(),
            )?;
        }
        // Sorted, so the document does not depend on how the source ordered them.
        map.serialize_entry("tags", &sorted_tags(image))?;
        map.serialize_entry(
            "config",
            &json!({
                "digest": image.config.digest.to_string(),
                "size": image.config.size,
                "media_type": image.config.media_type,
            }),
        )?;
        map.serialize_entry(
            "manifest",
            &image.manifest.as_ref().map(|m| {
                json!({
                    "digest": m.digest.to_string(),
                    "media_type": m.media_type,
                })
            }),
        )?;
        map.serialize_entry(
            "platform",
            &json!({
                "os": image.platform.os,
                "architecture": image.platform.architecture,
                "variant": image.platform.variant,
            }),
        )?;
        let layers: Vec<LayerDoc> = image
            .layers
            .iter()
            .zip(chain_ids(image))
            .map(|(layer, chain_id)| LayerDoc(layer, chain_id))
            .collect();
        map.serialize_entry("layers", &layers)?;
        // Added after the fields above, which keep their schema.
        let summary = ConfigSummary::of(image);
        map.serialize_entry("created", &summary.created)?;
        map.serialize_entry("config_summary", &summary)?;
        // The image whose layers start this one's (the nearest), those this one's
        // start, by image ID; a head has no children.
        let id = |i: usize| self.images[i].config.digest.to_string();
        map.serialize_entry("parent", &self.family.parent[self.index].map(id))?;
        let mut children: Vec<String> = Vec::new();
        for &child in &self.family.children[self.index] {
            let child = id(child);
            if !children.contains(&child) {
                children.push(child);
            }
        }
        map.serialize_entry("children", &children)?;
        map.serialize_entry("head", &self.family.is_head(self.index))?;
        map.end()
    }
}

struct LayerDoc<'a>(&'a Layer, Option<Digest>);

impl Serialize for LayerDoc<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let l = self.0;
        let mut map = s.serialize_map(Some(5))?;
        map.serialize_entry("digest", &l.digest)?;
        map.serialize_entry("diff_id", &l.diff_id)?;
        map.serialize_entry("size", &l.size)?;
        map.serialize_entry("media_type", &l.media_type)?;
        map.serialize_entry("compression", l.compression.name())?;
        map.serialize_entry("chain_id", &self.1)?;
        map.end()
    }
}

/// serde_json's pretty printer, escaping inside strings what a terminal would act on.
#[derive(Default)]
struct TerminalSafe(PrettyFormatter<'static>);

impl Formatter for TerminalSafe {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        writer.write_all(escape_json_text(fragment).as_bytes())
    }
    fn begin_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_array(w)
    }
    fn end_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array(w)
    }
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.0.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array_value(w)
    }
    fn begin_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object(w)
    }
    fn end_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object(w)
    }
    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.0.begin_object_key(w, first)
    }
    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_value(w)
    }
}

fn sorted_tags(image: &Image) -> Vec<String> {
    let mut tags: Vec<String> = image.tags.iter().map(|t| t.to_string()).collect();
    tags.sort();
    tags
}

/// Every platform the multi-platform indexes of `source` list, as JSON:
/// `[{"index", "platform": {"os", "architecture", "variant"}, "manifest", "present"}]`.
///
/// ```
/// use dockhand::{open_source, platforms_json, Location, ReadOptions};
///
/// let input = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/docker-save-basic/input.tar");
/// let source = open_source(&Location::parse(input)?, &ReadOptions::default())?;
/// // A docker-save archive holds no multi-platform index.
/// assert_eq!(platforms_json(&source), serde_json::json!([]));
///
/// // An OCI layout whose index lists three platforms, two of them present (built as
/// // the example of `ListedPlatform` builds it).
/// # let dir = tempfile::tempdir().unwrap();
/// # let blobs = dir.path().join("blobs/sha256");
/// # std::fs::create_dir_all(&blobs).unwrap();
/// # let blob = |media_type: &str, bytes: &[u8], extra: &str, held: bool| {
/// #     let digest = dockhand::Digest::of(bytes);
/// #     if held {
/// #         std::fs::write(blobs.join(digest.hex()), bytes).unwrap();
/// #     }
/// #     let size = bytes.len();
/// #     format!(r#"{{"mediaType":"{media_type}","digest":"{digest}","size":{size}{extra}}}"#)
/// # };
/// # let tar = [0u8; 1024];
/// # let layer = blob("application/vnd.oci.image.layer.v1.tar", &tar, "", true);
/// # let diff_id = dockhand::Digest::of(&tar);
/// # let manifest = |platform: &str, held: bool| {
/// #     let rootfs = format!(r#""rootfs":{{"type":"layers","diff_ids":["{diff_id}"]}}"#);
/// #     let config = format!("{{{platform},{rootfs}}}");
/// #     let config = blob("application/vnd.oci.image.config.v1+json", config.as_bytes(), "", true);
/// #     let manifest = format!(r#"{{"schemaVersion":2,"config":{config},"layers":[{layer}]}}"#);
/// #     let listed = format!(r#","platform":{{{platform}}}"#);
/// #     blob("application/vnd.oci.image.manifest.v1+json", manifest.as_bytes(), &listed, held)
/// # };
/// # let children = [
/// #     manifest(r#""os":"linux","architecture":"amd64""#, true),
/// #     manifest(r#""os":"linux","architecture":"arm64","variant":"v8""#, true),
/// #     manifest(r#""os":"linux","architecture":"arm","variant":"v7""#, false),
/// # ];
/// # let index = format!(r#"{{"schemaVersion":2,"manifests":[{}]}}"#, children.join(","));
/// # let index = blob("application/vnd.oci.image.index.v1+json", index.as_bytes(), "", true);
/// # let top = format!(r#"{{"schemaVersion":2,"manifests":[{index}]}}"#);
/// # std::fs::write(dir.path().join("index.json"), top).unwrap();
/// # let version = r#"{"imageLayoutVersion":"1.0.0"}"#;
/// # std::fs::write(dir.path().join("oci-layout"), version).unwrap();
/// # let layout = format!("oci:{}", dir.path().display());
/// let source = open_source(&Location::parse(&layout)?, &ReadOptions::default())?;
/// let json = platforms_json(&source);
/// let armv7 = &json[2];
/// assert_eq!(armv7["platform"], serde_json::json!({
///     "os": "linux", "architecture": "arm", "variant": "v7"
/// }));
/// assert_eq!(armv7["present"], false);
/// assert_eq!(armv7["manifest"], source.platforms[2].manifest.to_string());
/// assert_eq!(json[0]["platform"]["variant"], serde_json::Value::Null); // amd64 has none
/// assert!(json.as_array().unwrap().iter().all(|p| p["index"] == json[0]["index"]));
/// # Ok::<(), dockhand::Error>(())
/// ```
pub fn platforms_json(source: &Source) -> serde_json::Value {
    serde_json::Value::Array(
        source
            .platforms
            .iter()
            .map(|p| {
                json!({
                    "index": p.index.to_string(),
                    "platform": {
                        "os": p.platform.os,
                        "architecture": p.platform.architecture,
                        "variant": p.platform.variant,
                    },
                    "manifest": p.manifest.to_string(),
                    "present": p.present,
                })
            })
            .collect(),
    )
}

/// What `verify` checked.
///
/// ```
/// use dockhand::{open_source, verify, Location, NoProgress, ReadOptions};
///
/// let input = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/docker-save-multi/input.tar");
/// let source = open_source(&Location::parse(input)?, &ReadOptions::default())?;
/// // Three images share their base layers: each distinct layer is read once.
/// let report = verify(&source.images, &NoProgress)?;
/// assert_eq!((report.images, report.layers), (3, 5));
/// # Ok::<(), dockhand::Error>(())
/// ```
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Images checked.
    pub images: usize,
    /// Distinct layers read.
    pub layers: usize,
    /// Bytes of layer data read.
    pub bytes: u64,
}

/// Read every layer of `images`, checking sizes, digests and diff_ids. Configs and
/// manifests were verified when the source was read. Layers are checked on as many
/// threads as the machine has cores; the first failing layer (in image order) is
/// reported.
///
/// ```
/// use dockhand::{open_source, verify, Location, NoProgress, ReadOptions};
///
/// let input = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/docker-save-basic/input.tar");
/// let source = open_source(&Location::parse(input)?, &ReadOptions::default())?;
/// let report = verify(&source.images, &NoProgress)?;
/// assert_eq!((report.images, report.layers), (1, 3));
///
/// // A layer whose content does not match the config's diff_id fails.
/// let broken = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/broken-diffid/input.tar");
/// let source = open_source(&Location::parse(broken)?, &ReadOptions::default())?;
/// assert!(verify(&source.images, &NoProgress).is_err());
/// # Ok::<(), dockhand::Error>(())
/// ```
pub fn verify(images: &[Image], progress: &dyn Progress) -> Result<VerifyReport> {
    let mut seen = std::collections::HashSet::new();
    let mut work = Vec::new();
    for image in images {
        for layer in &image.layers {
            // A layer whose source records no digest is known by its file.
            let file = layer.digest.is_none().then(|| layer.path.clone());
            if seen.insert((layer.digest.clone(), layer.diff_id.clone(), file)) {
                work.push((image, layer));
            }
        }
    }
    progress.planned(work.len(), work.iter().map(|(_, l)| l.size).sum());
    let results = crate::pool::run_all(&work, crate::pool::cores(), |(image, layer)| {
        verify_layer(image, layer, progress)
    });
    // The first failure in image order (every layer before it was checked).
    for result in results.into_iter().flatten() {
        result?;
    }
    Ok(VerifyReport {
        images: images.len(),
        layers: work.len(),
        bytes: work.iter().map(|(_, l)| l.size).sum(),
    })
}
