//! Recordings: the event stream of a live run saved to a file, so that
//! `hopscope replay FILE` can rebuild exactly the state the live run had.
//! [`Recorder`] writes one, [`Replay`] reads one back frame by frame.
//!
//! A recording holds domain events ([`HopEvent`]) and the facts the live
//! run learned (namespace names, links, symbols, drop reasons, scope,
//! counters), not kernel ABI bytes: a change of the BPF side's records does
//! not touch recordings, and [`crate::event::decode`] stays the only place
//! that knows those bytes.
//!
//! # Format, version 2
//!
//! All fixed-size integers are little-endian. The file starts with a header:
//!
//! | offset  | size | field                                                   |
//! |---------|------|---------------------------------------------------------|
//! | 0       | 16   | magic `"HOPSCOPE-REC\r\n\x1a\n"` ([`MAGIC`])            |
//! | 16      | 2    | format version, u16 ([`FORMAT_VERSION`] = 2)            |
//! | 18      | 8    | `started_realtime_ns`, u64: CLOCK_REALTIME at start     |
//! | 26      | 8    | `started_monotonic_ns`, u64: CLOCK_MONOTONIC, same time |
//! | 34      | 4    | hostname length H, u32, at most 4096                    |
//! | 38      | H    | hostname, UTF-8                                         |
//! | 38+H    | 4    | kernel release length K, u32, at most 4096              |
//! | 42+H    | K    | kernel release (`uname -r`), UTF-8                      |
//!
//! Bytes 0..18 (magic and format version) keep their place in every
//! version, so any hopscope can tell a recording it cannot read (a newer
//! format: refused by its version number) from a file that is not a
//! recording at all.
//!
//! Then frames follow, up to the end of the file:
//!
//! | offset | size | field                                |
//! |--------|------|--------------------------------------|
//! | 0      | 1    | kind                                 |
//! | 1      | 4    | payload length N, u32, at most 1 MiB |
//! | 5      | N    | payload                              |
//!
//! Each payload is the [postcard] encoding (serde's data model in varints,
//! no field names, enum variants by index) of one value, and must be
//! exactly that long. The schema of a payload is the serde derive of the
//! type named:
//! - `1` Event: a [`HopEvent`] (with its parts in [`crate::event`]).
//!   Timestamps are CLOCK_MONOTONIC.
//! - `2` Tick: a [`Tick`], the cumulative counters of the live run at
//!   that moment.
//! - `3` NetnsName: `(u32, String)`: a namespace inode and its name (at
//!   most 4096 bytes), as the live run learned it.
//! - `4` DropReasons: `Vec<(u32, String)>`: the recording kernel's
//!   `enum skb_drop_reason` as (value, name) pairs, at most 2048 of them,
//!   names at most 255 bytes.
//! - `5` Scope: `(Vec<u32>, u64, String)`: what the live run showed: the
//!   namespace inodes (at most 65536, empty: all), the owner cgroup (0:
//!   any) and a label for people (at most 4096 bytes).
//! - `6` Link: a [`LinkInfo`], one link of one namespace as the live run
//!   learned it over rtnetlink; N at most 4096.
//! - `7` Symbol: `(u64, String)`: a kernel code address and its
//!   `function+0xoff` (at most 4096 bytes), as the live run resolved it.
//! - `8` Snapshot: a [`Snapshot`], a packet's first bytes (`--snaplen`, at
//!   most 2048 of them). Added after format 2 was first written, as a new
//!   kind: older readers skip it.
//! - `0` is reserved and makes the file corrupt: a crash can leave a
//!   zero-filled tail, which must not read as a run of empty frames.
//! - Any other kind is skipped using its length, so newer writers can add
//!   kinds that older readers ignore.
//!
//! Events are checked as the kernel decoder checks records: packet id 0
//! only on annotation hooks, no link to packet 0.
//!
//! A file ends cleanly only at a frame boundary; anything else is reported
//! as truncated. Reading never panics and never allocates more than a
//! frame's payload (1 MiB) because of a length field; a payload is read in
//! steps of 64 KiB, so a truncated file does not make it allocate its
//! claimed length.
//!
//! ## Evolving the format
//!
//! Any change of a serialized type changes the format: a field added,
//! removed, retyped or reordered, an enum variant added, removed or
//! reordered, in [`HopEvent`] or any type it holds, in [`Tick`], in
//! [`LinkInfo`] or in a payload tuple above. Each such change bumps
//! [`FORMAT_VERSION`], even a variant added last (an older reader would
//! call the file corrupt instead of naming its version). The reader then
//! keeps reading the previous versions by converting them (as it does
//! format 1), or refuses them by their version number. New facts take a
//! new kind, which older readers skip.
//!
//! # Format, version 1 (read, converted)
//!
//! Written by hopscope before format 2, still read: every frame is
//! converted to the [`Frame`] format 2 would hold. The header had two more
//! fields after the format version: the event ABI version (u16,
//! `HS_ABI_VERSION`) and the event record size (u32), then the fields of
//! format 2 (so the hostname length was at byte 40). The frame kinds were
//! the same, with fixed layouts instead of postcard:
//! - `1` Event: the `struct hs_event` bytes of the header's ABI, exactly as
//!   the ring buffer carried them; decoded by [`RecordedAbi`] (ABI
//!   versions 1, 192-byte records, and 2, 272 bytes; other ABIs are
//!   refused).
//! - `2` Tick: seven u64 in the order of [`Tick`]'s fields.
//! - `3` NetnsName: inode (u32), then the name (UTF-8, N - 4 bytes).
//! - `4` DropReasons: entries of value (u32), name length L (u16, at most
//!   255) and name, filling the payload exactly.
//! - `5` Scope: owner cgroup (u64), label length L (u16), label, namespace
//!   count C (u32), C inodes (u32); N = 14 + L + 4C.
//! - `6` Link: a JSON object of `LinkInfo`'s fields, at most 4096 bytes.
//! - `7` Symbol: address (u64), then the name (UTF-8, N - 8 bytes).
//!
//! [postcard]: https://postcard.jamesmunns.com/wire-format

