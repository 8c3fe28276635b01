//! `history`: an image's build steps matched to its layers, as `docker history` shows
//! them (from the config, and each layer's uncompressed size, read from a compressed
//! layer when the source does not give it), and the parts of a config that `inspect`
//! shows.

use serde::de::{DeserializeOwned, Deserializer};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::model::digest::Digest;
use crate::model::image::{Image, Layer};
use crate::model::media::Compression;
use crate::progress::{NoProgress, Progress};
use crate::text::shown;

/// The parts of an image config that `history` and `inspect` show. Every field is
/// optional: one that is absent, `null` or of the wrong type reads as `None`, so a
/// hostile config shows less, never fails to show.
///
/// ```
/// use dockhand::{open_source, ConfigSummary, Location, ReadOptions};
///
/// # let input = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/docker-save-basic/input.tar");
/// let source = open_source(&Location::parse(input)?, &ReadOptions::default())?;
/// let summary = ConfigSummary::of(&source.images[0]);
/// assert_eq!(summary.cmd, Some(vec!["/bin/hello.sh".to_string()]));
/// assert_eq!(summary.labels.unwrap()["com.example.fixture"], "basic");
/// assert!(ConfigSummary::parse(b"not json").cmd.is_none());
/// # Ok::<(), dockhand::Error>(())
/// ```
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[non_exhaustive]
pub struct ConfigSummary {
    /// `created`, as the config writes it (RFC 3339).
    #[serde(default, deserialize_with = "lenient", skip_serializing)]
    pub created: Option<String>,
    /// `config.Entrypoint`.
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    /// `config.Cmd`.
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    /// `config.Env`.
    #[serde(default)]
    pub env: Option<Vec<String>>,
    /// `config.Labels`, sorted by key.
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
    /// `config.WorkingDir`.
    #[serde(default)]
    pub working_dir: Option<String>,
    /// `config.User`.
    #[serde(default)]
    pub user: Option<String>,
    /// The keys of `config.ExposedPorts` (`80/tcp`), sorted.
    #[serde(default)]
    pub exposed_ports: Option<Vec<String>>,
    /// `history`, oldest first; `None` when absent or not a list of objects.
    #[serde(default, skip_serializing)]
    pub history: Option<Vec<HistoryEntry>>,
}

/// One entry of a config's `history`.
///
/// ```
/// use dockhand::ConfigSummary;
///
/// let config = br#"{"history": [{"created_by": "COPY . /"}, {"empty_layer": true}]}"#;
/// let history = ConfigSummary::parse(config).history.unwrap();
/// assert_eq!(history[0].created_by.as_deref(), Some("COPY . /"));
/// assert_eq!((history[0].empty_layer, history[1].empty_layer), (None, Some(true)));
/// ```
#[derive(Debug, Default, Clone, Deserialize)]
#[non_exhaustive]
pub struct HistoryEntry {
    /// `created` (RFC 3339).
    #[serde(default, deserialize_with = "lenient")]
    pub created: Option<String>,
    /// `created_by`: the build step.
    #[serde(default, deserialize_with = "lenient")]
    pub created_by: Option<String>,
    /// `comment`.
    #[serde(default, deserialize_with = "lenient")]
    pub comment: Option<String>,
    /// `empty_layer`: the step added no layer.
    #[serde(default, deserialize_with = "lenient")]
    pub empty_layer: Option<bool>,
}

