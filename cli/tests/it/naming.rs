//! The names each output carries: RepoTags as full references, manifest.json pointing at
//! regular files, selecting by name narrowing the names, OCI ref names kept as written.
//! (What podman, buildah and docker make of them is in the interop tests.)

use crate::common::interop::*;
use crate::common::*;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use serde_json::Value;

/// Every entry of a tar: name (without `./`) -> its tar entry type.
fn tar_entry_types(path: &Path) -> BTreeMap<String, tar::EntryType> {
    let mut archive = tar::Archive::new(fs::File::open(path).unwrap());
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let name = e.path().unwrap().to_string_lossy().into_owned();
            (
                name.trim_start_matches("./").to_string(),
                e.header().entry_type(),
            )
        })
        .collect()
}

fn repo_tags(manifest: &Value) -> Vec<Vec<String>> {
    manifest
        .as_array()
        .unwrap()
        .iter()
        .map(|item| json_strings(&item["RepoTags"]))
        .collect()
}

#[test]
fn docker_archives_carry_full_references_and_repositories_keeps_dockers_form() {
    let tmp = tempdir();
    let out = tmp.path().join("out.tar");
    ok(&[
        "convert",
        fixture("docker-save-multi").input(),
        s(&out),
        "-q",
    ]);
    let manifest = read_json(&out, true, "manifest.json");
    let mut tags: Vec<String> = repo_tags(&manifest).into_iter().flatten().collect();
    tags.sort();
    assert_eq!(
        tags,
        [
            "docker.io/dockhand-fixture/multi-app:1.0",
            "docker.io/library/dockhand-multi-base:1.0",
            "example.com/dockhand/dup:1.0",
            "localhost:5000/dockhand/app:v2",
        ]
    );
    let repositories = read_json(&out, true, "repositories");
    let repos: BTreeSet<&String> = repositories.as_object().unwrap().keys().collect();
    assert_eq!(
        repos.into_iter().cloned().collect::<Vec<_>>(),
        [
            "dockhand-fixture/multi-app",
            "dockhand-multi-base",
            "example.com/dockhand/dup",
            "localhost:5000/dockhand/app",
        ]
    );
    // Both read back as the same names.
    let back = inspect(s(&out));
    let original = inspect(fixture("docker-save-multi").input());
    assert_eq!(identity(&back), identity(&original));
}

#[test]
fn manifest_json_names_a_regular_file_for_every_layer_of_every_image() {
    let tmp = tempdir();
    for (src, label) in [
        (fixture("docker-save-multi").input().to_string(), "multi"),
        (fixture("docker-dir-multi").input().to_string(), "dir-multi"),
    ] {
        let out = tmp.path().join(format!("{label}.tar"));
        ok(&["convert", &src, s(&out), "-q"]);
        let types = tar_entry_types(&out);
        let manifest = read_json(&out, true, "manifest.json");
        let mut layers = 0;
        let mut links = 0;
        for item in manifest.as_array().unwrap() {
            for layer in json_strings(&item["Layers"]) {
                layers += 1;
                assert_eq!(
                    types.get(&layer),
                    Some(&tar::EntryType::Regular),
                    "{label}: manifest.json layer {layer}"
                );
            }
        }
        // The pre-1.10 layout still has a layer.tar in every v1 directory: links for
        // the directories of shared layers.
        for (name, kind) in &types {
            if name.ends_with("/layer.tar") && *kind == tar::EntryType::Symlink {
                links += 1;
            }
        }
        assert!(layers > 0, "{label}");
        assert!(
            links > 0,
            "{label}: the fixture shares layers between images"
        );

        // The same for the directory form.
        let dir = tmp.path().join(format!("{label}-dir"));
        ok(&["convert", &src, &format!("docker-dir:{}", s(&dir)), "-q"]);
        let manifest = read_json(&dir, false, "manifest.json");
        for item in manifest.as_array().unwrap() {
            for layer in json_strings(&item["Layers"]) {
                let meta = fs::symlink_metadata(dir.join(&layer)).unwrap();
                assert!(meta.file_type().is_file(), "{label}: docker-dir {layer}");
            }
        }
        assert_eq!(
            config_digests(&inspect(s(&dir))),
            config_digests(&inspect(&src))
        );
        ok(&["verify", s(&out)]);
        ok(&["verify", s(&dir)]);
    }
}

