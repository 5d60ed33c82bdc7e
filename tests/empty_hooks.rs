//! The benchmark's control (bpf/empty_hooks.bpf.c) must stay on exactly the
//! tracepoints hopscope's programs use, or the floor it measures is not
//! hopscope's.

use std::collections::BTreeSet;

fn read(path: &str) -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/").to_owned() + path)
        .unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

/// The names following each occurrence of `start` up to the next `end`.
fn names_after(src: &str, start: &str, end: char) -> BTreeSet<String> {
    src.split(start)
        .skip(1)
        .filter_map(|rest| rest.split(end).next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn empty_hooks_cover_the_same_tracepoints() {
    let tracer = names_after(&read("bpf/hopscope.bpf.c"), "SEC(\"tp_btf/", '"');
    let control = names_after(&read("bpf/empty_hooks.bpf.c"), "\nHS_EMPTY(", ')');
    assert!(tracer.len() >= 10, "few tracepoints found: {tracer:?}");
    assert_eq!(tracer, control);
}
