//! The library through its public API only: an image whose blobs are not files fits the
//! seam (what a registry source will do), progress is reported, errors name their input
//! as data, and layers read through the API are verified.

use crate::common::*;

use std::io::Read;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use dockhand::{
    convert_with_progress, create_sink, open_layer, open_source, verify, write_tar, Blob,
    ConvertOptions, Descriptor, Digest, Format, Image, ImageSource, Layer, LayerForm, Layout,
    Location, MemoryBlob, NoProgress, Platform, Progress, ReadOptions, Reference, SinkOptions,
    WriteOptions,
};

/// The source at `input`, opened with the default options.
fn opened(input: &str) -> dockhand::Source {
    open_source(&Location::parse(input).unwrap(), &ReadOptions::default()).unwrap()
}

/// A one-layer image held in memory: its blobs are `MemoryBlob`s, not files.
fn image_in_memory() -> Image {
    let mut layer_tar = Vec::new();
    {
        let mut b = tar::Builder::new(&mut layer_tar);
        let mut h = tar::Header::new_ustar();
        h.set_size(5);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "hello", &b"world"[..]).unwrap();
        b.finish().unwrap();
    }
    let diff_id = Digest::of(&layer_tar);
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{diff_id}"]}}}}"#
    )
    .into_bytes();
    let layer = Layer {
        digest: Some(diff_id.clone()),
        size: layer_tar.len() as u64,
        media_type: "application/vnd.oci.image.layer.v1.tar".into(),
        compression: dockhand::Compression::None,
        diff_id: Some(diff_id),
        blob: Some(Arc::new(MemoryBlob::new(Arc::new(layer_tar), "layer")) as Arc<dyn Blob>),
        path: "layer".into(),
    };
    Image {
        tags: vec![Reference::parse("example.com/in/memory:1").unwrap()],
        ref_names: vec![],
        oci_ref_names: Default::default(),
        config: Descriptor {
            media_type: "application/vnd.oci.image.config.v1+json".into(),
            digest: Digest::of(&config),
            size: config.len() as u64,
        },
        config_bytes: Arc::new(config),
        config_path: "config".into(),
        manifest: None,
        manifest_bytes: None,
        platform: Platform::parse("linux/amd64").unwrap(),
        layers: vec![layer],
        artifact: false,
        index: None,
        input: Arc::from("memory"),
        annotations: Default::default(),
    }
}

#[test]
fn an_image_whose_blobs_are_not_files_is_written_by_every_sink() {
    let tmp = tempdir();
    let image = image_in_memory();
    let config = image.config.digest.to_string();
    for (format, name) in [
        (Format::OCI, "oci"),
        (Format::OCI_ARCHIVE, "oci.tar"),
        (Format::DOCKER_ARCHIVE, "docker.tar"),
        (Format::DIR, "dir"),
    ] {
        let dest = tmp.path().join(name);
        let mut sink = create_sink(s(&dest), format, &SinkOptions::default()).unwrap();
        sink.put_images(std::slice::from_ref(&image), &NoProgress)
            .unwrap();
        sink.commit().unwrap();
        let back =
            open_source(&Location::parse(s(&dest)).unwrap(), &ReadOptions::default()).unwrap();
        assert_eq!(back.format(), format, "{name}");
        assert_eq!(back.images()[0].config.digest.to_string(), config, "{name}");
        verify(back.images(), &NoProgress).unwrap();
    }
    // And into any Write, as a tar.
    let (tar, _) = write_tar(
        std::slice::from_ref(&image),
        Layout::DockerSave,
        &WriteOptions::default(),
        Vec::new(),
    )
    .unwrap();
    let file = tmp.path().join("written.tar");
    std::fs::write(&file, tar).unwrap();
    assert_eq!(config_digests(&inspect(s(&file))), [config]);
}

/// Counts what it is told.
#[derive(Default)]
struct Counter {
    started: AtomicUsize,
    done: AtomicUsize,
    bytes: AtomicU64,
}

