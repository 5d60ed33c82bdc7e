//! The flows list: one row per conversation, live and sortable.

use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Row, Table, TableState};
use ratatui::Frame;

use super::{age, dur, empty, endpoint, netns_label, scroll_offset, Theme};
use crate::app::App;
use crate::model::Model;

const HEADER: [&str; 10] = [
    "proto",
    "initiator",
    "netns",
    "responder",
    "netns",
    "req/rep",
    "bytes",
    "drops",
    "last",
    "transit",
];

pub fn render(f: &mut Frame, area: Rect, model: &Model, app: &mut App, theme: Theme) {
    let rows = app.flow_rows(model);
    let title = Line::from(vec![
        Span::styled(format!(" Flows ({}", rows.len()), theme.title()),
        Span::styled(
            if rows.len() == model.flow_count() {
                ")".to_owned()
            } else {
                format!(" of {})", model.flow_count())
            },
            theme.title(),
        ),
        Span::styled(
            format!("  sort: {} · s cycles", app.flow_sort.name()),
            theme.dim(),
        ),
    ]);
    let [head, list] =
        ratatui::layout::Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(area);
    f.render_widget(title, head);
    if rows.is_empty() {
        let text = if model.flow_count() == 0 {
            "no flows yet: waiting for packets"
        } else {
            "no flow matches the search (Esc clears it)"
        };
        empty(f, list, text, theme);
        return;
    }
    let height = list.height.saturating_sub(1) as usize;
    app.page_rows = height.max(1);
    let sel = app.flows.index.min(rows.len() - 1);
    app.flows.offset = scroll_offset(app.flows.offset, sel, height);
    let now = model.counters.tick.now_ns;
    let shown: Vec<&crate::model::FlowEntry> = rows
        .iter()
        .skip(app.flows.offset)
        .take(height)
        .filter_map(|id| app.flow_entry(model, *id))
        .collect();
    let ns = |n: Option<crate::event::NetnsId>| n.map_or("?".to_owned(), |n| netns_label(model, n));
    let cells: Vec<[String; 4]> = shown
        .iter()
        .map(|fl| {
            [
                endpoint(fl.key.proto, fl.initiator),
                ns(fl.initiator_netns),
                endpoint(fl.key.proto, fl.responder()),
                ns(fl.responder_netns),
            ]
        })
        .collect();
    // Columns as wide as what they show now, within bounds.
    let width = |i: usize, min: usize, max: usize| {
        let w = cells
            .iter()
            .map(|c| c[i].chars().count())
            .max()
            .unwrap_or(0);
        w.clamp(min, max) as u16
    };
    let drops_w = shown
        .iter()
        .filter(|f| f.drops > 0)
        .filter_map(|f| f.dominant_drop())
        .map(|r| {
            model
                .drop_reasons()
                .name(r)
                .map_or(10, |n| crate::safe_text::shown(n).len())
                + 4
        })
        .max()
        .unwrap_or(5)
        .clamp(5, 26) as u16;
    let widths = [
        Constraint::Length(5),
        Constraint::Length(width(0, 9, 47)),
        Constraint::Length(width(1, 5, 20)),
        Constraint::Length(width(2, 9, 47)),
        Constraint::Length(width(3, 5, 20)),
        Constraint::Length(9),
        Constraint::Length(9),
        Constraint::Length(drops_w),
        Constraint::Length(5),
        Constraint::Length(9),
    ];
    let body: Vec<Row> = shown
        .iter()
        .zip(cells)
        .map(|(fl, [ini, ini_ns, resp, resp_ns])| {
            let drops = match fl.dominant_drop() {
                Some(r) if fl.drops > 0 => {
                    let name = model.drop_reasons().name(r).map_or_else(
                        || format!("reason {r}"),
                        |n| crate::safe_text::shown(n).into_owned(),
                    );
                    Span::styled(format!("{} {name}", fl.drops), theme.drop())
                }
                _ => Span::raw("0"),
            };
            Row::new(vec![
                Line::from(fl.key.proto.name()),
                Line::from(ini),
                Line::from(ini_ns),
                Line::from(resp),
                Line::from(resp_ns),
                Line::from(format!("{}/{}", fl.requests, fl.replies)),
                Line::from(fl.bytes.to_string()),
                Line::from(drops),
                Line::from(age(now, fl.last_ts)),
                Line::from(fl.median_transit_ns().map_or("-".to_owned(), dur)),
            ])
        })
        .collect();
    let table = Table::new(body, widths)
        .header(Row::new(HEADER).style(theme.header()))
        .row_highlight_style(theme.selected());
    let mut state = TableState::default().with_selected(Some(sel - app.flows.offset));
    f.render_stateful_widget(table, list, &mut state);
}
