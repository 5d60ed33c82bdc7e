//! Command-line interface (clap). Parsing only: turning arguments into
//! options and validating them. Usage errors exit with status 2.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

const TRACE_EXAMPLES: &str = "\
Examples:
  # Everything, one line per visit, until Ctrl-C
  sudo hopscope trace

  # Follow one command's packets (replies included) and exit with its status
  sudo hopscope trace -- ip netns exec hs-c1 ping -c 3 198.18.0.3

  # JSON lines for jq: which interfaces did the echo requests cross?
  sudo hopscope trace --json --duration 5 | jq -c 'select(.type==\"hop\" and .role==\"request\") | [.netns,.ifname,.hook]'

  # Every hook instead of one line per visit, first 10 packets only
  sudo hopscope trace --all-hooks --packets 10

  # The path as a picture: namespaces, veth wires, bridges, request and reply edges
  sudo hopscope trace --dot path.dot -- ip netns exec hs-c1 ping -c 3 198.18.0.3 && dot -Tsvg path.dot > path.svg

  # tcpdump's filter language, evaluated in the kernel: only TCP SYNs
  sudo hopscope trace --filter 'tcp[tcpflags] & tcp-syn != 0'

  # Packets to one host, and (--flow) their replies too
  sudo hopscope trace --flow 'dst host 198.18.0.3'

  # Only what crosses eth0 inside one namespace
  sudo hopscope trace --netns hs-c1 --iface eth0

  # Every hop's bytes for Wireshark: the same echo on each interface it crossed
  sudo hopscope trace --pcapng path.pcapng -- ip netns exec hs-c1 ping -c 3 198.18.0.3 && tshark -r path.pcapng";

const LAB_EXAMPLES: &str = "\
Examples:
  sudo hopscope lab up                 # build the demo topology (prefix hs)
  sudo hopscope lab status
  sudo hopscope lab traffic --rounds 3 # ICMP, ICMPv6, UDP and TCP between the namespaces
  sudo hopscope lab down";

const MAIN_EXAMPLES: &str = "\
Without a subcommand, hopscope opens the explorer on live traffic.

Examples:
  sudo hopscope                        # the explorer: flows → packets → hops (? for keys)
  sudo hopscope --record run.hsrec     # ... and save the events for later
  hopscope replay run.hsrec            # the explorer on a recording (no root needed)
  sudo hopscope demo                   # lab + traffic + explorer, lab removed on exit
  sudo hopscope trace -- ip netns exec hs-c1 ping -c 3 198.18.0.3
  sudo hopscope trace --json --duration 5
  sudo hopscope --filter 'udp and not port 53'   # the explorer, filtered in the kernel (f changes it)
  sudo hopscope --netns hs-r1 --flow 'icmp'";

#[derive(Debug, Parser)]
#[command(name = "hopscope", version, about = "Where did my packet go? Hop by hop across namespaces, veth pairs and bridges, live.", after_help = MAIN_EXAMPLES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Cmd>,
    #[command(flatten)]
    pub explore: ExploreArgs,
}

/// Options of the explorer (no subcommand).
#[derive(Debug, Args, Clone)]
pub struct ExploreArgs {
    /// Save the event stream to FILE (mode 0600) for `hopscope replay`.
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
    /// Quit after this many seconds.
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    pub duration: Option<Duration>,
    /// Overwrite an existing --record file (never through a symbolic link).
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub tracer: TracerArgs,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Trace packets and print one line (or JSON object) per hop.
    #[command(after_help = TRACE_EXAMPLES)]
    Trace(Box<TraceArgs>),
    /// Build, inspect, exercise or remove the demo topology of namespaces.
    #[command(after_help = LAB_EXAMPLES)]
    Lab {
        #[command(subcommand)]
        action: LabAction,
    },
    /// Bring the lab up, run its traffic, explore it (or print it), and clean up.
    #[command(after_help = DEMO_EXAMPLES)]
    Demo(DemoArgs),
    /// Open the explorer on a recording made with --record (no root, no BPF).
    #[command(after_help = REPLAY_EXAMPLES)]
    Replay(ReplayArgs),
}

const DEMO_EXAMPLES: &str = "\
Examples:
  sudo hopscope demo                   # the explorer on the lab's live traffic; q quits
  sudo hopscope demo --text --duration 5
  sudo hopscope demo --json --duration 5 | jq -c 'select(.type==\"end\")'
  sudo hopscope demo --record demo.hsrec && hopscope replay demo.hsrec";

const REPLAY_EXAMPLES: &str = "\
Examples:
  sudo hopscope trace --record run.hsrec --duration 10 > /dev/null
  hopscope replay run.hsrec
  sudo hopscope trace --snaplen 128 --record run.hsrec --duration 10 > /dev/null
  hopscope replay run.hsrec --pcapng run.pcapng   # every hop's bytes, for Wireshark";