impl Progress for Counter {
    fn layer_started(&self, _path: &str, _size: u64) {
        self.started.fetch_add(1, Ordering::Relaxed);
    }
    fn advanced(&self, bytes: u64) {
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }
    fn layer_done(&self, _path: &str) {
        self.done.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn progress_is_reported_for_every_layer_written() {
    let f = fixture("docker-save-multi");
    let tmp = tempdir();
    let source = opened(f.input());
    // Layers shared between images are written once.
    let mut distinct: Vec<(String, u64)> = source
        .images()
        .iter()
        .flat_map(|i| i.layers.iter())
        .map(|l| (l.digest.as_ref().unwrap().to_string(), l.size))
        .collect();
    distinct.sort();
    distinct.dedup();
    for to in ["oci", "oci-archive"] {
        let counter = Counter::default();
        let dest = tmp.path().join(to);
        let options = ConvertOptions {
            to: Format::parse(to),
            ..ConvertOptions::default()
        };
        convert_with_progress(f.input(), s(&dest), &options, &counter).unwrap();
        assert_eq!(
            counter.started.load(Ordering::Relaxed),
            distinct.len(),
            "{to}"
        );
        assert_eq!(counter.done.load(Ordering::Relaxed), distinct.len(), "{to}");
        let bytes: u64 = distinct.iter().map(|(_, size)| size).sum();
        assert_eq!(counter.bytes.load(Ordering::Relaxed), bytes, "{to}");
    }
}

#[test]
fn errors_say_which_input_they_concern_as_data() {
    let tmp = tempdir();
    let broken = fixture("broken-diffid");
    let err = dockhand::convert(
        broken.input(),
        s(&tmp.path().join("out")),
        &ConvertOptions::default(),
    )
    .unwrap_err();
    assert_eq!(err.input(), Some(broken.input()));
    assert!(
        matches!(err.without_input(), dockhand::Error::DiffIdMismatch { .. }),
        "{err}"
    );
    // The message names the input once.
    assert_eq!(err.to_string().matches(broken.input()).count(), 1, "{err}");
    let missing = tmp.path().join("missing.tar");
    let err = open_source(
        &Location::parse(s(&missing)).unwrap(),
        &ReadOptions::default(),
    )
    .unwrap_err();
    assert_eq!(err.input(), Some(s(&missing)));
    // A refused destination is no input's fault.
    let file = tmp.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    let err = dockhand::convert(
        fixture("docker-save-basic").input(),
        &format!("oci:{}", s(&file)),
        &ConvertOptions::default(),
    )
    .unwrap_err();
    assert_eq!(err.input(), None, "{err}");
}

#[test]
fn layers_read_through_the_api_are_verified_and_report_their_digests() {
    let f = fixture("skopeo-oci");
    let source = opened(f.input());
    let image = &source.images()[0];
    for layer in &image.layers {
        for form in [LayerForm::Stored, LayerForm::Uncompressed] {
            let mut reader = open_layer(image, layer, form).unwrap();
            assert!(reader.digests().is_none(), "known only at the end");
            let mut bytes = Vec::new();
            reader.read_to_end(&mut bytes).unwrap();
            let digests = reader.digests().unwrap();
            assert_eq!(Some(&digests.stored), layer.digest.as_ref());
            assert_eq!(digests.uncompressed, layer.diff_id);
            let expected = match form {
                LayerForm::Stored => digests.stored.clone(),
                LayerForm::Uncompressed => digests.uncompressed.clone().unwrap(),
                other => panic!("a form this test does not read: {other:?}"),
            };
            assert_eq!(Digest::of(&bytes), expected);
        }
    }
    // A layer whose bytes disagree with its digest fails the read that ends it.
    let mut lying = image.clone();
    lying.layers[0].digest = Some(Digest::of(b"something else"));
    let mut reader = open_layer(&lying, &lying.layers[0], LayerForm::Stored).unwrap();
    let err = reader.read_to_end(&mut Vec::new()).unwrap_err();
    assert!(err.to_string().contains("digest mismatch"), "{err}");
}

/// A transport of the test's own: images kept in memory under a name, their layers
/// copied (verified) into memory blobs, so nothing of the source is kept.
struct MemoryTransport {
    stores: std::sync::Mutex<std::collections::HashMap<String, Vec<Image>>>,
}

static MEMORY: std::sync::LazyLock<MemoryTransport> =
    std::sync::LazyLock::new(|| MemoryTransport {
        stores: Default::default(),
    });

/// What `memory:NAME` is, as a format.
fn memory() -> Format {
    Format::of(&*MEMORY)
}

impl dockhand::Transport for MemoryTransport {
    fn name(&self) -> &'static str {
        "memory"
    }
    fn noun(&self) -> &'static str {
        "a memory store"
    }
    fn syntax(&self) -> &'static str {
        "memory:NAME"
    }
    fn holds_many(&self) -> bool {
        true
    }
    fn open_source(
        &self,
        location: &Location,
        _options: &ReadOptions,
    ) -> dockhand::Result<dockhand::Source> {
        let images = self.stores.lock().unwrap().get(&location.path).cloned();
        let images = images.ok_or_else(|| {
            dockhand::Error::Unsupported(format!("no store named {}", location.path))
        })?;
        Ok(dockhand::Source::new(
            memory(),
            location.path.clone(),
            images,
        ))
    }
    fn create_sink(
        &self,
        location: &Location,
        options: &SinkOptions,
    ) -> dockhand::Result<dockhand::ImageSink<'static>> {
        let destination = MemoryDestination {
            name: location.path.clone(),
            blobs: Default::default(),
            images: Vec::new(),
            named: 0,
        };
        Ok(dockhand::ImageSink::new(
            Box::new(destination),
            options.write.layer_policy()?,
        ))
    }
}

