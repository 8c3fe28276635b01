//! `dockhand export`: an image's final filesystem as one tar, compared with what
//! `docker export` of a container created from the same image writes (images built
//! here for the purpose: deletions through whiteouts, an opaque directory, hard links
//! whose target is shadowed or deleted, a link to a lower layer's file, a file
//! replaced by a directory and a directory by a file, a symlink retargeted, a mode
//! change), from every transport, to stdout; hostile layers; memory bounded by paths.

use crate::common::build::put;
use crate::common::layer_tar::{gzip_archive, save_of, LayerTar};
use crate::common::registry::{isolated_dockhand, Auth, Registry};
use crate::common::*;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::json;

/// A name no other test (nor another run on the same daemon) uses.
fn unique(label: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "dockhand-export-test/{label}:{}-{nanos}",
        std::process::id()
    )
}

/// The image of the comparison with `docker export`: every case the issue names.
fn sample_layers() -> Vec<Vec<u8>> {
    let base = LayerTar::new(1_600_000_000)
        .dir("etc/")
        .file("etc/config", b"config v1")
        .file("etc/keep.conf", b"keep v1")
        .dir("usr/")
        .dir("usr/bin/")
        .file_owned("usr/bin/tool", b"#!/bin/sh\necho tool\n", 0o755, 0)
        .dir("opt/")
        .dir("opt/old/")
        .file("opt/old/a", b"old a")
        .dir("opt/old/sub/")
        .file("opt/old/sub/b", b"old b")
        .dir("data/")
        .file("data/file", b"a file, then a directory")
        .dir("keep/")
        .file("keep/inner", b"under a directory, then a file")
        .dir("lib/")
        .file("lib/t1", b"t1, shadowed above")
        .hardlink("lib/h1", "lib/t1")
        .file("lib/t2", b"t2, deleted above")
        .hardlink("lib/h2", "lib/t2")
        .file("lib/t3", b"t3, deleted above, two links")
        .hardlink("lib/h3a", "lib/t3")
        .hardlink("lib/h3b", "lib/t3")
        .file("lib/t4", b"t4, kept")
        .hardlink("lib/h4", "lib/t4")
        .symlink("link", "etc/config")
        .dir("home/")
        .dir_owned("home/user/", 0o700, 1000)
        .file_owned("home/user/.profile", b"PS1='$ '\n", 0o600, 1000)
        .file("implied/deep/file", b"no directory entries above me")
        .dir("srv/")
        .file("srv/x", b"the whole directory goes")
        .done();
    let middle = LayerTar::new(1_700_000_000)
        .dir("etc/")
        .whiteout("etc/.wh.config")
        .dir("opt/old/")
        .whiteout("opt/old/.wh..wh..opq")
        .file("opt/old/new", b"new in an opaque directory")
        .dir("data/")
        .dir("data/file/")
        .file("data/file/inside", b"inside the new directory")
        .file("keep", b"now a file")
        .dir("lib/")
        .file("lib/t1", b"t1 v2")
        .whiteout("lib/.wh.t2")
        .whiteout("lib/.wh.t3")
        .hardlink("lib/cross", "lib/t4")
        .symlink("link", "usr/bin/tool")
        .dir("usr/bin/")
        .file_owned("usr/bin/tool", b"#!/bin/sh\necho tool\n", 0o700, 0)
        .whiteout(".wh.srv")
        .done();
    let top = LayerTar::new(1_800_000_000)
        .dir("etc/")
        // A whiteout and a new file of the same name in one layer: the whiteout
        // deletes the lower file only.
        .whiteout("etc/.wh.keep.conf")
        .file("etc/keep.conf", b"keep v2")
        // Absolute names and link targets: Docker reads them from the root.
        .file("/etc/absolute.conf", b"named from the root")
        .hardlink("etc/absolute-link", "/etc/absolute.conf")
        .file_owned("top", b"top layer", 0o640, 33)
        .done();
    vec![base, middle, top]
}

/// Directories the sample's layers only imply (no entry names them).
const IMPLIED: &[&str] = &["implied", "implied/deep"];

/// What Docker's runtime adds to every container it creates (its init layer), which
/// `docker export` shows and no image holds: left out of the comparison on both
/// sides. `etc` and `dev` are compared as directories, without their times (the init
/// layer writes into them).
const DOCKER_ADDS: &[&str] = &[
    ".dockerenv",
    "dev/console",
    "dev/pts",
    "dev/shm",
    "etc/hostname",
    "etc/hosts",
    "etc/mtab",
    "etc/resolv.conf",
    "proc",
    "sys",
];

