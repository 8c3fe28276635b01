//! Shared helpers of the dockhand fuzz targets: building small, valid image trees
//! around a fuzzed document, and driving a [`Source`] through everything the CLI does
//! with one (inspect, verify, every writer).
//!
//! The property checked everywhere: no panic, no hang, no huge allocation. Errors are
//! the expected outcome for garbage. On top of that, when an input reads, verifies and
//! writes cleanly, what dockhand wrote must read back as the same images with the same
//! names (set `DOCKHAND_FUZZ_NO_ROUNDTRIP=1` to turn that check off, or
//! `DOCKHAND_FUZZ_NO_ROUNDTRIP=names` to compare images but not names).

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{Seek, Write};
use std::sync::OnceLock;

use dockhand::fuzzing::{FileTree, TarIndex};
use dockhand::{write_tar, DockerLayout, Layout, ReadOptions, Source, WriteOptions};
use dockhand::{inspect_json, verify, write_json};
use dockhand::Digest;
use dockhand::Image;

/// Largest file the fuzz process may write (temp files included): a decompression bomb
/// then ends in an I/O error after this many bytes instead of filling the disk.
pub const MAX_FILE_SIZE: u64 = 512 << 20;

/// Once per process: cap file sizes (see [`MAX_FILE_SIZE`]) and make an over-limit
/// write fail with EFBIG instead of killing the process with SIGXFSZ.
pub fn init() {
    // SAFETY: plain libc calls with valid arguments, made before any other thread
    // of the target runs.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        let limit = libc::rlimit {
            rlim_cur: MAX_FILE_SIZE,
            rlim_max: MAX_FILE_SIZE,
        };
        libc::setrlimit(libc::RLIMIT_FSIZE, &limit);
    }
}

/// An anonymous temp file holding `bytes`.
pub fn temp_with(bytes: &[u8]) -> File {
    let mut f = tempfile::tempfile().expect("creating a temp file");
    f.write_all(bytes).expect("writing a temp file");
    f.rewind().expect("rewinding a temp file");
    f
}

/// Index `bytes` as a tar file.
pub fn index(bytes: &[u8], name: &str) -> dockhand::Result<TarIndex> {
    TarIndex::new(temp_with(bytes), name)
}

/// Read a tar held in memory as an image source.
pub fn read_tar(bytes: &[u8], name: &str) -> dockhand::Result<Source> {
    let idx = index(bytes, name)?;
    dockhand::fuzzing::read_tree(Box::new(idx), &ReadOptions::default())
}

/// What the round trip compares, from `DOCKHAND_FUZZ_NO_ROUNDTRIP`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum RoundTrip {
    Off,
    ImagesOnly,
    Full,
}

fn roundtrip_mode() -> RoundTrip {
    static MODE: OnceLock<RoundTrip> = OnceLock::new();
    *MODE.get_or_init(|| match std::env::var("DOCKHAND_FUZZ_NO_ROUNDTRIP") {
        Err(_) => RoundTrip::Full,
        Ok(v) if v == "names" => RoundTrip::ImagesOnly,
        Ok(_) => RoundTrip::Off,
    })
}

/// Everything the CLI does with a source: inspect, verify, convert to every format.
pub fn exercise(source: &Source) {
    let images = &source.images;
    let all: Vec<usize> = (0..images.len()).collect();
    let _ = write_json(&inspect_json(source, &all), std::io::sink());
    // What the CLI's text tables read (the tables themselves live in the binary).
    let _ = dockhand::by_id(source, &all);
    let _ = write_json(&dockhand::platforms_json(source), std::io::sink());
    for image in images {
        let _ = (dockhand::chain_ids(image), dockhand::ConfigSummary::of(image));
    }
    let verified = verify(images, &dockhand::NoProgress).is_ok();

    let legacy = WriteOptions::default();
    let hybrid = WriteOptions {
        docker_layout: Some(DockerLayout::Hybrid),
        ..WriteOptions::default()
    };
    let written = |layout, options: &WriteOptions| {
        write_tar(images, layout, options, Vec::new())
            .ok()
            .map(|(bytes, _)| bytes)
    };
    let oci_out = written(Layout::Oci, &legacy);
    let docker_out = written(Layout::DockerSave, &legacy);
    let _ = written(Layout::DockerSave, &hybrid);
    // Layers compressed anew: the compressors on whatever the reader let through.
    let zstd = WriteOptions {
        layer_compression: dockhand::LayerCompression::Zstd,
        ..WriteOptions::default()
    };
    let gzip = WriteOptions {
        layer_compression: dockhand::LayerCompression::Gzip,
        ..WriteOptions::default()
    };
    let _ = written(Layout::Oci, &zstd);
    let _ = written(Layout::Oci, &gzip);
    if let Some(first) = images.first() {
        let _ = write_tar(
            std::slice::from_ref(first),
            Layout::Dir,
            &legacy,
            std::io::sink(),
        );
    }

    if verified && roundtrip_mode() != RoundTrip::Off {
        if let Some(bytes) = oci_out {
            roundtrip(images, &bytes, "written oci-archive");
        }
        if let Some(bytes) = docker_out {
            roundtrip(images, &bytes, "written docker-archive");
        }
    }
}

