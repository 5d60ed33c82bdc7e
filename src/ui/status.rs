//! The status bar (events/s, lost events — never hidden —, packets tracked,
//! degraded hooks, what is filtered) and the search prompt.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::Theme;
use crate::app::App;
use crate::model::Model;

/// `1234`, `12.3k`, `4.56M`.
pub fn si(v: f64) -> String {
    if v < 1e4 {
        format!("{v:.0}")
    } else if v < 1e6 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{:.2}M", v / 1e6)
    }
}

pub fn render(f: &mut Frame, area: Rect, model: &Model, app: &App, theme: Theme) {
    let c = &model.counters;
    let t = &c.tick;
    // Kernel-side figures are for everything traced; "shown" is what passed
    // the filter.
    let mut spans = vec![Span::raw(format!(" traced {} ev/s", si(c.events_per_s)))];
    let lost = t.lost + t.channel_dropped;
    spans.push(Span::raw(" │ "));
    if lost > 0 {
        spans.push(Span::styled(format!("LOST {lost}"), theme.drop()));
        spans.push(Span::raw(format!(" of {}", t.emitted)));
    } else {
        spans.push(Span::raw(format!("lost 0 of {}", t.emitted)));
    }
    spans.push(Span::raw(format!(
        " │ {} in flight │ shown: {} packets, {} flows",
        c.in_flight,
        model.packet_count(),
        model.flow_count()
    )));
    if c.degraded.is_empty() {
        spans.push(Span::raw(" │ hooks ok"));
    } else {
        spans.push(Span::raw(" │ "));
        spans.push(Span::styled(
            format!("degraded: {}", c.degraded.join(",")),
            theme.warn(),
        ));
    }
    spans.push(Span::raw(format!(" │ filter: {}", app.filter_label)));
    if let Some(n) = &app.notice {
        spans.push(Span::raw(" │ "));
        spans.push(Span::styled(n.clone(), theme.warn()));
    }
    spans.push(Span::raw(" │ ? help  q quit"));
    f.render_widget(Paragraph::new(Line::from(spans)).style(theme.bar()), area);
}

pub fn render_search(f: &mut Frame, area: Rect, app: &App, theme: Theme) {
    let s = app.search();
    let line = if s.editing {
        Line::from(vec![
            Span::styled(" /", theme.title()),
            Span::raw(s.query.clone()),
            Span::styled("▏", theme.title()),
            Span::styled("  Enter keeps · Esc clears", theme.dim()),
        ])
    } else {
        Line::from(vec![
            Span::styled(format!(" search: {}", s.query), theme.title()),
            Span::styled("  (/ edits · Esc clears)", theme.dim()),
        ])
    };
    f.render_widget(line, area);
}
