//! Root filesystems for the image-making tests: a directory holding `/bin/echo` and
//! the libraries it needs, copied from this machine, so that `docker run` of an image
//! made of it runs a real binary.

use std::path::{Path, PathBuf};
use std::process::Command;

/// `dir/rootfs`: `bin/echo` and every library `ldd /bin/echo` names, at the paths
/// it names them (real files, links resolved), plus `etc/motd` and a hard link to it.
pub fn echo_rootfs(dir: &Path) -> PathBuf {
    let root = dir.join("rootfs");
    copy_in(&root, Path::new("/bin/echo"));
    let ldd = Command::new("ldd").arg("/bin/echo").output().expect("ldd");
    assert!(ldd.status.success(), "ldd /bin/echo");
    for line in String::from_utf8_lossy(&ldd.stdout).lines() {
        // `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)` or `/lib64/ld-linux... (0x...)`.
        let path = line
            .split("=>")
            .last()
            .and_then(|rest| rest.split_whitespace().next())
            .filter(|p| p.starts_with('/'));
        if let Some(path) = path {
            copy_in(&root, Path::new(path));
        }
    }
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/motd"), "made by dockhand's tests\n").unwrap();
    std::fs::hard_link(root.join("etc/motd"), root.join("etc/motd.link")).unwrap();
    std::os::unix::fs::symlink("/etc/motd", root.join("etc/motd.abs")).unwrap();
    root
}

/// Copy the file `path` (its links followed) to the same path under `root`.
fn copy_in(root: &Path, path: &Path) {
    let to = root.join(path.strip_prefix("/").unwrap());
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(path, &to).unwrap_or_else(|e| panic!("copying {}: {e}", path.display()));
}

/// `tar -C dir -cf out .` with GNU tar (which pads the archive to 10 KiB records).
pub fn gnu_tar(dir: &Path, out: &Path) {
    let status = Command::new("tar")
        .arg("-C")
        .arg(dir)
        .arg("-cf")
        .arg(out)
        .arg(".")
        .status()
        .expect("tar");
    assert!(status.success(), "tar -cf {}", out.display());
}
