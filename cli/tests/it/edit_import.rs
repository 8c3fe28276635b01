//! `dockhand import`: a one-layer image of a root filesystem, compared with what the
//! real `docker import` makes of the same tar and the same `--change`s (the daemon
//! DOCKER_HOST names), run by `docker run`, written to every transport, the same
//! image twice with SOURCE_DATE_EPOCH, and hostile root filesystems refused.

use crate::common::build::{file, hardlink, put, symlink, tar_of};
use crate::common::images::{
    ok_at, ok_at_epoch, only_image, read_config, unique_edit_name, DockerImages, EPOCH,
};
use crate::common::registry::{isolated_dockhand, RegistryFixture};
use crate::common::rootfs::{echo_rootfs, gnu_tar};
use crate::common::*;

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

fn docker_inspect(reference: &str) -> Value {
    let out = tool("docker", &["image", "inspect", reference]);
    serde_json::from_slice::<Value>(&out).unwrap()[0].clone()
}

/// What a user sees of an image in `docker inspect`: the config's fields an import
/// sets, with null, empty and absent alike.
fn user_visible(inspect: &Value) -> Value {
    let config = &inspect["Config"];
    let mut seen = serde_json::Map::new();
    for field in [
        "Cmd",
        "Entrypoint",
        "Env",
        "ExposedPorts",
        "Labels",
        "User",
        "Volumes",
        "WorkingDir",
        "OnBuild",
        "Healthcheck",
    ] {
        let value = &config[field];
        let empty = value.is_null()
            || value.as_str() == Some("")
            || value.as_array().is_some_and(Vec::is_empty)
            || value.as_object().is_some_and(|o| o.is_empty());
        if !empty {
            seen.insert(field.into(), value.clone());
        }
    }
    for field in ["Os", "Architecture", "Comment", "Author"] {
        seen.insert(field.into(), inspect[field].clone());
    }
    seen.insert("Layers".into(), inspect["RootFS"]["Layers"].clone());
    Value::Object(seen)
}

fn diff_ids(image: &Value) -> Vec<String> {
    crate::common::interop::diff_ids_of(image)
}

/// The changes compared with docker import: every instruction it takes, in its JSON
/// and shell forms, legacy forms and `$VAR`s included.
const CHANGES: &[&[&str]] = &[
    &[
        r#"ENV A=1 B="two words""#,
        "ENV LEGACY value with   spaces",
        "ENV C=$A-x D=${NOPE:-default}",
        r#"LABEL a=b "c d"="e f""#,
        "LABEL legacy v w",
        "EXPOSE 80 53/udp 8000-8001",
        // A host part: checked, then only the container port kept.
        "EXPOSE 1.2.3.4:81:81 8080:82 [::1]:8443:443/udp",
        "USER 1000:1000",
        r#"VOLUME ["/data"]"#,
        "VOLUME /v1 /v2",
        "WORKDIR /srv",
        "WORKDIR app",
        "ONBUILD RUN echo hi",
        r#"CMD ["/bin/echo", "from", "cmd"]"#,
        r#"ENTRYPOINT ["/bin/echo"]"#,
        "HEALTHCHECK --interval=5s --retries=2 CMD /bin/echo ok",
    ],
    &[
        "CMD echo shell form",
        "ENTRYPOINT /bin/echo entry",
        "ENV PATH=/usr/local/bin:/usr/bin:/bin",
        r#"HEALTHCHECK CMD ["/bin/echo", "ok"]"#,
    ],
];

