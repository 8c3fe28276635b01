//! dockhand with podman and buildah: every format podman writes (docker-archive, `-m`
//! multi-image, oci-archive, oci-dir, docker-dir i.e. `dir:`, gzip and zstd layers) read
//! by dockhand with the image IDs and names podman reports, and every format dockhand
//! writes taken by `podman load`, `podman pull TRANSPORT:...` and `buildah pull` with the
//! source's image IDs and names.
//!
//! Each tool runs on private storage in the test's temp dir (`--root`, `--runroot`,
//! `--tmpdir`, the vfs driver): nothing global is read or written. Images are built with
//! buildah from scratch, so no registry is needed.

use crate::common::interop::*;
use crate::common::*;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

/// podman and buildah over one private image store, run in the test's temp dir: paths
/// given to `podman pull oci:PATH` are relative to it, because podman names such an
/// image after its path and refuses a path with capitals (temp dirs have them).
struct Store {
    root: PathBuf,
    work: PathBuf,
}

impl Store {
    /// A store in `work/label` (short: podman refuses a runroot over 50 characters).
    fn new(work: &Path, label: &str) -> Store {
        let root = work.join(label);
        fs::create_dir_all(root.join("tmp")).unwrap();
        // A registries.conf of our own: no search registries, so a short name never
        // reaches the network, and the machine's configuration is not consulted.
        fs::write(
            root.join("registries.conf"),
            "unqualified-search-registries = []\n",
        )
        .unwrap();
        Store {
            root,
            work: work.to_path_buf(),
        }
    }

    fn command(&self, tool: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(tool);
        cmd.env("TMPDIR", self.root.join("tmp"))
            .env(
                "CONTAINERS_REGISTRIES_CONF",
                self.root.join("registries.conf"),
            )
            .env("REGISTRIES_CONFIG_PATH", self.root.join("registries.conf"))
            .arg("--root")
            .arg(self.root.join("root"))
            .arg("--runroot")
            .arg(self.root.join("r"))
            .args(["--storage-driver", "vfs"]);
        if tool == "podman" {
            cmd.arg("--tmpdir").arg(self.root.join("libpod")).args([
                "--events-backend",
                "file",
                "--cgroup-manager",
                "cgroupfs",
            ]);
        }
        cmd.args(args).current_dir(&self.work).stdin(Stdio::null());
        cmd
    }

    fn podman(&self, args: &[&str]) -> Vec<u8> {
        run_cmd(self.command("podman", args))
    }

    fn buildah(&self, args: &[&str]) -> Vec<u8> {
        run_cmd(self.command("buildah", args))
    }

    /// Every image of the store: full image ID (`sha256:...`) -> its names, sorted.
    fn images(&self) -> BTreeMap<String, Vec<String>> {
        let ids = String::from_utf8(self.podman(&["images", "-q", "--no-trunc"])).unwrap();
        let mut out = BTreeMap::new();
        for id in ids.lines().filter(|l| !l.is_empty()) {
            let doc: Value =
                serde_json::from_slice(&self.podman(&["image", "inspect", id])).unwrap();
            let mut names = json_strings(&doc[0]["RepoTags"]);
            names.sort();
            let id = id.strip_prefix("sha256:").unwrap_or(id);
            out.insert(format!("sha256:{id}"), names);
        }
        out
    }

    /// The image ID podman gives a name.
    fn id_of(&self, name: &str) -> String {
        let id = String::from_utf8(self.podman(&["image", "inspect", "--format", "{{.Id}}", name]))
            .unwrap();
        format!("sha256:{}", id.trim())
    }
}

/// The images podman built, in a store shared by the tests that only read from it.
struct Built {
    store: Store,
    _dir: tempfile::TempDir,
    /// `docker.io/library/base:extra` and `quay.io/test/b:2`: one layer.
    base: String,
    /// `localhost/app:1`: base's layer and one of its own.
    app: String,
}

const BASE: &str = "docker.io/library/base:extra";
const BASE_ALIAS: &str = "quay.io/test/b:2";
const APP: &str = "localhost/app:1";

fn have_podman(test: &str) -> bool {
    have_tool(test, "podman") && have_tool(test, "buildah")
}

