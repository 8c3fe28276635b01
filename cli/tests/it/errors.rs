//! Helpful errors: each one line that says what was being read (the input, image or
//! layer), what is wrong and, where there is one, what to do. Every case runs the real
//! binary on fixtures, hand-built hostile inputs or a scripted registry, and checks the
//! wording a user acts on.

use crate::common::build::put;
use crate::common::registry::{free_port, isolated_dockhand, Registry, Scripted};
use crate::common::*;

use std::path::{Path, PathBuf};

/// Run dockhand with `args` in an isolated HOME; require exit code `code` and exactly
/// one `error:` line; returns that line.
fn error_line(tmp: &Path, args: &[&str], code: i32) -> String {
    let out = isolated_dockhand(tmp, args)
        .output()
        .expect("running dockhand");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
    assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    stderr.trim_end().to_string()
}

/// Require every needle in `line`.
fn says(line: &str, needles: &[&str]) {
    for needle in needles {
        assert!(line.contains(needle), "{needle:?} not in: {line}");
    }
}

#[test]
fn an_unknown_image_names_the_input_and_how_to_list_its_images() {
    let tmp = tempdir();
    let t = tmp.path();
    let multi = fixture("docker-save-multi");
    let src = multi.input();
    let listing = format!("`dockhand inspect {src}` lists every image with its names and IDs");
    let out = t.join("out");
    for args in [
        vec!["inspect", "--image", "nosuch:1", src],
        vec!["history", "--image", "nosuch:1", src],
        vec!["verify", "--image", "@9", src],
        vec!["convert", "--image", "sha256:0123456789ab", src, s(&out)],
    ] {
        let line = error_line(t, &args, 1);
        says(
            &line,
            &[
                &format!("error: {src}: no image"),
                "@0 60aab187e084",
                "@2 51914c0e66d5",
                &listing,
            ],
        );
    }
    assert!(!out.exists());
    // An input whose name a shell would split is quoted in the hint.
    let spaced = t.join("my images.tar");
    std::fs::copy(src, &spaced).unwrap();
    let line = error_line(t, &["inspect", "--image", "nosuch", s(&spaced)], 1);
    says(
        &line,
        &[&format!("`dockhand inspect '{}'` lists", s(&spaced))],
    );
}

#[test]
fn a_missing_platform_lists_those_held_and_how_to_pick_one() {
    let tmp = tempdir();
    let oci = fixture("skopeo-oci");
    let line = error_line(
        tmp.path(),
        &["inspect", "--platform", "linux/s390x", oci.input()],
        1,
    );
    says(
        &line,
        &[
            oci.input(),
            "no image for linux/s390x",
            "holds linux/amd64",
            "pick one with --platform",
        ],
    );
}

#[test]
fn an_input_of_no_known_format_names_the_formats_dockhand_reads() {
    let tmp = tempdir();
    let t = tmp.path();
    let text = put(t, "notes.txt", b"just some notes\n");
    let zip = put(t, "archive.zip", b"PK\x03\x04 and the rest of a zip");
    let dir = t.join("project");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("Cargo.toml"), b"[package]\n").unwrap();
    let supported = [
        "dockhand reads docker save and OCI archives",
        "gzip, zstd, xz or bzip2",
        "image layout directories (OCI, docker save, dir:)",
        "docker:// registries",
    ];
    for (input, problem) in [
        (
            text.as_str(),
            "not a tar archive (it looks like plain text)",
        ),
        (
            zip.as_str(),
            "not a tar archive (it looks like a zip archive)",
        ),
        (s(&dir), "not an image: no manifest.json, index.json"),
    ] {
        let line = error_line(t, &["inspect", input], 1);
        says(&line, &[input, problem]);
        says(&line, &supported);
    }
}

#[test]
fn an_unsupported_layout_version_says_which_versions_are_read() {
    let tmp = tempdir();
    let t = tmp.path();
    let layout = t.join("layout");
    ok(&[
        "convert",
        "-q",
        fixture("docker-save-basic").input(),
        s(&layout),
    ]);
    std::fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"2.0.0"}"#,
    )
    .unwrap();
    let line = error_line(t, &["inspect", s(&layout)], 1);
    says(
        &line,
        &[
            s(&layout),
            "unsupported imageLayoutVersion \"2.0.0\"",
            "dockhand reads OCI layouts of version 1.x",
        ],
    );
}

