//! The hop list of one packet: per visit the time since the previous visit
//! and since the first, the namespace, the interface, the hooks seen (`~
//! inferred` where no tracepoint saw the step), the tunnel around it and
//! the NAT rewrite before it, and how the packet ended after the last
//! visit.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Row, Table, TableState};
use ratatui::Frame;

use super::{
    drop_hint, dur, empty, hook_short, netns_label, outcome, role_mark, role_style, scroll_offset,
    Theme,
};
use crate::app::App;
use crate::model::{transit_ns, Model};
use crate::output::{describe, describe_outer};
use crate::topology::TopologyView;

const HEADER: [&str; 8] = [
    "#",
    "+prev",
    "+first",
    "netns",
    "inode",
    "interface",
    "link",
    "hooks",
];

/// `main`: the hop list fills the screen and has a cursor.
pub fn render(f: &mut Frame, area: Rect, model: &Model, app: &mut App, theme: Theme, main: bool) {
    let Some(p) = app.focus_packet(model) else {
        let text = if app.flows.selected.is_none() {
            "select a flow to see its packets' hops"
        } else {
            "no finished packet of this flow yet (or all hidden by r/R)"
        };
        empty(f, area, text, theme);
        return;
    };
    let [head, list, foot] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(1),
    ])
    .areas(area);
    let mut what = String::new();
    if let Some(h) = p.headers {
        describe(&h, &mut what);
    }
    let mut info = vec![
        Span::styled(format!(" packet {} ", p.id.0), theme.title()),
        Span::styled(role_mark(p.role), role_style(theme, p.role)),
        Span::raw(format!(
            " {what} · {} visits · transit {}",
            p.visits.len(),
            dur(transit_ns(p))
        )),
    ];
    if let Some(t) = p.sender {
        info.push(Span::raw(format!(" · sent by {}[{}]", t.comm, t.pid)));
    }
    if let Some(c) = p.copy_of {
        info.push(Span::styled(
            format!(" · copy of packet {}", c.0),
            theme.warn(),
        ));
    }
    if let Some((parent, k, n)) = p.segment_of {
        info.push(Span::raw(format!(
            " · segment {k}/{n} of packet {}",
            parent.0
        )));
    }
    f.render_widget(Line::from(info), head);

    let rows = if main {
        app.hop_rows(model)
    } else {
        (0..p.visits.len()).collect()
    };
    let height = list.height.saturating_sub(1) as usize;
    let sel = if main && !rows.is_empty() {
        app.page_rows = height.max(1);
        let s = app.hops.index.min(rows.len() - 1);
        app.hops.offset = scroll_offset(app.hops.offset, s, height);
        Some(s)
    } else {
        None
    };
    let offset = if main { app.hops.offset } else { 0 };
    let link_w = p
        .visits
        .iter()
        .filter_map(|v| model.describe_link(v.device.netns.0, v.device.ifindex.0))
        .map(|s| s.chars().count())
        .max()
        .unwrap_or(0)
        .clamp(4, 40) as u16;
    let first = p.visits.first().map_or(0, |v| v.first_ts);
    let body: Vec<Row> = rows
        .iter()
        .skip(offset)
        .take(height)
        .filter_map(|&i| p.visits.get(i).map(|v| (i, v)))
        .map(|(i, v)| {
            let prev = if i == 0 {
                v.first_ts
            } else {
                p.visits[i - 1].first_ts
            };
            let hooks: Vec<&str> = v.hooks.iter().map(hook_short).collect();
            let mut hooks = hooks.join(" ");
            if v.inferred {
                // No tracepoint saw this step: where the packet was found.
                hooks.push_str("~ inferred");
            }
            if let Some(o) = v.outer {
                hooks.push_str(" · ");
                describe_outer(&o, &mut hooks);
            }
            if let Some(rc) = v.xmit_rc.filter(|rc| *rc != 0) {
                hooks.push_str(&format!(" (xmit rc {rc})"));
            }
            if let Some(t) = v.task {
                hooks.push_str(&format!(" · {}[{}]", t.comm, t.pid));
            }
            if let Some(rw) = v.rewrite {
                hooks.push_str(&format!(" · {rw}"));
            }
            Row::new(vec![
                Line::from((i + 1).to_string()),
                Line::from(if i == 0 {
                    "".to_owned()
                } else {
                    format!("+{}", dur(v.first_ts - prev.min(v.first_ts)))
                }),
                Line::from(format!("+{}", dur(v.first_ts.saturating_sub(first)))),
                Line::from(netns_label(model, v.device.netns)),
                Line::styled(v.device.netns.0.to_string(), theme.dim()),
                Line::from(v.device.ifname.to_string()),
                Line::styled(
                    model
                        .describe_link(v.device.netns.0, v.device.ifindex.0)
                        .unwrap_or_default(),
                    theme.dim(),
                ),
                Line::from(hooks),
            ])
        })
        .collect();
    let table = Table::new(
        body,
        [
            Constraint::Length(3),
            Constraint::Length(9),
            Constraint::Length(9),
            Constraint::Length(14),
            Constraint::Length(11),
            Constraint::Length(16),
            Constraint::Length(link_w),
            Constraint::Min(20),
        ],
    )
    .header(Row::new(HEADER).style(theme.header()))
    .row_highlight_style(theme.selected());
    let mut state = TableState::default().with_selected(sel.map(|s| s - offset));
    f.render_stateful_widget(table, list, &mut state);
    let (out, style) = outcome(p, model, theme);
    let mut end = vec![Span::raw(" └ "), Span::styled(out, style)];
    if let Some(h) = drop_hint(p, model) {
        end.push(Span::styled(format!(" — {h}"), theme.warn()));
    }
    if p.visits_dropped > 0 {
        end.push(Span::styled(
            format!(" ({} more visits not kept)", p.visits_dropped),
            theme.warn(),
        ));
    }
    f.render_widget(Line::from(end), foot);
}