#[derive(Debug, Args, Clone)]
pub struct ReplayArgs {
    /// A file written by `hopscope --record`, `hopscope demo --record` or `hopscope trace --record`.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Packets kept for display (about 1 KiB each).
    #[arg(long, default_value_t = 65_536, value_parser = clap::value_parser!(u32).range(1024..=4_194_304))]
    pub max_packets: u32,
    /// Flows kept for display (about 1 KiB each, besides their packets).
    #[arg(long, default_value_t = 16_384, value_parser = clap::value_parser!(u32).range(16..=4_194_304))]
    pub max_flows: u32,
    /// Instead of the explorer, write every hop of the recording's packets to FILE as
    /// pcapng (mode 0600); the recording needs their bytes (recorded with --snaplen).
    #[arg(long, value_name = "FILE")]
    pub pcapng: Option<PathBuf>,
    /// Overwrite an existing --pcapng file (never through a symbolic link).
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args, Clone)]
pub struct TracerArgs {
    /// Ring buffer size in bytes (power of two, at least 4096). Accepts K/M suffixes.
    #[arg(long, default_value = "16M", value_parser = parse_ring_size)]
    pub ring_size: u32,
    /// Packets followed at once (kernel identity map and userspace). Each kept packet
    /// costs about 1 KiB (measured: examples/cap_memory.rs): 64 MiB at the default.
    #[arg(long, default_value_t = 65_536, value_parser = clap::value_parser!(u32).range(1024..=4_194_304))]
    pub max_packets: u32,
    /// Flows remembered before the least recently seen are forgotten. Each costs about
    /// 1 KiB besides its packets (measured: examples/cap_memory.rs): 16 MiB at the default.
    #[arg(long, default_value_t = 16_384, value_parser = clap::value_parser!(u32).range(16..=4_194_304))]
    pub max_flows: u32,
    /// Follow only packets matching EXPR, in tcpdump's pcap-filter syntax, tested in the
    /// kernel where each packet is first seen (then followed on every hop, NAT or not).
    #[arg(
        long,
        value_name = "EXPR",
        conflicts_with = "flow",
        help_heading = "Filtering"
    )]
    pub filter: Option<String>,
    /// Like --filter, but follow both directions of every flow whose first packet matched.
    #[arg(long, value_name = "EXPR", help_heading = "Filtering")]
    pub flow: Option<String>,
    /// Look only at hops in this network namespace: a name from `ip netns`, `host`, a path
    /// (/proc/PID/ns/net, a bind mount) or an inode. Repeatable.
    #[arg(long, value_name = "NAME|PATH|INODE", help_heading = "Filtering")]
    pub netns: Vec<String>,
    /// Look only at hops on interfaces with this name (in any namespace). Repeatable.
    #[arg(long, value_name = "NAME", help_heading = "Filtering")]
    pub iface: Vec<String>,
    /// Look only at hops in the network namespace of process PID. Repeatable.
    #[arg(long, value_name = "PID", help_heading = "Filtering")]
    pub pid: Vec<u32>,
    /// Copy the first N bytes (at most 2048) of each packet where it is first seen and where
    /// NAT or a tunnel changes its headers, for pcapng. Default: 128 with --pcapng, else none.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=2048))]
    pub snaplen: Option<u32>,
}

