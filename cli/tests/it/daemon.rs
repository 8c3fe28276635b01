//! `docker-daemon:` against real daemons: the Docker daemon DOCKER_HOST names (the one
//! `.ci/run` starts), podman's Docker-compatible service started here on private
//! storage, and fake Engines on Unix sockets for the failures a real daemon will not
//! produce on demand. Images get names unique to the test and the process, so that
//! other tests using the same daemon never see them.

use crate::common::images::DockerImages;
use crate::common::*;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A name no other test or run uses.
fn unique(label: &str) -> String {
    format!("dockhand-daemon-test/{label}-{}", std::process::id())
}

/// An image of its own in docker, named `name`: `docker import` of a one-file layer
/// whose content is the name, so that its ID is this test's alone (another test
/// removing a fixture's image by ID cannot take it away). Its image ID.
fn docker_image_of_its_own(name: &str) -> String {
    let layer = build::tar_of(&[build::file("hello.txt", format!("{name}\n"))]);
    let mut import = Command::new("docker")
        .args(["import", "-", name])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    import.stdin.take().unwrap().write_all(&layer).unwrap();
    assert!(import.wait().unwrap().success(), "docker import");
    docker_id(name)
}

fn docker_id(reference: &str) -> String {
    let out = tool(
        "docker",
        &["image", "inspect", "--format", "{{.Id}}", reference],
    );
    String::from_utf8(out).unwrap().trim().to_string()
}

fn docker_tags(reference: &str) -> Vec<String> {
    let out = tool(
        "docker",
        &[
            "image",
            "inspect",
            "--format",
            "{{json .RepoTags}}",
            reference,
        ],
    );
    serde_json::from_slice(&out).unwrap()
}

/// Reads the daemon's image `name` into an OCI layout at `layout`.
fn daemon_to_layout(name: &str, layout: &Path) {
    ok(&["convert", "-q", &format!("docker-daemon:{name}"), s(layout)]);
}

/// dockhand with DOCKER_HOST set to `host`.
fn with_host(host: &str, args: &[&str]) -> std::process::Output {
    dockhand()
        .env("DOCKER_HOST", host)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Exit 1 with one `error:` line; the line.
fn one_error_line(out: &std::process::Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with("error: ") && stderr.lines().count() == 1,
        "{stderr}"
    );
    stderr.trim_end().to_string()
}

#[test]
fn docker_to_oci_and_back_keeps_the_id_and_names() {
    if !have_docker(&test_name()) {
        return;
    }
    let tmp = tempdir();
    let name = format!("{}:1.0", unique("source"));
    let back = format!("{}:copy", unique("back"));
    let _cleanup = DockerImages(vec![name.clone(), back.clone()]);
    let id = docker_image_of_its_own(&name);

    // Read from the daemon: the image keeps its ID and the name the daemon gives it.
    let layout = tmp.path().join("layout");
    daemon_to_layout(&name, &layout);
    let doc = inspect(s(&layout));
    assert_eq!(config_digests(&doc), std::slice::from_ref(&id));
    assert_eq!(tags_of(&images(&doc)[0]), [format!("docker.io/{name}")]);

    // `oci:DIR:tag` names the image by the reference, as for any source.
    let tagged = tmp.path().join("tagged");
    ok(&[
        "convert",
        "-q",
        &format!("docker-daemon:{name}"),
        &format!("oci:{}:v1", s(&tagged)),
    ]);
    assert_eq!(
        config_digests(&inspect(s(&tagged))),
        std::slice::from_ref(&id)
    );

    // And back into the daemon under a new name, which says what it loaded.
    let out = run(&[
        "convert",
        &format!("oci:{}", s(&layout)),
        &format!("docker-daemon:{back}"),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("Loaded image: {back}")),
        "{stderr}"
    );
    assert_eq!(docker_id(&back), id);
    assert!(
        docker_tags(&back).contains(&back),
        "{:?}",
        docker_tags(&back)
    );

    // By image ID: the same image; docker names no tag for a save by ID.
    let by_id = tmp.path().join("by-id");
    ok(&["convert", "-q", &format!("docker-daemon:{id}"), s(&by_id)]);
    let doc = inspect(s(&by_id));
    assert_eq!(config_digests(&doc), std::slice::from_ref(&id));
    assert!(tags_of(&images(&doc)[0]).is_empty(), "{doc}");
}

