//! Making and changing images without a daemon: a new image from a root filesystem
//! (`import`), new layers on top of an image (`append`), config edits (`mutate`). An
//! [`ImageEdit`] turns an [`Image`] into a new one (its config edited as a JSON value
//! whose every other field is kept, its layers extended with [`NewLayer`]s, its
//! manifest left for the destination to build), which the conversion pipeline
//! writes to any destination ([`crate::convert_editing`]).

mod change;
mod layer;
mod shell;

pub use change::{ConfigChange, Instruction, CHANGE_INSTRUCTIONS};
pub use layer::{LayerOptions, NewLayer};

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use crate::convert::{convert_from, ConvertOptions, ConvertReport, EditContext, Origin};
use crate::error::{Error, Result, Setting};
use crate::model::blob::Blob;
use crate::model::digest::Digest;
use crate::model::image::{Descriptor, Image, IndexOf, Layer, Platform};
use crate::model::media;
use crate::progress::Progress;
use crate::transport::{Format, Location, Source};

/// The history entry an edit adds to the config: who made the change, how and why.
///
/// ```
/// use dockhand::HistoryNote;
///
/// let note = HistoryNote { comment: Some("add the CA bundle".into()), ..Default::default() };
/// assert!(note.created_by.is_none() && note.author.is_none());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HistoryNote {
    /// The entry's `created_by` (the command that made the layer).
    pub created_by: Option<String>,
    /// The entry's `author`, also the config's `author`.
    pub author: Option<String>,
    /// The entry's `comment`, also the config's `comment` (what `docker inspect`
    /// shows as `Comment`).
    pub comment: Option<String>,
}

/// What becomes of an image: changes to its config, new layers on top of its own (or
/// instead of them), a history entry, annotations for its manifest.
///
/// [`ImageEdit::apply`] makes the new image: its config is the base's parsed as JSON
/// (keys in their order), with only what the edit says changed (`config`'s fields,
/// `rootfs.diff_ids` extended, `history` extended, `created`, and `comment` and
/// `author` when the note gives them); every other field, dockhand's or not, is kept
/// as it is. The base's layers keep their blobs, so that a destination holding them
/// skips them. The new image has no manifest: the destination builds one in its own
/// format.
///
/// Fields may be added in later versions: build one with `..Default::default()` so
/// that code keeps compiling.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use dockhand::{open_source, ConfigChange, HistoryNote, ImageEdit, Location, ReadOptions};
///
/// # let input = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/docker-save-basic/input.tar");
/// let source = open_source(&Location::parse(input)?, &ReadOptions::default())?;
/// let edit = ImageEdit {
///     changes: ConfigChange::instructions("ENV MODE=production")?,
///     history: HistoryNote { created_by: Some("ENV MODE=production".into()), ..Default::default() },
///     created: Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
///     ..Default::default()
/// };
/// let image = edit.apply(&source.images[0])?;
/// assert_ne!(image.config.digest, source.images[0].config.digest); // a new image ID
/// let config: serde_json::Value = serde_json::from_slice(&image.config_bytes).unwrap();
/// assert_eq!(config["created"], "2023-11-14T22:13:20Z");
/// let history = config["history"].as_array().unwrap();
/// assert_eq!(history.last().unwrap()["empty_layer"], true); // no layer added
/// // The same edit at the same time gives the same image.
/// assert_eq!(edit.apply(&source.images[0])?.config.digest, image.config.digest);
/// # Ok::<(), dockhand::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct ImageEdit {
    /// Changes to the config's `config` object, in order.
    pub changes: Vec<ConfigChange>,
    /// New layers, base first, put on top of the image's (last is top).
    pub layers: Vec<NewLayer>,
    /// The new layers replace the image's (a flattened image): its `rootfs.diff_ids`
    /// and `history` start anew with the edit's.
    pub replace_layers: bool,
    /// The history entry added (one per new layer, or one marked `empty_layer` when
    /// the edit adds none), when the config changes.
    pub history: HistoryNote,
    /// The config's `created` and the history entry's (`None`: now). A fixed time
    /// (`SOURCE_DATE_EPOCH`) makes the same edit give the same image ID.
    pub created: Option<SystemTime>,
    /// Annotations for the image's manifest (OCI outputs), over the ones the base's
    /// own manifest has.
    pub annotations: BTreeMap<String, String>,
    /// Annotations for the index an image taken with every platform is written in
    /// (rebuilt over the edited images), over the ones the source's index has.
    pub index_annotations: BTreeMap<String, String>,
}