/// One path of an exported tar.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Item {
    kind: char,
    mode: u32,
    owner: (u64, u64),
    mtime: u64,
    /// A symlink's target, or a file's content digest (a hard link's: its file's).
    what: String,
    /// The paths sharing this file (hard links), sorted; empty when it has one name.
    names: Vec<String>,
}

/// Every path of an exported tar, hard links resolved to their file.
fn read_export(tar: &[u8]) -> BTreeMap<String, Item> {
    let mut items: BTreeMap<String, Item> = BTreeMap::new();
    let mut links: Vec<(String, String)> = Vec::new();
    let mut archive = tar::Archive::new(tar);
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let name = raw
            .trim_start_matches("./")
            .trim_end_matches('/')
            .to_string();
        if name.is_empty() {
            continue;
        }
        let h = entry.header();
        let kind = h.entry_type().as_byte() as char;
        let link = entry
            .link_name_bytes()
            .map(|l| {
                String::from_utf8_lossy(&l)
                    .trim_start_matches("./")
                    .to_string()
            })
            .unwrap_or_default();
        let mut item = Item {
            kind,
            mode: h.mode().unwrap() & 0o7777,
            owner: (h.uid().unwrap(), h.gid().unwrap()),
            mtime: h.mtime().unwrap(),
            what: String::new(),
            names: Vec::new(),
        };
        match kind {
            '0' => {
                let mut data = Vec::new();
                entry.read_to_end(&mut data).unwrap();
                item.what = sha256(&data);
            }
            '2' => item.what = link,
            '1' => links.push((name.clone(), link)),
            _ => {}
        }
        assert!(items.insert(name.clone(), item).is_none(), "{name} twice");
    }
    // Hard links: the file they share, and who shares it.
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, target) in &links {
        let file = items
            .get(target)
            .unwrap_or_else(|| panic!("{name} links to {target}, which is not in the tar"))
            .clone();
        assert_eq!(file.kind, '0', "{name} links to {target}, no file");
        let item = items.get_mut(name).unwrap();
        item.kind = '0';
        item.what = file.what;
        let group = groups
            .entry(target.clone())
            .or_insert_with(|| vec![target.clone()]);
        group.push(name.clone());
    }
    for group in groups.values_mut() {
        group.sort();
        for name in group.iter() {
            items.get_mut(name).unwrap().names = group.clone();
        }
    }
    items
}

fn docker(args: &[&str]) -> Vec<u8> {
    tool("docker", args)
}

/// `docker rmi -f` of an image when dropped (also when the test fails).
struct Loaded(String);

