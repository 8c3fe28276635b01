//! Progress bars: drawn on stderr when it is a terminal (the binary run under a
//! pseudo-terminal by `script`), never when stderr is a pipe, with `-q`, or with `CI`
//! set, and never on stdout.

use crate::common::*;

use std::process::Command;

/// Run `dockhand ARGS` under a pseudo-terminal (util-linux `script`), with `env` set;
/// everything the terminal received.
fn under_a_terminal(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut line = String::from(env!("CARGO_BIN_EXE_dockhand"));
    for a in args {
        line.push_str(&format!(" '{a}'"));
    }
    let mut cmd = Command::new("script");
    cmd.args(["-qfec", &line, "/dev/null"]).env_remove("CI");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("running script");
    assert!(
        out.status.success(),
        "{line}: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn have_script() -> bool {
    have_tool("progress_bars", "script")
}

#[test]
fn a_terminal_gets_bars_for_layers_and_the_whole() {
    if !have_script() {
        return;
    }
    let tmp = tempdir();
    let input = fixture("docker-save-basic");
    let out = tmp.path().join("out");
    let seen = under_a_terminal(&["convert", input.input(), s(&out)], &[]);
    assert!(seen.contains("total ["), "{seen}");
    assert!(seen.contains("layer ["), "{seen}");
    assert!(seen.contains("converted 1 image(s)"), "{seen}");
    ok(&["verify", s(&out)]);
    // verify shows them too.
    let seen = under_a_terminal(&["verify", s(&out)], &[]);
    assert!(seen.contains("total ["), "{seen}");
}

#[test]
fn no_bars_with_quiet_with_ci_or_on_a_pipe() {
    if !have_script() {
        return;
    }
    let tmp = tempdir();
    let input = fixture("docker-save-basic");
    let quiet = under_a_terminal(
        &["convert", "-q", input.input(), s(&tmp.path().join("q"))],
        &[],
    );
    assert!(!quiet.contains("total ["), "{quiet}");
    assert!(quiet.trim().is_empty(), "{quiet}");
    let ci = under_a_terminal(
        &["convert", input.input(), s(&tmp.path().join("ci"))],
        &[("CI", "true")],
    );
    assert!(!ci.contains("total ["), "{ci}");
    assert!(ci.contains("converted 1 image(s)"), "{ci}");
    // stderr a pipe: the summary only, no bar and no terminal escapes.
    let piped = run(&["convert", input.input(), s(&tmp.path().join("p"))]);
    let stderr = String::from_utf8_lossy(&piped.stderr);
    assert!(piped.status.success(), "{stderr}");
    assert!(
        !stderr.contains("total [") && !stderr.contains('\x1b'),
        "{stderr}"
    );
    // stdout carries the archive only, bars or not.
    let archive = tmp.path().join("stdout.tar");
    let line = format!(
        "{} convert '{}' - > '{}'",
        env!("CARGO_BIN_EXE_dockhand"),
        input.input(),
        s(&archive)
    );
    let out = Command::new("script")
        .args(["-qfec", &line, "/dev/null"])
        .env_remove("CI")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("total ["));
    assert_eq!(
        images(&inspect(s(&archive))).len(),
        1,
        "the archive on stdout is intact"
    );
}