impl ImageEdit {
    /// Whether the edit changes the config (so the image ID): changes, layers, or
    /// layers replaced.
    pub fn changes_config(&self) -> bool {
        !self.changes.is_empty() || !self.layers.is_empty() || self.replace_layers
    }

    /// Whether the edit changes nothing at all.
    pub fn is_empty(&self) -> bool {
        !self.changes_config() && self.annotations.is_empty() && self.index_annotations.is_empty()
    }

    /// The image `base` becomes: see [`ImageEdit`]. It has no names (it is another
    /// image): a conversion names it with its `tags` or the destination's reference.
    /// An artifact (not a container image) is refused.
    pub fn apply(&self, base: &Image) -> Result<Image> {
        if base.artifact {
            return Err(Error::Unsupported(format!(
                "{} is an artifact, not a container image: it has no image config to edit",
                crate::text::shown(&base.display_name())
            )));
        }
        let mut image = base.clone();
        image.tags.clear();
        image.ref_names.clear();
        image.oci_ref_names.clear();
        image.manifest = None;
        image.manifest_bytes = None;
        let mut annotations = base
            .manifest_bytes
            .as_deref()
            .map(|bytes| annotations_of(bytes))
            .unwrap_or_default();
        annotations.extend(self.annotations.clone());
        image.annotations = annotations;
        if let Some(index) = &base.index {
            let mut annotations = annotations_of(&index.bytes);
            annotations.extend(index.annotations.clone());
            annotations.extend(self.index_annotations.clone());
            image.index = Some(Arc::new(IndexOf {
                annotations,
                ..(**index).clone()
            }));
        }
        if !self.changes_config() {
            return Ok(image);
        }
        let config_name = crate::text::shown(&base.config_path);
        let mut doc: Map<String, Value> =
            crate::model::image::parse_json(&base.config_bytes, &config_name)?;
        change::apply_changes(&mut doc, &self.changes)?;
        let created = Value::String(rfc3339(self.created.unwrap_or_else(SystemTime::now)));
        // The base's layers that have no history entry get an empty one each, so that
        // the history still names each layer in turn.
        let history = match doc.get("history") {
            Some(Value::Array(entries)) if !self.replace_layers => entries.clone(),
            _ => Vec::new(),
        };
        let mut history = history;
        if !self.replace_layers {
            let with_layers = history
                .iter()
                .filter(|h| h.get("empty_layer").and_then(Value::as_bool) != Some(true))
                .count();
            for _ in with_layers..base.layers.len() {
                history.push(Value::Object(Map::new()));
            }
        }
        let entry = |empty: bool| {
            let mut entry = Map::new();
            entry.insert("created".into(), created.clone());
            let note = &self.history;
            for (key, value) in [
                ("created_by", &note.created_by),
                ("author", &note.author),
                ("comment", &note.comment),
            ] {
                if let Some(value) = value {
                    entry.insert(key.into(), Value::String(value.clone()));
                }
            }
            if empty {
                entry.insert("empty_layer".into(), Value::Bool(true));
            }
            Value::Object(entry)
        };
        if self.layers.is_empty() {
            history.push(entry(true));
        } else {
            history.extend(self.layers.iter().map(|_| entry(false)));
        }
        let mut diff_ids: Vec<Value> = match doc.get("rootfs").and_then(|r| r.get("diff_ids")) {
            Some(Value::Array(ids)) if !self.replace_layers => ids.clone(),
            _ => Vec::new(),
        };
        diff_ids.extend(
            self.layers
                .iter()
                .map(|l| Value::String(l.diff_id().to_string())),
        );
        let rootfs = doc
            .entry("rootfs")
            .or_insert_with(|| Value::Object(Map::new()));
        if !rootfs.is_object() {
            *rootfs = Value::Object(Map::new());
        }
        let rootfs = rootfs.as_object_mut().expect("made an object above");
        rootfs.insert("type".into(), Value::String("layers".into()));
        rootfs.insert("diff_ids".into(), Value::Array(diff_ids));
        doc.insert("created".into(), created);
        if let Some(author) = &self.history.author {
            doc.insert("author".into(), Value::String(author.clone()));
        }
        if let Some(comment) = &self.history.comment {
            doc.insert("comment".into(), Value::String(comment.clone()));
        }
        doc.insert("history".into(), Value::Array(history));
        let bytes = serde_json::to_vec(&doc).expect("serializing a JSON value cannot fail");
        image.config = Descriptor {
            media_type: base.config.media_type.clone(),
            digest: Digest::of(&bytes),
            size: bytes.len() as u64,
        };
        image.config_path = format!("the config made from {}", base.config_path);
        image.config_bytes = Arc::new(bytes);
        let family = if base.config.media_type == media::DOCKER_CONFIG {
            media::Family::Docker
        } else {
            media::Family::Oci
        };
        if self.replace_layers {
            image.layers.clear();
        }
        image.layers.extend(self.layers.iter().map(|layer| {
            Layer {
                digest: Some(layer.diff_id().clone()),
                size: layer.size(),
                media_type: media::Compression::None
                    .layer_media_type(family)
                    .expect("every family names uncompressed layers")
                    .to_string(),
                compression: media::Compression::None,
                diff_id: Some(layer.diff_id().clone()),
                blob: Some(layer.blob() as Arc<dyn Blob>),
                path: layer.name().to_string(),
            }
        }));
        Ok(image)
    }
}

