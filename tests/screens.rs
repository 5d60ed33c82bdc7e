//! Snapshot tests of every screen: a recorded lab fixture is replayed into
//! the model, keys drive the app, and the frame is rendered into ratatui's
//! TestBackend at a fixed size, without colour. The fixture is fixed, so
//! ids, inodes and times are too.

#[path = "common/explorer.rs"]
mod explorer;

use explorer::{press, typed};

use crossterm::event::KeyCode;
use hopscope::app::App;
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
    press(&mut a, model, KeyCode::Char('/'));
    typed(&mut a, model, "198.18.1.2:8008");
    press(&mut a, model, KeyCode::Enter);
    press(&mut a, model, KeyCode::Enter);
    a
}

#[test]
fn flows_screen() {
    let model = explorer::lab_model(65_536, 16_384);
    let mut a = app();
    insta::assert_snapshot!("flows", screen(&model, &mut a, W, H));
}

#[test]
fn flows_search_and_sort() {
    let model = explorer::lab_model(65_536, 16_384);
    let mut a = app();
    press(&mut a, &model, KeyCode::Char('/'));
    typed(&mut a, &model, "udp");
    insta::assert_snapshot!("flows_search_editing", screen(&model, &mut a, W, H));
    press(&mut a, &model, KeyCode::Enter);
    press(&mut a, &model, KeyCode::Char('s'));
    insta::assert_snapshot!(
        "flows_search_sorted_by_packets",
        screen(&model, &mut a, W, H)
    );
}

#[test]
fn packets_screen_and_role_toggles() {
    let model = explorer::lab_model(65_536, 16_384);
    let mut a = at_tcp_packets(&model);
    insta::assert_snapshot!("packets", screen(&model, &mut a, W, H));
    press(&mut a, &model, KeyCode::Char('r'));
    insta::assert_snapshot!("packets_replies_only", screen(&model, &mut a, W, H));
    press(&mut a, &model, KeyCode::Char('r'));
    press(&mut a, &model, KeyCode::Char('R'));
    insta::assert_snapshot!("packets_requests_only", screen(&model, &mut a, W, H));
}

#[test]
fn hops_graph_and_path_statistics() {
    let model = explorer::lab_model(65_536, 16_384);
    let mut a = at_tcp_packets(&model);
    press(&mut a, &model, KeyCode::End);
    press(&mut a, &model, KeyCode::Enter);
    insta::assert_snapshot!("hops", screen(&model, &mut a, W, H));
    press(&mut a, &model, KeyCode::Tab);
    insta::assert_snapshot!("graph", screen(&model, &mut a, W, H));
    press(&mut a, &model, KeyCode::Tab);
    insta::assert_snapshot!("path_statistics", screen(&model, &mut a, W, H));
}

#[test]
fn help_overlay() {
    let model = explorer::lab_model(65_536, 16_384);
    let mut a = app();
    press(&mut a, &model, KeyCode::Char('?'));
    insta::assert_snapshot!("help", screen(&model, &mut a, W, H));
}

#[test]
fn empty_model_and_tiny_terminal() {
    let model = Model::new(ModelConfig::default());
    let mut a = app();
    insta::assert_snapshot!("empty", screen(&model, &mut a, 100, 12));
    // Every screen at sizes down to 1x1 renders without panicking.
    let full = explorer::lab_model(65_536, 16_384);
    let mut a = at_tcp_packets(&full);
    press(&mut a, &full, KeyCode::Enter);
    for (w, h) in [(1, 1), (20, 5), (40, 10), (80, 24)] {
        for _ in 0..3 {
            screen(&full, &mut a, w, h);
            press(&mut a, &full, KeyCode::Tab);
        }
    }
}

#[test]
fn bridged_flow_graph_names_the_bridge() {
    let model = explorer::lab_model(65_536, 16_384);
    let mut a = app();
    press(&mut a, &model, KeyCode::Char('/'));
    typed(&mut a, &model, "udp");
    press(&mut a, &model, KeyCode::Enter);
    press(&mut a, &model, KeyCode::Enter);
    press(&mut a, &model, KeyCode::Tab);
    let s = screen(&model, &mut a, W, H);
    assert!(s.contains("via br0"), "{s}");
    insta::assert_snapshot!("graph_bridged", s);
}

#[test]
fn drops_view_and_an_example_packet() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/drops.hsrec");
    let netns = explorer::recorded_netns(&path, "hsdr-");
    let (model, _) = hopscope::tui::load_recording(
        &path,
        hopscope::model::ModelConfig {
            filter: hopscope::output::Filter {
                only_owned: false,
                netns,
                kernel_filtered: false,
            },
            ..Default::default()
        },
        hopscope::correlate::CorrelatorConfig::default(),
    )
    .unwrap();
    let mut a = app();
    a.filter_label = "lab namespaces hsdr-*".to_owned();
    press(&mut a, &model, KeyCode::Char('D'));
    let s = screen(&model, &mut a, W, H);
    for want in ["NETFILTER_DROP", "NO_SOCKET", "IP_INHDR", "IP_INNOROUTES"] {
        assert!(s.contains(want), "{want} missing:\n{s}");
    }
    insta::assert_snapshot!("drops", s);
    press(&mut a, &model, KeyCode::Enter);
    let s = screen(&model, &mut a, W, H);
    assert!(s.contains("dropped: "), "{s}");
    insta::assert_snapshot!("drops_example_hops", s);
}