/// Build the test images once per run (buildah from scratch, no registry).
fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = tempdir();
        let store = Store::new(dir.path(), "built");
        let files = dir.path().join("files");
        fs::create_dir_all(&files).unwrap();
        fs::write(files.join("base.txt"), "the base layer\n".repeat(200)).unwrap();
        fs::write(files.join("app.txt"), "the app layer\n".repeat(300)).unwrap();
        let from = |image: &str| {
            String::from_utf8(store.buildah(&["from", "--pull=never", "-q", image]))
                .unwrap()
                .trim()
                .to_string()
        };
        let c = from("scratch");
        store.buildah(&["copy", "-q", &c, s(&files.join("base.txt")), "/base.txt"]);
        store.buildah(&[
            "config",
            "--cmd",
            "/base.txt",
            "--label",
            "made-by=buildah",
            &c,
        ]);
        store.buildah(&["commit", "-q", "--rm", &c, BASE]);
        store.podman(&["tag", BASE, BASE_ALIAS]);
        let c = from(BASE);
        store.buildah(&["copy", "-q", &c, s(&files.join("app.txt")), "/app.txt"]);
        store.buildah(&["commit", "-q", "--rm", &c, APP]);
        let base = store.id_of(BASE);
        let app = store.id_of(APP);
        assert_ne!(base, app);
        Built {
            store,
            _dir: dir,
            base,
            app,
        }
    })
}

/// Image ID -> its names, sorted.
type Names = BTreeMap<String, Vec<String>>;

/// `dockhand convert SRC --image NAME EXTRA... DST -q`.
fn convert_image(src: &Path, name: &str, dst: &str, extra: &[&str]) {
    let mut args = vec!["convert", s(src), "--image", name];
    args.extend_from_slice(extra);
    args.extend([dst, "-q"]);
    ok(&args);
}

fn names(list: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// One `podman save`: what it is, the output's name, the options, the images saved,
/// and the images with the names podman wrote for them.
struct PodmanSave(
    &'static str,
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
    Names,
);

#[test]
fn dockhand_reads_every_format_podman_writes() {
    if !have_podman("dockhand_reads_every_format_podman_writes") {
        return;
    }
    let b = built();
    let tmp = tempdir();
    let out = |name: &str| tmp.path().join(name);
    let p = |path: &Path| s(path).to_string();

    let base = || (b.base.clone(), names(&[BASE]));
    let app = || (b.app.clone(), names(&[APP]));
    let unnamed = |id: &String| BTreeMap::from([(id.clone(), vec![])]);
    let saves = [
        PodmanSave(
            "docker-archive",
            "one.tar",
            &[],
            &[BASE],
            BTreeMap::from([base()]),
        ),
        PodmanSave(
            "docker-archive -m",
            "multi.tar",
            &["-m"],
            &[BASE, BASE_ALIAS, APP],
            BTreeMap::from([(b.base.clone(), names(&[BASE, BASE_ALIAS])), app()]),
        ),
        PodmanSave(
            "oci-archive",
            "oci.tar",
            &["--format", "oci-archive"],
            &[BASE_ALIAS],
            BTreeMap::from([(b.base.clone(), names(&[BASE_ALIAS]))]),
        ),
        PodmanSave(
            "oci-dir",
            "oci-dir",
            &["--format", "oci-dir"],
            &[APP],
            BTreeMap::from([app()]),
        ),
        PodmanSave(
            "docker-dir (dir:)",
            "dir",
            &["--format", "docker-dir"],
            &[APP],
            unnamed(&b.app),
        ),
        PodmanSave(
            "docker-dir --compress",
            "dir-gz",
            &["--compress", "--format", "docker-dir"],
            &[APP],
            unnamed(&b.app),
        ),
    ];
    let mut cases: Vec<(String, PathBuf, Names)> = Vec::new();
    for PodmanSave(what, name, options, saved, want) in saves {
        let path = out(name);
        let mut args = vec!["save", "-q"];
        args.extend_from_slice(options);
        let shown = p(&path);
        args.extend(["-o", &shown]);
        args.extend_from_slice(saved);
        b.store.podman(&args);
        cases.push((what.to_string(), path, want));
    }
    for format in ["gzip", "zstd"] {
        let layout = out(&format!("oci-{format}"));
        let location = format!("oci:{}:app", p(&layout));
        b.store
            .podman(&["push", "-q", "--compression-format", format, APP, &location]);
        cases.push((format!("oci {format}"), layout, unnamed(&b.app)));
    }

    for (what, path, want) in &cases {
        assert_eq!(
            &tags_by_config(s(path)),
            want,
            "{what}: image IDs and names"
        );
        ok(&["verify", s(path)]);
    }
    // The compressed layers are what they say.
    for (format, want) in [("gzip", "gzip"), ("zstd", "zstd")] {
        let doc = inspect(s(&out(&format!("oci-{format}"))));
        let layers = images(&doc)[0]["layers"].as_array().unwrap().clone();
        assert!(!layers.is_empty());
        for layer in layers {
            assert_eq!(layer["compression"], want, "oci-{format}: {layer}");
        }
    }
}

/// A fresh store, the images it holds after `load`.
fn loaded(tmp: &Path, load: impl FnOnce(&Store)) -> BTreeMap<String, Vec<String>> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let store = Store::new(tmp, &format!("s{}", NEXT.fetch_add(1, Ordering::Relaxed)));
    load(&store);
    store.images()
}