mod v1;

use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::time::{clock_gettime, ClockId};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::decode::{DecodeError, RecordedAbi, RECORDED_ABI_VERSIONS};
use super::snapshot::Snapshot;
use super::{HopEvent, Link};
use crate::topology::links::LinkInfo;

/// The first 16 bytes of every recording.
pub const MAGIC: [u8; 16] = *b"HOPSCOPE-REC\r\n\x1a\n";
/// The format version this hopscope writes. It reads this one and every
/// older one (converting them).
pub const FORMAT_VERSION: u16 = 2;
/// The oldest format version this hopscope reads.
pub const OLDEST_FORMAT_VERSION: u16 = 1;
/// Longest hostname, kernel release, namespace name, symbol name, scope
/// label or link frame accepted, in bytes.
pub const MAX_STRING: usize = 4096;
/// Longest frame payload accepted, in bytes (1 MiB).
pub const MAX_FRAME: u32 = 1 << 20;

const KIND_RESERVED: u8 = 0;
const KIND_EVENT: u8 = 1;
const KIND_TICK: u8 = 2;
const KIND_NETNS_NAME: u8 = 3;
const KIND_DROP_REASONS: u8 = 4;
const KIND_SCOPE: u8 = 5;
const KIND_LINK: u8 = 6;
const KIND_SYMBOL: u8 = 7;
const KIND_SNAPSHOT: u8 = 8;
/// Most namespaces a scope frame lists.
const MAX_SCOPE_NETNS: usize = 65_536;
/// Longest drop reason name in a recording.
const MAX_REASON_NAME: usize = 255;
/// Most entries of a drop reason table (kernels have about 120): any
/// table read from format 1 fits a format-2 frame.
const MAX_DROP_REASONS: usize = 2048;

const FRAME_HEAD: usize = 5;
/// Payloads are read in steps of this many bytes.
const READ_STEP: usize = 64 * 1024;

/// Where and when a recording was made.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecordingInfo {
    /// CLOCK_REALTIME at the start, in ns since the Unix epoch.
    pub started_realtime_ns: u64,
    /// CLOCK_MONOTONIC at the same instant: maps event timestamps to wall
    /// time.
    pub started_monotonic_ns: u64,
    pub hostname: String,
    /// Kernel release, as `uname -r` prints it.
    pub kernel: String,
}

