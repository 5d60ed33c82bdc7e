//! A fresh machine has what the tests, the lab and the demo run: every
//! program they name (in the Rust sources of the tests and of hopscope,
//! and in the scripts CI and the demo run) that exists on this machine must
//! come from a package `scripts/install-deps.sh` installs, from one of
//! their dependencies, or from a package every Debian system has
//! (essential or required). So a program installed here by hand, and
//! missing from install-deps, turns the tests red here too, not only on a
//! fresh machine. Programs that do not exist here at all make their own
//! tests fail.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The scripts the tests, CI and the demo run.
const SCRIPTS: &[&str] = &[
    ".ci/run",
    "scripts/test.sh",
    "scripts/install-deps.sh",
    "scripts/demo.sh",
    "scripts/fuzz.sh",
];

/// Words that look like programs in these sources but are not run by
/// them, each with the reason.
const NOT_RUN: &[(&str, &str)] = &[
    ("arp", "a protocol: filter expressions and output"),
    (
        "column",
        "a word: the explorer's link column, `ip -br` output's columns",
    ),
    (
        "docker",
        "a path component (/var/run/docker/netns) and a cgroup name",
    ),
    (
        "file",
        "a word in messages and a variable (an open namespace file)",
    ),
    (
        "node",
        "a Graphviz keyword, and an overlay's node in the tunnel tests",
    ),
    ("route", "a record type"),
    ("systemd", "a cgroup path component"),
    ("time", "a JSON field"),
    ("write", "a word in test messages"),
];

/// The PACKAGES array of install-deps.sh.
/// install-deps's packages: those it always installs, and those its options
/// add (--vm: the guests' QEMU, busybox, kmod, pip), which a run of the
/// test command alone has not installed.
fn install_deps_packages() -> (Vec<String>, Vec<String>) {
    let text = std::fs::read_to_string(Path::new(ROOT).join("scripts/install-deps.sh")).unwrap();
    let start = text.find("PACKAGES=(").expect("a PACKAGES array") + "PACKAGES=(".len();
    let end = start + text[start..].find(')').expect("the array's end");
    let always: Vec<String> = text[start..end]
        .split_whitespace()
        .filter(|w| !w.starts_with('#'))
        .map(str::to_owned)
        .collect();
    let mut optional = Vec::new();
    for (i, _) in text.match_indices("PACKAGES+=(") {
        let start = i + "PACKAGES+=(".len();
        let end = start + text[start..].find(')').expect("the addition's end");
        optional.extend(text[start..end].split_whitespace().map(str::to_owned));
    }
    (always, optional)
}

fn is_word(w: &str) -> bool {
    w.len() > 1
        && w.starts_with(|c: char| c.is_ascii_lowercase())
        && w.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.+-".contains(c))
}

fn split_words(s: &str, out: &mut BTreeMap<String, BTreeSet<String>>, file: &str) {
    for w in s.split(|c: char| !(c.is_ascii_alphanumeric() || "_.+-".contains(c))) {
        if is_word(w) {
            out.entry(w.to_owned()).or_default().insert(file.to_owned());
        }
    }
}

