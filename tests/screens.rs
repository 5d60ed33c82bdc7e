//! Snapshot tests of every screen: a recorded lab fixture is replayed into
//! the model, keys drive the app, and the frame is rendered into ratatui's
//! TestBackend at a fixed size, without colour. The fixture is fixed, so
//! ids, inodes and times are too.

#[path = "common/replay.rs"]
mod replay;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use hopscope::app::{App, Input};
use hopscope::model::{Model, ModelConfig};
use hopscope::ui::{self, Theme};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

const W: u16 = 140;
const H: u16 = 40;

fn screen(model: &Model, app: &mut App, w: u16, h: u16) -> String {
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    term.draw(|f| ui::render(f, model, app, Theme { color: false }))
        .unwrap();
    let buf = term.backend().buffer();
    let mut out = String::new();
    for y in 0..buf.area.height {
        let mut line = String::new();
        for x in 0..buf.area.width {
            line.push_str(buf[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn key(app: &mut App, model: &Model, code: KeyCode) {
    let m = match code {
        KeyCode::Char(c) if c.is_ascii_uppercase() => KeyModifiers::SHIFT,
        _ => KeyModifiers::NONE,
    };
    app.update(model, Input::Key(KeyEvent::new(code, m)));
}

fn typed(app: &mut App, model: &Model, s: &str) {
    for c in s.chars() {
        key(app, model, KeyCode::Char(c));
    }
}

fn app() -> App {
    App {
        source_label: "replay lab.hsrec".to_owned(),
        filter_label: "lab namespaces hsfx-*".to_owned(),
        ..App::default()
    }
}

/// Flows of the TCP connection to the router's server, then its packets.
fn at_tcp_packets(model: &Model) -> App {
    let mut a = app();
    key(&mut a, model, KeyCode::Char('/'));
    typed(&mut a, model, "198.18.1.2:8008");
    key(&mut a, model, KeyCode::Enter);
    key(&mut a, model, KeyCode::Enter);
    a
}

#[test]
fn flows_screen() {
    let model = replay::lab_model(65_536, 16_384);
    let mut a = app();
    insta::assert_snapshot!("flows", screen(&model, &mut a, W, H));
}

#[test]
fn flows_search_and_sort() {
    let model = replay::lab_model(65_536, 16_384);
    let mut a = app();
    key(&mut a, &model, KeyCode::Char('/'));
    typed(&mut a, &model, "udp");
    insta::assert_snapshot!("flows_search_editing", screen(&model, &mut a, W, H));
    key(&mut a, &model, KeyCode::Enter);
    key(&mut a, &model, KeyCode::Char('s'));
    insta::assert_snapshot!(
        "flows_search_sorted_by_packets",
        screen(&model, &mut a, W, H)
    );
}

#[test]
fn packets_screen_and_role_toggles() {
    let model = replay::lab_model(65_536, 16_384);
    let mut a = at_tcp_packets(&model);
    insta::assert_snapshot!("packets", screen(&model, &mut a, W, H));
    key(&mut a, &model, KeyCode::Char('r'));
    insta::assert_snapshot!("packets_replies_only", screen(&model, &mut a, W, H));
    key(&mut a, &model, KeyCode::Char('r'));
    key(&mut a, &model, KeyCode::Char('R'));
    insta::assert_snapshot!("packets_requests_only", screen(&model, &mut a, W, H));
}

#[test]
fn hops_graph_and_path_statistics() {
    let model = replay::lab_model(65_536, 16_384);
    let mut a = at_tcp_packets(&model);
    key(&mut a, &model, KeyCode::End);
    key(&mut a, &model, KeyCode::Enter);
    insta::assert_snapshot!("hops", screen(&model, &mut a, W, H));
    key(&mut a, &model, KeyCode::Tab);
    insta::assert_snapshot!("graph", screen(&model, &mut a, W, H));
    key(&mut a, &model, KeyCode::Tab);
    insta::assert_snapshot!("path_statistics", screen(&model, &mut a, W, H));
}

#[test]
fn help_overlay() {
    let model = replay::lab_model(65_536, 16_384);
    let mut a = app();
    key(&mut a, &model, KeyCode::Char('?'));
    insta::assert_snapshot!("help", screen(&model, &mut a, W, H));
}

#[test]
fn empty_model_and_tiny_terminal() {
    let model = Model::new(ModelConfig::default());
    let mut a = app();
    insta::assert_snapshot!("empty", screen(&model, &mut a, 100, 12));
    // Every screen at sizes down to 1x1 renders without panicking.
    let full = replay::lab_model(65_536, 16_384);
    let mut a = at_tcp_packets(&full);
    key(&mut a, &full, KeyCode::Enter);
    for (w, h) in [(1, 1), (20, 5), (40, 10), (80, 24)] {
        for _ in 0..3 {
            screen(&full, &mut a, w, h);
            key(&mut a, &full, KeyCode::Tab);
        }
    }
}
