//! Destinations: `--force` replaces only what dockhand could have written, OCI layouts
//! are added to, file outputs never clobber by accident, and outputs get the modes
//! `cp` and skopeo give. Every refusal must leave what was there byte for byte.

use crate::common::*;

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

/// A directory of unrelated files and folders, as a project or home directory holds.
fn unrelated_tree(dir: &Path) {
    std::fs::create_dir_all(dir.join("src/nested")).unwrap();
    std::fs::create_dir_all(dir.join(".git")).unwrap();
    std::fs::write(dir.join("README.md"), b"# my project\n").unwrap();
    std::fs::write(dir.join("src/main.rs"), b"fn main() {}\n").unwrap();
    std::fs::write(dir.join("src/nested/data.bin"), [0u8, 1, 2, 255]).unwrap();
    std::fs::write(dir.join(".git/HEAD"), b"ref: refs/heads/main\n").unwrap();
    std::os::unix::fs::symlink("src/main.rs", dir.join("link")).unwrap();
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(s(path)).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
}

/// No dockhand staging file or directory anywhere under `dir`.
fn no_staging_under(dir: &Path) {
    for e in walkdir::WalkDir::new(dir) {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy();
        assert!(
            !name.contains(dockhand::STAGING_MARKER),
            "staging left: {}",
            e.path().display()
        );
    }
}

#[test]
fn force_never_replaces_unrelated_directories() {
    let tmp = tempdir();
    let basic = fixture("docker-save-basic");
    let project = tmp.path().join("project");
    unrelated_tree(&project);
    let before = tree_snapshot_with_modes(&project);
    for to in ["oci", "docker-dir", "dir"] {
        for force in [false, true] {
            let mut args = vec!["convert", "--to", to, basic.input(), s(&project)];
            if force {
                args.insert(1, "--force");
            }
            let stderr = fails(&args);
            assert!(
                stderr.contains("refusing") && stderr.contains("is kept"),
                "{stderr}"
            );
            assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
            assert_eq!(
                tree_snapshot_with_modes(&project),
                before,
                "{args:?} changed it"
            );
        }
    }
    // An image layout with one foreign file beside it is kept too.
    let layout = tmp.path().join("layout");
    ok(&["convert", basic.input(), s(&layout)]);
    std::fs::write(layout.join("README"), b"notes\n").unwrap();
    let before = tree_snapshot_with_modes(&layout);
    let stderr = fails(&["convert", "--force", basic.input(), s(&layout)]);
    assert!(stderr.contains("README"), "{stderr}");
    assert_eq!(tree_snapshot_with_modes(&layout), before);
    let parent: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert_eq!(parent.len(), 2, "staging left beside: {parent:?}");
}

/// `dockhand convert --force --to TO SRC DEST`, which must fail; its stderr.
fn forced_convert_fails(to: &str, src: &str, dest: &str) -> String {
    fails(&["convert", "--force", "--to", to, src, dest])
}

#[test]
fn files_are_never_turned_into_directories_or_special_files_replaced() {
    let tmp = tempdir();
    let basic = fixture("docker-save-basic");
    let text = tmp.path().join("notes.txt");
    std::fs::write(&text, b"important\n").unwrap();
    let stderr = forced_convert_fails("oci", basic.input(), s(&text));
    assert!(stderr.contains("is a file"), "{stderr}");
    assert_eq!(std::fs::read(&text).unwrap(), b"important\n");
    // A tar output onto a directory (an earlier OCI output) is refused as well.
    let layout = tmp.path().join("layout");
    ok(&["convert", basic.input(), s(&layout)]);
    let before = tree_snapshot_with_modes(&layout);
    let stderr = forced_convert_fails("oci-archive", basic.input(), s(&layout));
    assert!(stderr.contains("is a directory"), "{stderr}");
    assert_eq!(tree_snapshot_with_modes(&layout), before);
    // A FIFO is never replaced, by either kind of output.
    let fifo = tmp.path().join("pipe");
    mkfifo(&fifo);
    for to in ["oci-archive", "oci"] {
        let stderr = forced_convert_fails(to, basic.input(), s(&fifo));
        assert!(stderr.contains("FIFO"), "{stderr}");
        assert!(fifo.symlink_metadata().unwrap().file_type().is_fifo());
    }
    // A device node neither (as root this was a way to destroy /dev/null).
    let stderr = forced_convert_fails("oci-archive", basic.input(), "/dev/null");
    assert!(stderr.contains("character device"), "{stderr}");
    assert!(Path::new("/dev/null")
        .symlink_metadata()
        .unwrap()
        .file_type()
        .is_char_device());
    no_staging_under(tmp.path());
}

