//! Selecting images by image ID (whole, bare hex, or a prefix of at least 12 hex
//! characters), by manifest digest, and by `NAME@sha256:...`, through `--image` and the
//! `SRC:REF` form, on the real fixtures; and the names an image selected so keeps.

use crate::common::*;

use serde_json::Value;

/// (config digest, manifest digest) of every image of a fixture, by `@N`.
fn digests(name: &str) -> Vec<(String, Option<String>)> {
    fixture(name).expected["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|im| {
            (
                im["config"]["digest"].as_str().unwrap().to_string(),
                im["manifest"]["digest"].as_str().map(str::to_string),
            )
        })
        .collect()
}

/// `inspect --json` with `args` before the source; the `index` and config digest of
/// every image shown.
fn picked(args: &[&str]) -> Vec<(u64, String)> {
    let mut all = vec!["inspect", "--json"];
    all.extend_from_slice(args);
    let doc: Value = serde_json::from_slice(&ok(&all)).unwrap();
    images(&doc)
        .iter()
        .map(|im| {
            (
                im["index"].as_u64().unwrap(),
                im["config"]["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Require exit 1 with a single `error:` line; returns it.
fn one_line_error(args: &[&str]) -> String {
    let stderr = fails(args);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    stderr
}

#[test]
fn inspect_selects_by_whole_id_bare_hex_and_a_12_character_prefix() {
    for name in ["docker-save-multi", "skopeo-oci-multi", "docker-dir-multi"] {
        let f = fixture(name);
        for (n, (id, _)) in digests(name).iter().enumerate() {
            let hex = id.strip_prefix("sha256:").unwrap();
            let forms = [
                id.clone(),
                hex.to_string(),
                hex[..12].to_string(),
                format!("sha256:{}", &hex[..12]),
                hex[..20].to_string(),
            ];
            for form in &forms {
                assert_eq!(
                    picked(&["--image", form, f.input()]),
                    [(n as u64, id.clone())],
                    "{name}: --image {form}"
                );
            }
        }
    }
}

#[test]
fn the_src_ref_form_takes_ids_and_manifest_digests() {
    let multi = fixture("docker-save-multi");
    let (id, _) = &digests("docker-save-multi")[2];
    let hex = id.strip_prefix("sha256:").unwrap();
    for form in [id.as_str(), &hex[..12]] {
        let src = format!("docker-archive:{}:{form}", multi.input());
        assert_eq!(picked(&[&src]), [(2, id.clone())], "{src}");
    }

    let oci = fixture("skopeo-oci-multi");
    let (id, manifest) = &digests("skopeo-oci-multi")[1];
    let manifest = manifest.as_ref().expect("an OCI layout has manifests");
    let prefix = &id.strip_prefix("sha256:").unwrap()[..12];
    for form in [manifest.as_str(), id, prefix] {
        let src = format!("oci:{}:{form}", oci.input());
        assert_eq!(picked(&[&src]), [(1, id.clone())], "{src}");
    }
}

#[test]
fn a_manifest_digest_selects_only_whole_and_after_sha256() {
    let oci = fixture("skopeo-oci-multi");
    for (n, (id, manifest)) in digests("skopeo-oci-multi").iter().enumerate() {
        let manifest = manifest.as_ref().unwrap();
        assert_eq!(
            picked(&["--image", manifest, oci.input()]),
            [(n as u64, id.clone())]
        );
        // Bare or shortened, it is not an image ID, so nothing matches.
        let hex = manifest.strip_prefix("sha256:").unwrap();
        for form in [hex, &hex[..12], &manifest[..19]] {
            let err = one_line_error(&["inspect", "--image", form, oci.input()]);
            assert!(
                err.starts_with(&format!(
                    "error: {}: no image has the name, ID or digest \"{form}\"; the source holds: @0 ",
                    oci.input()
                )),
                "{err}"
            );
        }
    }
}

#[test]
fn name_at_digest_takes_the_manifest_digest_or_on_a_docker_archive_the_id() {
    let oci = fixture("skopeo-oci-multi");
    let (id, manifest) = &digests("skopeo-oci-multi")[1];
    let manifest = manifest.as_ref().unwrap();
    for form in [
        format!("localhost:5000/dockhand/app@{manifest}"),
        format!("localhost:5000/dockhand/app:v2@{manifest}"),
        format!("localhost:5000/dockhand/app@{id}"),
    ] {
        assert_eq!(
            picked(&["--image", &form, oci.input()]),
            [(1, id.clone())],
            "{form}"
        );
    }
    let multi = fixture("docker-save-multi");
    let (id, _) = &digests("docker-save-multi")[0];
    for form in [
        format!("dockhand-fixture/multi-app@{id}"),
        format!("docker.io/dockhand-fixture/multi-app:1.0@{id}"),
        format!("localhost:5000/dockhand/app@{id}"),
    ] {
        assert_eq!(
            picked(&["--image", &form, multi.input()]),
            [(0, id.clone())],
            "{form}"
        );
        let src = format!("docker-archive:{}:{form}", multi.input());
        assert_eq!(picked(&[&src]), [(0, id.clone())], "{src}");
    }
    // The digest of another image, another repository or tag: no match.
    let (other, _) = &digests("docker-save-multi")[1];
    for form in [
        format!("dockhand-fixture/multi-app@{other}"),
        format!("example.com/dockhand/other@{id}"),
        format!("dockhand-fixture/multi-app:2.0@{id}"),
    ] {
        let err = one_line_error(&["inspect", "--image", &form, multi.input()]);
        assert!(err.contains("no image has the name, ID or digest"), "{err}");
    }
}

#[test]
fn a_prefix_shorter_than_12_characters_is_not_an_id() {
    let multi = fixture("docker-save-multi");
    let all = digests("docker-save-multi");
    let short = |i: usize| all[i].0[7..19].to_string();
    let (id, _) = &all[0];
    let eleven = &id.strip_prefix("sha256:").unwrap()[..11];
    for args in [
        vec!["inspect", "--image", eleven, multi.input()],
        vec!["verify", "--image", eleven, multi.input()],
    ] {
        let err = one_line_error(&args);
        assert_eq!(
            err.trim_end(),
            format!(
                "error: {src}: no image matches \"{eleven}\" (an image ID prefix needs at least 12 hex characters); \
                 the source holds: @0 {} docker.io/dockhand-fixture/multi-app:1.0, \
                 @1 {} example.com/dockhand/dup:1.0, @2 {} docker.io/library/dockhand-multi-base:1.0; \
                 `dockhand inspect {src}` lists every image with its names and IDs",
                short(0),
                short(1),
                short(2),
                src = multi.input(),
            )
        );
    }
    let src = format!("docker-archive:{}:{eleven}", multi.input());
    let tmp = tempdir();
    let out = tmp.path().join("out");
    one_line_error(&["convert", "-q", &src, s(&out)]);
    assert!(!out.exists());
    let sha_eleven = format!("sha256:{eleven}");
    one_line_error(&["inspect", "--image", &sha_eleven, multi.input()]);
}

#[test]
fn an_unknown_id_lists_the_ids_the_source_holds() {
    let multi = fixture("docker-save-multi");
    let err = one_line_error(&["inspect", "--image", "0123456789ab", multi.input()]);
    let ids: Vec<String> = digests("docker-save-multi")
        .iter()
        .map(|(id, _)| id["sha256:".len()..][..12].to_string())
        .collect();
    assert_eq!(
        err.trim_end(),
        format!(
            "error: {src}: no image has the name, ID or digest \"0123456789ab\"; the source holds: \
             @0 {} (docker.io/dockhand-fixture/multi-app:1.0, localhost:5000/dockhand/app:v2), \
             @1 {} (example.com/dockhand/dup:1.0), @2 {} (docker.io/library/dockhand-multi-base:1.0); \
             `dockhand inspect {src}` lists every image with its names and IDs",
            ids[0],
            ids[1],
            ids[2],
            src = multi.input(),
        )
    );
}

#[test]
fn a_malformed_name_at_digest_is_a_usage_error() {
    let multi = fixture("docker-save-multi");
    for bad in ["busybox@sha256:0123", "busybox@md5:0123", "Busybox@sha256:"] {
        let out = run(&["inspect", "--image", bad, multi.input()]);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.starts_with("error: invalid image reference "),
            "{stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
}

#[test]
fn convert_by_id_writes_the_image_without_names_as_docker_save_does() {
    let tmp = tempdir();
    let multi = fixture("docker-save-multi");
    let (id, _) = &digests("docker-save-multi")[0];
    let prefix = &id.strip_prefix("sha256:").unwrap()[..12];
    let tags = |path: &std::path::Path| -> Vec<Vec<String>> {
        images(&inspect(s(path))).iter().map(tags_of).collect()
    };
    let configs = |path: &std::path::Path| config_digests(&inspect(s(path)));

    // By ID alone: no names, in a docker-archive and in an OCI layout.
    let by_id = tmp.path().join("by-id.tar");
    ok(&["convert", "-q", "--image", prefix, multi.input(), s(&by_id)]);
    assert_eq!(configs(&by_id), [id.as_str()]);
    assert_eq!(tags(&by_id), [Vec::<String>::new()]);
    let oci = tmp.path().join("by-id-oci");
    let src = format!("docker-archive:{}:{id}", multi.input());
    ok(&["convert", "-q", &src, s(&oci)]);
    assert_eq!(configs(&oci), [id.as_str()]);
    assert_eq!(tags(&oci), [Vec::<String>::new()]);

    // By ID and by one of its names: that name.
    let both = tmp.path().join("both.tar");
    ok(&[
        "convert",
        "-q",
        "--image",
        prefix,
        "--image",
        "localhost:5000/dockhand/app:v2",
        multi.input(),
        s(&both),
    ]);
    assert_eq!(tags(&both), [["localhost:5000/dockhand/app:v2"]]);

    // By NAME@sha256: the tags of that repository.
    let canonical = tmp.path().join("canonical.tar");
    let form = format!("localhost:5000/dockhand/app@{id}");
    ok(&[
        "convert",
        "-q",
        "--image",
        &form,
        multi.input(),
        s(&canonical),
    ]);
    assert_eq!(tags(&canonical), [["localhost:5000/dockhand/app:v2"]]);

    // By ID, named with --tag.
    let tagged = tmp.path().join("tagged.tar");
    ok(&[
        "convert",
        "-q",
        "--image",
        prefix,
        "--tag",
        "x/y:1",
        multi.input(),
        s(&tagged),
    ]);
    assert_eq!(tags(&tagged), [["docker.io/x/y:1"]]);
}

#[test]
fn convert_by_manifest_digest_from_an_oci_layout_keeps_the_manifest() {
    let tmp = tempdir();
    let oci = fixture("skopeo-oci-multi");
    let (id, manifest) = &digests("skopeo-oci-multi")[0];
    let manifest = manifest.as_ref().unwrap();
    let out = tmp.path().join("out");
    ok(&["convert", "-q", "--image", manifest, oci.input(), s(&out)]);
    let doc = inspect(s(&out));
    assert_eq!(config_digests(&doc), [id.as_str()]);
    assert_eq!(manifest_digests(&doc), [manifest.as_str()]);
    assert_eq!(tags_of(&images(&doc)[0]), Vec::<String>::new());
}
