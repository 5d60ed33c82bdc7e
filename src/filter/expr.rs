//! pcap-filter expressions, compiled by libpcap (`pcap_compile` on a dead
//! handle), never re-implemented.
//!
//! Facts:
//! - An expression is compiled twice: for DLT_EN10MB (Ethernet and
//!   loopback devices, as tcpdump sees them) and for DLT_RAW (devices
//!   without a link-layer header: tun, ipip, wireguard). Some expressions
//!   cannot apply to raw IP (`arp`, `ether host ...`): libpcap refuses them
//!   for DLT_RAW, and such a filter rejects every packet on those devices,
//!   as tcpdump would capture nothing there.
//! - libpcap emits forward jumps only, so the kernel interpreter's loop is
//!   bounded by the program length; [`PacketFilter::compile`] still checks
//!   every jump and opcode before anything reaches the kernel.
//! - The netmask given to libpcap is 0 (unknown): only `ip broadcast` needs
//!   it, and it then fails with libpcap's own message.

use std::fmt;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

/// Longest program the kernel side holds (`HS_FILTER_MAX_INSNS`).
pub const MAX_INSNS: usize = 512;

/// Longest expression handed to libpcap. Its optimizer is superlinear:
/// 100 `port N or ...` terms (1.1 KB) take 0.4 s here, 200 (2.3 KB) 2 s,
/// 500 take 17 s; and an expression much over 1 KB compiles to more than
/// [`MAX_INSNS`] anyway.
pub const MAX_EXPR_BYTES: usize = 2048;

const DLT_EN10MB: i32 = 1;
const DLT_RAW: i32 = 12;

/// One classic BPF instruction (`struct bpf_insn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// A filter ready for the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketFilter {
    /// The expression as the user wrote it.
    pub expr: String,
    /// Also follow the other packets (both directions) of every flow a
    /// matching packet started.
    pub whole_flows: bool,
    /// The program for Ethernet framing.
    pub ether: Vec<Insn>,
    /// The program for raw IP; empty when libpcap refused the expression
    /// for raw IP (it then rejects every packet there).
    pub raw: Vec<Insn>,
}

/// An expression libpcap (or the kernel's limits) refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct FilterError {
    pub expr: String,
    pub message: String,
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid filter `{}`: {}", self.expr, self.message)
    }
}

impl PacketFilter {
    /// Compiles `expr`. An empty (or blank) expression is not a filter:
    /// `Ok(None)`, every packet is followed.
    pub fn compile(expr: &str, whole_flows: bool) -> Result<Option<PacketFilter>, FilterError> {
        let expr = expr.trim();
        if expr.is_empty() {
            return Ok(None);
        }
        if expr.len() > MAX_EXPR_BYTES {
            let mut shown = expr.to_owned();
            let mut cut = 60;
            while !shown.is_char_boundary(cut) {
                cut -= 1;
            }
            shown.truncate(cut);
            shown.push_str(" …");
            return Err(FilterError {
                expr: shown,
                message: format!(
                    "the expression is {} bytes; hopscope compiles at most {MAX_EXPR_BYTES} \
                     (libpcap's optimizer takes seconds to minutes on longer ones)",
                    expr.len()
                ),
            });
        }
        let err = |message: String| FilterError {
            expr: expr.to_owned(),
            message,
        };
        let ether = compile_for(expr, DLT_EN10MB).map_err(err)?;
        let raw = compile_for(expr, DLT_RAW).unwrap_or_default();
        Ok(Some(PacketFilter {
            expr: expr.to_owned(),
            whole_flows,
            ether,
            raw,
        }))
    }

    /// How the filter is described (status bar, recordings, summaries).
    pub fn label(&self) -> String {
        if self.whole_flows {
            format!("flows of `{}`", self.expr)
        } else {
            format!("`{}`", self.expr)
        }
    }
}

/// Longest libpcap may take over one expression before it is refused.
pub const COMPILE_TIME_LIMIT: Duration = Duration::from_secs(3);