impl RecordingInfo {
    /// CLOCK_REALTIME − CLOCK_MONOTONIC at the start: added to an event's
    /// `ts_ns`, its wall-clock time.
    pub fn realtime_offset_ns(&self) -> i64 {
        (self.started_realtime_ns as i64).wrapping_sub(self.started_monotonic_ns as i64)
    }

    /// This machine, now.
    pub fn now() -> RecordingInfo {
        // Both clocks exist on every Linux; 0 would only mean "unknown".
        let ns = |clock| {
            clock_gettime(clock).map_or(0, |t| {
                u64::try_from(Duration::from(t).as_nanos()).unwrap_or(u64::MAX)
            })
        };
        let (hostname, kernel) = match nix::sys::utsname::uname() {
            Ok(u) => (
                bounded(&u.nodename().to_string_lossy()),
                bounded(&u.release().to_string_lossy()),
            ),
            Err(_) => (String::new(), String::new()),
        };
        RecordingInfo {
            started_realtime_ns: ns(ClockId::CLOCK_REALTIME),
            started_monotonic_ns: ns(ClockId::CLOCK_MONOTONIC),
            hostname,
            kernel,
        }
    }
}

/// `s` cut to at most [`MAX_STRING`] bytes, on a character boundary.
fn bounded(s: &str) -> String {
    let mut end = s.len().min(MAX_STRING);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// Counters of the live run at one moment, recorded periodically so that a
/// replay reports the same losses as the live run did. All are cumulative
/// since the start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Tick {
    /// CLOCK_MONOTONIC, comparable with event timestamps.
    pub now_ns: u64,
    /// Events the BPF programs tried to emit.
    pub emitted: u64,
    /// Of those, ring buffer reservations that failed.
    pub lost: u64,
    /// Records the reader took off the ring buffer.
    pub received: u64,
    /// Records that failed to decode.
    pub decode_errors: u64,
    /// Events dropped because the consumer lagged.
    pub channel_dropped: u64,
    /// skb addresses seen reused without a free event.
    pub reused: u64,
}

/// One unit of a recording.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Event(HopEvent),
    Tick(Tick),
    /// A network namespace's name as the live run learned it.
    NetnsName {
        inode: u32,
        name: String,
    },
    /// The recording kernel's `enum skb_drop_reason`: (value, name).
    DropReasons(Vec<(u32, String)>),
    /// A link as the live run learned it (rtnetlink).
    Link(LinkInfo),
    /// A kernel code address and its `function+0xoff` (kallsyms).
    Symbol {
        addr: u64,
        name: String,
    },
    /// What the live run showed: only these namespaces (empty: all), only
    /// flows of sockets in this cgroup (0: any), described by `label`.
    Scope {
        netns: Vec<u32>,
        owner_cgroup: u64,
        label: String,
    },
    /// A packet's first bytes (`--snaplen`).
    Snapshot(Snapshot),
}

/// Why a recording could not be written or read.
#[derive(Debug, Error)]
pub enum RecordError {
    /// The message carries the OS reason: callers show it as one line.
    #[error("recording{}: {source}", At(.path))]
    Io {
        path: Option<PathBuf>,
        #[source]
        source: io::Error,
    },
    #[error("not a hopscope recording: {why} (expected a file written by `hopscope --record`)")]
    NotARecording { why: &'static str },
    /// A format version this hopscope does not read: `want` is the newest
    /// it reads ([`FORMAT_VERSION`]).
    #[error("{}", version_message(*.got, *.want))]
    Version { got: u16, want: u16 },
    /// A format-1 recording of events of an ABI that is not converted.
    #[error(
        "recording (format 1) holds events of ABI version {abi} ({size}-byte records), which \
         this hopscope cannot convert (it converts ABI versions {})",
        abi_list()
    )]
    AbiMismatch { abi: u16, size: u32 },
    #[error("recording truncated at byte {offset} (the recorder was killed?)")]
    Truncated { offset: u64 },
    #[error("recording corrupt at byte {offset}: {what}")]
    Corrupt { offset: u64, what: String },
    /// A format-1 event record that does not decode.
    #[error("recording corrupt at byte {offset}: bad event")]
    Decode {
        offset: u64,
        #[source]
        source: DecodeError,
    },
}