#[test]
fn import_gives_what_docker_import_gives_and_docker_runs_it() {
    let test = "import_gives_what_docker_import_gives_and_docker_runs_it";
    if !have_docker(test) {
        return;
    }
    let _lock = docker_lock();
    let tmp = tempdir();
    let root = echo_rootfs(tmp.path());
    let tar = tmp.path().join("rootfs.tar");
    gnu_tar(&root, &tar);
    let bytes = std::fs::read(&tar).unwrap();
    for (n, changes) in CHANGES.iter().enumerate() {
        let theirs = unique_edit_name(&format!("docker-import-{n}"));
        let ours = unique_edit_name(&format!("dockhand-import-{n}"));
        let _cleanup = DockerImages(vec![theirs.clone(), ours.clone()]);
        let message: &[&str] = if n == 0 { &["-m", "the message"] } else { &[] };
        let mut docker_args = vec!["import"];
        let mut dh_args = vec!["import", "-q", "--tag", &ours];
        for change in *changes {
            docker_args.extend(["--change", change]);
            dh_args.extend(["--change", change]);
        }
        docker_args.extend(message);
        dh_args.extend(message);
        docker_args.extend([s(&tar), &theirs]);
        tool("docker", &docker_args);
        let archive = tmp.path().join(format!("ours-{n}.tar"));
        dh_args.extend([s(&tar), s(&archive)]);
        ok_at_epoch(&dh_args);
        tool("docker", &["load", "-q", "-i", s(&archive)]);
        let (theirs_seen, ours_seen) = (docker_inspect(&theirs), docker_inspect(&ours));
        assert_eq!(
            user_visible(&ours_seen),
            user_visible(&theirs_seen),
            "{changes:?}"
        );
        // The layer is the tar as given, GNU tar's padding included: docker's diff_id.
        assert_eq!(ours_seen["RootFS"]["Layers"][0], sha256(&bytes));
        assert_eq!(ours_seen["Created"], "2023-11-14T22:13:20Z");
        // A binary of the image runs.
        let out = tool(
            "docker",
            &[
                "run",
                "--rm",
                "--network",
                "none",
                "--entrypoint",
                "/bin/echo",
                &ours,
                "hello",
                "from",
                "the",
                "image",
            ],
        );
        assert_eq!(String::from_utf8_lossy(&out), "hello from the image\n");
    }
}

#[test]
fn the_same_rootfs_twice_gives_the_same_image() {
    let tmp = tempdir();
    let root = echo_rootfs(tmp.path());
    let tar = tmp.path().join("rootfs.tar");
    gnu_tar(&root, &tar);
    let out = |name: &str| tmp.path().join(name);
    // A tar, twice, and a directory, twice with a modification time moved between
    // the runs: clamped to SOURCE_DATE_EPOCH, the same image each time.
    ok_at_epoch(&["import", "-q", s(&tar), s(&out("t1.tar"))]);
    ok_at_epoch(&["import", "-q", s(&tar), s(&out("t2.tar"))]);
    assert_eq!(
        std::fs::read(out("t1.tar")).unwrap(),
        std::fs::read(out("t2.tar")).unwrap()
    );
    let touch = |when: &str| {
        tool("touch", &["-h", "-d", when, s(&root.join("etc/motd"))]);
    };
    touch("@1800000000");
    ok_at_epoch(&["import", "-q", s(&root), s(&out("d1.tar"))]);
    touch("@1900000000");
    ok_at_epoch(&["import", "-q", s(&root), s(&out("d2.tar"))]);
    let d1 = only_image(s(&out("d1.tar")));
    assert_eq!(d1, only_image(s(&out("d2.tar"))));
    assert_eq!(
        std::fs::read(out("d1.tar")).unwrap(),
        std::fs::read(out("d2.tar")).unwrap()
    );
    assert_eq!(
        read_config(s(&out("d1.tar"))).1["created"],
        "2023-11-14T22:13:20Z"
    );
    // Without the clamp, the moved time is in the layer: another diff_id.
    ok_at(None, &["import", "-q", s(&root), s(&out("d3.tar"))]);
    assert_ne!(diff_ids(&only_image(s(&out("d3.tar")))), diff_ids(&d1));
}

/// The entries of the single layer of the `dir:` layout at `dir`: name, type, mode,
/// uid, mtime, link target.
fn layer_entries(dir: &Path) -> Vec<(String, char, u32, u64, u64, String)> {
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let digest = manifest["layers"][0]["digest"].as_str().unwrap();
    let bytes = std::fs::read(dir.join(digest.strip_prefix("sha256:").unwrap())).unwrap();
    let mut archive = tar::Archive::new(&bytes[..]);
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let h = e.header();
            let link = e
                .link_name()
                .unwrap()
                .map(|l| l.display().to_string())
                .unwrap_or_default();
            (
                e.path().unwrap().display().to_string(),
                h.entry_type().as_byte() as char,
                h.mode().unwrap(),
                h.uid().unwrap(),
                h.mtime().unwrap(),
                link,
            )
        })
        .collect()
}

