//! The explorer's behaviour without a terminal: keys, selection that
//! follows ids while data moves, clamping when data shrinks or empties,
//! role filters, search and freezing. Fed by the recorded lab fixture.

#[path = "common/explorer.rs"]
mod explorer;

use explorer::{press, typed};

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use hopscope::app::{App, Detail, Input, Screen};
use hopscope::correlate::{Correlator, CorrelatorConfig, Role};
use hopscope::event::record::Recorder;
use hopscope::event::record::{Frame, Replay};
use hopscope::model::{Model, ModelConfig};
use hopscope::output::Filter;
use hopscope::pipeline::facts::FactService;
use hopscope::pipeline::Pipeline;
use hopscope::tui::load_recording;

/// Replays the fixture frame by frame, so tests can look in between.
struct Feed {
    frames: Vec<Frame>,
    pos: usize,
    /// The replay's pipeline; its sink is the model.
    pipe: Pipeline<Model>,
}

impl Feed {
    fn new(max_packets: usize, max_flows: usize) -> Feed {
        let path = explorer::lab_fixture();
        let netns = explorer::recorded_netns(&path, "hsfx-");
        let frames = Replay::open(&path)
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        Feed {
            frames,
            pos: 0,
            pipe: Pipeline::new(
                Correlator::new(CorrelatorConfig::default()),
                FactService::replay(),
                Model::new(ModelConfig {
                    max_flows,
                    max_packets,
                    filter: Filter {
                        only_owned: false,
                        netns,
                        kernel_filtered: false,
                    },
                }),
                None,
            ),
        }
    }

    /// Feeds frames until `n` more packets finished (or the end).
    fn packets(&mut self, n: u64) -> bool {
        let want = self.pipe.sink.counters.packets_finished + n;
        while self.pipe.sink.counters.packets_finished < want {
            let Some(f) = self.frames.get(self.pos).cloned() else {
                return false;
            };
            self.pos += 1;
            self.pipe.frame(f).unwrap();
        }
        true
    }

    fn all(&mut self) {
        while self.packets(1) {}
    }
}

#[test]
fn arrows_and_vim_keys_move_and_clamp() {
    let model = explorer::lab_model(65_536, 16_384);
    let mut a = App::default();
    a.clamp(&model);
    let rows = a.flow_rows(&model);
    assert!(rows.len() > 5);
    assert_eq!(a.flows.selected, Some(rows[0]));
    press(&mut a, &model, KeyCode::Down);
    press(&mut a, &model, KeyCode::Char('j'));
    assert_eq!(a.flows.selected, Some(rows[2]));
    press(&mut a, &model, KeyCode::Char('k'));
    assert_eq!(a.flows.selected, Some(rows[1]));
    press(&mut a, &model, KeyCode::Up);
    press(&mut a, &model, KeyCode::Up);
    assert_eq!(a.flows.selected, Some(rows[0]), "clamped at the top");
    press(&mut a, &model, KeyCode::End);
    assert_eq!(a.flows.selected, Some(*rows.last().unwrap()));
    press(&mut a, &model, KeyCode::Down);
    assert_eq!(
        a.flows.selected,
        Some(*rows.last().unwrap()),
        "clamped at the bottom"
    );
    press(&mut a, &model, KeyCode::Char('g'));
    assert_eq!(a.flows.selected, Some(rows[0]));
    a.page_rows = 4;
    press(&mut a, &model, KeyCode::PageDown);
    assert_eq!(a.flows.selected, Some(rows[4]));
    press(&mut a, &model, KeyCode::PageUp);
    assert_eq!(a.flows.selected, Some(rows[0]));
    // Releases are ignored (kitty keyboard protocol reports them).
    let mut release = KeyEvent::new(KeyCode::Down, KeyModifiers::NONE);
    release.kind = KeyEventKind::Release;
    a.update(&model, Input::Key(release));
    assert_eq!(a.flows.selected, Some(rows[0]));
}