/// The annotations of a manifest or index (none when it has none, or is not JSON).
fn annotations_of(bytes: &[u8]) -> BTreeMap<String, String> {
    #[derive(serde::Deserialize)]
    struct Annotated {
        #[serde(default)]
        annotations: BTreeMap<String, String>,
    }
    serde_json::from_slice::<Annotated>(bytes)
        .map(|a| a.annotations)
        .unwrap_or_default()
}

/// `time` as RFC 3339 in UTC, as Go writes it (`2006-01-02T15:04:05.999999999Z`:
/// the fraction of a second without trailing zeros, none when whole); a time before
/// the epoch is the epoch.
pub(crate) fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs() as i64;
    let (days, of_day) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = crate::text::civil_date(days);
    let mut text = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    );
    let nanos = since.subsec_nanos();
    if nanos != 0 {
        let fraction = format!("{nanos:09}");
        text.push('.');
        text.push_str(fraction.trim_end_matches('0'));
    }
    text.push('Z');
    text
}

/// What [`edit_images`] and [`import_rootfs`] do.
///
/// Fields may be added in later versions: build one with `..Default::default()` so
/// that code keeps compiling.
#[derive(Clone, Debug, Default)]
pub struct EditOptions {
    /// Which images of the source, and how and where they are written (`platform`
    /// is the new image's for an import; `referrers` is refused).
    pub convert: ConvertOptions,
    /// The edit, but for its layers ([`ImageEdit::layers`] is filled from `layers`).
    pub edit: ImageEdit,
    /// New layers, base first: each a tar file (compressed or not), `-` for stdin, or
    /// a directory ([`NewLayer::read`]), read once the destination is ready.
    pub layers: Vec<String>,
    /// For a directory layer: no modification time after this one
    /// ([`LayerOptions::clamp_mtime`]).
    pub clamp_mtime: Option<i64>,
    /// Replace each image's layers with one: its final filesystem, as
    /// [`crate::export_image`] writes it (whiteouts applied, hard links resolved), as
    /// `crane flatten` does: `dockhand flatten`. The history starts anew with one entry
    /// naming the image flattened (unless the note gives its own `created_by`).
    pub flatten: bool,
}

