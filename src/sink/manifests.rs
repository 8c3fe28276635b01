//! Which bytes each layer of an image is written as, and the manifest that names them:
//! the source's own manifest, byte for byte, whenever it still describes what was
//! written (so the manifest digest that signatures name survives), else an OCI
//! manifest built over the blobs written. Indexes read with `--all` likewise.

use serde_json::{json, Value};

use super::blobs::BlobWriter;
use crate::compress::LayerCompression;
use crate::error::{Error, Result, Setting};
use crate::layer::LayerForm;
use crate::model::digest::Digest;
use crate::model::image::{Descriptor, Image, Layer};
use crate::model::media::{self, Compression, Family};

/// How an image's layers are written: kept as the source stores them, uncompressed,
/// or compressed anew, and which source manifests are kept. A destination's transport
/// chooses it; a library user's takes [`LayerPolicy::new`] of the user's options.
///
/// ```
/// use dockhand::{LayerCompression, LayerPolicy};
///
/// assert_eq!(LayerPolicy::default(), LayerPolicy::new(LayerCompression::Keep, None)?);
/// assert!(LayerPolicy::new(LayerCompression::Gzip, Some(10)).is_err()); // gzip is 1-9
/// # Ok::<(), dockhand::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerPolicy {
    /// Which manifests are built when the source's own cannot be kept.
    manifests: Manifests,
    compression: LayerCompression,
    /// The level when compressing.
    level: i32,
    /// With `keep`, compress uncompressed layers with gzip anyway (a push, as `docker
    /// push` does).
    gzip_uncompressed: bool,
    /// Keep a source's Docker v2 manifest too, when it describes what is written (a
    /// registry holds them; an OCI layout lists OCI manifests).
    keep_docker_manifests: bool,
    /// Keep a source's Docker v2 manifest even where OCI manifests are built otherwise
    /// (an OCI layout carrying referrers, which name that manifest's digest).
    keep_source_manifests: bool,
}

/// A manifest format to write: [`crate::WriteOptions::manifest_format`], skopeo's
/// `--format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ManifestFormat {
    /// OCI image manifests and indexes.
    Oci,
    /// Docker v2 schema 2 manifests and manifest lists, as `docker push` writes them.
    DockerV2,
}

impl ManifestFormat {
    /// The name skopeo gives it (`oci`, `v2s2`).
    pub fn name(self) -> &'static str {
        match self {
            ManifestFormat::Oci => "oci",
            ManifestFormat::DockerV2 => "v2s2",
        }
    }
}

/// Which manifests a policy builds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Manifests {
    /// This format, always.
    Always(ManifestFormat),
    /// What the source is: Docker v2 for an image with Docker's config type (a
    /// docker-archive, a Docker v2 manifest) when its layers can be named so, else OCI.
    AsSource,
}

impl Default for LayerPolicy {
    /// Layers as the source stores them (xz and bzip2 ones decompressed: OCI has no
    /// media type for them), under OCI manifests.
    fn default() -> Self {
        LayerPolicy {
            manifests: Manifests::Always(ManifestFormat::Oci),
            compression: LayerCompression::Keep,
            level: 0,
            gzip_uncompressed: false,
            keep_docker_manifests: false,
            keep_source_manifests: false,
        }
    }
}

impl LayerPolicy {
    /// Always uncompressed (a docker archive, the Docker >= 25 hybrid).
    pub const UNCOMPRESSED: LayerPolicy = LayerPolicy {
        manifests: Manifests::Always(ManifestFormat::Oci),
        compression: LayerCompression::None,
        level: 0,
        gzip_uncompressed: false,
        keep_docker_manifests: false,
        keep_source_manifests: false,
    };

    /// Layers with `compression`, at `level` (gzip 1-9, zstd 1-19; `None` for the
    /// default). A level without compressing, or out of range, is a usage error.
    pub fn new(compression: LayerCompression, level: Option<i32>) -> Result<LayerPolicy> {
        Ok(LayerPolicy {
            compression,
            level: compression.level(level)?,
            ..LayerPolicy::default()
        })
    }

    /// The policy, writing manifests in `format`. Docker v2 has no media type for zstd
    /// layers: compressing to zstd with it is a usage error.
    pub fn with_manifest_format(mut self, format: ManifestFormat) -> Result<LayerPolicy> {
        if format == ManifestFormat::DockerV2 && self.compression == LayerCompression::Zstd {
            return Err(Error::Usage(format!(
                "Docker v2 manifests ({} v2s2) cannot name zstd layers; use {} oci, or gzip layers",
                Setting::ManifestFormat,
                Setting::ManifestFormat
            )));
        }
        self.manifests = Manifests::Always(format);
        Ok(self)
    }