#[test]
fn selecting_by_name_carries_only_that_name_and_by_number_every_name() {
    let tmp = tempdir();
    let src = fixture("docker-save-basic").input().to_string();
    let config = fixture("docker-save-basic").config_digests()[0].clone();
    let convert_to = |label: &str, args: &[&str]| {
        let out = tmp.path().join(label);
        let dst = format!("docker-archive:{}", s(&out));
        let mut all = vec!["convert"];
        all.extend_from_slice(args);
        all.extend([dst.as_str(), "-q"]);
        ok(&all);
        tags_by_config(s(&out))
    };
    let only = |tags: &[&str]| {
        BTreeMap::from([(
            config.clone(),
            tags.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
        )])
    };
    let latest = "docker.io/dockhand-fixture/basic:latest";
    let one = "docker.io/dockhand-fixture/basic:1.0";
    assert_eq!(
        convert_to("a.tar", &[&src, "--image", "dockhand-fixture/basic:latest"]),
        only(&[latest])
    );
    // A bare tag, and the source reference form.
    assert_eq!(convert_to("b.tar", &[&src, "--image", "1.0"]), only(&[one]));
    assert_eq!(
        convert_to(
            "c.tar",
            &[&format!("docker-archive:{src}:dockhand-fixture/basic:1.0")]
        ),
        only(&[one])
    );
    // Two names of one image: both, once.
    assert_eq!(
        convert_to("d.tar", &[&src, "--image", "1.0", "--image", "latest"]),
        only(&[one, latest])
    );
    // By number, or with no selection: every name.
    assert_eq!(
        convert_to("e.tar", &[&src, "--image", "@0"]),
        only(&[one, latest])
    );
    assert_eq!(
        convert_to("f.tar", &[&src, "--image", "@0", "--image", "latest"]),
        only(&[one, latest])
    );
    assert_eq!(convert_to("g.tar", &[&src]), only(&[one, latest]));

    // An OCI output of one selected name has one index entry (what podman load needs).
    let oci = tmp.path().join("one.tar");
    ok(&[
        "convert",
        &src,
        "--image",
        "latest",
        &format!("oci-archive:{}", s(&oci)),
        "-q",
    ]);
    let entries = oci_entries(&oci, true);
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].image_name.as_deref(), Some(latest));
    assert_eq!(entries[0].config, config);
}

#[test]
fn selecting_one_image_of_many_by_name_narrows_only_its_names() {
    let tmp = tempdir();
    let src = fixture("docker-save-multi").input().to_string();
    let out = tmp.path().join("out");
    ok(&[
        "convert",
        &src,
        "--image",
        "localhost:5000/dockhand/app:v2",
        "--image",
        "example.com/dockhand/dup:1.0",
        &format!("oci:{}", s(&out)),
        "-q",
    ]);
    let mut names: Vec<String> = oci_entries(&out, false)
        .into_iter()
        .map(|e| e.image_name.unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "example.com/dockhand/dup:1.0",
            "localhost:5000/dockhand/app:v2"
        ]
    );
}

/// index.json ref names of an OCI layout, by config digest.
fn ref_names_by_config(root: &Path, tar: bool) -> BTreeSet<(String, String)> {
    oci_entries(root, tar)
        .into_iter()
        .filter_map(|e| Some((e.config, e.ref_name?)))
        .collect()
}

#[test]
fn oci_ref_names_survive_oci_to_oci_as_they_were_written() {
    let tmp = tempdir();
    // skopeo wrote full references and a bare tag as ref names here.
    let src = fixture("skopeo-oci-multi");
    let original = ref_names_by_config(&src.input, false);
    assert!(
        original.iter().any(|(_, n)| n.contains('/')),
        "{original:?}"
    );
    assert!(
        original.iter().any(|(_, n)| !n.contains('/')),
        "{original:?}"
    );

    let dir = tmp.path().join("dir");
    ok(&["convert", src.input(), &format!("oci:{}", s(&dir)), "-q"]);
    assert_eq!(ref_names_by_config(&dir, false), original);
    let tar = tmp.path().join("out.tar");
    ok(&[
        "convert",
        s(&dir),
        &format!("oci-archive:{}", s(&tar)),
        "-q",
    ]);
    assert_eq!(ref_names_by_config(&tar, true), original);
    let again = tmp.path().join("again");
    ok(&["convert", s(&tar), &format!("oci:{}", s(&again)), "-q"]);
    assert_eq!(ref_names_by_config(&again, false), original);

    // Selected by its full ref name, the image keeps exactly that name.
    let full = original
        .iter()
        .find(|(_, n)| n.starts_with("localhost:5000/"))
        .unwrap();
    let picked = tmp.path().join("picked");
    ok(&[
        "convert",
        &format!("oci:{}:{}", src.input(), full.1),
        &format!("oci:{}", s(&picked)),
        "-q",
    ]);
    assert_eq!(
        ref_names_by_config(&picked, false),
        BTreeSet::from([full.clone()])
    );

    // Docker tags still get the bare tag as ref name.
    let from_docker = tmp.path().join("from-docker");
    ok(&[
        "convert",
        fixture("docker-save-basic").input(),
        &format!("oci:{}", s(&from_docker)),
        "-q",
    ]);
    let names: BTreeSet<String> = ref_names_by_config(&from_docker, false)
        .into_iter()
        .map(|(_, n)| n)
        .collect();
    assert_eq!(
        names,
        BTreeSet::from(["1.0".to_string(), "latest".to_string()])
    );
}
