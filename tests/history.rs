//! `dockhand history`: the build steps of an image matched to its layers, as
//! `docker history` shows them, read from configs alone.

mod common;
use common::build::{put, Save};
use common::*;
use serde_json::{json, Value};

/// A one-image docker-save archive with `layers` layers whose config has `history`.
fn save_with_history(layers: usize, history: Value) -> Vec<u8> {
    let mut save = Save::new(layers);
    let mut config: Value = serde_json::from_slice(&save.config).unwrap();
    config["history"] = history;
    save.config = serde_json::to_vec(&config).unwrap();
    save.manifest[0]["Config"] = json!(save.config_name());
    save.tar()
}

fn history_json(args: &[&str]) -> Value {
    let mut all = vec!["history", "--json"];
    all.extend(args);
    serde_json::from_slice(&ok(&all)).expect("history --json prints JSON")
}

#[test]
fn history_of_a_docker_save_lists_steps_newest_first() {
    let f = fixture("docker-save-basic");
    let text = String::from_utf8(ok(&["history", f.input()])).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("IMAGE "), "{text}");
    assert_eq!(lines.len(), 8, "{text}");
    assert!(lines[1].starts_with("6f2d02a983f5 "), "{text}");
    assert!(lines[1].contains(r#"CMD ["/bin/hello.sh"]"#), "{text}");
    assert!(
        !text.contains("#(nop)"),
        "the nop prefix is stripped: {text}"
    );
    assert!(
        lines[2..].iter().all(|l| l.starts_with("<missing> ")),
        "{text}"
    );
    assert!(lines[2].contains('…'), "long steps are cut: {text}");
    // The three layers, base last, with their tar sizes in docker's units.
    assert!(
        lines[5].contains("4.1kB") && lines[7].contains("2.56kB"),
        "{text}"
    );
    assert!(lines[1].contains("0B"), "{text}");

    let doc = history_json(&[f.input()]);
    let rows = doc["images"][0]["history"].as_array().unwrap();
    assert_eq!(rows.len(), 7);
    assert_eq!(rows[0]["id"], f.expected["images"][0]["config"]["digest"]);
    assert_eq!(rows[0]["created"], "2026-11-22T19:35:04.18851048Z");
    assert_eq!(
        rows[6]["created_by"],
        "/bin/sh -c #(nop) COPY dir:a8c5eca5c2896fa2633a5c8ab66e79fa1b790677f29d02186f0830892a7ea10d in / "
    );
    let sizes: Vec<u64> = rows.iter().map(|r| r["size"].as_u64().unwrap()).collect();
    assert_eq!(sizes, [0, 0, 0, 0, 4096, 3072, 2560]);
    let untruncated = String::from_utf8(ok(&["history", "--no-trunc", f.input()])).unwrap();
    assert!(untruncated.contains("sha256:6f2d02a983f5"), "{untruncated}");
    assert!(untruncated.contains("in / "), "{untruncated}");
}

#[test]
fn history_marks_the_stored_size_of_compressed_layers() {
    let f = fixture("skopeo-oci");
    let text = String::from_utf8(ok(&["history", f.input()])).unwrap();
    assert!(text.contains("B*"), "{text}");
    assert!(text.contains("* compressed size"), "{text}");
    let doc = history_json(&[f.input()]);
    let last = doc["images"][0]["history"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["size_exact"], false);
    assert_eq!(last["compression"], "gzip");
}

#[test]
fn history_of_several_images_has_one_table_each() {
    let f = fixture("docker-save-multi");
    let text = String::from_utf8(ok(&["history", f.input()])).unwrap();
    let heads: Vec<&str> = text.lines().filter(|l| l.starts_with('@')).collect();
    assert_eq!(heads.len(), 3, "{text}");
    assert_eq!(text.lines().filter(|l| l.starts_with("IMAGE ")).count(), 3);
    let one = String::from_utf8(ok(&["history", "--image", "@1", f.input()])).unwrap();
    assert!(!one.lines().any(|l| l.starts_with('@')), "{one}");
}

#[test]
fn history_naming_more_layers_than_the_image_has_fails() {
    let tmp = tempdir();
    let history = json!([{"created_by": "ADD a"}, {"created_by": "ADD b"}, {"created_by": "CMD", "empty_layer": true}]);
    let path = put(tmp.path(), "h.tar", &save_with_history(1, history));
    let stderr = fails(&["history", &path]);
    assert!(
        stderr.contains("hostile/test:1"),
        "names the image: {stderr}"
    );
    assert!(stderr.contains("2 layer(s), but it has 1"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn history_escapes_control_characters() {
    let tmp = tempdir();
    let history = json!([
        {"created_by": "ADD \u{1b}[2J evil\u{202e}", "comment": "a\nb"},
        {"created_by": "RUN\ttab", "empty_layer": true, "created": "not a time"},
    ]);
    let path = put(tmp.path(), "e.tar", &save_with_history(1, history));
    for args in [
        vec!["history", &path],
        vec!["history", "--no-trunc", &path],
        vec!["history", "--json", &path],
    ] {
        let out = String::from_utf8(ok(&args)).unwrap();
        assert!(
            !out.contains('\u{1b}') && !out.contains('\u{202e}'),
            "{out:?}"
        );
        assert!(out.lines().count() >= 3, "no forged line: {out}");
    }
    let text = String::from_utf8(ok(&["history", &path])).unwrap();
    assert!(text.contains("\\x1b[2J"), "{text}");
    assert!(text.contains("a\\nb"), "{text}");
    assert!(
        text.contains("RUN tab"),
        "tabs become spaces, as docker shows them: {text}"
    );
    let doc = history_json(&[&path]);
    assert_eq!(
        doc["images"][0]["history"][1]["created_by"],
        "ADD \u{1b}[2J evil\u{202e}"
    );
}

#[test]
fn history_without_history_shows_one_row_per_layer() {
    let tmp = tempdir();
    for history in [Value::Null, json!([]), json!("junk"), json!([5])] {
        let path = put(tmp.path(), "n.tar", &save_with_history(2, history.clone()));
        let text = String::from_utf8(ok(&["history", &path])).unwrap();
        assert_eq!(text.lines().count(), 3, "{history}: {text}");
        assert!(
            text.lines().nth(2).unwrap().starts_with("<missing>"),
            "{text}"
        );
    }
}

/// docker history's CREATED BY and SIZE columns, newest first.
fn docker_history(reference: &str) -> Vec<(String, String)> {
    let out = tool(
        "docker",
        &[
            "history",
            "--no-trunc",
            "--format",
            "{{.CreatedBy}}|{{.Size}}",
            reference,
        ],
    );
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| {
            let (by, size) = l.rsplit_once('|').unwrap();
            (by.to_string(), size.to_string())
        })
        .collect()
}

/// The value of a size docker prints (`55B`, `2.56kB`).
fn size_value(s: &str) -> f64 {
    let s = s.trim_end_matches('*');
    let at = s.find(|c: char| c.is_ascii_alphabetic()).unwrap();
    let (n, unit) = s.split_at(at);
    let scale = match unit {
        "B" => 1.0,
        "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        _ => panic!("unit {unit}"),
    };
    n.parse::<f64>().unwrap() * scale
}

#[test]
fn history_matches_docker_history() {
    const TEST: &str = "history_matches_docker_history";
    if !have_docker(TEST) {
        return;
    }
    for (name, reference) in [
        ("docker-save-basic", "dockhand-fixture/basic:1.0"),
        (
            "docker-save-multi",
            "docker.io/dockhand-fixture/multi-app:1.0",
        ),
    ] {
        let f = fixture(name);
        tool("docker", &["load", "-q", "-i", f.input()]);
        let theirs = docker_history(reference);
        let text = String::from_utf8(ok(&[
            "history",
            "--no-trunc",
            "--image",
            reference,
            f.input(),
        ]))
        .unwrap();
        let doc = history_json(&["--image", reference, f.input()]);
        let rows = doc["images"][0]["history"].as_array().unwrap();
        assert_eq!(rows.len(), theirs.len(), "{name}: {theirs:?}\n{text}");
        let table: Vec<&str> = text.lines().skip(1).collect();
        for ((row, line), (by, size)) in rows.iter().zip(&table).zip(&theirs) {
            // Docker before 25 prints the raw step; dockhand strips the nop prefix as
            // newer docker does: compare both without it.
            let strip = |s: &str| {
                s.strip_prefix("/bin/sh -c #(nop) ")
                    .map_or(s.to_string(), |r| r.trim_start().to_string())
            };
            assert_eq!(
                strip(row["created_by"].as_str().unwrap()),
                strip(by),
                "{name}"
            );
            assert!(line.contains(&strip(by)), "{name}: {line} lacks {by}");
            let ours = row["size"].as_u64().unwrap() as f64;
            let theirs = size_value(size);
            // Docker counts the bytes of the unpacked files on its storage driver,
            // dockhand the layer's tar (what docker save writes): 0 for the same steps,
            // and the tar never smaller than the files it holds.
            assert_eq!(ours == 0.0, theirs == 0.0, "{name}: {row} vs {size}");
            assert!(ours >= theirs, "{name}: {row} vs {size}");
        }
    }
}