/// What must survive a conversion: the image IDs, the diff_ids of each, and the names.
#[derive(Debug, PartialEq, Eq)]
struct Summary {
    images: BTreeSet<(String, Vec<Option<String>>)>,
    tags: BTreeSet<String>,
}

fn summary(images: &[Image], with_names: bool) -> Summary {
    Summary {
        images: images
            .iter()
            .map(|i| {
                (
                    i.config.digest.to_string(),
                    i.layers
                        .iter()
                        .map(|l| l.diff_id.as_ref().map(Digest::to_string))
                        .collect(),
                )
            })
            .collect(),
        tags: if with_names {
            images
                .iter()
                .flat_map(|i| i.tags.iter().map(|t| t.to_string()))
                .collect()
        } else {
            BTreeSet::new()
        },
    }
}

/// Read `bytes` (written by dockhand from `images`) back and compare.
fn roundtrip(images: &[Image], bytes: &[u8], what: &str) {
    let back = match read_tar(bytes, what) {
        Ok(s) => s,
        Err(e) => panic!("round trip: dockhand cannot read its own {what}: {e}"),
    };
    if let Err(e) = verify(&back.images, &dockhand::NoProgress) {
        panic!("round trip: {what} does not verify: {e}");
    }
    let names = roundtrip_mode() == RoundTrip::Full;
    let expected = summary(images, names);
    let actual = summary(&back.images, names);
    assert_eq!(
        expected, actual,
        "round trip: {what} holds other images or names"
    );
}

// ---------------------------------------------------------------------------------
// Small valid trees built around a fuzzed document.
// ---------------------------------------------------------------------------------

/// A blob: bytes and their digest.
#[derive(Clone)]
pub struct Blob {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// Their sha256.
    pub digest: Digest,
}

impl Blob {
    fn new(bytes: Vec<u8>) -> Blob {
        let digest = Digest::of(&bytes);
        Blob { bytes, digest }
    }
    /// The bare hex digest.
    pub fn hex(&self) -> &str {
        self.digest.hex()
    }
    /// `sha256:<hex>`.
    pub fn id(&self) -> String {
        self.digest.to_string()
    }
    /// An OCI descriptor of this blob as JSON text.
    pub fn desc(&self, media_type: &str) -> String {
        format!(
            r#"{{"mediaType":"{media_type}","digest":"{}","size":{}}}"#,
            self.id(),
            self.bytes.len()
        )
    }
}

fn header(kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h
}

/// Deterministic tar entries.
struct TarOut(tar::Builder<Vec<u8>>);

impl TarOut {
    fn new(prefix: Vec<u8>) -> TarOut {
        TarOut(tar::Builder::new(prefix))
    }
    fn file(&mut self, path: &str, data: &[u8]) -> &mut Self {
        let mut h = header(tar::EntryType::Regular, data.len() as u64, 0o644);
        self.0
            .append_data(&mut h, path, data)
            .expect("building a tar in memory");
        self
    }
    fn dir(&mut self, path: &str) -> &mut Self {
        let mut h = header(tar::EntryType::Directory, 0, 0o755);
        self.0
            .append_data(&mut h, path, std::io::empty())
            .expect("building a tar in memory");
        self
    }
    fn link(&mut self, kind: tar::EntryType, path: &str, target: &str) -> &mut Self {
        let mut h = header(kind, 0, 0o777);
        self.0
            .append_link(&mut h, path, target)
            .expect("building a tar in memory");
        self
    }
    /// The entries so far, without the end-of-archive marker.
    fn entries(self) -> Vec<u8> {
        let mut v = self.0.into_inner().expect("building a tar in memory");
        v.truncate(v.len() - 1024);
        v
    }
    /// The whole archive.
    fn finish(self) -> Vec<u8> {
        self.0.into_inner().expect("building a tar in memory")
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).expect("gzip in memory");
    e.finish().expect("gzip in memory")
}

fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 3).expect("zstd in memory")
}

/// The blobs both trees are made of.
pub struct Blobs {
    /// An uncompressed layer (a tar holding one file).
    pub layer: Blob,
    /// The same layer gzip-compressed.
    pub layer_gz: Blob,
    /// The same layer zstd-compressed.
    pub layer_zst: Blob,
    /// A linux/amd64 config with one layer.
    pub config: Blob,
    /// A linux/arm64/v8 config with two (identical) layers.
    pub config2: Blob,
    /// A v1 layer id (64 hex), for legacy directories.
    pub v1id: String,
    /// An artifact config (not an image config).
    pub artifact_config: Blob,
    /// An artifact's payload.
    pub artifact_data: Blob,
}

/// The shared blobs, built once.
pub fn blobs() -> &'static Blobs {
    static B: OnceLock<Blobs> = OnceLock::new();
    B.get_or_init(|| {
        let mut t = TarOut::new(Vec::new());
        t.dir("etc/").file("etc/hello.txt", b"hello from the fuzz layer\n");
        let layer = Blob::new(t.finish());
        let layer_gz = Blob::new(gzip(&layer.bytes));
        let layer_zst = Blob::new(zstd(&layer.bytes));
        let config = Blob::new(
            format!(
                r#"{{"architecture":"amd64","os":"linux","config":{{"Cmd":["/bin/sh"]}},"rootfs":{{"type":"layers","diff_ids":["{}"]}},"history":[{{"created_by":"fuzz"}}]}}"#,
                layer.id()
            )
            .into_bytes(),
        );
        let config2 = Blob::new(
            format!(
                r#"{{"architecture":"arm64","variant":"v8","os":"linux","rootfs":{{"type":"layers","diff_ids":["{0}","{0}"]}}}}"#,
                layer.id()
            )
            .into_bytes(),
        );
        let v1id = Digest::of(b"fuzz v1 layer").hex().to_string();
        Blobs {
            layer,
            layer_gz,
            layer_zst,
            config,
            config2,
            v1id,
            artifact_config: Blob::new(br#"{"name":"fuzz-artifact"}"#.to_vec()),
            artifact_data: Blob::new(b"artifact payload\n".to_vec()),
        }
    })
}

/// The fixed part of the docker-save tree (everything but manifest.json): configs and
/// layers under every name some producer uses, so that a manifest.json naming any of
/// them reaches deep code.
fn docker_prefix() -> &'static [u8] {
    static P: OnceLock<Vec<u8>> = OnceLock::new();
    P.get_or_init(|| {
        let b = blobs();
        let mut t = TarOut::new(Vec::new());
        t.file("config.json", &b.config.bytes)
            .file("config2.json", &b.config2.bytes)
            .file(&format!("{}.json", b.config.hex()), &b.config.bytes)
            // go-containerregistry names the config `sha256:<hex>`.
            .file(&format!("sha256:{}", b.config.hex()), &b.config.bytes)
            .dir("blobs/")
            .dir("blobs/sha256/")
            .file(&format!("blobs/sha256/{}", b.config.hex()), &b.config.bytes)
            .file("layer.tar", &b.layer.bytes)
            .file("layer.tar.gz", &b.layer_gz.bytes)
            .file(&format!("blobs/sha256/{}", b.layer.hex()), &b.layer.bytes)
            .file(
                &format!("blobs/sha256/{}", b.layer_gz.hex()),
                &b.layer_gz.bytes,
            )
            .file(&format!("{}.tar.gz", b.layer_gz.hex()), &b.layer_gz.bytes)
            // skopeo: `<diffid>.tar` at the root, legacy dirs link to it.
            .link(
                tar::EntryType::Link,
                &format!("{}.tar", b.layer.hex()),
                "layer.tar",
            )
            .dir(&format!("{}/", b.v1id))
            .file(&format!("{}/VERSION", b.v1id), b"1.0")
            .file(
                &format!("{}/json", b.v1id),
                format!(r#"{{"id":"{}","os":"linux"}}"#, b.v1id).as_bytes(),
            )
            .link(
                tar::EntryType::Symlink,
                &format!("{}/layer.tar", b.v1id),
                "../layer.tar",
            )
            .file(
                "repositories",
                format!(r#"{{"fuzz":{{"latest":"{}"}}}}"#, b.v1id).as_bytes(),
            )
            // containers/image dir: blobs by bare hex.
            .file(b.config.hex(), &b.config.bytes)
            .file(b.layer_gz.hex(), &b.layer_gz.bytes)
            .file(&format!("{}.tar", b.layer_zst.hex()), &b.layer_zst.bytes)
            .file(
                &format!("{}.manifest.json", dir_list_child().hex()),
                &dir_list_child().bytes,
            );
        t.entries()
    })
}

/// The per-instance manifest a `dir:` list copy (`--all`) holds as `<hex>.manifest.json`.
fn dir_list_child() -> &'static Blob {
    static M: OnceLock<Blob> = OnceLock::new();
    M.get_or_init(|| {
        let b = blobs();
        Blob::new(
            format!(
                r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[{}]}}"#,
                b.config.desc("application/vnd.oci.image.config.v1+json"),
                b.layer_gz.desc("application/vnd.oci.image.layer.v1.tar+gzip")
            )
            .into_bytes(),
        )
    })
}

