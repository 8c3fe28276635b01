//! The in-memory model every reader produces and every writer consumes.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::model::blob::Blob;
use crate::model::digest::Digest;
use crate::model::media::Compression;
use crate::model::reference::Reference;

/// Largest JSON document (manifest.json, index.json, a manifest or a config) read into
/// memory. containers/image uses 1 MiB for manifest.json and 4 MiB for configs; this is
/// generous for both while keeping a hostile input from exhausting memory.
pub const MAX_JSON_SIZE: u64 = 16 << 20;

/// Deepest JSON nesting accepted in any metadata document.
pub const MAX_JSON_DEPTH: usize = 64;

/// A content descriptor: what a blob is, its digest and size.
///
/// Fields may be added in later versions; a struct literal of it will then have to
/// name them, so prefer changing a value a source read (`..other.clone()`).
///
/// ```
/// use dockhand::{open_source, Location, ReadOptions};
///
/// # let input = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/docker-save-basic/input.tar");
/// let source = open_source(&Location::parse(input)?, &ReadOptions::default())?;
/// let config = &source.images[0].config;
/// assert_eq!(config.media_type, "application/vnd.docker.container.image.v1+json");
/// assert_eq!(config.size, 2494);
/// assert_eq!(config.size, source.images[0].config_bytes.len() as u64);
/// # Ok::<(), dockhand::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Descriptor {
    /// The media type.
    pub media_type: String,
    /// The digest of the blob's bytes.
    pub digest: Digest,
    /// The blob's length.
    pub size: u64,
}

/// The platform an image runs on, from its config.
///
/// Fields may be added in later versions: build one with `..Default::default()` so
/// that code keeps compiling.
///
/// ```
/// use dockhand::Platform;
///
/// let armv7 = Platform::parse("linux/arm/v7").unwrap();
/// assert_eq!((armv7.architecture.as_str(), armv7.variant.as_deref()), ("arm", Some("v7")));
/// assert_eq!(armv7.to_string(), "linux/arm/v7");
/// // A request without a variant accepts any variant.
/// assert!(armv7.satisfies(&Platform::parse("linux/arm").unwrap()));
/// assert!(Platform::parse("linux").is_err());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Platform {
    /// Operating system (`linux`).
    pub os: String,
    /// CPU architecture in Go's naming (`amd64`, `arm64`).
    pub architecture: String,
    /// CPU variant (`v7`), if any.
    pub variant: Option<String>,
}