#[test]
fn enter_drills_in_and_esc_goes_back() {
    let model = explorer::lab_model(65_536, 16_384);
    let mut a = App::default();
    press(&mut a, &model, KeyCode::Enter);
    assert_eq!(a.screen, Screen::Packets);
    assert!(a.packets.selected.is_some());
    press(&mut a, &model, KeyCode::Enter);
    assert_eq!(a.screen, Screen::Hops);
    assert_eq!(a.hops.selected, Some(0));
    press(&mut a, &model, KeyCode::Enter);
    assert_eq!(a.screen, Screen::Hops, "hops are the deepest level");
    assert!(a.notice.is_some());
    press(&mut a, &model, KeyCode::Tab);
    assert_eq!(a.detail, Detail::Graph);
    press(&mut a, &model, KeyCode::Esc);
    assert_eq!(a.screen, Screen::Packets);
    press(&mut a, &model, KeyCode::Backspace);
    assert_eq!(a.screen, Screen::Flows);
    press(&mut a, &model, KeyCode::Esc);
    assert_eq!(a.screen, Screen::Flows);
    assert!(!a.quit);
    press(&mut a, &model, KeyCode::Char('q'));
    assert!(a.quit);
    let mut b = App::default();
    b.update(
        &model,
        Input::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
    );
    assert!(b.quit);
}

#[test]
fn search_filters_jumps_and_clears() {
    let model = explorer::lab_model(65_536, 16_384);
    let mut a = App::default();
    let all = a.flow_rows(&model).len();
    press(&mut a, &model, KeyCode::Char('/'));
    typed(&mut a, &model, "198.18.1.2:8008");
    let rows = a.flow_rows(&model);
    assert_eq!(rows.len(), 2, "the two TCP connections to the router");
    assert_eq!(a.flows.selected, Some(rows[0]), "jumps to the first match");
    for id in &rows {
        let f = model.flow(*id).unwrap();
        assert_eq!(f.responder().1, 8008);
    }
    // While typing, q and j are text, not commands.
    typed(&mut a, &model, "qj");
    assert!(!a.quit);
    assert!(a.flow_rows(&model).is_empty());
    press(&mut a, &model, KeyCode::Backspace);
    press(&mut a, &model, KeyCode::Backspace);
    press(&mut a, &model, KeyCode::Enter);
    assert!(!a.search().editing);
    assert_eq!(a.flow_rows(&model).len(), 2);
    // Namespace names are searchable too.
    press(&mut a, &model, KeyCode::Esc);
    assert_eq!(
        a.flow_rows(&model).len(),
        all,
        "Esc clears the search first"
    );
    assert_eq!(a.screen, Screen::Flows);
    press(&mut a, &model, KeyCode::Char('/'));
    typed(&mut a, &model, "hsfx-r1");
    let r1 = a.flow_rows(&model);
    assert!(!r1.is_empty() && r1.len() < all);
    press(&mut a, &model, KeyCode::Esc);
    assert_eq!(a.flow_rows(&model).len(), all, "Esc while typing clears");
}

#[test]
fn role_toggles_filter_packets_and_never_hide_both() {
    let model = explorer::lab_model(65_536, 16_384);
    let mut a = App::default();
    press(&mut a, &model, KeyCode::Char('/'));
    typed(&mut a, &model, "8008");
    press(&mut a, &model, KeyCode::Enter);
    press(&mut a, &model, KeyCode::Enter);
    let roles = |a: &App| -> Vec<Role> {
        a.packet_rows(&model)
            .iter()
            .map(|id| model.packet(*id).unwrap().role.unwrap())
            .collect()
    };
    let both = roles(&a);
    assert!(both.contains(&Role::Request) && both.contains(&Role::Reply));
    press(&mut a, &model, KeyCode::Char('r'));
    let replies = roles(&a);
    assert!(!replies.is_empty() && replies.iter().all(|r| *r == Role::Reply));
    press(&mut a, &model, KeyCode::Char('R'));
    assert!(
        a.show_requests && !a.show_replies,
        "hiding both brings the other back"
    );
    let requests = roles(&a);
    assert!(!requests.is_empty() && requests.iter().all(|r| *r == Role::Request));
    assert_eq!(requests.len() + replies.len(), both.len());
    // The graph and path statistics see the same packets.
    assert!(a
        .flow_packets(&model)
        .iter()
        .all(|p| p.role == Some(Role::Request)));
}

