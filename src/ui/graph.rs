//! The hop graph of the selected flow, drawn as namespace boxes in the
//! order the requests reached them, the devices inside each box, hops
//! inside a namespace (bridge, routing) next to their device, and the wires
//! between namespaces (veth, or a tunnel: `vxlan 42 via eth1`) between the
//! boxes: ▼ for requests, ▲ for replies, with packet counts and mean
//! (min–max) latency per edge.

use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::{dur, empty, netns_label, Theme};
use crate::app::App;
use crate::correlate::Role;
use crate::model::Model;
use crate::topology::graph::{Edge, HopGraph, Node};
use crate::topology::TopologyView;

pub fn render(f: &mut Frame, area: Rect, model: &Model, app: &mut App, theme: Theme) {
    let Some(g) = app.flow_graph(model).filter(|g| g.shown > 0) else {
        empty(
            f,
            area,
            "no finished packet of this flow yet (or all hidden by r/R)",
            theme,
        );
        return;
    };
    let mut text = Vec::new();
    if g.shown < g.visible {
        text.push(Line::styled(
            format!(" the newest {} of {} packets", g.shown, g.visible),
            theme.dim(),
        ));
    }
    text.extend(lines(&g.value, model, theme, area.width as usize));
    f.render_widget(Paragraph::new(text), area);
}

fn edge_label(e: &Edge) -> String {
    format!(
        "{} pkt{}  {} ({}–{})",
        e.packets,
        if e.packets == 1 { "" } else { "s" },
        dur(e.mean_ns()),
        dur(e.min_ns),
        dur(e.max_ns)
    )
}

fn role_word(r: Role) -> &'static str {
    match r {
        Role::Request => "request",
        Role::Reply => "reply  ",
    }
}

fn style_of(theme: Theme, r: Role) -> Style {
    match r {
        Role::Request => theme.request(),
        Role::Reply => theme.reply(),
    }
}

fn boxed(content: Vec<Span<'static>>, inner: usize) -> Line<'static> {
    let used: usize = content.iter().map(|s| s.content.chars().count()).sum();
    let mut spans = vec![Span::raw("│ ")];
    spans.extend(content);
    spans.push(Span::raw(" ".repeat(inner.saturating_sub(used))));
    spans.push(Span::raw(" │"));
    Line::from(spans)
}

/// The drawing, one line per row; `width` bounds the boxes.
pub fn lines(g: &HopGraph, model: &Model, theme: Theme, width: usize) -> Vec<Line<'static>> {
    let box_w = width.max(30) - 1;
    let inner = box_w - 4;
    let pos = |n: &Node| g.namespaces.iter().position(|x| *x == n.netns).unwrap_or(0);
    let mut out = Vec::new();
    for (k, ns) in g.namespaces.iter().enumerate() {
        let title = format!("╭─ {} · {} ", netns_label(model, *ns), ns.0);
        let fill = box_w.saturating_sub(title.chars().count() + 1);
        out.push(Line::from(vec![
            Span::styled(title, theme.title()),
            Span::raw(format!("{}╮", "─".repeat(fill))),
        ]));
        // Hops inside the namespace (a bridge, a routing decision) in the
        // order packets first took them: the request path, then the reply.
        let mut listed = Vec::new();
        for (from, to, e) in g
            .edges()
            .filter(|(f, t, _)| f.netns == *ns && t.netns == *ns)
        {
            listed.push(from.ifindex);
            listed.push(to.ifindex);
            // Ports of one bridge: the bridge forwarded it.
            let master = |n: &Node| {
                model
                    .link(n.netns.0, n.ifindex.0)
                    .and_then(|l| l.master.as_ref())
                    .map(|m| m.ifname.clone())
            };
            let via = match (master(from), master(to)) {
                (Some(a), Some(b)) if a == b => {
                    format!(" via {}", crate::safe_text::Shown(&a))
                }
                _ => String::new(),
            };
            out.push(boxed(
                vec![
                    Span::raw(format!("{:<16}", from.ifname)),
                    Span::styled(
                        format!(" ─▶ {:<16}", format!("{}{via}", to.ifname)),
                        style_of(theme, e.role),
                    ),
                    Span::styled(
                        format!("{} {}", role_word(e.role), edge_label(e)),
                        style_of(theme, e.role),
                    ),
                ],
                inner,
            ));
        }
        // Devices crossed without a hop inside the namespace.
        for (_, dev) in g.devices_in(*ns) {
            if !listed.contains(&dev.ifindex) {
                let what = model
                    .describe_link(dev.netns.0, dev.ifindex.0)
                    .unwrap_or_default();
                out.push(boxed(
                    vec![
                        Span::raw(format!("{:<16} ", dev.ifname)),
                        Span::styled(what, theme.dim()),
                    ],
                    inner,
                ));
            }
        }
        out.push(Line::raw(format!(
            "╰{}╯",
            "─".repeat(box_w.saturating_sub(2))
        )));
        // Wires leaving this namespace for a later one, and replies coming
        // back up from it.
        for (from, to, e) in g.edges() {
            let (pf, pt) = (pos(from), pos(to));
            if pf == pt || pf.min(pt) != k {
                continue;
            }
            let arrow = if pt > pf { "▼" } else { "▲" };
            let wire = match (
                e.tunnel,
                model
                    .link(from.netns.0, from.ifindex.0)
                    .and_then(|l| l.peer.as_ref()),
            ) {
                (Some(t), _) => format!(" ({t})"),
                (None, Some(p)) if p.netns == to.netns.0 && p.ifindex == to.ifindex.0 => {
                    " (veth)".to_owned()
                }
                _ => String::new(),
            };
            let far = if pf.abs_diff(pt) > 1 {
                format!(" [{}]", netns_label(model, to.netns))
            } else {
                String::new()
            };
            out.push(Line::from(vec![
                Span::raw("    "),
                Span::styled(
                    format!(
                        "{arrow} {} {} → {}{far}{wire}  {}",
                        role_word(e.role),
                        from.ifname,
                        to.ifname,
                        edge_label(e)
                    ),
                    style_of(theme, e.role),
                ),
            ]));
        }
    }
    out
}