#[test]
fn an_image_the_daemon_lacks_is_one_line_naming_it() {
    if !have_docker(&test_name()) {
        return;
    }
    let tmp = tempdir();
    let missing = format!("{}:none", unique("missing"));
    let out = run(&[
        "convert",
        &format!("docker-daemon:{missing}"),
        s(&tmp.path().join("out")),
    ]);
    let line = one_error_line(&out);
    assert!(
        line.contains(&missing) && line.contains("has no image"),
        "{line}"
    );
    assert!(!tmp.path().join("out").exists());
}

#[test]
fn no_daemon_at_the_socket_says_so_and_names_docker_host() {
    let tmp = tempdir();
    let socket = tmp.path().join("nothing.sock");
    let host = format!("unix://{}", s(&socket));
    let out = with_host(
        &host,
        &[
            "convert",
            "docker-daemon:busybox:1",
            s(&tmp.path().join("o")),
        ],
    );
    let line = one_error_line(&out);
    assert!(
        line.contains(&host) && line.contains("DOCKER_HOST"),
        "{line}"
    );
    assert!(line.contains("no Docker daemon answers"), "{line}");
    // A socket nobody listens on any more: refused, the same advice.
    drop(UnixListener::bind(&socket).unwrap());
    let out = with_host(
        &host,
        &[
            "convert",
            "docker-daemon:busybox:1",
            s(&tmp.path().join("o")),
        ],
    );
    assert!(one_error_line(&out).contains("no Docker daemon answers"));
}

/// A socket the user may not connect to: the test runs dockhand as `nobody` when it
/// is root (root passes any permission check), else against a socket of mode 000.
#[test]
fn a_socket_without_permission_says_so_and_names_it() {
    let tmp = tempdir();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let socket = tmp.path().join("engine.sock");
    let _listener = UnixListener::bind(&socket).unwrap();
    let host = format!("unix://{}", s(&socket));
    let out_dir = tmp.path().join("o");
    let args = ["convert", "docker-daemon:busybox:1", s(&out_dir)];
    let root = String::from_utf8(tool("id", &["-u"])).unwrap().trim() == "0";
    let out = if root {
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600)).unwrap();
        if !have_tool(&test_name(), "setpriv") {
            return;
        }
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_dockhand"))
            .args(args)
            .env("DOCKER_HOST", &host)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    } else {
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o000)).unwrap();
        with_host(&host, &args)
    };
    let line = one_error_line(&out);
    assert!(
        line.contains("permission denied") && line.contains(&host),
        "{line}"
    );
}

/// A fake Engine on a Unix socket: answers `/_ping`, and gives the one other request
/// (its line, a reader at its body, and the connection to answer on) to `serve`,
/// which returns what the test wants to look at afterwards.
struct FakeEngine<T> {
    _dir: tempfile::TempDir,
    host: String,
    thread: Option<std::thread::JoinHandle<(Vec<String>, T)>>,
}

impl<T: Default + Send + 'static> FakeEngine<T> {
    fn start(
        serve: impl Fn(&str, &mut BufReader<UnixStream>, &mut UnixStream) -> T + Send + 'static,
    ) -> FakeEngine<T> {
        let dir = tempdir();
        let socket = dir.path().join("engine.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let thread = std::thread::spawn(move || {
            let mut seen = Vec::new();
            let mut served = T::default();
            // The ping, then one request.
            for _ in 0..2 {
                let (mut conn, _) = listener.accept().unwrap();
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                loop {
                    let mut header = String::new();
                    reader.read_line(&mut header).unwrap();
                    if header.trim().is_empty() {
                        break;
                    }
                }
                if line.starts_with("GET /_ping ") {
                    let _ = conn.write_all(
                        b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Length: 2\r\n\r\nOK",
                    );
                } else {
                    served = serve(&line, &mut reader, &mut conn);
                }
                seen.push(line.trim_end().to_string());
            }
            (seen, served)
        });
        FakeEngine {
            host: format!("unix://{}", s(&socket)),
            _dir: dir,
            thread: Some(thread),
        }
    }

    /// The request lines seen, in order, and what `serve` returned.
    fn finish(mut self) -> (Vec<String>, T) {
        self.thread.take().unwrap().join().unwrap()
    }
}

