//! The rtnetlink socket of the calling thread's namespace: requests,
//! replies frame by frame, the `RTM_GETLINK` dump (redone when interrupted)
//! and `RTM_GETNSID` queries.

use std::fs::File;
use std::os::fd::AsRawFd;

use netlink_packet_core::{
    NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload, Parseable, NLMSG_DONE,
    NLMSG_ERROR, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST,
};
use netlink_packet_route::link::LinkMessage;
use netlink_packet_route::nsid::{NsidAttribute, NsidMessage};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use super::parse::{decode_link, RawLink};

/// A blocking rtnetlink socket of the calling thread's namespace.
pub(super) struct RtSocket {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
}

/// `recv` flag: return a datagram's real length even when it was cut.
const MSG_TRUNC: i32 = 0x20;

/// Attempts at a dump that keeps being interrupted by changes.
const DUMP_ATTEMPTS: usize = 4;

impl RtSocket {
    pub(super) fn open() -> std::io::Result<RtSocket> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        Ok(RtSocket {
            sock,
            seq: 0,
            // Dump chunks are at most 32 KiB (netlink's max_recvmsg_len).
            buf: vec![0; 64 * 1024],
        })
    }

    fn send(&mut self, msg: RouteNetlinkMessage, flags: u16) -> Result<u32, String> {
        self.seq = self.seq.wrapping_add(1);
        let mut packet = NetlinkMessage::new(NetlinkHeader::default(), NetlinkPayload::from(msg));
        packet.header.flags = flags;
        packet.header.sequence_number = self.seq;
        packet.finalize();
        let mut bytes = vec![0; packet.buffer_len()];
        packet.serialize(&mut bytes);
        self.sock
            .send(&bytes, 0)
            .map_err(|e| format!("send: {e}"))?;
        Ok(self.seq)
    }

    /// One datagram into `self.buf`; returns its length.
    fn recv(&mut self) -> Result<usize, String> {
        loop {
            match self.sock.recv(&mut &mut self.buf[..], MSG_TRUNC) {
                Ok(n) if n > self.buf.len() => {
                    return Err(format!("datagram of {n} bytes truncated"))
                }
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("recv: {e}")),
            }
        }
    }

    pub(super) fn dump_links(&mut self) -> Result<Vec<RawLink>, String> {
        let mut last_err = String::new();
        for _ in 0..DUMP_ATTEMPTS {
            match self.dump_links_once()? {
                Some(links) => return Ok(links),
                None => last_err = "interrupted by concurrent changes (NLM_F_DUMP_INTR)".into(),
            }
        }
        Err(format!("{last_err}, {DUMP_ATTEMPTS} times"))
    }

    /// `None` when the dump was interrupted and must be redone.
    fn dump_links_once(&mut self) -> Result<Option<Vec<RawLink>>, String> {
        let seq = self.send(
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            NLM_F_REQUEST | NLM_F_DUMP,
        )?;
        let mut links = Vec::new();
        let mut interrupted = false;
        self.replies(seq, |kind, flags, payload| {
            if flags & NLM_F_DUMP_INTR != 0 {
                interrupted = true;
            }
            match kind {
                NLMSG_DONE => {
                    // DONE carries the dump's status: an i32, < 0 on failure.
                    if let Some(code) = status_code(payload) {
                        if code < 0 {
                            return Err(errno_text(code));
                        }
                    }
                    Ok(Some(()))
                }
                RTM_NEWLINK => {
                    links.push(decode_link(payload)?);
                    Ok(None)
                }
                _ => Ok(None),
            }
        })?;
        Ok((!interrupted).then_some(links))
    }

    /// Reads the replies to request `seq` frame by frame until `on` returns
    /// a result; NLMSG_ERROR ends with an error. Frames of other requests
    /// are skipped.
    fn replies<T>(
        &mut self,
        seq: u32,
        mut on: impl FnMut(u16, u16, &[u8]) -> Result<Option<T>, String>,
    ) -> Result<T, String> {
        loop {
            let n = self.recv()?;
            let mut off = 0;
            while off < n {
                let frame = NetlinkBuffer::new_checked(&self.buf[off..n])
                    .map_err(|e| format!("bad netlink frame: {e}"))?;
                let len = frame.length() as usize;
                if len == 0 {
                    break;
                }
                off += (len + 3) & !3;
                if frame.sequence_number() != seq {
                    continue;
                }
                if frame.message_type() == NLMSG_ERROR {
                    let code = status_code(frame.payload()).unwrap_or(-1);
                    return Err(errno_text(code));
                }
                if let Some(done) = on(frame.message_type(), frame.flags(), frame.payload())? {
                    return Ok(done);
                }
            }
        }
    }

    /// The nsid this socket's namespace uses for the namespace open as
    /// `target`; `None` when it has assigned none.
    pub(super) fn nsid_of(&mut self, target: &File) -> Result<Option<i32>, String> {
        let mut msg = NsidMessage::default();
        // NETNSA_FD is an fd number of this process (fds are shared by all
        // threads, whatever namespace each is in).
        let fd = u32::try_from(target.as_raw_fd()).map_err(|_| "negative fd".to_string())?;
        msg.attributes.push(NsidAttribute::Fd(fd));
        let seq = self.send(RouteNetlinkMessage::GetNsId(msg), NLM_F_REQUEST)?;
        self.replies(seq, |kind, _, payload| {
            if kind != RTM_NEWNSID {
                return Ok(None);
            }
            let reply =
                NsidMessage::parse(payload).map_err(|e| format!("decoding RTM_NEWNSID: {e}"))?;
            let id = reply.attributes.iter().find_map(|a| match a {
                NsidAttribute::Id(id) => Some(*id),
                _ => None,
            });
            Ok(Some(id.filter(|&id| id >= 0)))
        })
    }
}

const RTM_NEWLINK: u16 = 16;
const RTM_NEWNSID: u16 = 88;

/// The leading i32 of an NLMSG_DONE / NLMSG_ERROR payload.
fn status_code(payload: &[u8]) -> Option<i32> {
    payload
        .get(..4)
        .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
}

fn errno_text(code: i32) -> String {
    let errno = nix::errno::Errno::from_raw(code.saturating_neg());
    format!("kernel error {code} ({errno})")
}
