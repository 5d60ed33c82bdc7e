//! Searching a list (`/`): one search per screen, its input line, and the
//! text flows and packets are searched by.

use std::fmt::Write as _;

use crossterm::event::{KeyCode, KeyEvent};

use crate::correlate::{Packet, Role};
use crate::model::{FlowEntry, Model};
use crate::output::describe;

use super::App;

/// Search of one list.
#[derive(Debug, Clone, Default)]
pub struct Search {
    pub query: String,
    pub editing: bool,
}

impl Search {
    /// A query is set (it filters the list).
    pub fn active(&self) -> bool {
        !self.query.is_empty()
    }

    pub(super) fn matches(&self, haystack: &str) -> bool {
        self.matcher()(haystack)
    }

    /// [`Search::matches`] for many haystacks (the query is lowered once).
    pub(super) fn matcher(&self) -> impl Fn(&str) -> bool {
        let query = self.query.to_lowercase();
        move |haystack: &str| query.is_empty() || haystack.to_lowercase().contains(&query)
    }
}

/// Text a flow is searched by: protocol, endpoints, namespace names.
pub fn flow_haystack(f: &FlowEntry, model: &Model, out: &mut String) {
    out.clear();
    let _ = write!(out, "{} ", f.key.proto.name());
    for (ep, ns) in [
        (f.initiator, f.initiator_netns),
        (f.responder(), f.responder_netns),
    ] {
        if let Some(a) = ep.0 {
            let _ = write!(out, "{a} {a}:{} ", ep.1);
        }
        if let Some(ns) = ns {
            let _ = write!(out, "{} ", ns.0);
            if let Some(n) = model.netns_name(ns) {
                let _ = write!(out, "{n} ");
            }
        }
    }
}

/// Text a packet is searched by: headers, devices, outcome.
pub fn packet_haystack(p: &Packet, model: &Model, out: &mut String) {
    out.clear();
    let _ = write!(out, "{} {} ", p.id.0, p.role.map_or("-", Role::name));
    if let Some(h) = p.headers {
        describe(&h, out);
    }
    for v in &p.visits {
        let _ = write!(out, " {}", v.device.ifname);
        if let Some(n) = model.netns_name(v.device.netns) {
            let _ = write!(out, " {n}");
        }
    }
    out.push(' ');
    out.push_str(p.outcome.word());
    for v in &p.visits {
        if let Some(rw) = v.rewrite {
            let _ = write!(out, " {rw}");
        }
    }
}

impl App {
    /// The search of the screen shown.
    pub fn search(&self) -> &Search {
        &self.search[self.screen.index()]
    }

    pub(super) fn search_mut(&mut self) -> &mut Search {
        &mut self.search[self.screen.index()]
    }

    pub(super) fn on_search_key(&mut self, key: KeyEvent) {
        let s = self.search_mut();
        match key.code {
            KeyCode::Enter => s.editing = false,
            KeyCode::Esc => {
                s.editing = false;
                s.query.clear();
            }
            KeyCode::Backspace => {
                if s.query.pop().is_none() {
                    s.editing = false;
                }
            }
            KeyCode::Char(c) if !c.is_control() => s.query.push(c),
            _ => return,
        }
        // The first match becomes the selection.
        self.cursor_reset();
    }
}