#[test]
fn the_source_and_directories_around_it_are_never_destinations() {
    let tmp = tempdir();
    let dir = tmp.path().join("images");
    std::fs::create_dir(&dir).unwrap();
    let src = dir.join("app.tar");
    std::fs::copy(fixture("docker-save-basic").input(), &src).unwrap();
    let before = tree_snapshot_with_modes(tmp.path());
    for (dest, to, why) in [
        (dir.clone(), "oci", "contains the source"),
        (tmp.path().to_path_buf(), "oci", "contains the source"),
        (src.clone(), "docker-archive", "is the source"),
    ] {
        for force in [false, true] {
            let mut args = vec!["convert", "--to", to, s(&src), s(&dest)];
            if force {
                args.insert(1, "--force");
            }
            let stderr = fails(&args);
            assert!(stderr.contains(why), "{args:?}: {stderr}");
        }
    }
    // Writing inside a source directory is refused too.
    let layout = tmp.path().join("layout");
    ok(&["convert", s(&src), s(&layout)]);
    let stderr = fails(&["convert", s(&layout), s(&layout.join("copy"))]);
    assert!(stderr.contains("inside the source"), "{stderr}");
    std::fs::remove_dir_all(&layout).unwrap();
    assert_eq!(tree_snapshot_with_modes(tmp.path()), before);
}

#[test]
fn the_working_directory_home_and_root_are_never_destinations() {
    let tmp = tempdir();
    let basic = fixture("docker-save-basic");
    let work = tmp.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir(&home).unwrap();
    // Empty, so the contents rule alone would allow them.
    for (dest, why) in [
        (".", "current directory"),
        ("..", "current directory"),
        (s(&home), "home directory"),
        ("/", "root"),
    ] {
        let out = dockhand()
            .args(["convert", "--force", basic.input(), dest])
            .current_dir(&work)
            .env("HOME", &home)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{dest}: {stderr}");
        assert!(stderr.contains(why), "{dest}: {stderr}");
    }
    assert_eq!(std::fs::read_dir(&work).unwrap().count(), 0);
    assert_eq!(std::fs::read_dir(&home).unwrap().count(), 0);
}

#[test]
fn force_replaces_earlier_outputs_and_symlinks_are_replaced_not_followed() {
    let tmp = tempdir();
    let basic = fixture("docker-save-basic");
    let multi = fixture("docker-save-multi");
    for (to, name) in [
        ("oci", "oci"),
        ("docker-dir", "docker-dir"),
        ("dir", "dir"),
        ("oci-archive", "oci.tar"),
        ("docker-archive", "docker.tar"),
    ] {
        let dest = tmp.path().join(name);
        ok(&["convert", "--to", to, basic.input(), s(&dest)]);
        ok(&[
            "convert",
            "--force",
            "--to",
            to,
            "--image",
            "@1",
            multi.input(),
            s(&dest),
        ]);
        let got = inspect(s(&dest));
        let want = multi.expected["images"][1]["config"]["digest"].clone();
        assert_eq!(got["images"].as_array().unwrap().len(), 1, "{to}");
        assert_eq!(got["images"][0]["config"]["digest"], want, "{to}");
    }
    // A tar destination that is a symlink: the link is replaced, its target untouched.
    let target = tmp.path().join("precious.txt");
    std::fs::write(&target, b"keep me\n").unwrap();
    let link = tmp.path().join("link.tar");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    fails(&["convert", basic.input(), s(&link)]);
    ok(&["convert", "--force", basic.input(), s(&link)]);
    assert!(link.symlink_metadata().unwrap().is_file());
    assert_eq!(std::fs::read(&target).unwrap(), b"keep me\n");
    // A directory output onto a symlink to a directory is refused, the link kept.
    let dir_link = tmp.path().join("dir-link");
    std::os::unix::fs::symlink(tmp.path().join("oci"), &dir_link).unwrap();
    let stderr = fails(&["convert", "--force", basic.input(), s(&dir_link)]);
    assert!(stderr.contains("symbolic link"), "{stderr}");
    assert!(dir_link
        .symlink_metadata()
        .unwrap()
        .file_type()
        .is_symlink());
    no_staging_under(tmp.path());
}

