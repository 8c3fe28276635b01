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

/// Run `dockhand ARGS` under a pseudo-terminal `columns` wide (unset: a terminal that
/// gives no size); the visible width of the widest progress line it drew, and those
/// lines.
fn progress_widths(columns: Option<u16>, args: &[&str]) -> (usize, Vec<String>) {
    let mut line = match columns {
        Some(n) => format!("stty rows 24 cols {n}; "),
        None => String::new(),
    };
    line.push_str(env!("CARGO_BIN_EXE_dockhand"));
    for a in args {
        line.push_str(&format!(" '{a}'"));
    }
    let out = Command::new("script")
        .args(["-qfec", &line, "/dev/null"])
        .env_remove("CI")
        .output()
        .expect("running script");
    let seen = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{line}: {seen}");
    // Escape sequences move the cursor or clear: each ends what was drawn before it.
    let mut lines = Vec::new();
    let mut current = String::new();
    let mut chars = seen.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => {
                if chars.peek() == Some(&'[') {
                    chars.next();
                    while let Some(&next) = chars.peek() {
                        chars.next();
                        if next.is_ascii_alphabetic() {
                            break;
                        }
                    }
                }
                lines.push(std::mem::take(&mut current));
            }
            '\r' | '\n' => lines.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    lines.push(current);
    // The summary after the bars is a message, not a progress line.
    let drawn: Vec<String> = lines
        .into_iter()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| {
            !l.starts_with("converted ") && !l.starts_with("verified ") && !l.starts_with("  @")
        })
        .collect();
    let widest = drawn.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    (widest, drawn)
}

#[test]
fn progress_lines_fit_the_terminal() {
    if !have_script() {
        return;
    }
    let tmp = tempdir();
    let input = fixture("docker-save-basic");
    // (columns the pty has, the width every line must keep within)
    for (columns, limit) in [
        (None, 80),
        (Some(100), 100),
        (Some(80), 80),
        (Some(60), 60),
        (Some(40), 40),
        (Some(20), 20),
    ] {
        let out = tmp.path().join(format!("out-{limit}"));
        let (widest, drawn) = progress_widths(columns, &["convert", input.input(), s(&out)]);
        assert!(
            widest <= limit,
            "{columns:?}: a line of {widest} columns: {drawn:#?}"
        );
        assert!(!drawn.is_empty(), "{columns:?}: no progress drawn");
        if limit >= 60 {
            // Wide enough for the rate.
            assert!(drawn.iter().any(|l| l.contains("B/s")), "{drawn:#?}");
        }
        let (widest, drawn) = progress_widths(columns, &["verify", s(&out)]);
        assert!(
            widest <= limit,
            "verify {columns:?}: {widest} columns: {drawn:#?}"
        );
    }
    // A wide terminal gets the widest bar.
    let wide = tmp.path().join("wide");
    let (_, drawn) = progress_widths(Some(200), &["convert", input.input(), s(&wide)]);
    let bar = format!("total [{}]", "=".repeat(30));
    assert!(drawn.iter().any(|l| l.contains(&bar)), "{drawn:#?}");
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
