//! Metadata read once per input: inputs that reference one config, manifest, index or
//! layer thousands of times (small gzip'd archives that expand to many MiB) must read
//! as fast as their size says and give the right images; the total metadata read from
//! one input is capped; ref names outside the spec grammar are dropped; `--platform`
//! and `--from` that the content contradicts are errors saying what the input holds.

use crate::common::build::*;
use crate::common::*;

use std::io::Write;
use std::path::Path;
use std::process::{Output, Stdio};

use serde_json::{json, Value};

/// Peak RSS allowed for a guarded run.
const RSS_LIMIT_KB: u64 = 200 * 1024;

/// Run dockhand under the blow-up guards ([`run_guarded`]; these inputs need well under
/// a second of work when read once, and hours when work repeats per reference), and
/// check its peak RSS when /usr/bin/time can tell it.
fn guarded(args: &[&str]) -> Output {
    let (out, rss) = run_guarded(args, |_| {});
    if let Some(kb) = rss {
        assert!(kb < RSS_LIMIT_KB, "{args:?}: peak RSS {kb} KiB");
    }
    out
}

/// A guarded run that must succeed; returns stdout.
fn guarded_ok(args: &[&str]) -> Vec<u8> {
    let out = guarded(args);
    assert!(
        out.status.success(),
        "dockhand {args:?} failed ({:?}; the CPU guard kills with a signal): {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A guarded run that must fail with exit 1 and one `error:` line; returns stderr.
fn guarded_fails(args: &[&str]) -> String {
    let out = guarded(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
    assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
    stderr
}

fn guarded_inspect(path: &str) -> Value {
    serde_json::from_slice(&guarded_ok(&["inspect", "--json", path])).unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// Write the tar of `entries`, gzip'd, and return its path.
fn gz_archive(dir: &Path, name: &str, entries: &[Entry]) -> String {
    let gz = gzip(&tar_of(entries));
    eprintln!("{name}: {} bytes gzip'd", gz.len());
    assert!(gz.len() < 1 << 20, "{name}: {} bytes gzip'd", gz.len());
    put(dir, name, &gz)
}

fn json_bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

/// An image config for `platform` with one layer, padded to about `pad` bytes.
fn config(diff_ids: &[String], platform: (&str, &str), pad: usize, salt: &str) -> Vec<u8> {
    json_bytes(&json!({
        "os": platform.0, "architecture": platform.1, "created": "2024-01-01T00:00:00Z",
        "comment": salt, "padding": "x".repeat(pad),
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
}

#[test]
fn manifest_json_with_20000_entries_for_one_config_reads_it_once() {
    let tmp = tempdir();
    let l = layer("f", b"shared");
    let cfg = config(&[sha256(&l)], ("linux", "amd64"), 1 << 20, "");
    let manifest: Vec<Value> = (0..20_000)
        .map(|i| json!({"Config": "c.json", "RepoTags": [format!("amp/one:{i}")], "Layers": ["l/layer.tar"]}))
        .collect();
    let input = gz_archive(
        tmp.path(),
        "one-config.tar.gz",
        &[
            file("c.json", cfg.clone()),
            file("l/layer.tar", l),
            file("manifest.json", json_bytes(&Value::from(manifest))),
        ],
    );
    let doc = guarded_inspect(&input);
    assert_eq!(images(&doc).len(), 1, "entries for one image merge");
    assert_eq!(images(&doc)[0]["config"]["digest"], sha256(&cfg));
    let names = tags_of(&images(&doc)[0]);
    assert_eq!(names.len(), 20_000);
    assert!(names.contains(&"docker.io/amp/one:19999".to_string()));
}

/// An OCI layout directory's skeleton; returns its path.
fn oci_dir(dir: &Path) -> std::path::PathBuf {
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    dir.to_path_buf()
}

/// Store `bytes` as a blob of the layout at `dir`; returns its descriptor.
fn blob(dir: &Path, media_type: &str, bytes: &[u8]) -> Value {
    let digest = sha256(bytes);
    std::fs::write(dir.join("blobs/sha256").join(&digest[7..]), bytes).unwrap();
    json!({"mediaType": media_type, "digest": digest, "size": bytes.len()})
}

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// A one-layer image of `platform` in the layout at `dir`, its manifest padded with an
/// annotation of `pad` bytes; returns the manifest's descriptor.
fn oci_image(dir: &Path, platform: (&str, &str), pad: usize) -> Value {
    let l = layer("f", platform.1.as_bytes());
    let layer_desc = blob(dir, "application/vnd.oci.image.layer.v1.tar", &l);
    let cfg = config(&[sha256(&l)], platform, 0, "");
    let config_desc = blob(dir, "application/vnd.oci.image.config.v1+json", &cfg);
    let manifest = json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": config_desc, "layers": [layer_desc],
        "annotations": {"padding": "p".repeat(pad)},
    });
    blob(dir, OCI_MANIFEST, &json_bytes(&manifest))
}

fn write_index(dir: &Path, manifests: Vec<Value>) {
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests});
    std::fs::write(dir.join("index.json"), json_bytes(&index)).unwrap();
}

/// Pack a directory into a gzip'd tar (files only, paths relative to it).
fn pack(dir: &Path, out: &Path) -> String {
    let mut entries = Vec::new();
    for e in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let e = e.unwrap();
        if e.file_type().is_file() {
            let rel = e.path().strip_prefix(dir).unwrap().to_str().unwrap();
            entries.push(file(rel, std::fs::read(e.path()).unwrap()));
        }
    }
    let gz = gzip(&tar_of(&entries));
    eprintln!("{}: {} bytes gzip'd", s(out), gz.len());
    assert!(gz.len() < 1 << 20, "{} bytes gzip'd", gz.len());
    std::fs::write(out, gz).unwrap();
    s(out).to_string()
}

#[test]
fn index_json_with_20000_entries_for_one_manifest_reads_it_once() {
    let tmp = tempdir();
    let layout = &oci_dir(&tmp.path().join("layout"));
    let desc = oci_image(layout, ("linux", "amd64"), 1 << 20);
    let entries: Vec<Value> = (0..20_000)
        .map(|i| {
            let mut d = desc.clone();
            d["annotations"] =
                json!({"io.containerd.image.name": format!("docker.io/amp/idx:{i}")});
            d
        })
        .collect();
    write_index(layout, entries);
    let input = pack(layout, &tmp.path().join("idx.tar.gz"));
    let doc = guarded_inspect(&input);
    assert_eq!(doc["format"], "oci-archive");
    assert_eq!(images(&doc).len(), 1);
    assert_eq!(images(&doc)[0]["manifest"]["digest"], desc["digest"]);
    assert_eq!(tags_of(&images(&doc)[0]).len(), 20_000);
}

#[test]
fn nested_indexes_listing_one_child_many_times_are_resolved_once() {
    let tmp = tempdir();
    let layout = &oci_dir(&tmp.path().join("layout"));
    // The innermost index: 5,000 children of another platform before the wanted one,
    // so picking from it costs 5,000 steps each time it is walked.
    let wanted = oci_image(layout, ("linux", "amd64"), 0);
    let other = oci_image(layout, ("linux", "s390x"), 0);
    let mut children: Vec<Value> = (0..5_000)
        .map(|_| {
            let mut d = other.clone();
            d["platform"] = json!({"os": "linux", "architecture": "s390x"});
            d
        })
        .collect();
    let mut w = wanted.clone();
    w["platform"] = json!({"os": "linux", "architecture": "amd64"});
    children.push(w);
    let mut child = blob(
        layout,
        OCI_INDEX,
        &json_bytes(&json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children})),
    );
    // Six levels above it, each listing the level below 5,000 times.
    for _ in 0..6 {
        let list: Vec<Value> = (0..5_000).map(|_| child.clone()).collect();
        child = blob(
            layout,
            OCI_INDEX,
            &json_bytes(&json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": list})),
        );
    }
    let entries: Vec<Value> = (0..5_000)
        .map(|i| {
            let mut d = child.clone();
            d["annotations"] =
                json!({"io.containerd.image.name": format!("docker.io/amp/nested:{i}")});
            d
        })
        .collect();
    write_index(layout, entries);
    let input = pack(layout, &tmp.path().join("nested.tar.gz"));
    let doc: Value = serde_json::from_slice(&guarded_ok(&[
        "inspect",
        "--json",
        "--platform",
        "linux/amd64",
        &input,
    ]))
    .unwrap();
    assert_eq!(images(&doc).len(), 1);
    assert_eq!(images(&doc)[0]["manifest"]["digest"], wanted["digest"]);
    assert_eq!(tags_of(&images(&doc)[0]).len(), 5_000);
}

/// A v1 id: 64 hex characters from `n`.
fn v1_id(n: usize) -> String {
    format!("{n:064x}")
}

/// A pre-1.10 archive: a base chain of `chain` layers (the first one of `big` bytes, the
/// others of `small`), and `tops` images on it, each named by `tags_per_top` tags.
fn legacy_archive(
    chain: usize,
    (big, small): (usize, usize),
    tops: usize,
    tags_per_top: usize,
) -> Vec<Entry> {
    let mut entries = Vec::new();
    for i in 0..chain {
        let id = v1_id(i + 1);
        let mut json = json!({"id": id, "os": "linux", "architecture": "amd64", "created": "2015-01-01T00:00:00Z"});
        if i > 0 {
            json["parent"] = json!(v1_id(i));
        }
        let data = if i == 0 {
            layer("big", &vec![0u8; big])
        } else {
            layer(&format!("f{i}"), &vec![0u8; small])
        };
        entries.push(file(&format!("{id}/json"), json_bytes(&json)));
        entries.push(file(&format!("{id}/layer.tar"), data));
    }
    let mut repositories = serde_json::Map::new();
    let mut tags = serde_json::Map::new();
    for t in 0..tops {
        let id = v1_id(1_000_000 + t);
        let json = json!({"id": id, "parent": v1_id(chain), "os": "linux", "architecture": "amd64", "comment": format!("top {t}")});
        entries.push(file(&format!("{id}/json"), json_bytes(&json)));
        entries.push(file(
            &format!("{id}/layer.tar"),
            layer("top", format!("{t}").as_bytes()),
        ));
        for k in 0..tags_per_top {
            tags.insert(format!("t{t}-{k}"), json!(id));
        }
    }
    repositories.insert("amp/legacy".into(), Value::Object(tags));
    entries.push(file(
        "repositories",
        json_bytes(&Value::Object(repositories)),
    ));
    entries
}

#[test]
fn pre_1_10_tags_sharing_one_long_chain_hash_each_layer_once() {
    let tmp = tempdir();
    // 19,950 tags on 190 images, all on one 500-layer chain of 64 MiB (a 32 MiB base
    // and 64 KiB layers): hashed per image, that is 12 GiB.
    let input = gz_archive(
        tmp.path(),
        "legacy.tar.gz",
        &legacy_archive(500, (32 << 20, 64 << 10), 190, 105),
    );
    // The table, not --json: the JSON of 95,000 layers is large whatever the reader.
    let table = String::from_utf8(guarded_ok(&["inspect", &input])).unwrap();
    assert!(table.starts_with("format: docker-archive\n"), "{table}");
    let rows: Vec<&str> = table.lines().filter(|l| l.starts_with('@')).collect();
    assert_eq!(rows.len(), 190, "one image per top layer");
    for row in rows {
        assert!(
            row.contains("  501  "),
            "every image has the whole chain: {row}"
        );
    }
    // A layer all 190 images share names a few of the others, then how many more.
    assert!(
        table.contains("@1 @2 @3 @4 @5 @6 @7 @8 and 181 more"),
        "sharers"
    );
    let first: Value =
        serde_json::from_slice(&guarded_ok(&["inspect", "--json", "--image", "@0", &input]))
            .unwrap();
    let last: Value = serde_json::from_slice(&guarded_ok(&[
        "inspect",
        "--json",
        "--image",
        "amp/legacy:t189-104",
        &input,
    ]))
    .unwrap();
    for doc in [&first, &last] {
        assert_eq!(images(doc).len(), 1);
        assert_eq!(tags_of(&images(doc)[0]).len(), 105, "tags of one top merge");
        assert_eq!(images(doc)[0]["layers"].as_array().unwrap().len(), 501);
    }
    assert_eq!(
        images(&first)[0]["layers"][0]["digest"],
        images(&last)[0]["layers"][0]["digest"]
    );
    assert_ne!(
        images(&first)[0]["config"]["digest"],
        images(&last)[0]["config"]["digest"]
    );
}

#[test]
fn more_layers_than_the_cap_in_all_is_an_error() {
    // 300 images on a 500-layer chain list 150,300 layers: past MAX_LAYERS_TOTAL.
    let tmp = tempdir();
    let input = gz_archive(
        tmp.path(),
        "wide.tar.gz",
        &legacy_archive(500, (0, 0), 300, 1),
    );
    let stderr = guarded_fails(&["inspect", &input]);
    let limit = dockhand::limits::MAX_LAYERS_TOTAL.to_string();
    assert!(stderr.contains(&limit), "{stderr}");
}

#[test]
fn docker_save_images_sharing_an_unnamed_gzip_layer_hash_it_once_when_converted() {
    let tmp = tempdir();
    // 16 MiB of zeros in stored (level 0) deflate blocks: 16 MiB to hash for its
    // digest, which its name does not give, yet a few KiB once the archive is gzip'd.
    // Hashed per image, that is 80 GiB.
    let tar = layer("zeros", &vec![0u8; 16 << 20]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::none());
    gz.write_all(&tar).unwrap();
    let gz = gz.finish().unwrap();
    let diff_id = sha256(&tar);
    let mut entries = vec![file("shared/layer.tar", gz.clone())];
    let mut manifest = Vec::new();
    for i in 0..5_000 {
        let cfg = config(
            std::slice::from_ref(&diff_id),
            ("linux", "amd64"),
            0,
            &i.to_string(),
        );
        let name = format!("{}.json", &sha256(&cfg)[7..]);
        manifest.push(json!({"Config": name, "RepoTags": [format!("amp/gz:{i}")], "Layers": ["shared/layer.tar"]}));
        entries.push(file(&name, cfg));
    }
    entries.push(file("manifest.json", json_bytes(&Value::from(manifest))));
    let input = gz_archive(tmp.path(), "gz.tar.gz", &entries);
    let doc = guarded_inspect(&input);
    assert_eq!(images(&doc).len(), 5_000);
    for image in images(&doc) {
        // inspect reads no layer data: a digest the archive does not record is unknown
        // to it...
        assert!(image["layers"][0]["digest"].is_null(), "{image}");
        assert_eq!(image["layers"][0]["compression"], "gzip");
    }
    // ...and a conversion computes it while streaming the layer, once for every image.
    let digest = sha256(&gz);
    for to in ["oci", "oci-archive"] {
        let out = tmp.path().join(format!("out-{to}"));
        guarded_ok(&["convert", "-q", "--to", to, &input, s(&out)]);
        let doc = guarded_inspect(s(&out));
        assert_eq!(images(&doc).len(), 5_000, "{to}");
        for image in images(&doc) {
            assert_eq!(image["layers"][0]["digest"], digest, "{to}");
        }
    }
}

#[test]
fn total_metadata_past_the_cap_is_an_error_naming_it() {
    let tmp = tempdir();
    // Nine distinct configs of 15 MiB each (each under the per-file limit): 135 MiB.
    let l = layer("f", b"x");
    let mut entries = vec![file("l/layer.tar", l.clone())];
    let mut manifest = Vec::new();
    for i in 0..9 {
        let cfg = config(&[sha256(&l)], ("linux", "amd64"), 15 << 20, &i.to_string());
        let name = format!("c{i}.json");
        manifest.push(json!({"Config": name, "RepoTags": null, "Layers": ["l/layer.tar"]}));
        entries.push(file(&name, cfg));
    }
    entries.push(file("manifest.json", json_bytes(&Value::from(manifest))));
    let input = gz_archive(tmp.path(), "big-meta.tar.gz", &entries);
    let stderr = guarded_fails(&["inspect", &input]);
    let cap = format!("{} MiB", dockhand::limits::MAX_METADATA_TOTAL >> 20);
    assert!(stderr.contains(&cap), "{stderr}");
}

#[test]
fn ref_names_outside_the_grammar_are_dropped_with_a_warning() {
    let tmp = tempdir();
    let layout = &oci_dir(&tmp.path().join("layout"));
    let desc = oci_image(layout, ("linux", "amd64"), 0);
    let named = |name: &str| {
        let mut d = desc.clone();
        d["annotations"] = json!({"org.opencontainers.image.ref.name": name});
        d
    };
    write_index(
        layout,
        vec![
            named("good-1"),
            named("evil\nline\u{1b}[31m"),
            named("../escape"),
            named("a//b"),
        ],
    );
    let out = tmp.path().join("out");
    let run = dockhand()
        .args(["convert", s(layout), s(&out)])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(
        stderr.contains(r#"ignoring org.opencontainers.image.ref.name "evil\nline\x1b[31m""#),
        "the bad name is shown escaped: {stderr}"
    );
    assert!(
        stderr.contains("../escape") && stderr.contains("a//b"),
        "{stderr}"
    );
    assert!(!stderr.contains('\x1b'), "{stderr}");
    for line in stderr.lines() {
        assert!(
            line.starts_with("warning: ")
                || line.starts_with("converted ")
                || line.starts_with("  @0 "),
            "a name forged a line: {line:?}"
        );
    }
    let index: Value =
        serde_json::from_slice(&std::fs::read(out.join("index.json")).unwrap()).unwrap();
    let names: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str())
        .collect();
    assert_eq!(names, ["good-1"]);
}

#[test]
fn platform_that_no_image_satisfies_lists_the_platforms_held() {
    let tmp = tempdir();
    // A docker archive of one linux/amd64 image: an explicit request for another
    // platform no longer converts it anyway.
    let save = put(tmp.path(), "x.tar", &Save::new(1).tar());
    let stderr = fails(&["inspect", "--platform", "linux/arm64", &save]);
    assert!(
        stderr.contains("no image for linux/arm64") && stderr.contains("linux/amd64"),
        "{stderr}"
    );
    let stderr = fails(&[
        "convert",
        "--platform",
        "linux/arm64",
        &save,
        s(&tmp.path().join("o")),
    ]);
    assert!(stderr.contains("holds linux/amd64"), "{stderr}");
    assert!(!tmp.path().join("o").exists());
    // It still reads for the platform it holds.
    ok(&["inspect", "--platform", "linux/amd64", &save]);

    // An OCI layout whose index holds amd64 and s390x images.
    let layout = &oci_dir(&tmp.path().join("layout"));
    let mut amd = oci_image(layout, ("linux", "amd64"), 0);
    amd["platform"] = json!({"os": "linux", "architecture": "amd64"});
    let mut s390 = oci_image(layout, ("linux", "s390x"), 0);
    s390["platform"] = json!({"os": "linux", "architecture": "s390x"});
    let list = blob(
        layout,
        OCI_INDEX,
        &json_bytes(&json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [amd, s390]})),
    );
    write_index(layout, vec![list]);
    let stderr = fails(&["inspect", "--platform", "linux/arm64", s(layout)]);
    assert!(
        stderr.contains("no image for linux/arm64") && stderr.contains("linux/amd64, linux/s390x"),
        "{stderr}"
    );
    let doc: Value = serde_json::from_slice(&ok(&[
        "inspect",
        "--json",
        "--platform",
        "linux/s390x",
        s(layout),
    ]))
    .unwrap();
    assert_eq!(doc["images"][0]["platform"]["architecture"], "s390x");

    // A dir: layout holding a list with arm/v7 and ppc64le instances.
    let dir = tmp.path().join("dir");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("version"), "Directory Transport Version: 1.1\n").unwrap();
    let mut list = Vec::new();
    for (arch, variant) in [("arm", Some("v7")), ("ppc64le", None)] {
        let l = layer("f", arch.as_bytes());
        let mut cfg: Value =
            serde_json::from_slice(&config(&[sha256(&l)], ("linux", arch), 0, "")).unwrap();
        if let Some(v) = variant {
            cfg["variant"] = json!(v);
        }
        let cfg = json_bytes(&cfg);
        std::fs::write(dir.join(&sha256(&l)[7..]), &l).unwrap();
        std::fs::write(dir.join(&sha256(&cfg)[7..]), &cfg).unwrap();
        let manifest = json_bytes(&json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(&cfg), "size": cfg.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha256(&l), "size": l.len()}],
        }));
        std::fs::write(
            dir.join(format!("{}.manifest.json", &sha256(&manifest)[7..])),
            &manifest,
        )
        .unwrap();
        let mut platform = json!({"os": "linux", "architecture": arch});
        if let Some(v) = variant {
            platform["variant"] = json!(v);
        }
        list.push(json!({"mediaType": OCI_MANIFEST, "digest": sha256(&manifest), "size": manifest.len(), "platform": platform}));
    }
    std::fs::write(
        dir.join("manifest.json"),
        json_bytes(&json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": list})),
    )
    .unwrap();
    let stderr = fails(&["inspect", "--platform", "linux/arm64", s(&dir)]);
    assert!(
        stderr.contains("no image for linux/arm64")
            && stderr.contains("linux/arm/v7, linux/ppc64le"),
        "{stderr}"
    );
    // A request without a variant accepts any variant.
    let doc: Value = serde_json::from_slice(&ok(&[
        "inspect",
        "--json",
        "--platform",
        "linux/arm",
        s(&dir),
    ]))
    .unwrap();
    assert_eq!(doc["images"][0]["platform"]["variant"], "v7");
}