fn version_message(got: u16, want: u16) -> String {
    if got > want {
        format!(
            "recording format version {got} is newer than this hopscope reads (versions \
             {OLDEST_FORMAT_VERSION} to {want}): replay it with a newer hopscope"
        )
    } else {
        format!(
            "recording format version {got} does not exist (this hopscope reads versions \
             {OLDEST_FORMAT_VERSION} to {want}): the file is damaged"
        )
    }
}

fn abi_list() -> String {
    let v: Vec<String> = RECORDED_ABI_VERSIONS.iter().map(u16::to_string).collect();
    v.join(" and ")
}

/// Displays " PATH" when the path is known.
struct At<'a>(&'a Option<PathBuf>);

impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(p) => write!(f, " {}", p.display()),
            None => Ok(()),
        }
    }
}

// ------------------------------------------------------------------ limits
//
// The writer refuses and the reader reports corrupt the same things, so
// that whatever is read can be written again.

fn check_name(what: &'static str, name: &str) -> Result<(), &'static str> {
    if name.len() > MAX_STRING {
        return Err(what);
    }
    Ok(())
}

fn check_scope(netns: &[u32], label: &str) -> Result<(), &'static str> {
    if label.len() > MAX_STRING || netns.len() > MAX_SCOPE_NETNS {
        return Err("scope too large");
    }
    Ok(())
}

fn check_drop_reasons<'a>(
    count: usize,
    mut names: impl Iterator<Item = &'a str>,
) -> Result<(), &'static str> {
    if count > MAX_DROP_REASONS || names.any(|n| n.len() > MAX_REASON_NAME) {
        return Err("drop reason table too large");
    }
    Ok(())
}

/// What the decoder of kernel records guarantees of every event.
fn check_event(ev: &HopEvent) -> Result<(), &'static str> {
    if ev.packet.0 == 0 && !ev.hook.is_annotation() {
        return Err("event of packet id 0, which is reserved");
    }
    let related = match ev.link {
        Some(Link::CloneOf(p) | Link::Branch(p) | Link::SegmentOf { parent: p, .. }) => Some(p),
        Some(Link::Segmented { .. }) | None => None,
    };
    if related.is_some_and(|p| p.0 == 0) {
        return Err("event linked to packet id 0, which is reserved");
    }
    Ok(())
}

/// The limits of [`Recorder`], as the reader checks them.
fn check_frame(f: &Frame) -> Result<(), &'static str> {
    match f {
        Frame::Event(e) => check_event(e),
        Frame::Tick(_) | Frame::Link(_) => Ok(()),
        Frame::Snapshot(s) => check_snapshot(s),
        Frame::NetnsName { name, .. } => check_name("namespace name over 4096 bytes", name),
        Frame::Symbol { name, .. } => check_name("symbol name over 4096 bytes", name),
        Frame::Scope { netns, label, .. } => check_scope(netns, label),
        Frame::DropReasons(r) => check_drop_reasons(r.len(), r.iter().map(|(_, n)| n.as_str())),
    }
}

fn check_snapshot(s: &Snapshot) -> Result<(), &'static str> {
    if s.packet.0 == 0 {
        return Err("snapshot of packet id 0, which is reserved");
    }
    if s.bytes.len() > crate::bpf::abi::SNAPLEN_MAX as usize {
        return Err("snapshot over 2048 bytes");
    }
    Ok(())
}

fn invalid(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, what.into())
}

// ------------------------------------------------------------------ writer

/// Writes a recording (always in format [`FORMAT_VERSION`]): the header at
/// creation, then one frame per call. Frames are encoded into a buffer the
/// recorder keeps, so events cost no allocation once it has grown; wrap
/// files in a [`BufWriter`] (as [`Recorder::create`] does) so that they
/// cost no syscall either.
pub struct Recorder<W: Write> {
    w: W,
    frames: u64,
    /// The frame being written, kept for its capacity.
    buf: Vec<u8>,
}

