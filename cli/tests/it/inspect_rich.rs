//! What `inspect --json` adds to its fixed schema: `created`, `config_summary`, a
//! `chain_id` per layer and the top-level `by_id` map.

use crate::common::*;
use serde_json::Value;

/// Docker's chain IDs, computed here independently of dockhand.
fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => sha256(format!("{prev} {d}").as_bytes()),
        };
        out.push(next);
    }
    out
}

fn layer_field(image: &Value, field: &str) -> Vec<String> {
    image["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l[field].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn inspect_json_adds_created_config_summary_and_chain_ids() {
    let f = fixture("docker-save-basic");
    let doc = inspect(f.input());
    let image = &doc["images"][0];
    assert_eq!(image["created"], "2026-11-22T19:35:04.18851048Z");
    let summary = &image["config_summary"];
    assert_eq!(summary["cmd"], serde_json::json!(["/bin/hello.sh"]));
    assert_eq!(summary["entrypoint"], Value::Null);
    assert_eq!(summary["working_dir"], "/");
    assert_eq!(summary["labels"]["com.example.fixture"], "basic");
    assert_eq!(summary["env"][1], "DOCKHAND_FIXTURE=basic");
    let diff_ids = layer_field(image, "diff_id");
    assert_eq!(layer_field(image, "chain_id"), chain_ids(&diff_ids));
    assert_eq!(layer_field(image, "chain_id")[0], diff_ids[0]);
}

#[test]
fn inspect_json_by_id_lists_every_name_of_an_id() {
    let f = fixture("docker-save-basic");
    let doc = inspect(f.input());
    let id = f.expected["images"][0]["config"]["digest"]
        .as_str()
        .unwrap();
    assert_eq!(
        doc["by_id"][id],
        serde_json::json!([
            "docker.io/dockhand-fixture/basic:1.0",
            "docker.io/dockhand-fixture/basic:latest"
        ])
    );
    let multi = inspect(fixture("docker-save-multi").input());
    let by_id = multi["by_id"].as_object().unwrap();
    assert_eq!(by_id.len(), images(&multi).len());
    for names in by_id.values() {
        let names: Vec<&str> = names
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap())
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
    }
}

#[test]
fn chain_ids_match_dockers_layers() {
    const TEST: &str = "chain_ids_match_dockers_layers";
    if !have_docker(TEST) {
        return;
    }
    let _docker = docker_lock();
    let f = fixture("docker-save-basic");
    tool("docker", &["load", "-q", "-i", f.input()]);
    let layers: Vec<String> = serde_json::from_slice(&tool(
        "docker",
        &[
            "image",
            "inspect",
            "-f",
            "{{json .RootFS.Layers}}",
            "dockhand-fixture/basic:1.0",
        ],
    ))
    .unwrap();
    let doc = inspect(f.input());
    let image = &doc["images"][0];
    assert_eq!(layer_field(image, "diff_id"), layers);
    assert_eq!(layer_field(image, "chain_id"), chain_ids(&layers));
}

#[test]
fn platforms_lists_every_platform_an_index_holds_present_or_absent() {
    let (Some(both), Some(sparse)) = (
        corpus_item("stereoscope/multiplatform_oci_dir"),
        corpus_item("oras-go/hello-world.tar"),
    ) else {
        return;
    };
    let rows = |path: &std::path::Path| -> Vec<(String, bool)> {
        let doc: serde_json::Value = serde_json::from_slice(&ok(&[
            "inspect",
            "--platforms",
            "--json",
            path.to_str().unwrap(),
        ]))
        .unwrap();
        doc.as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let platform = &p["platform"];
                let mut name = format!(
                    "{}/{}",
                    platform["os"].as_str().unwrap(),
                    platform["architecture"].as_str().unwrap()
                );
                if let Some(v) = platform["variant"].as_str() {
                    name.push_str(&format!("/{v}"));
                }
                (name, p["present"].as_bool().unwrap())
            })
            .collect()
    };
    assert_eq!(
        rows(&both),
        [
            ("linux/amd64".to_string(), true),
            ("linux/arm64".to_string(), true)
        ]
    );
    // A one-platform export of an 11-platform list: every platform, one present.
    let listed = rows(&sparse);
    assert_eq!(listed.len(), 11, "{listed:?}");
    assert_eq!(
        listed
            .iter()
            .filter(|(_, present)| *present)
            .collect::<Vec<_>>(),
        [&("linux/amd64".to_string(), true)]
    );
    let table =
        String::from_utf8(ok(&["inspect", "--platforms", sparse.to_str().unwrap()])).unwrap();
    assert!(
        table.contains("linux/arm/v7") && table.contains(" no"),
        "{table}"
    );
    // --all takes the platforms present, and says which are not.
    let tmp = tempdir();
    let out = tmp.path().join("all");
    let run = run(&[
        "convert",
        "--all",
        "--from",
        "oci-archive",
        sparse.to_str().unwrap(),
        s(&out),
    ]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(stderr.contains("absent"), "{stderr}");
    ok(&["verify", s(&out)]);
}