/// The config as serde reads it; [`ConfigSummary::parse`] flattens it.
#[derive(Deserialize)]
struct RawConfig {
    #[serde(default, deserialize_with = "lenient")]
    created: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    config: Option<RawRunConfig>,
    #[serde(default, deserialize_with = "lenient")]
    history: Option<Vec<HistoryEntry>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawRunConfig {
    #[serde(default, deserialize_with = "lenient")]
    entrypoint: Option<Vec<String>>,
    #[serde(default, deserialize_with = "lenient")]
    cmd: Option<Vec<String>>,
    #[serde(default, deserialize_with = "lenient")]
    env: Option<Vec<String>>,
    #[serde(default, deserialize_with = "lenient")]
    labels: Option<BTreeMap<String, String>>,
    #[serde(default, deserialize_with = "lenient")]
    working_dir: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    user: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
}

/// A field of the wrong type reads as absent instead of failing the whole config.
fn lenient<'de, D: Deserializer<'de>, T: DeserializeOwned>(
    d: D,
) -> std::result::Result<Option<T>, D::Error> {
    let value = serde_json::Value::deserialize(d)?;
    Ok(T::deserialize(value).ok())
}

impl ConfigSummary {
    /// Read the summary from raw config bytes (never re-serialized). A config that is
    /// not a JSON object, or is nested deeper than [`crate::limits::MAX_JSON_DEPTH`],
    /// gives an empty summary.
    pub fn parse(config_bytes: &[u8]) -> ConfigSummary {
        let Ok(raw) = crate::model::image::parse_json::<RawConfig>(config_bytes, "config") else {
            return ConfigSummary::default();
        };
        let run = raw.config;
        let run = run.as_ref();
        ConfigSummary {
            created: raw.created,
            entrypoint: run.and_then(|c| c.entrypoint.clone()),
            cmd: run.and_then(|c| c.cmd.clone()),
            env: run.and_then(|c| c.env.clone()),
            labels: run.and_then(|c| c.labels.clone()),
            working_dir: run.and_then(|c| c.working_dir.clone()),
            user: run.and_then(|c| c.user.clone()),
            exposed_ports: run
                .and_then(|c| c.exposed_ports.as_ref())
                .map(|p| p.keys().cloned().collect()),
            history: raw.history,
        }
    }

