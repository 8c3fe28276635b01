//! dockhand against the real tools: every fixture through every writer and back,
//! oci-image-tool / skopeo / umoci / docker reading what dockhand writes, and dockhand
//! reading what skopeo and docker write at test time.
//!
//! Tests that need a tool call `have_tool` / `have_docker` first and return early with
//! a visible SKIPPED line when it is missing (a failure under
//! DOCKHAND_REQUIRE_INTEROP=1). Tests that use the docker daemon hold `DOCKER` for their
//! whole run, so that one test removing an image never races another loading it.

mod common;
use common::*;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};

use serde_json::{json, Value};

type Identity = Vec<(String, Vec<String>, Vec<String>)>;

// ------------------------------------------------------------------ writers

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Writer {
    Oci,
    OciArchive,
    DockerArchive,
    DockerHybrid,
    DockerDir,
    Dir,
}

const WRITERS: [Writer; 6] = [
    Writer::Oci,
    Writer::OciArchive,
    Writer::DockerArchive,
    Writer::DockerHybrid,
    Writer::DockerDir,
    Writer::Dir,
];

impl Writer {
    fn file_name(self) -> &'static str {
        match self {
            Writer::Oci => "oci",
            Writer::OciArchive => "oci-archive.tar",
            Writer::DockerArchive => "docker-archive.tar",
            Writer::DockerHybrid => "docker-hybrid.tar",
            Writer::DockerDir => "docker-dir",
            Writer::Dir => "dir",
        }
    }

    /// The `convert` options selecting this writer (`dir` holds one image: take @0).
    fn args(self) -> &'static [&'static str] {
        match self {
            Writer::Oci => &["--to", "oci"],
            Writer::OciArchive => &["--to", "oci-archive"],
            Writer::DockerArchive => &["--to", "docker-archive"],
            Writer::DockerHybrid => &["--to", "docker-archive", "--docker-layout", "hybrid"],
            Writer::DockerDir => &["--to", "docker-dir"],
            Writer::Dir => &["--to", "dir", "--image", "@0"],
        }
    }

    /// The format `inspect` must report for the output.
    fn format(self) -> &'static str {
        match self {
            Writer::Oci => "oci",
            Writer::OciArchive => "oci-archive",
            Writer::DockerArchive | Writer::DockerHybrid => "docker-archive",
            Writer::DockerDir => "docker-dir",
            Writer::Dir => "dir",
        }
    }

    fn is_tar(self) -> bool {
        matches!(
            self,
            Writer::OciArchive | Writer::DockerArchive | Writer::DockerHybrid
        )
    }

    fn is_docker(self) -> bool {
        matches!(
            self,
            Writer::DockerArchive | Writer::DockerHybrid | Writer::DockerDir
        )
    }

    /// Where the output of this writer goes back to, and whether through stdin/stdout.
    fn round_trip(self) -> (Writer, bool) {
        match self {
            Writer::Oci => (Writer::DockerArchive, false),
            Writer::OciArchive => (Writer::DockerArchive, true),
            Writer::DockerArchive => (Writer::OciArchive, true),
            Writer::DockerHybrid => (Writer::Oci, false),
            Writer::DockerDir => (Writer::OciArchive, false),
            Writer::Dir => (Writer::DockerDir, false),
        }
    }
}

fn s(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}

fn valid_fixtures() -> Vec<Fixture> {
    let v: Vec<Fixture> = fixtures().into_iter().filter(|f| !f.is_broken()).collect();
    assert!(v.len() >= 10, "valid fixtures missing");
    v
}

/// `dockhand convert -q <writer options> SRC DIR/<label>-<writer>`; returns the output.
fn write(src: &str, writer: Writer, dir: &Path, label: &str) -> PathBuf {
    let dest = dir.join(format!("{label}-{}", writer.file_name()));
    let mut args = vec!["convert", "-q"];
    args.extend(writer.args());
    args.push(src);
    args.push(s(&dest));
    ok(&args);
    dest
}