impl Platform {
    /// `os/architecture[/variant]`, as `--platform` takes it.
    ///
    /// ```
    /// use dockhand::Platform;
    ///
    /// let arm64 = Platform::parse("linux/arm64")?;
    /// assert_eq!((arm64.os.as_str(), arm64.architecture.as_str()), ("linux", "arm64"));
    /// assert_eq!(arm64.variant, None);
    /// for bad in ["linux", "linux/", "linux/arm/v7/x", "/amd64"] {
    ///     assert!(Platform::parse(bad).unwrap_err().contains("os/arch[/variant]"), "{bad}");
    /// }
    /// # Ok::<(), String>(())
    /// ```
    pub fn parse(s: &str) -> Result<Platform, String> {
        let parts: Vec<&str> = s.split('/').collect();
        if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.is_empty()) {
            return Err(format!(
                "invalid platform {s:?}: expected os/arch[/variant]"
            ));
        }
        Ok(Platform {
            os: parts[0].to_string(),
            architecture: parts[1].to_string(),
            variant: parts.get(2).map(|v| v.to_string()),
        })
    }

    /// The platform of this machine, as Docker picks it by default: `linux` and the
    /// CPU in Go's naming, without a variant.
    ///
    /// ```
    /// use dockhand::Platform;
    ///
    /// let host = Platform::host();
    /// assert_eq!((host.os.as_str(), host.variant.as_ref()), ("linux", None));
    /// if cfg!(target_arch = "x86_64") {
    ///     assert_eq!(host.to_string(), "linux/amd64"); // not x86_64
    /// }
    /// ```
    pub fn host() -> Platform {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            "loongarch64" => "loong64",
            other => other,
        };
        Platform {
            os: "linux".into(),
            architecture: architecture.into(),
            variant: None,
        }
    }

    /// Does an image of platform `self` satisfy a request for `wanted`? A request
    /// without a variant accepts any variant.
    ///
    /// ```
    /// use dockhand::Platform;
    ///
    /// let p = |s| Platform::parse(s).unwrap();
    /// assert!(p("linux/arm64/v8").satisfies(&p("linux/arm64")));
    /// assert!(p("linux/arm64/v8").satisfies(&p("linux/arm64/v8")));
    /// assert!(!p("linux/arm64").satisfies(&p("linux/arm64/v8")));
    /// assert!(!p("linux/arm/v6").satisfies(&p("linux/arm/v7")));
    /// assert!(!p("windows/amd64").satisfies(&p("linux/amd64")));
    /// ```
    pub fn satisfies(&self, wanted: &Platform) -> bool {
        self.os == wanted.os
            && self.architecture == wanted.architecture
            && (wanted.variant.is_none() || self.variant == wanted.variant)
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// One layer of an image, as stored in the source.
///
/// Fields may be added in later versions; a struct literal of it will then have to
/// name them, so prefer changing a value a source read (`..other.clone()`).
///
/// ```
/// use dockhand::{open_source, Compression, Location, ReadOptions};
///
/// # let input = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/docker-save-basic/input.tar");
/// let source = open_source(&Location::parse(input)?, &ReadOptions::default())?;
/// let base = &source.images[0].layers[0];
/// assert_eq!((base.size, base.compression), (2560, Compression::None));
/// // Stored uncompressed: the digest is the diff_id.
/// assert_eq!(base.digest, base.diff_id);
/// assert_eq!(base.digest.as_ref().unwrap().short(), "54ffbd4bc365");
/// # Ok::<(), dockhand::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Layer {
    /// Digest of the bytes as stored (compressed or not); `None` when the source
    /// records none (a compressed layer of a docker-save archive under a name that is
    /// not its digest): it is then computed while a conversion streams the layer,
    /// never by reading the layer for it alone.
    pub digest: Option<Digest>,
    /// Length of the bytes as stored.
    pub size: u64,
    /// The media type the source gives (or would give) this layer.
    pub media_type: String,
    /// The compression of the stored bytes, from their magic bytes.
    pub compression: Compression,
    /// sha256 of the uncompressed tar, from the config (`None` for artifacts).
    pub diff_id: Option<Digest>,
    /// Where the bytes are; `None` when the source lacks the blob.
    pub blob: Option<Arc<dyn Blob>>,
    /// The layer's path in the source, for messages.
    pub path: String,
}

