//! Layouts and archives as an image store: `tag` and `untag` in place (every format,
//! the names skopeo, podman, umoci and docker see, the bytes of entries not touched
//! kept), `rm` (only what no other image, index or referrer uses goes), `gc` (as umoci
//! gc, beside conversions adding to the layout), `inspect --filter/--format` against
//! `docker images` on the same images, and parents, children and heads.
//!
//! Tests using the docker daemon hold `docker_lock()` and remove only the images they
//! loaded, all named under `dockhand-store24*`.

use crate::common::build::{file, tar_of, Entry, Noise};
use crate::common::images::{DockerImages, Podman};
use crate::common::interop::skopeo_config;
use crate::common::*;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{json, Value};

/// One image of a hand-built docker-save archive.
#[derive(Clone)]
struct Img {
    tags: Vec<String>,
    layers: Vec<Vec<u8>>,
    created: String,
    labels: Vec<(String, String)>,
}

impl Img {
    fn new(tags: &[&str], layers: &[&[u8]], created: &str) -> Img {
        Img {
            tags: tags.iter().map(|t| t.to_string()).collect(),
            layers: layers.iter().map(|l| l.to_vec()).collect(),
            created: created.to_string(),
            labels: Vec::new(),
        }
    }

    fn labelled(mut self, labels: &[(&str, &str)]) -> Img {
        self.labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self
    }

    fn config(&self) -> Vec<u8> {
        let diff_ids: Vec<String> = self.layers.iter().map(|l| sha256(l)).collect();
        let labels: serde_json::Map<String, Value> = self
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        serde_json::to_vec(&json!({
            "architecture": "amd64", "os": "linux", "created": self.created,
            "config": {"Labels": labels},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }))
        .unwrap()
    }

    fn id(&self) -> String {
        sha256(&self.config())
    }
}

/// A layer tar holding one file `name` with `content`.
fn layer(name: &str, content: &[u8]) -> Vec<u8> {
    crate::common::build::layer(name, content)
}

/// A docker-save archive of `images` (Docker <= 24's shape: `<diff_id>/layer.tar`, each
/// layer once, a config per image, manifest.json last and indented; an image without
/// tags gets `RepoTags: null`, as `docker save ID` writes).
fn save_archive(images: &[Img]) -> Vec<u8> {
    let mut entries: Vec<Entry> = Vec::new();
    let mut written = BTreeSet::new();
    let mut manifest = Vec::new();
    for image in images {
        let mut paths = Vec::new();
        for l in &image.layers {
            let hex = sha256(l)[7..].to_string();
            let path = format!("{hex}/layer.tar");
            if written.insert(hex) {
                entries.push(file(&path, l.clone()));
            }
            paths.push(path);
        }
        let config = image.config();
        let config_name = format!("{}.json", &sha256(&config)[7..]);
        if written.insert(config_name.clone()) {
            entries.push(file(&config_name, config));
        }
        let tags = if image.tags.is_empty() {
            Value::Null
        } else {
            json!(image.tags)
        };
        manifest.push(json!({"Config": config_name, "RepoTags": tags, "Layers": paths}));
    }
    // Indented, as a person or another tool may write it: an edit keeps the entries
    // it does not change byte for byte, indentation and all.
    entries.push(file(
        "manifest.json",
        serde_json::to_vec_pretty(&Value::Array(manifest)).unwrap(),
    ));
    tar_of(&entries)
}

/// The two images most tests change: `app` on top of `base`, with a layer of its own.
fn app_and_base() -> (Img, Img) {
    let base_layer = layer("base.txt", b"the base layer");
    let app_layer = layer("app.txt", b"the app layer");
    let base = Img::new(
        &["dockhand-store24/base:1"],
        &[&base_layer],
        "2024-01-01T00:00:00Z",
    );
    let app = Img::new(
        &["dockhand-store24/app:1", "dockhand-store24/app:latest"],
        &[&base_layer, &app_layer],
        "2024-02-01T00:00:00Z",
    );
    (app, base)
}

/// `dir/images.tar`: a docker-save archive of [`app_and_base`]'s two images.
fn archive_of_app_and_base(dir: &Path) -> (Img, Img, PathBuf) {
    let (app, base) = app_and_base();
    let archive = write(
        dir,
        "images.tar",
        &save_archive(&[app.clone(), base.clone()]),
    );
    (app, base, archive)
}

/// `bytes` written to `dir/name`.
fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, bytes).unwrap();
    path
}

/// The exact texts of the elements of a JSON list: the document itself, or the value
/// of `key` in it.
fn element_texts(text: &[u8], key: Option<&str>) -> Vec<String> {
    use serde_json::value::RawValue;
    let text = std::str::from_utf8(text).unwrap();
    let list: Vec<&RawValue> = match key {
        None => serde_json::from_str(text).unwrap(),
        Some(key) => {
            let doc: BTreeMap<String, &RawValue> = serde_json::from_str(text).unwrap();
            serde_json::from_str(doc[key].get()).unwrap()
        }
    };
    list.iter().map(|r| r.get().to_string()).collect()
}

/// A member of a tar archive.
fn member(archive: &Path, name: &str) -> Vec<u8> {
    crate::common::interop::read_member(archive, true, name)
}

/// The names (tags) an image of `path` has, by image ID.
fn names_by_id(path: &str) -> BTreeMap<String, Vec<String>> {
    let doc = inspect(path);
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for image in images(&doc) {
        let id = image["config"]["digest"].as_str().unwrap().to_string();
        let names = out.entry(id).or_default();
        names.extend(tags_of(image));
        names.sort();
    }
    out
}

/// `docker load -i archive`: the `Loaded image:` names and `Loaded image ID:` ids.
fn docker_load(archive: &Path) -> (BTreeSet<String>, BTreeSet<String>) {
    let out = tool("docker", &["load", "-i", s(archive)]);
    let (mut names, mut ids) = (BTreeSet::new(), BTreeSet::new());
    for line in String::from_utf8_lossy(&out).lines() {
        if let Some(id) = line.strip_prefix("Loaded image ID: ") {
            ids.insert(id.trim().to_string());
        } else if let Some(name) = line.strip_prefix("Loaded image: ") {
            names.insert(name.trim().to_string());
        }
    }
    (names, ids)
}