fn index_names(layout: &Path) -> Vec<(String, Option<String>)> {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["digest"].as_str().unwrap().to_string(),
                m["annotations"]["org.opencontainers.image.ref.name"]
                    .as_str()
                    .map(String::from),
            )
        })
        .collect()
}

fn inode(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().ino()
}

#[test]
fn images_are_added_to_an_existing_oci_layout() {
    let tmp = tempdir();
    let multi = fixture("docker-save-multi");
    let layout = tmp.path().join("layout");
    let at = |name: &str| format!("oci:{}:{name}", s(&layout));
    ok(&["convert", "--image", "@0", multi.input(), &at("first")]);
    let first_blobs: Vec<(PathBuf, u64)> = std::fs::read_dir(layout.join("blobs/sha256"))
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let i = inode(&p);
            (p, i)
        })
        .collect();
    // The second image shares its base layer with the first.
    ok(&["convert", "--image", "@1", multi.input(), &at("second")]);
    for (blob, ino) in &first_blobs {
        assert_eq!(inode(blob), *ino, "{} was rewritten", blob.display());
    }
    let names = index_names(&layout);
    assert_eq!(
        names
            .iter()
            .filter_map(|(_, n)| n.as_deref())
            .collect::<Vec<_>>(),
        ["first", "second"]
    );
    let doc = inspect(s(&layout));
    let configs = |i: usize| multi.expected["images"][i]["config"]["digest"].clone();
    assert_eq!(doc["images"][0]["config"]["digest"], configs(0));
    assert_eq!(doc["images"][1]["config"]["digest"], configs(1));
    ok(&["verify", s(&layout)]);
    if have_tool("images_are_added_to_an_existing_oci_layout", "skopeo") {
        for (name, i) in [("first", 0), ("second", 1)] {
            let config = skopeo(tmp.path(), &["inspect", "--config", "--raw", &at(name)]);
            assert_eq!(sha256(&config), configs(i).as_str().unwrap(), "{name}");
        }
    }
    // A ref name already in the index moves to the new image; the old entry stays,
    // unnamed, and nothing else changes.
    ok(&["convert", "--image", "@2", multi.input(), &at("first")]);
    let names = index_names(&layout);
    assert_eq!(names.len(), 3, "{names:?}");
    assert_eq!(names[0].1, None);
    assert_eq!(names[1].1.as_deref(), Some("second"));
    assert_eq!(names[2].1.as_deref(), Some("first"));
    let doc = inspect(&at("first"));
    assert_eq!(doc["images"][0]["config"]["digest"], configs(2));
    // Adding the same image again under the same name changes nothing.
    let before = std::fs::read(layout.join("index.json")).unwrap();
    ok(&["convert", "--image", "@2", multi.input(), &at("first")]);
    assert_eq!(std::fs::read(layout.join("index.json")).unwrap(), before);
    // --force replaces the whole layout.
    ok(&[
        "convert",
        "--force",
        "--image",
        "@1",
        multi.input(),
        &at("only"),
    ]);
    let names = index_names(&layout);
    assert_eq!(names.len(), 1);
    assert_eq!(names[0].1.as_deref(), Some("only"));
    no_staging_under(tmp.path());
}