#[test]
fn a_malformed_registry_reference_shows_the_expected_form() {
    let tmp = tempdir();
    let expected = "expected docker://[HOST[:PORT]/]REPO[:TAG|@sha256:DIGEST]";
    for (src, problem) in [
        ("docker://", "no repository named"),
        ("docker://Upper/Case:1", "lowercase"),
        ("docker://busybox@sha256:12", "invalid digest"),
    ] {
        let line = error_line(tmp.path(), &["inspect", src], 2);
        says(&line, &[src, problem, expected]);
    }
}

/// A registry that wants HTTP Basic credentials for everything and accepts none.
fn refusing_registry() -> Scripted {
    Scripted::start(|_| {
        (
            401,
            vec![(
                "WWW-Authenticate",
                "Basic realm=\"dockhand-test\"".to_string(),
            )],
            br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#.to_vec(),
        )
    })
}

#[test]
fn a_registry_asking_for_credentials_says_how_to_give_them() {
    let server = refusing_registry();
    let tmp = tempdir();
    let t = tmp.path();
    let remote = format!("docker://{}/private/app:1", server.addr);
    let line = error_line(t, &["inspect", "--tls-verify=false", &remote], 1);
    says(
        &line,
        &[
            &format!("registry {}", server.addr),
            "HTTP 401",
            &format!("docker login {}", server.addr),
            "podman login",
            "--creds USER:PASSWORD",
            "--authfile FILE",
        ],
    );
    // Credentials given and refused: said so, and the password never shown.
    let line = error_line(
        t,
        &[
            "inspect",
            "--tls-verify=false",
            "--creds",
            "someone:s3cret-pa55",
            &remote,
        ],
        1,
    );
    says(&line, &["the credentials were refused", "docker login"]);
    assert!(!line.contains("s3cret-pa55"), "{line}");
}

#[test]
fn a_registry_denying_access_says_rights_are_missing() {
    let server = Scripted::start(|path| {
        match path {
        "/v2/" => (200, vec![], b"{}".to_vec()),
        _ => (
            403,
            vec![],
            br#"{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}"#
                .to_vec(),
        ),
    }
    });
    let tmp = tempdir();
    let remote = format!("docker://{}/team/app:1", server.addr);
    let line = error_line(tmp.path(), &["inspect", "--tls-verify=false", &remote], 1);
    says(&line, &["HTTP 403", "DENIED", "access denied"]);
}

#[test]
fn an_unknown_manifest_names_the_reference_and_how_to_list_tags() {
    let server = Scripted::start(|path| {
        match path {
        "/v2/" => (200, vec![], b"{}".to_vec()),
        p if p.starts_with("/v2/gone/") => (
            404,
            vec![],
            br#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}"#
                .to_vec(),
        ),
        _ => (
            404,
            vec![],
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#.to_vec(),
        ),
    }
    });
    let tmp = tempdir();
    let t = tmp.path();
    let addr = &server.addr;
    let line = error_line(
        t,
        &[
            "inspect",
            "--tls-verify=false",
            &format!("docker://{addr}/team/app:v9"),
        ],
        1,
    );
    says(
        &line,
        &[
            &format!("{addr}/team/app:v9: manifest unknown"),
            "team/app has no tag v9",
            &format!("`dockhand tags docker://{addr}/team/app` lists its tags"),
        ],
    );
    let digest = format!("sha256:{}", "ab".repeat(32));
    let line = error_line(
        t,
        &[
            "inspect",
            "--tls-verify=false",
            &format!("docker://{addr}/team/app@{digest}"),
        ],
        1,
    );
    says(
        &line,
        &[
            &format!("{addr}/team/app@{digest}: manifest unknown"),
            &format!("has no manifest {digest}"),
        ],
    );
    let line = error_line(
        t,
        &[
            "inspect",
            "--tls-verify=false",
            &format!("docker://{addr}/gone:1"),
        ],
        1,
    );
    says(
        &line,
        &["manifest unknown", "the registry has no repository gone"],
    );
    let line = error_line(
        t,
        &[
            "tags",
            "--tls-verify=false",
            &format!("docker://{addr}/gone"),
        ],
        1,
    );
    says(
        &line,
        &["NAME_UNKNOWN", "no such repository: check the name"],
    );
}

