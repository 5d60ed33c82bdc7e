//! The one pipeline every mode runs:
//!
//! ```text
//! source (kernel | recording) → decode → correlate → facts → sink (text | JSON | model) + recorder
//! ```
//!
//! [`source`] gives decoded events, ticks and (from a recording) facts; the
//! [`Pipeline`] records them, correlates them (the correlator stays pure:
//! it only calls a sink), passes each callback through the edge service
//! ([`facts`]), which looks up or replays what the callback names and hands
//! it to the sink first, then calls the sink. `hopscope trace`, the explorer
//! and `hopscope replay` differ only in the source they start and the sink
//! they give; their loops wait on different things (a terminal, a command)
//! but feed the pipeline through the same calls.

pub mod facts;
pub mod source;
pub mod stop;

use std::fs::File;
use std::io::{self, BufWriter};

use anyhow::{Context, Result};

use crate::bpf::reader::{self, KernelStats, Reader, ReaderMsg, ReaderStats};
use crate::clock::monotonic_ns;
use crate::correlate::{Correlator, CorrelatorStats};
use crate::event::record::{Frame, Recorder, Tick};
use crate::event::snapshot::Snapshot;
use crate::event::HopEvent;
use crate::facts::{Fact, FactSink};
use facts::{Edge, FactService};

/// A recording being written.
pub type FileRecorder = Recorder<BufWriter<File>>;

/// What a kernel message meant for the runner.
#[derive(Debug)]
pub enum Step {
    /// Events, counters or stacks: taken in.
    Continue,
    /// A filter sent with [`Reader::set_filter`] is in force (or refused).
    Filter(Result<Option<String>, String>),
    /// The reader detached everything and drained the ring: final counters.
    Done(KernelStats, ReaderStats),
}

/// Correlator, edge service, sink and recorder, fed event by event.
pub struct Pipeline<S: FactSink> {
    corr: Correlator,
    facts: FactService,
    /// Where correlated packets and facts go.
    pub sink: S,
    recorder: Option<FileRecorder>,
    /// The first error writing the recording (reported by the next call).
    record_error: Option<io::Error>,
    /// The kernel's latest counters (live runs).
    stats: (KernelStats, ReaderStats),
}

impl<S: FactSink> Pipeline<S> {
    /// A pipeline into `sink`, its facts from `facts` (live lookups, or a
    /// replay's frames), everything also into `recorder` if given.
    pub fn new(
        corr: Correlator,
        facts: FactService,
        sink: S,
        recorder: Option<FileRecorder>,
    ) -> Pipeline<S> {
        Pipeline {
            corr,
            facts,
            sink,
            recorder,
            record_error: None,
            stats: Default::default(),
        }
    }

    /// The correlator's counters.
    pub fn correlator_stats(&self) -> CorrelatorStats {
        self.corr.stats()
    }

    /// The kernel's latest counters (final once [`Step::Done`] came).
    pub fn kernel_stats(&self) -> (KernelStats, ReaderStats) {
        self.stats
    }

    /// Packets the correlator holds, not ended yet.
    pub fn packets_in_flight(&self) -> usize {
        self.corr.packets_in_flight()
    }

    /// The recorder, to write what only the runner knows (its scope).
    pub fn recorder(&mut self) -> Option<&mut FileRecorder> {
        self.recorder.as_mut()
    }

    /// A fact from outside the stream (the kernel's reason table, a
    /// recording's frame): to the correlator if it uses it, the sink and
    /// the recorder.
    pub fn give(&mut self, fact: Fact) -> Result<()> {
        if let Fact::DropReasons(r) = &fact {
            self.corr.set_drop_reasons(r.clone());
        }
        self.facts.give(fact);
        self.deliver()
    }

    /// The running kernel's drop reason names, to everyone (Err: shown as
    /// numbers, and why).
    pub fn kernel_drop_reasons(&mut self) -> Result<Result<(), String>> {
        match self.facts.kernel_drop_reasons() {
            Ok(fact) => self.give(fact).map(Ok),
            Err(e) => Ok(Err(e)),
        }
    }

    /// Looks every namespace up now, before any packet names one.
    pub fn prime_facts(&mut self) -> Result<()> {
        self.facts.prime();
        self.deliver()
    }

    fn deliver(&mut self) -> Result<()> {
        self.facts.deliver(
            &mut self.sink,
            self.recorder.as_mut(),
            &mut self.record_error,
        );
        self.check()
    }

    fn check(&mut self) -> Result<()> {
        match self.record_error.take() {
            Some(e) => Err(e).context("writing the recording"),
            None => Ok(()),
        }
    }

    /// A packet's first bytes (`--snaplen`): recorded, then to the sink.
    pub fn snapshot(&mut self, s: Snapshot) -> Result<()> {
        if let Some(r) = self.recorder.as_mut() {
            r.snapshot(&s).context("writing the recording")?;
        }
        self.sink.snapshot(&s);
        Ok(())
    }

    /// One event: recorded, correlated, its facts delivered, then sunk.
    pub fn event(&mut self, ev: &HopEvent) -> Result<()> {
        if let Some(r) = self.recorder.as_mut() {
            r.event(ev).context("writing the recording")?;
        }
        let (corr, mut edge) = self.parts();
        corr.on_event(ev, &mut edge);
        self.check()
    }