/// A docker-save tar whose manifest.json is `manifest`.
pub fn docker_tar(manifest: &[u8]) -> Vec<u8> {
    let mut t = TarOut::new(docker_prefix().to_vec());
    t.file("manifest.json", manifest);
    t.finish()
}

/// The fixed blobs of the OCI tree: manifests and indexes over [`blobs`].
pub struct OciBlobs {
    /// OCI manifest: config (amd64) + gzip layer.
    pub manifest_oci: Blob,
    /// Docker schema2 manifest: config (amd64) + uncompressed layer.
    pub manifest_docker: Blob,
    /// OCI manifest: config2 (arm64/v8) + zstd and uncompressed layers.
    pub manifest_arm: Blob,
    /// An artifact manifest.
    pub manifest_artifact: Blob,
    /// A manifest whose layer blob is absent (foreign layer).
    pub manifest_foreign: Blob,
    /// An OCI index: arm64, amd64 and an attestation.
    pub index_nested: Blob,
    /// A Docker manifest list holding the docker manifest.
    pub docker_list: Blob,
}

/// The OCI tree's manifests and indexes, built once.
pub fn oci_blobs() -> &'static OciBlobs {
    static O: OnceLock<OciBlobs> = OnceLock::new();
    O.get_or_init(|| {
        let b = blobs();
        const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
        let manifest_oci = Blob::new(
            format!(
                r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[{}]}}"#,
                b.config.desc(OCI_CONFIG),
                b.layer_gz.desc("application/vnd.oci.image.layer.v1.tar+gzip")
            )
            .into_bytes(),
        );
        let manifest_docker = Blob::new(
            format!(
                r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{},"layers":[{}]}}"#,
                b.config.desc("application/vnd.docker.container.image.v1+json"),
                b.layer.desc("application/vnd.docker.image.rootfs.diff.tar")
            )
            .into_bytes(),
        );
        let manifest_arm = Blob::new(
            format!(
                r#"{{"schemaVersion":2,"config":{},"layers":[{},{}]}}"#,
                b.config2.desc(OCI_CONFIG),
                b.layer_zst.desc("application/vnd.oci.image.layer.v1.tar+zstd"),
                b.layer.desc("application/vnd.oci.image.layer.v1.tar")
            )
            .into_bytes(),
        );
        let manifest_artifact = Blob::new(
            format!(
                r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.example","config":{},"layers":[{}]}}"#,
                b.artifact_config.desc("application/vnd.example.config.v1+json"),
                b.artifact_data.desc("text/plain")
            )
            .into_bytes(),
        );
        let absent = Digest::of(b"absent foreign layer");
        let manifest_foreign = Blob::new(
            format!(
                r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{},"layers":[{{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","digest":"{absent}","size":1234,"urls":["https://example.invalid/layer"]}}]}}"#,
                b.config.desc("application/vnd.docker.container.image.v1+json"),
            )
            .into_bytes(),
        );
        let index_nested = Blob::new(
            format!(
                r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{},{},{}]}}"#,
                with_platform(
                    &manifest_arm.desc("application/vnd.oci.image.manifest.v1+json"),
                    r#"{"architecture":"arm64","os":"linux","variant":"v8"}"#
                ),
                with_platform(
                    &manifest_oci.desc("application/vnd.oci.image.manifest.v1+json"),
                    r#"{"architecture":"amd64","os":"linux"}"#
                ),
                with_extra(
                    &manifest_artifact.desc("application/vnd.oci.image.manifest.v1+json"),
                    r#""platform":{"architecture":"unknown","os":"unknown"},"annotations":{"vnd.docker.reference.type":"attestation-manifest"}"#
                ),
            )
            .into_bytes(),
        );
        let docker_list = Blob::new(
            format!(
                r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[{}]}}"#,
                with_platform(
                    &manifest_docker
                        .desc("application/vnd.docker.distribution.manifest.v2+json"),
                    r#"{"architecture":"amd64","os":"linux"}"#
                ),
            )
            .into_bytes(),
        );
        OciBlobs {
            manifest_oci,
            manifest_docker,
            manifest_arm,
            manifest_artifact,
            manifest_foreign,
            index_nested,
            docker_list,
        }
    })
}

