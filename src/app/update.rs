//! [`App::update`]: input (keys, mouse) turned into actions, and what each
//! action does: move, drill in and back out, toggle roles, sort, freeze,
//! search, open the filter line, help, quit.

use crossterm::event::{KeyEvent, KeyEventKind, MouseEvent};

use crate::input::{self, Action};
use crate::model::Model;

use super::{App, Cursor, FilterEdit, Frozen, PcapngExport, Screen, Search};

/// Input the app reacts to.
#[derive(Debug, Clone, Copy)]
pub enum Input {
    Key(KeyEvent),
    Mouse(MouseEvent),
}

impl App {
    /// Applies one input. Sets `quit` when asked to leave.
    pub fn update(&mut self, model: &Model, input: Input) {
        self.notice = None;
        match input {
            Input::Key(key) => self.on_key(model, key),
            Input::Mouse(m) => {
                if let Some((action, n)) = input::mouse_action(&m) {
                    for _ in 0..n {
                        self.on_action(model, action);
                    }
                }
            }
        }
        self.clamp(model);
    }

    pub(super) fn on_key(&mut self, model: &Model, key: KeyEvent) {
        if key.kind != KeyEventKind::Press {
            return;
        }
        if input::is_interrupt(&key) {
            self.quit = true;
            return;
        }
        if self.filter.editing.is_some() {
            self.on_filter_key(key);
            return;
        }
        if self.search().editing {
            self.on_search_key(key);
            return;
        }
        if self.help {
            // Any key closes the help; quitting still quits.
            self.help = false;
            if input::action_for(&key) == Some(Action::Quit) {
                self.quit = true;
            }
            return;
        }
        if let Some(a) = input::action_for(&key) {
            self.on_action(model, a);
        }
    }

    pub(super) fn on_action(&mut self, model: &Model, a: Action) {
        let page = self.page_rows.max(1);
        match a {
            Action::Up => self.move_cursor(model, |c, _| c.saturating_sub(1)),
            Action::Down => self.move_cursor(model, |c, _| c + 1),
            Action::PageUp => self.move_cursor(model, |c, _| c.saturating_sub(page)),
            Action::PageDown => self.move_cursor(model, |c, _| c + page),
            Action::Home => self.move_cursor(model, |_, _| 0),
            Action::End => self.move_cursor(model, |_, n| n.saturating_sub(1)),
            Action::Enter => self.drill_in(model),
            Action::Back => self.back(),
            Action::Tab => self.detail = self.detail.next(),
            Action::ToggleRequests => {
                self.show_requests = !self.show_requests;
                self.keep_a_role(true);
            }
            Action::ToggleReplies => {
                self.show_replies = !self.show_replies;
                self.keep_a_role(false);
            }
            Action::Search => {
                let s = self.search_mut();
                s.editing = true;
                s.query.clear();
            }
            Action::Filter if !self.filter.editable => self.filter_not_editable(),
            Action::Filter => {
                self.filter.editing = Some(FilterEdit {
                    text: self.filter.latest().expr.clone(),
                    error: None,
                });
            }
            Action::WholeFlows if !self.filter.editable => self.filter_not_editable(),
            Action::WholeFlows => self.toggle_whole_flows(),
            Action::Sort => match self.screen {
                Screen::Flows => self.flow_sort = self.flow_sort.next(),
                Screen::Packets => self.packet_sort = self.packet_sort.next(),
                Screen::Hops => self.notice = Some("hops are in path order".to_owned()),
                Screen::Drops => self.notice = Some("drops are by count".to_owned()),
            },
            Action::Freeze => {
                self.frozen = match self.frozen {
                    Some(_) => None,
                    None => {
                        let flows = self.flow_rows(model);
                        let entries = flows
                            .iter()
                            .filter_map(|id| model.flow(*id).map(|f| (*id, f.clone())))
                            .collect();
                        Some(Frozen {
                            flows,
                            entries,
                            last_packet: model.last_packet_id(),
                        })
                    }
                }
            }
            Action::Drops => {
                self.screen = if self.screen == Screen::Drops {
                    Screen::Flows
                } else {
                    Screen::Drops
                };
            }
            Action::ExportDot => match self.flows.selected {
                Some(f) => self.export_dot = Some(f),
                None => self.notice = Some("no flow selected".to_owned()),
            },
            Action::ExportPcapng => {
                let packet = match self.screen {
                    Screen::Flows => None,
                    _ => self.focus_packet(model).map(|p| p.id),
                };
                self.export_pcapng = match (packet, self.flows.selected) {
                    (Some(p), _) => Some(PcapngExport::Packet(p)),
                    (None, Some(f)) => Some(PcapngExport::Flow(f)),
                    (None, None) => {
                        self.notice = Some("no flow selected".to_owned());
                        None
                    }
                };
            }
            Action::Help => self.help = true,
            Action::Quit => self.quit = true,
        }
    }

    /// Hiding both roles would show nothing; the other one comes back.
    fn keep_a_role(&mut self, toggled_requests: bool) {
        if !self.show_requests && !self.show_replies {
            if toggled_requests {
                self.show_replies = true;
            } else {
                self.show_requests = true;
            }
            self.notice = Some("showing the other role: hiding both would list nothing".to_owned());
        }
    }

    fn drill_in(&mut self, model: &Model) {
        match self.screen {
            Screen::Flows => {
                let rows = self.flow_rows(model);
                if self.flows.resolve(&rows).is_some() {
                    // From now on the cursor follows this flow, not the top.
                    self.flows.touched = true;
                    self.screen = Screen::Packets;
                    self.packets.reset();
                    self.search[Screen::Packets.index()] = Search::default();
                } else {
                    self.notice = Some("no flow selected".to_owned());
                }
            }
            Screen::Packets => {
                let rows = self.packet_list(model);
                if self.packets.resolve(&rows).is_some() {
                    self.packets.touched = true;
                    self.screen = Screen::Hops;
                    self.hops.reset();
                    self.search[Screen::Hops.index()] = Search::default();
                } else {
                    self.notice = Some("no packet selected".to_owned());
                }
            }
            Screen::Hops => {
                self.notice = Some("hops are the deepest level; Tab shows the graph".to_owned())
            }
            Screen::Drops => self.open_drop_example(model),
        }
    }

    /// Enter on a drop: the hops of the newest packet dropped there.
    fn open_drop_example(&mut self, model: &Model) {
        let rows = self.drop_rows(model);
        let Some(i) = self.drops.resolve(&rows) else {
            self.notice = Some("no drop yet".to_owned());
            return;
        };
        let Some(d) = model.drop_stat(rows[i]) else {
            return;
        };
        if model.packet(d.example).is_none() {
            self.notice = Some(format!(
                "packet {} is no longer kept (raise --max-packets)",
                d.example.0
            ));
            return;
        }
        self.frozen = None;
        self.show_requests = true;
        self.show_replies = true;
        self.search = Default::default();
        self.flows = Cursor {
            selected: Some(d.flow),
            touched: true,
            index: 0,
            offset: 0,
        };
        self.packets = Cursor {
            selected: Some(d.example),
            touched: true,
            index: 0,
            offset: 0,
        };
        self.hops.reset();
        self.screen = Screen::Hops;
    }

    fn back(&mut self) {
        let s = self.search_mut();
        if s.active() {
            s.query.clear();
            return;
        }
        self.screen = match self.screen {
            Screen::Flows | Screen::Drops => Screen::Flows,
            Screen::Packets => Screen::Flows,
            Screen::Hops => Screen::Packets,
        };
    }
}