#[test]
fn a_failed_addition_leaves_the_old_layout_readable() {
    let tmp = tempdir();
    let layout = tmp.path().join("layout");
    let basic = fixture("docker-save-basic");
    // An image that shares no blob with broken-diffid (a blob already in the layout,
    // verified there, would not be read from the source at all).
    let multi = fixture("docker-save-multi");
    let first = format!("oci:{}:first", s(&layout));
    ok(&["convert", "--image", "@1", multi.input(), &first]);
    let index_before = std::fs::read(layout.join("index.json")).unwrap();
    // broken-diffid fails half-way, while its layer is being written.
    let broken = fixture("broken-diffid");
    let stderr = fails(&[
        "convert",
        broken.input(),
        &format!("oci:{}:second", s(&layout)),
    ]);
    assert!(stderr.contains("diff_id mismatch"), "{stderr}");
    assert_eq!(
        std::fs::read(layout.join("index.json")).unwrap(),
        index_before
    );
    ok(&["verify", s(&layout)]);
    no_staging_under(tmp.path());
    if have_tool("a_failed_addition_leaves_the_old_layout_readable", "skopeo") {
        skopeo(
            tmp.path(),
            &["inspect", "--raw", &format!("oci:{}:first", s(&layout))],
        );
    }
    // An index that cannot be read is not added to (nor replaced without --force).
    std::fs::write(layout.join("index.json"), b"{not json").unwrap();
    let stderr = fails(&["convert", basic.input(), s(&layout)]);
    assert!(stderr.contains("--force"), "{stderr}");
    assert_eq!(
        std::fs::read(layout.join("index.json")).unwrap(),
        b"{not json"
    );
}