/// One compilation on a thread of its own, so that nobody waits on
/// libpcap longer than they choose (the explorer keeps drawing, a signal
/// still ends the process at once). libpcap cannot be interrupted: a
/// compilation that overruns is abandoned, its result dropped, and the
/// expression refused; [`MAX_EXPR_BYTES`] bounds how long it goes on.
pub struct Compilation {
    rx: Receiver<Result<Option<PacketFilter>, FilterError>>,
    started: Instant,
    expr: String,
}

impl Compilation {
    pub fn start(expr: &str, whole_flows: bool) -> Compilation {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let owned = expr.to_owned();
        let spawned = std::thread::Builder::new()
            .name("hopscope-filter".into())
            .spawn(move || {
                let _ = tx.send(PacketFilter::compile(&owned, whole_flows));
            });
        if let Err(e) = spawned {
            let (tx, rx2) = crossbeam_channel::bounded(1);
            let _ = tx.send(Err(FilterError {
                expr: expr.to_owned(),
                message: format!("cannot start the compiler thread: {e}"),
            }));
            return Compilation {
                rx: rx2,
                started: Instant::now(),
                expr: expr.to_owned(),
            };
        }
        Compilation {
            rx,
            started: Instant::now(),
            expr: expr.to_owned(),
        }
    }

    /// Where the result arrives (for `select!`).
    pub fn receiver(&self) -> &Receiver<Result<Option<PacketFilter>, FilterError>> {
        &self.rx
    }

    /// The refusal once `limit` has passed without a result.
    pub fn overrun(&self, limit: Duration) -> Option<FilterError> {
        (self.started.elapsed() >= limit).then(|| self.refusal(limit))
    }

    fn refusal(&self, limit: Duration) -> FilterError {
        FilterError {
            expr: self.expr.clone(),
            message: format!(
                "libpcap did not finish compiling it within {} s; \
                 try a shorter expression (a net instead of many hosts, a portrange)",
                limit.as_secs_f64()
            ),
        }
    }

    /// Waits at most `limit` (from the start) for the result.
    pub fn wait(self, limit: Duration) -> Result<Option<PacketFilter>, FilterError> {
        let left = limit.saturating_sub(self.started.elapsed());
        match self.rx.recv_timeout(left) {
            Ok(r) => r,
            Err(_) => Err(self.refusal(limit)),
        }
    }
}

/// [`PacketFilter::compile`] within [`COMPILE_TIME_LIMIT`].
pub fn compile_bounded(expr: &str, whole_flows: bool) -> Result<Option<PacketFilter>, FilterError> {
    Compilation::start(expr, whole_flows).wait(COMPILE_TIME_LIMIT)
}

/// libpcap's message without the crate's "libpcap error: " prefix.
fn pcap_message(e: ::pcap::Error) -> String {
    match e {
        ::pcap::Error::PcapError(m) => m,
        other => other.to_string(),
    }
}

fn compile_for(expr: &str, linktype: i32) -> Result<Vec<Insn>, String> {
    let dead = ::pcap::Capture::dead(::pcap::Linktype(linktype)).map_err(pcap_message)?;
    let prog = dead.compile(expr, true).map_err(pcap_message)?;
    // The crate exposes instructions only through Display ("code jt jf k"):
    // parsing that keeps this module free of unsafe.
    let insns = prog
        .get_instructions()
        .iter()
        .map(|i| parse_insn(&i.to_string()))
        .collect::<Option<Vec<Insn>>>()
        .ok_or_else(|| "libpcap produced an instruction hopscope cannot read".to_owned())?;
    check(&insns)?;
    Ok(insns)
}

fn parse_insn(s: &str) -> Option<Insn> {
    let mut it = s.split_whitespace();
    let insn = Insn {
        code: it.next()?.parse().ok()?,
        jt: it.next()?.parse().ok()?,
        jf: it.next()?.parse().ok()?,
        k: it.next()?.parse().ok()?,
    };
    it.next().is_none().then_some(insn)
}

