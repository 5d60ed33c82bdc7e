//! Fixture recordings replayed into the explorer's model (no root needed).

use std::path::{Path, PathBuf};

use hopscope::correlate::CorrelatorConfig;
use hopscope::event::record::{Frame, Replay};
use hopscope::model::{Model, ModelConfig};
use hopscope::output::Filter;
use hopscope::tui::load_recording;

/// The lab recording: two rounds of lab traffic (prefix `hsfx`), recorded
/// with `hopscope trace --record` on the development machine.
pub fn lab_fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lab.hsrec")
}

/// Inodes of the recorded namespaces whose name starts with `prefix`.
pub fn recorded_netns(path: &Path, prefix: &str) -> Vec<u32> {
    let mut v: Vec<u32> = Replay::open(path)
        .expect("fixture opens")
        .filter_map(|f| match f.expect("fixture reads") {
            Frame::NetnsName { inode, name } if name.starts_with(prefix) => Some(inode),
            _ => None,
        })
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// The model of the lab fixture, restricted to the lab's namespaces.
pub fn lab_model(max_packets: usize, max_flows: usize) -> Model {
    let path = lab_fixture();
    let netns = recorded_netns(&path, "hsfx-");
    assert_eq!(
        netns.len(),
        4,
        "the fixture names the lab's four namespaces"
    );
    load_recording(
        &path,
        ModelConfig {
            max_flows,
            max_packets,
            filter: Filter {
                only_owned: false,
                netns,
            },
        },
        CorrelatorConfig::default(),
    )
    .expect("fixture replays")
}
