//! Drawing the explorer: `render(frame, &Model, &mut App)` lays out the
//! title, the screen's list, the detail area, the search prompt (or the
//! filter line) and the status bar. One module per region; nothing here
//! changes the model, and the only state written back is scroll offsets and
//! the page size.

pub mod drops;
pub mod flows;
pub mod graph;
pub mod help;
pub mod hops;
pub mod packets;
pub mod paths;
pub mod status;
pub mod theme;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;

use crate::app::{App, Detail, Screen};
use crate::correlate::flow::Endpoint;
use crate::correlate::{FlowProto, Outcome, Packet, Role};
use crate::event::{Hook, NetnsId};
use crate::model::Model;
use crate::output::fmt_duration;
use crate::safe_text::{shown, Shown};
pub use theme::Theme;

/// Draws one frame.
pub fn render(f: &mut Frame, model: &Model, app: &mut App, theme: Theme) {
    app.clamp(model);
    let area = f.area();
    // The filter line, while open, takes the place of the search line.
    let filter_rows = status::filter_prompt_rows(app);
    let search_line = app.search().editing || app.search().active();
    let prompt_rows = if filter_rows > 0 {
        filter_rows
    } else {
        u16::from(search_line)
    };
    let [title, body, prompt, status] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(prompt_rows),
        Constraint::Length(1),
    ])
    .areas(area);
    f.render_widget(
        Paragraph::new(title_line(model, app, theme)).style(theme.bar()),
        title,
    );
    match app.screen {
        Screen::Flows => {
            let [list, detail] =
                Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)])
                    .areas(body);
            flows::render(f, list, model, app, theme);
            render_detail(f, detail, model, app, theme, false);
        }
        Screen::Packets => {
            let [list, detail] =
                Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)])
                    .areas(body);
            packets::render(f, list, model, app, theme);
            render_detail(f, detail, model, app, theme, false);
        }
        Screen::Hops => render_detail(f, body, model, app, theme, true),
        Screen::Drops => {
            let [list, detail] =
                Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)])
                    .areas(body);
            drops::render(f, list, model, app, theme);
            hops::render(f, detail, model, app, theme, false);
        }
    }
    if filter_rows > 0 {
        status::render_filter_prompt(f, prompt, app, theme);
    } else if search_line {
        status::render_search(f, prompt, app, theme);
    }
    status::render(f, status, model, app, theme);
    if app.help {
        help::render(f, area, theme);
    }
}

fn render_detail(
    f: &mut Frame,
    area: Rect,
    model: &Model,
    app: &mut App,
    theme: Theme,
    main: bool,
) {
    let tabs = [Detail::HopList, Detail::Graph, Detail::PathStats]
        .iter()
        .map(|d| {
            if *d == app.detail {
                Span::styled(format!("[{}]", d.name()), theme.title())
            } else {
                Span::styled(format!(" {} ", d.name()), theme.dim())
            }
        })
        .collect::<Vec<_>>();
    let mut title = vec![Span::raw(" ")];
    title.extend(tabs);
    title.push(Span::styled(" Tab ", theme.dim()));
    let block = Block::default()
        .borders(Borders::TOP)
        .title(Line::from(title));
    let inner = block.inner(area);
    f.render_widget(block, area);
    match app.detail {
        Detail::HopList => hops::render(f, inner, model, app, theme, main),
        Detail::Graph => graph::render(f, inner, model, app, theme),
        Detail::PathStats => paths::render(f, inner, model, app, theme),
    }
}

fn title_line(model: &Model, app: &App, theme: Theme) -> Line<'static> {
    let mut spans = vec![Span::styled(" hopscope ", theme.title().patch(theme.bar()))];
    spans.push(Span::raw(format!("│ {} │ ", Shown(&app.source_label))));
    spans.push(Span::raw("flows"));
    if app.screen == Screen::Drops {
        spans.push(Span::raw(" › drops"));
    }
    if !matches!(app.screen, Screen::Flows | Screen::Drops) {
        if let Some(fl) = app.flows.selected.and_then(|id| app.flow_entry(model, id)) {
            spans.push(Span::raw(format!(
                " › {} {} ⇄ {}",
                fl.key.proto.name(),
                endpoint(fl.key.proto, fl.initiator),
                endpoint(fl.key.proto, fl.responder())
            )));
        }
    }
    if app.screen == Screen::Hops {
        if let Some(p) = app.packets.selected {
            spans.push(Span::raw(format!(" › packet {}", p.0)));
        }
    }
    spans.push(Span::raw(format!(
        " │ {}{}",
        if app.show_requests { "requests " } else { "" },
        if app.show_replies { "replies" } else { "" }
    )));
    if app.frozen.is_some() {
        spans.push(Span::styled(" │ FROZEN (space resumes)", theme.warn()));
    }
    Line::from(spans)
}