/// One image: its names, raw config bytes and layers.
///
/// Fields may be added in later versions; a struct literal of it will then have to
/// name them, so prefer changing a value a source read (`..other.clone()`).
///
/// ```
/// use dockhand::{open_source, Location, ReadOptions};
///
/// # let input = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/docker-save-basic/input.tar");
/// let source = open_source(&Location::parse(input)?, &ReadOptions::default())?;
/// let image = &source.images[0];
/// assert_eq!(image.display_name(), "docker.io/dockhand-fixture/basic:1.0");
/// assert_eq!(image.config.digest.short(), "6f2d02a983f5");
/// assert_eq!(image.platform.to_string(), "linux/amd64");
/// assert_eq!((image.layers.len(), image.manifest.is_none()), (3, true));
/// # Ok::<(), dockhand::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Image {
    /// Full, normalized references naming the image, in the order the source lists
    /// them, without duplicates.
    pub tags: Vec<Reference>,
    /// OCI `org.opencontainers.image.ref.name` values that are not full references
    /// (a bare tag such as `latest`); kept for OCI outputs.
    pub ref_names: Vec<String>,
    /// The `org.opencontainers.image.ref.name` an OCI source gave a tag, exactly as it
    /// was (`quay.io/test/b:2`, or the bare `2`): an OCI output writes it back unchanged,
    /// so `oci:DIR:quay.io/test/b:2` still names the image after a conversion. Tags
    /// without an entry (from Docker's RepoTags, or `--tag`) get the bare tag.
    pub oci_ref_names: BTreeMap<Reference, String>,
    /// The config descriptor; its digest is the image ID.
    pub config: Descriptor,
    /// The config bytes, exactly as stored. Never re-serialized.
    pub config_bytes: Arc<Vec<u8>>,
    /// Where the config came from, for messages.
    pub config_path: String,
    /// The manifest the source holds for this image, if any.
    pub manifest: Option<Descriptor>,
    /// That manifest's bytes, when the source has them: an OCI output reuses them (and
    /// so keeps the manifest digest) when every layer is written as stored.
    pub manifest_bytes: Option<Arc<Vec<u8>>>,
    /// The platform, from the config.
    pub platform: Platform,
    /// Layers, base first.
    pub layers: Vec<Layer>,
    /// True when the config is not a container image config (an OCI artifact).
    pub artifact: bool,
    /// The multi-platform index the image was read from, when every platform of it
    /// was asked for (`--all`): an OCI layout or a registry keeps the index whole.
    pub index: Option<Arc<IndexOf>>,
    /// The input the image was read from, as the user named it (a path, `stdin`): an
    /// error about its blobs concerns that input.
    pub input: Arc<str>,
    /// Annotations of a manifest dockhand builds for the image (OCI manifests only):
    /// an edit's ([`crate::ImageEdit::annotations`]). Readers leave it empty: a source
    /// manifest kept byte for byte has its own.
    pub annotations: BTreeMap<String, String>,
}

/// One platform a multi-platform index lists, as [`crate::Source::platforms`] holds them
/// and `inspect --platforms` shows them ([`crate::platforms_json`] as JSON).
///
/// Below, a small multi-platform OCI layout is written by hand: one empty layer, a
/// config and a manifest per platform, and an index listing linux/amd64,
/// linux/arm64/v8 and linux/arm/v7, whose manifest the layout does not hold (a sparse
/// index, as a containerd export of some platforms writes).
///
/// ```
/// use dockhand::{open_source, Digest, ListedPlatform, Location, Platform, ReadOptions};
///
/// let dir = tempfile::tempdir().unwrap();
/// let blobs = dir.path().join("blobs/sha256");
/// std::fs::create_dir_all(&blobs).unwrap();
/// // The descriptor of `bytes` (with `extra` fields), storing them as a blob if `held`.
/// let blob = |media_type: &str, bytes: &[u8], extra: &str, held: bool| {
///     let digest = Digest::of(bytes);
///     if held {
///         std::fs::write(blobs.join(digest.hex()), bytes).unwrap();
///     }
///     let size = bytes.len();
///     format!(r#"{{"mediaType":"{media_type}","digest":"{digest}","size":{size}{extra}}}"#)
/// };
/// let tar = [0u8; 1024]; // an empty tar: two zero blocks
/// let layer = blob("application/vnd.oci.image.layer.v1.tar", &tar, "", true);
/// let diff_id = Digest::of(&tar);
/// let manifest = |platform: &str, held: bool| {
///     let rootfs = format!(r#""rootfs":{{"type":"layers","diff_ids":["{diff_id}"]}}"#);
///     let config = format!("{{{platform},{rootfs}}}");
///     let config = blob("application/vnd.oci.image.config.v1+json", config.as_bytes(), "", true);
///     let manifest = format!(r#"{{"schemaVersion":2,"config":{config},"layers":[{layer}]}}"#);
///     let listed = format!(r#","platform":{{{platform}}}"#);
///     blob("application/vnd.oci.image.manifest.v1+json", manifest.as_bytes(), &listed, held)
/// };
/// let children = [
///     manifest(r#""os":"linux","architecture":"amd64""#, true),
///     manifest(r#""os":"linux","architecture":"arm64","variant":"v8""#, true),
///     manifest(r#""os":"linux","architecture":"arm","variant":"v7""#, false),
/// ];
/// let index = format!(r#"{{"schemaVersion":2,"manifests":[{}]}}"#, children.join(","));
/// let tag = r#","annotations":{"org.opencontainers.image.ref.name":"1.0"}"#;
/// let index = blob("application/vnd.oci.image.index.v1+json", index.as_bytes(), tag, true);
/// let top = format!(r#"{{"schemaVersion":2,"manifests":[{index}]}}"#);
/// std::fs::write(dir.path().join("index.json"), top).unwrap();
/// std::fs::write(dir.path().join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
///
/// // Every platform the index lists, present or not, whichever platform is picked.
/// let location = Location::parse(&format!("oci:{}", dir.path().display()))?;
/// let options = ReadOptions {
///     platform: Some(Platform::parse("linux/arm64").unwrap()),
///     ..ReadOptions::default()
/// };
/// let source = open_source(&location, &options)?;
/// assert_eq!(source.images.len(), 1);
/// assert_eq!(source.images[0].platform.to_string(), "linux/arm64/v8");
/// let listed: Vec<(String, bool)> = source
///     .platforms
///     .iter()
///     .map(|p: &ListedPlatform| (p.platform.to_string(), p.present))
///     .collect();
/// assert_eq!(
///     listed,
///     [
///         ("linux/amd64".to_string(), true),
///         ("linux/arm64/v8".to_string(), true),
///         ("linux/arm/v7".to_string(), false),
///     ]
/// );
/// // One index lists them all; each entry names its manifest.
/// let arm64 = &source.platforms[1];
/// assert_eq!(arm64.index, source.platforms[2].index);
/// assert_eq!(Some(&arm64.manifest), source.images[0].manifest.as_ref().map(|m| &m.digest));
///
/// // With every platform taken (`--all`), the present ones are images, the index kept.
/// let all = ReadOptions { all_platforms: true, ..ReadOptions::default() };
/// let source = open_source(&location, &all)?;
/// assert_eq!(source.images.len(), 2);
/// assert!(source.images.iter().all(|image| image.index.is_some()));
/// # Ok::<(), dockhand::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListedPlatform {
    /// The index listing it.
    pub index: Digest,
    /// The platform its descriptor gives.
    pub platform: Platform,
    /// The manifest for that platform.
    pub manifest: Digest,
    /// Whether the source holds that manifest (a sparse index, as a containerd export
    /// of one platform writes, lists the others without them).
    pub present: bool,
}

