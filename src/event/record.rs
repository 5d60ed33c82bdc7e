//! Recordings: the event stream of a live run saved to a file, so that
//! `hopscope replay FILE` can rebuild exactly the state the live run had.
//! [`Recorder`] writes one, [`Replay`] reads one back frame by frame.
//!
//! # Format, version 1
//!
//! All integers are little-endian. The file starts with a header:
//!
//! | offset  | size | field                                                   |
//! |---------|------|---------------------------------------------------------|
//! | 0       | 16   | magic `"HOPSCOPE-REC\r\n\x1a\n"` ([`MAGIC`])            |
//! | 16      | 2    | format version, u16 ([`FORMAT_VERSION`] = 1)            |
//! | 18      | 2    | event ABI version, u16 (`HS_ABI_VERSION` of hopscope.h) |
//! | 20      | 4    | event record size, u32 (256, `sizeof(struct hs_event)`) |
//! | 24      | 8    | `started_realtime_ns`, u64: CLOCK_REALTIME at start     |
//! | 32      | 8    | `started_monotonic_ns`, u64: CLOCK_MONOTONIC, same time |
//! | 40      | 4    | hostname length H, u32, at most 4096                    |
//! | 44      | H    | hostname, UTF-8                                         |
//! | 44+H    | 4    | kernel release length K, u32, at most 4096              |
//! | 48+H    | K    | kernel release (`uname -r`), UTF-8                      |
//!
//! Bytes 0..18 (magic and format version) keep their place in every future
//! version, so any hopscope can tell a recording it cannot read from a file
//! that is not a recording at all.
//!
//! Then frames follow, up to the end of the file:
//!
//! | offset | size | field                                |
//! |--------|------|--------------------------------------|
//! | 0      | 1    | kind                                 |
//! | 1      | 4    | payload length N, u32, at most 1 MiB |
//! | 5      | N    | payload                              |
//!
//! Kinds:
//! - `1` Event: N = the event record size; the `struct hs_event` bytes
//!   exactly as the ring buffer carries them (see [`encode`](super::encode)),
//!   decoded with [`decode`] on replay. Timestamps are CLOCK_MONOTONIC.
//!   Recordings of the first event ABI (version 1, 192-byte records) are
//!   read too: each record is converted as it is read ([`decode_v1`]).
//! - `2` Tick: N = 56; seven u64: `now_ns` (CLOCK_MONOTONIC), `emitted`,
//!   `lost`, `received`, `decode_errors`, `channel_dropped`, `reused`, the
//!   cumulative counters of the live run at that moment (see [`Tick`]).
//! - `3` NetnsName: N = 4 + L, L at most 4096; the namespace inode (u32)
//!   and its name (UTF-8, L bytes), as the live run learned it.
//! - `4` DropReasons: the recording kernel's `enum skb_drop_reason`, as
//!   entries of value (u32), name length L (u16, at most 255) and name
//!   (UTF-8, L bytes), filling the payload exactly.
//! - `5` Scope: what the live run showed: owner cgroup (u64, 0 for any),
//!   label length L (u16, at most 4096), label (UTF-8), namespace count C
//!   (u32, at most 65536), C namespace inodes (u32); N = 14 + L + 4C.
//! - `6` Link: N at most 4096; one link of one namespace as the live run
//!   learned it over rtnetlink, as a UTF-8 JSON object with the fields of
//!   `topology::links::LinkInfo` (netns, ifindex, ifname, kind, kind_name,
//!   master, peer, parent, vlan_id, vxlan_id, mtu, up).
//! - `7` Symbol: N = 8 + L, L at most 4096; a kernel code address (u64)
//!   and its `function+0xoff` (UTF-8), as the live run resolved it.
//! - `0` is reserved and makes the file corrupt: a crash can leave a
//!   zero-filled tail, which must not read as a run of empty frames.
//! - Any other kind is skipped using its length, so newer writers can add
//!   kinds that older readers ignore.
//!
//! A file ends cleanly only at a frame boundary; anything else is reported as
//! truncated. Reading never panics and never allocates more than 4096 bytes
//! because of a length field.

use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::time::{clock_gettime, ClockId};
use thiserror::Error;

use super::decode::{decode, decode_v1, DecodeError};
use super::encode::encode_raw;
use super::HopEvent;
use crate::bpf::abi;

