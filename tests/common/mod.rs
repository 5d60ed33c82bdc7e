//! Shared harness of the privileged tests: run the real binary, parse its
//! JSON lines, and fold hop records into per-packet visit sequences,
//! filtered on the netns inodes of the test's own lab.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};

use serde_json::Value;

pub mod field;

/// Live tests load BPF and watch the whole machine: run them one at a time
/// so that counts and `bpftool prog` checks are not disturbed by each other.
static LIVE: Mutex<()> = Mutex::new(());

/// Held while a live test runs: this process's lock, and a machine-wide
/// `flock` so that test runs of other checkouts (or CI beside a developer)
/// wait for each other too.
pub struct Serial {
    _file: nix::fcntl::Flock<std::fs::File>,
    _guard: MutexGuard<'static, ()>,
}

pub fn serial() -> Serial {
    let guard = LIVE.lock().unwrap_or_else(|e| e.into_inner());
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open("/run/lock/hopscope-live-tests.lock")
        .or_else(|_| {
            std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(std::env::temp_dir().join("hopscope-live-tests.lock"))
        })
        .expect("opening the live-test lock file");
    let file = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
        .unwrap_or_else(|(_, e)| panic!("locking the live-test lock file: {e}"));
    Serial {
        _file: file,
        _guard: guard,
    }
}

/// How many times slower than the development VM this machine runs the
/// tests: the guest suites (scripts/check-kernel.sh) run on an emulated CPU
/// and set HOPSCOPE_TEST_SLOWDOWN; 1 everywhere else.
pub fn slowdown() -> u32 {
    std::env::var("HOPSCOPE_TEST_SLOWDOWN")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n >= 1)
        .unwrap_or(1)
}

/// A window or deadline `d` that waits for the machine (a program to load,
/// a name to be learnt), stretched by `slowdown()`.
pub fn window(d: std::time::Duration) -> std::time::Duration {
    d * slowdown()
}

/// Fails loudly when not root: these tests must never skip silently.
pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "privileged test: run as root (CI runs as root); refusing to skip"
    );
}

/// A unique, short lab prefix for this test.
pub fn prefix(tag: &str) -> String {
    format!("t{}{}", tag, std::process::id() % 100_000)
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_hopscope")
}

pub fn hopscope(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .output()
        .expect("running hopscope")
}

pub fn json_lines(out: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(out)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l}: {e}")))
        .collect()
}

/// One packet as seen in the JSON output.
#[derive(Debug, Clone, Default)]
pub struct Pkt {
    pub id: u64,
    pub role: Option<String>,
    pub proto: Option<String>,
    pub icmp_type: Option<u64>,
    pub icmp_seq: Option<u64>,
    pub icmp_id: Option<u64>,
    pub tcp_flags: Option<String>,
    pub src: Option<String>,
    pub dst: Option<String>,
    /// (netns, ifname) per visit, in order.
    pub visits: Vec<(u64, String)>,
    pub hooks: Vec<String>,
    pub end: Option<String>,
    pub flow: Option<u64>,
}

/// Groups hop records into packets; keeps only hops in `netns`.
pub fn packets(lines: &[Value], netns: &[u64]) -> BTreeMap<u64, Pkt> {
    let mut map: BTreeMap<u64, Pkt> = BTreeMap::new();
    for v in lines {
        let id = v["packet"].as_u64().unwrap_or(0);
        match v["type"].as_str() {
            Some("hop") => {
                let Some(ns) = v["netns"].as_u64() else {
                    // Socket delivery has no device: it belongs to the last visit.
                    if let Some(p) = map.get_mut(&id) {
                        p.hooks.push(v["hook"].as_str().unwrap_or("").to_owned());
                    }
                    continue;
                };
                if !netns.contains(&ns) {
                    continue;
                }
                let p = map.entry(id).or_insert_with(|| Pkt {
                    id,
                    ..Pkt::default()
                });
                p.role = v["role"].as_str().map(str::to_owned).or(p.role.clone());
                p.flow = v["flow"].as_u64().or(p.flow);
                if p.proto.is_none() {
                    p.proto = v["proto"].as_str().map(str::to_owned);
                    p.icmp_type = v["icmp_type"].as_u64();
                    p.icmp_seq = v["icmp_seq"].as_u64();
                    p.icmp_id = v["icmp_id"].as_u64();
                    p.tcp_flags = v["tcp_flags"].as_str().map(str::to_owned);
                    p.src = v["src"].as_str().map(str::to_owned);
                    p.dst = v["dst"].as_str().map(str::to_owned);
                }
                p.hooks.push(v["hook"].as_str().unwrap_or("").to_owned());
                let visit = v["visit"].as_u64().unwrap_or(0) as usize;
                let key = (ns, v["ifname"].as_str().unwrap_or("").to_owned());
                if visit >= p.visits.len() {
                    p.visits.resize(visit + 1, (0, String::new()));
                }
                p.visits[visit] = key;
            }
            Some("end") => {
                if let Some(p) = map.get_mut(&id) {
                    p.end = v["how"].as_str().map(str::to_owned);
                }
            }
            _ => {}
        }
    }
    // Visits outside the test's namespaces leave gaps: drop them.
    for p in map.values_mut() {
        p.visits.retain(|(ns, _)| *ns != 0);
    }
    map
}

