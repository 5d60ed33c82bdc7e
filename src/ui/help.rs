//! The help overlay, generated from the key-binding table.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Clear, Paragraph};
use ratatui::Frame;

use super::Theme;
use crate::input::BINDINGS;

pub fn render(f: &mut Frame, area: Rect, theme: Theme) {
    let mut lines: Vec<Line> = BINDINGS
        .iter()
        .map(|b| {
            Line::from(vec![
                Span::styled(format!(" {:<12}", b.label), theme.title()),
                Span::raw(b.help),
            ])
        })
        .collect();
    lines.push(Line::raw(""));
    lines.push(Line::from(vec![
        Span::styled(" ▶ req", theme.request()),
        Span::raw(" request (initiator → responder)   "),
        Span::styled("◀ rep", theme.reply()),
        Span::raw(" reply"),
    ]));
    lines.push(Line::raw(" mouse wheel scrolls · any key closes this help"));
    // As wide as the widest line, plus the borders and a blank column.
    let widest = lines.iter().map(Line::width).max().unwrap_or(0);
    let h = (lines.len() as u16 + 2).min(area.height);
    let w = u16::try_from(widest + 3)
        .unwrap_or(u16::MAX)
        .min(area.width);
    let [_, mid, _] = Layout::vertical([
        Constraint::Fill(1),
        Constraint::Length(h),
        Constraint::Fill(1),
    ])
    .areas(area);
    let [_, rect, _] = Layout::horizontal([
        Constraint::Fill(1),
        Constraint::Length(w),
        Constraint::Fill(1),
    ])
    .areas(mid);
    f.render_widget(Clear, rect);
    f.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::ALL)
                .border_type(BorderType::Rounded)
                .title(Span::styled(" keys ", theme.title())),
        ),
        rect,
    );
}