/// The first 16 bytes of every recording.
pub const MAGIC: [u8; 16] = *b"HOPSCOPE-REC\r\n\x1a\n";
/// The format version this hopscope writes and reads.
pub const FORMAT_VERSION: u16 = 1;
/// Longest hostname or kernel release accepted, in bytes.
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
/// Most namespaces a scope frame lists.
const MAX_SCOPE_NETNS: usize = 65_536;
/// Longest drop reason name in a recording.
const MAX_REASON_NAME: usize = 255;

const FRAME_HEAD: usize = 5;
const TICK_SIZE: usize = 7 * 8;
/// `EVENT_SIZE` as written in the header and in event frame lengths.
const EVENT_SIZE_U32: u32 = abi::EVENT_SIZE as u32;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
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

impl Tick {
    fn to_bytes(self) -> [u8; TICK_SIZE] {
        let fields = [
            self.now_ns,
            self.emitted,
            self.lost,
            self.received,
            self.decode_errors,
            self.channel_dropped,
            self.reused,
        ];
        let mut b = [0u8; TICK_SIZE];
        for (chunk, v) in b.chunks_exact_mut(8).zip(fields) {
            chunk.copy_from_slice(&v.to_le_bytes());
        }
        b
    }

    fn from_bytes(b: &[u8; TICK_SIZE]) -> Tick {
        let mut f = [0u64; 7];
        for (v, chunk) in f.iter_mut().zip(b.chunks_exact(8)) {
            let mut le = [0u8; 8];
            le.copy_from_slice(chunk);
            *v = u64::from_le_bytes(le);
        }
        let [now_ns, emitted, lost, received, decode_errors, channel_dropped, reused] = f;
        Tick {
            now_ns,
            emitted,
            lost,
            received,
            decode_errors,
            channel_dropped,
            reused,
        }
    }
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
    Link(crate::topology::links::LinkInfo),
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
    #[error("recording format version {got}, this hopscope reads {want}")]
    Version { got: u16, want: u16 },
    #[error(
        "recording holds ABI version {abi} events of {size} bytes, this hopscope reads \
         ABI version {} events of {} bytes",
        abi::ABI_VERSION,
        abi::EVENT_SIZE
    )]
    AbiMismatch { abi: u16, size: u32 },
    #[error("recording truncated at byte {offset} (the recorder was killed?)")]
    Truncated { offset: u64 },
    #[error("recording corrupt at byte {offset}: {what}")]
    Corrupt { offset: u64, what: String },
    #[error("recording corrupt at byte {offset}: bad event")]
    Decode {
        offset: u64,
        #[source]
        source: DecodeError,
    },
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