pub fn summary(lines: &[Value]) -> Value {
    lines
        .iter()
        .rev()
        .find(|v| v["type"] == "summary")
        .cloned()
        .expect("a summary line at the end")
}

/// Names of loaded BPF programs that belong to hopscope.
pub fn hopscope_progs_loaded() -> Vec<String> {
    let out = Command::new("bpftool")
        .args(["prog", "show"])
        .output()
        .expect("running bpftool");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            l.split_whitespace()
                .skip_while(|w| *w != "name")
                .nth(1)
                .map(str::to_owned)
        })
        .filter(|n| n.starts_with("hs_"))
        .collect()
}

/// Waits until process `pid` has attached its BPF programs (its trace is
/// live), up to `timeout` (stretched by `window`); whether it did. Read from its file descriptors
/// (a link per attached program), so other processes loading or unloading
/// programs (which can make a `bpftool prog` listing stop early) do not
/// matter. Programs are loaded first and attached one by one: done when
/// every program has its link, or (an optional hook failed to attach)
/// when the links stopped growing.
pub fn wait_attached(pid: u32, timeout: std::time::Duration) -> bool {
    let count = || {
        let (mut progs, mut links) = (0, 0);
        if let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
            for fd in fds.flatten() {
                if let Ok(t) = std::fs::read_link(fd.path()) {
                    let t = t.to_string_lossy();
                    progs += usize::from(t.contains("bpf-prog"));
                    links += usize::from(t.contains("bpf_link"));
                }
            }
        }
        (progs, links)
    };
    let (timeout, settled) = (
        window(timeout),
        window(std::time::Duration::from_millis(300)),
    );
    let t0 = std::time::Instant::now();
    let mut last = (0, 0);
    let mut stable_since = t0;
    while t0.elapsed() < timeout {
        let now = count();
        if now != last {
            last = now;
            stable_since = std::time::Instant::now();
        }
        let (progs, links) = now;
        if links > 0 && (links == progs || stable_since.elapsed() >= settled) {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    false
}

/// The kernel frees detached programs asynchronously (RCU): allow it a
/// moment, then insist that no hopscope program is loaded.
pub fn assert_no_programs_left() {
    let t0 = std::time::Instant::now();
    while !hopscope_progs_loaded().is_empty()
        && t0.elapsed() < window(std::time::Duration::from_secs(5))
    {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(
        hopscope_progs_loaded(),
        Vec::<String>::new(),
        "no hopscope program may stay loaded"
    );
}

/// Accepts one connection on `listener` within `deadline` (stretched by
/// `window`): a client that never comes (the trace failed to start its
/// command) fails the test instead of hanging it.
pub fn accept_within(
    listener: &std::net::TcpListener,
    deadline: std::time::Duration,
) -> std::io::Result<std::net::TcpStream> {
    let deadline = std::time::Instant::now() + window(deadline);
    listener.set_nonblocking(true)?;
    loop {
        match listener.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false)?;
                s.set_read_timeout(Some(window(std::time::Duration::from_secs(5))))?;
                return Ok(s);
            }
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10))
            }
            Err(e) => return Err(e),
        }
    }
}

/// Runs a program with no stdin and collects its output.
pub fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {program} {args:?}: {e}"))
}

