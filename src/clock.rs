//! Time as hopscope reads and writes it: CLOCK_MONOTONIC (the clock of
//! `bpf_ktime_get_ns`, so events and "now" compare) and durations for
//! people (`850ns`, `12.3µs`).

use std::fmt::Write as _;

/// CLOCK_MONOTONIC in ns, the clock of bpf_ktime_get_ns.
pub fn monotonic_ns() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
        .unwrap_or(0)
}

/// CLOCK_REALTIME − CLOCK_MONOTONIC now, in ns: added to an event's time,
/// its wall-clock time (pcapng timestamps).
pub fn realtime_offset_ns() -> i64 {
    let ns = |c| {
        nix::time::clock_gettime(c)
            .map(|t| t.tv_sec() * 1_000_000_000 + t.tv_nsec())
            .unwrap_or(0)
    };
    ns(nix::time::ClockId::CLOCK_REALTIME) - ns(nix::time::ClockId::CLOCK_MONOTONIC)
}

/// Human duration: `850ns`, `12.3µs`, `4.56ms`, `1.20s`.
pub fn fmt_duration(ns: u64, out: &mut String) {
    let _ = if ns < 1_000 {
        write!(out, "{ns}ns")
    } else if ns < 1_000_000 {
        write!(out, "{:.1}µs", ns as f64 / 1e3)
    } else if ns < 1_000_000_000 {
        write!(out, "{:.2}ms", ns as f64 / 1e6)
    } else {
        write!(out, "{:.2}s", ns as f64 / 1e9)
    };
}
