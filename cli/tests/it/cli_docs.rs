//! The shell and documentation side of the command line: completion scripts, the man
//! page, `--help` with examples on every subcommand, `--version`, `-q` and `-v` on
//! every subcommand, and the errors that say what to do (a `docker export` tar, an
//! ambiguous selection, an existing destination).

use crate::common::build::*;
use crate::common::*;

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::json;

const SUBCOMMANDS: &[&str] = &[
    "convert",
    "inspect",
    "history",
    "export",
    "diff",
    "verify",
    "tags",
    "catalog",
    "tag",
    "untag",
    "rm",
    "gc",
    "delete",
    "digest",
    "sync",
    "import",
    "append",
    "mutate",
    "flatten",
    "completions",
    "man",
];

/// Run `tool args` with `script` on stdin; its exit status and stderr.
fn feed(tool: &str, args: &[&str], script: &[u8]) -> (bool, String) {
    let mut child = Command::new(tool)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running {tool}: {e}"));
    child.stdin.take().unwrap().write_all(script).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout),
    )
}

#[test]
fn completions_for_every_shell_name_the_subcommands() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let script = ok(&["completions", shell]);
        let text = String::from_utf8(script.clone()).unwrap();
        assert!(text.len() > 200, "{shell}: {text}");
        for sub in SUBCOMMANDS {
            assert!(text.contains(sub), "{shell}: no {sub} in the script");
        }
        assert!(
            text.contains("layer-compression"),
            "{shell}: options missing"
        );
        // The script parses in its own shell, where that shell is installed.
        let check: Option<(&str, &[&str])> = match shell {
            "bash" => Some(("bash", &["-n"])),
            "zsh" => Some(("zsh", &["-n"])),
            "fish" => Some(("fish", &["--no-execute"])),
            _ => None,
        };
        if let Some((tool, args)) = check {
            if have_tool("completions_for_every_shell_name_the_subcommands", tool) {
                let (parsed, why) = feed(tool, args, &script);
                assert!(parsed, "{tool} does not parse the script: {why}");
            }
        }
    }
    // An unknown shell is a usage error, on one line.
    let out = run(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 1);
}

#[test]
fn man_prints_a_roff_page_that_man_renders() {
    let page = ok(&["man"]);
    let text = String::from_utf8(page.clone()).unwrap();
    assert!(
        text.starts_with('.'),
        "not roff: {}",
        &text[..80.min(text.len())]
    );
    assert!(text.contains(".TH dockhand 1"), "{text}");
    assert!(
        text.contains(".SH NAME") && text.contains(".SH SYNOPSIS"),
        "{text}"
    );
    for sub in SUBCOMMANDS {
        assert!(text.contains(sub), "no {sub} in the man page");
    }
    assert!(
        text.contains(env!("CARGO_PKG_VERSION")),
        "no version in the man page"
    );
    if let Some(shown) = render_man("man_prints_a_roff_page_that_man_renders", &page) {
        assert!(
            shown.contains("NAME") && shown.contains("dockhand"),
            "{shown}"
        );
    }
}