/// A destination at blob level: blobs by digest and each image's manifest as they are
/// put; the commit stores images whose layers are those blobs.
struct MemoryDestination {
    name: String,
    blobs: std::collections::HashMap<Digest, Arc<Vec<u8>>>,
    images: Vec<Image>,
    /// How many images or indexes were named.
    named: usize,
}

impl dockhand::ImageDestination for MemoryDestination {
    fn try_reusing_blob(&mut self, blob: &dockhand::BlobInfo) -> dockhand::Result<Option<u64>> {
        let held = blob.digest.and_then(|digest| self.blobs.get(digest));
        Ok(held.map(|bytes| bytes.len() as u64))
    }
    fn put_blob(
        &mut self,
        blob: &dockhand::BlobInfo,
        data: &mut dyn Read,
    ) -> dockhand::Result<(Digest, u64)> {
        let mut bytes = Vec::new();
        // The pipeline verifies as the blob streams: a lie fails this read.
        data.read_to_end(&mut bytes)
            .map_err(|e| dockhand::Error::io("reading a blob", e))?;
        let digest = blob.digest.cloned().unwrap_or_else(|| Digest::of(&bytes));
        let size = bytes.len() as u64;
        self.blobs.insert(digest.clone(), Arc::new(bytes));
        Ok((digest, size))
    }
    fn put_manifest(&mut self, manifest: &dockhand::ManifestInfo) -> dockhand::Result<()> {
        let Some(image) = manifest.image else {
            return Ok(()); // no index kept
        };
        let mut copy = image.clone();
        for (layer, digest) in copy.layers.iter_mut().zip(manifest.layers) {
            let label = format!("memory:{}/{}", self.name, layer.path);
            layer.blob = Some(Arc::new(MemoryBlob::new(
                Arc::clone(&self.blobs[digest]),
                label,
            )));
        }
        copy.input = Arc::from(format!("memory:{}", self.name).as_str());
        self.images.push(copy);
        Ok(())
    }
    fn put_names(&mut self, _manifest: &Descriptor, _image: &Image) -> dockhand::Result<()> {
        self.named += 1;
        Ok(())
    }
    fn commit(self: Box<Self>) -> dockhand::Result<dockhand::CommitReport> {
        assert_eq!(self.named, self.images.len(), "every image named once");
        MEMORY.stores.lock().unwrap().insert(self.name, self.images);
        Ok(dockhand::CommitReport::default())
    }
}

