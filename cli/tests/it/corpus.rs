//! The public corpus (real archives from other projects' test data), when
//! DOCKHAND_CORPUS points at it: valid items convert to OCI layouts that
//! oci-image-tool validates, keeping config digests; broken items fail cleanly.

use crate::common::*;

use std::path::PathBuf;

/// Items oci-image-tool (the Debian 1.0-era release) cannot validate although they are
/// valid today, with why. Their conversion is still checked in every other way.
const VALIDATOR_LIMITS: &[(&str, &str)] = &[
    (
        "container-libs/buildkit-docker.tar",
        "0 layers; image-spec 1.0 schema required >= 1",
    ),
    (
        "container-libs/buildkit-oci.tar",
        "0 layers; image-spec 1.0 schema required >= 1",
    ),
    (
        "go-containerregistry/test_index_media_type",
        "a Helm artifact: its media types are not image types",
    ),
    (
        "dive/test-oci-zstd-image.tar",
        "+zstd layers are newer than the validator",
    ),
];

fn corpus() -> Option<(PathBuf, Vec<CorpusItem>)> {
    let Ok(root) = std::env::var("DOCKHAND_CORPUS") else {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr().lock(),
            "SKIPPED corpus tests: DOCKHAND_CORPUS is not set"
        );
        return None;
    };
    let root = PathBuf::from(root);
    let items = corpus_items(&root);
    assert!(
        items.len() >= 50,
        "SOURCES.md lists only {} items",
        items.len()
    );
    Some((root, items))
}

#[test]
fn valid_corpus_items_convert_to_validated_oci_layouts() {
    let Some((_, items)) = corpus() else { return };
    let validate = have_tool("corpus oci-image-tool", "oci-image-tool");
    for item in items.iter().filter(|i| i.valid) {
        let src = s(&item.path);
        let source = inspect(src);
        let tmp = tempdir();
        let out = tmp.path().join("oci");
        ok(&["convert", "--to", "oci", src, s(&out)]);
        let converted = inspect(s(&out));
        assert_eq!(
            config_digests(&converted),
            config_digests(&source),
            "{}: config digests changed",
            item.name
        );
        assert_eq!(
            identity(&converted),
            identity(&source),
            "{}: identities changed",
            item.name
        );
        ok(&["verify", src]);
        if validate && !VALIDATOR_LIMITS.iter().any(|(n, _)| *n == item.name) {
            tool("oci-image-tool", &["validate", "--type", "image", s(&out)]);
        }
    }
}

#[test]
fn valid_corpus_items_convert_in_every_direction() {
    let Some((_, items)) = corpus() else { return };
    let strip = |v: Vec<(String, Vec<String>, Vec<String>)>| {
        v.into_iter().map(|(c, d, _)| (c, d)).collect::<Vec<_>>()
    };
    for item in items.iter().filter(|i| i.valid) {
        let src = s(&item.path);
        let source = inspect(src);
        let artifact = source["images"].as_array().unwrap().iter().any(|i| {
            i["layers"]
                .as_array()
                .unwrap()
                .iter()
                .any(|l| l["diff_id"].is_null())
        });
        let tmp = tempdir();
        for (to, name) in [
            ("oci-archive", "o.tar"),
            ("docker-archive", "d.tar"),
            ("docker-dir", "dd"),
            ("dir", "dir"),
        ] {
            let out = tmp.path().join(name);
            let mut args = vec!["convert", "--to", to, src, s(&out)];
            if to == "dir" {
                args.insert(3, "--image");
                args.insert(4, "@0");
            }
            if artifact && to.starts_with("docker") {
                // An artifact (no diff_ids): a docker archive cannot hold it, and says so.
                let stderr = fails(&args);
                assert!(stderr.contains("not a container image"), "{stderr}");
                continue;
            }
            ok(&args);
            let back = inspect(s(&out));
            let mut want = identity(&source);
            if to == "dir" {
                let first = &source["images"][0]["config"]["digest"];
                want.retain(|(c, _, _)| c == first);
                assert_eq!(strip(identity(&back)), strip(want), "{} -> {to}", item.name);
                continue;
            }
            assert_eq!(
                strip(identity(&back)),
                strip(want.clone()),
                "{} -> {to}",
                item.name
            );
            // Full tags survive everywhere (bare OCI names have no repository to carry).
            let tags = |v: Vec<(String, Vec<String>, Vec<String>)>| {
                v.into_iter().map(|(_, _, t)| t).collect::<Vec<_>>()
            };
            assert_eq!(
                tags(identity(&back)),
                tags(want),
                "{} -> {to}: tags",
                item.name
            );
            ok(&["verify", s(&out)]);
        }
    }
}

#[test]
fn broken_corpus_items_fail_cleanly() {
    let Some((_, items)) = corpus() else { return };
    for item in items.iter().filter(|i| !i.valid) {
        let src = s(&item.path);
        let tmp = tempdir();
        let oci = tmp.path().join("out");
        let tar = tmp.path().join("out.tar");
        for args in [
            vec!["convert", "--to", "oci", src, s(&oci)],
            vec!["convert", src, s(&tar)],
            vec!["verify", src],
        ] {
            let stderr = fails(&args);
            assert_eq!(
                stderr.trim_end().lines().count(),
                1,
                "{}: {stderr}",
                item.name
            );
        }
        assert!(
            std::fs::read_dir(tmp.path()).unwrap().next().is_none(),
            "{}: left files behind",
            item.name
        );
    }
}