    /// The summary of `image`'s config.
    pub fn of(image: &Image) -> ConfigSummary {
        ConfigSummary::parse(&image.config_bytes)
    }
}

/// One row of an image's history, as `docker history` shows it.
///
/// ```
/// use dockhand::{image_history, open_source, Compression, Location, ReadOptions};
///
/// # let input = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/docker-save-basic/input.tar");
/// let source = open_source(&Location::parse(input)?, &ReadOptions::default())?;
/// let history = image_history(&source.images[0], 0)?;
/// let base = history.history.last().unwrap(); // newest first
/// assert_eq!((base.layer, base.size, base.size_exact), (Some(0), 2560, true));
/// assert_eq!(base.compression, Some(Compression::None));
/// assert!(history.history[0].empty_layer);
///
/// // The same layer stored gzip-compressed (187 bytes) in an OCI layout: the size is
/// // still its tar's, as docker history shows it.
/// # let input = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/skopeo-oci/input");
/// let oci = open_source(&Location::parse(input)?, &ReadOptions::default())?;
/// let history = image_history(&oci.images[0], 0)?;
/// let base = history.history.last().unwrap();
/// assert_eq!((base.size, base.compression), (2560, Some(Compression::Gzip)));
/// assert_eq!(oci.images[0].layers[0].size, 187);
/// # Ok::<(), dockhand::Error>(())
/// ```
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct HistoryRow {
    /// The image ID on the newest row, `None` (docker's `<missing>`) on the others.
    pub id: Option<Digest>,
    /// When the step ran (RFC 3339, as the config writes it).
    pub created: Option<String>,
    /// The build step, unchanged (no prefix stripped, not truncated).
    pub created_by: Option<String>,
    /// Bytes the step added, as `docker history` counts them: 0 for an empty layer,
    /// else the size of the layer's uncompressed tar (what `docker save` writes). A
    /// layer stored compressed is read to learn it (and verified on the way); only a
    /// compressed layer whose blob the source lacks (a foreign layer) keeps its stored
    /// size, with `size_exact` false.
    pub size: u64,
    /// True when `size` is the uncompressed size; false only for a compressed layer
    /// whose blob is absent from the source, whose `size` is then its stored size.
    pub size_exact: bool,
    /// The stored compression of the row's layer (`None` for an empty layer).
    pub compression: Option<Compression>,
    /// The position of the row's layer in the image (base = 0), if it has one.
    pub layer: Option<usize>,
    /// The step's comment.
    pub comment: Option<String>,
    /// The step added no layer.
    pub empty_layer: bool,
}

/// The history of one image of a source.
///
/// ```
/// use dockhand::{image_history, open_source, Location, ReadOptions};
///
/// # let input = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/docker-save-basic/input.tar");
/// let source = open_source(&Location::parse(input)?, &ReadOptions::default())?;
/// let history = image_history(&source.images[0], 0)?;
/// assert_eq!(history.index, 0);
/// assert_eq!(history.tags.len(), 2);
/// assert_eq!(history.tags[1], "docker.io/dockhand-fixture/basic:latest"); // sorted
/// assert_eq!(history.history[0].id.as_ref(), Some(&history.id));
/// # Ok::<(), dockhand::Error>(())
/// ```
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct ImageHistory {
    /// The image's position in the source (`@N`).
    pub index: usize,
    /// The image ID (config digest).
    pub id: Digest,
    /// The image's tags, sorted.
    pub tags: Vec<String>,
    /// Newest first, as `docker history` lists them.
    pub history: Vec<HistoryRow>,
}

/// The history of `image` (the image at position `index` of its source), newest first.
///
/// Each `history` entry of the config without `empty_layer: true` takes the next layer,
/// base first; entries with it get size 0. A config without `history` gives one row
/// per layer with nothing but its size, as docker shows such an image. An image whose
/// history names more layers than it has is an error naming it.
///
/// A layer's size is its uncompressed size: a layer stored uncompressed (every layer
/// of a docker-save archive) has it from the source; a compressed one (gzip or zstd, in
/// an OCI or `dir:` layout, or a registry) is read once through a fixed buffer,
/// verified as every read is (digest, size and diff_id), counting its uncompressed
/// bytes. [`image_histories`] does the same for several images, reading a layer they
/// share once, and reports progress.
///
/// ```
/// use dockhand::{image_history, open_source, Location, ReadOptions};
///
/// let input = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/docker-save-basic/input.tar");
/// let source = open_source(&Location::parse(input)?, &ReadOptions::default())?;
/// let history = image_history(&source.images[0], 0)?;
/// assert_eq!(history.id, source.images[0].config.digest);
/// // Seven build steps, four of them empty; the newest is the CMD.
/// assert_eq!(history.history.len(), 7);
/// assert_eq!(history.history.iter().filter(|row| row.layer.is_some()).count(), 3);
/// assert!(history.history[0].created_by.as_deref().unwrap().contains("CMD"));
/// # Ok::<(), dockhand::Error>(())
/// ```
pub fn image_history(image: &Image, index: usize) -> Result<ImageHistory> {
    let mut histories = image_histories(std::slice::from_ref(image), &[0], &NoProgress)?;
    let mut history = histories.pop().expect("one image, one history");
    history.index = index;
    Ok(history)
}

/// The histories of the images of `images` at the positions `selected`, in that order,
/// as [`image_history`] gives each. Every image's history is checked against its
/// layers before any layer is read; then each compressed layer whose uncompressed size
/// the source does not give is read once (a layer several images share, once), on as
/// many threads as the machine has cores, its stored bytes reported to `progress`.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use dockhand::{image_histories, open_source, Location, Progress, ReadOptions};
///
/// struct Read(AtomicU64);
/// impl Progress for Read {
///     fn advanced(&self, bytes: u64) {
///         self.0.fetch_add(bytes, Ordering::Relaxed);
///     }
/// }
/// // The basic fixture's image in an OCI layout, its layers zstd-compressed.
/// # let input = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/skopeo-oci-zstd/input");
/// let source = open_source(&Location::parse(input)?, &ReadOptions::default())?;
/// let read = Read(AtomicU64::new(0));
/// let histories = image_histories(&source.images, &[0], &read)?;
/// let sizes: Vec<u64> = histories[0].history.iter().map(|row| row.size).collect();
/// // The tars' sizes, as the docker-save archive it came from stores them...
/// assert_eq!(sizes, [0, 0, 0, 0, 4096, 3072, 2560]);
/// // ...learned by reading the zstd frames, which progress counted.
/// assert_eq!(read.0.into_inner(), 186 + 183 + 241);
/// # Ok::<(), dockhand::Error>(())
/// ```
pub fn image_histories(
    images: &[Image],
    selected: &[usize],
    progress: &dyn Progress,
) -> Result<Vec<ImageHistory>> {
    let mut histories = Vec::with_capacity(selected.len());
    for &index in selected {
        let image = images.get(index).ok_or_else(|| {
            Error::Selection(format!(
                "no image @{index}: the source holds {} image(s)",
                images.len()
            ))
        })?;
        histories.push(stored_history(image, index)?);
    }
    // The compressed layers to read, once each (by digest, or by path when the source
    // records none), in image order.
    let mut work: Vec<(&Image, &Layer)> = Vec::new();
    let mut keys: BTreeMap<LayerKey, usize> = BTreeMap::new();
    for &index in selected {
        let image = &images[index];
        for layer in &image.layers {
            if needs_reading(layer) {
                keys.entry(LayerKey::of(layer)).or_insert_with(|| {
                    work.push((image, layer));
                    work.len() - 1
                });
            }
        }
    }
    progress.planned(work.len(), work.iter().map(|(_, l)| l.size).sum());
    let results = crate::pool::run_all(&work, crate::pool::cores(), |(image, layer)| {
        let digests = crate::layer::read_layer(image, layer, progress, true)?;
        Ok::<u64, Error>(digests.uncompressed_size.unwrap_or(digests.size))
    });
    // The first failure in image order (every layer before it was read).
    let mut sizes = Vec::with_capacity(results.len());
    for result in results.into_iter().flatten() {
        sizes.push(result?);
    }
    for (history, &index) in histories.iter_mut().zip(selected) {
        let image = &images[index];
        for row in &mut history.history {
            let Some(layer) = row.layer.map(|i| &image.layers[i]) else {
                continue;
            };
            if let Some(&at) = needs_reading(layer)
                .then(|| keys.get(&LayerKey::of(layer)))
                .flatten()
            {
                row.size = sizes[at];
                row.size_exact = true;
            }
        }
    }
    Ok(histories)
}

/// How a layer to read is known: by its digest, or by its path when the source
/// records no digest; with its diff_id, which its read is checked against.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum LayerKey {
    Digest(Digest, Option<Digest>),
    Path(String, Option<Digest>),
}

