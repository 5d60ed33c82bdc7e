//! Integration tests of the lab (`hopscope::lab`).
//!
//! Most tests create real network namespaces and therefore need root (or
//! CAP_SYS_ADMIN + CAP_NET_ADMIN). They never skip: without root they fail
//! with a message saying so. Each test uses its own prefix (`lt`, a letter,
//! then the low digits of the pid), and every test checks at its end that no
//! namespace with that prefix is left behind.

use std::collections::HashSet;
use std::net::IpAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hopscope::lab::{
    addr, in_netns, Lab, LabGuard, TrafficKind, TrafficOpts, DEFAULT_PREFIX, TCP_PORT, UDP_PORT,
};

fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the lab tests create network namespaces and must run as root \
         (for example `sudo -E cargo test --test lab`); refusing to skip them"
    );
}

/// A prefix unique to this test process and test (`tag` is one letter).
fn prefix(tag: char) -> String {
    let p = format!("lt{tag}{}", std::process::id() % 100_000);
    assert!(p.len() <= 10);
    p
}

/// Runs a command and returns stdout, failing the test with stderr otherwise.
fn sh(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {program} {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Names from `ip netns list` ("NAME" or "NAME (id: N)").
fn netns_list() -> Vec<String> {
    sh("ip", &["netns", "list"])
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

fn leftovers(prefix: &str) -> Vec<String> {
    let dash = format!("{prefix}-");
    netns_list()
        .into_iter()
        .filter(|n| n.starts_with(&dash))
        .collect()
}

fn assert_clean(prefix: &str) {
    let left = leftovers(prefix);
    assert!(left.is_empty(), "namespaces left behind: {left:?}");
}

fn brief_addr(ns: &str) -> String {
    sh("ip", &["-n", ns, "-br", "addr"])
}

fn assert_topology(lab: &Lab) {
    assert!(lab.exists(), "lab {} should exist", lab.prefix());
    let names = netns_list();
    for ns in lab.namespaces() {
        assert!(names.contains(&ns), "{ns} missing from {names:?}");
    }

    let expect: [(String, &[&str]); 4] = [
        (
            lab.host(),
            &[
                "198.18.0.1/24",
                "2001:2::1/64",
                "198.18.1.1/24",
                "2001:2:0:1::1/64",
            ],
        ),
        (lab.c1(), &["198.18.0.2/24", "2001:2::2/64"]),
        (lab.c2(), &["198.18.0.3/24", "2001:2::3/64"]),
        (lab.r1(), &["198.18.1.2/24", "2001:2:0:1::2/64"]),
    ];
    for (ns, wanted) in &expect {
        let out = brief_addr(ns);
        for a in wanted.iter() {
            assert!(out.contains(a), "{ns} lacks {a}:\n{out}");
        }
    }
    let host = brief_addr(&lab.host());
    for dev in ["br0", "vc1", "vc2", "vr1"] {
        assert!(
            host.lines().any(|l| l.starts_with(dev)),
            "{dev} missing:\n{host}"
        );
    }
    let ports = sh(
        "ip",
        &["-n", &lab.host(), "-br", "link", "show", "master", "br0"],
    );
    assert!(
        ports.contains("vc1") && ports.contains("vc2"),
        "br0 ports: {ports}"
    );

    for (ns, gw4, gw6) in [
        (lab.c1(), "198.18.0.1", "2001:2::1"),
        (lab.c2(), "198.18.0.1", "2001:2::1"),
        (lab.r1(), "198.18.1.1", "2001:2:0:1::1"),
    ] {
        let r4 = sh("ip", &["-n", &ns, "-4", "route"]);
        assert!(
            r4.contains(&format!("198.18.0.0/15 via {gw4}")),
            "{ns} v4 routes:\n{r4}"
        );
        let r6 = sh("ip", &["-n", &ns, "-6", "route"]);
        assert!(
            r6.contains(&format!("2001:2::/48 via {gw6}")),
            "{ns} v6 routes:\n{r6}"
        );
    }
    // No namespace may have a way off the lab.
    for ns in lab.namespaces() {
        for family in ["-4", "-6"] {
            let d = sh("ip", &["-n", &ns, family, "route", "show", "default"]);
            assert!(d.trim().is_empty(), "{ns} has a default route: {d}");
        }
    }
}

#[test]
fn prefix_validation() {
    for good in ["hs", "a", "lab1", "abcdefghij", DEFAULT_PREFIX] {
        let lab = Lab::new(good).unwrap_or_else(|e| panic!("{good}: {e:#}"));
        assert_eq!(lab.prefix(), good);
        assert_eq!(
            lab.namespaces(),
            vec![
                format!("{good}-host"),
                format!("{good}-c1"),
                format!("{good}-c2"),
                format!("{good}-r1")
            ]
        );
    }
    for bad in [
        "",
        "abcdefghijk",
        "1lab",
        "Lab",
        "la-b",
        "la_b",
        "la b",
        "lab/x",
        "..",
        "é",
    ] {
        let err = Lab::new(bad).expect_err(bad);
        assert!(
            err.to_string().contains("invalid lab prefix"),
            "{bad}: {err}"
        );
    }
}

#[test]
fn traffic_kind_parsing_and_defaults() {
    assert_eq!("icmp".parse::<TrafficKind>().unwrap(), TrafficKind::Icmp);
    assert_eq!("icmp6".parse::<TrafficKind>().unwrap(), TrafficKind::Icmp6);
    assert_eq!("UDP".parse::<TrafficKind>().unwrap(), TrafficKind::Udp);
    assert_eq!("tcp".parse::<TrafficKind>().unwrap(), TrafficKind::Tcp);
    let err = "sctp".parse::<TrafficKind>().unwrap_err();
    assert!(err.to_string().contains("icmp, icmp6, udp, tcp"), "{err}");
    for kind in TrafficKind::ALL {
        assert_eq!(kind.to_string().parse::<TrafficKind>().unwrap(), kind);
    }
    let opts = TrafficOpts::default();
    assert_eq!(opts.kinds, TrafficKind::ALL.to_vec());
    assert_eq!(opts.interval, Duration::from_millis(500));
    assert_eq!(opts.rounds, None);
    assert_eq!(opts.duration, None);
}

#[test]
fn addresses_stay_in_lab_ranges() {
    let all = [
        addr::BR0_V4,
        addr::C1_V4,
        addr::C2_V4,
        addr::HOST_R1_V4,
        addr::R1_V4,
        addr::BR0_V6,
        addr::C1_V6,
        addr::C2_V6,
        addr::HOST_R1_V6,
        addr::R1_V6,
    ];
    for a in all {
        let ip: IpAddr = a.parse().unwrap();
        assert!(addr::is_lab_addr(&ip), "{a} outside the lab ranges");
    }
    for outside in [
        "198.20.0.1",
        "198.17.255.255",
        "10.0.0.1",
        "127.0.0.1",
        "2001:3::1",
        "2001:2:1::1",
        "::1",
    ] {
        let ip: IpAddr = outside.parse().unwrap();
        assert!(!addr::is_lab_addr(&ip), "{outside} wrongly inside");
    }
    assert_ne!(UDP_PORT, TCP_PORT);
}

#[test]
fn traffic_on_missing_lab_is_an_error() {
    let lab = Lab::new(&prefix('m')).unwrap();
    assert!(!lab.exists());
    let stop = AtomicBool::new(false);
    let err = lab
        .traffic(&TrafficOpts::default(), &stop)
        .expect_err("no lab");
    assert!(err.to_string().contains("not up"), "{err:#}");
    // Nothing to remove is fine.
    lab.down().unwrap();
}

#[test]
fn up_builds_the_topology() {
    require_root();
    let p = prefix('u');
    {
        let guard = LabGuard::up(&p).unwrap();
        let lab = &guard.lab;
        assert_topology(lab);

        // Forwarding only in the host namespace.
        let fwd = |ns: &str| {
            in_netns(ns, || {
                let v4 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
                let v6 = std::fs::read_to_string("/proc/sys/net/ipv6/conf/all/forwarding").unwrap();
                (v4.trim().to_owned(), v6.trim().to_owned())
            })
            .unwrap()
        };
        assert_eq!(fwd(&lab.host()), ("1".into(), "1".into()));
        assert_eq!(fwd(&lab.c1()), ("0".into(), "0".into()));

        let status = lab.status().unwrap();
        assert!(status.is_up());
        let text = status.to_string();
        for ns in lab.namespaces() {
            assert!(text.contains(&ns), "status lacks {ns}:\n{text}");
        }
        for a in [
            "198.18.0.1/24",
            "198.18.0.2/24",
            "198.18.0.3/24",
            "198.18.1.2/24",
        ] {
            assert!(text.contains(a), "status lacks {a}:\n{text}");
        }
        for ns in lab.namespaces() {
            let ino = lab.netns_inode(&ns).unwrap().to_string();
            assert!(text.contains(&ino), "status lacks inode {ino}:\n{text}");
        }
    }
    assert_clean(&p);
    let status = Lab::new(&p).unwrap().status().unwrap();
    assert!(!status.is_up());
    assert!(status.to_string().contains("(absent)"));
}

#[test]
fn up_and_down_are_idempotent() {
    require_root();
    let p = prefix('i');
    let lab = Lab::new(&p).unwrap();
    // A namespace that merely shares the prefix must survive `down`.
    let decoy = format!("{p}-other");
    sh("ip", &["netns", "add", &decoy]);

    let result = catch_unwind(AssertUnwindSafe(|| {
        lab.up().unwrap();
        let first = lab.netns_inode(&lab.c1()).unwrap();
        lab.up().unwrap();
        assert_topology(&lab);
        assert_ne!(
            first,
            lab.netns_inode(&lab.c1()).unwrap(),
            "second up should rebuild"
        );

        // A partly present lab is rebuilt whole.
        sh("ip", &["netns", "del", &lab.c2()]);
        assert!(!lab.exists());
        lab.up().unwrap();
        assert_topology(&lab);

        lab.down().unwrap();
        assert!(!lab.exists());
        lab.down().unwrap();
        let names = netns_list();
        for ns in lab.namespaces() {
            assert!(!names.contains(&ns), "{ns} still present");
        }
        assert!(names.contains(&decoy), "down removed {decoy}");
    }));
    let _ = lab.down();
    sh("ip", &["netns", "del", &decoy]);
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
    assert_clean(&p);
}

#[test]
fn guard_removes_lab_on_drop_and_on_panic() {
    require_root();
    let p = prefix('g');
    {
        let guard = LabGuard::up(&p).unwrap();
        assert!(guard.lab.exists());
    }
    assert_clean(&p);

    let result = catch_unwind(AssertUnwindSafe(|| {
        let guard = LabGuard::up(&p).unwrap();
        assert!(guard.lab.exists());
        panic!("deliberate panic while a LabGuard is alive");
    }));
    assert!(result.is_err(), "the closure should have panicked");
    assert_clean(&p);
}

#[test]
fn traffic_all_kinds_succeeds() {
    require_root();
    let p = prefix('t');
    {
        let guard = LabGuard::up(&p).unwrap();
        let opts = TrafficOpts {
            rounds: Some(2),
            interval: Duration::from_millis(50),
            ..TrafficOpts::default()
        };
        let stop = AtomicBool::new(false);
        let mut seen = Vec::new();
        let report = guard
            .lab
            .traffic_with(&opts, &stop, |r| seen.push(r.rounds))
            .unwrap();
        assert_eq!(seen, vec![1, 2]);
        assert_eq!(report.rounds, 2, "{report}");
        // Per round: two IPv4 pings (bridged and routed) and one IPv6 ping.
        assert_eq!(report.icmp_ok, 6, "{report}");
        assert_eq!(report.udp_ok, 2, "{report}");
        assert_eq!(report.tcp_ok, 2, "{report}");
        assert_eq!(report.icmp_fail, 0, "{report}");
        assert_eq!(report.udp_fail, 0, "{report}");
        assert_eq!(report.tcp_fail, 0, "{report}");
        assert!(report.to_string().contains("rounds 2"), "{report}");

        // Servers were stopped: the ports can be bound again at once.
        let report = guard
            .lab
            .traffic(
                &TrafficOpts {
                    rounds: Some(1),
                    interval: Duration::ZERO,
                    kinds: vec![TrafficKind::Udp, TrafficKind::Tcp, TrafficKind::Udp],
                    duration: None,
                },
                &stop,
            )
            .unwrap();
        assert_eq!(
            (report.rounds, report.udp_ok, report.tcp_ok, report.icmp_ok),
            (1, 1, 1, 0),
            "{report}"
        );
        assert_eq!(report.failures(), 0, "{report}");
    }
    assert_clean(&p);
}

#[test]
fn traffic_stops_on_flag_and_duration() {
    require_root();
    let p = prefix('s');
    {
        let guard = LabGuard::up(&p).unwrap();
        let lab = &guard.lab;

        // Stop flag raised from another thread ends an unbounded run.
        let stop = Arc::new(AtomicBool::new(false));
        let raiser = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(700));
                stop.store(true, Ordering::Relaxed);
            })
        };
        let started = Instant::now();
        let opts = TrafficOpts {
            interval: Duration::from_millis(100),
            ..TrafficOpts::default()
        };
        let report = lab.traffic(&opts, &stop).unwrap();
        raiser.join().unwrap();
        let took = started.elapsed();
        assert!(took < Duration::from_secs(3), "took {took:?}");
        assert!(report.rounds >= 1, "{report}");
        assert_eq!(report.failures(), 0, "{report}");

        // Duration ends a run, even with a long interval.
        let stop = AtomicBool::new(false);
        let started = Instant::now();
        let report = lab
            .traffic(
                &TrafficOpts {
                    duration: Some(Duration::from_millis(300)),
                    interval: Duration::from_secs(10),
                    ..TrafficOpts::default()
                },
                &stop,
            )
            .unwrap();
        let took = started.elapsed();
        assert!(took < Duration::from_secs(3), "took {took:?}");
        assert_eq!(report.rounds, 1, "{report}");

        // A flag already raised sends nothing.
        let stop = AtomicBool::new(true);
        let report = lab.traffic(&TrafficOpts::default(), &stop).unwrap();
        assert_eq!(report.rounds, 0);
        assert_eq!(report.successes() + report.failures(), 0);
    }
    assert_clean(&p);
}