fn with_extra(desc: &str, extra: &str) -> String {
    format!("{},{extra}}}", &desc[..desc.len() - 1])
}

fn with_platform(desc: &str, platform: &str) -> String {
    with_extra(desc, &format!(r#""platform":{platform}"#))
}

fn oci_prefix() -> &'static [u8] {
    static P: OnceLock<Vec<u8>> = OnceLock::new();
    P.get_or_init(|| {
        let b = blobs();
        let o = oci_blobs();
        let mut t = TarOut::new(Vec::new());
        t.file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)
            .dir("blobs/")
            .dir("blobs/sha256/");
        for blob in [
            &b.layer,
            &b.layer_gz,
            &b.layer_zst,
            &b.config,
            &b.config2,
            &b.artifact_config,
            &b.artifact_data,
            &o.manifest_oci,
            &o.manifest_docker,
            &o.manifest_arm,
            &o.manifest_artifact,
            &o.manifest_foreign,
            &o.index_nested,
            &o.docker_list,
        ] {
            t.file(&format!("blobs/sha256/{}", blob.hex()), &blob.bytes);
        }
        t.entries()
    })
}

/// An OCI layout tar whose index.json is `index`.
pub fn oci_tar(index: &[u8]) -> Vec<u8> {
    let mut t = TarOut::new(oci_prefix().to_vec());
    t.file("index.json", index);
    t.finish()
}

// ---------------------------------------------------------------------------------
// Seeds: documents that fit the trees above.
// ---------------------------------------------------------------------------------

/// manifest.json documents that name files of [`docker_tar`]'s tree.
pub fn docker_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let b = blobs();
    let l = &b.layer;
    let gz = &b.layer_gz;
    let c = &b.config;
    let dir_manifest = dir_list_child();
    vec![
        (
            "classic",
            r#"[{"Config":"config.json","RepoTags":["fuzz:latest"],"Layers":["layer.tar"]}]"#
                .to_string(),
        ),
        (
            "docker-1.10",
            format!(
                r#"[{{"Config":"{}.json","RepoTags":["docker.io/library/fuzz:1","registry.example:5000/a/b:c","bad tag!"],"Layers":["{}/layer.tar"]}}]"#,
                c.hex(),
                b.v1id
            ),
        ),
        (
            "two-images",
            format!(
                r#"[{{"Config":"config.json","RepoTags":null,"Layers":["layer.tar"]}},{{"Config":"config2.json","RepoTags":["arm:1"],"Layers":["layer.tar.gz","blobs/sha256/{}"]}}]"#,
                l.hex()
            ),
        ),
        (
            "blobs",
            format!(
                r#"[{{"Config":"blobs/sha256/{}","RepoTags":["a:b"],"Layers":["blobs/sha256/{}"]}}]"#,
                c.hex(),
                gz.hex()
            ),
        ),
        (
            "ggcr-merge",
            format!(
                r#"[{{"Config":"sha256:{0}","RepoTags":["x:1"],"Layers":["{1}.tar.gz"]}},{{"Config":"sha256:{0}","RepoTags":["x:2"],"Layers":["{1}.tar.gz"]}}]"#,
                c.hex(),
                gz.hex()
            ),
        ),
        (
            "skopeo",
            format!(
                r#"[{{"Config":"./config.json","RepoTags":["skopeo/x:y"],"Layers":["./{}.tar"]}}]"#,
                l.hex()
            ),
        ),
        (
            "dir-transport",
            String::from_utf8(dir_manifest.bytes.clone()).expect("utf-8"),
        ),
        (
            "dir-transport-list",
            format!(
                r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{}]}}"#,
                with_platform(
                    &dir_manifest.desc("application/vnd.oci.image.manifest.v1+json"),
                    r#"{"architecture":"amd64","os":"linux"}"#
                )
            ),
        ),
        (
            "schema1",
            format!(
                r#"{{"schemaVersion":1,"name":"fuzz/s1","tag":"latest","architecture":"amd64","fsLayers":[{{"blobSum":"{}"}}],"history":[{{"v1Compatibility":"{{\"id\":\"{}\",\"os\":\"linux\",\"architecture\":\"amd64\"}}"}}]}}"#,
                gz.id(),
                b.v1id
            ),
        ),
    ]
    .into_iter()
    .map(|(n, s)| (n, s.into_bytes()))
    .collect()
}

