//! Several sources into one output (`convert SRC... DST`, `--images-from FILE`), as
//! `cp` takes several files: every image of every source in one archive or layout,
//! each blob once, every name kept; docker, skopeo and podman read the result.

use std::fs;
use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::common::registry::{isolated_dockhand, RegistryFixture};
use crate::common::*;

/// The names `inspect --json` gives each image of `source`, by image ID, sorted.
fn names_by_id(source: &str) -> Vec<(String, Vec<String>)> {
    identity(&inspect(source))
        .into_iter()
        .map(|(id, _, tags)| (id, tags))
        .collect()
}

fn run_in(tmp: &Path, args: &[&str]) -> Output {
    isolated_dockhand(tmp, args)
        .output()
        .expect("running dockhand")
}

/// Run dockhand, require exit `code` and one escaped error line; the line.
fn refused(tmp: &Path, code: i32, args: &[&str]) -> String {
    let out = run_in(tmp, args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    stderr
}

#[test]
fn every_image_of_every_source_lands_in_one_archive_each_blob_once() {
    let tmp = tempdir();
    let t = tmp.path();
    let basic = fixture("docker-save-basic");
    let multi = fixture("docker-save-multi");
    let oci = fixture("skopeo-oci");
    // Each source's images, by ID with their names: the union is what is written.
    let mut want: Vec<(String, Vec<String>)> = Vec::new();
    for f in [&basic, &multi, &oci] {
        for (id, tags) in names_by_id(f.input()) {
            match want.iter_mut().find(|(i, _)| *i == id) {
                Some((_, held)) => {
                    held.extend(tags);
                    held.sort();
                    held.dedup();
                }
                None => want.push((id, tags)),
            }
        }
    }
    want.sort();
    assert!(want.len() >= 4, "{want:?}");

    // Into an OCI layout: every image, every blob file once.
    let layout = t.join("all");
    let out = run_in(
        t,
        &[
            "convert",
            basic.input(),
            multi.input(),
            oci.input(),
            s(&layout),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("\n  3:@0 "), "{stderr}");
    let mut got = names_by_id(s(&layout));
    // An OCI ref name without a repository is no tag: compare the tagged images.
    got.retain(|(_, tags)| !tags.is_empty());
    let mut tagged = want.clone();
    tagged.retain(|(_, tags)| !tags.is_empty());
    assert_eq!(got, tagged);
    assert_eq!(images(&inspect(s(&layout))).len(), want.len());
    // Each layer blob the sources share is one file: blobs = distinct digests named.
    let doc = inspect(s(&layout));
    let mut named: Vec<String> = Vec::new();
    for image in images(&doc) {
        named.push(image["config"]["digest"].as_str().unwrap().to_string());
        for layer in image["layers"].as_array().unwrap() {
            named.push(layer["digest"].as_str().unwrap().to_string());
        }
        named.push(image["manifest"]["digest"].as_str().unwrap().to_string());
    }
    named.sort();
    named.dedup();
    let files = fs::read_dir(layout.join("blobs/sha256")).unwrap().count();
    assert_eq!(files, named.len());
    ok(&["verify", s(&layout)]);
    if have_tool(&test_name(), "skopeo") {
        for name in [
            "docker.io/dockhand-fixture/basic:1.0",
            "example.com/dockhand/dup:1.0",
        ] {
            let raw = skopeo(
                t,
                &["inspect", "--raw", &format!("oci:{}:{name}", s(&layout))],
            );
            assert!(!raw.is_empty());
        }
    }

    // Into a docker-archive, which docker loads with every name.
    let archive = t.join("all.tar");
    let out = run_in(
        t,
        &[
            "convert",
            "-q",
            basic.input(),
            multi.input(),
            oci.input(),
            s(&archive),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut got = names_by_id(s(&archive));
    got.retain(|(_, tags)| !tags.is_empty());
    assert_eq!(got, tagged);
    if have_docker(&test_name()) {
        let _guard = docker_lock();
        let loaded = std::process::Command::new("docker")
            .args(["load", "-i", s(&archive)])
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&loaded.stdout);
        assert!(loaded.status.success(), "{said}");
        for (_, tags) in &tagged {
            for tag in tags {
                let short = tag
                    .trim_start_matches("docker.io/library/")
                    .trim_start_matches("docker.io/");
                assert!(said.contains(short), "{tag}: {said}");
                let _ = std::process::Command::new("docker")
                    .args(["rmi", "-f", tag])
                    .output();
            }
        }
    }
}

#[test]
fn the_same_image_from_two_sources_is_written_once_with_both_names() {
    let tmp = tempdir();
    let t = tmp.path();
    let basic = fixture("docker-save-basic");
    // The same image under another name, in another format.
    let renamed = t.join("renamed");
    ok(&[
        "convert",
        "--tag",
        "example.com/other/name:2",
        basic.input(),
        &format!("oci:{}", s(&renamed)),
    ]);
    let out = t.join("both.tar");
    ok(&["convert", "-q", basic.input(), s(&renamed), s(&out)]);
    let got = names_by_id(s(&out));
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].1.contains(&"example.com/other/name:2".to_string()),
        "{got:?}"
    );
    assert!(
        got[0]
            .1
            .contains(&"docker.io/dockhand-fixture/basic:1.0".to_string()),
        "{got:?}"
    );
}

#[test]
fn images_from_lists_sources_one_per_line_with_comments() {
    let tmp = tempdir();
    let t = tmp.path();
    let basic = fixture("docker-save-basic");
    let oci = fixture("skopeo-oci");
    let multi = fixture("docker-save-multi");
    let list = t.join("images.txt");
    fs::write(
        &list,
        format!(
            "# what the mirror needs\n{}\n\n   oci:{}   \n",
            basic.input(),
            oci.input()
        ),
    )
    .unwrap();
    let out = t.join("listed");
    let said = run_in(
        t,
        &["convert", "--images-from", s(&list), multi.input(), s(&out)],
    );
    let stderr = String::from_utf8_lossy(&said.stderr);
    assert!(said.status.success(), "{stderr}");
    // The file's sources first, then the argument's.
    assert!(stderr.contains("\n  1:@0 "), "{stderr}");
    assert!(stderr.contains("\n  3:@2 "), "{stderr}");
    let count = |source: &str| images(&inspect(source)).len();
    assert_eq!(
        count(s(&out)),
        count(basic.input()) + count(oci.input()) + count(multi.input())
    );
    // A list naming nothing but DST: one line saying what is missing.
    fs::write(&list, "# nothing yet\n").unwrap();
    let said = refused(
        t,
        2,
        &["convert", "--images-from", s(&list), s(&t.join("x"))],
    );
    assert!(said.contains("needs a source"), "{said}");
    assert!(!t.join("x").exists());
}

#[test]
fn options_that_name_one_image_and_bad_source_lists_are_refused() {
    let tmp = tempdir();
    let t = tmp.path();
    let basic = fixture("docker-save-basic");
    let multi = fixture("docker-save-multi");
    let out = t.join("out.tar");
    let said = refused(
        t,
        1,
        &[
            "convert",
            "--tag",
            "a/b:1",
            basic.input(),
            multi.input(),
            s(&out),
        ],
    );
    assert!(said.contains("names one image"), "{said}");
    assert!(said.contains("1:@0") && said.contains("2:@"), "{said}");
    let said = refused(
        t,
        2,
        &[
            "convert",
            "--digestfile",
            s(&t.join("d")),
            basic.input(),
            multi.input(),
            s(&out),
        ],
    );
    assert!(said.contains("one image"), "{said}");
    let said = refused(t, 2, &["convert", "-", "-", s(&out)]);
    assert!(said.contains("stdin"), "{said}");
    // A destination that is also one of the sources (not the first).
    let copy = t.join("copy.tar");
    fs::copy(multi.input(), &copy).unwrap();
    let said = refused(t, 2, &["convert", basic.input(), s(&copy), s(&copy)]);
    assert!(said.contains("both a source and the destination"), "{said}");
    assert_eq!(fs::read(&copy).unwrap(), fs::read(multi.input()).unwrap());
    assert!(!out.exists());
}

#[test]
fn images_of_two_registries_go_into_one_archive_unchanged() {
    let Some(a) = RegistryFixture::builder().start() else {
        return;
    };
    let Some(b) = RegistryFixture::builder().start() else {
        return;
    };
    let t = a.dir();
    let basic = fixture("docker-save-basic");
    let oci = fixture("skopeo-oci");
    let first = a.remote("team/basic:1");
    let second = b.remote("other/oci:2");
    for (input, remote) in [(basic.input(), &first), (oci.input(), &second)] {
        let out = run_in(t, &["convert", "-q", "--tls-verify=false", input, remote]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let archive = t.join("bundle.tar");
    let carried = format!("oci-archive:{}", s(&archive));
    let out = run_in(
        t,
        &[
            "convert",
            "--referrers",
            "--tls-verify=false",
            &first,
            &second,
            &carried,
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let doc = inspect(&carried);
    let mut tags: Vec<String> = images(&doc)
        .iter()
        .flat_map(|i| i["tags"].as_array().unwrap().clone())
        .map(|t| t.as_str().unwrap().to_string())
        .collect();
    tags.sort();
    let (ha, hb) = (a.addr().to_string(), b.addr().to_string());
    let mut want = vec![format!("{ha}/team/basic:1"), format!("{hb}/other/oci:2")];
    want.sort();
    assert_eq!(tags, want);
    // The manifests each registry holds, byte for byte (a Docker v2 one stays Docker
    // v2 when referrers are carried: they name its digest).
    let digests: Vec<Value> = images(&doc)
        .iter()
        .map(|i| i["manifest"]["digest"].clone())
        .collect();
    for remote in [&first, &second] {
        let at = String::from_utf8(ok(&["digest", "--tls-verify=false", remote])).unwrap();
        assert!(
            digests.iter().any(|d| d.as_str() == Some(at.trim())),
            "{at} {digests:?}"
        );
    }
}