    /// What a push writes: as [`LayerPolicy::new`], except that `keep` compresses
    /// uncompressed layers with gzip, as `docker push` does (`none` pushes them
    /// uncompressed); manifests are `format`, or by default what the source is (Docker
    /// v2 schema 2 for a docker-archive or a Docker v2 image, as `docker push` and
    /// skopeo push them; OCI for an OCI image), and a source's own manifest is kept when
    /// it describes what is written.
    pub fn for_registry(
        compression: LayerCompression,
        level: Option<i32>,
        format: Option<ManifestFormat>,
    ) -> Result<LayerPolicy> {
        let mut layers = LayerPolicy::new(compression, level)?;
        layers = match format {
            Some(format) => layers.with_manifest_format(format)?,
            None => LayerPolicy {
                manifests: Manifests::AsSource,
                ..layers
            },
        };
        layers.keep_docker_manifests = true;
        if layers.compression == LayerCompression::Keep {
            layers.gzip_uncompressed = true;
            layers.level = LayerCompression::Gzip.level(level)?;
        }
        Ok(layers)
    }

    /// The policy, with `keep` keeping every layer as stored even where it would
    /// compress an uncompressed one (a push): an image whose referrers name its
    /// manifest keeps that manifest.
    ///
    /// A source's Docker v2 manifest is kept too where OCI manifests are built
    /// otherwise (an OCI layout holds one as well: its index lists it by media type).
    pub fn keeping_manifests(mut self) -> LayerPolicy {
        if self.compression == LayerCompression::Keep {
            self.gzip_uncompressed = false;
        }
        self.keep_docker_manifests = true;
        self.keep_source_manifests = true;
        self
    }

    /// The manifest family `image` is written under, its layers written as `outputs`.
    fn family(self, image: &Image, outputs: &[LayerOutput]) -> Result<Family> {
        let zstd = image.layers.iter().zip(outputs).any(|(layer, output)| {
            let compression = match output {
                LayerOutput::Form(LayerForm::Stored) => layer.compression,
                LayerOutput::Form(LayerForm::Uncompressed) => Compression::None,
                LayerOutput::Compressed(target) => *target,
            };
            compression == Compression::Zstd
        });
        let docker_source = image
            .manifest
            .as_ref()
            .is_some_and(|m| m.media_type == media::DOCKER_MANIFEST);
        Ok(match self.manifests {
            Manifests::Always(ManifestFormat::Oci)
                if self.keep_source_manifests
                    && docker_source
                    && !image.artifact
                    && !zstd
                    && image.config.media_type == media::DOCKER_CONFIG =>
            {
                Family::Docker
            }
            Manifests::Always(ManifestFormat::Oci) => Family::Oci,
            Manifests::Always(ManifestFormat::DockerV2) => {
                if image.artifact || zstd || annotated(image) {
                    return Err(Error::Unsupported(format!(
                        "{}: {} in a Docker v2 manifest; write it with {} oci",
                        image.display_name(),
                        if zstd {
                            "zstd layers cannot be named"
                        } else if image.artifact {
                            "an artifact cannot be held"
                        } else {
                            "annotations cannot be held"
                        },
                        Setting::ManifestFormat
                    )));
                }
                Family::Docker
            }
            // Annotations need an OCI manifest.
            Manifests::AsSource
                if !image.artifact
                    && !zstd
                    && !annotated(image)
                    && image.config.media_type == media::DOCKER_CONFIG =>
            {
                Family::Docker
            }
            Manifests::AsSource => Family::Oci,
        })
    }

    /// How `layer` of `image` is written.
    fn output(self, image: &Image, layer: &Layer) -> LayerOutput {
        if image.artifact {
            // Not a layer: its bytes and media type are the artifact's own.
            return LayerOutput::Form(LayerForm::Stored);
        }
        match self.compression.target() {
            Some(target) if layer.compression != target => LayerOutput::Compressed(target),
            Some(_) => LayerOutput::Form(LayerForm::Stored),
            None if self.compression == LayerCompression::None => {
                LayerOutput::Form(LayerForm::Uncompressed)
            }
            None if self.gzip_uncompressed => match layer.compression {
                Compression::Gzip | Compression::Zstd => LayerOutput::Form(LayerForm::Stored),
                _ => LayerOutput::Compressed(Compression::Gzip),
            },
            None => match layer.compression {
                Compression::None | Compression::Gzip | Compression::Zstd => {
                    LayerOutput::Form(LayerForm::Stored)
                }
                // OCI has no media type for these.
                Compression::Xz | Compression::Bzip2 => LayerOutput::Form(LayerForm::Uncompressed),
            },
        }
    }
}

