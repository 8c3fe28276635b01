//! Helpers shared by the integration tests: running the built binary, finding
//! fixtures, and gating on the real tools (skopeo, umoci, oci-image-tool, docker).

pub mod build;
pub mod cosign;
pub mod hostile;
pub mod images;
pub mod interop;
pub mod layer_tar;
pub mod registry;
pub mod rootfs;
pub mod table;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A path as the `&str` the command line takes (test paths are UTF-8).
pub fn s(p: &Path) -> &str {
    p.to_str().expect("test paths are UTF-8")
}

/// The dockhand binary built for this test run.
pub fn dockhand() -> Command {
    Command::new(env!("CARGO_BIN_EXE_dockhand"))
}

/// Run dockhand with `args`; returns the output.
pub fn run(args: &[&str]) -> Output {
    dockhand()
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("running dockhand")
}

/// Run dockhand and require success, returning stdout.
pub fn ok(args: &[&str]) -> Vec<u8> {
    let out = run(args);
    assert!(
        out.status.success(),
        "dockhand {args:?} failed ({:?}): {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Run dockhand and require exit code 1 with an `error:` line; returns stderr.
pub fn fails(args: &[&str]) -> String {
    let out = run(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(1),
        "dockhand {args:?} should exit 1, stderr: {stderr}"
    );
    assert!(
        stderr.starts_with("error: "),
        "no error line for {args:?}: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "panic for {args:?}: {stderr}");
    stderr
}

/// The fixtures directory of the repository.
pub fn fixtures_dir() -> PathBuf {
    // The fixtures sit at the top of the repository, beside the library they test.
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

/// A fixture: its name, its artefact (`input*`) and its expected.json.
pub struct Fixture {
    pub name: String,
    pub input: PathBuf,
    pub expected: serde_json::Value,
}

impl Fixture {
    pub fn input(&self) -> &str {
        self.input.to_str().expect("fixture paths are UTF-8")
    }
    pub fn is_broken(&self) -> bool {
        self.expected.get("error").is_some()
    }
    /// Config digests the fixture's expected.json lists.
    pub fn config_digests(&self) -> Vec<String> {
        config_digests(&self.expected)
    }
}

/// Every fixture, sorted by name.
pub fn fixtures() -> Vec<Fixture> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(fixtures_dir()).expect("fixtures/ exists") {
        let dir = entry.unwrap().path();
        let expected = dir.join("expected.json");
        if !expected.exists() {
            continue;
        }
        let input = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("input")
            })
            .unwrap_or_else(|| panic!("{} has no input artefact", dir.display()));
        out.push(Fixture {
            name: dir.file_name().unwrap().to_string_lossy().into_owned(),
            input,
            expected: serde_json::from_slice(&std::fs::read(&expected).unwrap()).unwrap(),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(out.len() >= 10, "fixtures missing");
    out
}

/// A valid fixture by name.
pub fn fixture(name: &str) -> Fixture {
    fixtures()
        .into_iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("no fixture {name}"))
}

/// `inspect --json` of a path.
pub fn inspect(path: &str) -> serde_json::Value {
    serde_json::from_slice(&ok(&["inspect", "--json", path])).expect("inspect prints JSON")
}

/// The images of an inspect document.
pub fn images(doc: &serde_json::Value) -> &Vec<serde_json::Value> {
    doc["images"].as_array().expect("images is an array")
}

/// Sorted config digests of an inspect document.
pub fn config_digests(doc: &serde_json::Value) -> Vec<String> {
    digests_of(doc, "config")
}

/// Sorted manifest digests of an inspect document.
pub fn manifest_digests(doc: &serde_json::Value) -> Vec<String> {
    digests_of(doc, "manifest")
}

fn digests_of(doc: &serde_json::Value, what: &str) -> Vec<String> {
    let mut v: Vec<String> = doc["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i[what]["digest"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v.dedup();
    v
}

/// (config digest, diff_ids, tags) of every image, sorted: what must survive any conversion.
pub fn identity(doc: &serde_json::Value) -> Vec<(String, Vec<String>, Vec<String>)> {
    let mut v: Vec<_> = doc["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let diff_ids = i["layers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["diff_id"].as_str().unwrap_or("").to_string())
                .collect();
            let mut tags: Vec<String> = i["tags"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_str().unwrap().to_string())
                .collect();
            tags.sort();
            (
                i["config"]["digest"].as_str().unwrap().to_string(),
                diff_ids,
                tags,
            )
        })
        .collect();
    v.sort();
    v
}

/// A fresh temp dir for one test.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("dockhand-test.")
        .tempdir()
        .unwrap()
}

/// Is a real tool on PATH? When it is not, print a visible SKIPPED line and return
/// false; under DOCKHAND_REQUIRE_INTEROP=1 a missing tool fails the test instead.
pub fn have_tool(test: &str, tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !found {
        skip_or_fail(test, &format!("{tool} is not installed"));
    }
    found
}

/// The docker daemon to use (DOCKER_HOST), when one answers.
pub fn have_docker(test: &str) -> bool {
    if !have_tool(test, "docker") {
        return false;
    }
    let alive = Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !alive {
        skip_or_fail(test, "no docker daemon answers (set DOCKER_HOST)");
    }
    alive
}

/// Held by every test that uses the docker daemon, for as long as it does: all tests
/// run in one process, and one removing an image must never race another loading it.
pub fn docker_lock() -> std::sync::MutexGuard<'static, ()> {
    static DOCKER: std::sync::Mutex<()> = std::sync::Mutex::new(());
    DOCKER.lock().unwrap_or_else(|e| e.into_inner())
}