impl LayerKey {
    fn of(layer: &Layer) -> LayerKey {
        match &layer.digest {
            Some(d) => LayerKey::Digest(d.clone(), layer.diff_id.clone()),
            None => LayerKey::Path(layer.path.clone(), layer.diff_id.clone()),
        }
    }
}

/// A compressed layer the source holds: its uncompressed size is known only by
/// reading it.
fn needs_reading(layer: &Layer) -> bool {
    layer.compression != Compression::None && layer.blob.is_some()
}

/// The history of `image`, each layer's row with the size the source gives (exact for
/// an uncompressed layer, the stored size of a compressed one).
fn stored_history(image: &Image, index: usize) -> Result<ImageHistory> {
    let summary = ConfigSummary::of(image);
    let layer_row = |i: usize, entry: Option<&HistoryEntry>| {
        let layer = &image.layers[i];
        HistoryRow {
            id: None,
            created: entry.and_then(|e| e.created.clone()),
            created_by: entry.and_then(|e| e.created_by.clone()),
            size: layer.size,
            size_exact: layer.compression == Compression::None,
            compression: Some(layer.compression),
            layer: Some(i),
            comment: entry.and_then(|e| e.comment.clone()),
            empty_layer: false,
        }
    };
    let mut rows = Vec::new();
    match summary.history.as_deref() {
        Some(entries) if !entries.is_empty() => {
            let needed = entries
                .iter()
                .filter(|e| e.empty_layer != Some(true))
                .count();
            if needed > image.layers.len() {
                return Err(Error::malformed(
                    image.config_path.clone(),
                    format!(
                        "image @{index} {}: its history lists {needed} layer(s), but it has {}",
                        shown(&image.display_name()),
                        image.layers.len()
                    ),
                )
                .in_input(&image.input));
            }
            let mut next = 0;
            for entry in entries {
                if entry.empty_layer == Some(true) {
                    rows.push(HistoryRow {
                        id: None,
                        created: entry.created.clone(),
                        created_by: entry.created_by.clone(),
                        size: 0,
                        size_exact: true,
                        compression: None,
                        layer: None,
                        comment: entry.comment.clone(),
                        empty_layer: true,
                    });
                } else {
                    rows.push(layer_row(next, Some(entry)));
                    next += 1;
                }
            }
        }
        _ => rows.extend((0..image.layers.len()).map(|i| layer_row(i, None))),
    }
    rows.reverse();
    if let Some(top) = rows.first_mut() {
        top.id = Some(image.config.digest.clone());
    }
    let mut tags: Vec<String> = image.tags.iter().map(|t| t.to_string()).collect();
    tags.sort();
    Ok(ImageHistory {
        index,
        id: image.config.digest.clone(),
        tags,
        history: rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_configs_give_an_empty_summary() {
        for bytes in [
            &b"[]"[..],
            b"null",
            b"{\"config\": 5, \"history\": {}}",
            b"\xff",
        ] {
            let s = ConfigSummary::parse(bytes);
            assert!(s.history.is_none() && s.cmd.is_none());
        }
        let s = ConfigSummary::parse(br#"{"config": {"Cmd": "sh", "Env": ["A=1"]}}"#);
        assert_eq!(s.cmd, None);
        assert_eq!(s.env, Some(vec!["A=1".to_string()]));
    }
}
