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

/// bpf/hopscope.bpf.c with the bpf/ headers it includes (its programs live
/// in them, one header per family).
fn tracer_source() -> String {
    let main = read("bpf/hopscope.bpf.c");
    let mut all = main.clone();
    for header in names_after(&main, "\n#include \"", '"') {
        let path = format!("bpf/{header}");
        // vmlinux.h is not in bpf/ (and has no programs).
        if std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(&path)
            .exists()
        {
            all += &read(&path);
        }
    }
    all
}

#[test]
fn empty_hooks_cover_the_same_tracepoints() {
    let tracer = names_after(&tracer_source(), "SEC(\"tp_btf/", '"');
    let control = names_after(&read("bpf/empty_hooks.bpf.c"), "\nHS_EMPTY(", ')');
    assert!(tracer.len() >= 10, "few tracepoints found: {tracer:?}");
    assert_eq!(tracer, control);
}