/// `dockhand convert -q <writer options> - -` with stdin from `src` and stdout to `dest`.
fn write_stdio(src: &Path, writer: Writer, dest: &Path) {
    assert!(writer.is_tar());
    let out = dockhand()
        .args(["convert", "-q"])
        .args(writer.args())
        .args(["-", "-"])
        .stdin(fs::File::open(src).unwrap())
        .stdout(fs::File::create(dest).unwrap())
        .stderr(Stdio::piped())
        .output()
        .expect("running dockhand");
    assert!(
        out.status.success(),
        "dockhand convert {:?} - - <{} failed: {}",
        writer.args(),
        src.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The identity an output of `writer` must have, given the source's inspect document:
/// all images with their tags, but `dir` holds only image @0 and has no names.
fn expected_identity(src: &Value, writer: Writer) -> Identity {
    if writer == Writer::Dir {
        let mut image = src["images"][0].clone();
        image["tags"] = json!([]);
        identity(&json!({ "images": [image] }))
    } else {
        identity(src)
    }
}

fn images(doc: &Value) -> &Vec<Value> {
    doc["images"].as_array().expect("images is an array")
}

fn config_of(image: &Value) -> String {
    image["config"]["digest"].as_str().unwrap().to_string()
}

fn diff_ids_of(image: &Value) -> Vec<String> {
    image["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["diff_id"].as_str().unwrap().to_string())
        .collect()
}

/// Docker's familiar form of a normalized reference (what RepoTags shows).
fn familiar(full: &str) -> String {
    match full.strip_prefix("docker.io/") {
        Some(rest) => match rest.strip_prefix("library/") {
            Some(name) if !name.contains('/') => name.to_string(),
            _ => rest.to_string(),
        },
        None => full.to_string(),
    }
}

fn familiar_tags(image: &Value) -> Vec<String> {
    let mut v: Vec<String> = tags_of(image).iter().map(|t| familiar(t)).collect();
    v.sort();
    v
}

fn json_strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(|x| x.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

// ------------------------------------------------------------------ reading outputs

/// A file of a layout: from a directory, or from a tar (entry names with or without `./`).
fn read_member(root: &Path, tar: bool, name: &str) -> Vec<u8> {
    if !tar {
        return fs::read(root.join(name))
            .unwrap_or_else(|e| panic!("{}/{name}: {e}", root.display()));
    }
    let mut archive = tar::Archive::new(fs::File::open(root).unwrap());
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        if path.trim_start_matches("./") == name {
            let mut buf = Vec::new();
            entry.read_to_end(&mut buf).unwrap();
            return buf;
        }
    }
    panic!("{} has no entry {name}", root.display());
}

fn read_json(root: &Path, tar: bool, name: &str) -> Value {
    serde_json::from_slice(&read_member(root, tar, name))
        .unwrap_or_else(|e| panic!("{}: {name} is not JSON: {e}", root.display()))
}

/// One index.json entry of an OCI layout, with the config its manifest names.
#[derive(Debug)]
struct IndexEntry {
    image_name: Option<String>,
    ref_name: Option<String>,
    config: String,
}

fn oci_entries(root: &Path, tar: bool) -> Vec<IndexEntry> {
    let index = read_json(root, tar, "index.json");
    index["manifests"]
        .as_array()
        .expect("index.json lists manifests")
        .iter()
        .map(|m| {
            let digest = m["digest"].as_str().unwrap();
            let hex = digest.strip_prefix("sha256:").unwrap();
            let manifest = read_json(root, tar, &format!("blobs/sha256/{hex}"));
            let annotation = |k: &str| m["annotations"][k].as_str().map(str::to_string);
            IndexEntry {
                image_name: annotation("io.containerd.image.name"),
                ref_name: annotation("org.opencontainers.image.ref.name"),
                config: manifest["config"]["digest"].as_str().unwrap().to_string(),
            }
        })
        .collect()
}

/// The bare OCI ref names (`1.0`, `latest`: no repository) of an OCI fixture, with the
/// config of the image each names. They are not tags, so `inspect` does not show them.
fn bare_ref_names(f: &Fixture) -> Vec<(String, String)> {
    let tar = match f.expected["format"].as_str() {
        Some("oci") => false,
        Some("oci-archive") => true,
        _ => return Vec::new(),
    };
    oci_entries(&f.input, tar)
        .into_iter()
        .filter(|e| e.image_name.is_none())
        .filter_map(|e| {
            let name = e.ref_name?;
            (!name.is_empty() && !name.contains(['/', ':', '@'])).then_some((e.config, name))
        })
        .collect()
}

/// manifest.json of a docker output: config digest -> sorted RepoTags.
fn docker_repo_tags(root: &Path, tar: bool) -> BTreeMap<String, Vec<String>> {
    let manifest = read_json(root, tar, "manifest.json");
    manifest
        .as_array()
        .expect("manifest.json is a list")
        .iter()
        .map(|item| {
            let config = item["Config"].as_str().unwrap();
            let hex = config.rsplit('/').next().unwrap().trim_end_matches(".json");
            let mut tags = json_strings(&item["RepoTags"]);
            tags.sort();
            (format!("sha256:{hex}"), tags)
        })
        .collect()
}

/// The names an output carries where the format has room for them: RepoTags in
/// docker outputs (familiar tags; bare OCI ref names cannot be represented there, so
/// they must be absent), and in OCI outputs every tag (as io.containerd.image.name)
/// and every bare ref name, each on an index entry naming the right config.
fn check_names(out: &Path, writer: Writer, src: &Value, bare: &[(String, String)], what: &str) {
    if writer.is_docker() {
        let got = docker_repo_tags(out, writer.is_tar());
        let mut want: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for image in images(src) {
            want.entry(config_of(image))
                .or_default()
                .extend(familiar_tags(image));
        }
        assert_eq!(got, want, "{what}: RepoTags in manifest.json");
    } else if writer != Writer::Dir {
        let entries = oci_entries(out, writer.is_tar());
        for image in images(src) {
            let config = config_of(image);
            for tag in tags_of(image) {
                assert!(
                    entries
                        .iter()
                        .any(|e| e.image_name.as_deref() == Some(tag.as_str())
                            && e.ref_name.is_some()
                            && e.config == config),
                    "{what}: no index.json entry names {tag} -> {config}: {entries:?}"
                );
            }
        }
        for (config, name) in bare {
            assert!(
                entries
                    .iter()
                    .any(|e| e.ref_name.as_deref() == Some(name.as_str())
                        && e.image_name.is_none()
                        && &e.config == config),
                "{what}: OCI ref name {name} -> {config} was lost: {entries:?}"
            );
        }
        // Every ref name selects exactly one image (else skopeo refuses it).
        let mut by_ref: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for e in &entries {
            if let Some(r) = &e.ref_name {
                by_ref.entry(r).or_default().insert(&e.config);
            }
        }
        for (r, configs) in by_ref {
            assert_eq!(configs.len(), 1, "{what}: ref name {r} is ambiguous");
        }
        let configs: BTreeSet<String> = entries.iter().map(|e| e.config.clone()).collect();
        let want: BTreeSet<String> = images(src).iter().map(config_of).collect();
        assert_eq!(configs, want, "{what}: images listed in index.json");
    }
}

/// Layers as each writer must store them: docker outputs uncompressed (digest =
/// diff_id); OCI and dir outputs byte for byte as the source had them, under the OCI
/// media type of their real compression.
fn check_layers(src: &Value, out: &Value, writer: Writer, what: &str) {
    for image in images(out) {
        let config = config_of(image);
        let source = images(src)
            .iter()
            .find(|i| config_of(i) == config)
            .unwrap_or_else(|| panic!("{what}: image {config} is not in the source"));
        let (layers, src_layers) = (
            image["layers"].as_array().unwrap(),
            source["layers"].as_array().unwrap(),
        );
        assert_eq!(layers.len(), src_layers.len(), "{what}: layer count");
        for (l, sl) in layers.iter().zip(src_layers) {
            if writer.is_docker() {
                assert_eq!(
                    l["compression"], "none",
                    "{what}: docker layers are uncompressed"
                );
                assert_eq!(
                    l["digest"], l["diff_id"],
                    "{what}: uncompressed digest = diff_id"
                );
            } else {
                assert_eq!(
                    l["digest"], sl["digest"],
                    "{what}: layer not kept byte for byte"
                );
                assert_eq!(l["compression"], sl["compression"], "{what}");
                let media_type = match sl["compression"].as_str().unwrap() {
                    "none" => "application/vnd.oci.image.layer.v1.tar",
                    "gzip" => "application/vnd.oci.image.layer.v1.tar+gzip",
                    "zstd" => "application/vnd.oci.image.layer.v1.tar+zstd",
                    other => panic!("{what}: unexpected compression {other}"),
                };
                assert_eq!(l["media_type"], media_type, "{what}: layer media type");
            }
        }
    }
}

// ------------------------------------------------------------------ 1. the matrix

#[test]
fn conversion_matrix_preserves_identity() {
    let tmp = tempdir();
    let mut conversions = 0;
    for f in valid_fixtures() {
        let src = inspect(f.input());
        assert_eq!(
            identity(&src),
            identity(&f.expected),
            "{}: inspect disagrees with expected.json",
            f.name
        );
        let bare = bare_ref_names(&f);
        for writer in WRITERS {
            let what = format!("{} -> {writer:?}", f.name);
            let out = write(f.input(), writer, tmp.path(), &f.name);
            let doc = inspect(s(&out));
            assert_eq!(
                doc["format"],
                writer.format(),
                "{what}: format of the output"
            );
            let want = expected_identity(&f.expected, writer);
            assert_eq!(identity(&doc), want, "{what}: identity changed");
            ok(&["verify", s(&out)]);
            check_layers(&f.expected, &doc, writer, &what);
            check_names(&out, writer, &f.expected, &bare, &what);

            let (back_writer, stdio) = writer.round_trip();
            let what = format!(
                "{what} -> {back_writer:?}{}",
                if stdio { " (stdio)" } else { "" }
            );
            let back = if stdio {
                let back = tmp.path().join(format!(
                    "{}-{}-back-{}",
                    f.name,
                    writer.file_name(),
                    back_writer.file_name()
                ));
                write_stdio(&out, back_writer, &back);
                back
            } else {
                write(
                    s(&out),
                    back_writer,
                    tmp.path(),
                    &format!("{}-{}-back", f.name, writer.file_name()),
                )
            };
            let back_doc = inspect(s(&back));
            assert_eq!(back_doc["format"], back_writer.format(), "{what}: format");
            assert_eq!(identity(&back_doc), want, "{what}: identity changed");
            ok(&["verify", s(&back)]);
            conversions += 2;
        }
    }
    assert!(conversions >= 120, "only {conversions} conversions ran");
}

// ------------------------------------------------------------------ 2. tools read our output

/// Outputs oci-image-tool cannot judge: it predates `+zstd` and rejects 0-layer manifests.
fn beyond_oci_image_tool(doc: &Value) -> Option<&'static str> {
    let imgs = images(doc);
    if imgs
        .iter()
        .any(|i| i["layers"].as_array().unwrap().is_empty())
    {
        return Some("an image has no layers");
    }
    let zstd = imgs.iter().any(|i| {
        i["layers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["media_type"].as_str().unwrap().ends_with("+zstd"))
    });
    zstd.then_some("zstd layers")
}

fn unpack_tar(archive: &Path, dest: &Path) {
    fs::create_dir_all(dest).unwrap();
    tar::Archive::new(fs::File::open(archive).unwrap())
        .unpack(dest)
        .unwrap_or_else(|e| panic!("unpacking {}: {e}", archive.display()));
}

#[test]
fn oci_image_tool_validates_oci_outputs() {
    const TEST: &str = "oci_image_tool_validates_oci_outputs";
    if !have_tool(TEST, "oci-image-tool") {
        return;
    }
    let tmp = tempdir();
    let mut validated = 0;
    for f in valid_fixtures() {
        for writer in [Writer::Oci, Writer::OciArchive, Writer::DockerHybrid] {
            let what = format!("{} -> {writer:?}", f.name);
            let out = write(f.input(), writer, tmp.path(), &f.name);
            let doc = inspect(s(&out));
            if let Some(why) = beyond_oci_image_tool(&doc) {
                eprintln!("{what}: not given to oci-image-tool ({why})");
                continue;
            }
            let layout = if writer.is_tar() {
                let dir = tmp
                    .path()
                    .join(format!("{}-{}.unpacked", f.name, writer.file_name()));
                unpack_tar(&out, &dir);
                dir
            } else {
                out
            };
            let out = Command::new("oci-image-tool")
                .args(["validate", "--type", "image", s(&layout)])
                .output()
                .expect("running oci-image-tool");
            assert!(
                out.status.success(),
                "{what}: oci-image-tool validate failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            validated += 1;
        }
    }
    assert!(validated >= 30, "only {validated} layouts validated");
}

/// `skopeo copy` from one location to another (which reads and digest-checks every blob).
fn skopeo_copy(tmp: &Path, from: &str, to: &str) {
    skopeo(tmp, &["--insecure-policy", "copy", "-q", from, to]);
}

/// sha256 of the config skopeo reads at `location`.
fn skopeo_config(tmp: &Path, location: &str) -> String {
    sha256(&skopeo(tmp, &["inspect", "--config", "--raw", location]))
}

/// Which source config a ref name of an OCI output must lead to.
fn source_config_for(entry: &IndexEntry, src: &Value, bare: &[(String, String)]) -> String {
    if let Some(name) = &entry.image_name {
        return images(src)
            .iter()
            .find(|i| tags_of(i).contains(name))
            .map(config_of)
            .unwrap_or_else(|| panic!("no source image is tagged {name}"));
    }
    if let Some(r) = &entry.ref_name {
        if let Some((config, _)) = bare.iter().find(|(_, n)| n == r) {
            return config.clone();
        }
        panic!("ref name {r} is neither a source tag nor a source ref name");
    }
    let imgs = images(src);
    assert_eq!(
        imgs.len(),
        1,
        "an unnamed entry in an index of several images"
    );
    config_of(&imgs[0])
}

#[test]
fn skopeo_reads_oci_and_dir_outputs() {
    const TEST: &str = "skopeo_reads_oci_and_dir_outputs";
    if !have_tool(TEST, "skopeo") {
        return;
    }
    let tmp = tempdir();
    let mut copies = 0;
    for f in valid_fixtures() {
        let bare = bare_ref_names(&f);
        let want: BTreeSet<String> = f.config_digests().into_iter().collect();
        for (writer, transport) in [(Writer::Oci, "oci"), (Writer::OciArchive, "oci-archive")] {
            let what = format!("{} -> {writer:?}", f.name);
            let out = write(f.input(), writer, tmp.path(), &f.name);
            let entries = oci_entries(&out, writer.is_tar());
            let mut seen = BTreeSet::new();
            let mut first = None;
            for e in &entries {
                let location = match &e.ref_name {
                    Some(r) => format!("{transport}:{}:{r}", s(&out)),
                    None => format!("{transport}:{}", s(&out)),
                };
                let got = skopeo_config(tmp.path(), &location);
                assert_eq!(
                    got,
                    source_config_for(e, &f.expected, &bare),
                    "{what}: skopeo inspect --config --raw {location}"
                );
                seen.insert(got);
                first.get_or_insert(location);
            }
            assert_eq!(
                seen, want,
                "{what}: configs skopeo reaches through the ref names"
            );
            // A full copy makes skopeo read and digest-check every blob of the image.
            let location = first.expect("index.json lists an image");
            let copy = tmp
                .path()
                .join(format!("{}-{}.skopeo-copy", f.name, writer.file_name()));
            skopeo_copy(tmp.path(), &location, &format!("dir:{}", s(&copy)));
            copies += 1;
        }
        let what = format!("{} -> Dir", f.name);
        let out = write(f.input(), Writer::Dir, tmp.path(), &f.name);
        let location = format!("dir:{}", s(&out));
        assert_eq!(
            skopeo_config(tmp.path(), &location),
            config_of(&images(&f.expected)[0]),
            "{what}: skopeo inspect --config --raw {location}"
        );
        let copy = tmp.path().join(format!("{}-dir.skopeo-copy", f.name));
        skopeo_copy(tmp.path(), &location, &format!("oci:{}:x", s(&copy)));
        copies += 1;
    }
    assert!(copies >= 30, "only {copies} skopeo copies");
}

#[test]
fn umoci_unpacks_oci_outputs() {
    const TEST: &str = "umoci_unpacks_oci_outputs";
    if !have_tool(TEST, "umoci") {
        return;
    }
    let tmp = tempdir();
    // (fixture, how the image is named in the output, files in its rootfs, files gone)
    type Files = &'static [(&'static str, &'static str)];
    let cases: [(&str, &str, Files, &[&str]); 3] = [
        (
            "docker-save-basic",
            "docker.io/dockhand-fixture/basic:1.0",
            &[
                (
                    "bin/hello.sh",
                    "#!/bin/sh\necho \"hello from the dockhand basic fixture\"\n",
                ),
                ("etc/dockhand/app.conf", "name = basic\nlevel = 1\n"),
                (
                    "usr/share/doc/dockhand/README.txt",
                    "dockhand fixture image: three COPY layers, ENV, LABEL, CMD\n",
                ),
            ],
            &[],
        ),
        (
            "docker-save-multi",
            "example.com/dockhand/dup:1.0",
            &[
                ("dup.txt", "duplicated layer content\n"),
                ("opt/base/base.txt", "shared base layer one\n"),
                (
                    "usr/lib/dockhand/libdockhand.txt",
                    "shared base layer two\n",
                ),
            ],
            &["opt/app/app.txt"],
        ),
        (
            "umoci-layout",
            "latest",
            &[
                ("etc/dockhand/umoci.conf", "made by umoci\n"),
                ("bin/run.sh", "#!/bin/sh\necho umoci\n"),
            ],
            &["etc/dockhand/old.conf"],
        ),
    ];
    for (name, image, present, absent) in cases {
        let f = fixture(name);
        let out = write(f.input(), Writer::Oci, tmp.path(), name);
        let entries = oci_entries(&out, false);
        let ref_name = entries
            .iter()
            .find(|e| {
                e.image_name.as_deref() == Some(image) || e.ref_name.as_deref() == Some(image)
            })
            .and_then(|e| e.ref_name.clone())
            .unwrap_or_else(|| panic!("{name}: no ref name for {image} in {entries:?}"));
        let bundle = tmp.path().join(format!("{name}.bundle"));
        let mut cmd = Command::new("umoci");
        cmd.args(["unpack", "--rootless", "--image"])
            .arg(format!("{}:{ref_name}", s(&out)))
            .arg(&bundle);
        run_cmd(cmd);
        let rootfs = bundle.join("rootfs");
        for (file, content) in present {
            let got = fs::read_to_string(rootfs.join(file))
                .unwrap_or_else(|e| panic!("{name}: {file} not unpacked: {e}"));
            assert_eq!(&got, content, "{name}: {file}");
        }
        for file in absent {
            assert!(
                !rootfs.join(file).exists(),
                "{name}: {file} should not exist"
            );
        }
        if name == "docker-save-basic" {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(rootfs.join("bin/hello.sh"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(
                mode & 0o111,
                0o111,
                "bin/hello.sh lost its exec bits: {mode:o}"
            );
        }
    }
}

// ------------------------------------------------------------------ docker helpers

static DOCKER: Mutex<()> = Mutex::new(());

fn docker_lock() -> MutexGuard<'static, ()> {
    DOCKER.lock().unwrap_or_else(|e| e.into_inner())
}

/// `docker rmi -f` of these images when dropped (also when the test fails).
struct Remove(Vec<String>);

impl Drop for Remove {
    fn drop(&mut self) {
        rmi(&self.0);
    }
}

/// Remove images (by id or name), ignoring ones that are not there.
fn rmi(refs: &[String]) {
    for r in refs {
        let _ = Command::new("docker")
            .args(["rmi", "-f", r])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn docker_has(reference: &str) -> bool {
    Command::new("docker")
        .args(["image", "inspect", reference])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn docker_image(reference: &str) -> Value {
    let v: Value = serde_json::from_slice(&tool("docker", &["image", "inspect", reference]))
        .expect("docker image inspect prints JSON");
    v[0].clone()
}

/// `docker load -i archive`; returns the `Loaded image:` names and `Loaded image ID:` ids.
fn docker_load(archive: &Path) -> (BTreeSet<String>, BTreeSet<String>) {
    parse_load(&tool("docker", &["load", "-i", s(archive)]))
}

fn parse_load(stdout: &[u8]) -> (BTreeSet<String>, BTreeSet<String>) {
    let (mut names, mut ids) = (BTreeSet::new(), BTreeSet::new());
    for line in String::from_utf8_lossy(stdout).lines() {
        if let Some(id) = line.strip_prefix("Loaded image ID: ") {
            ids.insert(id.trim().to_string());
        } else if let Some(name) = line.strip_prefix("Loaded image: ") {
            names.insert(name.trim().to_string());
        }
    }
    (names, ids)
}

/// What docker must print when loading these images (dockhand inspect documents).
fn expected_load(imgs: &[Value]) -> (BTreeSet<String>, BTreeSet<String>) {
    let (mut names, mut ids) = (BTreeSet::new(), BTreeSet::new());
    for image in imgs {
        let tags = familiar_tags(image);
        if tags.is_empty() {
            ids.insert(config_of(image));
        }
        names.extend(tags);
    }
    (names, ids)
}

/// The daemon holds `image` (an inspect document entry) as dockhand describes it.
fn check_in_docker(image: &Value, what: &str) {
    let config = config_of(image);
    let d = docker_image(&config);
    assert_eq!(d["Id"], config.as_str(), "{what}: image ID");
    let mut repo_tags = json_strings(&d["RepoTags"]);
    repo_tags.sort();
    assert_eq!(
        repo_tags,
        familiar_tags(image),
        "{what}: RepoTags of {config}"
    );
    assert_eq!(
        json_strings(&d["RootFS"]["Layers"]),
        diff_ids_of(image),
        "{what}: RootFS.Layers of {config}"
    );
    assert_eq!(d["Os"], image["platform"]["os"], "{what}: Os");
    assert_eq!(
        d["Architecture"], image["platform"]["architecture"],
        "{what}: Architecture"
    );
}

/// Load `archive` into a daemon that does not have its images yet, and check that
/// every image of `doc` arrived with its ID, tags and layers.
fn load_and_check(archive: &Path, doc: &Value, what: &str) {
    let imgs = images(doc);
    let ids: Vec<String> = imgs.iter().map(config_of).collect();
    let _remove = Remove(ids.clone());
    rmi(&ids);
    for id in &ids {
        assert!(
            !docker_has(id),
            "{what}: {id} still in the daemon before the load"
        );
    }
    let loaded = docker_load(archive);
    assert_eq!(
        loaded,
        expected_load(imgs),
        "{what}: what docker load reports"
    );
    for image in imgs {
        check_in_docker(image, what);
    }
}

/// `docker build` (classic builder) of a context made of `files` and `dockerfile`,
/// tagged `tags`; returns the image ID.
fn docker_build(ctx: &Path, files: &[(&str, &str)], dockerfile: &str, tags: &[&str]) -> String {
    for (path, content) in files {
        let path = ctx.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }
    fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
    let mut cmd = Command::new("docker");
    cmd.env("DOCKER_BUILDKIT", "0").args(["build", "-q"]);
    for t in tags {
        cmd.args(["-t", t]);
    }
    cmd.arg(ctx);
    run_cmd(cmd);
    docker_image(tags[0])["Id"].as_str().unwrap().to_string()
}

#[test]
fn docker_loads_docker_archive_outputs() {
    const TEST: &str = "docker_loads_docker_archive_outputs";
    if !have_docker(TEST) {
        return;
    }
    let _lock = docker_lock();
    let tmp = tempdir();
    let mut loads = 0;
    for f in valid_fixtures() {
        for writer in [Writer::DockerArchive, Writer::DockerHybrid] {
            let what = format!("{} -> {writer:?}", f.name);
            let out = write(f.input(), writer, tmp.path(), &f.name);
            load_and_check(&out, &f.expected, &what);
            loads += 1;
        }
    }
    assert!(loads >= 20, "only {loads} loads");
}

// ------------------------------------------------------------------ 3. we read what tools write

/// skopeo copies of docker-save-basic made now: (skopeo copy options, destination,
/// tags dockhand must see, whether skopeo keeps the docker config as is).
fn skopeo_destinations(tmp: &Path) -> Vec<(Vec<&'static str>, String, Vec<&'static str>, bool)> {
    let t = |name: &str| s(&tmp.join(name)).to_string();
    vec![
        (
            vec![],
            format!(
                "docker-archive:{}:dockhand-fixture/basic:1.0",
                t("sk-docker.tar")
            ),
            vec!["docker.io/dockhand-fixture/basic:1.0"],
            true,
        ),
        (vec![], format!("oci:{}:1.0", t("sk-oci")), vec![], false),
        (
            vec!["--dest-compress", "--dest-compress-format", "zstd"],
            format!(
                "oci:{}:docker.io/dockhand-fixture/basic:1.0",
                t("sk-oci-zstd")
            ),
            vec!["docker.io/dockhand-fixture/basic:1.0"],
            false,
        ),
        (
            vec!["--dest-oci-accept-uncompressed-layers"],
            format!("oci-archive:{}:1.0", t("sk-oci-archive.tar")),
            vec![],
            false,
        ),
        (vec![], format!("dir:{}", t("sk-dir")), vec![], true),
        (
            vec!["--dest-compress"],
            format!("dir:{}", t("sk-dir-gzip")),
            vec![],
            true,
        ),
    ]
}

/// The path inside a skopeo location (`transport:path[:ref]`).
fn location_path(location: &str) -> &str {
    location.split(':').nth(1).unwrap()
}

#[test]
fn dockhand_reads_what_skopeo_writes() {
    const TEST: &str = "dockhand_reads_what_skopeo_writes";
    if !have_tool(TEST, "skopeo") {
        return;
    }
    let tmp = tempdir();
    let basic = fixture("docker-save-basic");
    let basic_image = &images(&basic.expected)[0];
    let source = format!(
        "docker-archive:{}:dockhand-fixture/basic:1.0",
        basic.input()
    );
    for (options, dest, tags, keeps_config) in skopeo_destinations(tmp.path()) {
        let mut args = vec!["--insecure-policy", "copy", "-q"];
        args.extend(&options);
        args.push(&source);
        args.push(&dest);
        skopeo(tmp.path(), &args);
        let what = format!("skopeo copy {options:?} to {dest}");

        let config = skopeo_config(tmp.path(), &dest);
        if keeps_config {
            assert_eq!(
                config,
                config_of(basic_image),
                "{what}: skopeo kept the config"
            );
        }
        let path = location_path(&dest);
        let doc = inspect(path);
        let want: Identity = vec![(
            config.clone(),
            diff_ids_of(basic_image),
            tags.iter().map(|t| t.to_string()).collect(),
        )];
        assert_eq!(identity(&doc), want, "{what}: dockhand inspect");
        ok(&["verify", path]);

        // and on through dockhand, addressed the way skopeo was
        for writer in [Writer::DockerArchive, Writer::Oci] {
            let label = format!("{}-from-skopeo", path.rsplit('/').next().unwrap());
            let out = write(&dest, writer, tmp.path(), &label);
            let out_doc = inspect(s(&out));
            assert_eq!(identity(&out_doc), want, "{what} -> {writer:?}");
            ok(&["verify", s(&out)]);
        }
    }
}

#[test]
fn docker_loads_conversions_of_skopeo_oci() {
    const TEST: &str = "docker_loads_conversions_of_skopeo_oci";
    if !have_tool(TEST, "skopeo") || !have_docker(TEST) {
        return;
    }
    let _lock = docker_lock();
    let tmp = tempdir();
    let basic = fixture("docker-save-basic");
    let diff_ids = diff_ids_of(&images(&basic.expected)[0]);
    let source = format!(
        "docker-archive:{}:dockhand-fixture/basic:1.0",
        basic.input()
    );
    let oci = tmp.path().join("sk-oci");
    let oci_location = format!("oci:{}:docker.io/dockhand-interop/skopeo:1.0", s(&oci));
    let archive = tmp.path().join("sk-oci-archive.tar");
    let archive_location = format!("oci-archive:{}:1.0", s(&archive));
    let _remove = Remove(vec![
        "dockhand-interop/skopeo:1.0".into(),
        "dockhand-interop/skopeo:renamed".into(),
    ]);
    // (skopeo destination, dockhand convert options, the tag the image must load with)
    let cases = [
        (
            oci_location,
            vec![],
            "docker.io/dockhand-interop/skopeo:1.0",
        ),
        (
            archive_location,
            vec!["--tag", "dockhand-interop/skopeo:renamed"],
            "docker.io/dockhand-interop/skopeo:renamed",
        ),
    ];
    for (n, (location, options, tag)) in cases.into_iter().enumerate() {
        skopeo_copy(tmp.path(), &source, &location);
        let config = skopeo_config(tmp.path(), &location);
        let out = tmp.path().join(format!("docker-{n}.tar"));
        let mut args = vec!["convert", "-q", "--to", "docker-archive"];
        args.extend(&options);
        args.push(&location);
        args.push(s(&out));
        ok(&args);
        let doc = inspect(s(&out));
        assert_eq!(
            identity(&doc),
            vec![(config.clone(), diff_ids.clone(), vec![tag.to_string()])],
            "{location} -> docker-archive"
        );
        load_and_check(
            &out,
            &doc,
            &format!("docker load of {location} -> docker-archive"),
        );
    }
}

#[test]
fn dockhand_reads_what_docker_save_writes() {
    const TEST: &str = "dockhand_reads_what_docker_save_writes";
    if !have_docker(TEST) {
        return;
    }
    let _lock = docker_lock();
    let tmp = tempdir();
    let a_tags = [
        "dockhand-interop/save-a:1.0",
        "dockhand-interop/save-a:latest",
    ];
    let b_tags = [
        "dockhand-interop-save-b:1.0",
        "localhost:5000/dockhand-interop/save-b:2",
    ];
    let mut remove = Remove(
        a_tags
            .iter()
            .chain(&b_tags)
            .map(|t| t.to_string())
            .collect(),
    );
    let a = docker_build(
        &tmp.path().join("ctx-a"),
        &[
            ("l1/etc/a/one.txt", "image a, layer one\n"),
            ("l2/usr/a/two.txt", "image a, layer two\n"),
        ],
        "FROM scratch\nCOPY l1/ /\nCOPY l2/ /\nENV DOCKHAND_INTEROP=a\nCMD [\"/a\"]\n",
        &a_tags,
    );
    let b = docker_build(
        &tmp.path().join("ctx-b"),
        &[("b.txt", "image b\n")],
        "FROM scratch\nCOPY b.txt /b.txt\nLABEL com.example.interop=b\n",
        &b_tags,
    );
    remove.0.extend([a.clone(), b.clone()]);
    assert_ne!(a, b);

    let saved = tmp.path().join("save.tar");
    let mut args = vec!["save", "-o", s(&saved)];
    args.extend(a_tags.iter().chain(&b_tags));
    tool("docker", &args);

    let doc = inspect(s(&saved));
    assert_eq!(doc["format"], "docker-archive");
    assert_eq!(images(&doc).len(), 2, "two images saved: {doc}");
    for (id, tags) in [(&a, &a_tags), (&b, &b_tags)] {
        let image = images(&doc)
            .iter()
            .find(|i| &config_of(i) == id)
            .unwrap_or_else(|| panic!("dockhand does not see image {id}: {doc}"));
        let d = docker_image(id);
        let mut repo_tags = json_strings(&d["RepoTags"]);
        repo_tags.sort();
        let mut want: Vec<String> = tags.iter().map(|t| t.to_string()).collect();
        want.sort();
        assert_eq!(repo_tags, want, "docker's own tags for {id}");
        assert_eq!(familiar_tags(image), repo_tags, "tags of {id}");
        assert_eq!(
            diff_ids_of(image),
            json_strings(&d["RootFS"]["Layers"]),
            "diff_ids of {id}"
        );
        assert_eq!(image["platform"]["os"], d["Os"]);
        assert_eq!(image["platform"]["architecture"], d["Architecture"]);
    }
    ok(&["verify", s(&saved)]);

    // Through OCI and back, into a daemon that no longer has them.
    let oci = write(s(&saved), Writer::OciArchive, tmp.path(), "saved");
    let back = write(s(&oci), Writer::DockerArchive, tmp.path(), "saved-back");
    assert_eq!(identity(&inspect(s(&back))), identity(&doc));
    load_and_check(
        &back,
        &doc,
        "docker save -> oci-archive -> docker-archive -> docker load",
    );
}

// ------------------------------------------------------------------ 4. the pipeline

#[test]
fn docker_save_pipeline_through_dockhand_loads_back() {
    const TEST: &str = "docker_save_pipeline_through_dockhand_loads_back";
    if !have_docker(TEST) {
        return;
    }
    let _lock = docker_lock();
    let tmp = tempdir();
    let tag = "dockhand-interop/pipe:1.0";
    let mut remove = Remove(vec![tag.to_string()]);
    let id = docker_build(
        &tmp.path().join("ctx"),
        &[
            ("l1/opt/pipe/one.txt", "pipe layer one\n"),
            ("l2/opt/pipe/two.txt", "pipe layer two\n"),
        ],
        "FROM scratch\nCOPY l1/ /\nCOPY l2/ /\nCMD [\"/opt/pipe/one.txt\"]\n",
        &[tag],
    );
    remove.0.push(id.clone());
    let before = docker_image(&id);

    // docker save IMG | dockhand convert - - --to oci-archive
    //   | dockhand convert - - --to docker-archive | docker load
    // with the image removed from the daemon once docker save is done and before
    // docker load starts, so that the load really creates it again.
    let mut save = Command::new("docker")
        .args(["save", tag])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running docker save");
    let mut to_oci = dockhand()
        .args(["convert", "-q", "--to", "oci-archive", "-", "-"])
        .stdin(Stdio::from(save.stdout.take().unwrap()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running dockhand");
    let mut to_docker = dockhand()
        .args(["convert", "-q", "--to", "docker-archive", "-", "-"])
        .stdin(Stdio::from(to_oci.stdout.take().unwrap()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running dockhand");
    let saved = save.wait_with_output().unwrap();
    if !saved.status.success() {
        // docker save may only be the victim (a broken pipe): show the stage after it too.
        let first = to_oci.wait_with_output().unwrap();
        panic!(
            "docker save failed: {}\ndockhand convert --to oci-archive - - ({:?}): {}",
            String::from_utf8_lossy(&saved.stderr),
            first.status.code(),
            String::from_utf8_lossy(&first.stderr)
        );
    }

    rmi(std::slice::from_ref(&id));
    assert!(!docker_has(&id), "{id} is still in the daemon");

    let load = Command::new("docker")
        .arg("load")
        .stdin(Stdio::from(to_docker.stdout.take().unwrap()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running docker load");
    let first = to_oci.wait_with_output().unwrap();
    let second = to_docker.wait_with_output().unwrap();
    let loaded = load.wait_with_output().unwrap();
    for (name, out) in [
        ("dockhand convert --to oci-archive - -", &first),
        ("dockhand convert --to docker-archive - -", &second),
        ("docker load", &loaded),
    ] {
        assert!(
            out.status.success(),
            "{name} failed ({:?}): {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (names, ids) = parse_load(&loaded.stdout);
    assert_eq!(
        names,
        BTreeSet::from([tag.to_string()]),
        "docker load said: {}",
        String::from_utf8_lossy(&loaded.stdout)
    );
    assert!(ids.is_empty());

    let after = docker_image(&id);
    assert_eq!(after["Id"], id.as_str(), "the loaded image ID");
    assert_eq!(after["Id"], before["Id"]);
    assert_eq!(after["RepoTags"], before["RepoTags"]);
    assert_eq!(after["RootFS"]["Layers"], before["RootFS"]["Layers"]);
    assert_eq!(after["Config"], before["Config"]);
}