/// `page` as `man -l` shows it (80 columns), or None without man.
fn render_man(test: &str, page: &[u8]) -> Option<String> {
    if !have_tool(test, "man") {
        return None;
    }
    let mut child = Command::new("man")
        .args(["-l", "-"])
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .env("MANWIDTH", "80")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(page).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "man -l - failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn every_man_page_the_top_page_refers_to_exists_with_its_options() {
    let test = "every_man_page_the_top_page_refers_to_exists_with_its_options";
    let top = String::from_utf8(ok(&["man"])).unwrap();
    // The roff escapes the dash: dockhand\-convert(1).
    let referred: Vec<String> = top
        .split("dockhand\\-")
        .skip(1)
        .filter_map(|rest| rest.split_once("(1)").map(|(name, _)| name.to_string()))
        // `man`'s own line names the pattern, dockhand-COMMAND(1).
        .filter(|name| name != "COMMAND")
        .collect();
    let mut expected: Vec<String> = SUBCOMMANDS.iter().map(|s| s.to_string()).collect();
    expected.sort();
    let mut sorted = referred.clone();
    sorted.sort();
    assert_eq!(sorted, expected, "pages the top page refers to");
    for sub in &referred {
        let page = ok(&["man", sub]);
        let text = String::from_utf8(page.clone()).unwrap();
        assert!(
            text.contains(&format!(".TH dockhand-{sub} 1")),
            "{sub}: {text}"
        );
        // Its options (the global ones too) and its examples.
        for option in ["\\-\\-help", "\\-\\-quiet", "\\-\\-verbose"] {
            assert!(text.contains(option), "{sub}: no {option}: {text}");
        }
        assert!(text.contains(&format!("dockhand {sub}")), "{sub}: {text}");
        if let Some(shown) = render_man(test, &page) {
            assert!(shown.contains(&format!("dockhand-{sub}")), "{shown}");
            assert!(shown.contains("OPTIONS"), "{shown}");
        }
    }
    let convert = String::from_utf8(ok(&["man", "convert"])).unwrap();
    for option in [
        "layer\\-compression",
        "docker\\-layout",
        "\\-\\-force",
        "tls\\-verify",
    ] {
        assert!(
            convert.contains(option),
            "no {option} in dockhand-convert(1)"
        );
    }
    // No page for `help`, which is no command a man reader runs.
    assert!(!top.contains("dockhand\\-help"), "{top}");
    let out = run(&["man", "frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("convert"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn help_errors_and_completions_list_every_transport() {
    let names = dockhand::transport_names();
    assert!(names.contains(", docker"), "{names}");
    // Every transport's syntax, from the table: docker:// too.
    let help = String::from_utf8(ok(&["convert", "--help"])).unwrap();
    for format in dockhand::Format::all() {
        let syntax = format.transport().syntax();
        assert!(
            help.contains(syntax),
            "convert --help lacks {syntax}: {help}"
        );
    }
    assert!(
        help.contains("docker://HOST/REPO"),
        "convert --help: {help}"
    );
    // An unknown transport is told what the table holds, as locations start.
    let out = run(&["inspect", "containers-storage:busybox"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for prefix in ["docker-archive", "oci-archive", "dir", "docker://"] {
        assert!(stderr.contains(prefix), "{stderr}");
    }
    // --from and --to take the formats of the same table: help, errors, completions.
    let formats: Vec<&str> = dockhand::Format::all()
        .map(dockhand::Format::name)
        .collect();
    let out = run(&["convert", "--to", "zip", "a", "b"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    for format in &formats {
        assert!(names.contains(format), "{names}");
        assert!(stderr.contains(format), "{stderr}");
    }
    let bash = String::from_utf8(ok(&["completions", "bash"])).unwrap();
    let offered = format!("compgen -W \"{}\"", formats.join(" "));
    assert!(bash.contains(&offered), "bash completions lack {offered}");
}

#[test]
fn every_subcommand_help_shows_its_examples() {
    let top = String::from_utf8(ok(&["--help"])).unwrap();
    assert!(top.contains("Examples:"), "{top}");
    for sub in SUBCOMMANDS {
        assert!(top.contains(sub), "--help does not list {sub}");
        for flag in ["--help", "-h"] {
            let help = String::from_utf8(ok(&[sub, flag])).unwrap();
            assert!(help.contains("Examples:"), "{sub} {flag}: {help}");
            assert!(
                help.contains(&format!("dockhand {sub} ")),
                "{sub} {flag}: no example runs dockhand {sub}: {help}"
            );
            for global in ["--quiet", "--verbose"] {
                assert!(help.contains(global), "{sub} {flag}: no {global}");
            }
        }
        let help = String::from_utf8(ok(&["help", sub])).unwrap();
        assert!(help.contains("Examples:"), "help {sub}: {help}");
    }
}

/// append and flatten share their history flags; flatten's help speaks of its one
/// entry, append's of one per layer, and flatten's completions keep the flags in their
/// place (between --tag and --change).
#[test]
fn the_history_flags_are_worded_for_each_command() {
    let wordings = [
        ("append", "The history entries' comment (also the config's)"),
        ("append", "The history entries' created_by\n"),
        ("flatten", "The history entry's comment (also the config's)"),
        ("flatten", "The history entry's author (also the config's)"),
        (
            "flatten",
            "The history entry's created_by (default: dockhand flatten ID (N layers))",
        ),
    ];
    for (sub, wording) in wordings {
        let help = String::from_utf8(ok(&[sub, "--help"])).unwrap();
        assert!(
            help.contains(wording),
            "{sub} --help lacks {wording:?}: {help}"
        );
    }
    let fish = String::from_utf8(ok(&["completions", "fish"])).unwrap();
    let flatten: Vec<&str> = fish
        .lines()
        .filter(|l| l.contains("__fish_dockhand_using_subcommand flatten\" -"))
        .collect();
    let at = |flag: &str| {
        flatten
            .iter()
            .position(|l| l.contains(flag))
            .unwrap_or_else(|| panic!("no {flag} in {flatten:#?}"))
    };
    let places: Vec<usize> = [
        "-l tag ",
        "-l message ",
        "-l author ",
        "-l created-by ",
        "-l change ",
    ]
    .into_iter()
    .map(at)
    .collect();
    assert!(
        places.windows(2).all(|w| w[1] == w[0] + 1),
        "flatten's history flags moved: {places:?}"
    );
}

#[test]
fn version_is_the_crate_version() {
    for flag in ["--version", "-V"] {
        let out = String::from_utf8(ok(&[flag])).unwrap();
        assert_eq!(out, format!("dockhand {}\n", env!("CARGO_PKG_VERSION")));
    }
}

/// A docker-save archive whose tags draw a warning (one holds control characters).
fn warned_archive(dir: &std::path::Path) -> String {
    let mut save = Save::new(1);
    save.manifest[0]["RepoTags"] = json!(["ok/name:1", "bad\u{1b}]0;x\u{7}:2"]);
    put(dir, "warned.tar", &save.tar())
}

#[test]
fn quiet_leaves_only_the_requested_output() {
    let tmp = tempdir();
    let input = warned_archive(tmp.path());
    // Without -q the warning shows; with -q (before or after the subcommand) it does not,
    // and stdout is the same.
    let loud = run(&["inspect", &input]);
    assert!(loud.status.success());
    assert!(String::from_utf8_lossy(&loud.stderr).contains("warning:"));
    for args in [
        vec!["inspect", "-q", input.as_str()],
        vec!["-q", "inspect", input.as_str()],
        vec!["inspect", "--quiet", "--json", input.as_str()],
    ] {
        let out = run(&args);
        assert!(out.status.success(), "{args:?}");
        assert!(out.stderr.is_empty(), "{args:?}: {:?}", out.stderr);
        assert!(!out.stdout.is_empty(), "{args:?}");
    }
    assert_eq!(run(&["inspect", "-q", &input]).stdout, loud.stdout);
    // verify -q: the exit status only.
    let out = run(&["verify", "-q", &input]);
    assert!(out.status.success());
    assert!(out.stdout.is_empty() && out.stderr.is_empty(), "{out:?}");
    let out = run(&["verify", &input]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("verified 1 image(s)"));
    // Errors still reach stderr under -q.
    let out = run(&["verify", "-q", "/nonexistent/image.tar"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("error: "));
    // tags -q: nothing on stdout for an unreachable registry, the error on stderr.
    let out = run(&[
        "tags",
        "-q",
        "--retry-times",
        "0",
        "--tls-verify=false",
        "docker://127.0.0.1:9/none",
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("error: ") && stderr.lines().count() == 1,
        "{stderr}"
    );
    // convert -q, as before.
    let out = run(&["convert", "-q", &input, s(&tmp.path().join("o"))]);
    assert!(out.status.success());
    assert!(out.stderr.is_empty(), "{:?}", out.stderr);
}

#[test]
fn verbose_adds_the_causes_and_timings() {
    // An error: one line without -v, the same line then its causes and timings with it.
    let plain = run(&["inspect", "/nonexistent/dir/image.tar"]);
    let plain = String::from_utf8_lossy(&plain.stderr).into_owned();
    assert_eq!(plain.lines().count(), 1, "{plain}");
    for args in [
        ["-v", "inspect", "/nonexistent/dir/image.tar"],
        ["inspect", "--verbose", "/nonexistent/dir/image.tar"],
    ] {
        let out = run(&args);
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines[0], plain.trim_end(), "{stderr}");
        assert!(
            lines.iter().any(|l| l.starts_with("  cause ")
                && l.contains("No such file or directory")
                && l.contains("NotFound")),
            "{stderr}"
        );
        assert!(
            lines.last().unwrap().starts_with("timing: ")
                && lines.last().unwrap().contains("total"),
            "{stderr}"
        );
    }
    // A success: the phases of each subcommand.
    let basic = fixture("docker-save-basic");
    let tmp = tempdir();
    let out_dir = tmp.path().join("o");
    let rows: [(Vec<&str>, &[&str]); 3] = [
        (
            vec!["verify", "-v", basic.input()],
            &["open and read metadata", "verify layers", "total"],
        ),
        (
            vec!["inspect", "-v", basic.input()],
            &["open and read metadata", "total"],
        ),
        (
            vec!["convert", "-v", basic.input(), s(&out_dir)],
            &["open and read metadata", "write layers", "total"],
        ),
    ];
    for (args, phases) in rows {
        let out = run(&args);
        assert!(out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let timing = stderr
            .lines()
            .find(|l| l.starts_with("timing: "))
            .unwrap_or_else(|| panic!("{args:?}: no timing in {stderr}"));
        for phase in phases {
            assert!(timing.contains(phase), "{args:?}: {phase} not in {timing}");
        }
        assert!(timing.contains(" ms") || timing.contains(" s"), "{timing}");
    }
}

/// A `docker export`-like tar: the root filesystem of the bundled busybox-like image
/// (its layer, as a real `docker save` wrote it) with the `.dockerenv` Docker adds.
fn exported_filesystem() -> Vec<u8> {
    let mut archive =
        tar::Archive::new(std::fs::File::open(fixture("docker-save-basic").input()).unwrap());
    let mut layer = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().ends_with("layer.tar") && entry.size() > 1024 {
            std::io::Read::read_to_end(&mut entry, &mut layer).unwrap();
            break;
        }
    }
    assert!(!layer.is_empty(), "no layer in the fixture");
    let mut out = tar_of(&[file(".dockerenv", Vec::new())]);
    out.truncate(out.len() - 1024); // its end-of-archive blocks
    out.extend_from_slice(&layer);
    out
}

#[test]
fn a_docker_export_tar_says_to_use_docker_save() {
    let tmp = tempdir();
    let exported = put(tmp.path(), "container.tar", &exported_filesystem());
    for args in [
        vec!["inspect", exported.as_str()],
        vec!["convert", exported.as_str(), s(&tmp.path().join("out"))],
    ] {
        let stderr = fails(&args);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        for needle in [
            "container.tar",
            "a container filesystem, not an image",
            "docker save",
        ] {
            assert!(
                stderr.contains(needle),
                "{args:?}: {needle:?} not in {stderr}"
            );
        }
    }
    // The same from stdin names stdin.
    let out = pipe(&["inspect", "-"], &exported_filesystem());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("error: stdin: ") && stderr.contains("docker save"),
        "{stderr}"
    );
}

#[test]
fn an_ambiguous_selection_lists_the_images_and_how_to_pick_one() {
    let multi = fixture("docker-save-multi");
    let tmp = tempdir();
    let out_path = tmp.path().join("o");
    let out = s(&out_path);
    let ids: Vec<String> = images(&inspect(multi.input()))
        .iter()
        .map(|im| im["config"]["digest"].as_str().unwrap()["sha256:".len()..][..12].to_string())
        .collect();
    assert_eq!(ids.len(), 3);
    for args in [
        vec!["convert", "--to", "dir", multi.input(), out],
        vec!["convert", "--tag", "example.com/one:1", multi.input(), out],
    ] {
        let stderr = fails(&args);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        for (n, id) in ids.iter().enumerate() {
            assert!(
                stderr.contains(&format!("@{n} {id} ")),
                "{args:?}: @{n} {id}: {stderr}"
            );
        }
        for needle in [
            "docker.io/dockhand-fixture/multi-app:1.0",
            "example.com/dockhand/dup:1.0",
            "--image @N",
            "--image NAME",
        ] {
            assert!(
                stderr.contains(needle),
                "{args:?}: {needle:?} not in {stderr}"
            );
        }
    }
    assert!(!tmp.path().join("o").exists());
}

#[test]
fn an_existing_destination_says_what_force_would_replace() {
    let basic = fixture("docker-save-basic");
    let tmp = tempdir();
    // A file.
    let file_out = tmp.path().join("out.tar");
    std::fs::write(&file_out, b"keep me").unwrap();
    let stderr = fails(&["convert", basic.input(), s(&file_out)]);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    for needle in [
        "out.tar",
        "a file of 7 bytes",
        "--force would replace that file",
    ] {
        assert!(stderr.contains(needle), "{needle:?} not in {stderr}");
    }
    assert_eq!(std::fs::read(&file_out).unwrap(), b"keep me");
    // An image layout of another kind than the output.
    let layout = tmp.path().join("layout");
    ok(&[
        "convert",
        "-q",
        "--to",
        "docker-dir",
        basic.input(),
        s(&layout),
    ]);
    let stderr = fails(&["convert", "--to", "docker-dir", basic.input(), s(&layout)]);
    for needle in [
        "a docker-save tree",
        "--force would replace that whole directory",
    ] {
        assert!(stderr.contains(needle), "{needle:?} not in {stderr}");
    }
    let oci = tmp.path().join("oci");
    ok(&["convert", "-q", basic.input(), s(&oci)]);
    let stderr = fails(&["convert", "--to", "dir", basic.input(), s(&oci)]);
    for needle in ["an OCI image layout", "--force", "--to oci would add to it"] {
        assert!(stderr.contains(needle), "{needle:?} not in {stderr}");
    }
    // And --force does replace it.
    ok(&[
        "convert",
        "-q",
        "--force",
        "--to",
        "docker-dir",
        basic.input(),
        s(&layout),
    ]);
}