/// The name of `path` relative to the temp dir `tmp` the stores run in.
fn rel<'a>(path: &'a Path, tmp: &Path) -> &'a str {
    s(path.strip_prefix(tmp).unwrap())
}

#[test]
fn podman_and_buildah_take_every_format_dockhand_writes() {
    if !have_podman("podman_and_buildah_take_every_format_dockhand_writes") {
        return;
    }
    let b = built();
    let tmp = tempdir();
    let src = tmp.path().join("podman-multi.tar");
    b.store
        .podman(&["save", "-q", "-m", "-o", s(&src), BASE, BASE_ALIAS, APP]);
    let everything = BTreeMap::from([
        (b.base.clone(), names(&[BASE, BASE_ALIAS])),
        (b.app.clone(), names(&[APP])),
    ]);

    for writer in [Writer::DockerArchive, Writer::DockerHybrid] {
        let out = write(s(&src), writer, tmp.path(), "all");
        let label = format!("{writer:?}");
        // podman load keeps every name: RepoTags are full references.
        let got = loaded(tmp.path(), |st| {
            st.podman(&["load", "-q", "-i", s(&out)]);
        });
        assert_eq!(got, everything, "{label}: podman load");
        // podman pull of each image by name, the one sharing a layer included.
        for (name, id) in [(BASE, &b.base), (BASE_ALIAS, &b.base), (APP, &b.app)] {
            let got = loaded(tmp.path(), |st| {
                st.podman(&["pull", "-q", &format!("docker-archive:{}:{name}", s(&out))]);
            });
            assert_eq!(
                got.keys().collect::<Vec<_>>(),
                [id],
                "{label}: podman pull {name}"
            );
        }
        // buildah pull of the image that shares its base layer.
        let got = loaded(tmp.path(), |st| {
            st.buildah(&["pull", "-q", &format!("docker-archive:{}:{APP}", s(&out))]);
        });
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            [&b.app],
            "{label}: buildah pull"
        );
    }

    // OCI layouts: every index entry pulls the image it names; buildah too.
    for writer in [Writer::Oci, Writer::OciArchive] {
        let out = write(s(&src), writer, tmp.path(), "all");
        let transport = if writer == Writer::Oci {
            "oci"
        } else {
            "oci-archive"
        };
        let entries = oci_entries(&out, writer.is_tar());
        assert_eq!(entries.len(), 3, "{writer:?}: one entry per name");
        for entry in &entries {
            let reference = entry.ref_name.as_deref().unwrap();
            let location = format!("{transport}:{}:{reference}", rel(&out, tmp.path()));
            let got = loaded(tmp.path(), |st| {
                st.podman(&["pull", "-q", &location]);
            });
            assert_eq!(
                got.keys().collect::<Vec<_>>(),
                [&entry.config],
                "{location}"
            );
            let got = loaded(tmp.path(), |st| {
                st.buildah(&["pull", "-q", &location]);
            });
            assert_eq!(
                got.keys().collect::<Vec<_>>(),
                [&entry.config],
                "buildah {location}"
            );
        }
    }

    // One image under one name: podman load takes the OCI archive and names it so.
    for (name, id) in [(APP, &b.app), (BASE_ALIAS, &b.base)] {
        let out = tmp.path().join(format!("one-{}.tar", name.len()));
        convert_image(&src, name, &format!("oci-archive:{}", s(&out)), &[]);
        let got = loaded(tmp.path(), |st| {
            st.podman(&["load", "-q", "-i", s(&out)]);
        });
        assert_eq!(
            got,
            BTreeMap::from([(id.clone(), names(&[name]))]),
            "podman load {name}"
        );
    }

    // dir: holds one image, without names.
    for (name, id) in [(BASE, &b.base), (APP, &b.app)] {
        let out = tmp.path().join(format!("dir-{}", name.len()));
        convert_image(&src, name, &format!("dir:{}", s(&out)), &[]);
        let got = loaded(tmp.path(), |st| {
            st.podman(&["pull", "-q", &format!("dir:{}", rel(&out, tmp.path()))]);
        });
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            [id],
            "podman pull dir: of {name}"
        );
    }
}

