//! The conversion matrix: every valid fixture through every writer, checked with
//! inspect and verify, against the names and layers the output format must hold (read
//! from its metadata without dockhand), and back through another writer (through
//! stdin/stdout for the tar writers).

use crate::common::interop::*;
use crate::common::*;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::process::Stdio;

use serde_json::{json, Value};

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
/// docker outputs (full references, as skopeo and podman write them; bare OCI ref names cannot be represented there, so
/// they must be absent), and in OCI outputs every tag (as io.containerd.image.name)
/// and every bare ref name, each on an index entry naming the right config.
fn check_names(out: &Path, writer: Writer, src: &Value, bare: &[(String, String)], what: &str) {
    if writer.is_docker() {
        let got = docker_repo_tags(out, writer.is_tar());
        let mut want: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for image in images(src) {
            want.entry(config_of(image))
                .or_default()
                .extend(tags_of(image));
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
