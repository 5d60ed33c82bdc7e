//! The ABI module: the only place that reinterprets kernel bytes as structs.
//!
//! A ring record is a full `struct hs_event` (its first field: the ABI
//! version), or a typed record whose first field is its kind: a compact
//! device hop `struct hs_hop` ([`REC_HOP`]), a device name `struct hs_dev`
//! ([`REC_DEV`]), a socket hop `struct hs_sock` ([`REC_SOCK`]), a
//! packet's end `struct hs_end` ([`REC_END`]) or its first bytes
//! `struct hs_snap` ([`REC_SNAP`], followed by the bytes); [`record_kind`]
//! tells them apart.
//!
//! The types come from the skeleton libbpf-cargo generated from
//! `bpf/hopscope.h` (through the object's BTF), so nothing is mirrored by
//! hand. The ring buffer hands out byte slices with no alignment promise
//! beyond 8 bytes, so events are copied out (`plain::copy_from_bytes`), never
//! borrowed in place.

pub use super::skel::types::{
    hs_cbpf_insn as RawInsn, hs_cbpf_prog as RawProgram, hs_dev as RawDev, hs_end as RawEnd,
    hs_event as RawEvent, hs_filter_ctl as RawFilterCtl, hs_hop as RawHop, hs_outer as RawOuter,
    hs_snap as RawSnap, hs_sock as RawSock, hs_tuple as RawTuple,
};

/// Must match `HS_ABI_VERSION` in bpf/hopscope.h.
pub const ABI_VERSION: u16 = 2;
/// The previous layout (192-byte records), which recordings may hold.
pub const ABI_VERSION_1: u16 = 1;
pub const EVENT_SIZE_1: usize = 192;
/// Size of one full ring buffer record.
pub const EVENT_SIZE: usize = std::mem::size_of::<RawEvent>();
/// First field of a compact hop record (`HS_REC_HOP`).
pub const REC_HOP: u16 = super::skel::types::hs_rec_kind::HS_REC_HOP.0 as u16;
/// First field of a device record (`HS_REC_DEV`).
pub const REC_DEV: u16 = super::skel::types::hs_rec_kind::HS_REC_DEV.0 as u16;
/// First field of a socket hop record (`HS_REC_SOCK`).
pub const REC_SOCK: u16 = super::skel::types::hs_rec_kind::HS_REC_SOCK.0 as u16;
/// First field of an end record (`HS_REC_END`).
pub const REC_END: u16 = super::skel::types::hs_rec_kind::HS_REC_END.0 as u16;
/// First field of a snapshot record (`HS_REC_SNAP`).
pub const REC_SNAP: u16 = super::skel::types::hs_rec_kind::HS_REC_SNAP.0 as u16;
/// `hs_snap.flags`: the bytes start at an Ethernet header.
pub const SNAP_ETHER: u16 = super::skel::types::hs_snap_flags::HS_SNAP_ETHER.0 as u16;
/// The largest `--snaplen` (`HS_SNAPLEN_MAX`).
pub const SNAPLEN_MAX: u32 = super::skel::types::hs_snap_limit::HS_SNAPLEN_MAX.0;

const _: () = assert!(std::mem::size_of::<RawEvent>() == 272);
const _: () = assert!(std::mem::size_of::<RawHop>() == 48);
const _: () = assert!(std::mem::size_of::<RawDev>() == 40);
const _: () = assert!(std::mem::size_of::<RawSock>() == 80);
const _: () = assert!(std::mem::size_of::<RawEnd>() == 64);
const _: () = assert!(std::mem::size_of::<RawSnap>() == 32);
const _: () = assert!(std::mem::size_of::<RawOuter>() == 44);
const _: () = assert!(std::mem::size_of::<RawTuple>() == 72);
const _: () = assert!(std::mem::size_of::<RawInsn>() == 8);
const _: () = assert!(std::mem::size_of::<RawProgram>() == 8 + 8 * crate::filter::expr::MAX_INSNS);
const _: () = assert!(std::mem::size_of::<RawFilterCtl>() == 16);

// SAFETY: like RawEvent: #[repr(C)], integers only, explicit padding
// (hopscope.h), sizes pinned above.
unsafe impl plain::Plain for RawProgram {}
// SAFETY: as above.
unsafe impl plain::Plain for RawFilterCtl {}

// SAFETY: RawEvent is #[repr(C)], made only of integers and integer arrays
// (no references, no bool, no enums with invalid bit patterns), so every
// byte pattern is a valid value.
unsafe impl plain::Plain for RawEvent {}

// SAFETY: like RawEvent: #[repr(C)], integers and integer arrays only,
// explicit padding (hopscope.h), sizes pinned above.
unsafe impl plain::Plain for RawHop {}
// SAFETY: as above.
unsafe impl plain::Plain for RawDev {}
// SAFETY: as above.
unsafe impl plain::Plain for RawSock {}
// SAFETY: as above.
unsafe impl plain::Plain for RawEnd {}
// SAFETY: as above.
unsafe impl plain::Plain for RawSnap {}