#[test]
fn an_error_inside_a_200_load_answer_is_a_failure() {
    // Docker answers so when, say, its disk fills up while it applies the layers.
    let engine = FakeEngine::start(|_, reader, conn| {
        // The whole chunked body, up to its terminating chunk, before the answer.
        let mut body = Vec::new();
        let mut byte = [0u8; 1];
        while !body.ends_with(b"\r\n0\r\n\r\n") && reader.read(&mut byte).unwrap_or(0) == 1 {
            body.push(byte[0]);
        }
        let _ = conn.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n6a\r\n{\"errorDetail\":{\"message\":\"open /var/lib/docker/tmp/x: no space left on device\"},\"error\":\"no space left\"}\n\r\n0\r\n\r\n",
        );
        body
    });
    let out = with_host(
        &engine.host,
        &[
            "convert",
            fixture("docker-save-basic").input(),
            "docker-daemon:dockhand-fake/app:1",
        ],
    );
    let line = one_error_line(&out);
    assert!(
        line.contains("failed to load dockhand-fake/app:1")
            && line.contains("no space left on device"),
        "{line}"
    );
    let (requests, body) = engine.finish();
    let request = &requests[1];
    assert!(request.starts_with("POST /v1.41/images/load"), "{request}");
    assert!(body.ends_with(b"\r\n0\r\n\r\n"), "the body was ended");
}

#[test]
fn a_daemon_that_refuses_a_save_is_named_with_its_message() {
    let engine = FakeEngine::start(|_, _, conn| {
        let _ = conn.write_all(b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: 41\r\n\r\n{\"message\":\"storage is \\u001b[31mbroken\"}");
    });
    let tmp = tempdir();
    let out = with_host(
        &engine.host,
        &[
            "convert",
            "docker-daemon:busybox:1",
            s(&tmp.path().join("o")),
        ],
    );
    let line = one_error_line(&out);
    assert!(
        line.contains("HTTP 500") && line.contains("busybox:1"),
        "{line}"
    );
    assert!(
        !line.contains('\x1b'),
        "the daemon's text is escaped: {line}"
    );
    let (requests, ()) = engine.finish();
    assert_eq!(requests[1], "GET /v1.41/images/busybox:1/get HTTP/1.1");
}

/// A fake daemon whose save of `asked` answers with the archive `fixture` holds.
fn saving(fixture: &str, asked: &str, expected: &str) -> String {
    let archive = std::fs::read(crate::common::fixture(fixture).input()).unwrap();
    let engine = FakeEngine::start(move |_, _, conn| {
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/x-tar\r\nContent-Length: {}\r\n\r\n",
            archive.len()
        );
        let _ = conn.write_all(head.as_bytes());
        let _ = conn.write_all(&archive);
    });
    let tmp = tempdir();
    let out = with_host(
        &engine.host,
        &[
            "convert",
            &format!("docker-daemon:{asked}"),
            s(&tmp.path().join("o")),
        ],
    );
    let line = one_error_line(&out);
    assert!(line.contains(expected), "{line}");
    assert!(!tmp.path().join("o").exists());
    line
}

#[test]
fn a_save_must_hold_the_one_image_asked_for() {
    // Three images for one name, and another image than the ID asked for.
    saving(
        "docker-save-multi",
        "app:1",
        "its save of one image holds 3 images",
    );
    let other = format!("sha256:{}", "0".repeat(64));
    saving("docker-save-basic", &other, "when asked for sha256:0000");
}

// ------------------------------------------------------------------ podman

/// podman's Docker-compatible service on a socket in `dir`, with its storage there
/// too; killed when dropped.
struct Podman {
    child: Child,
    root: PathBuf,
    runroot: PathBuf,
    host: String,
}

