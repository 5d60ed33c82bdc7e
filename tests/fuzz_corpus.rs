//! The fuzzers' findings, kept: every seed, every input of a target's kept
//! corpus (`fuzz/corpus/TARGET`, minimised from the long runs recorded in
//! BENCHMARKS.md) and every input that once crashed it
//! (`fuzz/crashes/TARGET`; the filter's holds the one input that hung it:
//! a host name lookup) runs through the target's body
//! (`hopscope::fuzzing`), which panics when an invariant breaks.

use std::path::Path;

fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut out = Vec::new();
    for kind in ["seeds", "corpus", "crashes"] {
        let Ok(dir) = std::fs::read_dir(root.join(kind).join(target)) else {
            continue;
        };
        for e in dir.flatten() {
            let bytes = std::fs::read(e.path()).unwrap();
            out.push((
                format!("{kind}/{target}/{}", e.file_name().to_string_lossy()),
                bytes,
            ));
        }
    }
    out.sort();
    out
}

fn replay(target: &str, body: fn(&[u8])) {
    let inputs = inputs(target);
    assert!(
        inputs.len() >= 3,
        "{target}: seeds missing from fuzz/seeds/{target}"
    );
    for (name, bytes) in &inputs {
        let r = std::panic::catch_unwind(|| body(bytes));
        assert!(r.is_ok(), "{name} breaks the {target} target again");
    }
    eprintln!("{target}: {} inputs", inputs.len());
}

#[test]
fn decode_corpus() {
    replay("decode", hopscope::fuzzing::decode);
}

#[test]
fn recording_corpus() {
    replay("recording", hopscope::fuzzing::recording);
}

/// libpcap resolves host names in expressions: the filter inputs run on a
/// thread in a network namespace of its own (root), where every lookup
/// fails at once and nothing leaves the machine.
#[test]
fn filter_corpus() {
    std::thread::spawn(|| {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
            .expect("a network namespace of the test's own (root)");
        replay("filter", hopscope::fuzzing::filter);
    })
    .join()
    .expect("the filter corpus");
}
