//! mtr-style path statistics: per position of the flow's dominant request
//! and reply paths, packets seen, the share that never reached the next
//! position, and last/avg/best/worst time from the previous position.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Row, Table};
use ratatui::Frame;

use super::{dur, empty, netns_label, Theme};
use crate::app::App;
use crate::correlate::path::PathStats;
use crate::correlate::Role;
use crate::model::Model;

const HEADER: [&str; 9] = [
    "#",
    "netns",
    "interface",
    "seen",
    "loss%",
    "last",
    "avg",
    "best",
    "worst",
];

pub fn render(f: &mut Frame, area: Rect, model: &Model, app: &mut App, theme: Theme) {
    let covered = app.path_stats(model);
    let stats: &[PathStats] = covered.as_ref().map_or(&[], |c| &c.value);
    // Over a long flow, the statistics are the newest packets'.
    let window = covered
        .as_ref()
        .filter(|c| c.shown < c.visible)
        .map(|c| format!(" (the newest {} of {})", c.shown, c.visible))
        .unwrap_or_default();
    if stats.is_empty() {
        empty(
            f,
            area,
            "no finished packet of this flow yet (or all hidden by r/R)",
            theme,
        );
        return;
    }
    let areas = Layout::vertical(
        stats
            .iter()
            .map(|st| Constraint::Length(st.hops.len() as u16 + 3)),
    )
    .split(area);
    for (st, area) in stats.iter().zip(areas.iter()) {
        let style = match st.role {
            Role::Request => theme.request(),
            Role::Reply => theme.reply(),
        };
        let [head, body] =
            Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(*area);
        f.render_widget(
            Line::from(vec![Span::styled(
                format!(
                    " {} path: {} of {} packets took it, {} distinct path{}{window}",
                    st.role.name(),
                    st.on_path,
                    st.packets,
                    st.distinct_paths,
                    if st.distinct_paths == 1 { "" } else { "s" }
                ),
                style.add_modifier(Modifier::BOLD),
            )]),
            head,
        );
        let rows: Vec<Row> = st
            .hops
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let loss = Line::styled(
                    format!("{:.1}", h.loss_pct()),
                    if h.lost > 0 {
                        theme.drop()
                    } else {
                        Style::new()
                    },
                );
                let t = |v: u64| if i == 0 { String::new() } else { dur(v) };
                Row::new(vec![
                    Line::from(format!("{}", i + 1)),
                    Line::from(netns_label(model, h.device.netns)),
                    Line::from(h.device.ifname.to_string()),
                    Line::from(h.seen.to_string()),
                    loss,
                    Line::from(t(h.last_ns)),
                    Line::from(h.mean_ns().map_or(String::new(), t)),
                    Line::from(t(h.best_ns)),
                    Line::from(t(h.worst_ns)),
                ])
            })
            .collect();
        let table = Table::new(
            rows,
            [
                Constraint::Length(3),
                Constraint::Length(14),
                Constraint::Length(16),
                Constraint::Length(7),
                Constraint::Length(6),
                Constraint::Length(9),
                Constraint::Length(9),
                Constraint::Length(9),
                Constraint::Length(9),
            ],
        )
        .header(Row::new(HEADER).style(theme.header()));
        f.render_widget(table, body);
    }
}
