//! The bodies of the coverage-guided fuzz targets (`fuzz/`), kept in the
//! library so that the fuzzers and the regression test over their corpus
//! (`tests/fuzz_corpus.rs`) run the same code.
//!
//! Each takes arbitrary bytes, feeds one front end that reads untrusted
//! input, and panics when an invariant breaks (a panic is what the fuzzer
//! reports as a crash):
//! - [`decode`]: ring-buffer records. A record that decodes encodes back to
//!   itself, and its names print without a control character. The same
//!   bytes, cut into records by their kinds' sizes, go through the stream
//!   decoder: what it gives compact hops is what full records said.
//! - [`recording`]: recording files. The frames read are written again and
//!   read back equal; replayed into the correlator and the explorer's model
//!   (small caps) they never panic and respect the caps; every string prints
//!   without a control character.
//! - [`filter`]: the filter front end. An expression (at most
//!   [`FUZZ_EXPR_BYTES`]) either compiles to programs the kernel checker
//!   accepts or is refused with a printable message; raw instruction
//!   arrays the checker accepts only jump forward inside the program and
//!   end every path on a return.

use crate::correlate::{Correlator, CorrelatorConfig};
use crate::event::decode::{decode_raw, DecodeError};
use crate::event::encode::encode_raw;
use crate::event::record::{Frame, Recorder, Replay};
use crate::filter::expr::{check, Insn, PacketFilter};
use crate::model::{Model, ModelConfig};
use crate::pipeline::facts::FactService;
use crate::pipeline::Pipeline;
use crate::safe_text::shown;

/// Longest expression the filter target compiles: libpcap's time grows
/// faster than linearly, and short inputs keep executions fast.
pub const FUZZ_EXPR_BYTES: usize = 256;

/// Panics unless `s`, as printed, holds no control character.
fn assert_printable(s: &str) {
    let out = shown(s);
    assert!(
        !out.chars().any(char::is_control),
        "control character survives escaping: {out:?}"
    );
}

/// Ring-buffer bytes through the decoder, and as a stream of records.
pub fn decode(data: &[u8]) {
    decode_stream(data);
    let ev = match crate::event::decode::decode(data) {
        Ok(ev) => ev,
        Err(DecodeError::Short { got, want }) => {
            assert!(got < want && got == data.len());
            return;
        }
        Err(_) => return,
    };
    assert_eq!(
        decode_raw(&encode_raw(&ev)),
        Ok(ev),
        "a decoded event does not encode back to itself"
    );
    if let Some(d) = ev.device {
        assert_printable(&d.ifname.to_string());
    }
    if let Some(t) = ev.task {
        assert_printable(&t.comm.to_string());
    }
}

/// `data` as a stream of records (each as long as its kind's record, the
/// last one short) through a [`StreamDecoder`] with few slots: no panic,
/// a compact hop's headers are those a full record gave that packet, and
/// socket and end records get none.
fn decode_stream(data: &[u8]) {
    use crate::bpf::abi;
    use crate::event::stream::StreamDecoder;
    let mut dec = StreamDecoder::with_slots(4);
    let mut seen = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let size = match abi::record_kind(rest) {
            Some(abi::REC_HOP) => std::mem::size_of::<abi::RawHop>(),
            Some(abi::REC_DEV) => std::mem::size_of::<abi::RawDev>(),
            Some(abi::REC_SOCK) => std::mem::size_of::<abi::RawSock>(),
            Some(abi::REC_END) => std::mem::size_of::<abi::RawEnd>(),
            _ => abi::EVENT_SIZE,
        };
        let (rec, tail) = rest.split_at(size.min(rest.len()));
        rest = tail;
        let Ok(Some(ev)) = dec.decode(rec) else {
            continue;
        };
        if let Some(d) = ev.device {
            assert_printable(&d.ifname.to_string());
        }
        if let Some(t) = ev.task {
            assert_printable(&t.comm.to_string());
        }
        let kind = abi::record_kind(rec);
        if matches!(kind, Some(abi::REC_SOCK | abi::REC_END)) {
            assert!(ev.headers.is_none(), "a socket or end record got headers");
        }
        if kind == Some(abi::REC_HOP) {
            if let Some(h) = ev.headers {
                assert!(
                    seen.contains(&(ev.packet, h)),
                    "a compact hop got headers no record gave its packet"
                );
            }
        } else if let Some(h) = ev.headers {
            seen.push((ev.packet, h));
            if let Some(crate::event::Link::Branch(b)) = ev.link {
                seen.push((b, h));
            }
        }
    }
}