/// `dockhand convert --image @N` of `fixture` to `dest`, started and not waited for,
/// its stderr piped.
fn convert_in_background(fixture: &Fixture, n: usize, dest: &str) -> std::process::Child {
    dockhand()
        .args([
            "convert",
            "--image",
            &format!("@{n}"),
            fixture.input(),
            dest,
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn concurrent_additions_keep_every_image() {
    let tmp = tempdir();
    let multi = fixture("docker-save-multi");
    let layout = tmp.path().join("layout");
    ok(&[
        "convert",
        "--image",
        "@0",
        multi.input(),
        &format!("oci:{}:zero", s(&layout)),
    ]);
    let children: Vec<_> = (0..6)
        .map(|i| convert_in_background(&multi, i % 3, &format!("oci:{}:n{i}", s(&layout))))
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut names: Vec<String> = index_names(&layout)
        .into_iter()
        .filter_map(|(_, n)| n)
        .collect();
    names.sort();
    assert_eq!(names, ["n0", "n1", "n2", "n3", "n4", "n5", "zero"]);
    ok(&["verify", s(&layout)]);
}

#[test]
fn concurrent_runs_creating_one_oci_layout_keep_every_image() {
    let tmp = tempdir();
    let multi = fixture("docker-save-multi");
    let configs = |i: usize| multi.expected["images"][i]["config"]["digest"].clone();
    let skopeo_here = have_tool(
        "concurrent_runs_creating_one_oci_layout_keep_every_image",
        "skopeo",
    );
    // A few rounds, so that the runs do race: into a path that is absent, and into an
    // empty directory made beforehand.
    for round in 0..4 {
        let layout = tmp.path().join(format!("layout-{round}"));
        if round % 2 == 1 {
            std::fs::create_dir(&layout).unwrap();
        }
        let at = |i: usize| format!("oci:{}:n{i}", s(&layout));
        let children: Vec<_> = (0..10)
            .map(|i| convert_in_background(&multi, i % 3, &at(i)))
            .collect();
        let mut added = 0;
        for child in children {
            let out = child.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "round {round}: {stderr}");
            added += usize::from(stderr.contains("(added to the existing layout)"));
        }
        // One run created the layout; every other one says it added to it, whether it
        // started after the layout existed or found it there when it committed.
        assert_eq!(added, 9, "round {round}");
        let mut names: Vec<String> = index_names(&layout)
            .into_iter()
            .filter_map(|(_, n)| n)
            .collect();
        names.sort();
        let mut want: Vec<String> = (0..10).map(|i| format!("n{i}")).collect();
        want.sort();
        assert_eq!(names, want, "round {round}");
        ok(&["verify", s(&layout)]);
        for i in 0..10 {
            let doc = inspect(&at(i));
            assert_eq!(doc["images"][0]["config"]["digest"], configs(i % 3), "n{i}");
            if skopeo_here {
                skopeo(tmp.path(), &["inspect", "--raw", &at(i)]);
            }
        }
    }
    no_staging_under(tmp.path());
}

/// Start `dockhand convert - DEST` with `args`, let `appear` put something at `dest`
/// once its staging exists (the destination was checked, nothing was read yet), then
/// feed it `input`; returns the exit code and stderr.
fn convert_while_dest_appears(
    args: &[&str],
    dest: &Path,
    input: &str,
    appear: impl FnOnce(),
) -> (Option<i32>, String) {
    use std::io::Write;
    let mut child = dockhand()
        .arg("convert")
        .args(args)
        .args(["-", s(dest)])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let parent = dest.parent().unwrap();
    let prefix = format!(
        ".{}{}",
        dest.file_name().unwrap().to_string_lossy(),
        dockhand::STAGING_MARKER
    );
    let staging_exists = || {
        std::fs::read_dir(parent).unwrap().any(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with(&prefix)
        })
    };
    for _ in 0..3000 {
        if staging_exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(staging_exists(), "no staging for {}", dest.display());
    appear();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&std::fs::read(input).unwrap()).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_destination_that_appears_and_cannot_be_added_to_is_kept_and_force_named_only_when_it_helps() {
    let tmp = tempdir();
    let basic = fixture("docker-save-basic");
    // Something another program writes there while dockhand is writing.
    let a_file = |dest: &Path| std::fs::write(dest, b"theirs\n").unwrap();
    let a_project = |dest: &Path| unrelated_tree(dest);
    let a_docker_tree = |dest: &Path| {
        ok(&["convert", "--to", "docker-dir", basic.input(), s(dest)]);
    };
    let a_broken_oci_layout = |dest: &Path| {
        ok(&["convert", "--to", "oci", basic.input(), s(dest)]);
        std::fs::write(dest.join("index.json"), b"{not json").unwrap();
    };
    type Appear<'a> = &'a dyn Fn(&Path);
    let cases: [(&str, &str, Appear, &str, bool); 8] = [
        (
            "docker-archive",
            "out.tar",
            &a_file,
            "a file of 7 bytes",
            true,
        ),
        ("oci-archive", "out.tar", &a_file, "a file of 7 bytes", true),
        (
            "docker-dir",
            "out",
            &a_docker_tree,
            "a docker-save tree",
            true,
        ),
        (
            "dir",
            "out",
            &a_project,
            "a directory of other files",
            false,
        ),
        (
            "oci",
            "out",
            &a_project,
            "a directory of other files",
            false,
        ),
        ("oci", "out", &a_docker_tree, "a docker-save tree", true),
        ("oci", "out", &a_file, "a file of 7 bytes", false),
        (
            "oci",
            "out",
            &a_broken_oci_layout,
            "an OCI image layout (",
            true,
        ),
    ];
    for (n, (to, name, appear, what, force_would_replace)) in cases.into_iter().enumerate() {
        for force in [false, true] {
            let work = tmp.path().join(format!("{n}-{force}"));
            std::fs::create_dir(&work).unwrap();
            let dest = work.join(name);
            let mut args = vec!["--to", to];
            if force {
                args.push("--force");
            }
            let mut before = None;
            let (code, stderr) = convert_while_dest_appears(&args, &dest, basic.input(), || {
                appear(&dest);
                before = Some(tree_snapshot_with_modes(&dest));
            });
            let case = format!("{to} onto {what}, --force {force}");
            assert_eq!(code, Some(1), "{case}: {stderr}");
            assert_eq!(stderr.trim_end().lines().count(), 1, "{case}: {stderr}");
            for needle in [
                what,
                "appeared there while dockhand was writing",
                "nothing was replaced",
            ] {
                assert!(
                    stderr.contains(needle),
                    "{case}: {needle:?} not in {stderr}"
                );
            }
            assert_eq!(
                stderr.contains("--force"),
                force_would_replace && !force,
                "{case}: {stderr}"
            );
            // Kept byte for byte, and no staging left beside it.
            assert_eq!(Some(tree_snapshot_with_modes(&dest)), before, "{case}");
            let beside: Vec<_> = std::fs::read_dir(&work).unwrap().collect();
            assert_eq!(beside.len(), 1, "{case}: {beside:?}");
        }
    }
}

#[test]
fn concurrent_runs_to_one_path_never_both_succeed() {
    let tmp = tempdir();
    let multi = fixture("docker-save-multi");
    for (to, name) in [("docker-archive", "out.tar"), ("docker-dir", "out")] {
        for round in 0..5 {
            let dest = tmp.path().join(format!("{round}-{name}"));
            let children: Vec<_> = (0..2)
                .map(|_| {
                    dockhand()
                        .args(["convert", "--to", to, multi.input(), s(&dest)])
                        .stdin(Stdio::null())
                        .stderr(Stdio::piped())
                        .spawn()
                        .unwrap()
                })
                .collect();
            let outcomes: Vec<bool> = children
                .into_iter()
                .map(|c| c.wait_with_output().unwrap().status.success())
                .collect();
            assert_eq!(
                outcomes.iter().filter(|ok| **ok).count(),
                1,
                "{to} round {round}: {outcomes:?}"
            );
            assert_eq!(inspect(s(&dest))["images"].as_array().unwrap().len(), 3);
        }
    }
    no_staging_under(tmp.path());
}

/// Run a conversion under `umask`; returns the output's mode bits.
fn converted_mode(tmp: &Path, to: &str, name: &str, umask: libc::mode_t) -> PathBuf {
    let dest = tmp.join(name);
    let mut cmd = dockhand();
    cmd.args([
        "convert",
        "--to",
        to,
        fixture("docker-save-basic").input(),
        s(&dest),
    ]);
    // SAFETY: umask(2) is async-signal-safe and only changes the child's own mask.
    unsafe {
        cmd.pre_exec(move || {
            libc::umask(umask);
            Ok(())
        });
    }
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dest
}

fn mode(path: &Path) -> u32 {
    path.symlink_metadata().unwrap().permissions().mode() & 0o7777
}

#[test]
fn outputs_get_the_modes_cp_gives() {
    let tmp = tempdir();
    for (umask, file_mode, dir_mode) in [
        (0o022, 0o644, 0o755),
        (0o002, 0o664, 0o775),
        (0o077, 0o600, 0o700),
    ] {
        let tar = converted_mode(tmp.path(), "oci-archive", &format!("{umask:o}.tar"), umask);
        assert_eq!(mode(&tar), file_mode, "umask {umask:o}");
        let dir = converted_mode(tmp.path(), "oci", &format!("{umask:o}-oci"), umask);
        assert_eq!(mode(&dir), dir_mode, "umask {umask:o}");
        assert_eq!(mode(&dir.join("index.json")), file_mode, "umask {umask:o}");
        assert_eq!(mode(&dir.join("blobs")), dir_mode, "umask {umask:o}");
    }
}