impl Recorder<BufWriter<File>> {
    /// Creates (or truncates) `path` readable by its owner only, since
    /// recordings show the machine's traffic, and writes the header. Never
    /// through a symbolic link ([`crate::outfile::create`], forced); the
    /// command line refuses existing files before it gets here.
    pub fn create(path: &Path, info: &RecordingInfo) -> Result<Self, RecordError> {
        let io_err = |source| RecordError::Io {
            path: Some(path.to_path_buf()),
            source,
        };
        let file = crate::outfile::create(path, true, "recording").map_err(|e| match e {
            crate::outfile::OutputError::Io { source, .. } => io_err(source),
            refused => io_err(io::Error::other(refused.to_string())),
        })?;
        Recorder::new(BufWriter::new(file), info).map_err(io_err)
    }
}

impl<W: Write> Recorder<W> {
    /// Writes the header. Fails with `InvalidInput` when a string of `info`
    /// is over [`MAX_STRING`] bytes (no reader would accept it).
    pub fn new(mut w: W, info: &RecordingInfo) -> io::Result<Self> {
        let mut head = [0u8; 34];
        head[..16].copy_from_slice(&MAGIC);
        head[16..18].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        head[18..26].copy_from_slice(&info.started_realtime_ns.to_le_bytes());
        head[26..34].copy_from_slice(&info.started_monotonic_ns.to_le_bytes());
        for (what, s) in [
            ("hostname", &info.hostname),
            ("kernel release", &info.kernel),
        ] {
            if s.len() > MAX_STRING {
                return Err(invalid(format!(
                    "{what} is {} bytes, over the {MAX_STRING}-byte limit",
                    s.len()
                )));
            }
        }
        w.write_all(&head)?;
        write_string(&mut w, &info.hostname)?;
        write_string(&mut w, &info.kernel)?;
        Ok(Recorder {
            w,
            frames: 0,
            buf: Vec::with_capacity(256),
        })
    }

    /// Appends one frame of `kind` holding `value`, whose encoding must be
    /// at most `max` bytes.
    fn put<T: Serialize + ?Sized>(
        &mut self,
        kind: u8,
        value: &T,
        max: usize,
        what: &str,
    ) -> io::Result<()> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        buf.extend_from_slice(&[kind, 0, 0, 0, 0]);
        let mut buf =
            postcard::to_extend(value, buf).map_err(|e| invalid(format!("{what}: {e}")))?;
        let len = buf.len() - FRAME_HEAD;
        let written = if len > max {
            Err(invalid(format!("{what} too large ({len} bytes)")))
        } else {
            buf[1..FRAME_HEAD].copy_from_slice(&(len as u32).to_le_bytes());
            self.w.write_all(&buf)
        };
        self.buf = buf;
        written?;
        self.frames += 1;
        Ok(())
    }

    /// Appends one event frame. Fails with `InvalidInput` on an event no
    /// kernel record decodes to (packet id 0 on a hop, a link to packet 0).
    pub fn event(&mut self, ev: &HopEvent) -> io::Result<()> {
        check_event(ev).map_err(invalid)?;
        self.put(KIND_EVENT, ev, MAX_FRAME as usize, "event")
    }

    /// Appends one tick frame.
    pub fn tick(&mut self, t: &Tick) -> io::Result<()> {
        self.put(KIND_TICK, t, MAX_FRAME as usize, "tick")
    }

    /// Appends any frame (copying or rewriting recordings).
    pub fn frame(&mut self, f: &Frame) -> io::Result<()> {
        match f {
            Frame::Event(e) => self.event(e),
            Frame::Tick(t) => self.tick(t),
            Frame::NetnsName { inode, name } => self.netns_name(*inode, name),
            Frame::DropReasons(r) => {
                check_drop_reasons(r.len(), r.iter().map(|(_, n)| n.as_str())).map_err(invalid)?;
                self.put(KIND_DROP_REASONS, r, MAX_FRAME as usize, "drop reasons")
            }
            Frame::Scope {
                netns,
                owner_cgroup,
                label,
            } => self.scope(netns, *owner_cgroup, label),
            Frame::Link(l) => self.link(l),
            Frame::Symbol { addr, name } => self.symbol(*addr, name),
            Frame::Snapshot(s) => self.snapshot(s),
        }
    }

    /// Appends a packet's first bytes (at most 2048 of them).
    pub fn snapshot(&mut self, s: &Snapshot) -> io::Result<()> {
        check_snapshot(s).map_err(invalid)?;
        self.put(KIND_SNAPSHOT, s, MAX_FRAME as usize, "snapshot")
    }

    /// Appends a namespace name (at most [`MAX_STRING`] bytes).
    pub fn netns_name(&mut self, inode: u32, name: &str) -> io::Result<()> {
        check_name("namespace name over 4096 bytes", name).map_err(invalid)?;
        self.put(
            KIND_NETNS_NAME,
            &(inode, name),
            MAX_FRAME as usize,
            "namespace name",
        )
    }

    /// Appends what the live run showed (see [`Frame::Scope`]).
    pub fn scope(&mut self, netns: &[u32], owner_cgroup: u64, label: &str) -> io::Result<()> {
        check_scope(netns, label).map_err(invalid)?;
        self.put(
            KIND_SCOPE,
            &(netns, owner_cgroup, label),
            MAX_FRAME as usize,
            "scope",
        )
    }

    /// Appends a resolved code address (name at most [`MAX_STRING`] bytes).
    pub fn symbol(&mut self, addr: u64, name: &str) -> io::Result<()> {
        check_name("symbol name over 4096 bytes", name).map_err(invalid)?;
        self.put(KIND_SYMBOL, &(addr, name), MAX_FRAME as usize, "symbol")
    }

    /// Appends a link (encoded in at most [`MAX_STRING`] bytes).
    pub fn link(&mut self, l: &LinkInfo) -> io::Result<()> {
        self.put(KIND_LINK, l, MAX_STRING, "link record")
    }

    /// Appends the drop reason table (at most 2048 entries, names of at
    /// most 255 bytes).
    pub fn drop_reasons(&mut self, reasons: &[(u32, &str)]) -> io::Result<()> {
        check_drop_reasons(reasons.len(), reasons.iter().map(|(_, n)| *n)).map_err(invalid)?;
        self.put(
            KIND_DROP_REASONS,
            reasons,
            MAX_FRAME as usize,
            "drop reasons",
        )
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }

    /// Flushes and hands back the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.w.flush()?;
        Ok(self.w)
    }

    /// Frames written so far (of every kind).
    pub fn frames(&self) -> u64 {
        self.frames
    }
}