    /// The clock moved on: idle packets end, facts still pending are
    /// looked up, the sink sees the tick, and the recording gets it.
    pub fn tick(&mut self, t: &Tick) -> Result<()> {
        let (corr, mut edge) = self.parts();
        corr.gc(t.now_ns, &mut edge);
        edge.deliver();
        let in_flight = corr.packets_in_flight() as u64;
        self.sink.tick(t, in_flight);
        self.check()?;
        if let Some(r) = self.recorder.as_mut() {
            r.tick(t).context("writing the recording")?;
        }
        Ok(())
    }

    /// A live tick: now, with the kernel's latest counters.
    pub fn tick_now(&mut self) -> Result<Tick> {
        let t = reader::tick(monotonic_ns(), &self.stats.0, &self.stats.1);
        self.tick(&t)?;
        Ok(t)
    }

    /// One message of the kernel source.
    pub fn kernel(&mut self, msg: ReaderMsg, reader: &Reader) -> Result<Step> {
        match msg {
            ReaderMsg::Events(batch) => {
                for ev in &batch {
                    self.event(ev)?;
                }
                reader.recycle(batch);
            }
            ReaderMsg::Snapshots(snaps) => {
                for s in snaps {
                    self.snapshot(s)?;
                }
            }
            ReaderMsg::Stats { kernel, reader } => self.stats = (kernel, reader),
            ReaderMsg::Stacks(stacks) => {
                self.facts.stacks(stacks);
                self.deliver()?;
            }
            ReaderMsg::Filter(res) => return Ok(Step::Filter(res)),
            ReaderMsg::Done { kernel, reader } => {
                self.stats = (kernel, reader);
                return Ok(Step::Done(kernel, reader));
            }
            ReaderMsg::Failed(e) => anyhow::bail!("{e}"),
            ReaderMsg::Ready { .. } => {}
        }
        Ok(Step::Continue)
    }

    /// One frame of a recording, applied as the live run did at that point.
    pub fn frame(&mut self, frame: Frame) -> Result<()> {
        match frame {
            Frame::Event(ev) => self.event(&ev),
            Frame::Tick(t) => self.tick(&t),
            Frame::NetnsName { inode, name } => self.give(Fact::NetnsName { inode, name }),
            Frame::Link(l) => self.give(Fact::Link(l)),
            Frame::Symbol { addr, name } => self.give(Fact::Symbol { addr, name }),
            Frame::DropReasons(pairs) => self.give(Fact::DropReasons(
                crate::event::drop_reason::DropReasons::from_pairs(pairs),
            )),
            Frame::Snapshot(s) => self.snapshot(s),
            // The source keeps it (see `source::Recording`).
            Frame::Scope { .. } => Ok(()),
        }
    }

    /// The source ended: every packet still in flight ends here.
    pub fn flush(&mut self) -> Result<()> {
        let (corr, mut edge) = self.parts();
        corr.flush(&mut edge);
        self.check()
    }

    /// The correlator, and the edge it calls back into (the other fields,
    /// borrowed apart from it).
    fn parts(&mut self) -> (&mut Correlator, Edge<'_, S>) {
        (
            &mut self.corr,
            Edge {
                facts: &mut self.facts,
                sink: &mut self.sink,
                recorder: self.recorder.as_mut(),
                error: &mut self.record_error,
            },
        )
    }

    /// Ends the recording (after a last tick, if given) and returns the
    /// sink.
    pub fn finish(mut self, last: Option<&Tick>) -> Result<S> {
        if let Some(mut r) = self.recorder.take() {
            if let Some(t) = last {
                r.tick(t).context("writing the recording")?;
            }
            r.flush().context("writing the recording")?;
        }
        Ok(self.sink)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::correlate::CorrelatorConfig;
    use crate::event::record::Replay;

    /// Keeps the facts it is given.
    #[derive(Default)]
    struct Facts(Vec<Fact>);

    impl crate::correlate::Sink for Facts {}

    impl FactSink for Facts {
        fn fact(&mut self, fact: &Fact) {
            self.0.push(fact.clone());
        }
    }

    fn pipeline(recorder: Option<FileRecorder>) -> Pipeline<Facts> {
        Pipeline::new(
            Correlator::new(CorrelatorConfig::default()),
            FactService::replay(),
            Facts::default(),
            recorder,
        )
    }

    #[test]
    fn facts_reach_the_sink_live_and_from_the_recording_alike() {
        let dir = std::env::temp_dir().join(format!("hopscope-pipe-{}", std::process::id()));
        let _ = std::fs::remove_file(&dir);
        let facts = vec![
            Fact::NetnsName {
                inode: 4026532001,
                name: "hs-c1".to_owned(),
            },
            Fact::Symbol {
                addr: 0xffff_ffff_8100_0000,
                name: "ip_rcv+0x10".to_owned(),
            },
            Fact::DropReasons(crate::event::drop_reason::DropReasons::from_pairs(vec![(
                2,
                "NOT_SPECIFIED".to_owned(),
            )])),
        ];
        let mut live = pipeline(Some(source::create_recording(&dir, false).unwrap()));
        for f in &facts {
            live.give(f.clone()).unwrap();
        }
        assert_eq!(live.finish(None).unwrap().0, facts, "live: as given");

        let mut replay = pipeline(None);
        for frame in Replay::open(&dir).unwrap() {
            replay.frame(frame.unwrap()).unwrap();
        }
        std::fs::remove_file(&dir).unwrap();
        assert_eq!(replay.finish(None).unwrap().0, facts, "replay: as recorded");
    }
}
