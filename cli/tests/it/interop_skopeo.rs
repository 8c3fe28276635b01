//! skopeo and dockhand reading each other: skopeo inspects and copies dockhand's OCI,
//! OCI archive and dir outputs through every ref name, and dockhand reads (and converts
//! on) what skopeo writes at test time.
//!
//! Tests that need skopeo call `have_tool` first and return early with a visible
//! SKIPPED line when it is missing (a failure under DOCKHAND_REQUIRE_INTEROP=1). The
//! skopeo test that needs a docker daemon is in tests/it/interop_docker.rs.

use crate::common::interop::*;
use crate::common::*;

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

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