/// A string of at most [`MAX_STRING`] bytes (checked), length first.
fn write_string<W: Write>(w: &mut W, s: &str) -> io::Result<()> {
    w.write_all(&(s.len() as u32).to_le_bytes())?;
    w.write_all(s.as_bytes())
}

// ------------------------------------------------------------------ reader

/// How the frames of the file being read are encoded.
#[derive(Debug, Clone, Copy)]
enum Format {
    /// Format 1, with the event ABI its header names.
    V1(RecordedAbi),
    V2,
}

/// Reads a recording back, of any format version from
/// [`OLDEST_FORMAT_VERSION`] to [`FORMAT_VERSION`]: the header at
/// creation, then one frame per call, each as format [`FORMAT_VERSION`]
/// holds it. It is also an iterator of frames that stops after the first
/// error.
pub struct Replay<R: Read> {
    r: R,
    path: Option<PathBuf>,
    /// Bytes consumed so far: where the next read starts.
    offset: u64,
    info: RecordingInfo,
    format: Format,
    /// The payload being decoded, kept for its capacity.
    buf: Vec<u8>,
    /// Set at the end of the file or after an error.
    done: bool,
}

impl Replay<BufReader<File>> {
    /// Opens `path` and checks its header.
    pub fn open(path: &Path) -> Result<Self, RecordError> {
        let file = File::open(path).map_err(|source| RecordError::Io {
            path: Some(path.to_path_buf()),
            source,
        })?;
        Replay::start(BufReader::new(file), Some(path.to_path_buf()))
    }
}

impl<R: Read> Replay<R> {
    /// Reads and checks the header.
    pub fn new(r: R) -> Result<Self, RecordError> {
        Replay::start(r, None)
    }

    fn start(r: R, path: Option<PathBuf>) -> Result<Self, RecordError> {
        let mut rp = Replay {
            r,
            path,
            offset: 0,
            info: RecordingInfo::default(),
            format: Format::V2,
            buf: Vec::new(),
            done: false,
        };
        rp.read_header()?;
        Ok(rp)
    }