/// What the kernel interpreter supports: the classic BPF that libpcap
/// emits for a dead handle (no Linux ancillary loads), forward jumps that
/// stay inside the program, and at most [`MAX_INSNS`] instructions.
pub fn check(insns: &[Insn]) -> Result<(), String> {
    if insns.is_empty() {
        return Err("empty program".to_owned());
    }
    if insns.len() > MAX_INSNS {
        return Err(format!(
            "the expression compiles to {} instructions; the kernel side holds at most {MAX_INSNS}",
            insns.len()
        ));
    }
    for (pc, i) in insns.iter().enumerate() {
        let left = insns.len() - pc - 1;
        let class = i.code & 0x07;
        let ok = match class {
            // LD: IMM ABS IND MEM LEN; LDX: IMM MEM LEN MSH.
            0x00 => matches!(i.code & 0xe0, 0x00 | 0x20 | 0x40 | 0x60 | 0x80),
            0x01 => matches!(i.code & 0xe0, 0x00 | 0x60 | 0x80 | 0xa0),
            0x02 | 0x03 => i.k < 16,
            0x04 => (i.code & 0xf0) <= 0xa0,
            0x05 => match i.code & 0xf0 {
                0x00 => (i.k as usize) < left,
                0x10..=0x40 => usize::from(i.jt) < left && usize::from(i.jf) < left,
                _ => false,
            },
            0x06 => true,
            _ => matches!(i.code & 0xf8, 0x00 | 0x80),
        };
        if !ok {
            return Err(format!(
                "instruction {pc} ({} {} {} {}) is not supported",
                i.code, i.jt, i.jf, i.k
            ));
        }
    }
    if insns.last().is_some_and(|i| i.code & 0x07 != 0x06) {
        return Err("the program does not end with a return".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiles_for_both_framings() {
        let f = PacketFilter::compile("icmp", false).unwrap().unwrap();
        // ldh [12]; jeq #0x800 ...: Ethernet starts with the ethertype test.
        assert_eq!(
            f.ether[0],
            Insn {
                code: 0x28,
                jt: 0,
                jf: 0,
                k: 12
            }
        );
        // Raw IP starts with the version nibble.
        assert_eq!(f.raw[0].code, 0x30);
        assert_eq!(f.raw[0].k, 0);
        assert_eq!(f.label(), "`icmp`");
    }

    #[test]
    fn arp_rejects_everything_on_raw_devices() {
        let f = PacketFilter::compile("arp", false).unwrap().unwrap();
        assert!(!f.ether.is_empty());
        assert!(f.raw.is_empty());
    }

    #[test]
    fn empty_is_no_filter() {
        assert_eq!(PacketFilter::compile("  ", true), Ok(None));
    }

    #[test]
    fn libpcap_message_is_kept() {
        let e = PacketFilter::compile("tcp port", false).unwrap_err();
        assert_eq!(e.expr, "tcp port");
        assert!(e.message.contains("syntax error"), "{e}");
        assert!(e.to_string().starts_with("invalid filter `tcp port`: "));
        let e = PacketFilter::compile("net 198.18.0.0/33", false).unwrap_err();
        assert!(e.message.contains("mask length"), "{e}");
    }

    #[test]
    fn rejects_what_the_kernel_cannot_run() {
        let ret = Insn {
            code: 0x06,
            jt: 0,
            jf: 0,
            k: 0,
        };
        let jump_out = Insn {
            code: 0x15,
            jt: 5,
            jf: 0,
            k: 1,
        };
        assert!(check(&[jump_out, ret]).is_err());
        assert!(check(&[ret]).is_ok());
        assert!(check(&[]).is_err());
        assert!(check(&vec![ret; MAX_INSNS + 1]).is_err());
        let no_ret = Insn {
            code: 0x00,
            jt: 0,
            jf: 0,
            k: 1,
        };
        assert!(check(&[no_ret]).is_err());
    }
}
