//! Which packets are followed, decided in the kernel.
//!
//! - [`expr`]: pcap-filter expressions (tcpdump's language) compiled by
//!   libpcap into classic BPF, once for Ethernet framing and once for raw IP.
//!   The programs in `bpf/filter.h` interpret them at a packet's first
//!   sighting; a packet that matched is followed on every later hop, NAT or
//!   not.
//! - [`scope`]: `--netns`, `--iface` and `--pid`, resolved to what the
//!   kernel compares (namespace inodes, interface names).

pub mod expr;
pub mod scope;

pub use expr::{compile_bounded, Compilation, FilterError, PacketFilter};
pub use scope::Scope;
