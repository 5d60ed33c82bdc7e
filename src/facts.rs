//! Facts: what is known about the places and code packets cross, as the
//! sinks receive it. Namespace names, links, kernel symbols, drop stacks and
//! the kernel's drop reason names are looked up at one edge
//! (`pipeline::facts`, live) or read from a recording's frames (replay), and
//! handed to every sink as [`Fact`]s; a sink only reads the facts it was
//! given ([`FactTable`] keeps them for the line printers, the explorer's
//! model keeps its own).

use rustc_hash::FxHashMap;

use crate::correlate::{Annotation, Flow, HopContext, Packet, Sink};
use crate::event::drop_reason::DropReasons;
use crate::event::record::Tick;
use crate::event::snapshot::Snapshot;
use crate::event::HopEvent;
use crate::topology::links::LinkInfo;
use crate::topology::TopologyView;

/// Entries a [`FactTable`] keeps of each kind; beyond, it starts over (the
/// edge sends again what is needed, see `pipeline::facts`).
pub const MAX_FACTS: usize = 65_536;

/// One thing learned about the world packets cross.
#[derive(Debug, Clone, PartialEq)]
pub enum Fact {
    /// A network namespace's name (`ip netns`, a container, a process).
    NetnsName { inode: u32, name: String },
    /// What the kernel says about one link of one namespace.
    Link(LinkInfo),
    /// A kernel code address as `function+0xoff`.
    Symbol { addr: u64, name: String },
    /// The kernel stack of drops (`--drop-stack`): return addresses,
    /// innermost first, by stack id + 1.
    Stack { id: u32, ips: Vec<u64> },
    /// The traced kernel's drop reason names.
    DropReasons(DropReasons),
}

/// A sink of the pipeline: the correlator's callbacks, plus the facts the
/// edge learned (always before the callback that needs them) and the clock.
///
/// A sink says what it shows (`shows_*`, all by default); the edge looks
/// facts up only for that, so traffic nobody sees costs no lookup.
pub trait FactSink: Sink {
    /// A fact, new or changed.
    fn fact(&mut self, fact: &Fact);
    /// Whether [`Sink::hop`] shows this hop (its device, its drop location).
    fn shows_hop(&self, _ev: &HopEvent, _ctx: &HopContext, _flow: Option<&Flow>) -> bool {
        true
    }
    /// Whether [`Sink::annotation`] shows this annotation (its place).
    fn shows_annotation(&self, _ev: &HopEvent, _at: &Annotation, _flow: Option<&Flow>) -> bool {
        true
    }
    /// Whether [`Sink::packet_done`] shows this packet (its places, how it
    /// ended).
    fn shows_packet(&self, _p: &Packet, _flow: Option<&Flow>) -> bool {
        true
    }
    /// The source's clock moved on (live: every tick; replay: a recorded
    /// tick), with the packets the correlator holds in flight.
    fn tick(&mut self, _tick: &Tick, _in_flight: u64) {}
    /// A packet's first bytes (`--snaplen`), before the hops they are of
    /// end (see [`crate::event::snapshot`]).
    fn snapshot(&mut self, _s: &Snapshot) {}
}

/// Namespace names and links given to a sink, bounded.
#[derive(Debug, Default)]
pub struct FactTable {
    names: FxHashMap<u32, String>,
    links: FxHashMap<(u32, u32), LinkInfo>,
}

impl FactTable {
    /// Keeps a name or link fact; other facts are not about places.
    pub fn learn(&mut self, fact: &Fact) {
        match fact {
            Fact::NetnsName { inode, name } => {
                if self.names.get(inode) != Some(name) {
                    bounded_insert(&mut self.names, *inode, name.clone());
                }
            }
            Fact::Link(l) => {
                let key = (l.netns, l.ifindex);
                if self.links.get(&key) != Some(l) {
                    bounded_insert(&mut self.links, key, l.clone());
                }
            }
            Fact::Symbol { .. } | Fact::Stack { .. } | Fact::DropReasons(_) => {}
        }
    }
}

impl TopologyView for FactTable {
    fn netns_name(&self, netns: u32) -> Option<&str> {
        self.names.get(&netns).map(String::as_str)
    }

    fn link(&self, netns: u32, ifindex: u32) -> Option<&LinkInfo> {
        self.links.get(&(netns, ifindex))
    }
}

/// Inserts, starting over when [`MAX_FACTS`] is reached.
pub fn bounded_insert<K: std::hash::Hash + Eq, V>(map: &mut FxHashMap<K, V>, k: K, v: V) {
    if map.len() >= MAX_FACTS && !map.contains_key(&k) {
        map.clear();
    }
    map.insert(k, v);
}