/// index.json documents that name blobs of [`oci_tar`]'s tree.
pub fn oci_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let o = oci_blobs();
    const M: &str = "application/vnd.oci.image.manifest.v1+json";
    let index = |entries: Vec<String>| {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{}]}}"#,
            entries.join(",")
        )
    };
    let named = |desc: String, annotations: &str| {
        with_extra(&desc, &format!(r#""annotations":{annotations}"#))
    };
    vec![
        (
            "one-tagged",
            index(vec![named(
                o.manifest_oci.desc(M),
                r#"{"org.opencontainers.image.ref.name":"latest"}"#,
            )]),
        ),
        (
            "containerd-name",
            index(vec![named(
                o.manifest_docker
                    .desc("application/vnd.docker.distribution.manifest.v2+json"),
                r#"{"io.containerd.image.name":"docker.io/library/fuzz:1","org.opencontainers.image.ref.name":"1"}"#,
            )]),
        ),
        (
            "nested",
            index(vec![named(
                o.index_nested.desc("application/vnd.oci.image.index.v1+json"),
                r#"{"org.opencontainers.image.ref.name":"example.com/multi:2"}"#,
            )]),
        ),
        (
            "docker-list",
            index(vec![o
                .docker_list
                .desc("application/vnd.docker.distribution.manifest.list.v2+json")]),
        ),
        ("artifact-only", index(vec![o.manifest_artifact.desc(M)])),
        ("foreign-layer", index(vec![o.manifest_foreign.desc(M)])),
        (
            "everything",
            index(vec![
                o.manifest_oci.desc(M),
                o.manifest_arm.desc(M),
                o.manifest_artifact.desc(M),
                o.index_nested.desc("application/vnd.oci.image.index.v1+json"),
                o.docker_list
                    .desc("application/vnd.docker.distribution.manifest.list.v2+json"),
            ]),
        ),
        (
            "no-media-types",
            format!(
                r#"{{"manifests":[{{"digest":"{}","size":{}}},{{"digest":"{}","size":{}}}]}}"#,
                o.manifest_arm.id(),
                o.manifest_arm.bytes.len(),
                o.index_nested.id(),
                o.index_nested.bytes.len()
            ),
        ),
    ]
    .into_iter()
    .map(|(n, s)| (n, s.into_bytes()))
    .collect()
}

/// Resolve `path` in `tree` and read it whole; the bytes read must be exactly the size
/// the index recorded.
pub fn read_whole(tree: &dyn FileTree, path: &str) {
    let file = match tree.resolve(path) {
        Ok(f) => f,
        Err(_) => return,
    };
    let mut reader = file
        .open()
        .unwrap_or_else(|e| panic!("{path}: resolved but cannot be opened: {e}"));
    let n = std::io::copy(&mut reader, &mut std::io::sink())
        .unwrap_or_else(|e| panic!("{path} ({} bytes): reading failed: {e}", file.size));
    assert_eq!(
        n, file.size,
        "{path}: read {n} bytes, index says {}",
        file.size
    );
    let head = file
        .head(8)
        .unwrap_or_else(|e| panic!("{path}: head failed: {e}"));
    assert_eq!(head.len() as u64, file.size.min(8), "{path}: short head");
}