#[test]
fn selection_follows_the_flow_while_new_flows_arrive() {
    let mut feed = Feed::new(65_536, 16_384);
    feed.packets(30);
    let mut a = App::default();
    a.clamp(&feed.pipe.sink);
    press(&mut a, &feed.pipe.sink, KeyCode::End);
    let chosen = a.flows.selected.unwrap();
    let row_before = a.flows.index;
    feed.all();
    a.clamp(&feed.pipe.sink);
    assert_eq!(a.flows.selected, Some(chosen), "same flow, by id");
    let rows = a.flow_rows(&feed.pipe.sink);
    assert_eq!(rows[a.flows.index], chosen);
    assert!(rows.len() > row_before + 1, "new flows were listed");
}

#[test]
fn the_flow_drilled_into_stays_while_newer_flows_arrive() {
    let mut feed = Feed::new(65_536, 16_384);
    feed.packets(30);
    let mut a = App::default();
    // Untouched, the cursor shows the newest flow...
    a.clamp(&feed.pipe.sink);
    let first = a.flows.selected.unwrap();
    press(&mut a, &feed.pipe.sink, KeyCode::Enter);
    press(&mut a, &feed.pipe.sink, KeyCode::Enter);
    let packet = a.packets.selected.unwrap();
    feed.all();
    a.clamp(&feed.pipe.sink);
    // ...but once drilled into, it stays on that flow and packet.
    assert_ne!(a.flow_rows(&feed.pipe.sink)[0], first, "newer flows came");
    assert_eq!(a.flows.selected, Some(first));
    assert_eq!(a.packets.selected, Some(packet));
    press(&mut a, &feed.pipe.sink, KeyCode::Esc);
    press(&mut a, &feed.pipe.sink, KeyCode::Esc);
    assert_eq!(a.flows.selected, Some(first));
}

#[test]
fn evicted_selection_clamps_to_its_row() {
    // Room for few flows and packets: data shrinks under the cursor.
    let mut feed = Feed::new(6, 4);
    feed.packets(8);
    let mut a = App::default();
    press(&mut a, &feed.pipe.sink, KeyCode::Enter);
    assert_eq!(a.screen, Screen::Packets);
    press(&mut a, &feed.pipe.sink, KeyCode::Down);
    let (before, old_index) = (a.packets.selected.unwrap(), a.packets.index);
    feed.all();
    assert!(feed.pipe.sink.packet_count() <= 6);
    assert!(feed.pipe.sink.flow_count() <= 4);
    assert!(feed.pipe.sink.counters.packets_evicted > 0);
    assert!(
        feed.pipe.sink.packet(before).is_none(),
        "the selected packet was evicted"
    );
    a.clamp(&feed.pipe.sink);
    // The cursor keeps its row number, clamped, and selects what is there
    // now (or nothing when the list emptied).
    let rows = a.packet_rows(&feed.pipe.sink);
    match a.packets.selected {
        Some(p) => {
            assert_eq!(a.packets.index, old_index.min(rows.len() - 1));
            assert_eq!(rows[a.packets.index], p);
        }
        None => assert!(rows.is_empty()),
    }
    for code in [
        KeyCode::Down,
        KeyCode::End,
        KeyCode::Enter,
        KeyCode::Tab,
        KeyCode::Up,
    ] {
        press(&mut a, &feed.pipe.sink, code);
    }
}

#[test]
fn empty_model_has_nothing_to_select() {
    let model = Model::new(ModelConfig::default());
    let mut a = App::default();
    for code in [
        KeyCode::Down,
        KeyCode::End,
        KeyCode::PageDown,
        KeyCode::Enter,
        KeyCode::Char('s'),
        KeyCode::Char(' '),
        KeyCode::Tab,
    ] {
        press(&mut a, &model, code);
    }
    assert_eq!(a.screen, Screen::Flows);
    assert_eq!(a.flows.selected, None);
    assert!(a.focus_packet(&model).is_none());
}

