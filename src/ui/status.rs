//! The status bar (events/s, lost events — never hidden —, packets tracked,
//! degraded hooks, what is filtered: the kernel's filter, the scope, and
//! what is filtered after correlation), the search prompt and the filter
//! line (with libpcap's message when it refused the expression).

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::Theme;
use crate::app::App;
use crate::model::Model;
use crate::safe_text::{shown, Shown};

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
    // Caps bound memory; say when they cost history.
    if c.flows_evicted > 0 || c.packets_evicted > 0 {
        spans.push(Span::raw(" │ "));
        spans.push(Span::styled(
            format!(
                "at caps: {} flows, {} packets evicted",
                si(c.flows_evicted as f64),
                si(c.packets_evicted as f64)
            ),
            theme.warn(),
        ));
    }
    if c.degraded.is_empty() {
        spans.push(Span::raw(" │ hooks ok"));
    } else {
        spans.push(Span::raw(" │ "));
        spans.push(Span::styled(
            format!("degraded: {}", Shown(&c.degraded.join(","))),
            theme.warn(),
        ));
    }
    // The notice before the filter: the filter's description can be long
    // (scopes), and what is cut off at the right edge is the least urgent.
    if let Some(n) = &app.notice {
        spans.push(Span::raw(" │ "));
        spans.push(Span::styled(shown(n).into_owned(), theme.warn()));
    }
    spans.push(Span::raw(format!(
        " │ filter: {}",
        Shown(&app.filter_summary())
    )));
    spans.push(Span::raw(" │ ? help  q quit"));
    f.render_widget(Paragraph::new(Line::from(spans)).style(theme.bar()), area);
}

pub fn render_search(f: &mut Frame, area: Rect, app: &App, theme: Theme) {
    let s = app.search();
    let line = if s.editing {
        Line::from(vec![
            Span::styled(" /", theme.title()),
            Span::raw(shown(&s.query).into_owned()),
            Span::styled("▏", theme.title()),
            Span::styled("  Enter keeps · Esc clears", theme.dim()),
        ])
    } else {
        Line::from(vec![
            Span::styled(format!(" search: {}", Shown(&s.query)), theme.title()),
            Span::styled("  (/ edits · Esc clears)", theme.dim()),
        ])
    };
    f.render_widget(line, area);
}

/// Rows the filter line needs: the line, and libpcap's message under it.
pub fn filter_prompt_rows(app: &App) -> u16 {
    app.filter
        .editing
        .as_ref()
        .map_or(0, |e| 1 + u16::from(e.error.is_some()))
}

pub fn render_filter_prompt(f: &mut Frame, area: Rect, app: &App, theme: Theme) {
    let Some(edit) = &app.filter.editing else {
        return;
    };
    let mode = if app.filter.latest().whole_flows {
        " kernel filter (whole flows): "
    } else {
        " kernel filter: "
    };
    // A long expression shows its end, where the cursor is, and the hint.
    let text = shown(&edit.text);
    let room = usize::from(area.width).saturating_sub(mode.chars().count() + 30);
    let count = text.chars().count();
    let text = if count > room && room > 1 {
        let tail: String = text.chars().skip(count - (room - 1)).collect();
        format!("…{tail}")
    } else {
        text.into_owned()
    };
    let mut lines = vec![Line::from(vec![
        Span::styled(mode, theme.title()),
        Span::raw(text),
        Span::styled("▏", theme.title()),
        if app.filter.compiling.is_some() {
            Span::styled("  compiling … (Esc cancels)", theme.warn())
        } else {
            Span::styled(
                "  tcpdump syntax · Enter applies · Esc cancels · ^U clears · empty follows everything",
                theme.dim(),
            )
        },
    ])];
    if let Some(e) = &edit.error {
        lines.push(Line::from(Span::styled(
            format!(" {}", Shown(e)),
            theme.drop(),
        )));
    }
    f.render_widget(Paragraph::new(lines), area);
}

#[cfg(test)]
mod tests {
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    use crate::app::{App, FilterEdit, FilterSpec, KernelFilter};
    use crate::model::{Model, ModelConfig};
    use crate::ui::{self, Theme};

    fn lines(app: &mut App, w: u16, h: u16) -> Vec<String> {
        let model = Model::new(ModelConfig::default());
        let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
        term.draw(|f| ui::render(f, &model, app, Theme { color: false }))
            .unwrap();
        let buf = term.backend().buffer();
        (0..h)
            .map(|y| {
                let l: String = (0..w).map(|x| buf[(x, y)].symbol()).collect();
                l.trim_end().to_owned()
            })
            .collect()
    }

    #[test]
    fn the_filter_line_shows_libpcap_above_the_status_bar() {
        let mut app = App {
            filter: KernelFilter {
                editable: true,
                current: FilterSpec {
                    expr: "udp".to_owned(),
                    whole_flows: false,
                },
                label: Some("`udp`".to_owned()),
                scope: Some("netns hs-c1".to_owned()),
                editing: Some(FilterEdit {
                    text: "tcp port".to_owned(),
                    error: Some(
                        "invalid filter `tcp port`: can't parse filter expression: syntax error"
                            .to_owned(),
                    ),
                }),
                ..KernelFilter::default()
            },
            ..App::default()
        };
        let l = lines(&mut app, 200, 12);
        assert!(l[9].starts_with(" kernel filter: tcp port▏  "), "{l:#?}");
        assert_eq!(
            l[10],
            " invalid filter `tcp port`: can't parse filter expression: syntax error"
        );
        assert!(
            l[11].contains(" │ filter: `udp` · netns hs-c1 │ "),
            "{l:#?}"
        );
        // Closed: the status bar alone, whole flows shown as such.
        app.filter.editing = None;
        app.filter.label = Some("flows of `udp`".to_owned());
        let l = lines(&mut app, 200, 12);
        assert!(!l.iter().any(|l| l.contains("kernel filter")), "{l:#?}");
        assert!(l[11].contains(" │ filter: flows of `udp` · netns hs-c1 │ "));
    }
}
