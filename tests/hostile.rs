//! Hostile input that needs no privilege: names carrying terminal escape
//! sequences in a recording (every string a recording can hold, and the
//! interface and process names of its events) reach no screen raw, in any
//! explorer view or in text mode; bounded filter compilation; and the lost
//! count that the status bar and the exit lines share.

#[path = "common/explorer.rs"]
#[allow(dead_code)]
mod explorer;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crossterm::event::KeyCode;
use explorer::{press, typed};
use hopscope::app::App;
use hopscope::correlate::{Correlator, CorrelatorConfig};
use hopscope::event::record::{Frame, Recorder, Replay};
use hopscope::event::ShortName;
use hopscope::filter::{Compilation, PacketFilter};
use hopscope::model::{Model, ModelConfig};
use hopscope::output::text::TextSink;
use hopscope::output::Filter;
use hopscope::ui::{self, Theme};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

/// Sets the terminal title (OSC 0), clears the screen (CSI 2J), and a C1
/// CSI for good measure.
const EVIL: &str = "\x1b]0;pwned\x07\x1b[2J\u{9b}31m";
/// How `EVIL` must read on a screen.
const EVIL_SHOWN: &str = "\\x1b]0;pwned\\x07\\x1b[2J\\u{9b}31m";

/// `name` with an escape sequence in front, cut to 16 bytes like the
/// kernel's names.
fn evil16(name: &str) -> ShortName {
    let mut b = b"\x1b]0;p\x07".to_vec();
    b.extend_from_slice(name.as_bytes());
    b.truncate(16);
    ShortName::from_bytes(&b)
}

fn evil(s: &str) -> String {
    format!("{EVIL}{s}")
}

/// The lab fixture, rewritten with an escape sequence in every name it
/// holds: namespace names, links (names, masters, peers, parents, kinds),
/// symbols, drop reason names, the scope's label, the host name, and the
/// interface and process names of every event.
fn hostile_recording(dir: &Path) -> PathBuf {
    let replay = Replay::open(&explorer::lab_fixture()).expect("fixture");
    let mut info = replay.info().clone();
    info.hostname = evil(&info.hostname);
    let path = dir.join("hostile.hsrec");
    let mut rec = Recorder::create(&path, &info).expect("create");
    for f in replay {
        let f = match f.expect("fixture frame") {
            Frame::NetnsName { inode, name } => Frame::NetnsName {
                inode,
                name: evil(&name),
            },
            Frame::Symbol { addr, name } => Frame::Symbol {
                addr,
                name: evil(&name),
            },
            Frame::DropReasons(r) => {
                Frame::DropReasons(r.into_iter().map(|(v, n)| (v, evil(&n))).collect())
            }
            Frame::Scope {
                netns,
                owner_cgroup,
                label,
            } => Frame::Scope {
                netns,
                owner_cgroup,
                label: evil(&label),
            },
            Frame::Link(mut l) => {
                l.ifname = evil(&l.ifname);
                l.kind_name = l.kind_name.map(|k| evil(&k));
                for r in [&mut l.master, &mut l.peer, &mut l.parent]
                    .into_iter()
                    .flatten()
                {
                    r.ifname = evil(&r.ifname);
                }
                Frame::Link(l)
            }
            Frame::Event(mut ev) => {
                if let Some(d) = ev.device.as_mut() {
                    d.ifname = evil16(d.ifname.as_str());
                }
                if let Some(t) = ev.task.as_mut() {
                    t.comm = evil16(t.comm.as_str());
                }
                Frame::Event(ev)
            }
            other => other,
        };
        rec.frame(&f).expect("write");
    }
    rec.finish().expect("finish");
    path
}

fn hostile_model(dir: &Path) -> Model {
    hopscope::tui::load_recording(
        &hostile_recording(dir),
        ModelConfig::default(),
        CorrelatorConfig::default(),
    )
    .expect("the hostile recording replays")
    .0
}

/// The screen as text, and every cell whose symbol holds a control
/// character (what a terminal would act on).
fn render(model: &Model, app: &mut App) -> (String, Vec<String>) {
    let mut term = Terminal::new(TestBackend::new(180, 45)).unwrap();
    term.draw(|f| ui::render(f, model, app, Theme { color: false }))
        .unwrap();
    let buf = term.backend().buffer();
    let mut text = String::new();
    let mut bad = Vec::new();
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            let s = buf[(x, y)].symbol();
            if s.chars().any(char::is_control) {
                bad.push(format!("({x},{y}) {s:?}"));
            }
            text.push_str(s);
        }
        text.push('\n');
    }
    (text, bad)
}