/// The image ID docker gives a name.
fn docker_id(name: &str) -> String {
    let out = tool("docker", &["image", "inspect", "--format", "{{.Id}}", name]);
    String::from_utf8(out).unwrap().trim().to_string()
}

/// The stderr of a dockhand run that must fail with exit code 2 (a usage error).
fn usage_error(args: &[&str]) -> String {
    let out = run(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    stderr
}

#[test]
fn names_added_to_a_docker_archive_are_what_docker_skopeo_and_podman_load() {
    let test = "names_added_to_a_docker_archive_are_what_docker_skopeo_and_podman_load";
    let tmp = tempdir();
    let (app, base, archive) = archive_of_app_and_base(tmp.path());
    let before = member(&archive, "manifest.json");
    ok(&[
        "tag",
        &format!("docker-archive:{}:dockhand-store24/app:1", s(&archive)),
        "dockhand-store24/app:2",
        "localhost:5000/store24/app:3",
    ]);
    // The library reads them back on the image, and only there.
    let names = names_by_id(s(&archive));
    assert_eq!(
        names[&app.id()],
        [
            "docker.io/dockhand-store24/app:1",
            "docker.io/dockhand-store24/app:2",
            "docker.io/dockhand-store24/app:latest",
            "localhost:5000/store24/app:3",
        ]
    );
    assert_eq!(names[&base.id()], ["docker.io/dockhand-store24/base:1"]);
    // base's manifest.json entry keeps its bytes; app's gets the new RepoTags, written
    // in full as dockhand writes them.
    let after = member(&archive, "manifest.json");
    let (old, new) = (element_texts(&before, None), element_texts(&after, None));
    assert_eq!(new[1], old[1]);
    let app_entry: Value = serde_json::from_str(&new[0]).unwrap();
    assert_eq!(
        app_entry["RepoTags"],
        json!([
            "dockhand-store24/app:1",
            "dockhand-store24/app:latest",
            "docker.io/dockhand-store24/app:2",
            "localhost:5000/store24/app:3"
        ])
    );
    // Every layer and config is still there, byte for byte.
    ok(&["verify", "-q", s(&archive)]);
    if have_tool(test, "skopeo") {
        for name in ["dockhand-store24/app:2", "localhost:5000/store24/app:3"] {
            let location = format!("docker-archive:{}:{name}", s(&archive));
            assert_eq!(skopeo_config(tmp.path(), &location), app.id(), "{name}");
        }
    }
    if have_tool(test, "podman") {
        let podman = Podman::new(&tmp.path().join("pm"));
        podman.run(&["load", "-q", "-i", s(&archive)]);
        for name in [
            "docker.io/dockhand-store24/app:2",
            "localhost:5000/store24/app:3",
        ] {
            assert_eq!(podman.id_of(name), app.id(), "{name}");
        }
    }
    if have_docker(test) {
        let _lock = docker_lock();
        let _loaded = DockerImages(vec![app.id(), base.id()]);
        let (loaded, _) = docker_load(&archive);
        for name in [
            "dockhand-store24/app:2",
            "localhost:5000/store24/app:3",
            "dockhand-store24/app:1",
        ] {
            assert!(loaded.contains(name), "{name} not in {loaded:?}");
            assert_eq!(docker_id(name), app.id(), "{name}");
        }
    }
}

/// Every entry name of a tar archive.
fn members(archive: &Path) -> BTreeSet<String> {
    let mut tar = tar::Archive::new(fs::File::open(archive).unwrap());
    tar.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let path = e.path().unwrap().to_string_lossy().into_owned();
            path.trim_start_matches("./")
                .trim_end_matches('/')
                .to_string()
        })
        .collect()
}