impl Drop for Loaded {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rmi", "-f", &self.0])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// `docker export` of a container created (never started) from `image`.
fn docker_export(image: &str, dir: &Path) -> Vec<u8> {
    let id = String::from_utf8(docker(&["create", "--entrypoint", "/x", image]))
        .unwrap()
        .trim()
        .to_string();
    let out = dir.join("docker-export.tar");
    let exported = Command::new("docker")
        .args(["export", "-o", s(&out), &id])
        .output()
        .unwrap();
    let _ = Command::new("docker")
        .args(["rm", "-f", &id])
        .stdout(Stdio::null())
        .status();
    assert!(exported.status.success(), "{exported:?}");
    std::fs::read(out).unwrap()
}

/// `docker load` the docker-save archive `archive` (its image named `name`), and
/// compare `dockhand export` of the archive with `docker export` of a container
/// created from the image; `implied` lists the directories no layer has an entry for.
/// Returns dockhand's export, read.
fn assert_exports_as_docker_does(
    archive: &str,
    name: &str,
    implied: &[&str],
    tmp: &Path,
) -> BTreeMap<String, Item> {
    docker(&["load", "-i", archive]);
    let _loaded = Loaded(name.to_string());
    let theirs = read_export(&docker_export(name, tmp));
    let out = tmp.join("rootfs.tar");
    ok(&["export", "-q", "--force", archive, s(&out)]);
    let ours = read_export(&std::fs::read(&out).unwrap());

    let added = |p: &str| DOCKER_ADDS.contains(&p);
    let ours_paths: Vec<&String> = ours.keys().filter(|p| !added(p)).collect();
    let theirs_paths: Vec<&String> = theirs
        .keys()
        // Docker adds dev itself when the image has none.
        .filter(|p| !added(p) && (*p != "dev" || ours.contains_key("dev")))
        .collect();
    assert_eq!(ours_paths, theirs_paths, "the same paths");
    for (path, mine) in &ours {
        let mut mine = mine.clone();
        let mut docker_has = theirs[path].clone();
        if mine.kind == '5' {
            // A directory's time: Docker's extraction leaves the time of a directory
            // whose children a later layer changes (without an entry for it) as the
            // time of that change, and its init layer writes into etc and dev.
            mine.mtime = 0;
            docker_has.mtime = 0;
        }
        if implied.contains(&path.as_str()) {
            // A directory no entry names: dockhand gives it mode 0755 (Docker >= 23
            // and containerd create one so); Docker 20.10's layer extraction, 0600.
            assert_eq!(mine.mode, 0o755, "{path}");
            assert!(
                [0o755, 0o600].contains(&docker_has.mode),
                "{path}: {docker_has:?}"
            );
            docker_has.mode = 0o755;
        }
        assert_eq!(mine, docker_has, "{path}");
    }
    ours
}

#[test]
fn the_export_holds_what_docker_export_of_a_container_holds() {
    if !have_docker("the_export_holds_what_docker_export_of_a_container_holds") {
        return;
    }
    let _lock = docker_lock();
    let tmp = tempdir();
    let name = unique("sample");
    let archive = put(tmp.path(), "sample.tar", &save_of(sample_layers(), &name));
    let ours = assert_exports_as_docker_does(&archive, &name, IMPLIED, tmp.path());
    // The cases, spelled out (the comparison above proves docker agrees).
    for gone in [
        "etc/config",
        "opt/old/a",
        "opt/old/sub",
        "lib/t2",
        "lib/t3",
        "srv",
        "keep/inner",
    ] {
        assert!(!ours.contains_key(gone), "{gone} is deleted");
    }
    assert_eq!(ours["lib/h1"].what, sha256(b"t1, shadowed above"));
    assert_eq!(ours["lib/t1"].what, sha256(b"t1 v2"));
    assert_eq!(ours["lib/h3a"].names, ["lib/h3a", "lib/h3b"]);
    assert_eq!(ours["lib/cross"].names, ["lib/cross", "lib/h4", "lib/t4"]);
    // The file of a link takes the times of its last link extracted.
    assert_eq!(ours["lib/t4"].mtime, ours["lib/cross"].mtime);
    assert_eq!(ours["link"].what, "usr/bin/tool");
    assert_eq!(ours["usr/bin/tool"].mode, 0o700);
    assert_eq!((ours["data/file"].kind, ours["keep"].kind), ('5', '0'));
    assert_eq!(ours["etc/keep.conf"].what, sha256(b"keep v2"));
    assert_eq!(ours["home/user/.profile"].owner, (1000, 1000));
    assert_eq!(
        ours["etc/absolute.conf"].names,
        ["etc/absolute-link", "etc/absolute.conf"]
    );
}

#[test]
fn real_images_export_as_docker_exports_them() {
    // dive's test image, built by docker and by kaniko (whose layers name the root
    // `/`, gzipped): busybox (hundreds of hard links to one file), 14 layers, a file
    // and a directory deleted through whiteouts.
    for item in ["dive/test-docker-image.tar", "dive/test-kaniko-image.tar"] {
        let Some(corpus) = corpus_item(item) else {
            return;
        };
        if !have_docker("real_images_export_as_docker_exports_them") {
            return;
        }
        let _lock = docker_lock();
        let tmp = tempdir();
        let name = unique("dive");
        let archive = tmp.path().join("dive.tar");
        ok(&["convert", "-q", "--tag", &name, s(&corpus), s(&archive)]);
        let ours = assert_exports_as_docker_does(s(&archive), &name, &[], tmp.path());
        assert!(ours["bin/ls"].names.len() > 300, "{item}: busybox's links");
        assert!(!ours.contains_key("root/example/somefile3.txt"), "{item}");
    }
}

/// The sample image in a docker-save archive in `dir`, under a fresh name.
fn sample_archive(dir: &Path) -> (String, String) {
    let name = unique("transports");
    let archive = put(dir, "sample.tar", &save_of(sample_layers(), &name));
    (name, archive)
}

#[test]
fn every_transport_and_stdout_give_the_same_bytes_and_runs_are_identical() {
    let tmp = tempdir();
    let t = tmp.path();
    let (name, archive) = sample_archive(t);
    let reference = t.join("from-archive.tar");
    ok(&["export", "-q", &archive, s(&reference)]);
    let reference = std::fs::read(&reference).unwrap();
    // Twice: the same bytes.
    let again = t.join("again.tar");
    ok(&["export", "-q", &archive, s(&again)]);
    assert!(
        std::fs::read(&again).unwrap() == reference,
        "two runs differ"
    );
    // stdin to stdout.
    let piped = pipe(
        &["export", "-q", "-", "-"],
        &std::fs::read(&archive).unwrap(),
    );
    assert!(piped.status.success(), "{piped:?}");
    assert!(piped.stdout == reference, "stdin to stdout differs");
    // An OCI layout with gzip layers.
    let layout = t.join("layout");
    ok(&[
        "convert",
        "-q",
        "--layer-compression",
        "gzip",
        &archive,
        s(&layout),
    ]);
    let out = ok(&["export", "-q", &format!("oci:{}", s(&layout)), "-"]);
    assert!(out == reference, "the OCI layout's export differs");

    // A registry (layers gzipped by the push).
    if let Some(reg) = Registry::start(Auth::None) {
        let remote = format!("docker://{}/export/sample:1", reg.addr);
        let push = isolated_dockhand(
            t,
            &["convert", "-q", "--tls-verify=false", &archive, &remote],
        )
        .output()
        .unwrap();
        assert!(push.status.success(), "{push:?}");
        let out = t.join("from-registry.tar");
        let pulled =
            isolated_dockhand(t, &["export", "-q", "--tls-verify=false", &remote, s(&out)])
                .output()
                .unwrap();
        assert!(pulled.status.success(), "{pulled:?}");
        assert!(
            std::fs::read(&out).unwrap() == reference,
            "the registry's export differs"
        );
    }

    // A Docker daemon.
    if have_docker("every_transport_and_stdout_give_the_same_bytes_and_runs_are_identical") {
        let _lock = docker_lock();
        docker(&["load", "-i", &archive]);
        let _loaded = Loaded(name.clone());
        let out = ok(&["export", "-q", &format!("docker-daemon:{name}"), "-"]);
        assert!(out == reference, "the daemon's export differs");
    }
}

#[test]
fn a_source_of_several_images_needs_image() {
    let multi = fixture("docker-save-multi");
    let tmp = tempdir();
    let out = tmp.path().join("rootfs.tar");
    let run = dockhand()
        .args(["export", multi.input(), s(&out)])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2), "{run:?}");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("--image") && stderr.contains("@1"),
        "{stderr}"
    );
    assert!(!out.exists());
    // Picked, it exports, and says which.
    let run = dockhand()
        .args(["export", "--image", "@1", multi.input(), s(&out)])
        .output()
        .unwrap();
    assert!(run.status.success(), "{run:?}");
    assert!(String::from_utf8_lossy(&run.stderr).starts_with("exported image @1 "));
    assert!(out.exists());
    // An existing OUT: refused, then replaced with --force.
    let before = std::fs::read(&out).unwrap();
    let stderr = fails(&["export", "--image", "@0", multi.input(), s(&out)]);
    assert!(stderr.contains("--force"), "{stderr}");
    assert_eq!(std::fs::read(&out).unwrap(), before);
    ok(&[
        "export",
        "-q",
        "--force",
        "--image",
        "@0",
        multi.input(),
        s(&out),
    ]);
    assert_ne!(std::fs::read(&out).unwrap(), before);
}