#[test]
fn a_rootfs_from_stdin_compressed_or_a_directory() {
    use std::io::Write;
    let tmp = tempdir();
    let root = echo_rootfs(tmp.path());
    let tar = tmp.path().join("rootfs.tar");
    gnu_tar(&root, &tar);
    let plain = std::fs::read(&tar).unwrap();
    let want = vec![sha256(&plain)];
    let imported = |input: &str, label: &str| -> Value {
        let dst = tmp.path().join(format!("{label}.tar"));
        ok_at_epoch(&["import", "-q", input, s(&dst)]);
        only_image(s(&dst))
    };
    let plain_image = imported(s(&tar), "plain");
    assert_eq!(diff_ids(&plain_image), want);
    // Compressed: the layer is the tar inside, the same image.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&plain).unwrap();
    let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 6);
    xz.write_all(&plain).unwrap();
    for (label, bytes) in [
        ("gz", gz.finish().unwrap()),
        ("zst", zstd::encode_all(&plain[..], 3).unwrap()),
        ("xz", xz.finish().unwrap()),
    ] {
        let input = put(tmp.path(), &format!("rootfs.tar.{label}"), &bytes);
        assert_eq!(imported(&input, label), plain_image, "{label}");
    }
    // From a pipe.
    let dst = tmp.path().join("stdin.tar");
    let mut cmd = dockhand();
    cmd.env("SOURCE_DATE_EPOCH", EPOCH)
        .args(["import", "-q", "-", s(&dst)]);
    let out = pipe_cmd(cmd, &plain);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(only_image(s(&dst)), plain_image);
    // A directory: sorted, each directory before what it holds, links kept, times
    // clamped, owners and modes as they are.
    tool(
        "touch",
        &["-h", "-d", "@1800000000", s(&root.join("etc/motd.abs"))],
    );
    std::fs::set_permissions(
        root.join("bin/echo"),
        std::os::unix::fs::PermissionsExt::from_mode(0o4755),
    )
    .unwrap();
    let layout = tmp.path().join("from-dir");
    ok_at_epoch(&["import", "-q", s(&root), &format!("dir:{}", s(&layout))]);
    let entries = layer_entries(&layout);
    let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    assert!(
        names.contains(&"bin/") && names.contains(&"etc/motd"),
        "{names:?}"
    );
    let find = |name: &str| entries.iter().find(|e| e.0 == name).unwrap().clone();
    assert_eq!(find("bin/echo").2, 0o4755);
    assert_eq!(find("etc/motd").1, '0');
    assert_eq!(
        (find("etc/motd.link").1, find("etc/motd.link").5),
        ('1', "etc/motd".into())
    );
    assert_eq!(
        (find("etc/motd.abs").1, find("etc/motd.abs").5),
        ('2', "/etc/motd".into())
    );
    let uid = std::fs::metadata(&root)
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap();
    assert!(entries.iter().all(|e| e.3 == u64::from(uid)));
    assert!(entries.iter().all(|e| e.4 <= 1_700_000_000), "{entries:?}");
}

/// Run `cmd` with `input` on its stdin.
fn pipe_cmd(mut cmd: Command, input: &[u8]) -> std::process::Output {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    out
}