/// Runs `ip ARGS`, panicking with its stderr on failure.
pub fn ip(args: &[&str]) {
    let out = run("ip", args);
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One packet as the JSON records tell it, visit by visit: what the field
/// tests assert on. Visits are (namespace name, device, what changed
/// there: `DNAT a → b`, `SNAT a → b`, `vxlan 42 198.19.0.1 -> 198.19.0.2`,
/// `inferred`, or empty).
#[derive(Debug, Default, Clone)]
pub struct SeenPacket {
    pub flow: u64,
    pub role: String,
    pub proto: String,
    pub tcp_flags: String,
    pub icmp_type: Option<u64>,
    pub icmp_seq: Option<u64>,
    pub visits: Vec<SeenVisit>,
    pub hooks: Vec<String>,
    /// The end record's `how`, and `comm` when delivered to a task.
    pub how: String,
    pub comm: String,
    pub copy_of: Option<u64>,
    pub segment_of: Option<u64>,
}

/// A visit as [`SeenPacket`] holds it: (namespace, device, what changed there).
pub type SeenVisit = (String, String, String);

/// A visit as [`SeenPacket`] holds it.
pub fn at(ns: &str, dev: &str, what: &str) -> SeenVisit {
    (ns.to_owned(), dev.to_owned(), what.to_owned())
}

/// Packets that visited a namespace named with `prefix`, by packet id
/// (visits outside it are left out).
pub fn seen_packets(recs: &[Value], prefix: &str) -> BTreeMap<u64, SeenPacket> {
    let mut map: BTreeMap<u64, SeenPacket> = BTreeMap::new();
    for r in recs {
        let id = r["packet"].as_u64().unwrap_or(0);
        match r["type"].as_str() {
            Some("hop") => {
                let ns = r["netns_name"].as_str().unwrap_or("");
                if ns.is_empty() {
                    // A socket hook on the packet's last visit.
                    if let Some(p) = map.get_mut(&id) {
                        p.hooks.push(r["hook"].as_str().unwrap_or("").to_owned());
                    }
                    continue;
                }
                if !ns.starts_with(prefix) {
                    continue;
                }
                let p = map.entry(id).or_default();
                p.flow = r["flow"].as_u64().unwrap_or(p.flow);
                p.role = r["role"].as_str().unwrap_or(&p.role).to_owned();
                p.copy_of = p.copy_of.or(r["copy_of"].as_u64());
                p.segment_of = p.segment_of.or(r["segment_of"].as_u64());
                if p.proto.is_empty() && r["proto"].is_string() {
                    p.proto = r["proto"].as_str().unwrap_or("").to_owned();
                    p.tcp_flags = r["tcp_flags"].as_str().unwrap_or("").to_owned();
                    p.icmp_type = r["icmp_type"].as_u64();
                    p.icmp_seq = r["icmp_seq"].as_u64();
                }
                p.hooks.push(r["hook"].as_str().unwrap_or("").to_owned());
                if r["hook"] == "net_dev_xmit" {
                    continue;
                }
                let what = match (&r["dnat"], &r["snat"], &r["outer"]) {
                    (Value::Object(d), _, _) => format!("DNAT {} → {}", d["from"], d["to"]),
                    (_, Value::Object(s), _) => format!("SNAT {} → {}", s["from"], s["to"]),
                    (_, _, Value::Object(o)) => {
                        // No VNI (GRE without a key, IPIP): null.
                        let vni = o.get("vni").unwrap_or(&Value::Null);
                        format!("{} {vni} {} -> {}", o["kind"], o["src"], o["dst"])
                    }
                    _ if r["inferred"] == true => "inferred".to_owned(),
                    _ => String::new(),
                }
                .replace('"', "");
                let dev = r["ifname"].as_str().unwrap_or("").to_owned();
                match p.visits.last_mut() {
                    Some(last) if last.0 == ns && last.1 == dev => {
                        if last.2.is_empty() {
                            last.2 = what;
                        }
                    }
                    _ => p.visits.push((ns.to_owned(), dev, what)),
                }
            }
            Some("end") => {
                if let Some(p) = map.get_mut(&id) {
                    p.how = r["how"].as_str().unwrap_or("").to_owned();
                    p.comm = r["comm"].as_str().unwrap_or("").to_owned();
                }
            }
            _ => {}
        }
    }
    map
}

/// A `hopscope trace --json ARGS` running in the background, stopped with
/// SIGINT ([`Trace::stop`]); killed if the test fails before that.
pub struct Trace(Option<std::process::Child>);

impl Trace {
    pub fn start(args: &[&str]) -> Trace {
        let child = Command::new(bin())
            .args(["trace", "--json"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting hopscope");
        let pid = child.id();
        let t = Trace(Some(child));
        assert!(
            wait_attached(pid, std::time::Duration::from_secs(30)),
            "hopscope did not attach"
        );
        t
    }

    /// SIGINT, then every record it printed.
    pub fn stop(mut self) -> Vec<Value> {
        let child = self.0.take().unwrap();
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGINT,
        )
        .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "hopscope failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let recs = json_lines(&out.stdout);
        assert_eq!(summary(&recs)["lost"], 0, "no event may be lost");
        recs
    }
}

impl Drop for Trace {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `hopscope trace --json [EXTRA] -- ARGV`: the records; the trace and the
/// command must succeed and lose nothing.
pub fn trace_argv(extra: &[&str], argv: &[String]) -> Vec<Value> {
    let mut args = vec!["trace", "--json"];
    args.extend_from_slice(extra);
    args.push("--");
    args.extend(argv.iter().map(String::as_str));
    let out = hopscope(&args);
    assert!(
        out.status.success(),
        "hopscope or the command failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let recs = json_lines(&out.stdout);
    let s = summary(&recs);
    assert_eq!(s["lost"], 0, "no event may be lost: {s}");
    recs
}