#[derive(Debug, Args, Clone)]
pub struct TraceArgs {
    /// JSON lines instead of text (schema in README).
    #[arg(long)]
    pub json: bool,
    /// Print every hook event instead of one line per visit.
    #[arg(long)]
    pub all_hooks: bool,
    /// Stop after this many seconds.
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    pub duration: Option<Duration>,
    /// Stop after this many packets were printed.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub packets: Option<u64>,
    /// Also save the event stream to FILE (mode 0600) for `hopscope replay`.
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
    /// Show namespace inodes instead of names, and skip link lookups.
    #[arg(long)]
    pub inodes: bool,
    /// Add the kernel stack (symbolized) of every drop that is not routine.
    #[arg(long)]
    pub drop_stack: bool,
    /// At exit, write the hop graph of what was printed to FILE (Graphviz DOT).
    #[arg(long, value_name = "FILE")]
    pub dot: Option<PathBuf>,
    /// Write the trace (text or JSON lines) to FILE, mode 0600, instead of stdout.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Write every hop of the packets printed to FILE as pcapng (mode 0600), for Wireshark:
    /// the same packet on each interface it crossed, its packet id in `frame.packet_id`.
    #[arg(long, value_name = "FILE")]
    pub pcapng: Option<PathBuf>,
    /// Overwrite existing output files (-o, --record, --dot, --pcapng); a symbolic link is never followed.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub tracer: TracerArgs,
    /// Run COMMAND, follow only the flows its process tree starts, and exit with its status.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

#[derive(Debug, Args, Clone)]
pub struct LabArgs {
    /// Name prefix of the lab's namespaces (PREFIX-host, PREFIX-c1, PREFIX-c2, PREFIX-r1).
    #[arg(long, default_value = "hs")]
    pub prefix: String,
}

#[derive(Debug, Subcommand)]
pub enum LabAction {
    /// Create the namespaces, bridge, veth pairs and routes (replaces an existing lab).
    Up(LabArgs),
    /// Remove the lab's namespaces.
    Down(LabArgs),
    /// Show the lab's namespaces, their inodes and addresses.
    Status(LabArgs),
    /// Send ICMP, ICMPv6, UDP and TCP between the lab's namespaces.
    Traffic(LabTrafficArgs),
}

#[derive(Debug, Args, Clone)]
pub struct LabTrafficArgs {
    #[command(flatten)]
    pub lab: LabArgs,
    /// Rounds to run (default: until Ctrl-C or --duration).
    #[arg(long)]
    pub rounds: Option<u64>,
    /// Stop after this many seconds.
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    pub duration: Option<Duration>,
    /// Pause between rounds, in milliseconds.
    #[arg(long, default_value_t = 500)]
    pub interval_ms: u64,
    /// Kinds of traffic, comma separated: icmp, icmp6, udp, tcp.
    #[arg(long, value_delimiter = ',', default_value = "icmp,icmp6,udp,tcp")]
    pub kinds: Vec<String>,
}

#[derive(Debug, Args, Clone)]
pub struct DemoArgs {
    #[command(flatten)]
    pub lab: LabArgs,
    /// How long to run, in seconds (0: until quit; default: until quit in the
    /// explorer, 10 s with --text or --json).
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    pub duration: Option<Duration>,
    /// Print text lines instead of opening the explorer.
    #[arg(long, conflicts_with = "json")]
    pub text: bool,
    /// Print JSON lines instead of opening the explorer.
    #[arg(long)]
    pub json: bool,
    /// Save the event stream to FILE (mode 0600) for `hopscope replay`.
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
    /// Keep the lab after the demo ends.
    #[arg(long)]
    pub keep: bool,
    /// Overwrite an existing --record file (never through a symbolic link).
    #[arg(long)]
    pub force: bool,
}

fn parse_secs(s: &str) -> Result<Duration, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if !v.is_finite() || !(0.0..=1e9).contains(&v) {
        return Err(format!("`{s}` is not a valid number of seconds"));
    }
    Ok(Duration::from_secs_f64(v))
}

pub fn parse_ring_size(s: &str) -> Result<u32, String> {
    let t = s.trim();
    let (num, mult) = match t.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&t[..t.len() - 1], 1u64 << 10),
        Some('M') => (&t[..t.len() - 1], 1u64 << 20),
        Some('G') => (&t[..t.len() - 1], 1u64 << 30),
        _ => (t, 1),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size (e.g. 4096, 256K, 16M)"))?;
    let bytes = n
        .checked_mul(mult)
        .ok_or_else(|| format!("`{s}` is too large"))?;
    if bytes < 4096 || !bytes.is_power_of_two() || bytes > (1 << 30) {
        return Err(format!(
            "ring size must be a power of two between 4K and 1G, got {bytes}"
        ));
    }
    Ok(bytes as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_sizes() {
        assert_eq!(parse_ring_size("16M"), Ok(16 << 20));
        assert_eq!(parse_ring_size("4096"), Ok(4096));
        assert!(parse_ring_size("3000").is_err());
        assert!(parse_ring_size("12K").is_err());
        assert!(parse_ring_size("x").is_err());
        assert!(parse_ring_size("2G").is_err());
    }

    #[test]
    fn command_after_double_dash() {
        let cli =
            Cli::try_parse_from(["hopscope", "trace", "--json", "--", "ping", "-c", "1", "x"])
                .unwrap();
        let Some(Cmd::Trace(t)) = cli.command else {
            panic!("not trace")
        };
        assert!(t.json);
        assert_eq!(t.command, ["ping", "-c", "1", "x"]);
    }

    #[test]
    fn bad_flags_are_usage_errors() {
        let e = Cli::try_parse_from(["hopscope", "trace", "--duration", "soon"]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        let e = Cli::try_parse_from(["hopscope", "trace", "--bogus"]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        let e = Cli::try_parse_from(["hopscope", "demo", "--text", "--json"]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        let e = Cli::try_parse_from(["hopscope", "replay"]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
    }
}

#[cfg(test)]
mod explorer_tests {
    use super::*;

    #[test]
    fn no_subcommand_is_the_explorer() {
        let cli =
            Cli::try_parse_from(["hopscope", "--record", "x.hsrec", "--max-flows", "64"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(
            cli.explore.record.as_deref(),
            Some(std::path::Path::new("x.hsrec"))
        );
        assert_eq!(cli.explore.tracer.max_flows, 64);
    }
}