impl ListedPlatform {
    /// What a library user's transport lists in [`crate::Source::platforms`]: `platform`
    /// as the index `index` lists it, pointing at `manifest`, which the source holds
    /// when `present`.
    ///
    /// ```
    /// use dockhand::{Digest, ListedPlatform, Platform};
    ///
    /// let arm = Platform::parse("linux/arm/v7").unwrap();
    /// let listed = ListedPlatform::new(Digest::of(b"index"), arm, Digest::of(b"m"), false);
    /// assert_eq!(listed.platform.variant.as_deref(), Some("v7"));
    /// assert!(!listed.present);
    /// ```
    pub fn new(index: Digest, platform: Platform, manifest: Digest, present: bool) -> Self {
        ListedPlatform {
            index,
            platform,
            manifest,
            present,
        }
    }
}

/// A multi-platform index (or Docker manifest list) as the source holds it.
///
/// Fields may be added in later versions; a struct literal of it will then have to
/// name them, so prefer changing a value a source read (`..other.clone()`).
#[derive(Clone, Debug)]
pub struct IndexOf {
    /// Its descriptor.
    pub descriptor: Descriptor,
    /// Its bytes, exactly as stored.
    pub bytes: Arc<Vec<u8>>,
    /// The annotations of an index dockhand rebuilds over the images written (when one
    /// of them changed): an edit's. Readers leave it empty; the source's bytes, when
    /// kept, have their own.
    pub annotations: BTreeMap<String, String>,
}

impl Image {
    /// A short human name for messages: the first tag, or the config digest.
    pub fn display_name(&self) -> String {
        match (self.tags.first(), self.ref_names.first()) {
            (Some(t), _) => t.to_string(),
            (None, Some(n)) => n.clone(),
            (None, None) => self.config.digest.to_string(),
        }
    }