/// The layers of a hostile case: a valid base, then the hostile layer.
fn hostile(entries: LayerTar) -> Vec<Vec<u8>> {
    vec![
        LayerTar::new(1).dir("ok/").file("ok/file", b"fine").done(),
        entries.done(),
    ]
}

#[test]
fn hostile_layers_fail_with_one_line_naming_the_layer_and_entry_and_leave_nothing() {
    let cases: Vec<(&str, Vec<Vec<u8>>, &str)> = vec![
        (
            "climbing",
            hostile(LayerTar::new(2).file("../../x", b"x")),
            "climbs out of the root",
        ),
        (
            "whiteout-dotdot",
            hostile(LayerTar::new(2).whiteout(".wh...")),
            "a whiteout of no nameable file",
        ),
        (
            "whiteout-dotdot-in-dir",
            hostile(LayerTar::new(2).whiteout("ok/.wh...")),
            "a whiteout of no nameable file",
        ),
        (
            "whiteout-climbing",
            hostile(LayerTar::new(2).whiteout("../.wh.x")),
            "climbs out of the root",
        ),
        (
            "link-climbing",
            hostile(LayerTar::new(2).hardlink("l", "../../etc/shadow")),
            "hard link climbing out",
        ),
        (
            "link-absolute-climbing",
            hostile(LayerTar::new(2).hardlink("l", "/../etc/shadow")),
            "hard link climbing out",
        ),
        (
            "link-to-nothing",
            hostile(LayerTar::new(2).hardlink("l", "ok/none")),
            "neither its layer nor any below",
        ),
        (
            "link-to-dir",
            hostile(LayerTar::new(2).hardlink("l", "ok")),
            "a directory in layer 1",
        ),
        (
            "under-a-file",
            hostile(LayerTar::new(2).file("f", b"x").file("f/g", b"y")),
            "lies under f",
        ),
    ];
    for (label, layers, needle) in cases {
        let tmp = tempdir();
        let archive = put(tmp.path(), "in.tar", &save_of(layers, "hostile/export:1"));
        let out = tmp.path().join("out.tar");
        let stderr = fails(&["export", &archive, s(&out)]);
        assert_eq!(stderr.lines().count(), 1, "{label}: {stderr}");
        for part in [
            "in.tar: image docker.io/hostile/export:1: layer 2 ",
            "entry ",
            needle,
        ] {
            assert!(stderr.contains(part), "{label}: {part:?} not in {stderr}");
        }
        // Nothing left: no output, no staging file beside it.
        let left: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left, ["in.tar"], "{label}");
        // To stdout: nothing at all (the first pass refuses before anything is written).
        let run = dockhand().args(["export", &archive, "-"]).output().unwrap();
        assert_eq!(run.status.code(), Some(1), "{label}");
        assert!(run.stdout.is_empty(), "{label}");
    }
}