#[test]
fn a_forced_format_that_the_content_contradicts_says_what_the_input_is() {
    let tmp = tempdir();
    let docker_tar = put(tmp.path(), "docker.tar", &Save::new(1).tar());
    let layout = &oci_dir(&tmp.path().join("layout"));
    let desc = oci_image(layout, ("linux", "amd64"), 0);
    write_index(layout, vec![desc]);
    let mut entries = Vec::new();
    for e in walkdir::WalkDir::new(layout).sort_by_file_name() {
        let e = e.unwrap();
        if e.file_type().is_file() {
            let rel = e.path().strip_prefix(layout).unwrap().to_str().unwrap();
            entries.push(file(rel, std::fs::read(e.path()).unwrap()));
        }
    }
    let oci_tar = put(tmp.path(), "x.tar", &tar_of(&entries));
    let out = tmp.path().join("out");
    let cases = [
        (
            "docker-dir",
            docker_tar.as_str(),
            "is a docker-archive (a tar file), not docker-dir (a directory); use --from docker-archive or leave --from out",
        ),
        (
            "oci",
            oci_tar.as_str(),
            "is an oci-archive (a tar file), not oci (a directory); use --from oci-archive or leave --from out",
        ),
        (
            "oci-archive",
            s(layout),
            "is an oci layout (a directory), not oci-archive (a tar file); use --from oci or leave --from out",
        ),
        (
            "dir",
            docker_tar.as_str(),
            "is a docker-archive (a tar file), not dir (a directory); use --from docker-archive or leave --from out",
        ),
    ];
    for (from, input, want) in cases {
        let stderr = fails(&["convert", "--from", from, input, s(&out)]);
        assert!(
            stderr.contains(&format!("{input}: {want}")),
            "--from {from} {input}: {stderr}"
        );
        assert!(!out.exists());
        // A transport prefix forces the format the same way.
        let stderr = fails(&["inspect", &format!("{from}:{input}")]);
        assert!(stderr.contains(want), "{from}:{input}: {stderr}");
    }
    // What fits still reads.
    ok(&["convert", "--from", "oci-archive", &oci_tar, s(&out)]);
    ok(&["inspect", &format!("docker-archive:{docker_tar}")]);
}