/// Words of the string literals of a Rust source.
fn rust_literals(text: &str, file: &str, out: &mut BTreeMap<String, BTreeSet<String>>) {
    let mut chars = text.chars().peekable();
    let mut in_str = false;
    let mut cur = String::new();
    while let Some(c) = chars.next() {
        match (in_str, c) {
            (false, '"') => in_str = true,
            (true, '\\') => {
                chars.next();
                cur.push(' ');
            }
            (true, '"') => {
                in_str = false;
                // A program is a literal of its own (`Command::new("ip")`,
                // `["netns", "exec", ns, "ping", ...]`) or starts a shell
                // command line (`"ncat -l 8008"`, `"sh -c ..."`); other
                // literals are messages, not commands.
                let t = cur.trim();
                if is_word(t) || t.contains(" -") || t.contains(" | ") || t.contains("; ") {
                    split_words(t, out, file);
                }
                cur.clear();
            }
            (true, c) => cur.push(c),
            (false, '/') if chars.peek() == Some(&'/') => {
                // A comment: to the end of the line.
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            (false, '\'') => {
                // A char literal ('"' must not open a string).
                let rest: String = chars.clone().take(3).collect();
                if rest.starts_with("\"'") || rest.starts_with("\\\"") {
                    chars.nth(1);
                }
            }
            _ => {}
        }
    }
}

/// Words of a shell script, comments left out.
fn shell_words(text: &str, file: &str, out: &mut BTreeMap<String, BTreeSet<String>>) {
    for line in text.lines() {
        let code = match line.find(" #") {
            _ if line.trim_start().starts_with('#') => "",
            Some(i) => &line[..i],
            None => line,
        };
        split_words(code, out, file);
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Where `prog` is on a standard PATH (rustup's tools are installed by
/// install-deps itself and are not looked up).
fn which(prog: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    [
        "/usr/local/sbin",
        "/usr/local/bin",
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
    ]
    .iter()
    .map(|d| Path::new(d).join(prog))
    .find(|p| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

/// The Debian package that owns `path` (merged /usr: either spelling).
fn owner(path: &Path) -> Option<String> {
    let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mut candidates = vec![path.to_path_buf(), real.clone()];
    for p in [path, real.as_path()] {
        let s = p.to_string_lossy();
        if let Some(rest) = s.strip_prefix("/usr") {
            candidates.push(PathBuf::from(rest));
        } else {
            candidates.push(PathBuf::from(format!("/usr{s}")));
        }
    }
    candidates.into_iter().find_map(|p| {
        let out = Command::new("dpkg").arg("-S").arg(&p).output().ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text.lines().find(|l| !l.starts_with("diversion"))?;
        Some(line.split(':').next()?.split(',').next()?.trim().to_owned())
    })
}

/// Packages every Debian system has.
fn base_package(pkg: &str) -> bool {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f=${Essential} ${Priority}", pkg])
        .output()
        .expect("dpkg-query");
    let s = String::from_utf8_lossy(&out.stdout);
    s.starts_with("yes") || s.ends_with("required")
}

/// `packages` and everything they depend on (recursively).
fn closure(packages: &[String]) -> BTreeSet<String> {
    let out = Command::new("apt-cache")
        .args([
            "depends",
            "--recurse",
            "--no-recommends",
            "--no-suggests",
            "--no-conflicts",
            "--no-breaks",
            "--no-replaces",
            "--no-enhances",
        ])
        .args(packages)
        .output()
        .expect("apt-cache");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            l.trim()
                .trim_start_matches("|")
                .trim_start_matches("PreDepends:")
                .trim_start_matches("Depends:")
                .trim()
                .trim_matches(|c| c == '<' || c == '>')
                .split(':')
                .next()
                .unwrap_or("")
                .to_owned()
        })
        .filter(|p| !p.is_empty())
        .chain(packages.iter().cloned())
        .collect()
}

#[test]
fn install_deps_installs_every_program_the_tests_lab_and_demo_run() {
    let root = Path::new(ROOT);
    let mut words: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut files = Vec::new();
    for d in ["src", "tests", "examples", "benches"] {
        rust_files(&root.join(d), &mut files);
    }
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let name = f.strip_prefix(root).unwrap().display().to_string();
        rust_literals(&text, &name, &mut words);
    }
    // README's examples (a test runs them): ```sh blocks and `$ ` lines.
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let mut block: Option<bool> = None;
    for line in readme.lines() {
        if let Some(lang) = line.strip_prefix("```") {
            block = match block {
                Some(_) => None,
                None => Some(lang == "sh"),
            };
            continue;
        }
        match block {
            Some(true) => shell_words(line, "README.md", &mut words),
            Some(false) if line.starts_with("$ ") => shell_words(line, "README.md", &mut words),
            _ => {}
        }
    }
    for s in SCRIPTS {
        let text = std::fs::read_to_string(root.join(s)).unwrap();
        shell_words(&text, s, &mut words);
    }
    let (packages, optional) = install_deps_packages();
    for p in &packages {
        let out = Command::new("dpkg-query")
            .args(["-W", "-f=${Status}", p])
            .output()
            .unwrap();
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("install ok installed"),
            "install-deps lists {p}, which is not installed here: run scripts/install-deps.sh"
        );
    }
    let all: Vec<String> = packages.iter().chain(&optional).cloned().collect();
    let provided = closure(&all);
    let mut missing = Vec::new();
    let mut checked = Vec::new();
    for (w, used_in) in &words {
        if NOT_RUN.iter().any(|(n, _)| n == w) {
            continue;
        }
        let Some(path) = which(w) else { continue };
        match owner(&path) {
            Some(pkg) if provided.contains(&pkg) || base_package(&pkg) => {
                checked.push(format!("{w} ({pkg})"));
            }
            Some(pkg) => missing.push(format!(
                "{w}: {} from package {pkg}, which install-deps does not install (named in {})",
                path.display(),
                used_in.iter().cloned().collect::<Vec<_>>().join(", ")
            )),
            None => missing.push(format!(
                "{w}: {} belongs to no package (installed by hand?), named in {}",
                path.display(),
                used_in.iter().cloned().collect::<Vec<_>>().join(", ")
            )),
        }
    }
    eprintln!("programs checked: {}", checked.join(", "));
    assert!(
        missing.is_empty(),
        "programs a fresh machine would lack:\n  {}",
        missing.join("\n  ")
    );
    for needed in [
        "ip", "ping", "tmux", "bpftool", "ncat", "tcpdump", "dot", "jq", "tshark",
    ] {
        assert!(
            checked
                .iter()
                .any(|c| c.starts_with(&format!("{needed} ("))),
            "{needed} was not found among the programs named: {checked:?}"
        );
    }
}