#[test]
fn a_layer_lying_about_its_sizes_fails_in_bounded_memory() {
    let tmp = tempdir();
    // An entry claiming 1 TiB where the layer holds nothing more: truncated.
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_path("big").unwrap();
    h.set_size(1 << 40);
    h.set_cksum();
    let mut lying = h.as_bytes().to_vec();
    lying.extend_from_slice(&[0u8; 1024]);
    let archive = put(
        tmp.path(),
        "in.tar",
        &save_of(hostile_with(lying), "hostile/export:1"),
    );
    let out = tmp.path().join("out.tar");
    let (run, rss) = run_measured(&["export", &archive, s(&out)], tmp.path());
    assert_eq!(run.status.code(), Some(1), "{run:?}");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("truncated") && stderr.contains("layer 2"),
        "{stderr}"
    );
    assert!(!out.exists());
    if let Some(kb) = rss {
        assert!(kb < RSS_LIMIT_KB, "peak RSS {kb} KiB");
    }
}

fn hostile_with(layer: Vec<u8>) -> Vec<Vec<u8>> {
    vec![LayerTar::new(1).file("ok", b"fine").done(), layer]
}

#[test]
fn memory_grows_with_paths_not_bytes() {
    // A 192 MiB file (a gzip layer of a few hundred KiB) and many small ones.
    let tmp = tempdir();
    let t = tmp.path();
    let size = 192usize << 20;
    let mut big = LayerTar::new(5)
        .dir("big/")
        .big_file("big/file", size, 7, 7);
    for i in 0..2000 {
        big = big.file(&format!("small/{i:04}"), format!("{i}").as_bytes());
    }
    let layer = big.done();
    let archive = gzip_archive(t, "big.tar", &layer);
    drop(layer);
    let out = t.join("rootfs.tar");
    let (run, rss) = run_measured(&["export", "-q", &archive, s(&out)], t);
    assert!(run.status.success(), "{run:?}");
    let len = std::fs::metadata(&out).unwrap().len();
    assert!(len > size as u64, "{len}");
    if let Some(kb) = rss {
        assert!(
            kb < RSS_LIMIT_KB,
            "peak RSS {kb} KiB for a {size}-byte file"
        );
    }
}