#[test]
fn a_transport_written_outside_the_library_converts_both_ways() {
    let tmp = tempdir();
    let multi = fixture("docker-save-multi");
    let ids = config_digests(&inspect(multi.input()));
    let into_memory = dockhand::convert_between(
        &Location::parse(multi.input()).unwrap(),
        &Location::new(memory(), "multi"),
        &ConvertOptions::default(),
        &NoProgress,
    )
    .unwrap();
    assert_eq!(
        (into_memory.from, into_memory.to),
        (Some(Format::DOCKER_ARCHIVE), Some(memory()))
    );
    // Nothing shows before the commit, and the store holds copies.
    let held = MEMORY.stores.lock().unwrap()["multi"].clone();
    assert_eq!(held.len(), ids.len());
    assert!(held.iter().flat_map(|i| &i.layers).all(|l| l
        .blob
        .as_ref()
        .unwrap()
        .describe()
        .starts_with("memory:multi/")));
    // Out again, into an OCI layout the real tools read: the same image IDs.
    let out = tmp.path().join("layout");
    let report = dockhand::convert_between(
        &Location::new(memory(), "multi"),
        &Location::new(Format::OCI, s(&out)),
        &ConvertOptions::default(),
        &NoProgress,
    )
    .unwrap();
    assert_eq!(report.from, Some(memory()));
    assert_eq!(config_digests(&inspect(s(&out))), ids);
    let back = open_source(&Location::parse(s(&out)).unwrap(), &ReadOptions::default()).unwrap();
    verify(back.images(), &NoProgress).unwrap();
    // A store that does not exist is the transport's own error, named.
    let err = dockhand::convert_between(
        &Location::new(memory(), "nothing"),
        &Location::new(Format::OCI, s(&tmp.path().join("none"))),
        &ConvertOptions::default(),
        &NoProgress,
    )
    .unwrap_err();
    assert!(err.to_string().contains("no store named nothing"), "{err}");
    assert!(!tmp.path().join("none").exists());
}

/// The corpus's multi-platform OCI layout, read with every platform (`--all`).
fn every_platform_of_the_corpus_index() -> Option<dockhand::Source> {
    let layout = corpus_item("stereoscope/multiplatform_oci_dir")?;
    let options = ReadOptions {
        all_platforms: true,
        ..Default::default()
    };
    Some(open_source(&Location::parse(s(&layout)).unwrap(), &options).unwrap())
}

#[test]
fn a_source_answers_manifests_and_indexes_by_digest() {
    let Some(source) = every_platform_of_the_corpus_index() else {
        return;
    };
    assert!(source.images.len() > 1, "{}", source.images.len());
    let index = source.images[0].index.clone().expect("read from an index");
    let found = source.manifest(&index.descriptor.digest).unwrap().unwrap();
    assert_eq!(Digest::of(&found.bytes), index.descriptor.digest);
    assert_eq!(found.media_type, index.descriptor.media_type);
    let listed = String::from_utf8_lossy(&found.bytes);
    for image in &source.images {
        // Every member by its own digest, which the index lists.
        let member = image.manifest.clone().unwrap();
        let found = source.manifest(&member.digest).unwrap().unwrap();
        assert_eq!(Digest::of(&found.bytes), member.digest);
        assert!(listed.contains(&member.digest.to_string()), "{listed}");
    }
}

/// What a destination was asked, in order: the calls of the blob-level interface.
#[derive(Default)]
struct Calls {
    /// `reuse DIGEST`, `blob DIGEST ROLE`, `manifest DIGEST member|top`, `names DIGEST`.
    log: Vec<String>,
    blobs: std::collections::HashMap<Digest, Vec<u8>>,
    manifests: Vec<(Vec<u8>, String)>,
}

/// A destination that records every call into `calls` and holds what it is given.
struct Recording(Arc<std::sync::Mutex<Calls>>);

impl dockhand::ImageDestination for Recording {
    fn try_reusing_blob(&mut self, blob: &dockhand::BlobInfo) -> dockhand::Result<Option<u64>> {
        let mut calls = self.0.lock().unwrap();
        let digest = blob.digest.expect("a layer kept as stored has its digest");
        calls.log.push(format!("reuse {digest}"));
        Ok(calls.blobs.get(digest).map(|b| b.len() as u64))
    }
    fn put_blob(
        &mut self,
        blob: &dockhand::BlobInfo,
        data: &mut dyn Read,
    ) -> dockhand::Result<(Digest, u64)> {
        let mut bytes = Vec::new();
        data.read_to_end(&mut bytes)
            .map_err(|e| dockhand::Error::io("reading a blob", e))?;
        let digest = Digest::of(&bytes);
        assert_eq!(
            blob.digest,
            Some(&digest),
            "the bytes put are the blob named"
        );
        let role = match blob.role {
            dockhand::BlobRole::Config => "config".to_string(),
            dockhand::BlobRole::Layer { index, .. } => format!("layer{index}"),
            _ => "other".to_string(),
        };
        let mut calls = self.0.lock().unwrap();
        calls.log.push(format!("blob {digest} {role}"));
        let size = bytes.len() as u64;
        calls.blobs.insert(digest.clone(), bytes);
        Ok((digest, size))
    }
    fn put_manifest(&mut self, manifest: &dockhand::ManifestInfo) -> dockhand::Result<()> {
        let mut calls = self.0.lock().unwrap();
        assert_eq!(Digest::of(manifest.bytes), manifest.descriptor.digest);
        if let Some(config) = manifest.config {
            assert!(calls.blobs.contains_key(config), "its config was put first");
            for layer in manifest.layers {
                assert!(calls.blobs.contains_key(layer), "its layers were put first");
            }
        }
        let kind = if manifest.listed_by_index {
            "member"
        } else {
            "top"
        };
        calls
            .log
            .push(format!("manifest {} {kind}", manifest.descriptor.digest));
        calls.manifests.push((
            manifest.bytes.to_vec(),
            manifest.descriptor.media_type.clone(),
        ));
        Ok(())
    }
    fn put_names(&mut self, manifest: &Descriptor, _image: &Image) -> dockhand::Result<()> {
        let mut calls = self.0.lock().unwrap();
        calls.log.push(format!("names {}", manifest.digest));
        Ok(())
    }
    fn commit(self: Box<Self>) -> dockhand::Result<dockhand::CommitReport> {
        self.0.lock().unwrap().log.push("commit".into());
        Ok(dockhand::CommitReport::default())
    }
}

