//! Hostile input and failures against the real binary, as root, with real
//! BPF (one test at a time, machine-wide: `serial()`); never skipped.
//!
//! - A process and an interface named with terminal escape sequences, in
//!   namespaces of the test's own: text mode shows them escaped, JSON
//!   carries them as they are, the explorer in tmux shows them escaped and
//!   the pane's title stays what it was.
//! - Output files: a planted symbolic link (to a victim, or dangling) or an
//!   existing file at `-o`, `--record` or `--dot` is refused with status 2
//!   before anything is loaded, and the victim is untouched.
//! - Write errors: `> /dev/full` ends with status 1 and the cause; a closed
//!   pipe is a quiet, normal end.
//! - Signals: SIGTERM or SIGINT to `trace -- sleep 30` ends it within 2 s
//!   with 128+signal, the command gone and no program left.
//! - `trace -- CMD`: the command's output goes to stderr, never into the
//!   trace.
//! - Scopes: `--netns` that is not a network namespace or names none,
//!   `--pid` of no process: status 2 with the cause.
//! - Terminal loss: the explorer and `replay` end within 1 s of their tmux
//!   session being killed, with no program left.

mod common;
#[path = "common/tmux.rs"]
mod tmux;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tmux::Tmux;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn sh(cmd: &str) -> Output {
    Command::new("sh")
        .args(["-c", cmd])
        .stdin(Stdio::null())
        .output()
        .expect("sh")
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|r| r.trim_start().starts_with('Z'))
        })
}