#[test]
fn compressed_layers_dockhand_writes_pull_into_podman_with_the_same_image_id() {
    if !have_podman("compressed_layers_dockhand_writes_pull_into_podman_with_the_same_image_id") {
        return;
    }
    let b = built();
    let tmp = tempdir();
    let src = tmp.path().join("podman-multi.tar");
    b.store
        .podman(&["save", "-q", "-m", "-o", s(&src), BASE, APP]);
    for compression in ["gzip", "zstd"] {
        for transport in ["oci", "oci-archive", "dir"] {
            let out = tmp.path().join(format!("{transport}-{compression}"));
            convert_image(
                &src,
                APP,
                &format!("{transport}:{}", s(&out)),
                &["--layer-compression", compression],
            );
            let location = match transport {
                "dir" => format!("dir:{}", rel(&out, tmp.path())),
                _ => format!("{transport}:{}:1", rel(&out, tmp.path())),
            };
            let got = loaded(tmp.path(), |st| {
                st.podman(&["pull", "-q", &location]);
            });
            assert_eq!(
                got.keys().collect::<Vec<_>>(),
                [&b.app],
                "podman pull {location}"
            );
        }
    }
}

#[test]
fn names_survive_podman_to_dockhand_to_podman_round_trips() {
    if !have_podman("names_survive_podman_to_dockhand_to_podman_round_trips") {
        return;
    }
    let b = built();
    let tmp = tempdir();
    // podman's OCI archive names the image by its full reference; through dockhand's
    // OCI layout that reference still pulls it.
    let podman_oci = tmp.path().join("podman-oci.tar");
    b.store.podman(&[
        "save",
        "-q",
        "--format",
        "oci-archive",
        "-o",
        s(&podman_oci),
        BASE_ALIAS,
    ]);
    let layout = tmp.path().join("layout");
    ok(&[
        "convert",
        s(&podman_oci),
        &format!("oci:{}", s(&layout)),
        "-q",
    ]);
    let got = loaded(tmp.path(), |st| {
        st.podman(&[
            "pull",
            "-q",
            &format!("oci:{}:{BASE_ALIAS}", rel(&layout, tmp.path())),
        ]);
    });
    assert_eq!(got.keys().collect::<Vec<_>>(), [&b.base]);

    // podman save -> dockhand (every tar writer, chained) -> podman load: same names.
    let saved = tmp.path().join("saved.tar");
    b.store.podman(&["save", "-q", "-o", s(&saved), BASE]);
    let as_oci = tmp.path().join("as-oci.tar");
    ok(&[
        "convert",
        s(&saved),
        &format!("oci-archive:{}", s(&as_oci)),
        "-q",
    ]);
    let back = tmp.path().join("back.tar");
    ok(&[
        "convert",
        s(&as_oci),
        &format!("docker-archive:{}", s(&back)),
        "-q",
    ]);
    for (label, path) in [("oci-archive", &as_oci), ("docker-archive", &back)] {
        let got = loaded(tmp.path(), |st| {
            st.podman(&["load", "-q", "-i", s(path)]);
        });
        assert_eq!(
            got,
            BTreeMap::from([(b.base.clone(), names(&[BASE]))]),
            "{label}: not localhost/base:extra"
        );
    }

    // docker save | dockhand convert - - --to oci-archive --image NAME | podman load: one
    // name selected, one index entry, which podman loads under that name.
    let two_names = tmp.path().join("two-names.tar");
    b.store
        .podman(&["save", "-q", "-m", "-o", s(&two_names), BASE, BASE_ALIAS]);
    let mut convert = dockhand()
        .args([
            "convert",
            "-",
            "-",
            "--to",
            "oci-archive",
            "--image",
            BASE_ALIAS,
            "-q",
        ])
        .stdin(fs::File::open(&two_names).unwrap())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let store = Store::new(tmp.path(), "pipe");
    let mut load = store.command("podman", &["load", "-q"]);
    load.stdin(Stdio::from(convert.stdout.take().unwrap()));
    run_cmd(load);
    assert!(
        convert.wait().unwrap().success(),
        "dockhand convert in the pipeline"
    );
    assert_eq!(
        store.images(),
        BTreeMap::from([(b.base.clone(), names(&[BASE_ALIAS]))])
    );
}