    /// Where and when the recording was made.
    pub fn info(&self) -> &RecordingInfo {
        &self.info
    }

    /// The format version of the file (frames come converted to the
    /// current one).
    pub fn format_version(&self) -> u16 {
        match self.format {
            Format::V1(_) => 1,
            Format::V2 => 2,
        }
    }

    /// The next frame, or `Ok(None)` at a clean end of file (exactly at a
    /// frame boundary). Frames of unknown kinds are skipped. After an error
    /// or the end, it keeps returning `Ok(None)`.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, RecordError> {
        if self.done {
            return Ok(None);
        }
        let next = self.read_frame();
        if !matches!(next, Ok(Some(_))) {
            self.done = true;
        }
        next
    }

    fn read_header(&mut self) -> Result<(), RecordError> {
        let mut magic = [0u8; MAGIC.len()];
        match self.fill(&mut magic)? {
            0 => {
                return Err(RecordError::NotARecording {
                    why: "the file is empty",
                })
            }
            n if n < MAGIC.len() => {
                return Err(RecordError::NotARecording {
                    why: "the file is too short",
                })
            }
            _ if magic != MAGIC => {
                return Err(RecordError::NotARecording {
                    why: "the file does not start with the recording magic",
                })
            }
            _ => {}
        }
        self.format = match self.u16()? {
            1 => Format::V1(self.v1_header()?),
            2 => {
                self.info_fields()?;
                Format::V2
            }
            got => {
                return Err(RecordError::Version {
                    got,
                    want: FORMAT_VERSION,
                })
            }
        };
        Ok(())
    }

    /// The header fields every format has, in this order: both clocks,
    /// hostname, kernel release.
    fn info_fields(&mut self) -> Result<(), RecordError> {
        self.info.started_realtime_ns = self.u64()?;
        self.info.started_monotonic_ns = self.u64()?;
        self.info.hostname = self.string("hostname")?;
        self.info.kernel = self.string("kernel release")?;
        Ok(())
    }

    fn read_frame(&mut self) -> Result<Option<Frame>, RecordError> {
        loop {
            let start = self.offset;
            let mut head = [0u8; FRAME_HEAD];
            match self.fill(&mut head)? {
                0 => return Ok(None),
                FRAME_HEAD => {}
                _ => return Err(self.truncated()),
            }
            let kind = head[0];
            let len = u32::from_le_bytes([head[1], head[2], head[3], head[4]]);
            if len > MAX_FRAME {
                return Err(RecordError::Corrupt {
                    offset: start,
                    what: format!("frame length {len} is over the 1 MiB limit"),
                });
            }
            match kind {
                KIND_RESERVED => {
                    return Err(RecordError::Corrupt {
                        offset: start,
                        what: "frame kind 0 is reserved (zero-filled data?)".to_string(),
                    })
                }
                KIND_SNAPSHOT if matches!(self.format, Format::V2) => {}
                KIND_EVENT..=KIND_SYMBOL => {}
                _ => {
                    self.skip(u64::from(len))?;
                    continue;
                }
            }
            let frame = match self.format {
                Format::V1(abi) => self.v1_frame(abi, start, kind, len)?,
                Format::V2 => self.v2_frame(start, kind, len)?,
            };
            if let Err(what) = check_frame(&frame) {
                return Err(RecordError::Corrupt {
                    offset: start,
                    what: what.to_string(),
                });
            }
            return Ok(Some(frame));
        }
    }

    /// The payload of a format-2 frame of a known `kind`.
    fn v2_frame(&mut self, start: u64, kind: u8, len: u32) -> Result<Frame, RecordError> {
        let len = len as usize;
        if kind == KIND_LINK && len > MAX_STRING {
            return Err(RecordError::Corrupt {
                offset: start,
                what: format!("link frame of {len} bytes"),
            });
        }
        self.payload(len)?;
        let buf = &self.buf;
        match kind {
            KIND_EVENT => payload(start, "event", buf).map(Frame::Event),
            KIND_TICK => payload(start, "tick", buf).map(Frame::Tick),
            KIND_NETNS_NAME => payload(start, "namespace name", buf)
                .map(|(inode, name)| Frame::NetnsName { inode, name }),
            KIND_DROP_REASONS => payload(start, "drop reasons", buf).map(Frame::DropReasons),
            KIND_SCOPE => {
                payload(start, "scope", buf).map(|(netns, owner_cgroup, label)| Frame::Scope {
                    netns,
                    owner_cgroup,
                    label,
                })
            }
            KIND_LINK => payload(start, "link", buf).map(Frame::Link),
            KIND_SNAPSHOT => payload(start, "snapshot", buf).map(Frame::Snapshot),
            _ => payload(start, "symbol", buf).map(|(addr, name)| Frame::Symbol { addr, name }),
        }
    }

    /// Reads `len` payload bytes into `self.buf`, growing it one step at a
    /// time as the bytes arrive.
    fn payload(&mut self, len: usize) -> Result<(), RecordError> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let mut read = Ok(());
        while buf.len() < len && read.is_ok() {
            let at = buf.len();
            buf.resize(at + (len - at).min(READ_STEP), 0);
            read = self.exact(&mut buf[at..]);
        }
        self.buf = buf;
        read
    }

    /// Reads until `buf` is full or the file ends; returns the bytes read.
    fn fill(&mut self, buf: &mut [u8]) -> Result<usize, RecordError> {
        let mut n = 0;
        while n < buf.len() {
            match self.r.read(&mut buf[n..]) {
                Ok(0) => break,
                // `min`: a reader claiming more than it was given is not
                // trusted to index with.
                Ok(k) => n = (n + k).min(buf.len()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(RecordError::Io {
                        path: self.path.clone(),
                        source,
                    })
                }
            }
        }
        self.offset += n as u64;
        Ok(n)
    }

    /// Fills `buf` entirely, or reports the file truncated where it ended.
    fn exact(&mut self, buf: &mut [u8]) -> Result<(), RecordError> {
        if self.fill(buf)? < buf.len() {
            return Err(self.truncated());
        }
        Ok(())
    }

    fn skip(&mut self, mut len: u64) -> Result<(), RecordError> {
        let mut buf = [0u8; 4096];
        while len > 0 {
            let n = len.min(buf.len() as u64) as usize;
            self.exact(&mut buf[..n])?;
            len -= n as u64;
        }
        Ok(())
    }

    fn truncated(&self) -> RecordError {
        RecordError::Truncated {
            offset: self.offset,
        }
    }

    fn u16(&mut self) -> Result<u16, RecordError> {
        let mut b = [0u8; 2];
        self.exact(&mut b)?;
        Ok(u16::from_le_bytes(b))
    }

    fn u32(&mut self) -> Result<u32, RecordError> {
        let mut b = [0u8; 4];
        self.exact(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn u64(&mut self) -> Result<u64, RecordError> {
        let mut b = [0u8; 8];
        self.exact(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// A length-prefixed UTF-8 string of at most [`MAX_STRING`] bytes.
    fn string(&mut self, what: &str) -> Result<String, RecordError> {
        let at = self.offset;
        let len = self.u32()?;
        if len as usize > MAX_STRING {
            return Err(RecordError::Corrupt {
                offset: at,
                what: format!("{what} length {len} is over the {MAX_STRING}-byte limit"),
            });
        }
        let mut b = vec![0u8; len as usize];
        self.exact(&mut b)?;
        String::from_utf8(b).map_err(|_| RecordError::Corrupt {
            offset: at + 4,
            what: format!("{what} is not UTF-8"),
        })
    }
}

/// One postcard value filling `bytes` exactly: the payload of the frame at
/// `start`.
fn payload<'a, T: Deserialize<'a>>(
    start: u64,
    what: &str,
    bytes: &'a [u8],
) -> Result<T, RecordError> {
    let corrupt = |why: String| RecordError::Corrupt {
        offset: start,
        what: format!("{what} frame: {why}"),
    };
    match postcard::take_from_bytes::<T>(bytes) {
        Ok((v, [])) => Ok(v),
        Ok((_, rest)) => Err(corrupt(format!("{} bytes after its value", rest.len()))),
        Err(e) => Err(corrupt(e.to_string())),
    }
}

impl<R: Read> Iterator for Replay<R> {
    type Item = Result<Frame, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_frame().transpose()
    }
}