/// The blob file names of a layout directory.
fn blob_files(layout: &Path) -> BTreeSet<String> {
    fs::read_dir(layout.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// A copy of the directory `from` at `to`.
fn copy_dir(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.unwrap();
        let target = to.join(entry.path().strip_prefix(from).unwrap());
        if entry.file_type().is_dir() {
            fs::create_dir_all(&target).unwrap();
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn names_added_to_oci_layouts_are_ref_names_skopeo_umoci_and_podman_find() {
    let test = "names_added_to_oci_layouts_are_ref_names_skopeo_umoci_and_podman_find";
    let tmp = tempdir();
    let (app, base, archive) = archive_of_app_and_base(tmp.path());
    let layout = tmp.path().join("layout");
    let oci_tar = tmp.path().join("layout.tar");
    ok(&["convert", "-q", s(&archive), s(&layout)]);
    ok(&[
        "convert",
        "-q",
        "--to",
        "oci-archive",
        s(&archive),
        s(&oci_tar),
    ]);
    // The layout's index.json indented, as `jq . index.json` writes it: the entries an
    // edit does not change keep these bytes.
    let index: Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    fs::write(
        layout.join("index.json"),
        serde_json::to_vec_pretty(&index).unwrap(),
    )
    .unwrap();
    for (location, root, tar) in [
        (format!("oci:{}", s(&layout)), layout.clone(), false),
        (
            format!("oci-archive:{}", s(&oci_tar)),
            oci_tar.clone(),
            true,
        ),
    ] {
        let before = crate::common::interop::read_member(&root, tar, "index.json");
        ok(&[
            "tag",
            &format!("{location}:dockhand-store24/app:1"),
            "2",
            "dockhand-store24/app:3",
        ]);
        // A tag that another image's entry has ("3") makes the whole name the ref name.
        ok(&[
            "tag",
            &format!("{location}:dockhand-store24/base:1"),
            "dockhand-store24/other:3",
        ]);
        let after = crate::common::interop::read_member(&root, tar, "index.json");
        let (old, new) = (
            element_texts(&before, Some("manifests")),
            element_texts(&after, Some("manifests")),
        );
        // Every entry there before is there, byte for byte, in its place.
        assert_eq!(new[..old.len()], old[..], "{location}");
        let entries = crate::common::interop::oci_entries(&root, tar);
        let added: Vec<(Option<&str>, Option<&str>, &str)> = entries[old.len()..]
            .iter()
            .map(|e| {
                (
                    e.image_name.as_deref(),
                    e.ref_name.as_deref(),
                    e.config.as_str(),
                )
            })
            .collect();
        assert_eq!(
            added,
            [
                (None, Some("2"), app.id().as_str()),
                (
                    Some("docker.io/dockhand-store24/app:3"),
                    Some("3"),
                    app.id().as_str()
                ),
                (
                    Some("docker.io/dockhand-store24/other:3"),
                    Some("docker.io/dockhand-store24/other:3"),
                    base.id().as_str()
                ),
            ],
            "{location}"
        );
        ok(&["verify", "-q", &location]);
        if have_tool(test, "skopeo") {
            for (name, id) in [
                ("2", app.id()),
                ("3", app.id()),
                ("docker.io/dockhand-store24/other:3", base.id()),
            ] {
                let at = format!("{location}:{name}");
                assert_eq!(skopeo_config(tmp.path(), &at), id, "{at}");
            }
        }
    }
    if have_tool(test, "umoci") {
        let listed = String::from_utf8(tool("umoci", &["ls", "--layout", s(&layout)])).unwrap();
        for name in ["2", "3", "docker.io/dockhand-store24/other:3"] {
            assert!(listed.lines().any(|l| l == name), "{name} not in {listed}");
        }
    }
    if have_tool(test, "podman") {
        let podman = Podman::new(&tmp.path().join("pm"));
        let pulled = podman.run(&["pull", "-q", &format!("oci-archive:{}:2", s(&oci_tar))]);
        let id = String::from_utf8(pulled).unwrap();
        assert_eq!(format!("sha256:{}", id.trim()), app.id());
    }
}

#[test]
fn names_added_to_a_docker_dir_are_what_docker_loads_from_it() {
    let test = "names_added_to_a_docker_dir_are_what_docker_loads_from_it";
    let tmp = tempdir();
    let (app, base, archive) = archive_of_app_and_base(tmp.path());
    let tree = tmp.path().join("tree");
    ok(&["convert", "-q", "--to", "docker-dir", s(&archive), s(&tree)]);
    let repositories = |tree: &Path| -> Value {
        serde_json::from_slice(&fs::read(tree.join("repositories")).unwrap()).unwrap()
    };
    let top = repositories(&tree)["dockhand-store24/app"]["1"].clone();
    assert!(top.is_string());
    ok(&[
        "tag",
        &format!("docker-dir:{}:dockhand-store24/app:latest", s(&tree)),
        "dockhand-store24/app:dir",
    ]);
    ok(&["untag", s(&tree), "dockhand-store24/base:1"]);
    // The legacy file follows manifest.json: the new name on app's top layer, base's
    // name gone.
    let repos = repositories(&tree);
    assert_eq!(repos["dockhand-store24/app"]["dir"], top);
    assert!(repos.get("dockhand-store24/base").is_none(), "{repos}");
    let names = names_by_id(s(&tree));
    assert!(names[&app.id()].contains(&"docker.io/dockhand-store24/app:dir".to_string()));
    assert!(names[&base.id()].is_empty());
    if have_docker(test) {
        // docker loads the tree packed as it is, by its manifest.json.
        let packed = tmp.path().join("packed.tar");
        tool("tar", &["-C", s(&tree), "-cf", s(&packed), "."]);
        let _lock = docker_lock();
        let _loaded = DockerImages(vec![app.id(), base.id()]);
        let (names, ids) = docker_load(&packed);
        assert!(names.contains("dockhand-store24/app:dir"), "{names:?}");
        assert!(ids.contains(&base.id()), "base loads unnamed: {ids:?}");
        assert_eq!(docker_id("dockhand-store24/app:dir"), app.id());
    }
}

#[test]
fn an_image_untagged_last_stays_unnamed_and_an_unknown_name_changes_nothing() {
    let test = "an_image_untagged_last_stays_unnamed_and_an_unknown_name_changes_nothing";
    let tmp = tempdir();
    let (app, base, archive) = archive_of_app_and_base(tmp.path());
    let before = fs::read(&archive).unwrap();
    let err = fails(&["untag", s(&archive), "dockhand-store24/base:1", "nosuch:1"]);
    assert!(
        err.contains("no image is named nosuch:1") && err.contains("dockhand-store24/app:latest"),
        "{err}"
    );
    assert!(fs::read(&archive).unwrap() == before, "the archive changed");
    ok(&["untag", s(&archive), "dockhand-store24/base:1"]);
    let entries = element_texts(&member(&archive, "manifest.json"), None);
    let base_entry: Value = serde_json::from_str(&entries[1]).unwrap();
    assert_eq!(
        base_entry["RepoTags"],
        Value::Null,
        "as docker save ID writes it"
    );
    let dangling = ok(&[
        "inspect",
        "--filter",
        "dangling=true",
        "--format",
        "{{.ID}} {{.Repository}}:{{.Tag}}",
        s(&archive),
    ]);
    assert_eq!(
        String::from_utf8(dangling).unwrap(),
        format!("{} <none>:<none>\n", &base.id()[7..19])
    );
    if have_docker(test) {
        let _lock = docker_lock();
        let _loaded = DockerImages(vec![app.id(), base.id()]);
        let (names, ids) = docker_load(&archive);
        assert!(ids.contains(&base.id()), "{ids:?}");
        assert!(!names.iter().any(|n| n.contains("base")), "{names:?}");
    }
    // In an OCI layout the entry stays, without a name, until rm removes it.
    let layout = tmp.path().join("layout");
    ok(&["convert", "-q", s(&archive), s(&layout)]);
    ok(&[
        "untag",
        s(&layout),
        "dockhand-store24/app:1",
        "dockhand-store24/app:latest",
    ]);
    let index: Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let unnamed: Vec<&Value> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e.get("annotations").is_none())
        .collect();
    assert_eq!(unnamed.len(), 2, "{index}");
    assert_eq!(names_by_id(s(&layout))[&app.id()], Vec::<String>::new());
    ok(&["rm", "--image", &app.id()[7..19], s(&layout)]);
    assert!(!names_by_id(s(&layout)).contains_key(&app.id()));
    ok(&["verify", "-q", s(&layout)]);
}

#[test]
fn a_name_given_to_another_image_moves_to_it() {
    let test = "a_name_given_to_another_image_moves_to_it";
    let tmp = tempdir();
    let (app, base, archive) = archive_of_app_and_base(tmp.path());
    let layout = tmp.path().join("layout");
    ok(&["convert", "-q", s(&archive), s(&layout)]);
    for src in [
        format!("docker-archive:{}", s(&archive)),
        format!("oci:{}", s(&layout)),
    ] {
        let out = run(&[
            "tag",
            &format!("{src}:dockhand-store24/base:1"),
            "dockhand-store24/app:latest",
        ]);
        assert!(out.status.success());
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(
            said.contains(&format!("no longer names {}", &app.id()[7..19])),
            "{said}"
        );
        let names = names_by_id(&src);
        assert_eq!(
            names[&app.id()],
            ["docker.io/dockhand-store24/app:1"],
            "{src}"
        );
        assert_eq!(
            names[&base.id()],
            [
                "docker.io/dockhand-store24/app:latest",
                "docker.io/dockhand-store24/base:1"
            ],
            "{src}"
        );
        ok(&["verify", "-q", &src]);
    }
    if have_docker(test) {
        let _lock = docker_lock();
        let _loaded = DockerImages(vec![app.id(), base.id()]);
        docker_load(&archive);
        assert_eq!(docker_id("dockhand-store24/app:latest"), base.id());
        assert_eq!(docker_id("dockhand-store24/app:1"), app.id());
    }
}

#[test]
fn rm_removes_the_image_and_only_what_no_other_image_uses() {
    let test = "rm_removes_the_image_and_only_what_no_other_image_uses";
    let tmp = tempdir();
    let (app, base, archive) = archive_of_app_and_base(tmp.path());
    let layout = tmp.path().join("layout");
    ok(&["convert", "-q", s(&archive), s(&layout)]);
    let doc = inspect(s(&layout));
    let app_doc = images(&doc)
        .iter()
        .find(|i| i["config"]["digest"] == app.id())
        .unwrap();
    let manifest = app_doc["manifest"]["digest"].as_str().unwrap().to_string();
    let own_layer = app_doc["layers"][1]["digest"].as_str().unwrap().to_string();
    let oci_tar = tmp.path().join("layout.tar");
    ok(&[
        "convert",
        "-q",
        "--to",
        "oci-archive",
        s(&archive),
        s(&oci_tar),
    ]);
    let before = blob_files(&layout);
    ok(&["rm", "--image", "dockhand-store24/app:latest", s(&layout)]);
    // Exactly its manifest, config and own layer went; the layer base shares stayed.
    let gone: BTreeSet<String> = before.difference(&blob_files(&layout)).cloned().collect();
    let expected: BTreeSet<String> = [&manifest, &app.id(), &own_layer]
        .iter()
        .map(|d| d[7..].to_string())
        .collect();
    assert_eq!(gone, expected);
    assert_eq!(names_by_id(s(&layout)).len(), 1);
    ok(&["verify", "-q", s(&layout)]);
    // Nothing is left that a collector would take.
    let dry = ok(&["gc", "--dry-run", s(&layout)]);
    assert!(dry.is_empty(), "{}", String::from_utf8_lossy(&dry));
    if have_tool(test, "umoci") {
        let copy = tmp.path().join("copy");
        copy_dir(&layout, &copy);
        tool("umoci", &["gc", "--layout", s(&copy)]);
        assert_eq!(
            blob_files(&copy),
            blob_files(&layout),
            "umoci gc finds more"
        );
        let listed = String::from_utf8(tool("umoci", &["ls", "--layout", s(&layout)])).unwrap();
        // base's name only (its tag "1" app's image had too: the whole name).
        assert_eq!(listed.trim(), "docker.io/dockhand-store24/base:1");
    }
    // In an oci-archive, the same blobs go.
    let entries_before = members(&oci_tar);
    ok(&["rm", &format!("oci-archive:{}:@0", s(&oci_tar))]);
    let gone: BTreeSet<String> = entries_before
        .difference(&members(&oci_tar))
        .cloned()
        .collect();
    let blobs: BTreeSet<String> = expected
        .iter()
        .map(|h| format!("blobs/sha256/{h}"))
        .collect();
    assert_eq!(gone, blobs);
    ok(&["verify", "-q", s(&oci_tar)]);
    if have_tool(test, "skopeo") {
        let location = format!("oci-archive:{}", s(&oci_tar));
        assert_eq!(skopeo_config(tmp.path(), &location), base.id());
    }
    // In an archive, its files go and nothing else.
    let entries_before = members(&archive);
    ok(&[
        "rm",
        &format!("docker-archive:{}:{}", s(&archive), &app.id()[7..]),
    ]);
    let gone: BTreeSet<String> = entries_before
        .difference(&members(&archive))
        .cloned()
        .collect();
    let layer_dir = &own_layer[7..];
    let expected: BTreeSet<String> = [
        format!("{}.json", &app.id()[7..]),
        format!("{layer_dir}/layer.tar"),
    ]
    .into_iter()
    .collect();
    assert_eq!(gone, expected);
    ok(&["verify", "-q", s(&archive)]);
    if have_tool(test, "skopeo") {
        let location = format!("docker-archive:{}:dockhand-store24/base:1", s(&archive));
        assert_eq!(skopeo_config(tmp.path(), &location), base.id());
    }
    if have_docker(test) {
        let _lock = docker_lock();
        let _loaded = DockerImages(vec![app.id(), base.id()]);
        let (names, ids) = docker_load(&archive);
        assert_eq!(
            names,
            BTreeSet::from(["dockhand-store24/base:1".to_string()])
        );
        assert!(ids.is_empty(), "{ids:?}");
    }
    // The last image of an archive is not removed: an empty archive loads nowhere.
    let kept = fs::read(&archive).unwrap();
    let err = fails(&["rm", "--image", "@0", s(&archive)]);
    assert!(err.contains("delete it instead"), "{err}");
    assert!(fs::read(&archive).unwrap() == kept);
}

/// A copy of the corpus's regclient test layout (multi-platform indexes, artifacts,
/// referrers fallback tags, a loop) in `dir`.
fn regclient_layout(dir: &Path) -> Option<PathBuf> {
    let corpus = corpus_item("regclient/testrepo")?;
    let layout = dir.join("testrepo");
    copy_dir(&corpus, &layout);
    Some(layout)
}

#[test]
fn rm_keeps_what_other_indexes_and_referrers_use() {
    let test = "rm_keeps_what_other_indexes_and_referrers_use";
    let tmp = tempdir();
    let Some(layout) = regclient_layout(tmp.path()) else {
        return;
    };
    let entries = |layout: &Path| -> Vec<(String, Option<String>)> {
        let index: Value =
            serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
        index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let name = e["annotations"]["org.opencontainers.image.ref.name"].as_str();
                (
                    e["digest"].as_str().unwrap().to_string(),
                    name.map(String::from),
                )
            })
            .collect()
    };
    let digest_of = |name: &str| -> String {
        let listed = entries(&layout);
        listed
            .iter()
            .find(|(_, n)| n.as_deref() == Some(name))
            .unwrap()
            .0
            .clone()
    };
    let unnamed_referrers_of = |layout: &Path, subject: &str| -> usize {
        entries(layout)
            .iter()
            .filter(|(d, n)| {
                let manifest = layout.join("blobs/sha256").join(&d[7..]);
                let doc: Value = serde_json::from_slice(&fs::read(manifest).unwrap()).unwrap();
                n.is_none() && doc["subject"]["digest"] == subject
            })
            .count()
    };
    // v3: two names (v3 and a digest tag), two unnamed referrers, layers shared with
    // the other images.
    let v3 = digest_of("v3");
    assert_eq!(unnamed_referrers_of(&layout, &v3), 2);
    let before = blob_files(&layout);
    ok(&["rm", "--image", "v3", s(&layout)]);
    let after = entries(&layout);
    assert!(after.iter().all(|(d, _)| *d != v3), "{after:?}");
    assert_eq!(unnamed_referrers_of(&layout, &v3), 0);
    for kept in [
        "v1", "v2", "b1", "b2", "b3", "a1", "a2", "loop", "mirror", "child",
    ] {
        assert!(
            after.iter().any(|(_, n)| n.as_deref() == Some(kept)),
            "{kept}"
        );
    }
    let gone = before.len() - blob_files(&layout).len();
    assert!(gone > 0, "nothing of v3 removed");
    // Every image and platform left reads whole, and nothing left is garbage, by
    // dockhand's count and umoci's.
    ok(&["verify", "-q", "--all", s(&layout)]);
    assert!(ok(&["gc", "--dry-run", s(&layout)]).is_empty());
    if have_tool(test, "umoci") {
        let copy = tmp.path().join("copy");
        copy_dir(&layout, &copy);
        tool("umoci", &["gc", "--layout", s(&copy)]);
        assert_eq!(
            blob_files(&copy),
            blob_files(&layout),
            "umoci gc finds more"
        );
    }
    // v2: two named artifacts (a1, a2) refer to it; they stay, and so does what they
    // refer to (umoci gc refuses a layout whose subject is missing).
    let v2 = digest_of("v2");
    let before = blob_files(&layout);
    let out = run(&["rm", "--image", "v2", s(&layout)]);
    assert!(out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("an artifact kept in the layout refers to it"),
        "{said}"
    );
    assert!(entries(&layout)
        .iter()
        .all(|(d, n)| *d != v2 || n.is_some() && n.as_deref() != Some("v2")));
    assert_eq!(blob_files(&layout), before);
    assert!(!names_by_id(s(&layout)).is_empty());
    if have_tool(test, "umoci") {
        let copy = tmp.path().join("copy2");
        copy_dir(&layout, &copy);
        tool("umoci", &["gc", "--layout", s(&copy)]);
        assert_eq!(blob_files(&copy), blob_files(&layout));
    }
    if have_tool(test, "skopeo") {
        for name in ["v1", "b2", "a1"] {
            skopeo(
                tmp.path(),
                &["inspect", "--raw", &format!("oci:{}:{name}", s(&layout))],
            );
        }
    }
}

#[test]
fn gc_removes_what_nothing_uses_as_umoci_gc_does_and_leaves_other_files() {
    let test = "gc_removes_what_nothing_uses_as_umoci_gc_does_and_leaves_other_files";
    let tmp = tempdir();
    let Some(layout) = regclient_layout(tmp.path()) else {
        return;
    };
    let blobs = layout.join("blobs/sha256");
    let mut junk = BTreeSet::new();
    for n in 0..3u64 {
        let bytes = Noise(n + 7).bytes(1000);
        let hex = sha256(&bytes)[7..].to_string();
        fs::write(blobs.join(&hex), &bytes).unwrap();
        junk.insert(format!("sha256:{hex}"));
    }
    let before = blob_files(&layout);
    // umoci's copy without the file umoci refuses (a name that is not a digest).
    let theirs = tmp.path().join("theirs");
    copy_dir(&layout, &theirs);
    fs::write(blobs.join("README"), b"notes").unwrap();
    let dry = ok(&["gc", "--dry-run", s(&layout)]);
    let listed: BTreeSet<String> = String::from_utf8(dry)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(listed, junk);
    assert_eq!(
        blob_files(&layout).len(),
        before.len() + 1,
        "a dry run removes nothing"
    );
    let out = run(&["gc", s(&layout)]);
    assert!(out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("left alone: blobs/sha256/README"), "{said}");
    assert!(blobs.join("README").is_file());
    let mut ours = blob_files(&layout);
    ours.remove("README");
    for j in &junk {
        assert!(!ours.contains(&j[7..]), "{j} kept");
    }
    ok(&["verify", "-q", "--all", s(&layout)]);
    if have_tool(test, "umoci") {
        tool("umoci", &["gc", "--layout", s(&theirs)]);
        assert_eq!(
            ours,
            blob_files(&theirs),
            "dockhand and umoci keep different blobs"
        );
    }
}

#[test]
fn conversions_into_a_layout_beside_gc_and_rm_lose_no_image_and_no_blob() {
    let test = "conversions_into_a_layout_beside_gc_and_rm_lose_no_image_and_no_blob";
    let tmp = tempdir();
    const RUNS: usize = 20;
    // Every image shares a base layer, and has one of its own big enough that a
    // conversion spends a while between its first blob and its index.
    let shared = layer("shared.bin", &Noise(1).bytes(2 << 20));
    let (app, base) = app_and_base();
    let layout = tmp.path().join("layout");
    let seed = write(
        tmp.path(),
        "seed.tar",
        &save_archive(&[app.clone(), base.clone()]),
    );
    ok(&["convert", "-q", s(&seed), s(&layout)]);
    let mut wanted = Vec::new();
    let mut archives = Vec::new();
    for i in 0..RUNS {
        let own = layer("own.bin", &Noise(100 + i as u64).bytes(4 << 20));
        let image = Img::new(
            &[&format!("dockhand-store24/run:{i}")],
            &[&shared, &own],
            "2024-03-01T00:00:00Z",
        );
        archives.push(write(
            tmp.path(),
            &format!("run{i}.tar"),
            &save_archive(std::slice::from_ref(&image)),
        ));
        wanted.push((i, image.id()));
    }
    // Collections, one after the other, for as long as conversions run.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let collector = {
        let (stop, layout) = (stop.clone(), layout.clone());
        std::thread::spawn(move || {
            let mut runs = 0;
            while runs < 3 || !stop.load(std::sync::atomic::Ordering::SeqCst) {
                ok(&["gc", "-q", s(&layout)]);
                runs += 1;
            }
            runs
        })
    };
    let runs: Vec<std::process::Child> = archives
        .iter()
        .map(|a| {
            dockhand()
                .args(["convert", "-q", s(a), &format!("oci:{}", s(&layout))])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    // And one image of the layout removed meanwhile.
    ok(&["rm", "-q", "--image", "dockhand-store24/app:1", s(&layout)]);
    let failures: Vec<String> = runs
        .into_iter()
        .map(|r| r.wait_with_output().unwrap())
        .filter(|out| !out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stderr).into_owned())
        .collect();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let collections = collector.join().unwrap();
    assert!(failures.is_empty(), "{failures:?}");
    assert!(collections >= 3, "gc ran {collections} time(s)");
    // Every conversion's image is there and reads whole, the removed one is gone.
    let ids = names_by_id(s(&layout));
    for (i, id) in &wanted {
        assert_eq!(
            ids.get(id),
            Some(&vec![format!("docker.io/dockhand-store24/run:{i}")]),
            "run {i}"
        );
    }
    assert!(!ids.contains_key(&app.id()) && ids.contains_key(&base.id()));
    ok(&["verify", "-q", s(&layout)]);
    assert!(ok(&["gc", "--dry-run", s(&layout)]).is_empty());
    if have_tool(test, "umoci") {
        let listed = String::from_utf8(tool("umoci", &["ls", "--layout", s(&layout)])).unwrap();
        for (i, _) in &wanted {
            assert!(listed.lines().any(|l| l == i.to_string()), "{i}: {listed}");
        }
    }
    if have_tool(test, "skopeo") {
        for (i, id) in &wanted {
            let at = format!("oci:{}:{i}", s(&layout));
            assert_eq!(&skopeo_config(tmp.path(), &at), id, "{at}");
        }
    }
}

/// Images with creation times, labels and names (one without) to list as docker does.
fn listed_images() -> Vec<Img> {
    let l = |n: u8| layer(&format!("l{n}"), &[n; 100]);
    let (a, b, c, d, e) = (l(1), l(2), l(3), l(4), l(5));
    let label = ("dockhand.test", "store24");
    vec![
        Img::new(
            &["dockhand-store24-list/web:1"],
            &[&a],
            "2021-01-01T10:00:00Z",
        )
        .labelled(&[label, ("tier", "web")]),
        Img::new(
            &[
                "dockhand-store24-list/web:2",
                "dockhand-store24-list/web:latest",
            ],
            &[&a, &b],
            "2021-03-01T10:00:00.5Z",
        )
        .labelled(&[label, ("tier", "web")]),
        Img::new(
            &["dockhand-store24-list/db:1"],
            &[&c],
            "2021-02-01T10:00:00Z",
        )
        .labelled(&[label, ("tier", "db")]),
        Img::new(&[], &[&c, &d], "2021-04-01T12:30:00Z").labelled(&[label, ("tier", "db")]),
        Img::new(
            &[
                "dockhand-store24-list/tools:y",
                "dockhand-store24-list/tools:x",
            ],
            &[&e],
            "2020-12-31T23:59:59+01:00",
        )
        .labelled(&[label]),
        // docker lists the names of one image in several repositories in no fixed
        // order: one repository per image here.
        Img::new(
            &["localhost:5000/dockhand-store24-list/tools:z"],
            &[&e, &a],
            "2020-06-01T00:00:00Z",
        )
        .labelled(&[label, ("tier", "tools")]),
    ]
}

#[test]
fn inspect_filters_and_lists_as_docker_images_does() {
    let test = "inspect_filters_and_lists_as_docker_images_does";
    if !have_docker(test) {
        return;
    }
    let tmp = tempdir();
    let list = listed_images();
    let archive = write(tmp.path(), "listed.tar", &save_archive(&list));
    let _lock = docker_lock();
    let _loaded = DockerImages(list.iter().map(Img::id).collect());
    docker_load(&archive);
    let label = "label=dockhand.test=store24";
    let format = "{{.Repository}}\\t{{.Tag}}\\t{{.ID}}\\t{{.CreatedAt}}";
    let cases: Vec<Vec<&str>> = vec![
        vec!["reference=dockhand-store24-list/*"],
        vec!["reference=dockhand-store24-list/web:*", "reference=*/db"],
        vec!["reference=*/dockhand-store24-list/tools"],
        vec![label, "label=tier=web"],
        vec![label, "label=tier"],
        vec![label, "before=dockhand-store24-list/db:1"],
        vec![label, "since=dockhand-store24-list/db:1"],
        vec![label, "dangling=true"],
        vec![label, "dangling=false"],
        vec![
            "reference=dockhand-store24-list/web",
            "since=dockhand-store24-list/web:1",
        ],
    ];
    let run_both = |filters: &[&str], format: &str| -> (String, String) {
        let mut docker = Command::new("docker");
        docker.env("TZ", "UTC").args(["images", "--format", format]);
        let mut ours = vec!["inspect", "--format", format];
        for f in filters {
            docker.args(["--filter", f]);
            ours.extend(["--filter", f]);
        }
        ours.push(s(&archive));
        let theirs = String::from_utf8(run_cmd(docker)).unwrap();
        (theirs, String::from_utf8(ok(&ours)).unwrap())
    };
    let mut rows_seen = 0;
    for filters in &cases {
        let (theirs, ours) = run_both(filters, format);
        assert_eq!(ours, theirs, "--filter {filters:?}");
        rows_seen += theirs.lines().count();
    }
    assert!(
        rows_seen >= 20,
        "the cases list too little: {rows_seen} rows"
    );
    // The table docker prints by default, header and alignment included (CREATED and
    // SIZE left out: relative times and the daemon's own sizes).
    let table = "table {{.Repository}}\\t{{.Tag}}\\t{{.ID}}\\t{{.CreatedAt}}";
    let (theirs, ours) = run_both(&[label], table);
    assert_eq!(ours, theirs);
    assert!(theirs.starts_with("REPOSITORY "), "{theirs}");
}

#[test]
fn filters_name_what_they_cannot_take() {
    let tmp = tempdir();
    let archive = write(tmp.path(), "listed.tar", &save_archive(&listed_images()));
    let a = s(&archive);
    for (filter, says) in [
        ("color=red", "invalid filter color"),
        ("dangling=maybe", "expected true or false"),
        ("reference=[", "invalid reference pattern"),
        ("reference", "expected name=value"),
    ] {
        let err = usage_error(&["inspect", "--filter", filter, a]);
        assert!(err.contains(says), "{filter}: {err}");
    }
    let err = fails(&["inspect", "--filter", "before=nosuch:1", a]);
    assert!(err.contains("nosuch:1"), "{err}");
    for format in ["{{json .}}", "{{.Nope}}", "{{.ID"] {
        let err = usage_error(&["inspect", "--format", format, a]);
        assert!(err.contains("--format"), "{format}: {err}");
    }
    // A pattern docker matches against the name without its tag, too.
    let out = ok(&[
        "inspect",
        "--filter",
        "reference=dockhand-store24-list/web",
        "--format",
        "{{.Tag}}",
        a,
    ]);
    assert_eq!(String::from_utf8(out).unwrap(), "2\nlatest\n1\n");
}

#[test]
fn parents_children_and_heads_follow_the_layers() {
    let tmp = tempdir();
    let l = |n: &str| layer(n, n.as_bytes());
    let (a, b, c, d, x) = (l("a"), l("b"), l("c"), l("d"), l("x"));
    let at = "2024-01-01T00:00:00Z";
    let family = [
        Img::new(&["fam/base:1"], &[&a], at),
        Img::new(&["fam/mid:1"], &[&a, &b], at),
        Img::new(&["fam/left:1"], &[&a, &b, &c], at),
        Img::new(&["fam/right:1"], &[&a, &b, &d], at),
        // The same layers as mid, another config: mid's sibling, not its parent.
        Img::new(&["fam/twin:1"], &[&a, &b], "2024-01-02T00:00:00Z"),
        Img::new(&[], &[&x], at),
    ];
    let ids: Vec<String> = family.iter().map(Img::id).collect();
    let archive = write(tmp.path(), "family.tar", &save_archive(&family));
    let doc = inspect(s(&archive));
    let relations: Vec<(Value, Value, Value)> = images(&doc)
        .iter()
        .map(|i| {
            (
                i["parent"].clone(),
                i["children"].clone(),
                i["head"].clone(),
            )
        })
        .collect();
    assert_eq!(
        relations,
        vec![
            (Value::Null, json!([ids[1], ids[4]]), json!(false)),
            (json!(ids[0]), json!([ids[2], ids[3]]), json!(false)),
            (json!(ids[1]), json!([]), json!(true)),
            (json!(ids[1]), json!([]), json!(true)),
            (json!(ids[0]), json!([]), json!(true)),
            (Value::Null, json!([]), json!(true)),
        ]
    );
    let short = |i: usize| ids[i][7..19].to_string();
    let tree = String::from_utf8(ok(&["inspect", "--tree", s(&archive)])).unwrap();
    let expected = format!(
        "├─{} @0 Size: 2.0 KiB Tags: docker.io/fam/base:1\n\
         │ ├─{} @1 Size: 4.0 KiB Tags: docker.io/fam/mid:1\n\
         │ │ ├─{} @2 Size: 6.0 KiB Tags: docker.io/fam/left:1\n\
         │ │ └─{} @3 Size: 6.0 KiB Tags: docker.io/fam/right:1\n\
         │ └─{} @4 Size: 4.0 KiB Tags: docker.io/fam/twin:1\n\
         └─{} @5 Size: 2.0 KiB\n",
        short(0),
        short(1),
        short(2),
        short(3),
        short(4),
        short(5)
    );
    assert_eq!(tree, expected);
    let text = String::from_utf8(ok(&["inspect", "--image", "@1", s(&archive)])).unwrap();
    assert!(
        text.contains(&format!("  parent:     @0 {}\n", short(0)))
            && text.contains(&format!("  children:   @2 {}, @3 {}\n", short(2), short(3))),
        "{text}"
    );
    let left = String::from_utf8(ok(&["inspect", "--image", "@2", s(&archive)])).unwrap();
    assert!(left.contains("  children:   none (a head)\n"), "{left}");
}

#[test]
fn thousands_of_images_relate_in_linear_work() {
    // 5,000 images over 20 layers: image n has the first n % 20 + 1 of them. The first
    // image of each length is the parent of every longer one's next step.
    const IMAGES: usize = 5_000;
    const DEPTH: usize = 20;
    let tmp = tempdir();
    let layers: Vec<Vec<u8>> = (0..DEPTH).map(|n| layer("f", &[n as u8; 10])).collect();
    let list: Vec<Img> = (0..IMAGES)
        .map(|n| {
            let own: Vec<&[u8]> = layers[..n % DEPTH + 1].iter().map(Vec::as_slice).collect();
            Img::new(
                &[],
                &own,
                &format!("2024-01-01T00:00:{:02}.{n:06}Z", n % 60),
            )
        })
        .collect();
    let archive = write(tmp.path(), "many.tar", &save_archive(&list));
    let (out, _) = run_guarded(&["inspect", "--json", s(&archive)], |_| {});
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let all = images(&doc);
    assert_eq!(all.len(), IMAGES);
    let id = |n: usize| json!(list[n].id());
    for n in [1, 19, 20, 21, 4_999] {
        let depth = n % DEPTH;
        let expected = if depth == 0 {
            Value::Null
        } else {
            id(depth - 1)
        };
        assert_eq!(all[n]["parent"], expected, "image {n}");
    }
    // The first image of each length but the longest has the next ones as children.
    assert_eq!(all[0]["children"].as_array().unwrap().len(), IMAGES / DEPTH);
    assert_eq!(all[DEPTH - 1]["head"], json!(true));
}

#[test]
fn what_cannot_be_changed_in_place_says_so() {
    let tmp = tempdir();
    let (app, base) = app_and_base();
    let archive = write(tmp.path(), "images.tar", &save_archive(&[app, base]));
    let a = s(&archive);
    // Several images, none named: which one is asked for.
    let err = fails(&["tag", a, "x:1"]);
    assert!(
        err.contains("holds 2 images") && err.contains("@1") && err.contains("dockhand inspect"),
        "{err}"
    );
    let dir = tmp.path().join("dir");
    ok(&["convert", "-q", "--to", "dir", "--image", "@0", a, s(&dir)]);
    let err = fails(&["tag", &format!("dir:{}", s(&dir)), "x:1"]);
    assert!(
        err.contains("cannot be changed in place: a dir: layout"),
        "{err}"
    );
    let gz = tmp.path().join("images.tar.gz");
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut encoder, &fs::read(&archive).unwrap()).unwrap();
    fs::write(&gz, encoder.finish().unwrap()).unwrap();
    let err = fails(&["untag", s(&gz), "dockhand-store24/base:1"]);
    assert!(err.contains("gzip-compressed archive"), "{err}");
    let err = fails(&["tag", "-", "x:1"]);
    assert!(err.contains("stdin is read once"), "{err}");
    let err = fails(&["gc", a]);
    assert!(
        err.contains("gc collects the blobs of a layout directory"),
        "{err}"
    );
    let err = usage_error(&["rm", a]);
    assert!(err.contains("--image"), "{err}");
    let err = usage_error(&["tag", &format!("docker-archive:{a}:@0"), "x@sha256:abc"]);
    assert!(err.contains("not a digest"), "{err}");
    // A blobs directory that is a link may be other layouts' too: nothing is collected
    // or removed from it.
    let layout = tmp.path().join("layout");
    ok(&["convert", "-q", a, s(&layout)]);
    let shared = tmp.path().join("shared-blobs");
    fs::rename(layout.join("blobs"), &shared).unwrap();
    std::os::unix::fs::symlink(&shared, layout.join("blobs")).unwrap();
    let junk = shared.join("sha256").join(&sha256(b"junk")[7..]);
    fs::write(&junk, b"junk").unwrap();
    let held = blob_files(&layout);
    let err = fails(&["gc", s(&layout)]);
    assert!(err.contains("blobs is a link"), "{err}");
    // (dockhand reads no link leaving the layout: rm fails reading it.)
    fails(&["rm", "--image", "@0", s(&layout)]);
    assert_eq!(blob_files(&layout), held);
}