/// The first field of a record: an ABI version or a record kind.
pub fn record_kind(bytes: &[u8]) -> Option<u16> {
    Some(u16::from_le_bytes([*bytes.first()?, *bytes.get(1)?]))
}

/// Copies a compact hop out of `bytes`. Fails when `bytes` is too short.
pub fn read_hop(bytes: &[u8]) -> Option<RawHop> {
    let mut h = RawHop::default();
    plain::copy_from_bytes(&mut h, bytes).ok()?;
    Some(h)
}

/// Copies a device record out of `bytes`. Fails when `bytes` is too short.
pub fn read_dev(bytes: &[u8]) -> Option<RawDev> {
    let mut d = RawDev::default();
    plain::copy_from_bytes(&mut d, bytes).ok()?;
    Some(d)
}

/// Copies a socket hop record out of `bytes`. Fails when `bytes` is too short.
pub fn read_sock(bytes: &[u8]) -> Option<RawSock> {
    let mut r = RawSock::default();
    plain::copy_from_bytes(&mut r, bytes).ok()?;
    Some(r)
}

/// Copies an end record out of `bytes`. Fails when `bytes` is too short.
pub fn read_end(bytes: &[u8]) -> Option<RawEnd> {
    let mut r = RawEnd::default();
    plain::copy_from_bytes(&mut r, bytes).ok()?;
    Some(r)
}

/// Copies a snapshot record's header out of `bytes` and returns the bytes
/// after it. Fails when `bytes` is shorter than the header.
pub fn read_snap(bytes: &[u8]) -> Option<(RawSnap, &[u8])> {
    let mut r = RawSnap::default();
    plain::copy_from_bytes(&mut r, bytes).ok()?;
    Some((r, bytes.get(std::mem::size_of::<RawSnap>()..)?))
}

/// The bytes of a snapshot record's header, as the kernel would write them
/// (tests; the packet's bytes follow it).
pub fn snap_bytes(r: &RawSnap) -> &[u8] {
    // SAFETY: RawSnap is Plain and has no implicit padding (see above).
    unsafe { plain::as_bytes(r) }
}

/// The bytes of a socket hop record, as the kernel would write them (tests).
pub fn sock_bytes(r: &RawSock) -> &[u8] {
    // SAFETY: RawSock is Plain and has no implicit padding (see above).
    unsafe { plain::as_bytes(r) }
}

/// The bytes of an end record, as the kernel would write them (tests).
pub fn end_bytes(r: &RawEnd) -> &[u8] {
    // SAFETY: RawEnd is Plain and has no implicit padding (see above).
    unsafe { plain::as_bytes(r) }
}

/// The bytes of a compact hop, as the kernel would write them (tests).
pub fn hop_bytes(h: &RawHop) -> &[u8] {
    // SAFETY: RawHop is Plain and has no implicit padding (see above).
    unsafe { plain::as_bytes(h) }
}

/// The bytes of a device record, as the kernel would write them (tests).
pub fn dev_bytes(d: &RawDev) -> &[u8] {
    // SAFETY: RawDev is Plain and has no implicit padding (see above).
    unsafe { plain::as_bytes(d) }
}

/// Copies a raw event out of `bytes`. Fails when `bytes` is too short.
pub fn read_event(bytes: &[u8]) -> Option<RawEvent> {
    let mut ev = RawEvent::default();
    plain::copy_from_bytes(&mut ev, bytes).ok()?;
    Some(ev)
}

/// The bytes of an event, as the kernel would write them (tests, replay).
pub fn event_bytes(ev: &RawEvent) -> &[u8] {
    // SAFETY: RawEvent is Plain (see above) and has no padding the compiler
    // may leave uninitialised: hopscope.h pads explicitly and the asserts
    // above pin the size to the sum of its fields.
    unsafe { plain::as_bytes(ev) }
}

/// The value of one `hs_filter_progs` slot: a classic BPF program (empty:
/// reject everything). Longer programs are refused before this point.
pub fn program_bytes(insns: &[crate::filter::expr::Insn]) -> Vec<u8> {
    let mut p = RawProgram::default();
    let n = insns.len().min(p.insns.len());
    p.len = n as u32;
    for (dst, src) in p.insns.iter_mut().zip(&insns[..n]) {
        *dst = RawInsn {
            code: src.code,
            jt: src.jt,
            jf: src.jf,
            k: src.k,
        };
    }
    // SAFETY: RawProgram is Plain and fully initialised (see above).
    unsafe { plain::as_bytes(&p) }.to_vec()
}

/// The value of `hs_filter_ctl[0]`.
pub fn filter_ctl_bytes(enabled: bool, epoch: u32, whole_flows: bool) -> Vec<u8> {
    let c = RawFilterCtl {
        enabled: u32::from(enabled),
        epoch,
        whole_flows: u32::from(whole_flows),
        _pad: 0,
    };
    // SAFETY: RawFilterCtl is Plain and fully initialised (see above).
    unsafe { plain::as_bytes(&c) }.to_vec()
}