/// Put `images` into a recording destination, keeping layers as stored.
fn record(images: &[Image]) -> Calls {
    let calls = Arc::new(std::sync::Mutex::new(Calls::default()));
    let destination = Recording(Arc::clone(&calls));
    let mut sink = dockhand::ImageSink::new(Box::new(destination), Default::default());
    sink.put_images(images, &NoProgress).unwrap();
    sink.commit().unwrap();
    Arc::try_unwrap(calls).ok().unwrap().into_inner().unwrap()
}

#[test]
fn a_destination_is_asked_for_each_blob_given_each_once_then_manifests_then_names() {
    let multi = fixture("docker-save-multi");
    let source = opened(multi.input());
    let calls = record(&source.images);
    let count = |prefix: &str| calls.log.iter().filter(|l| l.starts_with(prefix)).count();
    // Asked about every layer and config of every image, shared ones too...
    let blobs_of_images: usize = source.images.iter().map(|i| i.layers.len() + 1).sum();
    assert_eq!(count("reuse "), blobs_of_images, "{:#?}", calls.log);
    // ...and given each distinct blob once.
    let distinct: std::collections::HashSet<Digest> = source
        .images
        .iter()
        .flat_map(|i| i.layers.iter().map(|l| l.digest.clone().unwrap()))
        .chain(source.images.iter().map(|i| i.config.digest.clone()))
        .collect();
    assert_eq!(count("blob "), distinct.len(), "{:#?}", calls.log);
    assert!(
        distinct.len() < blobs_of_images,
        "the fixture shares a layer"
    );
    // One manifest and one naming per image, all before the commit, which is last.
    assert_eq!(count("manifest "), source.images.len());
    assert_eq!(count("names "), source.images.len());
    assert_eq!(calls.log.last().unwrap(), "commit");
    // A docker-save source has no manifests: OCI ones are built over the blobs put.
    for (bytes, media_type) in &calls.manifests {
        assert_eq!(media_type, "application/vnd.oci.image.manifest.v1+json");
        let doc: serde_json::Value = serde_json::from_slice(bytes).unwrap();
        for layer in doc["layers"].as_array().unwrap() {
            let digest = Digest::parse(layer["digest"].as_str().unwrap()).unwrap();
            assert_eq!(
                calls.blobs[&digest].len() as u64,
                layer["size"].as_u64().unwrap()
            );
        }
    }
}

#[test]
fn an_index_kept_whole_is_put_after_its_members_with_its_exact_bytes() {
    let Some(source) = every_platform_of_the_corpus_index() else {
        return;
    };
    let index = source.images[0].index.clone().expect("read from an index");
    let calls = record(&source.images);
    // Each member by its own manifest bytes, as an index member; then the index, the
    // source's bytes and media type; then its one naming.
    let manifests: Vec<&String> = calls
        .log
        .iter()
        .filter(|l| l.starts_with("manifest "))
        .collect();
    assert_eq!(manifests.len(), source.images.len() + 1, "{:#?}", calls.log);
    for (image, line) in source.images.iter().zip(&manifests) {
        let member = image.manifest.as_ref().unwrap();
        assert_eq!(**line, format!("manifest {} member", member.digest));
    }
    assert_eq!(
        *manifests.last().unwrap(),
        &format!("manifest {} top", index.descriptor.digest)
    );
    let (bytes, media_type) = calls.manifests.last().unwrap();
    assert_eq!(
        (bytes, media_type),
        (&*index.bytes, &index.descriptor.media_type)
    );
    for (image, (bytes, _)) in source.images.iter().zip(&calls.manifests) {
        assert_eq!(
            Some(bytes),
            image.manifest_bytes.as_deref(),
            "kept byte for byte"
        );
    }
    let names: Vec<&String> = calls
        .log
        .iter()
        .filter(|l| l.starts_with("names "))
        .collect();
    assert_eq!(names, [&format!("names {}", index.descriptor.digest)]);
}