/// The config of the only image of a docker-archive.
fn archive_config(path: &Path) -> serde_json::Value {
    let doc = inspect(s(path));
    let images = images(&doc);
    assert_eq!(images.len(), 1, "{doc:#}");
    let mut archive = tar::Archive::new(std::fs::File::open(path).unwrap());
    let manifest: serde_json::Value = {
        let mut found = None;
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            if entry.path().unwrap().to_str() == Some("manifest.json") {
                let mut text = Vec::new();
                entry.read_to_end(&mut text).unwrap();
                found = Some(serde_json::from_slice(&text).unwrap());
            }
        }
        found.expect("manifest.json")
    };
    let config_name = manifest[0]["Config"].as_str().unwrap().to_string();
    let mut archive = tar::Archive::new(std::fs::File::open(path).unwrap());
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().to_str() == Some(config_name.as_str()) {
            let mut text = Vec::new();
            entry.read_to_end(&mut text).unwrap();
            return serde_json::from_slice(&text).unwrap();
        }
    }
    panic!("no config {config_name}");
}

#[test]
fn flatten_makes_one_layer_of_the_export_with_one_history_entry() {
    let tmp = tempdir();
    let t = tmp.path();
    let (name, archive) = sample_archive(t);
    let source_config = archive_config(Path::new(&archive));
    let source_id = config_digests(&inspect(&archive))[0].clone();
    let exported = t.join("exported.tar");
    ok(&["export", "-q", &archive, s(&exported)]);
    let exported = std::fs::read(&exported).unwrap();

    let flat = t.join("flat.tar");
    let flatten = |out: &Path| {
        let status = dockhand()
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .args(["flatten", "-q", "--tag", &format!("{name}-flat")])
            .args(["--change", "LABEL flat=yes", &archive, s(out)])
            .output()
            .unwrap();
        assert!(status.status.success(), "{status:?}");
    };
    flatten(&flat);
    let config = archive_config(&flat);
    // One layer: the export's bytes, so its diff_id is their sha256.
    assert_eq!(
        config["rootfs"]["diff_ids"],
        json!([sha256(&exported)]),
        "{config:#}"
    );
    let history = config["history"].as_array().unwrap();
    assert_eq!(history.len(), 1, "{config:#}");
    let created_by = history[0]["created_by"].as_str().unwrap();
    assert!(
        created_by.contains(&source_id) && created_by.contains("flatten"),
        "{created_by}"
    );
    assert_eq!(config["created"], "2023-11-14T22:13:20Z");
    assert_eq!(config["config"]["Labels"]["flat"], "yes", "{config:#}");
    // Everything else is the source's.
    for field in ["architecture", "os"] {
        assert_eq!(config[field], source_config[field], "{field}");
    }
    // The flattened image's filesystem is the source's.
    let again = t.join("flat-export.tar");
    ok(&["export", "-q", s(&flat), s(&again)]);
    assert_eq!(
        read_export(&std::fs::read(&again).unwrap()),
        read_export(&exported)
    );
    // The same run at the same time gives the same image.
    let twice = t.join("twice.tar");
    flatten(&twice);
    assert_eq!(
        config_digests(&inspect(s(&twice))),
        config_digests(&inspect(s(&flat)))
    );
    assert_ne!(config_digests(&inspect(s(&flat)))[0], source_id);

    // Docker loads it as one layer, with the ID dockhand gave it.
    if have_docker("flatten") {
        let _lock = docker_lock();
        let flat_name = format!("{name}-flat");
        docker(&["load", "-i", s(&flat)]);
        let _loaded = Loaded(flat_name.clone());
        let seen: serde_json::Value =
            serde_json::from_slice(&docker(&["image", "inspect", &flat_name])).unwrap();
        assert_eq!(seen[0]["Id"], json!(config_digests(&inspect(s(&flat)))[0]));
        assert_eq!(seen[0]["RootFS"]["Layers"].as_array().unwrap().len(), 1);
    }

    // Without any change, into an OCI layout: still one layer (flattening is the edit).
    let layout = t.join("layout");
    ok(&[
        "flatten",
        "-q",
        &archive,
        &format!("oci:{}:flat", s(&layout)),
    ]);
    let doc = inspect(&format!("oci:{}", s(&layout)));
    let diff_ids: Vec<&serde_json::Value> = images(&doc)[0]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| &l["diff_id"])
        .collect();
    assert_eq!(diff_ids, [&json!(sha256(&exported))], "{doc:#}");
}