/// Write the images of `src` that `options.convert` selects to `dst`, each edited as
/// `options.edit` says with `options.layers` on top: `dockhand append` and `dockhand
/// mutate`. Any source and destination a conversion takes, with its options; the
/// base's layers a destination holds are not written again (a registry skips or
/// mounts them). An edit that changes nothing is a usage error, and so are
/// annotations for a destination that keeps no manifest of its own (a docker-archive,
/// a daemon) or index annotations where no index is written.
pub fn edit_images(
    src: &Location,
    dst: &Location,
    options: &EditOptions,
    progress: &dyn Progress,
) -> Result<ConvertReport> {
    run(Origin::At(src), dst, options, progress)
}

/// Make a one-layer image of the root filesystem `rootfs` (a tar file, compressed or
/// not, `-` for stdin, or a directory) and write it to `dst`: `dockhand import`, as
/// `docker import` does. Its config holds `os`, `architecture` (and `variant`) of
/// `options.convert.platform` (the host's by default), the changes, `created`, a
/// history entry with the note's comment (`Imported from -` by default, as docker
/// writes), and `rootfs` with the layer's diff_id: the sha256 of the tar as given
/// (decompressed), as docker import computes it.
pub fn import_rootfs(
    rootfs: &str,
    dst: &Location,
    options: &EditOptions,
    progress: &dyn Progress,
) -> Result<ConvertReport> {
    let platform = options
        .convert
        .platform
        .clone()
        .unwrap_or_else(Platform::host);
    let mut config = Map::new();
    config.insert("architecture".into(), platform.architecture.clone().into());
    if let Some(variant) = &platform.variant {
        config.insert("variant".into(), variant.clone().into());
    }
    config.insert("config".into(), Value::Object(Map::new()));
    config.insert("os".into(), platform.os.clone().into());
    config.insert(
        "rootfs".into(),
        serde_json::json!({"type": "layers", "diff_ids": []}),
    );
    let bytes = serde_json::to_vec(&config).expect("serializing a JSON value cannot fail");
    let base = Image {
        tags: Vec::new(),
        ref_names: Vec::new(),
        oci_ref_names: BTreeMap::new(),
        config: Descriptor {
            media_type: media::DOCKER_CONFIG.into(),
            digest: Digest::of(&bytes),
            size: bytes.len() as u64,
        },
        config_bytes: Arc::new(bytes),
        config_path: "a new image config".into(),
        manifest: None,
        manifest_bytes: None,
        platform: platform.clone(),
        layers: Vec::new(),
        artifact: false,
        index: None,
        input: Arc::from(rootfs),
        annotations: BTreeMap::new(),
    };
    let mut options = options.clone();
    options.layers = vec![rootfs.to_string()];
    if options.edit.history.comment.is_none() {
        options.edit.history.comment = Some("Imported from -".into());
    }
    // The new image is the only one: the platform picks nothing.
    options.convert.platform = None;
    options.convert.images.clear();
    let to = options
        .convert
        .to
        .or(dst.transport)
        .unwrap_or_else(|| Format::for_destination(&dst.path));
    let source = Source::new(to, rootfs, vec![base]);
    run(Origin::Made(Box::new(source)), dst, &options, progress)
}