/// The name of the running test (libtest names its threads after the tests).
pub fn test_name() -> String {
    std::thread::current().name().unwrap_or("test").to_string()
}

/// `rel` inside the corpus DOCKHAND_CORPUS points at; when it is unset, a visible
/// SKIPPED line and `None` (a failure under DOCKHAND_REQUIRE_INTEROP=1).
pub fn corpus_item(rel: &str) -> Option<PathBuf> {
    match std::env::var("DOCKHAND_CORPUS") {
        Ok(root) => Some(Path::new(&root).join(rel)),
        Err(_) => {
            skip_or_fail(&test_name(), "DOCKHAND_CORPUS is not set");
            None
        }
    }
}

/// Print a visible SKIPPED line, or fail under DOCKHAND_REQUIRE_INTEROP=1 (as CI runs).
pub fn skip_or_fail(test: &str, why: &str) {
    if std::env::var("DOCKHAND_REQUIRE_INTEROP").as_deref() == Ok("1") {
        panic!("{test}: {why}, and DOCKHAND_REQUIRE_INTEROP=1");
    }
    // Written to the real stderr, past the test harness's capture, so it always shows.
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "SKIPPED {test}: {why}");
}

/// Run an external command and require success; returns stdout.
pub fn tool(cmd: &str, args: &[&str]) -> Vec<u8> {
    let mut command = Command::new(cmd);
    command.args(args);
    run_cmd(command)
}

/// Run a prepared command and require success; returns stdout.
pub fn run_cmd(mut cmd: Command) -> Vec<u8> {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// skopeo with its scratch space (it unpacks archives there) inside the test's temp dir.
pub fn skopeo(tmp: &Path, args: &[&str]) -> Vec<u8> {
    let scratch = tmp.join("skopeo-tmp");
    std::fs::create_dir_all(&scratch).unwrap();
    let mut cmd = Command::new("skopeo");
    cmd.env("TMPDIR", &scratch).args(args);
    run_cmd(cmd)
}

/// sha256 of bytes as `sha256:<hex>`.
pub fn sha256(bytes: &[u8]) -> String {
    dockhand::Digest::of(bytes).to_string()
}

/// Every file under `dir` (relative path -> content hash or link target), for
/// comparing two directory outputs byte for byte.
pub fn tree_snapshot(dir: &Path) -> Vec<(String, String)> {
    tree_snapshot_with_modes(dir)
        .into_iter()
        .map(|(rel, what, _)| (rel, what))
        .collect()
}

/// Every path under `dir` with what it is (a file's content hash, `-> TARGET` for a
/// link, `dir` or `fifo`) and its mode bits, to prove nothing changed.
pub fn tree_snapshot_with_modes(dir: &Path) -> Vec<(String, String, u32)> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let e = e.unwrap();
        let meta = e.path().symlink_metadata().unwrap();
        let rel = e
            .path()
            .strip_prefix(dir)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let what = if meta.file_type().is_symlink() {
            format!("-> {}", std::fs::read_link(e.path()).unwrap().display())
        } else if meta.is_file() {
            sha256(&std::fs::read(e.path()).unwrap())
        } else if meta.file_type().is_fifo() {
            "fifo".into()
        } else {
            "dir".into()
        };
        out.push((rel, what, meta.mode()));
    }
    out
}

