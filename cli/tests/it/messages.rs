//! Messages: one escaped line per error, text from an input never reaching the terminal
//! raw, causes named once, usage mistakes exiting 2, `@N` numbering that means the
//! same everywhere, and a summary that lists every tag. The usage mistakes are a
//! table of named rows ([`Table`]): a failure names every failing row.

use crate::common::build::*;
use crate::common::table::Table;
use crate::common::*;

use std::process::Stdio;

use serde_json::json;

/// Run and return (exit code, stderr).
fn outcome(args: &[&str]) -> (Option<i32>, String) {
    let out = run(args);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Nothing a terminal would act on: no control character but the final newline.
fn assert_inert(stderr: &str) {
    let body = stderr.strip_suffix('\n').unwrap_or(stderr);
    assert!(
        !body.chars().any(|c| c.is_control() && c != '\n'),
        "raw control characters in: {body:?}"
    );
    assert!(!body.contains('\u{202e}'), "raw bidi override in {body:?}");
}

#[test]
fn input_text_is_escaped_and_errors_are_one_line() {
    let tmp = tempdir();
    // A config path forging a second line and recolouring the terminal.
    let mut save = Save::new(1);
    save.manifest[0]["Config"] = json!("x\n\u{1b}[31merror: all good\u{202e}.json");
    let input = put(tmp.path(), "evil.tar", &save.tar());
    for args in [
        vec!["inspect", input.as_str()],
        vec!["verify", input.as_str()],
        vec!["convert", input.as_str(), "-"],
    ] {
        let (code, stderr) = outcome(&args);
        assert_eq!(code, Some(1), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr:?}");
        assert_inert(&stderr);
        assert!(stderr.contains("\\x1b[31m"), "{stderr}");
    }
    // A tag with control characters is dropped with an escaped warning.
    let mut save = Save::new(1);
    save.manifest[0]["RepoTags"] = json!(["ok/name:1", "bad\u{1b}]0;title\u{7}:2"]);
    let input = put(tmp.path(), "tags.tar", &save.tar());
    let out = run(&["inspect", &input]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_inert(&stderr);
    assert!(stderr.contains("warning:"), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_inert(&stdout);
}

#[test]
fn an_io_error_names_its_cause_once() {
    let (code, stderr) = outcome(&["inspect", "/nonexistent/dir/image.tar"]);
    assert_eq!(code, Some(1));
    assert_eq!(
        stderr.matches("No such file or directory").count(),
        1,
        "{stderr}"
    );
    assert!(stderr.contains("/nonexistent/dir/image.tar"), "{stderr}");
}

#[test]
fn an_archive_error_names_its_input_once() {
    let tmp = tempdir();
    // An entry name deeper than dockhand accepts (a GNU long name carries it).
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(1);
    header.set_mode(0o644);
    builder
        .append_data(&mut header, "d/".repeat(200) + "x", &b"x"[..])
        .unwrap();
    let tar = builder.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    let gz = gz.finish().unwrap();
    for (file, bytes) in [("deep.tar", &tar), ("deep.tar.gz", &gz)] {
        let input = put(tmp.path(), file, bytes);
        let (code, stderr) = outcome(&["inspect", &input]);
        assert_eq!(code, Some(1), "{stderr}");
        assert!(
            stderr.starts_with(&format!("error: {input}: entry name d/d/")),
            "{stderr}"
        );
        assert_eq!(stderr.matches(file).count(), 1, "{stderr}");
    }
    // Through stdin too: named `stdin`, once.
    let out = dockhand()
        .args(["inspect", "-"])
        .stdin(std::fs::File::open(tmp.path().join("deep.tar.gz")).unwrap())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("error: stdin: entry name d/d/"),
        "{stderr}"
    );
    assert_eq!(stderr.matches("stdin").count(), 1, "{stderr}");
}

#[test]
fn usage_mistakes_exit_2_with_one_line() {
    let tmp = tempdir();
    let basic = fixture("docker-save-basic");
    let out_path = tmp.path().join("out");
    let out = s(&out_path);
    let prefixed = format!("docker-archive:{}", basic.input());
    // (row, arguments, what the error line must contain)
    let rows: Vec<(&str, Vec<&str>, &str)> = vec![
        (
            "image-index-not-a-number",
            vec!["convert", "--image", "@x", basic.input(), out],
            "@x",
        ),
        (
            "image-name-not-a-reference",
            vec!["convert", "--image", "Bad Name!", basic.input(), out],
            "Bad Name!",
        ),
        (
            "convert-platform-without-architecture",
            vec!["convert", "--platform", "linux", basic.input(), out],
            "platform",
        ),
        (
            "inspect-platform-with-four-parts",
            vec!["inspect", "--platform", "a/b/c/d", basic.input()],
            "platform",
        ),
        (
            "tag-with-upper-case-repository",
            vec!["convert", "--tag", "Upper:1", basic.input(), out],
            "Upper",
        ),
        (
            "tag-with-a-space",
            vec![
                "convert",
                "--to",
                "oci",
                "--tag",
                "bad tag",
                basic.input(),
                out,
            ],
            "bad tag",
        ),
        (
            "from-contradicts-source-transport",
            vec!["convert", "--from", "oci", &prefixed, out],
            "contradicts",
        ),
        (
            "to-contradicts-destination-transport",
            vec![
                "convert",
                "--to",
                "oci",
                basic.input(),
                "docker-archive:x.tar",
            ],
            "contradicts",
        ),
        (
            "directory-format-to-stdout",
            vec!["convert", "--to", "oci", basic.input(), "-"],
            "stdout",
        ),
        (
            "docker-layout-with-an-oci-output",
            vec![
                "convert",
                "--docker-layout",
                "hybrid",
                "--to",
                "oci",
                basic.input(),
                out,
            ],
            "--docker-layout",
        ),
        (
            "registry-without-slashes",
            vec!["convert", "docker:busybox:latest", out],
            "docker://",
        ),
        (
            "registry-reference-malformed",
            vec!["convert", "docker://busy box:latest", out],
            "docker://busy box",
        ),
        (
            "docker-daemon-destination-without-a-tag",
            vec!["convert", basic.input(), "docker-daemon:busybox"],
            "docker-daemon:busybox: a destination needs a tag (NAME:TAG)",
        ),
        (
            "containers-storage-destination",
            vec!["convert", basic.input(), "containers-storage:busybox"],
            "containers-storage",
        ),
        ("unknown-transport", vec!["inspect", "foo:bar"], "foo"),
        ("convert-without-operands", vec!["convert"], "required"),
        (
            "unknown-option",
            vec!["convert", "--nope", "a", "b"],
            "--nope",
        ),
    ];
    let mut table = Table::new("usage_mistakes_exit_2_with_one_line");
    for (name, args, needle) in rows {
        table.row(name, || {
            let (code, stderr) = outcome(&args);
            assert_eq!(code, Some(2), "{args:?}: {stderr}");
            assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
            assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
            assert!(
                stderr.contains(needle),
                "{args:?}: {needle:?} not in {stderr}"
            );
        });
    }
    // An unknown transport says which ones dockhand has.
    table.row("unknown-transport-lists-the-transports", || {
        let (_, stderr) = outcome(&["inspect", "foo:busybox"]);
        for t in [
            "docker-archive",
            "docker-dir",
            "oci",
            "oci-archive",
            "dir",
            "docker://",
        ] {
            assert!(stderr.contains(t), "{stderr}");
        }
    });
    table.row("no-mistake-wrote-the-destination", || {
        assert!(!tmp.path().join("out").exists());
    });
    // A file whose name only looks like a transport is read as a file.
    table.row("file-named-like-a-transport-is-a-file", || {
        let odd = tmp.path().join("foo:bar");
        std::fs::copy(basic.input(), &odd).unwrap();
        let mut inspect = dockhand();
        inspect
            .args(["inspect", "foo:bar"])
            .current_dir(tmp.path())
            .stdin(Stdio::null());
        run_cmd(inspect);
    });
    table.finish();
}

#[test]
fn at_n_means_the_same_image_everywhere() {
    let multi = fixture("docker-save-multi");
    let all = inspect(multi.input());
    for n in 0..3 {
        let at = format!("@{n}");
        let one: serde_json::Value =
            serde_json::from_slice(&ok(&["inspect", "--json", "--image", &at, multi.input()]))
                .unwrap();
        assert_eq!(one["images"][0]["index"], n, "{at}");
        assert_eq!(one["images"][0], all["images"][n], "{at}");
        let table = String::from_utf8(ok(&["inspect", "--image", &at, multi.input()])).unwrap();
        assert!(table.lines().any(|l| l.starts_with(&at)), "{table}");
        let tmp = tempdir();
        let out = run(&[
            "convert",
            "--image",
            &at,
            multi.input(),
            s(&tmp.path().join("o")),
        ]);
        let summary = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{summary}");
        assert!(summary.contains(&format!("  {at} ")), "{summary}");
    }
}

#[test]
fn the_summary_lists_every_tag_in_the_source_order() {
    let tmp = tempdir();
    let mut save = Save::new(1);
    save.manifest[0]["RepoTags"] = json!(["zeta/app:2", "alpha/app:1", "example.com/m/app:3"]);
    let input = put(tmp.path(), "tags.tar", &save.tar());
    let out = run(&["convert", &input, s(&tmp.path().join("o"))]);
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{summary}");
    let line = summary.lines().find(|l| l.contains("@0")).unwrap();
    let zeta = line.find("docker.io/zeta/app:2").expect(line);
    let alpha = line.find("docker.io/alpha/app:1").expect(line);
    let example = line.find("example.com/m/app:3").expect(line);
    assert!(zeta < alpha && alpha < example, "{line}");
}

#[test]
fn two_different_manifest_json_entries_are_named_in_a_warning() {
    let tmp = tempdir();
    let save = Save::new(1);
    let mut entries = save.entries();
    let mut other = save.manifest.clone();
    other[0]["RepoTags"] = json!(["second/choice:2"]);
    // entries: config (1), layer (2), manifest.json (3), then a second manifest.json (4).
    entries.push(file("manifest.json", serde_json::to_vec(&other).unwrap()));
    let input = put(tmp.path(), "twice.tar", &tar_of(&entries));
    let out = run(&["inspect", "--json", &input]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("manifest.json appears twice (entries 3 and 4)")
            && stderr.contains("using the last, entry 4"),
        "{stderr}"
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        doc["images"][0]["tags"],
        json!(["docker.io/second/choice:2"])
    );
    // The same bytes twice are no conflict and say nothing.
    let mut entries = save.entries();
    entries.push(file(
        "manifest.json",
        serde_json::to_vec(&save.manifest).unwrap(),
    ));
    let input = put(tmp.path(), "same.tar", &tar_of(&entries));
    let out = run(&["inspect", &input]);
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn stdin_is_named_stdin() {
    let zeros = std::fs::File::open("/dev/zero").unwrap();
    let tmp = tempdir();
    let out = dockhand()
        .args(["convert", "-", s(&tmp.path().join("out"))])
        .stdin(zeros)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.starts_with("error: stdin: "), "{stderr}");
    assert!(stderr.contains("no entries"), "{stderr}");
}
