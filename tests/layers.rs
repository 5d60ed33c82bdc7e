//! Layers import only downward (the order is written in `src/lib.rs`):
//! every `crate::…` path in `src/` names a module of the same layer or a
//! lower one, and no runner (`trace`, `tui`, `fuzzing`) names another. A
//! module missing from the table below fails the test until it is given
//! its layer. Sinks and screens never look facts up themselves (rtnetlink,
//! kallsyms): they read what the pipeline's edge service gave them.

use std::path::Path;

/// The layers, lowest first, and the modules in each. `bpf::reader` and
/// the topology's resolver and hop graph sit above the rest of their
/// module (they read events and packets).
const LAYERS: &[(&str, &[&str])] = &[
    (
        "base",
        &[
            "crate",
            "safe_text",
            "clock",
            "symbols",
            "cgroup",
            "cli",
            "input",
            "filter",
            "lab",
            "logging",
            "outfile",
            "topology",
        ],
    ),
    ("kernel ABI", &["bpf"]),
    ("event", &["event"]),
    ("kernel source", &["bpf::reader"]),
    ("correlate", &["correlate"]),
    (
        "facts and views",
        &[
            "facts",
            "select",
            "topology::resolver",
            "topology::graph",
            "topology::dot",
        ],
    ),
    ("sinks", &["output", "model"]),
    ("pipeline", &["pipeline"]),
    ("explorer screens", &["app", "ui"]),
    ("runners", &["trace", "tui", "fuzzing"]),
];

/// Layers whose modules are alternatives and never import one another:
/// the sinks, and the runners that differ only in source and sink.
const SIBLINGS: &[&str] = &["sinks", "runners"];

/// The lookups (rtnetlink and namespace scans, kallsyms): only the
/// pipeline's edge service uses them; sinks and screens read facts.
const LOOKUPS: &[&str] = &["topology::resolver", "symbols"];
/// The layers that must not look facts up themselves.
const NO_LOOKUPS: &[&str] = &["sinks", "explorer screens"];

/// The unit a `crate::` path (its segments after `crate`) or a source file
/// (its path under `src/`, without `.rs`) belongs to.
fn unit(segments: &[&str]) -> String {
    match segments {
        [] => "crate".to_owned(),
        ["bpf", "reader", ..] => "bpf::reader".to_owned(),
        ["topology", m @ ("resolver" | "graph" | "dot"), ..] => format!("topology::{m}"),
        [first, ..] if first.chars().next().is_some_and(char::is_uppercase) => "crate".to_owned(),
        [first, ..] => (*first).to_owned(),
    }
}

fn layer_of(unit: &str) -> Option<(usize, &'static str)> {
    LAYERS
        .iter()
        .enumerate()
        .find(|(_, (_, units))| units.contains(&unit))
        .map(|(i, (name, _))| (i, *name))
}

/// The `crate::` paths one source names outside comments, as segments
/// (`crate::a::{b, c::d}` is `a::b` and `a::c::d`).
fn crate_paths(source: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for line in source.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            // `other_crate::` is another name.
            let before = rest[..i].chars().last();
            rest = &rest[i + "crate::".len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let path: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            let prefix: Vec<String> = path
                .split("::")
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            let after = &rest[path.len()..];
            match after.strip_prefix('{') {
                Some(group) => {
                    let inner = group.split('}').next().unwrap_or("");
                    for item in inner.split(',').map(str::trim).filter(|i| !i.is_empty()) {
                        let mut p = prefix.clone();
                        p.extend(item.split("::").map(|s| s.trim().to_owned()));
                        out.push(p);
                    }
                }
                None => out.push(prefix),
            }
        }
    }
    out
}

/// The violations of one file at `rel` (its path under `src/`).
fn check(rel: &str, source: &str) -> Vec<String> {
    let stem = rel.trim_end_matches(".rs").trim_end_matches("/mod");
    let file_segs: Vec<&str> = match stem {
        "lib" => Vec::new(),
        s => s.split('/').collect(),
    };
    let from = unit(&file_segs);
    let Some((from_rank, from_layer)) = layer_of(&from) else {
        return vec![format!(
            "{rel}: module {from} has no layer in tests/layers.rs"
        )];
    };
    let mut bad = Vec::new();
    for path in crate_paths(source) {
        let segs: Vec<&str> = path.iter().map(String::as_str).collect();
        let to = unit(&segs);
        if to == from {
            continue;
        }
        if LOOKUPS.contains(&to.as_str()) && NO_LOOKUPS.contains(&from_layer) {
            bad.push(format!(
                "{rel} ({from_layer}) looks facts up itself (crate::{}): that is the edge's job",
                path.join("::")
            ));
            continue;
        }
        let Some((to_rank, to_layer)) = layer_of(&to) else {
            bad.push(format!(
                "{rel}: crate::{} names a module with no layer",
                path.join("::")
            ));
            continue;
        };
        if to_rank > from_rank {
            bad.push(format!(
                "{rel} ({from_layer}) imports crate::{} ({to_layer}): upward",
                path.join("::")
            ));
        } else if to_rank == from_rank && SIBLINGS.contains(&from_layer) {
            bad.push(format!(
                "{rel} imports crate::{}: {from_layer} do not import one another",
                path.join("::")
            ));
        }
    }
    bad
}

fn sources(dir: &Path, root: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            sources(&p, root, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            out.push((rel, std::fs::read_to_string(&p).unwrap()));
        }
    }
}

#[test]
fn layers_import_only_downward() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &root, &mut files);
    files.sort();
    // The binary only wires the library's public API (`hopscope::…`).
    files.retain(|(rel, _)| rel != "main.rs");
    assert!(files.len() > 40, "{} sources found", files.len());
    let bad: Vec<String> = files.iter().flat_map(|(r, s)| check(r, s)).collect();
    assert!(bad.is_empty(), "back-references:\n{}", bad.join("\n"));
}

#[test]
fn the_check_sees_back_references() {
    assert_eq!(
        check("model.rs", "use crate::output::Filter;\n"),
        vec!["model.rs imports crate::output::Filter: sinks do not import one another"]
    );
    assert_eq!(
        check("topology/dot.rs", "use crate::output::fmt_duration;"),
        vec![
            "topology/dot.rs (facts and views) imports crate::output::fmt_duration (sinks): upward"
        ]
    );
    assert_eq!(
        check(
            "tui.rs",
            "use crate::trace::{kernel_scope_label, monotonic_ns};"
        ),
        vec![
            "tui.rs imports crate::trace::kernel_scope_label: runners do not import one another",
            "tui.rs imports crate::trace::monotonic_ns: runners do not import one another"
        ]
    );
    assert_eq!(
        check(
            "event/decode.rs",
            "x(crate::bpf::reader::tick(1)); // crate::tui"
        ),
        vec!["event/decode.rs (event) imports crate::bpf::reader::tick (kernel source): upward"]
    );
    assert_eq!(
        check(
            "output/text.rs",
            "use crate::{pipeline::Pipeline, safe_text::shown};"
        ),
        vec!["output/text.rs (sinks) imports crate::pipeline::Pipeline (pipeline): upward"]
    );
    assert_eq!(
        check("widget.rs", ""),
        vec!["widget.rs: module widget has no layer in tests/layers.rs"]
    );
    assert!(check(
        "pipeline/mod.rs",
        "use crate::topology::resolver::Topology;"
    )
    .is_empty());
    assert!(check("ui/hops.rs", "use crate::app::App; use crate::UsageError;").is_empty());
}
