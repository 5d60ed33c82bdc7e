//! Every shell example in README.md runs as written, against a lab, as
//! root: the commands of its ```sh blocks and its `$ ` lines, in README's
//! order, in one working directory (an example may use a file an earlier
//! one wrote). Two liberties, and only these: `sudo` is dropped (the test
//! is root), and the lab prefix `hs-` becomes the test's own.
//!
//! How each runs follows from what it is: the explorer (and `replay`) in a
//! tmux pane until its screen shows, then `q`; a trace that ends by itself
//! (`--duration`, `-- COMMAND`) to its end; one that runs until stopped,
//! until its programs are attached, then SIGINT. Each must exit 0, except
//! an example followed by the output it prints: that output's `hopscope:`
//! lines must be printed exactly (error messages) or in shape (summaries).
//! An example the test cannot classify fails it, so none is skipped
//! silently; the two scripts are named below with the reason they do not
//! run here.

mod common;
#[path = "common/tmux.rs"]
mod tmux;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use hopscope::lab::LabGuard;
use tmux::Tmux;

/// Examples not run here, with the reason.
const NOT_RUN: &[(&str, &str)] = &[
    (
        "./scripts/test.sh",
        "CI's own command: this test is one of the tests it runs",
    ),
    (
        "./scripts/demo.sh",
        "builds a release binary and opens the explorer on the lab: tests/tui.rs runs the demo",
    ),
];

/// One example: the command line (continuations joined) and the output
/// README shows after it, if any.
#[derive(Debug)]
struct Example {
    cmd: String,
    shown: Vec<String>,
}

fn examples(readme: &str) -> Vec<Example> {
    let mut out: Vec<Example> = Vec::new();
    let mut block: Option<bool> = None;
    let mut pending = String::new();
    let mut last_dollar = false;
    for line in readme.lines() {
        if let Some(lang) = line.strip_prefix("```") {
            block = match block {
                Some(_) => None,
                None => Some(lang.trim() == "sh"),
            };
            last_dollar = false;
            continue;
        }
        let Some(sh) = block else { continue };
        let cmd = if sh {
            let t = line.trim();
            if t.is_empty() || (t.starts_with('#') && pending.is_empty()) {
                continue;
            }
            Some(line)
        } else if let Some(c) = line.strip_prefix("$ ") {
            Some(c)
        } else {
            if last_dollar {
                if let Some(e) = out.last_mut() {
                    e.shown.push(line.to_owned());
                }
            }
            None
        };
        let Some(cmd) = cmd else { continue };
        // A comment at the end of the line is not part of the command.
        let cmd = match cmd.find("  #") {
            Some(i) => &cmd[..i],
            None => cmd,
        };
        let cmd = cmd.trim_end();
        if let Some(c) = cmd.strip_suffix('\\') {
            pending.push_str(c.trim_end());
            pending.push(' ');
            continue;
        }
        pending.push_str(cmd.trim_start());
        out.push(Example {
            cmd: std::mem::take(&mut pending),
            shown: Vec::new(),
        });
        last_dollar = !sh;
    }
    out
}