/// The multi-platform layout of the corpus (linux/amd64 and linux/arm64 under one
/// index), with the digests of its index and of each member's manifest.
struct TwoPlatforms {
    layout: std::path::PathBuf,
    index: Digest,
    amd64: Digest,
    arm64: Digest,
}

impl TwoPlatforms {
    /// What `source`, read for linux/amd64, answers for the arm64 member it did not
    /// select: checked to be those bytes.
    fn other_member(&self, source: &dockhand::Source) -> dockhand::ManifestBytes {
        let selected = source.images[0].manifest.as_ref().unwrap();
        assert_eq!(selected.digest, self.amd64, "{}", source.input());
        let arm64 = source
            .manifest(&self.arm64)
            .unwrap()
            .expect("the arm64 member");
        assert_eq!(Digest::of(&arm64.bytes), self.arm64, "{}", source.input());
        arm64
    }
}

fn two_platforms() -> Option<TwoPlatforms> {
    let layout = corpus_item("stereoscope/multiplatform_oci_dir")?;
    let top: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let index = Digest::parse(top["manifests"][0]["digest"].as_str().unwrap()).unwrap();
    let blob = |digest: &Digest| layout.join("blobs/sha256").join(digest.hex());
    let members: serde_json::Value =
        serde_json::from_slice(&std::fs::read(blob(&index)).unwrap()).unwrap();
    let member = |arch: &str| {
        let entry = members["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["platform"]["architecture"] == arch)
            .unwrap_or_else(|| panic!("no {arch} member in {members}"));
        Digest::parse(entry["digest"].as_str().unwrap()).unwrap()
    };
    let (amd64, arm64) = (member("amd64"), member("arm64"));
    Some(TwoPlatforms {
        layout,
        index,
        amd64,
        arm64,
    })
}

fn on_amd64() -> ReadOptions {
    ReadOptions {
        platform: Some(Platform::parse("linux/amd64").unwrap()),
        ..Default::default()
    }
}

#[test]
fn a_layout_read_for_one_platform_answers_the_other_members_manifest() {
    let Some(two) = two_platforms() else {
        return;
    };
    let tmp = tempdir();
    // An archive of the same layout: its blobs are tar entries, not files.
    let archive = tmp.path().join("multi.tar");
    ok(&[
        "convert",
        "-q",
        "--all",
        s(&two.layout),
        &format!("oci-archive:{}", s(&archive)),
    ]);
    for input in [
        format!("oci:{}", s(&two.layout)),
        format!("oci-archive:{}", s(&archive)),
    ] {
        let source = open_source(&Location::parse(&input).unwrap(), &on_amd64()).unwrap();
        assert_eq!(source.images.len(), 1, "{input}");
        // Neither the arm64 member nor the index was kept by the selection...
        assert!(source.images[0].index.is_none());
        // ...yet both are answered, by digest, exactly as the layout holds them.
        let arm64 = two.other_member(&source);
        assert_eq!(
            arm64.media_type,
            "application/vnd.oci.image.manifest.v1+json"
        );
        let arm64_doc: serde_json::Value = serde_json::from_slice(&arm64.bytes).unwrap();
        assert!(arm64_doc["layers"].is_array(), "{arm64_doc}");
        let index = source.manifest(&two.index).unwrap().expect("the index");
        assert_eq!(Digest::of(&index.bytes), two.index);
        assert_eq!(index.media_type, "application/vnd.oci.image.index.v1+json");
        // A config is a blob of the layout, not a manifest; an unknown digest is absent.
        let config = source.images[0].config.digest.clone();
        assert!(source.manifest(&config).unwrap().is_none(), "{input}");
        assert!(source.manifest(&Digest::of(b"absent")).unwrap().is_none());
    }
    // A `dir:` layout of the list (as skopeo copies one with --all) keeps each member
    // as `<hex>.manifest.json`.
    if have_tool(&test_name(), "skopeo") {
        let dir = tmp.path().join("dir");
        skopeo(
            tmp.path(),
            &[
                "--insecure-policy",
                "copy",
                "-q",
                "--all",
                &format!("oci:{}:latest", s(&two.layout)),
                &format!("dir:{}", s(&dir)),
            ],
        );
        let location = Location::parse(&format!("dir:{}", s(&dir))).unwrap();
        let source = open_source(&location, &on_amd64()).unwrap();
        two.other_member(&source);
        assert!(source.manifest(&Digest::of(b"absent")).unwrap().is_none());
    }
    // A member whose bytes were changed in place is refused, naming the file.
    let copy = tmp.path().join("copy");
    ok(&[
        "convert",
        "-q",
        "--all",
        s(&two.layout),
        &format!("oci:{}", s(&copy)),
    ]);
    let member = copy.join("blobs/sha256").join(two.arm64.hex());
    let mut bytes = std::fs::read(&member).unwrap();
    bytes.push(b'\n');
    std::fs::write(&member, bytes).unwrap();
    let source = open_source(
        &Location::parse(&format!("oci:{}", s(&copy))).unwrap(),
        &on_amd64(),
    )
    .unwrap();
    let err = source.manifest(&two.arm64).unwrap_err();
    assert!(
        matches!(err.without_input(), dockhand::Error::DigestMismatch { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains(two.arm64.hex()), "{err}");
}

#[test]
fn a_docker_archive_has_no_manifests_of_its_own() {
    let input = fixtures_dir().join("docker-save-basic/input.tar");
    let source = open_source(
        &Location::parse(s(&input)).unwrap(),
        &ReadOptions::default(),
    )
    .unwrap();
    let image = &source.images[0];
    assert!(image.manifest.is_none());
    assert!(source.manifest(&image.config.digest).unwrap().is_none());
    // Its blobs are answered all the same: the config, and each layer.
    let config = source.blob(&image.config.digest).unwrap();
    assert_eq!(read_all(&*config, 0), *image.config_bytes);
}

/// Every byte of `blob` from `start` on.
fn read_all(blob: &dyn Blob, start: u64) -> Vec<u8> {
    let mut bytes = Vec::new();
    blob.open_at(start)
        .unwrap()
        .read_to_end(&mut bytes)
        .unwrap();
    bytes
}

/// Registry options for a plain-HTTP registry on 127.0.0.1, reading no credentials of
/// the machine's and writing no cache.
fn plain_registry(tmp: &std::path::Path) -> dockhand::RegistryOptions {
    let authfile = tmp.join("auth.json");
    std::fs::write(&authfile, r#"{"auths":{}}"#).unwrap();
    dockhand::RegistryOptions {
        authfile: Some(authfile),
        tls_verify: false,
        no_cache: true,
        retry_times: 0,
        ..Default::default()
    }
}

#[test]
fn a_registry_read_for_one_platform_answers_the_other_members_manifest_and_its_blobs() {
    let Some(two) = two_platforms() else {
        return;
    };
    let Some(fx) = crate::common::registry::RegistryFixture::builder().start() else {
        return;
    };
    let t = fx.dir();
    let remote = fx.remote("plat/multi:1");
    let pushed = crate::common::registry::isolated_dockhand(
        t,
        &[
            "convert",
            "--tls-verify=false",
            "-q",
            "--all",
            s(&two.layout),
            &remote,
        ],
    )
    .output()
    .unwrap();
    assert!(
        pushed.status.success(),
        "{}",
        String::from_utf8_lossy(&pushed.stderr)
    );
    let options = ReadOptions {
        registry: plain_registry(t),
        ..on_amd64()
    };
    let source = open_source(&Location::parse(&remote).unwrap(), &options).unwrap();
    assert_eq!(source.images.len(), 1);
    let arm64 = two.other_member(&source);
    assert_eq!(
        *arm64.bytes,
        std::fs::read(two.layout.join("blobs/sha256").join(two.arm64.hex())).unwrap()
    );
    assert_eq!(
        arm64.media_type,
        "application/vnd.oci.image.manifest.v1+json"
    );
    let index = source.manifest(&two.index).unwrap().expect("the index");
    assert_eq!(Digest::of(&index.bytes), two.index);
    assert_eq!(index.media_type, "application/vnd.oci.image.index.v1+json");
    // The registry has no manifest by an unknown digest: absent, not an error.
    assert!(source.manifest(&Digest::of(b"absent")).unwrap().is_none());

    // A layer, whole and from an offset (a `Range` request): its bytes as pushed.
    let layer = source.images[0]
        .layers
        .iter()
        .max_by_key(|layer| layer.size)
        .unwrap();
    let digest = layer.digest.clone().unwrap();
    let blob = source.blob(&digest).expect("the layer");
    let whole = read_all(&*blob, 0);
    assert_eq!(
        (Digest::of(&whole), whole.len() as u64),
        (digest.clone(), layer.size)
    );
    let from = layer.size / 2;
    assert!(from > 0, "a layer of {} bytes", layer.size);
    assert_eq!(read_all(&*blob, from), whole[from as usize..]);
    let config = source
        .blob(&source.images[0].config.digest)
        .expect("the config");
    assert_eq!(read_all(&*config, 0), *source.images[0].config_bytes);
    // Only the selected image's blobs: the arm64 config is not among them.
    let arm64_doc: serde_json::Value = serde_json::from_slice(&arm64.bytes).unwrap();
    let arm64_config = Digest::parse(arm64_doc["config"]["digest"].as_str().unwrap()).unwrap();
    assert!(source.blob(&arm64_config).is_none());
}

#[test]
fn a_registry_answering_other_bytes_for_a_member_is_refused() {
    use crate::common::hostile::{Answer, Log, Server};
    let Some(two) = two_platforms() else {
        return;
    };
    let tmp = tempdir();
    // Serves the layout's index under tag 1 and every manifest and blob by digest,
    // except that the arm64 member's digest gets the amd64 member's bytes.
    let blobs = two.layout.join("blobs/sha256");
    let (index, arm64, amd64) = (two.index.clone(), two.arm64.clone(), two.amd64.clone());
    let log = Log::default();
    let registry = Server::start("registry", &log, move |r| {
        let path = r.path();
        if path == "/v2/" {
            return Answer::bytes(200, "{}");
        }
        let (kind, reference) = match path
            .strip_prefix("/v2/app/")
            .and_then(|p| p.split_once('/'))
        {
            Some(found) => found,
            None => return Answer::new(404),
        };
        let digest = match (kind, reference) {
            ("manifests", "1") => index.clone(),
            (_, text) => match Digest::parse(text) {
                Ok(digest) if digest == arm64 && kind == "manifests" => amd64.clone(),
                Ok(digest) => digest,
                Err(_) => return Answer::new(404),
            },
        };
        match std::fs::read(blobs.join(digest.hex())) {
            Ok(bytes) if kind == "manifests" => {
                let media_type = if digest == index {
                    "application/vnd.oci.image.index.v1+json"
                } else {
                    "application/vnd.oci.image.manifest.v1+json"
                };
                Answer::bytes(200, bytes).header("Content-Type", media_type)
            }
            Ok(bytes) => Answer::bytes(200, bytes),
            Err(_) => Answer::new(404),
        }
    });
    let options = ReadOptions {
        registry: plain_registry(tmp.path()),
        ..on_amd64()
    };
    let remote = format!("docker://{}/app:1", registry.addr);
    let source = open_source(&Location::parse(&remote).unwrap(), &options).unwrap();
    assert_eq!(
        source.images[0].manifest.as_ref().unwrap().digest,
        two.amd64
    );
    // The selected member is served honestly and answered...
    assert!(source.manifest(&two.amd64).unwrap().is_some());
    // ...the other one is not what its digest names: refused, saying so.
    let err = source.manifest(&two.arm64).unwrap_err();
    let (expected, actual) = match err.without_input() {
        dockhand::Error::DigestMismatch {
            expected, actual, ..
        } => (expected.clone(), actual.clone()),
        other => panic!("not a digest mismatch: {other:?}"),
    };
    assert_eq!((expected, actual), (two.arm64.clone(), two.amd64.clone()));
    assert!(
        log.to("registry")
            .iter()
            .any(|r| r.path() == format!("/v2/app/manifests/{}", two.arm64)),
        "the member was asked for by digest"
    );
}