/// Writes a recording: the header at creation, then one frame per call.
/// Events are written without allocating; wrap files in a [`BufWriter`]
/// (as [`Recorder::create`] does) so that they cost no syscall either.
pub struct Recorder<W: Write> {
    w: W,
    frames: u64,
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
        let mut head = [0u8; 40];
        head[..16].copy_from_slice(&MAGIC);
        head[16..18].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        head[18..20].copy_from_slice(&abi::ABI_VERSION.to_le_bytes());
        head[20..24].copy_from_slice(&EVENT_SIZE_U32.to_le_bytes());
        head[24..32].copy_from_slice(&info.started_realtime_ns.to_le_bytes());
        head[32..40].copy_from_slice(&info.started_monotonic_ns.to_le_bytes());
        w.write_all(&head)?;
        write_string(&mut w, "hostname", &info.hostname)?;
        write_string(&mut w, "kernel release", &info.kernel)?;
        Ok(Recorder { w, frames: 0 })
    }

    /// Appends one event frame. Heap-free.
    pub fn event(&mut self, ev: &HopEvent) -> io::Result<()> {
        let raw = encode_raw(ev);
        let mut buf = [0u8; FRAME_HEAD + abi::EVENT_SIZE];
        buf[0] = KIND_EVENT;
        buf[1..FRAME_HEAD].copy_from_slice(&EVENT_SIZE_U32.to_le_bytes());
        buf[FRAME_HEAD..].copy_from_slice(abi::event_bytes(&raw));
        self.w.write_all(&buf)?;
        self.frames += 1;
        Ok(())
    }

    /// Appends one tick frame.
    pub fn tick(&mut self, t: &Tick) -> io::Result<()> {
        let mut buf = [0u8; FRAME_HEAD + TICK_SIZE];
        buf[0] = KIND_TICK;
        buf[1..FRAME_HEAD].copy_from_slice(&(TICK_SIZE as u32).to_le_bytes());
        buf[FRAME_HEAD..].copy_from_slice(&t.to_bytes());
        self.w.write_all(&buf)?;
        self.frames += 1;
        Ok(())
    }

    /// Appends any frame (copying or rewriting recordings).
    pub fn frame(&mut self, f: &Frame) -> io::Result<()> {
        match f {
            Frame::Event(e) => self.event(e),
            Frame::Tick(t) => self.tick(t),
            Frame::NetnsName { inode, name } => self.netns_name(*inode, name),
            Frame::DropReasons(r) => {
                let pairs: Vec<(u32, &str)> = r.iter().map(|(v, n)| (*v, n.as_str())).collect();
                self.drop_reasons(&pairs)
            }
            Frame::Scope {
                netns,
                owner_cgroup,
                label,
            } => self.scope(netns, *owner_cgroup, label),
            Frame::Link(l) => self.link(l),
            Frame::Symbol { addr, name } => self.symbol(*addr, name),
        }
    }

    /// Appends a namespace name (at most [`MAX_STRING`] bytes).
    pub fn netns_name(&mut self, inode: u32, name: &str) -> io::Result<()> {
        if name.len() > MAX_STRING {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "namespace name over 4096 bytes",
            ));
        }
        let mut head = [0u8; FRAME_HEAD + 4];
        head[0] = KIND_NETNS_NAME;
        head[1..FRAME_HEAD].copy_from_slice(&(4 + name.len() as u32).to_le_bytes());
        head[FRAME_HEAD..].copy_from_slice(&inode.to_le_bytes());
        self.w.write_all(&head)?;
        self.w.write_all(name.as_bytes())?;
        self.frames += 1;
        Ok(())
    }

    /// Appends what the live run showed (see [`Frame::Scope`]).
    pub fn scope(&mut self, netns: &[u32], owner_cgroup: u64, label: &str) -> io::Result<()> {
        if label.len() > MAX_STRING || netns.len() > MAX_SCOPE_NETNS {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "scope too large",
            ));
        }
        let len = 8 + 2 + label.len() + 4 + 4 * netns.len();
        let mut head = [0u8; FRAME_HEAD];
        head[0] = KIND_SCOPE;
        head[1..].copy_from_slice(&(len as u32).to_le_bytes());
        self.w.write_all(&head)?;
        self.w.write_all(&owner_cgroup.to_le_bytes())?;
        self.w.write_all(&(label.len() as u16).to_le_bytes())?;
        self.w.write_all(label.as_bytes())?;
        self.w.write_all(&(netns.len() as u32).to_le_bytes())?;
        for n in netns {
            self.w.write_all(&n.to_le_bytes())?;
        }
        self.frames += 1;
        Ok(())
    }

    /// Appends a resolved code address (name at most [`MAX_STRING`] bytes).
    pub fn symbol(&mut self, addr: u64, name: &str) -> io::Result<()> {
        if name.len() > MAX_STRING {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "symbol name too long",
            ));
        }
        let mut head = [0u8; FRAME_HEAD + 8];
        head[0] = KIND_SYMBOL;
        head[1..FRAME_HEAD].copy_from_slice(&(8 + name.len() as u32).to_le_bytes());
        head[FRAME_HEAD..].copy_from_slice(&addr.to_le_bytes());
        self.w.write_all(&head)?;
        self.w.write_all(name.as_bytes())?;
        self.frames += 1;
        Ok(())
    }

    /// Appends a link (a JSON object of at most [`MAX_STRING`] bytes).
    pub fn link(&mut self, l: &crate::topology::links::LinkInfo) -> io::Result<()> {
        let json = serde_json::to_vec(l).map_err(io::Error::from)?;
        if json.len() > MAX_STRING {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "link record too large",
            ));
        }
        let mut head = [0u8; FRAME_HEAD];
        head[0] = KIND_LINK;
        head[1..].copy_from_slice(&(json.len() as u32).to_le_bytes());
        self.w.write_all(&head)?;
        self.w.write_all(&json)?;
        self.frames += 1;
        Ok(())
    }

    /// Appends the drop reason table (names of at most 255 bytes).
    pub fn drop_reasons(&mut self, reasons: &[(u32, &str)]) -> io::Result<()> {
        let len: usize = reasons.iter().map(|(_, n)| 6 + n.len()).sum();
        if len > MAX_FRAME as usize || reasons.iter().any(|(_, n)| n.len() > MAX_REASON_NAME) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "drop reason table too large",
            ));
        }
        let mut head = [0u8; FRAME_HEAD];
        head[0] = KIND_DROP_REASONS;
        head[1..].copy_from_slice(&(len as u32).to_le_bytes());
        self.w.write_all(&head)?;
        for (v, n) in reasons {
            self.w.write_all(&v.to_le_bytes())?;
            self.w.write_all(&(n.len() as u16).to_le_bytes())?;
            self.w.write_all(n.as_bytes())?;
        }
        self.frames += 1;
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }

    /// Flushes and hands back the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.w.flush()?;
        Ok(self.w)
    }

    /// Frames written so far (events and ticks).
    pub fn frames(&self) -> u64 {
        self.frames
    }
}