enum How {
    /// Not run, for this reason.
    Skip(&'static str),
    /// In a terminal until the screen shows, then `q`.
    Explorer,
    /// To its end.
    ToEnd,
    /// Until attached, then SIGINT.
    UntilStopped,
}

fn classify(cmd: &str) -> How {
    if let Some((_, why)) = NOT_RUN.iter().find(|(c, _)| cmd.contains(c)) {
        return How::Skip(why);
    }
    let first = cmd.split_whitespace().next().unwrap_or("");
    if first != "hopscope" {
        return How::ToEnd;
    }
    let sub = cmd.split_whitespace().nth(1).unwrap_or("");
    match sub {
        "trace" if cmd.contains("--duration") || cmd.contains(" -- ") => How::ToEnd,
        "trace" if cmd.contains("--filter 'tcp port'") => How::ToEnd,
        "trace" => How::UntilStopped,
        "lab" => How::ToEnd,
        "demo" if cmd.contains("--text") || cmd.contains("--json") => How::ToEnd,
        _ => How::Explorer,
    }
}

#[test]
fn every_shell_example_in_readme_runs_as_written() {
    require_root();
    let _s = serial();
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let examples = examples(&readme);
    assert!(examples.len() >= 10, "README's examples: {examples:#?}");

    let pfx = prefix("rd");
    let _lab = LabGuard::up(&pfx).expect("lab up");
    let dir = tempfile::tempdir().unwrap();
    let bindir = dir.path().join("bin");
    std::fs::create_dir(&bindir).unwrap();
    std::os::unix::fs::symlink(bin(), bindir.join("hopscope")).unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let path = format!(
        "{}:{}",
        bindir.display(),
        std::env::var("PATH").unwrap_or_default()
    );

    let mut ran = Vec::new();
    for ex in &examples {
        let cmd = ex
            .cmd
            .replace("sudo ", "")
            .replace("hs-", &format!("{pfx}-"));
        let shell = |c: &str| {
            let mut k = Command::new("bash");
            k.args(["-o", "pipefail", "-c", c])
                .current_dir(&work)
                .env("PATH", &path)
                .stdin(Stdio::null());
            k
        };
        let t0 = Instant::now();
        match classify(&cmd) {
            How::Skip(why) => {
                eprintln!("not run: {cmd}: {why}");
                continue;
            }
            How::ToEnd => {
                let out = shell(&cmd).output().unwrap();
                let stderr = String::from_utf8_lossy(&out.stderr);
                let stdout = String::from_utf8_lossy(&out.stdout);
                let errors: Vec<&String> = ex
                    .shown
                    .iter()
                    .filter(|l| l.starts_with("hopscope: error: "))
                    .collect();
                if errors.is_empty() {
                    assert_eq!(
                        out.status.code(),
                        Some(0),
                        "README example `{}` failed:\n{stdout}\n{stderr}",
                        ex.cmd
                    );
                } else {
                    assert_eq!(out.status.code(), Some(2), "`{}`: {stderr}", ex.cmd);
                    for e in errors {
                        assert!(
                            stderr.lines().any(|l| l == e),
                            "`{}` prints `{e}` in README, but:\n{stderr}",
                            ex.cmd
                        );
                    }
                }
                // A summary shown in README has the shape printed.
                if let Some(s) = ex.shown.iter().find(|l| l.contains(" packets (")) {
                    let shape = |l: &str| {
                        l.split_whitespace()
                            .filter(|w| !w.starts_with(|c: char| c.is_ascii_digit() || c == '('))
                            .collect::<Vec<_>>()
                            .join(" ")
                    };
                    let printed = stderr
                        .lines()
                        .find(|l| l.contains(" packets ("))
                        .unwrap_or_else(|| panic!("`{}` printed no summary:\n{stderr}", ex.cmd));
                    assert_eq!(shape(printed), shape(s), "`{}`'s summary", ex.cmd);
                }
                if cmd.contains("| jq") {
                    assert!(!stdout.trim().is_empty(), "`{}` printed nothing", ex.cmd);
                }
            }
            How::UntilStopped => {
                let child = shell(&format!("exec {cmd}"))
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                assert!(
                    wait_attached(child.id(), Duration::from_secs(60)),
                    "`{}` did not start tracing",
                    ex.cmd
                );
                nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(child.id() as i32),
                    nix::sys::signal::Signal::SIGINT,
                )
                .unwrap();
                let out = child.wait_with_output().unwrap();
                assert_eq!(
                    out.status.code(),
                    Some(0),
                    "`{}`: {}",
                    ex.cmd,
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            How::Explorer => {
                let status = dir.path().join("status");
                let _ = std::fs::remove_file(&status);
                let script = dir.path().join("explorer.sh");
                std::fs::write(
                    &script,
                    format!(
                        "cd '{}' && PATH='{path}' {cmd} 2> '{}/stderr'\necho $? > '{}'\n",
                        work.display(),
                        dir.path().display(),
                        status.display()
                    ),
                )
                .unwrap();
                let t = Tmux::start(&format!("bash '{}'", script.display()));
                t.wait_for(&format!("the screen of `{}`", ex.cmd), |s| {
                    s.contains(" hopscope │ ")
                });
                t.tmux(&["send-keys", "-t", "t", "q"]);
                let t1 = Instant::now();
                while !status.exists() {
                    assert!(
                        t1.elapsed() < Duration::from_secs(20),
                        "`{}` did not quit on q",
                        ex.cmd
                    );
                    std::thread::sleep(Duration::from_millis(50));
                }
                let code = std::fs::read_to_string(&status).unwrap();
                let err = std::fs::read_to_string(dir.path().join("stderr")).unwrap_or_default();
                assert_eq!(code.trim(), "0", "`{}`: {err}", ex.cmd);
            }
        }
        ran.push(format!("{:>6.1}s  {}", t0.elapsed().as_secs_f64(), ex.cmd));
    }
    eprintln!("README examples run:\n{}", ran.join("\n"));
    assert_no_programs_left();
}