#[test]
fn hostile_names_are_escaped_on_every_explorer_screen() {
    let dir = tempfile::tempdir().unwrap();
    let model = hostile_model(dir.path());
    assert!(model.flow_count() > 5, "the fixture replays into flows");
    let mut app = App {
        source_label: evil("replay hostile.hsrec"),
        filter_label: evil("as recorded"),
        ..App::default()
    };
    let mut seen = String::new();
    let mut check = |app: &mut App, what: &str| {
        let (text, bad) = render(&model, app);
        assert!(
            bad.is_empty(),
            "{what}: raw control characters in {bad:?}\n{text}"
        );
        seen.push_str(&text);
        text
    };
    let flows = check(&mut app, "flows");
    assert!(
        flows.contains("\\x1b]0;pwned\\x07"),
        "names shown escaped:\n{flows}"
    );
    // A flow with drops (the fixture's UDP to a closed port), its packets,
    // hops, graph and path statistics.
    press(&mut app, &model, KeyCode::Char('/'));
    typed(&mut app, &model, "udp");
    press(&mut app, &model, KeyCode::Enter);
    press(&mut app, &model, KeyCode::Enter);
    check(&mut app, "packets");
    press(&mut app, &model, KeyCode::Enter);
    let hops = check(&mut app, "hops");
    assert!(
        hops.contains("\\x1b]0;p\\x07"),
        "interface names escaped:\n{hops}"
    );
    press(&mut app, &model, KeyCode::Tab);
    check(&mut app, "graph");
    press(&mut app, &model, KeyCode::Tab);
    check(&mut app, "path statistics");
    press(&mut app, &model, KeyCode::Esc);
    press(&mut app, &model, KeyCode::Esc);
    press(&mut app, &model, KeyCode::Esc);
    press(&mut app, &model, KeyCode::Char('D'));
    let drops = check(&mut app, "drops");
    assert!(
        drops.contains(EVIL_SHOWN),
        "drop reason names escaped:\n{drops}"
    );
    press(&mut app, &model, KeyCode::Enter);
    check(&mut app, "drop example");
    press(&mut app, &model, KeyCode::Char('?'));
    check(&mut app, "help");
    // What a user types (control keys are not text) and what the app
    // says (a notice quoting a name).
    let mut app = App::default();
    press(&mut app, &model, KeyCode::Char('/'));
    typed(&mut app, &model, EVIL);
    app.notice = Some(evil("a notice"));
    let search = check(&mut app, "search line and notice");
    assert!(search.contains(" /]0;pwned[2J"), "{search}");
    assert!(
        search.contains("\\x1b]0;pwned\\x07\\x1b[2J\\u{9b}31ma notice"),
        "{search}"
    );
    assert!(seen.contains("\\u{9b}31m"), "C1 controls escaped");
}

#[test]
fn hostile_names_are_escaped_in_text_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = hostile_recording(dir.path());
    let mut corr = Correlator::new(CorrelatorConfig::default());
    let mut text = TextSink::new(Vec::new(), false, Filter::default());
    let mut hooks = TextSink::new(Vec::new(), true, Filter::default());
    for f in Replay::open(&path).unwrap() {
        if let Frame::Event(ev) = f.unwrap() {
            corr.on_event(&ev, &mut text);
            corr.on_event(&ev, &mut hooks);
        }
    }
    corr.flush(&mut text);
    // Text mode prints in time order, after a short reorder window.
    text.release(u64::MAX);
    hooks.release(u64::MAX);
    for (what, sink) in [("visits", text), ("--all-hooks", hooks)] {
        assert!(sink.error.is_none());
        let out = String::from_utf8(sink.into_inner()).unwrap();
        assert!(out.lines().count() > 50, "{what}: {out}");
        let raw: Vec<&str> = out
            .lines()
            .filter(|l| l.chars().any(char::is_control))
            .collect();
        assert!(raw.is_empty(), "{what}: raw control characters: {raw:?}");
        assert!(
            out.contains("\\x1b]0;p\\x07"),
            "{what}: escaped names:\n{out}"
        );
    }
}

/// `n` terms of `port N or ...`: libpcap's optimizer is superlinear in them.
fn ors(n: usize) -> String {
    (1..=n)
        .map(|i| format!("port {i}"))
        .collect::<Vec<_>>()
        .join(" or ")
}

#[test]
fn long_filters_are_refused_in_bounded_time() {
    // 600 terms: refused by size at once (libpcap would take minutes).
    let t0 = Instant::now();
    let e = PacketFilter::compile(&ors(600), false).unwrap_err();
    assert!(
        t0.elapsed() < Duration::from_millis(100),
        "{:?}",
        t0.elapsed()
    );
    assert!(
        e.message.contains("bytes; hopscope compiles at most 2048"),
        "{e}"
    );
    assert!(
        e.to_string().len() < 300,
        "the message quotes a short prefix: {e}"
    );
    // 170 terms fit the size limit and take libpcap about a second here:
    // a compilation that overruns its time limit is refused at the limit.
    let c = Compilation::start(&ors(170), false);
    let t0 = Instant::now();
    let e = c.wait(Duration::from_millis(50)).unwrap_err();
    let waited = t0.elapsed();
    assert!(
        waited < Duration::from_millis(500),
        "refused after {waited:?}"
    );
    assert!(
        e.message
            .contains("did not finish compiling it within 0.05 s"),
        "{e}"
    );
    // Within the default limit it compiles (or is refused by libpcap
    // itself for its size), never hangs.
    let t0 = Instant::now();
    let _ = hopscope::filter::compile_bounded(&ors(170), false);
    assert!(t0.elapsed() < hopscope::filter::expr::COMPILE_TIME_LIMIT + Duration::from_millis(500));
}

#[test]
fn the_exit_lines_count_lost_events_as_the_status_bar_does() {
    use hopscope::event::record::Tick;
    let mut model = Model::new(ModelConfig::default());
    model.on_tick(&Tick {
        now_ns: 1_000_000_000,
        emitted: 500_000,
        lost: 0,
        received: 500_000,
        decode_errors: 0,
        channel_dropped: 429_951,
        reused: 0,
    });
    let (status, _) = render(&model, &mut App::default());
    assert!(status.contains("LOST 429951 of 500000"), "{status}");
    let phrase = hopscope::output::lost_phrase(0, 429_951);
    assert_eq!(phrase, "429951 lost (429951 while processing lagged)");
    assert_eq!(
        hopscope::output::lost_phrase(10, 5),
        "15 lost (10 with the ring buffer full: raise --ring-size; 5 while processing lagged)"
    );
    assert_eq!(hopscope::output::lost_phrase(0, 0), "0 lost");
}