#[test]
fn an_import_goes_to_every_local_transport_and_stdout_as_one_image() {
    let tmp = tempdir();
    let tar = put(
        tmp.path(),
        "rootfs.tar",
        &tar_of(&[
            file("bin/tool", b"#!/bin/sh\n".to_vec()),
            symlink("bin/alias", "/bin/tool"),
        ]),
    );
    let args = |dst: &str| -> Vec<String> {
        [
            "import",
            "-q",
            "--change",
            "LABEL made=here",
            "--tag",
            "made/here:1",
            &tar,
            dst,
        ]
        .map(String::from)
        .to_vec()
    };
    let reference = tmp.path().join("reference.tar");
    ok_at_epoch(
        &args(s(&reference))
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    let want = only_image(s(&reference));
    assert_eq!(want["tags"], serde_json::json!(["docker.io/made/here:1"]));
    for dst in [
        format!("oci:{}", s(&tmp.path().join("oci"))),
        format!("oci-archive:{}", s(&tmp.path().join("oci.tar"))),
        format!("dir:{}", s(&tmp.path().join("dir"))),
        format!("docker-dir:{}", s(&tmp.path().join("docker-dir"))),
    ] {
        ok_at_epoch(&args(&dst).iter().map(String::as_str).collect::<Vec<_>>());
        let image = only_image(&dst);
        assert_eq!(image["config"]["digest"], want["config"]["digest"], "{dst}");
        assert_eq!(diff_ids(&image), diff_ids(&want), "{dst}");
        ok(&["verify", "-q", &dst]);
    }
    // To stdout: a docker-archive, the same bytes as the file.
    let stdout = ok_at_epoch(&args("-").iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(stdout, std::fs::read(&reference).unwrap());
}

#[test]
fn an_import_goes_to_a_registry_and_a_daemon() {
    let Some(fx) = RegistryFixture::builder().needs("skopeo").docker().start() else {
        return;
    };
    let tmp = fx.dir();
    let root = echo_rootfs(tmp);
    let tar = tmp.join("rootfs.tar");
    gnu_tar(&root, &tar);
    let run_at = |args: &[&str]| {
        let out = isolated_dockhand(tmp, args)
            .env("SOURCE_DATE_EPOCH", EPOCH)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let reference = tmp.join("reference.tar");
    run_at(&[
        "import",
        "-q",
        "--change",
        "CMD [\"/bin/echo\", \"pushed\"]",
        s(&tar),
        s(&reference),
    ]);
    let want = only_image(s(&reference));
    let remote = fx.remote("imported/echo:1");
    run_at(&[
        "import",
        "-q",
        "--tls-verify=false",
        "--change",
        "CMD [\"/bin/echo\", \"pushed\"]",
        s(&tar),
        &remote,
    ]);
    let config = skopeo(
        tmp,
        &[
            "inspect",
            "--tls-verify=false",
            "--config",
            "--raw",
            &remote,
        ],
    );
    assert_eq!(sha256(&config), want["config"]["digest"].as_str().unwrap());
    // docker pulls it from the registry on loopback and runs it.
    let pulled = format!("{}/imported/echo:1", fx.addr());
    let name = unique_edit_name("daemon-import");
    let _cleanup = DockerImages(vec![pulled.clone(), name.clone()]);
    tool("docker", &["pull", "-q", &pulled]);
    let out = tool("docker", &["run", "--rm", "--network", "none", &pulled]);
    assert_eq!(String::from_utf8_lossy(&out), "pushed\n");
    // Into the daemon: loaded under its name, the same image ID.
    run_at(&[
        "import",
        "-q",
        "--change",
        "CMD [\"/bin/echo\", \"pushed\"]",
        s(&tar),
        &format!("docker-daemon:{name}"),
    ]);
    assert_eq!(docker_inspect(&name)["Id"], want["config"]["digest"]);
}

/// dockhand exits 1 with one error line; the line.
fn one_line_failure(args: &[&str]) -> String {
    let stderr = fails(args);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    stderr
}

#[test]
fn a_rootfs_that_is_no_tar_or_leaves_the_root_is_refused_and_nothing_is_written() {
    let tmp = tempdir();
    let out_dir = tmp.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let dst = out_dir.join("image.tar");
    for (name, bytes, words) in [
        (
            "notes.txt",
            b"just some notes\n".to_vec(),
            "not a tar archive (it looks like plain text)",
        ),
        ("empty.tar", Vec::new(), "empty"),
        (
            "climb.tar",
            tar_of(&[file("../escaped", b"x".to_vec())]),
            "entry ../escaped: its name climbs out of the root",
        ),
        (
            "abs-link.tar",
            tar_of(&[hardlink("etc/shadow2", "/etc/shadow")]),
            "entry etc/shadow2: a hard link to the absolute path /etc/shadow",
        ),
        (
            "up-link.tar",
            tar_of(&[hardlink("x", "a/../../etc/shadow")]),
            "entry x: a hard link to a/../../etc/shadow, out of the root",
        ),
        (
            "up-symlink.tar",
            tar_of(&[symlink("bin/x", "../../etc")]),
            "entry bin/x: a symlink to ../../etc",
        ),
    ] {
        let input = put(tmp.path(), name, &bytes);
        for dst in [
            s(&dst).to_string(),
            format!("oci:{}", s(&out_dir.join("layout"))),
        ] {
            let line = one_line_failure(&["import", &input, &dst]);
            assert!(
                line.contains(name) && line.contains(words),
                "{name}: {line}"
            );
        }
        assert_eq!(
            std::fs::read_dir(&out_dir).unwrap().count(),
            0,
            "{name}: something was left"
        );
    }
    // An entry with control characters in its name is named escaped.
    let evil = put(
        tmp.path(),
        "evil.tar",
        &tar_of(&[file("../\u{1b}[2Jx", b"x".to_vec())]),
    );
    let line = one_line_failure(&["import", &evil, s(&dst)]);
    assert!(
        !line.contains('\u{1b}') && line.contains("\\x1b[2Jx"),
        "{line}"
    );
    // A symlink to an absolute path is what root filesystems hold: kept.
    let ok_tar = put(
        tmp.path(),
        "abs-symlink.tar",
        &tar_of(&[symlink("bin/sh", "/bin/busybox")]),
    );
    ok(&["import", "-q", &ok_tar, s(&dst)]);
}

#[test]
fn the_output_is_never_inside_the_rootfs_it_reads_nor_the_rootfs_itself() {
    let tmp = tempdir();
    let root = tmp.path().join("rootfs");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/motd"), "hi\n").unwrap();
    let before = tree_snapshot(&root);
    for dst in [
        format!("oci:{}", s(&root.join("out"))),
        s(&root.join("image.tar")).to_string(),
        format!("oci:{}", s(&root)),
    ] {
        let line = one_line_failure(&["import", "--force", s(&root), &dst]);
        assert!(
            line.contains("refusing to write") && line.contains("input"),
            "{line}"
        );
        assert_eq!(tree_snapshot(&root), before, "{dst}");
    }
    let tar = put(
        tmp.path(),
        "rootfs.tar",
        &tar_of(&[file("f", b"x".to_vec())]),
    );
    let line = one_line_failure(&["import", "--force", &tar, &tar]);
    assert!(line.contains("it is an input"), "{line}");
}

#[test]
fn bad_changes_and_times_are_usage_errors_before_anything_is_read() {
    let tmp = tempdir();
    let dst = tmp.path().join("image.tar");
    for (change, words) in [
        (
            "FROM alpine",
            "--change FROM alpine: FROM is not an instruction a change can hold",
        ),
        ("ENV A", "ENV must have two arguments"),
        ("EXPOSE http", "invalid containerPort: http"),
        ("USER a b", "USER requires exactly one argument"),
    ] {
        // The rootfs does not exist: a usage error comes first (EXPOSE's after the
        // rootfs is read, as its words are expanded then: it is given one).
        let rootfs = put(tmp.path(), "r.tar", &tar_of(&[file("f", b"x".to_vec())]));
        let out = run(&["import", "--change", change, &rootfs, s(&dst)]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{change}: {stderr}");
        assert!(
            stderr.contains(words) && stderr.lines().count() == 1,
            "{change}: {stderr}"
        );
        assert!(!dst.exists());
    }
    let out = dockhand()
        .env("SOURCE_DATE_EPOCH", "yesterday")
        .args(["import", "rootfs", s(&dst)])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("SOURCE_DATE_EPOCH=yesterday"));
}