/// A namespace as people read it: its name when known, else the inode.
pub fn netns_label(model: &Model, ns: NetnsId) -> String {
    match model.netns_name(ns) {
        Some(n) => shown(n).into_owned(),
        None => ns.0.to_string(),
    }
}

/// `addr:port` for TCP/UDP, the bare address otherwise.
pub fn endpoint(proto: FlowProto, ep: Endpoint) -> String {
    match (ep.0, proto) {
        (Some(std::net::IpAddr::V6(a)), FlowProto::Tcp | FlowProto::Udp) => {
            format!("[{a}]:{}", ep.1)
        }
        (Some(a), FlowProto::Tcp | FlowProto::Udp) => format!("{a}:{}", ep.1),
        (Some(a), _) => a.to_string(),
        (None, _) => "?".to_owned(),
    }
}

pub fn dur(ns: u64) -> String {
    let mut s = String::new();
    fmt_duration(ns, &mut s);
    s
}

/// Coarse age: `<1s`, `12s`, `3m`, `2h`.
pub fn age(now: u64, ts: u64) -> String {
    let s = now.saturating_sub(ts) / 1_000_000_000;
    match s {
        0 => "<1s".to_owned(),
        1..=119 => format!("{s}s"),
        120..=7199 => format!("{}m", s / 60),
        _ => format!("{}h", s / 3600),
    }
}

pub fn role_style(theme: Theme, r: Option<Role>) -> Style {
    match r {
        Some(Role::Reply) => theme.reply(),
        _ => theme.request(),
    }
}

/// ▶ for requests, ◀ for replies (readable without colour).
pub fn role_mark(r: Option<Role>) -> &'static str {
    match r {
        Some(Role::Request) => "▶ req",
        Some(Role::Reply) => "◀ rep",
        None => "· -",
    }
}

/// How a packet ended, and how alarming that is: routine frees read
/// "freed", real drops "dropped" with the kernel's reason name and where
/// (`function+0xoff` once resolved).
pub fn outcome(p: &Packet, model: &Model, theme: Theme) -> (String, Style) {
    let reasons = model.drop_reasons();
    let at = |location: u64| {
        model
            .symbol(location)
            .map_or_else(|| format!("0x{location:x}"), |s| shown(s).into_owned())
    };
    let name = |reason: u32| {
        reasons
            .name(reason)
            .map_or_else(|| format!("reason {reason}"), |n| shown(n).into_owned())
    };
    let mut out = match p.outcome {
        Outcome::Delivered { task: Some(t) } => {
            (format!("delivered to {}[{}]", t.comm, t.pid), Style::new())
        }
        Outcome::Delivered { task: None } => ("delivered".to_owned(), Style::new()),
        Outcome::Consumed => ("consumed".to_owned(), Style::new()),
        Outcome::Freed { reason, location } => (
            format!("freed ({}) at {}", name(reason), at(location)),
            Style::new(),
        ),
        Outcome::Dropped {
            reason, location, ..
        } => (
            format!("dropped: {} at {}", name(reason), at(location)),
            theme.drop(),
        ),
        Outcome::Unseen => ("unseen: no end event".to_owned(), theme.dim()),
    };
    if let Some((table, err)) = p.route_error {
        out.0.push_str(&format!(
            " · route lookup failed in table {table}: {}",
            crate::output::errno_name(err)
        ));
    }
    if let Some((t, c)) = p.icmp_error {
        let v6 = matches!(p.headers.map(|h| h.l3), Some(crate::event::L3::Ipv6 { .. }));
        out.0.push_str(&format!(
            " · ICMP {} sent back",
            crate::output::icmp_error_name(v6, t, c)
        ));
    }
    out
}

/// What to check when `p` was dropped (a reason with advice), naming the
/// namespace and device where it was last seen.
pub fn drop_hint(p: &Packet, model: &Model) -> Option<String> {
    let Outcome::Dropped { reason, .. } = p.outcome else {
        return None;
    };
    let reasons = model.drop_reasons();
    let last = p.visits.last()?;
    crate::event::drop_reason::hint(
        reasons.name(reason)?,
        &netns_label(model, last.device.netns),
        &last.device.ifname.to_string(),
        p.headers.and_then(|h| h.vlan),
    )
}

/// Short hook names for the hop list (see [`crate::event::HOOKS`]).
pub fn hook_short(h: Hook) -> &'static str {
    h.short()
}

/// Keeps the selected row visible: returns the first row to draw.
pub fn scroll_offset(offset: usize, selected: usize, height: usize) -> usize {
    let height = height.max(1);
    if selected < offset {
        selected
    } else if selected >= offset + height {
        selected + 1 - height
    } else {
        offset
    }
}

/// Placeholder text in an empty area.
pub fn empty(f: &mut Frame, area: Rect, text: &str, theme: Theme) {
    f.render_widget(
        Paragraph::new(Line::styled(format!(" {text}"), theme.dim())),
        area,
    );
}