impl Podman {
    fn start(dir: &Path) -> Podman {
        let root = dir.join("root");
        let runroot = dir.join("runroot");
        let socket = dir.join("podman.sock");
        let child = Command::new("podman")
            .args(Podman::storage_args(&root, &runroot))
            .args(["system", "service", "--time=0"])
            .arg(format!("unix://{}", s(&socket)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting podman system service");
        let podman = Podman {
            child,
            root,
            runroot,
            host: format!("unix://{}", s(&socket)),
        };
        // Ready when the socket answers a ping.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(mut conn) = std::os::unix::net::UnixStream::connect(&socket) {
                let _ =
                    conn.write_all(b"GET /_ping HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n");
                let mut answer = String::new();
                let _ = conn.read_to_string(&mut answer);
                if answer.starts_with("HTTP/1.1 200") {
                    return podman;
                }
            }
            assert!(Instant::now() < deadline, "podman's service did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn storage_args(root: &Path, runroot: &Path) -> Vec<String> {
        vec![
            "--root".into(),
            s(root).into(),
            "--runroot".into(),
            s(runroot).into(),
            "--storage-driver".into(),
            "vfs".into(),
        ]
    }

    /// `podman image inspect` of `reference` in this storage: its ID and names.
    fn image(&self, reference: &str) -> (String, Vec<String>) {
        let mut cmd = Command::new("podman");
        cmd.args(Podman::storage_args(&self.root, &self.runroot))
            .args(["image", "inspect", reference]);
        let doc: serde_json::Value = serde_json::from_slice(&run_cmd(cmd)).unwrap();
        let id = doc[0]["Id"].as_str().unwrap().to_string();
        let names = json_strings(&doc[0]["RepoTags"]);
        (id, names)
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn json_strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(|x| x.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

#[test]
fn docker_to_oci_to_podman_keeps_the_id_and_names() {
    if !have_docker(&test_name()) || !have_tool(&test_name(), "podman") {
        return;
    }
    let tmp = tempdir();
    let podman = Podman::start(&tmp.path().join("podman"));
    let name = format!("{}:2.0", unique("chain"));
    let _cleanup = DockerImages(vec![name.clone()]);
    let id = docker_image_of_its_own(&name);

    let layout = tmp.path().join("layout");
    daemon_to_layout(&name, &layout);
    let out = with_host(
        &podman.host,
        &[
            "convert",
            "-q",
            &format!("oci:{}", s(&layout)),
            &format!("docker-daemon:{name}"),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (podman_id, names) = podman.image(&format!("docker.io/{name}"));
    assert_eq!(format!("sha256:{podman_id}"), id);
    assert_eq!(names, [format!("docker.io/{name}")]);

    // And podman as a source: its save stream reads back as the same image.
    let again = tmp.path().join("again");
    let out = with_host(
        &podman.host,
        &["convert", "-q", &format!("docker-daemon:{name}"), s(&again)],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = inspect(s(&again));
    assert_eq!(config_digests(&doc), [id]);
    assert_eq!(tags_of(&images(&doc)[0]), [format!("docker.io/{name}")]);

    // An image podman lacks: its 404, one line.
    let out = with_host(
        &podman.host,
        &[
            "convert",
            "docker-daemon:not/there:1",
            s(&tmp.path().join("none")),
        ],
    );
    let line = one_error_line(&out);
    assert!(line.contains("has no image not/there:1"), "{line}");
}

/// A sink dropped before its commit (an error or Ctrl-C midway) has sent the whole
/// archive but not its end: docker must load nothing. The same writes committed load
/// the image, so the first half cannot pass by accident; and docker handles the first
/// request (whose connection is closed at once) before the second one's load is done.
#[test]
fn docker_loads_nothing_from_a_sink_that_was_not_committed() {
    use dockhand::{create_sink, open_source, Format, Location, NoProgress, ReadOptions};
    if !have_docker(&test_name()) {
        return;
    }
    let own = format!("{}:own", unique("abort"));
    let dropped = format!("{}:dropped", unique("abort"));
    let committed = format!("{}:committed", unique("abort"));
    let _cleanup = DockerImages(vec![own.clone(), dropped.clone(), committed.clone()]);
    let id = docker_image_of_its_own(&own);
    let location = Location::parse(&format!("docker-daemon:{own}")).unwrap();
    let source = open_source(&location, &ReadOptions::default()).unwrap();
    let sink_for = |name: &str| {
        let destination = format!("docker-daemon:{name}");
        create_sink(&destination, Format::DOCKER_DAEMON, &Default::default()).unwrap()
    };
    let mut sink = sink_for(&dropped);
    sink.put_images(&source.images, &NoProgress).unwrap();
    drop(sink);
    let mut sink = sink_for(&committed);
    sink.put_images(&source.images, &NoProgress).unwrap();
    sink.commit().unwrap();
    assert_eq!(docker_id(&committed), id);
    let mut tags = docker_tags(&committed);
    tags.sort();
    assert_eq!(tags, [committed.clone(), own.clone()]);
    let inspect = Command::new("docker")
        .args(["image", "inspect", &dropped])
        .output()
        .unwrap();
    assert!(!inspect.status.success(), "docker loaded {dropped}");
}
