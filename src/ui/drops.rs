//! The drops view: where and why packets were dropped, by reason, namespace
//! and device, most frequent first; the detail shows the newest packet
//! dropped there, and Enter opens its hops.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Row, Table, TableState};
use ratatui::Frame;

use super::{age, empty, netns_label, scroll_offset, Theme};
use crate::app::App;
use crate::model::Model;
use crate::safe_text::shown;

const HEADER: [&str; 7] = [
    "count",
    "reason",
    "netns",
    "interface",
    "last",
    "packet",
    "what to check",
];

pub fn render(f: &mut Frame, area: Rect, model: &Model, app: &mut App, theme: Theme) {
    let rows = app.drop_rows(model);
    let [head, list] = Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(area);
    let total: u64 = model.drops().map(|d| d.count).sum();
    f.render_widget(
        Line::from(vec![
            Span::styled(
                format!(" Drops ({total} packets, {} places)", rows.len()),
                theme.title(),
            ),
            Span::styled(
                "  routine frees are not listed · Enter: the newest packet · D or Esc: flows",
                theme.dim(),
            ),
        ]),
        head,
    );
    if rows.is_empty() {
        empty(
            f,
            list,
            "no drop yet (routine frees such as socket closes are not drops)",
            theme,
        );
        return;
    }
    let height = list.height.saturating_sub(1) as usize;
    app.page_rows = height.max(1);
    let sel = app.drops.index.min(rows.len() - 1);
    app.drops.offset = scroll_offset(app.drops.offset, sel, height);
    let now = model.counters.tick.now_ns;
    let body: Vec<Row> = rows
        .iter()
        .skip(app.drops.offset)
        .take(height)
        .filter_map(|k| model.drop_stat(*k))
        .map(|d| {
            let name = model.drop_reasons().name(d.key.reason).map_or_else(
                || format!("reason {}", d.key.reason),
                |n| shown(n).into_owned(),
            );
            let ns = netns_label(model, d.key.netns);
            let ifname = d.ifname.to_string();
            let hint = model
                .drop_reasons()
                .name(d.key.reason)
                .and_then(|raw| crate::event::drop_reason::hint(raw, &ns, &ifname, None))
                .unwrap_or_default();
            Row::new(vec![
                Line::from(d.count.to_string()),
                Line::styled(name, theme.drop()),
                Line::from(ns),
                Line::from(ifname),
                Line::from(age(now, d.last_ts)),
                Line::from(d.example.0.to_string()),
                Line::styled(hint, theme.dim()),
            ])
        })
        .collect();
    let table = Table::new(
        body,
        [
            Constraint::Length(7),
            Constraint::Length(22),
            Constraint::Length(14),
            Constraint::Length(16),
            Constraint::Length(5),
            Constraint::Length(8),
            Constraint::Fill(1),
        ],
    )
    .header(Row::new(HEADER).style(theme.header()))
    .row_highlight_style(theme.selected());
    let mut state = TableState::default().with_selected(Some(sel - app.drops.offset));
    f.render_stateful_widget(table, list, &mut state);
}