fn frame_strings(f: &Frame) -> Vec<&str> {
    match f {
        Frame::NetnsName { name, .. } | Frame::Symbol { name, .. } => vec![name],
        Frame::Scope { label, .. } => vec![label],
        Frame::DropReasons(r) => r.iter().map(|(_, n)| n.as_str()).collect(),
        Frame::Link(l) => [Some(&l.ifname), l.kind_name.as_ref()]
            .into_iter()
            .flatten()
            .chain(
                [&l.master, &l.peer, &l.parent]
                    .into_iter()
                    .flatten()
                    .map(|r| &r.ifname),
            )
            .map(String::as_str)
            .collect(),
        Frame::Event(_) | Frame::Tick(_) | Frame::Snapshot(_) => Vec::new(),
    }
}

/// A recording's bytes through the reader, the writer and a replay.
pub fn recording(data: &[u8]) {
    let Ok(replay) = Replay::new(data) else {
        return;
    };
    let info = replay.info().clone();
    assert_printable(&info.hostname);
    assert_printable(&info.kernel);
    // Every frame takes at least one byte: the reader cannot loop forever.
    let mut frames = Vec::new();
    for f in replay.take(data.len() + 1) {
        match f {
            Ok(f) => frames.push(f),
            Err(e) => {
                assert_printable(&e.to_string());
                break;
            }
        }
    }
    assert!(frames.len() <= data.len());

    let mut rec = Recorder::new(Vec::new(), &info).expect("a header that was read can be written");
    for f in &frames {
        rec.frame(f).expect("a frame that was read can be written");
        for s in frame_strings(f) {
            assert_printable(s);
        }
    }
    let bytes = rec.finish().expect("writing to memory");
    let again: Vec<Frame> = Replay::new(&bytes[..])
        .expect("a written header reads back")
        .map(|f| f.expect("a written frame reads back"))
        .collect();
    assert_eq!(again, frames, "frames written again read back different");

    let corr_cfg = CorrelatorConfig {
        max_packets: 64,
        max_flows: 16,
        ..CorrelatorConfig::default()
    };
    let model_cfg = ModelConfig {
        max_packets: 64,
        max_flows: 16,
        ..ModelConfig::default()
    };
    let mut pipe = Pipeline::new(
        Correlator::new(corr_cfg),
        FactService::replay(),
        Model::new(model_cfg),
        None,
    );
    for f in frames {
        pipe.frame(f).expect("a replay writes nothing");
    }
    pipe.flush().expect("a replay writes nothing");
    let model = &pipe.sink;
    assert!(
        model.flow_count() <= 16,
        "{} flows kept",
        model.flow_count()
    );
    assert!(
        model.packet_count() <= 64,
        "{} packets kept",
        model.packet_count()
    );
}

/// Every path through `insns` (already accepted by [`check`]) moves
/// forward inside the program and ends on a return.
fn assert_terminates(insns: &[Insn]) {
    let n = insns.len();
    for (pc, i) in insns.iter().enumerate() {
        let class = i.code & 0x07;
        let next: Vec<usize> = match class {
            0x06 => Vec::new(),
            0x05 if i.code & 0xf0 == 0 => vec![pc + 1 + i.k as usize],
            0x05 => vec![pc + 1 + usize::from(i.jt), pc + 1 + usize::from(i.jf)],
            _ => vec![pc + 1],
        };
        for t in next {
            assert!(t < n, "instruction {pc} leads to {t}, past the end ({n})");
        }
    }
    assert_eq!(
        insns[n - 1].code & 0x07,
        0x06,
        "the last instruction returns"
    );
}

/// The filter front end: an expression for libpcap and the checker, or
/// (first byte odd) raw instructions for the checker alone.
pub fn filter(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        let rest = &rest[..rest.len().min(FUZZ_EXPR_BYTES)];
        let expr = String::from_utf8_lossy(rest);
        match PacketFilter::compile(&expr, mode & 2 != 0) {
            Ok(Some(f)) => {
                check(&f.ether).expect("a compiled filter passes the checker");
                assert_terminates(&f.ether);
                if !f.raw.is_empty() {
                    check(&f.raw).expect("a compiled raw-IP filter passes the checker");
                    assert_terminates(&f.raw);
                }
                assert_printable(&f.label());
            }
            Ok(None) => assert!(expr.trim().is_empty()),
            Err(e) => assert_printable(&e.to_string()),
        }
    } else {
        let insns: Vec<Insn> = rest
            .chunks_exact(8)
            .map(|c| Insn {
                code: u16::from_le_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect();
        if check(&insns).is_ok() {
            assert_terminates(&insns);
        }
    }
}