fn write_string<W: Write>(w: &mut W, what: &str, s: &str) -> io::Result<()> {
    if s.len() > MAX_STRING {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{what} is {} bytes, over the {MAX_STRING}-byte limit",
                s.len()
            ),
        ));
    }
    w.write_all(&(s.len() as u32).to_le_bytes())?;
    w.write_all(s.as_bytes())
}

/// Reads a recording back: the header at creation, then one frame per call.
/// It is also an iterator of frames that stops after the first error.
pub struct Replay<R: Read> {
    r: R,
    path: Option<PathBuf>,
    /// Bytes consumed so far: where the next read starts.
    offset: u64,
    info: RecordingInfo,
    /// The header's event ABI: today's, or the first one (converted).
    abi_version: u16,
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
            abi_version: abi::ABI_VERSION,
            done: false,
        };
        rp.read_header()?;
        Ok(rp)
    }

    /// Where and when the recording was made.
    pub fn info(&self) -> &RecordingInfo {
        &self.info
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
        let version = self.u16()?;
        if version != FORMAT_VERSION {
            return Err(RecordError::Version {
                got: version,
                want: FORMAT_VERSION,
            });
        }
        let abi_version = self.u16()?;
        let size = self.u32()?;
        let known = (abi_version == abi::ABI_VERSION && size == EVENT_SIZE_U32)
            || (abi_version == abi::ABI_VERSION_1 && size as usize == abi::EVENT_SIZE_1);
        if !known {
            return Err(RecordError::AbiMismatch {
                abi: abi_version,
                size,
            });
        }
        self.abi_version = abi_version;
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
            let corrupt_len = |want: usize| RecordError::Corrupt {
                offset: start,
                what: format!("frame of kind {kind} is {len} bytes, expected {want}"),
            };
            match kind {
                KIND_RESERVED => {
                    return Err(RecordError::Corrupt {
                        offset: start,
                        what: "frame kind 0 is reserved (zero-filled data?)".to_string(),
                    })
                }
                KIND_EVENT => {
                    // Records of the first ABI are converted as they are read.
                    let (want, v1) = if self.abi_version == abi::ABI_VERSION_1 {
                        (abi::EVENT_SIZE_1, true)
                    } else {
                        (abi::EVENT_SIZE, false)
                    };
                    if len as usize != want {
                        return Err(corrupt_len(want));
                    }
                    let mut b = [0u8; abi::EVENT_SIZE];
                    self.exact(&mut b[..want])?;
                    let decoded = if v1 {
                        decode_v1(&b[..want])
                    } else {
                        decode(&b)
                    };
                    return match decoded {
                        Ok(ev) => Ok(Some(Frame::Event(ev))),
                        Err(source) => Err(RecordError::Decode {
                            offset: start,
                            source,
                        }),
                    };
                }
                KIND_TICK => {
                    if len as usize != TICK_SIZE {
                        return Err(corrupt_len(TICK_SIZE));
                    }
                    let mut b = [0u8; TICK_SIZE];
                    self.exact(&mut b)?;
                    return Ok(Some(Frame::Tick(Tick::from_bytes(&b))));
                }
                KIND_SYMBOL => {
                    let len = len as usize;
                    if !(8..=8 + MAX_STRING).contains(&len) {
                        return Err(RecordError::Corrupt {
                            offset: start,
                            what: format!("symbol frame of {len} bytes"),
                        });
                    }
                    let mut b = [0u8; 8 + MAX_STRING];
                    self.exact(&mut b[..len])?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(&b[..8]);
                    let name =
                        std::str::from_utf8(&b[8..len]).map_err(|_| RecordError::Corrupt {
                            offset: start,
                            what: "symbol name is not UTF-8".to_string(),
                        })?;
                    return Ok(Some(Frame::Symbol {
                        addr: u64::from_le_bytes(a),
                        name: name.to_owned(),
                    }));
                }
                KIND_LINK => {
                    let len = len as usize;
                    if len > MAX_STRING {
                        return Err(RecordError::Corrupt {
                            offset: start,
                            what: format!("link frame of {len} bytes"),
                        });
                    }
                    let mut b = [0u8; MAX_STRING];
                    self.exact(&mut b[..len])?;
                    let l =
                        serde_json::from_slice(&b[..len]).map_err(|e| RecordError::Corrupt {
                            offset: start,
                            what: format!("link frame: {e}"),
                        })?;
                    return Ok(Some(Frame::Link(l)));
                }
                KIND_SCOPE => {
                    let corrupt = |what: &str| RecordError::Corrupt {
                        offset: start,
                        what: format!("scope frame: {what}"),
                    };
                    let len = len as usize;
                    if len < 14 {
                        return Err(corrupt("too short"));
                    }
                    let mut fixed = [0u8; 10];
                    self.exact(&mut fixed)?;
                    let mut cg = [0u8; 8];
                    cg.copy_from_slice(&fixed[..8]);
                    let owner_cgroup = u64::from_le_bytes(cg);
                    let label_len = usize::from(u16::from_le_bytes([fixed[8], fixed[9]]));
                    if label_len > MAX_STRING || 10 + label_len + 4 > len {
                        return Err(corrupt("label length"));
                    }
                    let mut b = [0u8; MAX_STRING];
                    self.exact(&mut b[..label_len])?;
                    let label = std::str::from_utf8(&b[..label_len])
                        .map_err(|_| corrupt("label is not UTF-8"))?
                        .to_owned();
                    let mut c = [0u8; 4];
                    self.exact(&mut c)?;
                    let count = u32::from_le_bytes(c) as usize;
                    if count > MAX_SCOPE_NETNS || 10 + label_len + 4 + 4 * count != len {
                        return Err(corrupt("namespace count"));
                    }
                    let mut netns = Vec::with_capacity(count.min(1024));
                    for _ in 0..count {
                        self.exact(&mut c)?;
                        netns.push(u32::from_le_bytes(c));
                    }
                    return Ok(Some(Frame::Scope {
                        netns,
                        owner_cgroup,
                        label,
                    }));
                }
                KIND_DROP_REASONS => {
                    // Entry by entry: a length field never sizes an allocation.
                    let mut left = len as usize;
                    let mut reasons = Vec::new();
                    while left > 0 {
                        let mut eh = [0u8; 6];
                        if left < eh.len() {
                            return Err(RecordError::Corrupt {
                                offset: start,
                                what: "drop reason entry cut short".to_string(),
                            });
                        }
                        self.exact(&mut eh)?;
                        let value = u32::from_le_bytes([eh[0], eh[1], eh[2], eh[3]]);
                        let n = usize::from(u16::from_le_bytes([eh[4], eh[5]]));
                        if n > MAX_REASON_NAME || 6 + n > left {
                            return Err(RecordError::Corrupt {
                                offset: start,
                                what: format!("drop reason name of {n} bytes"),
                            });
                        }
                        let mut b = [0u8; MAX_REASON_NAME];
                        self.exact(&mut b[..n])?;
                        let name =
                            std::str::from_utf8(&b[..n]).map_err(|_| RecordError::Corrupt {
                                offset: start,
                                what: "drop reason name is not UTF-8".to_string(),
                            })?;
                        reasons.push((value, name.to_owned()));
                        left -= 6 + n;
                    }
                    return Ok(Some(Frame::DropReasons(reasons)));
                }
                KIND_NETNS_NAME => {
                    let len = len as usize;
                    if !(4..=4 + MAX_STRING).contains(&len) {
                        return Err(RecordError::Corrupt {
                            offset: start,
                            what: format!("namespace name frame of {len} bytes"),
                        });
                    }
                    let mut b = [0u8; 4 + MAX_STRING];
                    self.exact(&mut b[..len])?;
                    let inode = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                    let name =
                        std::str::from_utf8(&b[4..len]).map_err(|_| RecordError::Corrupt {
                            offset: start,
                            what: "namespace name is not UTF-8".to_string(),
                        })?;
                    return Ok(Some(Frame::NetnsName {
                        inode,
                        name: name.to_owned(),
                    }));
                }
                _ => self.skip(u64::from(len))?,
            }
        }
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

impl<R: Read> Iterator for Replay<R> {
    type Item = Result<Frame, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_frame().transpose()
    }
}