/// The pipeline of [`edit_images`] and [`import_rootfs`].
fn run(
    origin: Origin,
    dst: &Location,
    options: &EditOptions,
    progress: &dyn Progress,
) -> Result<ConvertReport> {
    let edit = &options.edit;
    if edit.is_empty_with(&options.layers) && !options.flatten {
        return Err(Error::Usage(
            "nothing to change: give a change, a layer or an annotation".into(),
        ));
    }
    let stdin_source = matches!(&origin, Origin::At(l) if l.path == "-" && l.transport.is_none());
    if options.layers.iter().filter(|l| *l == "-").count() + usize::from(stdin_source) > 1 {
        return Err(Error::Usage(
            "stdin (-) can be read once: give it as one input only".into(),
        ));
    }
    // A layer is read after the destination is made: it must not be, hold or
    // contain the destination (a directory rootfs would take the output in).
    if let Some(out) = dst.local_path() {
        for input in options.layers.iter().filter(|l| *l != "-") {
            crate::destination::refuse_touching_input(out, std::path::Path::new(input))?;
        }
    }
    if !options.convert.referrer_types.is_empty() || options.convert.referrers {
        return Err(Error::Usage(format!(
            "an edited image has a new manifest, which what refers to the one it was made from cannot follow; drop {}",
            Setting::Referrers
        )));
    }
    let apply = |images: Vec<Image>, context: &EditContext| -> Result<Vec<Image>> {
        let has_annotations = !edit.annotations.is_empty();
        if (has_annotations || !edit.index_annotations.is_empty())
            && !context.to.transport().holds_annotations(&context.write)
        {
            let which = if has_annotations {
                Setting::Annotation
            } else {
                Setting::IndexAnnotation
            };
            return Err(Error::Usage(format!(
                "{} keeps no manifest of dockhand's, so {which} has nowhere to go; annotations are held by oci, oci-archive, dir (OCI manifests) and docker:// outputs, and a docker-archive with {} hybrid",
                context.to.name(),
                Setting::DockerLayout
            )));
        }
        if !edit.index_annotations.is_empty() && images.iter().any(|i| i.index.is_none()) {
            return Err(Error::Usage(format!(
                "{} annotates the index the images are written in, and only images taken with {} from a multi-platform index are",
                Setting::IndexAnnotation,
                Setting::AllPlatforms
            )));
        }
        let layer_options = LayerOptions {
            spool_dir: context.spool_dir.clone(),
            clamp_mtime: options.clamp_mtime,
        };
        if options.flatten {
            if !options.layers.is_empty() {
                return Err(Error::Usage(
                    "a flattened image is its own filesystem as one layer: add layers with dockhand append afterwards".into(),
                ));
            }
            return images
                .iter()
                .map(|image| flattened(image, edit, &layer_options))
                .collect();
        }
        let mut layers = Vec::with_capacity(options.layers.len());
        for input in &options.layers {
            layers.push(NewLayer::read(input, &layer_options)?);
        }
        let edit = ImageEdit {
            layers,
            ..edit.clone()
        };
        images.iter().map(|image| edit.apply(image)).collect()
    };
    convert_from(vec![origin], dst, &options.convert, Some(&apply), progress)
}

/// `image` as one layer, its final filesystem, with `edit` applied on top: the layers
/// (and the history) replaced by that layer and one entry naming what was flattened.
fn flattened(image: &Image, edit: &ImageEdit, layer_options: &LayerOptions) -> Result<Image> {
    let name = format!("the filesystem of {}", image.display_name());
    // The export's own error (a hostile layer, a digest mismatch) is the one to tell.
    let mut failure = None;
    let layer = NewLayer::from_writer(&name, layer_options, |out| {
        crate::rootfs::export_image(image, out, &crate::NoProgress)
            .map(drop)
            .map_err(|e| {
                failure = Some(e);
                std::io::Error::other("the export failed")
            })
    });
    if let Some(e) = failure {
        return Err(e);
    }
    let mut history = edit.history.clone();
    if history.created_by.is_none() {
        history.created_by = Some(format!(
            "dockhand flatten {} ({} layers)",
            image.config.digest,
            image.layers.len()
        ));
    }
    ImageEdit {
        layers: vec![layer?],
        replace_layers: true,
        history,
        ..edit.clone()
    }
    .apply(image)
}

impl ImageEdit {
    /// [`ImageEdit::is_empty`], counting `layers` still to be read as layers.
    fn is_empty_with(&self, layers: &[String]) -> bool {
        self.is_empty() && layers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn times_are_written_as_go_writes_them() {
        let at = |secs: u64, nanos: u32| rfc3339(UNIX_EPOCH + Duration::new(secs, nanos));
        assert_eq!(at(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(at(1_700_000_000, 0), "2023-11-14T22:13:20Z");
        assert_eq!(at(951_782_400, 0), "2000-02-29T00:00:00Z");
        assert_eq!(
            at(1_709_210_096, 644_786_376),
            "2024-02-29T12:34:56.644786376Z"
        );
        assert_eq!(at(4_102_444_800, 500_000_000), "2100-01-01T00:00:00.5Z");
    }
}