#[test]
fn freezing_keeps_the_lists_still() {
    let mut feed = Feed::new(65_536, 16_384);
    feed.packets(20);
    let mut a = App::default();
    press(&mut a, &feed.pipe.sink, KeyCode::Char(' '));
    let frozen_rows = a.flow_rows(&feed.pipe.sink);
    let counts = |a: &App, m: &Model| -> Vec<(u64, u64, u64)> {
        frozen_rows
            .iter()
            .map(|id| {
                let f = a.flow_entry(m, *id).unwrap();
                (f.requests, f.replies, f.last_ts)
            })
            .collect()
    };
    let before = counts(&a, &feed.pipe.sink);
    feed.all();
    assert_eq!(
        a.flow_rows(&feed.pipe.sink),
        frozen_rows,
        "no flow added or moved"
    );
    assert_eq!(
        counts(&a, &feed.pipe.sink),
        before,
        "the rows show what they showed"
    );
    assert!(
        frozen_rows.iter().any(|id| {
            feed.pipe.sink.flow(*id).unwrap().last_ts
                != a.flow_entry(&feed.pipe.sink, *id).unwrap().last_ts
        }),
        "the model itself went on"
    );
    let last = a.frozen.as_ref().unwrap().last_packet;
    assert!(a
        .flow_packets(&feed.pipe.sink)
        .iter()
        .all(|p| Some(p.id) <= last));
    press(&mut a, &feed.pipe.sink, KeyCode::Char(' '));
    assert!(a.flow_rows(&feed.pipe.sink).len() > frozen_rows.len());
}

#[test]
fn sort_cycles_and_orders() {
    let model = explorer::lab_model(65_536, 16_384);
    let mut a = App::default();
    press(&mut a, &model, KeyCode::Char('s'));
    let rows = a.flow_rows(&model);
    let counts: Vec<u64> = rows
        .iter()
        .map(|id| model.flow(*id).unwrap().packets_seen())
        .collect();
    assert!(counts.windows(2).all(|w| w[0] >= w[1]), "{counts:?}");
    for _ in 0..5 {
        press(&mut a, &model, KeyCode::Char('s'));
    }
    assert_eq!(a.flow_sort, hopscope::app::FlowSort::LastSeen, "six orders");
}

#[test]
fn readme_lists_every_key_binding() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for b in hopscope::input::BINDINGS {
        let row = format!("| `{}` | {} |", b.label, b.help);
        assert!(readme.contains(&row), "README lacks the row {row}");
    }
}

#[test]
fn a_replay_shows_what_the_live_run_showed() {
    // The fixture re-written with a scope: only the router namespace.
    let path = explorer::lab_fixture();
    let r1 = explorer::recorded_netns(&path, "hsfx-r1");
    assert_eq!(r1.len(), 1);
    let dir = tempfile::tempdir().unwrap();
    let scoped = dir.path().join("scoped.hsrec");
    let replay = Replay::open(&path).unwrap();
    let mut rec = Recorder::create(&scoped, replay.info()).unwrap();
    rec.scope(&r1, 0, "router only").unwrap();
    for f in replay {
        match f.unwrap() {
            Frame::Scope { .. } => {}
            f => rec.frame(&f).unwrap(),
        }
    }
    rec.finish().unwrap();

    let (model, label) =
        load_recording(&scoped, ModelConfig::default(), CorrelatorConfig::default()).unwrap();
    assert_eq!(label, "as recorded: router only");
    assert!(model.flow_count() > 0);
    for f in model.flows() {
        let ids: Vec<_> = model.flow_packets(f.id).collect();
        assert!(ids
            .iter()
            .all(|p| p.visits.iter().any(|v| v.device.netns.0 == r1[0])));
    }
    // The fixture itself: `trace --record` without a filter.
    let (all, label) =
        load_recording(&path, ModelConfig::default(), CorrelatorConfig::default()).unwrap();
    assert!(all.flow_count() > model.flow_count());
    assert_eq!(label, "as recorded: everything");
}
