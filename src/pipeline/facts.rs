//! The edge service: the one place facts are looked up. As correlated
//! packets pass on their way to the sink, the devices they name are
//! observed (a few hash lookups, no system call) and the drop locations
//! they carry resolved; what is unknown is looked up (namespace scan and
//! rtnetlink through [`Topology`], kallsyms through [`KernelSymbols`],
//! both rate-limited or cached) and handed, as [`Fact`]s, to the sink and
//! the recorder *before* the callback that needs them. In a replay nothing
//! is looked up: the recording's name, link and symbol frames come in
//! through [`FactService::give`] and reach the sink the same way.

use rustc_hash::FxHashSet;

use crate::correlate::{Annotation, Flow, HopContext, Packet, Sink};
use crate::event::drop_reason::DropReasons;
use crate::event::{Device, HookData, HopEvent};
use crate::facts::{Fact, FactSink, MAX_FACTS};
use crate::symbols::KernelSymbols;
use crate::topology::resolver::Topology;

use super::FileRecorder;

/// Looks facts up (live) or passes them on (replay), and queues them for
/// the sink.
#[derive(Debug, Default)]
pub struct FactService {
    /// Names and links (none: `--inodes`, or a replay).
    topo: Option<Topology>,
    /// Resolve kernel code addresses (live runs).
    symbolize: bool,
    /// kallsyms, read on the first address to resolve.
    symbols: Option<KernelSymbols>,
    /// Addresses whose symbol was handed on (bounded: starts over, as the
    /// sinks' tables do).
    sent: FxHashSet<u64>,
    /// Facts learned and not yet handed on (reused: no allocation once
    /// nothing new is learned).
    queue: Vec<Fact>,
}

impl FactService {
    /// A live run's edge: kernel symbols, and names and links unless
    /// `inodes_only`.
    pub fn live(inodes_only: bool) -> FactService {
        FactService {
            topo: (!inodes_only).then(Topology::new),
            symbolize: true,
            ..FactService::default()
        }
    }

    /// A replay's edge: it looks nothing up; facts come from the recording.
    pub fn replay() -> FactService {
        FactService::default()
    }

    /// The running kernel's drop reason names (BTF), as a fact.
    pub fn kernel_drop_reasons(&self) -> Result<Fact, String> {
        DropReasons::from_kernel()
            .map(Fact::DropReasons)
            .map_err(|e| e.to_string())
    }

    /// Looks at every namespace now, before any packet named one.
    pub fn prime(&mut self) {
        self.refresh(true);
    }

    /// A fact from elsewhere: a recording's frame, the kernel's reason table.
    pub fn give(&mut self, fact: Fact) {
        self.queue.push(fact);
    }

    /// Notes a device a packet named.
    fn observe(&mut self, d: &Device) {
        if let Some(t) = self.topo.as_mut() {
            t.observe(d);
        }
    }

    /// Looks names and links up again if something unknown was observed
    /// (rate-limited by the resolver), or now with `force`.
    fn refresh(&mut self, force: bool) {
        let Some(learned) = self.topo.as_mut().and_then(|t| t.refresh(force)) else {
            return;
        };
        for e in &learned.errors {
            log::info!("topology: {e}");
        }
        self.queue.extend(
            learned
                .names
                .into_iter()
                .map(|(inode, name)| Fact::NetnsName { inode, name }),
        );
        self.queue.extend(learned.links.into_iter().map(Fact::Link));
    }

    /// Resolves a code address, once (kallsyms is read on the first).
    fn symbol(&mut self, addr: u64) {
        if !self.symbolize || self.sent.contains(&addr) {
            return;
        }
        let syms = self.symbols.get_or_insert_with(KernelSymbols::load);
        if let Some(name) = syms.resolve(addr) {
            if self.sent.len() >= MAX_FACTS {
                self.sent.clear();
            }
            self.sent.insert(addr);
            self.queue.push(Fact::Symbol { addr, name });
        }
    }

    /// Kernel stacks of drops (`--drop-stack`): their frames resolved, then
    /// the stacks themselves.
    pub fn stacks(&mut self, stacks: Vec<(u32, Vec<u64>)>) {
        for (id, ips) in stacks {
            for ip in &ips {
                self.symbol(*ip);
            }
            self.queue.push(Fact::Stack { id, ips });
        }
    }

    /// Hands what was learned to the sink and the recorder; the first
    /// recording error is kept in `error`.
    pub(super) fn deliver<S: FactSink>(
        &mut self,
        sink: &mut S,
        recorder: Option<&mut FileRecorder>,
        error: &mut Option<std::io::Error>,
    ) {
        self.refresh(false);
        if self.queue.is_empty() {
            return;
        }
        let mut recorder = recorder;
        for fact in self.queue.drain(..) {
            if let (Some(r), None) = (recorder.as_deref_mut(), error.as_ref()) {
                if let Err(e) = record(r, &fact) {
                    *error = Some(e);
                }
            }
            sink.fact(&fact);
        }
    }
}

/// A fact as a recording frame (stacks are not recorded).
fn record(r: &mut FileRecorder, fact: &Fact) -> std::io::Result<()> {
    match fact {
        Fact::NetnsName { inode, name } => r.netns_name(*inode, name),
        Fact::Link(l) => r.link(l),
        Fact::Symbol { addr, name } => r.symbol(*addr, name),
        Fact::DropReasons(reasons) => r.drop_reasons(&reasons.pairs()),
        Fact::Stack { .. } => Ok(()),
    }
}

/// The code address a drop hop names (text's `--all-hooks` prints it).
fn hop_location(ev: &HopEvent) -> Option<u64> {
    match ev.data {
        HookData::Freed { location, .. } => Some(location),
        _ => None,
    }
}

/// The correlator's sink during one call: observes and resolves what each
/// callback names, delivers the facts, then calls the real sink.
pub(super) struct Edge<'a, S> {
    pub facts: &'a mut FactService,
    pub sink: &'a mut S,
    pub recorder: Option<&'a mut FileRecorder>,
    pub error: &'a mut Option<std::io::Error>,
}

impl<S: FactSink> Edge<'_, S> {
    /// Hands what the service learned to the sink and the recorder.
    pub(super) fn deliver(&mut self) {
        self.facts
            .deliver(self.sink, self.recorder.as_deref_mut(), self.error);
    }
}

impl<S: FactSink> Sink for Edge<'_, S> {
    fn hop(&mut self, ev: &HopEvent, ctx: &HopContext, flow: Option<&Flow>) {
        if self.sink.shows_hop(ev, ctx, flow) {
            if let Some(d) = &ev.device {
                self.facts.observe(d);
            }
            if let Some(addr) = hop_location(ev) {
                self.facts.symbol(addr);
            }
            self.deliver();
        }
        self.sink.hop(ev, ctx, flow);
    }

    fn annotation(&mut self, ev: &HopEvent, at: &Annotation, flow: Option<&Flow>) {
        if self.sink.shows_annotation(ev, at, flow) {
            if let Some(d) = at.device.filter(|d| d.netns.0 != 0) {
                self.facts.observe(&d);
            }
            self.deliver();
        }
        self.sink.annotation(ev, at, flow);
    }

    fn packet_done(&mut self, p: &Packet, flow: Option<&Flow>) {
        if self.sink.shows_packet(p, flow) {
            for v in &p.visits {
                self.facts.observe(&v.device);
            }
            if let Some(d) = &p.end_device {
                self.facts.observe(d);
            }
            if let Some((_, location)) = p.outcome.reason() {
                self.facts.symbol(location);
            }
            self.deliver();
        }
        self.sink.packet_done(p, flow);
    }
}
