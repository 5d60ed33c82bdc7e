//! Where events come from: the kernel (the reader thread, which owns the
//! BPF object) or a recording. Either way the rest of the pipeline sees
//! events, ticks and facts in the order they happened.

use std::io;
use std::path::Path;

use anyhow::{Context, Result};

use crate::bpf::probe;
use crate::bpf::reader::{Degraded, Reader, ReaderMsg, TracerConfig, READY_TIMEOUT};
use crate::correlate::{Correlator, CorrelatorConfig};
use crate::event::record::{Frame, Recorder, RecordingInfo, Replay};
use crate::UsageError;

use super::FileRecorder;

/// Loads and attaches the programs (the reader thread), and waits until
/// they run; returns the reader and the optional hooks that are missing.
pub fn start_kernel(tracer: &TracerConfig) -> Result<(Reader, Vec<Degraded>)> {
    let reader = Reader::spawn(tracer.clone()).context("starting the reader thread")?;
    let degraded = match reader.rx.recv_timeout(READY_TIMEOUT) {
        Ok(ReaderMsg::Ready { degraded }) => degraded,
        Ok(ReaderMsg::Failed(e)) => anyhow::bail!("{e}"),
        Ok(_) | Err(_) => anyhow::bail!("the BPF reader did not start"),
    };
    Ok((reader, degraded))
}

/// The correlator for events of this kernel source: it knows the scope the
/// kernel was given (namespaces, interfaces), to tell where packets left it.
pub fn correlator(cfg: CorrelatorConfig, tracer: &TracerConfig) -> Correlator {
    let mut corr = Correlator::new(cfg);
    corr.set_scope(tracer.scope.inodes(), tracer.scope.ifnames.clone());
    corr
}

/// Whether this process may trace (root or CAP_BPF + CAP_PERFMON, BTF):
/// checked before anything else happens.
pub fn check_can_trace() -> Result<()> {
    Ok(probe::check_can_trace()?)
}

/// What the kernel was told to follow, for people: the filter and the
/// scope ("`icmp` · netns hs-c1"), or None for everything.
pub fn kernel_scope_label(tracer: &TracerConfig) -> Option<String> {
    let parts: Vec<String> = tracer
        .filter
        .as_ref()
        .map(crate::filter::PacketFilter::label)
        .into_iter()
        .chain(tracer.scope.label())
        .collect();
    (!parts.is_empty()).then(|| parts.join(" · "))
}

/// A new recording at `path` (created safely, see [`crate::outfile`]):
/// refused as bad input when it cannot be.
pub fn create_recording(path: &Path, force: bool) -> Result<FileRecorder> {
    let file = crate::outfile::create(path, force, "recording").map_err(UsageError::from)?;
    Recorder::new(io::BufWriter::new(file), &RecordingInfo::now())
        .map_err(|e| UsageError(format!("cannot record: {e}")).into())
}

/// The scope a live run recorded: what it showed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordedScope {
    /// Only hops in these namespaces (empty: all).
    pub netns: Vec<u32>,
    /// Only flows of this cgroup (0: all).
    pub owner_cgroup: u64,
    /// The run's own words for it.
    pub label: String,
}

/// A recording as a source: its frames, in order; the scope frame (written
/// first) is taken out and kept. A truncated or foreign file is bad input.
pub struct Recording {
    frames: Replay<io::BufReader<std::fs::File>>,
    /// Read ahead while looking for the scope.
    first: Option<Frame>,
    /// The scope the live run recorded, if any.
    pub scope: Option<RecordedScope>,
}

impl Recording {
    /// Opens `path` and reads up to its first frame that is not the scope.
    pub fn open(path: &Path) -> Result<Recording> {
        let mut frames = Replay::open(path).map_err(|e| UsageError(e.to_string()))?;
        let mut scope = None;
        let first = loop {
            match frames.next() {
                Some(Ok(Frame::Scope {
                    netns,
                    owner_cgroup,
                    label,
                })) => {
                    scope = Some(RecordedScope {
                        netns,
                        owner_cgroup,
                        label,
                    });
                }
                Some(Ok(f)) => break Some(f),
                Some(Err(e)) => return Err(UsageError(e.to_string()).into()),
                None => break None,
            }
        };
        Ok(Recording {
            frames,
            first,
            scope,
        })
    }

    /// Where and when the recording was made.
    pub fn info(&self) -> &crate::event::record::RecordingInfo {
        self.frames.info()
    }

    /// The next frame (later scope frames are skipped), or bad input.
    pub fn next_frame(&mut self) -> Result<Option<Frame>> {
        if let Some(f) = self.first.take() {
            return Ok(Some(f));
        }
        loop {
            match self.frames.next() {
                Some(Ok(Frame::Scope { .. })) => {}
                Some(Ok(f)) => return Ok(Some(f)),
                Some(Err(e)) => return Err(UsageError(e.to_string()).into()),
                None => return Ok(None),
            }
        }
    }
}