#[test]
fn netns_inodes_are_distinct_and_match_the_kernel() {
    require_root();
    let p = prefix('n');
    {
        let guard = LabGuard::up(&p).unwrap();
        let lab = &guard.lab;
        let own = std::fs::metadata("/proc/thread-self/ns/net").unwrap();
        let mut seen = HashSet::new();
        for ns in lab.namespaces() {
            let ino = lab.netns_inode(&ns).unwrap();
            assert_ne!(
                ino,
                std::os::unix::fs::MetadataExt::ino(&own),
                "{ns} is the test's own netns"
            );
            assert!(seen.insert(ino), "{ns} shares inode {ino}");
            let inside = in_netns(&ns, || {
                std::os::unix::fs::MetadataExt::ino(
                    &std::fs::metadata("/proc/thread-self/ns/net").unwrap(),
                )
            })
            .unwrap();
            assert_eq!(inside, ino, "{ns}: thread inside sees another netns");
        }
        assert!(lab.netns_inode(&format!("{p}-none")).is_err());
        assert!(lab.netns_inode("../etc").is_err());
        assert!(in_netns(&format!("{p}-none"), || ()).is_err());
        let err = in_netns(&lab.c1(), || panic!("boom")).expect_err("panic");
        assert!(err.to_string().contains("boom"), "{err:#}");
    }
    assert_clean(&p);
}