/// Whether `image`'s manifest, or the index rebuilt over it, gets annotations, which
/// only OCI manifests and indexes hold.
fn annotated(image: &Image) -> bool {
    !image.annotations.is_empty()
        || image
            .index
            .as_ref()
            .is_some_and(|index| !index.annotations.is_empty())
}

/// The bytes a layer blob holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LayerOutput {
    /// As the source stores it, or uncompressed.
    Form(LayerForm),
    /// Uncompressed, then compressed anew.
    Compressed(Compression),
}

/// The written form of one image: its manifest and, for docker's manifest.json, the
/// digests of its config and layers as written.
pub(crate) struct WrittenImage {
    pub manifest: Descriptor,
    pub manifest_bytes: Vec<u8>,
    pub config: Digest,
    pub layers: Vec<Digest>,
}

/// Put the layer and config blobs of `image` and build its manifest (which the caller
/// puts next).
pub(crate) fn put_image_blobs(
    blobs: &mut BlobWriter,
    image: &Image,
    layers_mode: LayerPolicy,
) -> Result<WrittenImage> {
    let mut layer_descs = Vec::with_capacity(image.layers.len());
    let mut layer_digests = Vec::with_capacity(image.layers.len());
    let mut all_as_stored = true;
    let mut all_stored = true;
    let outputs: Vec<LayerOutput> = image
        .layers
        .iter()
        .map(|layer| layers_mode.output(image, layer))
        .collect();
    let forms: Vec<Option<LayerForm>> = outputs
        .iter()
        .map(|output| match output {
            LayerOutput::Form(form) => Some(*form),
            LayerOutput::Compressed(_) => None,
        })
        .collect();
    let family = layers_mode.family(image, &outputs)?;
    blobs.prefetch_layers(image, &forms)?;
    for (index, &output) in outputs.iter().enumerate() {
        let layer = &image.layers[index];
        let (digest, size, compression) = match output {
            LayerOutput::Form(form) => blobs.put_layer(image, index, form)?,
            LayerOutput::Compressed(target) => {
                blobs.put_compressed(image, index, target, layers_mode.level)?
            }
        };
        let media_type = if image.artifact {
            layer.media_type.clone()
        } else {
            compression
                .layer_media_type(family)
                .expect("representable")
                .to_string()
        };
        all_stored &= output == LayerOutput::Form(LayerForm::Stored);
        all_as_stored &= all_stored && media_type == layer.media_type;
        layer_descs
            .push(json!({"mediaType": media_type, "digest": digest.to_string(), "size": size}));
        layer_digests.push(digest);
    }
    let config = blobs.put_config(image)?;
    let (manifest_type, config_type) = match family {
        _ if image.artifact => (media::OCI_MANIFEST, image.config.media_type.as_str()),
        Family::Docker => (media::DOCKER_MANIFEST, media::DOCKER_CONFIG),
        _ => (media::OCI_MANIFEST, media::OCI_CONFIG),
    };
    // When the source's own OCI manifest describes exactly what was written, keep its
    // bytes: the manifest digest (what signatures point at) survives the conversion.
    if let (Some(source), Some(bytes)) = (&image.manifest, &image.manifest_bytes) {
        let oci = all_as_stored
            && family == Family::Oci
            && source.media_type == media::OCI_MANIFEST
            && image.config.media_type == config_type;
        // A Docker v2 manifest names Docker media types for the same bytes.
        let docker = layers_mode.keep_docker_manifests
            && family == Family::Docker
            && all_stored
            && source.media_type == media::DOCKER_MANIFEST;
        if (oci || docker) && describes(bytes, &config.digest, &layer_descs) {
            return Ok(WrittenImage {
                manifest: source.clone(),
                manifest_bytes: bytes.to_vec(),
                config: config.digest,
                layers: layer_digests,
            });
        }
    }
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": manifest_type,
        "config": {"mediaType": config_type, "digest": config.digest.to_string(), "size": config.size},
        "layers": layer_descs,
    });
    if !image.annotations.is_empty() {
        manifest["annotations"] = json!(image.annotations);
    }
    let bytes = serde_json::to_vec(&manifest).expect("serializing a JSON value cannot fail");
    Ok(WrittenImage {
        manifest: Descriptor {
            media_type: manifest_type.to_string(),
            digest: Digest::of(&bytes),
            size: bytes.len() as u64,
        },
        manifest_bytes: bytes,
        config: config.digest,
        layers: layer_digests,
    })
}

