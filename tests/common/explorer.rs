//! The explorer without a terminal: fixture recordings replayed into its
//! model (no root needed), and key presses.

use std::path::{Path, PathBuf};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use hopscope::app::{App, Input};
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
                kernel_filtered: false,
            },
        },
        CorrelatorConfig::default(),
    )
    .expect("fixture replays")
    .0
}

/// One key press (upper-case letters with Shift, as terminals send them).
pub fn press(app: &mut App, model: &Model, code: KeyCode) {
    let m = match code {
        KeyCode::Char(c) if c.is_ascii_uppercase() => KeyModifiers::SHIFT,
        _ => KeyModifiers::NONE,
    };
    app.update(model, Input::Key(KeyEvent::new(code, m)));
}

/// Types `s`, one key per character.
pub fn typed(app: &mut App, model: &Model, s: &str) {
    for c in s.chars() {
        press(app, model, KeyCode::Char(c));
    }
}
