//! Images the tests make, read back and clean up: dockhand run at a fixed
//! SOURCE_DATE_EPOCH (the edit commands), the single image of an output and its
//! config, names of docker images a test owns and their removal, and podman on a
//! private store.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use super::{dockhand, images, inspect, ok, run_cmd, s, sha256, tempdir};

/// A fixed time, as SOURCE_DATE_EPOCH: 2023-11-14T22:13:20Z.
pub const EPOCH: &str = "1700000000";

/// dockhand `args` with SOURCE_DATE_EPOCH set to `epoch` (unset with None), required
/// to succeed; its stdout.
pub fn ok_at(epoch: Option<&str>, args: &[&str]) -> Vec<u8> {
    let mut cmd = dockhand();
    cmd.args(args).stdin(Stdio::null());
    match epoch {
        Some(epoch) => cmd.env("SOURCE_DATE_EPOCH", epoch),
        None => cmd.env_remove("SOURCE_DATE_EPOCH"),
    };
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "dockhand {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// dockhand `args` at [`EPOCH`], required to succeed; its stdout.
pub fn ok_at_epoch(args: &[&str]) -> Vec<u8> {
    ok_at(Some(EPOCH), args)
}

/// The single image of `src`, as `inspect --json` shows it.
pub fn only_image(src: &str) -> Value {
    let doc = inspect(src);
    let images = images(&doc);
    assert_eq!(images.len(), 1, "{src}: {doc}");
    images[0].clone()
}

/// The config of the single image of `src`: its digest (the image ID) and its JSON,
/// read from a `dir:` copy and checked against the digest.
pub fn read_config(src: &str) -> (String, Value) {
    let tmp = tempdir();
    let dir = tmp.path().join("d");
    ok(&["convert", "-q", src, &format!("dir:{}", s(&dir))]);
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let digest = manifest["config"]["digest"].as_str().unwrap().to_string();
    let bytes = std::fs::read(dir.join(&digest[7..])).unwrap();
    assert_eq!(sha256(&bytes), digest);
    (digest, serde_json::from_slice(&bytes).unwrap())
}

/// A docker name (tag `1`) no other edit test or run uses.
pub fn unique_edit_name(label: &str) -> String {
    format!("dockhand-edit-test/{label}-{}:1", std::process::id())
}

/// `docker rmi -f` of these references (names or IDs) when dropped (also when the
/// test fails).
pub struct DockerImages(pub Vec<String>);

impl Drop for DockerImages {
    fn drop(&mut self) {
        for r in &self.0 {
            let _ = Command::new("docker")
                .args(["rmi", "-f", r])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// `docker rm -f` of these containers when dropped (also when the test fails); drop
/// it before the [`DockerImages`] of their images.
pub struct DockerContainers(pub Vec<String>);

impl Drop for DockerContainers {
    fn drop(&mut self) {
        for c in &self.0 {
            let _ = Command::new("docker")
                .args(["rm", "-f", c])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// podman on a private store under `root` (vfs, no system configuration, nothing
/// global read or written).
pub struct Podman {
    root: PathBuf,
}

impl Podman {
    /// A store under `root`, with a registries.conf of its own (no search registries,
    /// so a short name never reaches the network).
    pub fn new(root: &Path) -> Podman {
        std::fs::create_dir_all(root.join("tmp")).unwrap();
        std::fs::write(
            root.join("registries.conf"),
            "unqualified-search-registries = []\n",
        )
        .unwrap();
        Podman {
            root: root.to_path_buf(),
        }
    }

    /// `podman args` on this store, required to succeed; its stdout.
    pub fn run(&self, args: &[&str]) -> Vec<u8> {
        let mut cmd = Command::new("podman");
        cmd.env("TMPDIR", self.root.join("tmp"))
            .env(
                "CONTAINERS_REGISTRIES_CONF",
                self.root.join("registries.conf"),
            )
            .arg("--root")
            .arg(self.root.join("root"))
            .arg("--runroot")
            .arg(self.root.join("r"))
            .args(["--storage-driver", "vfs", "--events-backend", "file"])
            .arg("--tmpdir")
            .arg(self.root.join("libpod"))
            .args(["--cgroup-manager", "cgroupfs"])
            .args(args)
            .stdin(Stdio::null());
        run_cmd(cmd)
    }

    /// The image ID podman gives a name, `sha256:`-prefixed.
    pub fn id_of(&self, name: &str) -> String {
        let id = self.run(&["image", "inspect", "--format", "{{.Id}}", name]);
        format!("sha256:{}", String::from_utf8(id).unwrap().trim())
    }
}