/// Does manifest `bytes` name exactly this config and these layers, in this order? (A
/// Docker 25.0.0 save can carry an OCI manifest whose layer order disagrees with its
/// manifest.json, which is the one followed.)
fn describes(bytes: &[u8], config: &Digest, layers: &[Value]) -> bool {
    let Ok(doc) = serde_json::from_slice::<Value>(bytes) else {
        return false;
    };
    let same =
        |a: &Value, b: &Value| a.get("digest") == b.get("digest") && a.get("size") == b.get("size");
    doc["config"]["digest"].as_str() == Some(config.to_string().as_str())
        && doc["layers"].as_array().is_some_and(|l| {
            l.len() == layers.len() && l.iter().zip(layers).all(|(a, b)| same(a, b))
        })
}

/// What an index (`index.json`, or a registry's tags) lists for written images.
pub(crate) enum Listed {
    /// One image, by its position among the images written.
    Image(usize),
    /// A multi-platform index read with `--all`: the source's bytes when every image
    /// it lists was written with its own manifest, else an index rebuilt over what was
    /// written. Named as its first image is.
    Index {
        descriptor: Descriptor,
        bytes: Vec<u8>,
        members: Vec<usize>,
    },
}

/// Group the written images by the index they were read from with `--all`. `carried`
/// holds the other manifests an index lists that were put before it (BuildKit
/// attestations): an index whose every entry was put unchanged keeps its bytes.
pub(crate) fn list_written(
    images: &[Image],
    written: &[WrittenImage],
    carried: &std::collections::HashSet<Digest>,
) -> Vec<Listed> {
    let mut listed: Vec<Listed> = Vec::new();
    let mut groups: std::collections::HashMap<Digest, usize> = Default::default();
    for (i, image) in images.iter().enumerate() {
        let Some(index) = &image.index else {
            listed.push(Listed::Image(i));
            continue;
        };
        match groups.get(&index.descriptor.digest) {
            Some(&at) => {
                if let Listed::Index { members, .. } = &mut listed[at] {
                    members.push(i);
                }
            }
            None => {
                groups.insert(index.descriptor.digest.clone(), listed.len());
                listed.push(Listed::Index {
                    descriptor: index.descriptor.clone(),
                    bytes: Vec::new(),
                    members: vec![i],
                });
            }
        }
    }
    for entry in &mut listed {
        let Listed::Index {
            descriptor,
            bytes,
            members,
        } = entry
        else {
            continue;
        };
        let source = images[members[0]].index.as_ref().expect("grouped by index");
        let listed_digests: Option<Vec<String>> = serde_json::from_slice::<Value>(&source.bytes)
            .ok()
            .and_then(|v| {
                v["manifests"].as_array().map(|m| {
                    m.iter()
                        .filter_map(|d| d["digest"].as_str().map(String::from))
                        .collect()
                })
            });
        let mut written_digests: Vec<String> = members
            .iter()
            .map(|&i| written[i].manifest.digest.to_string())
            .collect();
        let unchanged = members.iter().all(|&i| {
            images[i].manifest.as_ref().map(|m| &m.digest) == Some(&written[i].manifest.digest)
        });
        written_digests.sort();
        written_digests.dedup();
        let same_set = listed_digests.is_some_and(|mut l| {
            l.sort();
            l.dedup();
            l.retain(|d| !Digest::parse(d).is_ok_and(|d| carried.contains(&d)));
            l == written_digests
        });
        if unchanged && same_set && source.annotations.is_empty() {
            *bytes = source.bytes.to_vec();
            continue;
        }
        let manifests: Vec<Value> = members
            .iter()
            .map(|&i| {
                let m = &written[i].manifest;
                let p = &images[i].platform;
                let mut platform = json!({"architecture": p.architecture, "os": p.os});
                if let Some(v) = &p.variant {
                    platform["variant"] = json!(v);
                }
                json!({"mediaType": m.media_type, "digest": m.digest.to_string(), "size": m.size, "platform": platform})
            })
            .collect();
        // Docker v2 manifests are listed by a Docker manifest list, as docker writes.
        let list_type = if members
            .iter()
            .all(|&i| written[i].manifest.media_type == media::DOCKER_MANIFEST)
        {
            media::DOCKER_MANIFEST_LIST
        } else {
            media::OCI_INDEX
        };
        let mut rebuilt = json!({
            "schemaVersion": 2,
            "mediaType": list_type,
            "manifests": manifests,
        });
        // Annotations need an OCI index (an edit gives them for OCI outputs only).
        if !source.annotations.is_empty() && list_type == media::OCI_INDEX {
            rebuilt["annotations"] = json!(source.annotations);
        }
        let rebuilt = serde_json::to_vec(&rebuilt).expect("serializing a JSON value cannot fail");
        *descriptor = Descriptor {
            media_type: list_type.to_string(),
            digest: Digest::of(&rebuilt),
            size: rebuilt.len() as u64,
        };
        *bytes = rebuilt;
    }
    listed
}
