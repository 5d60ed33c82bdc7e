//! Reading format 1, the recordings made before format 2: the rest of its
//! header and its frames, each converted to the [`Frame`] format 2 holds
//! as it is read. Event frames carry `struct hs_event` bytes; their ABI is
//! known only to [`crate::event::decode`] ([`RecordedAbi`]), which turns
//! them into domain events.

use std::io::Read;

use super::{
    Frame, RecordError, Replay, Tick, KIND_DROP_REASONS, KIND_EVENT, KIND_LINK, KIND_NETNS_NAME,
    KIND_SCOPE, KIND_SYMBOL, KIND_TICK, MAX_DROP_REASONS, MAX_REASON_NAME, MAX_SCOPE_NETNS,
    MAX_STRING,
};
use crate::event::decode::{RecordedAbi, MAX_RECORDED_SIZE};

/// Bytes of a format-1 tick frame: seven u64.
const TICK_SIZE: usize = 7 * 8;

impl<R: Read> Replay<R> {
    /// The format-1 header after the version: event ABI and record size,
    /// then the fields format 2 has too.
    pub(super) fn v1_header(&mut self) -> Result<RecordedAbi, RecordError> {
        let abi_version = self.u16()?;
        let size = self.u32()?;
        let abi = RecordedAbi::from_header(abi_version, size).ok_or(RecordError::AbiMismatch {
            abi: abi_version,
            size,
        })?;
        self.info_fields()?;
        Ok(abi)
    }

    /// The payload of a format-1 frame of a known `kind` (the head was
    /// read and checked; `len` is at most 1 MiB).
    pub(super) fn v1_frame(
        &mut self,
        abi: RecordedAbi,
        start: u64,
        kind: u8,
        len: u32,
    ) -> Result<Frame, RecordError> {
        let corrupt_len = |want: usize| RecordError::Corrupt {
            offset: start,
            what: format!("frame of kind {kind} is {len} bytes, expected {want}"),
        };
        match kind {
            KIND_EVENT => {
                let want = abi.record_size();
                if len as usize != want {
                    return Err(corrupt_len(want));
                }
                let mut b = [0u8; MAX_RECORDED_SIZE];
                self.exact(&mut b[..want])?;
                match abi.decode(&b[..want]) {
                    Ok(ev) => Ok(Frame::Event(ev)),
                    Err(source) => Err(RecordError::Decode {
                        offset: start,
                        source,
                    }),
                }
            }
            KIND_TICK => {
                if len as usize != TICK_SIZE {
                    return Err(corrupt_len(TICK_SIZE));
                }
                let mut f = [0u64; 7];
                for v in &mut f {
                    *v = self.u64()?;
                }
                let [now_ns, emitted, lost, received, decode_errors, channel_dropped, reused] = f;
                Ok(Frame::Tick(Tick {
                    now_ns,
                    emitted,
                    lost,
                    received,
                    decode_errors,
                    channel_dropped,
                    reused,
                }))
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
                let name = std::str::from_utf8(&b[8..len]).map_err(|_| RecordError::Corrupt {
                    offset: start,
                    what: "symbol name is not UTF-8".to_string(),
                })?;
                Ok(Frame::Symbol {
                    addr: u64::from_le_bytes(a),
                    name: name.to_owned(),
                })
            }
            KIND_LINK => {
                // A JSON object.
                let len = len as usize;
                if len > MAX_STRING {
                    return Err(RecordError::Corrupt {
                        offset: start,
                        what: format!("link frame of {len} bytes"),
                    });
                }
                let mut b = [0u8; MAX_STRING];
                self.exact(&mut b[..len])?;
                let l = serde_json::from_slice(&b[..len]).map_err(|e| RecordError::Corrupt {
                    offset: start,
                    what: format!("link frame: {e}"),
                })?;
                Ok(Frame::Link(l))
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
                let owner_cgroup = self.u64()?;
                let label_len = usize::from(self.u16()?);
                if label_len > MAX_STRING || 10 + label_len + 4 > len {
                    return Err(corrupt("label length"));
                }
                let mut b = [0u8; MAX_STRING];
                self.exact(&mut b[..label_len])?;
                let label = std::str::from_utf8(&b[..label_len])
                    .map_err(|_| corrupt("label is not UTF-8"))?
                    .to_owned();
                let count = self.u32()? as usize;
                if count > MAX_SCOPE_NETNS || 10 + label_len + 4 + 4 * count != len {
                    return Err(corrupt("namespace count"));
                }
                let mut netns = Vec::with_capacity(count.min(1024));
                for _ in 0..count {
                    netns.push(self.u32()?);
                }
                Ok(Frame::Scope {
                    netns,
                    owner_cgroup,
                    label,
                })
            }
            KIND_DROP_REASONS => {
                // Entry by entry: a length field never sizes an allocation.
                let mut left = len as usize;
                let mut reasons = Vec::new();
                while left > 0 {
                    if reasons.len() == MAX_DROP_REASONS {
                        return Err(RecordError::Corrupt {
                            offset: start,
                            what: format!("over {MAX_DROP_REASONS} drop reasons"),
                        });
                    }
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
                    let name = std::str::from_utf8(&b[..n]).map_err(|_| RecordError::Corrupt {
                        offset: start,
                        what: "drop reason name is not UTF-8".to_string(),
                    })?;
                    reasons.push((value, name.to_owned()));
                    left -= 6 + n;
                }
                Ok(Frame::DropReasons(reasons))
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
                let name = std::str::from_utf8(&b[4..len]).map_err(|_| RecordError::Corrupt {
                    offset: start,
                    what: "namespace name is not UTF-8".to_string(),
                })?;
                Ok(Frame::NetnsName {
                    inode,
                    name: name.to_owned(),
                })
            }
            _ => Err(RecordError::Corrupt {
                offset: start,
                what: format!("frame kind {kind} is not one of format 1"),
            }),
        }
    }
}