/// Waits for `child` to exit, up to `limit`; its status and how long it took.
fn wait_within(child: &mut Child, limit: Duration) -> (std::process::ExitStatus, Duration) {
    let t0 = Instant::now();
    loop {
        if let Some(st) = child.try_wait().expect("wait") {
            return (st, t0.elapsed());
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("still running {limit:?} after the signal");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn q(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', "'\\''"))
}

// ---------------------------------------------------------------------------
// Output files

#[test]
fn planted_links_and_existing_files_are_refused_before_tracing() {
    require_root();
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let dangling = dir.path().join("dangling");
    let target = dir.path().join("created-through-the-link");
    std::os::unix::fs::symlink(&target, &dangling).unwrap();
    let existing = dir.path().join("existing");
    std::fs::write(&existing, "old").unwrap();

    for flag in ["-o", "--record", "--dot"] {
        for (path, force, why) in [
            (&link, false, "is a symbolic link"),
            (&link, true, "is a symbolic link"),
            (&dangling, true, "is a symbolic link"),
            (
                &existing,
                false,
                "exists; hopscope does not overwrite it unless --force",
            ),
        ] {
            let p = path.to_str().unwrap();
            let mut args = vec!["trace", "--duration", "30", flag, p];
            if force {
                args.push("--force");
            }
            let t0 = Instant::now();
            let out = hopscope(&args);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
            assert!(stderr(&out).contains(why), "{args:?}: {}", stderr(&out));
            // Refused at the start, not after the trace.
            assert!(t0.elapsed() < Duration::from_secs(10), "{args:?}");
        }
    }
    // The explorer's --record too (in a terminal, so it gets that far).
    let out = sh(&format!(
        "script -qec \"{} --record {} --duration 30\" /dev/null",
        bin(),
        link.display()
    ));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("is a symbolic link"),
        "explorer --record through a link: {}{}",
        String::from_utf8_lossy(&out.stdout),
        stderr(&out)
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert_eq!(
        std::fs::metadata(&victim).unwrap().permissions().mode() & 0o7777,
        0o644
    );
    assert!(
        !target.exists(),
        "nothing created through the dangling link"
    );
    assert_eq!(std::fs::read_to_string(&existing).unwrap(), "old");
    assert_no_programs_left();

    // --force replaces a regular file, 0600.
    let out = hopscope(&[
        "trace",
        "--json",
        "--duration",
        "0.2",
        "-o",
        existing.to_str().unwrap(),
        "--force",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let written = std::fs::read_to_string(&existing).unwrap();
    assert!(written.contains("\"type\":\"summary\""), "{written}");
    assert!(out.stdout.is_empty(), "the trace went to the file");
    assert_eq!(
        std::fs::metadata(&existing).unwrap().permissions().mode() & 0o7777,
        0o600
    );
}

// ---------------------------------------------------------------------------
// Write errors

#[test]
fn write_errors_end_the_run_and_a_closed_pipe_does_not() {
    require_root();
    let _s = serial();
    let out = sh(&format!(
        "{} trace --json --duration 0.3 > /dev/full",
        bin()
    ));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("writing the trace to stdout: No space left on device"),
        "{}",
        stderr(&out)
    );
    // The summary still reaches stderr, with the figures.
    assert!(stderr(&out).contains(" emitted, "), "{}", stderr(&out));
    // Packets whose lines could not be written are not counted as shown
    // (pings on the loopback of a namespace of the test's own).
    for mode in ["", "--json"] {
        let out = sh(&format!(
            "{} trace {mode} -- unshare -n sh -c 'ip link set lo up && ping -q -c 2 -i 0.2 127.0.0.1' > /dev/full",
            bin()
        ));
        let err = stderr(&out);
        let summary = err
            .lines()
            .find(|l| l.contains(" shown)"))
            .unwrap_or_else(|| panic!("no summary: {err}"));
        assert!(summary.contains("(0 shown)"), "{mode}: {summary}");
        assert!(
            !summary.starts_with("hopscope: 0 packets"),
            "{mode}: {summary}"
        );
    }

    // The reader goes away before anything is written.
    let mut child = Command::new(bin())
        .args(["trace", "--json", "--duration", "0.3"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains("error"), "{}", stderr(&out));
    assert_no_programs_left();
}

// ---------------------------------------------------------------------------
// Signals and `-- CMD`

#[test]
fn signals_end_trace_command_at_once() {
    require_root();
    let _s = serial();
    for (sig, code) in [(Signal::SIGTERM, 143), (Signal::SIGINT, 130)] {
        // A distinctive duration, to find the command afterwards.
        let mut child = Command::new(bin())
            .args(["trace", "--", "sleep", "30.4242"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        assert!(
            wait_attached(child.id(), Duration::from_secs(60)),
            "programs attached"
        );
        kill(Pid::from_raw(child.id() as i32), sig).unwrap();
        let (st, took) = wait_within(&mut child, Duration::from_secs(10));
        assert!(
            took < Duration::from_secs(2),
            "{sig}: exited after {took:?}"
        );
        assert_eq!(st.code(), Some(code), "{sig}");
        let left = sh("pgrep -f 'sleep 30[.]4242'");
        assert!(left.stdout.is_empty(), "the command is gone after {sig}");
        assert_no_programs_left();
        eprintln!("{sig}: exited {code} after {took:?}");
    }
}

#[test]
fn command_output_never_enters_the_trace() {
    require_root();
    let _s = serial();
    let out = hopscope(&[
        "trace",
        "--json",
        "--",
        "sh",
        "-c",
        "echo noise-on-stdout; echo '{\"type\": \"fake\"'; echo noise-on-stderr >&2",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for l in stdout.lines() {
        let v: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}"));
        assert_ne!(v["type"], "fake");
    }
    assert_eq!(summary(&json_lines(&out.stdout))["command_exit"], 0);
    let err = stderr(&out);
    assert!(
        err.contains("noise-on-stdout") && err.contains("noise-on-stderr"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------
// Scopes

#[test]
fn bad_scopes_exit_2_with_the_cause() {
    for (args, why) in [
        (
            &["trace", "--netns", "/proc/self/ns/mnt"][..],
            "a mnt namespace, not a network namespace",
        ),
        (
            &["trace", "--netns", "12345"],
            "no network namespace has this inode",
        ),
        (&["trace", "--netns", "/etc/passwd"], "not a namespace file"),
        (
            &["trace", "--netns", "no-such-ns-hx"],
            "no network namespace named no-such-ns-hx",
        ),
        (
            &["trace", "--pid", "4000000"],
            "--pid 4000000: no such process",
        ),
    ] {
        let out = hopscope(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(why), "{args:?}: {}", stderr(&out));
    }
}

// ---------------------------------------------------------------------------
// Terminal loss

/// Kills the session and returns how long the pane's process took to go.
fn kill_session_and_time(t: &Tmux, pid: u32) -> Duration {
    let killed = Instant::now();
    let out = t.tmux(&["kill-session", "-t", "t"]);
    assert!(out.status.success(), "{}", stderr(&out));
    while alive(pid) {
        assert!(
            killed.elapsed() < Duration::from_secs(10),
            "pid {pid} still alive 10 s after its terminal went away"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    killed.elapsed()
}

#[test]
fn terminal_loss_ends_the_explorer_and_replay() {
    require_root();
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("run.hsrec");
    let err = dir.path().join("explorer.err");
    let t = Tmux::start(&format!(
        "exec {} --record {} 2> {}",
        bin(),
        q(&rec),
        q(&err)
    ));
    let pid: u32 = t.display("#{pane_pid}").parse().expect("pane pid");
    assert!(
        wait_attached(pid, Duration::from_secs(60)),
        "explorer attached"
    );
    t.wait_for("the explorer's screen", |s| s.contains(" hopscope │ "));
    let took = kill_session_and_time(&t, pid);
    eprintln!("explorer: gone {took:?} after its tmux session was killed");
    assert!(took < Duration::from_secs(1), "explorer took {took:?}");
    assert_no_programs_left();
    drop(t);
    // Its summary, and nothing about a cursor it could not show.
    let said = std::fs::read_to_string(&err).unwrap();
    assert!(said.contains(" emitted, "), "{said}");
    assert!(!said.contains("cursor"), "{said}");

    let t = Tmux::start(&format!("exec {} replay {}", bin(), q(&rec)));
    let pid: u32 = t.display("#{pane_pid}").parse().expect("pane pid");
    t.wait_for("the replay's screen", |s| s.contains(" hopscope │ replay"));
    let took = kill_session_and_time(&t, pid);
    eprintln!("replay: gone {took:?} after its tmux session was killed");
    assert!(took < Duration::from_secs(1), "replay took {took:?}");
}

// ---------------------------------------------------------------------------
// Names with escape sequences, live

/// Two namespaces of the test's own joined by a veth pair whose end in the
/// first is named with an escape sequence; removed on drop.
struct EvilPair {
    a: String,
    b: String,
}

/// Interface name: "hx", OSC 0 (set the title to "P"), BEL.
const EVIL_IF: &str = "hx\x1b]0;P\x07";
/// Executable (and so process) name: OSC 0 with another title, BEL.
const EVIL_COMM: &str = "\x1b]0;PWN\x07ping";

impl EvilPair {
    fn up() -> EvilPair {
        let p = prefix("hx");
        let pair = EvilPair {
            a: format!("{p}-a"),
            b: format!("{p}-b"),
        };
        pair.down();
        ip(&["netns", "add", &pair.a]);
        ip(&["netns", "add", &pair.b]);
        ip(&[
            "link", "add", EVIL_IF, "netns", &pair.a, "type", "veth", "peer", "name", "eth0",
            "netns", &pair.b,
        ]);
        for (ns, dev, addr) in [
            (&pair.a, EVIL_IF, "198.18.200.1/30"),
            (&pair.b, "eth0", "198.18.200.2/30"),
        ] {
            ip(&["-n", ns, "addr", "add", addr, "dev", dev]);
            ip(&["-n", ns, "link", "set", dev, "up"]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        pair
    }

    fn down(&self) {
        for ns in [&self.a, &self.b] {
            let _ = run("ip", &["netns", "del", ns]);
        }
    }
}

impl Drop for EvilPair {
    fn drop(&mut self) {
        self.down();
    }
}

/// A copy of ping whose process name is [`EVIL_COMM`].
fn evil_ping(dir: &Path) -> std::path::PathBuf {
    let ping = String::from_utf8(run("sh", &["-c", "command -v ping"]).stdout).unwrap();
    let path = dir.join(EVIL_COMM);
    std::fs::copy(ping.trim(), &path).expect("copying ping");
    path
}

#[test]
fn escape_sequences_in_names_reach_no_terminal() {
    require_root();
    let _s = serial();
    let pair = EvilPair::up();
    let dir = tempfile::tempdir().unwrap();
    let ping = evil_ping(dir.path());
    let ping_cmd = |count: &str| {
        vec![
            "ip".to_owned(),
            "netns".to_owned(),
            "exec".to_owned(),
            pair.a.clone(),
            ping.display().to_string(),
            "-c".to_owned(),
            count.to_owned(),
            "-i".to_owned(),
            "0.2".to_owned(),
            "198.18.200.2".to_owned(),
        ]
    };

    // JSON carries the names as they are: the test really made them.
    let mut args = vec!["trace".to_owned(), "--json".to_owned(), "--".to_owned()];
    args.extend(ping_cmd("2"));
    let out = Command::new(bin()).args(&args).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines = json_lines(&out.stdout);
    assert!(
        lines.iter().any(|l| l["ifname"] == EVIL_IF),
        "JSON has the interface's real name"
    );
    assert!(
        lines.iter().any(|l| l["comm"] == EVIL_COMM),
        "JSON has the process's real name"
    );

    // Text: escaped, no control character on any line.
    args.remove(1);
    let out = Command::new(bin()).args(&args).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("hx\\x1b]0;P\\x07"),
        "escaped in text:\n{text}"
    );
    let raw: Vec<&str> = text
        .lines()
        .filter(|l| l.chars().any(char::is_control))
        .collect();
    assert!(raw.is_empty(), "raw control characters: {raw:?}");
    assert!(!stderr(&out).contains('\x1b'), "{}", stderr(&out));

    // The explorer, scoped to the first namespace, in a terminal.
    let t = Tmux::start(&format!("exec {} --netns {} --flow icmp", bin(), pair.a));
    let title = t.display("#{pane_title}");
    let pid: u32 = t.display("#{pane_pid}").parse().unwrap();
    assert!(wait_attached(pid, Duration::from_secs(60)));
    let out = Command::new(&ping_cmd("3")[0])
        .args(&ping_cmd("3")[1..])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    t.wait_for("the ICMP flow", |s| s.contains("icmp "));
    // Flow → packets → hops of the first request: its sender and devices.
    t.tmux(&["send-keys", "-t", "t", "/", "-l", "198.18.200.2"]);
    t.tmux(&["send-keys", "-t", "t", "Enter", "Enter", "Enter"]);
    let hops = t.wait_for("the hop list", |s| {
        s.contains("sent by") || s.contains("hx\\x1b")
    });
    assert!(
        hops.contains("hx\\x1b]0;P\\x07"),
        "escaped interface name:\n{hops}"
    );
    assert_eq!(
        t.display("#{pane_title}"),
        title,
        "the pane's title was rewritten"
    );
    assert!(!t.display("#{pane_title}").contains("PWN"));
    t.tmux(&["send-keys", "-t", "t", "q"]);
    let t0 = Instant::now();
    while alive(pid) && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(t);
    drop(pair);
    assert_no_programs_left();
}

// ---------------------------------------------------------------------------
// Filter compilation in the explorer

/// `n` terms of `port N or ...`: libpcap takes about a second over 170.
fn ors(n: usize) -> String {
    (1..=n)
        .map(|i| format!("port {i}"))
        .collect::<Vec<_>>()
        .join(" or ")
}

#[test]
fn the_explorer_draws_while_a_filter_compiles_and_refuses_long_ones() {
    require_root();
    let _s = serial();
    let t = Tmux::start(&format!("exec {} --filter icmp", bin()));
    let pid: u32 = t.display("#{pane_pid}").parse().expect("pane pid");
    assert!(wait_attached(pid, Duration::from_secs(60)));
    t.wait_for("the explorer", |s| s.contains("│ filter: `icmp`"));

    // 600 terms: refused at once, by size, under the line.
    t.tmux(&["send-keys", "-t", "t", "f", "C-u"]);
    t.tmux(&["send-keys", "-t", "t", "-l", &ors(600)]);
    let t0 = Instant::now();
    t.tmux(&["send-keys", "-t", "t", "Enter"]);
    let s = t.wait_for("the refusal", |s| {
        s.contains("hopscope compiles at most 2048")
    });
    eprintln!("600 terms refused after {:?}", t0.elapsed());
    assert!(s.contains("│ filter: `icmp`"), "the old filter stays:\n{s}");

    // 170 terms: libpcap works for a while; the screen says so meanwhile,
    // and SIGTERM ends the explorer at once all the same.
    t.tmux(&["send-keys", "-t", "t", "C-u"]);
    t.tmux(&["send-keys", "-t", "t", "-l", &ors(170)]);
    t.tmux(&["send-keys", "-t", "t", "Enter"]);
    t.wait_for("the screen drawn while compiling", |s| {
        s.contains("compiling …")
    });
    let t0 = Instant::now();
    kill(Pid::from_raw(pid as i32), Signal::SIGTERM).unwrap();
    while alive(pid) {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "SIGTERM while compiling"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    eprintln!("SIGTERM while compiling: gone after {:?}", t0.elapsed());
    assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
    drop(t);
    assert_no_programs_left();
}
