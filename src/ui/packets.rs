//! The packets of the selected flow: role, what it carried, when, where it
//! went and how it ended.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Row, Table, TableState};
use ratatui::Frame;

use super::{dur, empty, outcome, role_mark, role_style, scroll_offset, Theme};
use crate::app::lists::Rows;
use crate::app::App;
use crate::event::L4;
use crate::model::{transit_ns, Model};

const HEADER: [&str; 8] = [
    "packet", "role", "carries", "at", "visits", "path", "transit", "outcome",
];

/// ICMP `id.seq`, TCP `[flags] seq`, UDP `len`, ARP op.
pub fn carries(p: &crate::correlate::Packet) -> String {
    match p.headers.map(|h| (h.l3, h.l4)) {
        Some((
            _,
            L4::Icmp {
                kind,
                code,
                id,
                seq,
                v6,
            },
        )) => {
            if matches!((v6, kind), (false, 0 | 8) | (true, 128 | 129)) {
                format!("#{id}.{seq:03}")
            } else {
                format!("type {kind} code {code}")
            }
        }
        Some((_, L4::Tcp { flags, seq, .. })) => format!("[{flags}] seq {seq}"),
        Some((_, L4::Udp { len, .. })) => format!("len {}", len.saturating_sub(8)),
        Some((crate::event::L3::Arp { op, .. }, _)) => match op {
            1 => "who-has".to_owned(),
            2 => "is-at".to_owned(),
            _ => format!("op {op}"),
        },
        Some((_, L4::Other { proto })) => format!("proto {proto}"),
        Some((_, L4::Fragment { proto })) => format!("fragment (proto {proto})"),
        Some((_, L4::None)) | None => "-".to_owned(),
    }
}

/// `  · 1 TCP reset · 2 retransmissions · 1 ICMP error`, or nothing.
fn flow_events(flow: Option<&crate::model::FlowEntry>) -> String {
    let Some(f) = flow else {
        return String::new();
    };
    let mut s = String::new();
    for (n, one, many) in [
        (f.resets, "TCP reset", "TCP resets"),
        (f.retransmits, "retransmission", "retransmissions"),
        (f.icmp_errors, "ICMP error sent", "ICMP errors sent"),
    ] {
        if n > 0 {
            s.push_str(&format!("  · {n} {}", if n == 1 { one } else { many }));
        }
    }
    s
}

/// `eth0 › vc1 › vc2 › eth0`.
pub fn path_summary(p: &crate::correlate::Packet) -> String {
    let mut s = String::new();
    for (i, v) in p.visits.iter().enumerate() {
        if i > 0 {
            s.push_str(" › ");
        }
        s.push_str(&v.device.ifname.to_string());
    }
    s
}

pub fn render(f: &mut Frame, area: Rect, model: &Model, app: &mut App, theme: Theme) {
    // Only the rows shown are looked at: the list is a window onto the
    // flow's packets, however many it keeps.
    let rows = app.packet_list(model);
    // What the rows need from the flow, copied out of the (possibly frozen)
    // entry so the view state can be updated below.
    let flow = app
        .flows
        .selected
        .and_then(|id| app.flow_entry(model, id))
        .map(|fl| (fl.first_ts, fl.packets.len(), flow_events(Some(fl))));
    let [head, list] = Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(area);
    let kept = flow.as_ref().map_or(0, |fl| fl.1);
    f.render_widget(
        Line::from(vec![
            Span::styled(
                format!(" Packets ({} listed, {kept} kept)", rows.len()),
                theme.title(),
            ),
            Span::styled(
                format!("  sort: {} · s cycles", app.packet_sort.name()),
                theme.dim(),
            ),
            Span::styled(
                flow.as_ref().map(|fl| fl.2.clone()).unwrap_or_default(),
                theme.warn(),
            ),
        ]),
        head,
    );
    let Some((flow_first_ts, _, _)) = flow else {
        empty(f, list, "the flow is gone (evicted); Esc goes back", theme);
        return;
    };
    if rows.is_empty() {
        empty(
            f,
            list,
            "no packet to list (r/R toggles roles, Esc clears a search)",
            theme,
        );
        return;
    }
    let height = list.height.saturating_sub(1) as usize;
    app.page_rows = height.max(1);
    let sel = app.packets.index.min(rows.len() - 1);
    app.packets.offset = scroll_offset(app.packets.offset, sel, height);
    let shown: Vec<&crate::correlate::Packet> = rows
        .iter_from(app.packets.offset)
        .take(height)
        .filter_map(|id| model.packet(id))
        .collect();
    let path_w = shown
        .iter()
        .map(|p| path_summary(p).chars().count())
        .max()
        .unwrap_or(0)
        .clamp(6, 60) as u16;
    let body: Vec<Row> = shown
        .iter()
        .map(|p| {
            let (out, out_style) = outcome(p, model, theme);
            let mut visits = p.visits.len().to_string();
            if p.visits_dropped > 0 {
                visits.push_str(&format!("+{}", p.visits_dropped));
            }
            Row::new(vec![
                Line::from(p.id.0.to_string()),
                Line::styled(role_mark(p.role), role_style(theme, p.role)),
                Line::from(carries(p)),
                Line::from(format!(
                    "+{}",
                    dur(p.first_ts.saturating_sub(flow_first_ts))
                )),
                Line::from(visits),
                Line::from(path_summary(p)),
                Line::from(dur(transit_ns(p))),
                Line::styled(out, out_style),
            ])
        })
        .collect();
    let table = Table::new(
        body,
        [
            Constraint::Length(8),
            Constraint::Length(5),
            Constraint::Length(22),
            Constraint::Length(10),
            Constraint::Length(6),
            Constraint::Length(path_w),
            Constraint::Length(9),
            Constraint::Fill(1),
        ],
    )
    .header(Row::new(HEADER).style(theme.header()))
    .row_highlight_style(theme.selected());
    let mut state = TableState::default().with_selected(Some(sel - app.packets.offset));
    f.render_stateful_widget(table, list, &mut state);
}