    /// Add names after the ones already there, in the order given, skipping names the
    /// image has already: the source's order is kept for messages and outputs.
    pub fn add_names(
        &mut self,
        tags: impl IntoIterator<Item = Reference>,
        ref_names: impl IntoIterator<Item = String>,
    ) {
        // Sets of what is there, so adding n names costs O(n), not O(n * names held).
        let mut have: HashSet<Reference> = self.tags.iter().cloned().collect();
        for tag in tags {
            if have.insert(tag.clone()) {
                self.tags.push(tag);
            }
        }
        let mut have: HashSet<String> = self.ref_names.iter().cloned().collect();
        for name in ref_names {
            if have.insert(name.clone()) {
                self.ref_names.push(name);
            }
        }
    }

    /// Keep only the names `keep_tag` and `keep_ref_name` accept (the OCI ref name
    /// texts of the tags kept stay with them).
    pub fn retain_names(
        &mut self,
        mut keep_tag: impl FnMut(&Reference) -> bool,
        keep_ref_name: impl FnMut(&String) -> bool,
    ) {
        self.tags.retain(&mut keep_tag);
        self.ref_names.retain(keep_ref_name);
        self.oci_ref_names.retain(|tag, _| keep_tag(tag));
    }
}

/// The parts of an image config dockhand reads. The config itself is kept as raw bytes.
#[derive(Debug, Default, Deserialize)]
pub struct ConfigView {
    /// Operating system.
    #[serde(default)]
    pub os: Option<String>,
    /// Architecture.
    #[serde(default)]
    pub architecture: Option<String>,
    /// Variant.
    #[serde(default)]
    pub variant: Option<String>,
    /// Root filesystem description.
    #[serde(default)]
    pub rootfs: Option<RootFs>,
}

/// `rootfs` of an image config.
#[derive(Debug, Default, Deserialize)]
pub struct RootFs {
    /// Must be `layers`.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// Uncompressed layer digests, base first.
    #[serde(default)]
    pub diff_ids: Option<Vec<String>>,
}

impl ConfigView {
    /// Parse config bytes; `file` names them in errors.
    pub fn parse(bytes: &[u8], file: &str) -> Result<ConfigView> {
        parse_json(bytes, file)
    }

    /// The diff_ids, validated. Errors when the config has no usable rootfs.
    pub fn diff_ids(&self, file: &str) -> Result<Vec<Digest>> {
        let rootfs = self
            .rootfs
            .as_ref()
            .ok_or_else(|| Error::malformed(file, "image config has no rootfs"))?;
        if rootfs.kind != "layers" {
            return Err(Error::malformed(
                file,
                format!("rootfs.type is {:?}, expected \"layers\"", rootfs.kind),
            ));
        }
        rootfs
            .diff_ids
            .iter()
            .flatten()
            .map(|d| {
                Digest::parse(d)
                    .map_err(|e| Error::malformed(file, format!("rootfs.diff_ids: {e}")))
            })
            .collect()
    }

    /// The platform the config declares.
    pub fn platform(&self) -> Platform {
        Platform {
            os: self.os.clone().unwrap_or_default(),
            architecture: self.architecture.clone().unwrap_or_default(),
            variant: self.variant.clone().filter(|v| !v.is_empty()),
        }
    }
}

/// Parse JSON metadata, refusing documents nested deeper than [`MAX_JSON_DEPTH`].
pub fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8], file: &str) -> Result<T> {
    check_depth(bytes, file)?;
    serde_json::from_slice(bytes).map_err(|e| {
        Error::malformed(
            file,
            format!("invalid JSON: {}", crate::text::shown(&e.to_string())),
        )
    })
}

fn check_depth(bytes: &[u8], file: &str) -> Result<()> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in bytes {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_JSON_DEPTH {
                    return Err(Error::malformed(
                        file,
                        format!("JSON nested deeper than {MAX_JSON_DEPTH} levels"),
                    ));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}