#[test]
fn a_layer_the_archive_records_no_digest_for_is_named_right_in_every_output() {
    let tmp = tempdir();
    let tar = layer("f", b"some layer content");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).unwrap();
    let gz = gz.finish().unwrap();
    let digest = sha256(&gz);
    let cfg = config(
        std::slice::from_ref(&sha256(&tar)),
        ("linux", "amd64"),
        0,
        "x",
    );
    let name = format!("{}.json", &sha256(&cfg)[7..]);
    let entries = vec![
        file(&name, cfg),
        file("l/layer.tar", gz.clone()),
        file(
            "manifest.json",
            json_bytes(
                &json!([{"Config": name, "RepoTags": ["unnamed/gz:1"], "Layers": ["l/layer.tar"]}]),
            ),
        ),
    ];
    let input = put(tmp.path(), "in.tar", &tar_of(&entries));
    let layer_digest =
        |path: &str| guarded_inspect(path)["images"][0]["layers"][0]["digest"].clone();
    for (to, name) in [("oci", "o"), ("oci-archive", "o.tar"), ("dir", "d")] {
        let out = tmp.path().join(name);
        guarded_ok(&["convert", "-q", "--to", to, &input, s(&out)]);
        assert_eq!(layer_digest(s(&out)), digest, "{to}");
        ok(&["verify", s(&out)]);
    }
    // On stdout the blob is staged once to learn its name.
    let stdout = ok(&["convert", "-q", "--to", "oci-archive", &input, "-"]);
    let piped = tmp.path().join("piped.tar");
    std::fs::write(&piped, &stdout).unwrap();
    assert_eq!(
        std::fs::read(&piped).unwrap(),
        std::fs::read(tmp.path().join("o.tar")).unwrap()
    );
    // Added to an existing layout, beside another image.
    let layout = tmp.path().join("layout");
    ok(&[
        "convert",
        "-q",
        fixture("docker-save-basic").input(),
        &format!("oci:{}:first", s(&layout)),
    ]);
    guarded_ok(&[
        "convert",
        "-q",
        &input,
        &format!("oci:{}:second", s(&layout)),
    ]);
    assert!(layout.join("blobs/sha256").join(&digest[7..]).is_file());
    ok(&["verify", s(&layout)]);
}