#[test]
fn an_unreachable_registry_asks_whether_one_listens_there() {
    let tmp = tempdir();
    let addr = format!("127.0.0.1:{}", free_port());
    let line = error_line(
        tmp.path(),
        &[
            "tags",
            "--tls-verify=false",
            "--retry-times",
            "0",
            &format!("docker://{addr}/app"),
        ],
        1,
    );
    says(
        &line,
        &[
            &format!("registry {addr}"),
            &format!("is a registry listening at {addr}?"),
        ],
    );
    // A host name that cannot resolve (.invalid never does).
    let line = error_line(
        tmp.path(),
        &[
            "inspect",
            "--retry-times",
            "0",
            "docker://nowhere.invalid/app:1",
        ],
        1,
    );
    says(
        &line,
        &["the host name of nowhere.invalid does not resolve: check it"],
    );
}

/// A directory this process may not create files in (a read-only one when not root;
/// sysfs, which refuses new files even to root, otherwise), or `None` with a SKIPPED
/// line (a failure where CI requires every test to run). `tmp` holds the read-only directory, if one is made.
fn unwritable_dir(tmp: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let locked = tmp.join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
    for dir in [locked, PathBuf::from("/sys/kernel")] {
        let probe = dir.join("dockhand-probe");
        match std::fs::File::create(&probe) {
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => return Some(dir),
            Err(_) => {}
            Ok(_) => {
                let _ = std::fs::remove_file(&probe);
            }
        }
    }
    skip_or_fail(&test_name(), "no directory refuses new files here");
    None
}

#[test]
fn an_unwritable_destination_says_so_and_what_to_do() {
    let tmp = tempdir();
    let t = tmp.path();
    let Some(dir) = unwritable_dir(t) else {
        return;
    };
    let basic = fixture("docker-save-basic");
    for (out, to) in [
        (dir.join("out.tar"), "docker-archive"),
        (dir.join("out"), "oci"),
    ] {
        let line = error_line(t, &["convert", "--to", to, basic.input(), s(&out)], 1);
        says(
            &line,
            &[
                &format!("cannot write {}", s(&out)),
                &format!("no permission to create files in {}", s(&dir)),
                "choose a destination in a directory you can write to",
            ],
        );
        assert!(!out.exists());
    }
}

#[test]
fn a_destination_in_a_missing_directory_says_to_create_it() {
    let tmp = tempdir();
    let t = tmp.path();
    let missing = t.join("not-yet");
    let out = missing.join("out.tar");
    let line = error_line(
        t,
        &["convert", fixture("docker-save-basic").input(), s(&out)],
        1,
    );
    says(
        &line,
        &[
            &format!("refusing to write {}", s(&out)),
            &format!("its directory {} does not exist", s(&missing)),
            "create it first",
        ],
    );
    assert!(!missing.exists());
}

#[test]
fn an_unwritable_blob_cache_says_how_to_use_another() {
    let tmp = tempdir();
    let t = tmp.path();
    let Some(dir) = unwritable_dir(t) else {
        return;
    };
    let Some(reg) = Registry::start(crate::common::registry::Auth::None) else {
        return;
    };
    let remote = format!("docker://{}/cache/app:1", reg.addr);
    let basic = fixture("docker-save-basic");
    let push = isolated_dockhand(
        t,
        &[
            "convert",
            "-q",
            "--tls-verify=false",
            basic.input(),
            &remote,
        ],
    )
    .output()
    .unwrap();
    assert!(push.status.success(), "{push:?}");
    let cache = dir.join("cache");
    let out = t.join("pulled");
    let line = error_line(
        t,
        &[
            "convert",
            "--tls-verify=false",
            "--cache",
            s(&cache),
            &remote,
            s(&out),
        ],
        1,
    );
    says(
        &line,
        &[
            s(&cache),
            "choose another with --cache DIR, or none with --no-cache",
        ],
    );
    assert!(!out.exists());
}