#[test]
fn an_interrupted_rewrite_leaves_the_archive_whole() {
    let tmp = tempdir();
    let big = layer("big.bin", &Noise(3).bytes(96 << 20));
    let image = Img::new(&["dockhand-store24/big:1"], &[&big], "2024-01-01T00:00:00Z");
    let archive = write(tmp.path(), "big.tar", &save_archive(&[image]));
    let before = sha256(&fs::read(&archive).unwrap());
    let mut child = dockhand()
        .args(["tag", s(&archive), "dockhand-store24/big:2"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Killed once the new archive is being written beside the old one.
    let staging = || {
        fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .find(|n| n.starts_with(".big.tar") && n.contains(dockhand::STAGING_MARKER))
    };
    let start = std::time::Instant::now();
    while staging().is_none() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "done before it was seen"
        );
        assert!(start.elapsed() < std::time::Duration::from_secs(60));
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(sha256(&fs::read(&archive).unwrap()), before);
    // The next run does it, and the archive reads whole.
    ok(&["tag", s(&archive), "dockhand-store24/big:2"]);
    ok(&["verify", "-q", s(&archive)]);
    assert!(names_by_id(s(&archive))
        .values()
        .any(|n| n.contains(&"docker.io/dockhand-store24/big:2".to_string())));
}