/// Peak RSS allowed for any run on a hostile or broken input.
pub const RSS_LIMIT_KB: u64 = 100 * 1024;

/// Run dockhand in `cwd` under the blow-up guards of [`run_guarded`], to learn its
/// peak RSS.
pub fn run_measured(args: &[&str], cwd: &Path) -> (Output, Option<u64>) {
    run_guarded(args, |cmd| {
        cmd.current_dir(cwd);
    })
}

/// The tags of an image of an inspect document, as listed.
pub fn tags_of(image: &serde_json::Value) -> Vec<String> {
    image["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect()
}

/// CPU seconds a guarded run may use before the kernel stops it with SIGXCPU.
pub const CPU_GUARD_SECS: u64 = 20;

/// Wall time after which a guarded run is killed.
pub const WALL_GUARD: std::time::Duration = std::time::Duration::from_secs(30);

/// Run dockhand with `args` under blow-up guards, after `configure` set up the command
/// (directory, stdin, environment); returns its output and its peak RSS in KiB (when
/// /usr/bin/time is there). The guards are not speed targets: a correct run takes
/// milliseconds to a second, and they only turn a regression that repeats work per
/// reference or reads forever into a failure instead of a hung test.
pub fn run_guarded(args: &[&str], configure: impl FnOnce(&mut Command)) -> (Output, Option<u64>) {
    use std::os::unix::process::CommandExt;
    let rss_file = tempfile::NamedTempFile::new().unwrap();
    let time = Path::new("/usr/bin/time");
    let mut cmd = if time.exists() {
        let mut c = Command::new(time);
        c.arg("-f")
            .arg("%M")
            .arg("-o")
            .arg(rss_file.path())
            .arg(env!("CARGO_BIN_EXE_dockhand"));
        c
    } else {
        dockhand()
    };
    // Output goes to files, so a run that writes a lot cannot block on a full pipe.
    let out_dir = tempdir();
    let (out_path, err_path) = (out_dir.path().join("out"), out_dir.path().join("err"));
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap());
    configure(&mut cmd);
    // SAFETY: setrlimit is async-signal-safe; the closure allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: CPU_GUARD_SECS,
                rlim_max: CPU_GUARD_SECS,
            };
            if libc::setrlimit(libc::RLIMIT_CPU, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("running dockhand");
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > WALL_GUARD {
            let _ = child.kill();
            panic!("dockhand {args:?} still running after {WALL_GUARD:?}: a blow-up");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    let output = Output {
        status,
        stdout: std::fs::read(&out_path).unwrap(),
        stderr: std::fs::read(&err_path).unwrap(),
    };
    let rss = std::fs::read_to_string(rss_file.path())
        .ok()
        .and_then(|t| t.lines().last().and_then(|l| l.trim().parse().ok()));
    (output, rss)
}

/// An archive of the public corpus, as its SOURCES.md lists it.
pub struct CorpusItem {
    /// Where it is.
    pub path: std::path::PathBuf,
    /// Its path relative to the corpus root.
    pub name: String,
    /// Listed as valid (else as broken).
    pub valid: bool,
}

/// The valid and broken items SOURCES.md of the corpus at `root` lists.
pub fn corpus_items(root: &Path) -> Vec<CorpusItem> {
    let sources =
        std::fs::read_to_string(root.join("SOURCES.md")).expect("SOURCES.md in DOCKHAND_CORPUS");
    let mut items = Vec::new();
    for line in sources.lines() {
        let cells: Vec<&str> = line
            .trim()
            .trim_matches('|')
            .split('|')
            .map(str::trim)
            .collect();
        if cells.len() < 9 || !cells[0].chars().all(|c| c.is_ascii_digit()) || cells[0].is_empty() {
            continue;
        }
        let status = cells[cells.len() - 1].to_lowercase();
        let valid = status.starts_with("valid");
        if !valid && !status.starts_with("broken") {
            continue;
        }
        items.push(CorpusItem {
            path: root.join(cells[1]),
            name: cells[1].to_string(),
            valid,
        });
    }
    items
}

/// `dockhand ARGS` started with its stdin, stdout and stderr all pipes.
pub fn spawn_piped(args: &[&str]) -> std::process::Child {
    dockhand()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// `dockhand ARGS` with `input` fed to its stdin through a pipe (from a thread, so a
/// big input cannot deadlock against stdout); its output.
pub fn pipe(args: &[&str], input: &[u8]) -> Output {
    let mut child = spawn_piped(args);
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = std::io::Write::write_all(&mut stdin, &data);
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    out
}
