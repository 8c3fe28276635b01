//! dockhand and a docker daemon: docker load of dockhand's docker archives (of every
//! fixture, and of conversions of what skopeo writes), dockhand reading what docker
//! save writes, and the docker save | dockhand | dockhand | docker load pipeline.
//!
//! Every test here calls `have_docker` first and returns early with a visible SKIPPED
//! line when no daemon answers (a failure under DOCKHAND_REQUIRE_INTEROP=1), and holds
//! `docker_lock()` for its whole run, so that one test removing an image never races
//! another loading it (as every other test that uses the daemon does).

use crate::common::interop::*;
use crate::common::*;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

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

/// gzip and zstd OCI outputs read by skopeo and loaded back into docker: skopeo copies
/// each image of a gzip layout to a docker archive; zstd layouts (which skopeo 1.9
/// cannot write to a docker archive) go through skopeo's re-compression to gzip, and
/// through dockhand; docker loads every result with the source's image ID and layers.
#[test]
fn compressed_outputs_load_into_docker_through_skopeo_and_dockhand() {
    const TEST: &str = "compressed_outputs_load_into_docker_through_skopeo_and_dockhand";
    if !have_tool(TEST, "skopeo") || !have_docker(TEST) {
        return;
    }
    let _lock = docker_lock();
    let tmp = tempdir();
    let f = fixture("docker-save-multi");
    let source = inspect(f.input());
    for compression in ["gzip", "zstd"] {
        let layout = tmp.path().join(compression);
        ok(&[
            "convert",
            f.input(),
            "--layer-compression",
            compression,
            &format!("oci:{}", s(&layout)),
            "-q",
        ]);
        for (n, entry) in oci_entries(&layout, false).iter().enumerate() {
            let reference = entry.ref_name.clone().unwrap();
            let image_name = entry.image_name.clone().unwrap();
            let from = format!("oci:{}:{reference}", s(&layout));
            let what = format!("{compression} {image_name}");
            let archive = tmp.path().join(format!("{compression}-{n}.tar"));
            let to = format!("docker-archive:{}:{image_name}", s(&archive));
            if compression == "gzip" {
                skopeo_copy(tmp.path(), &from, &to);
            } else {
                let regz = tmp.path().join(format!("regz-{n}"));
                let regz_location = format!("oci:{}:{reference}", s(&regz));
                skopeo(
                    tmp.path(),
                    &[
                        "--insecure-policy",
                        "copy",
                        "-q",
                        "--dest-compress-format",
                        "gzip",
                        &from,
                        &regz_location,
                    ],
                );
                skopeo_copy(tmp.path(), &regz_location, &to);
            }
            let doc = inspect(s(&archive));
            let want = images(&source)
                .iter()
                .find(|im| config_of(im) == entry.config)
                .unwrap();
            assert_eq!(diff_ids_of(&images(&doc)[0]), diff_ids_of(want), "{what}");
            load_and_check(
                &archive,
                &doc,
                &format!("skopeo copy of {what}, docker load"),
            );
        }
        // dockhand back to a docker archive: every image, every name.
        let back = tmp.path().join(format!("{compression}-dockhand.tar"));
        ok(&[
            "convert",
            s(&layout),
            &format!("docker-archive:{}", s(&back)),
            "-q",
        ]);
        let doc = inspect(s(&back));
        assert_eq!(
            identity(&doc),
            identity(&source),
            "{compression} -> docker-archive"
        );
        load_and_check(
            &back,
            &doc,
            &format!("{compression} layout -> dockhand -> docker load"),
        );
    }
}
