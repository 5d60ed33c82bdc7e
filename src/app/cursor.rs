//! List cursors that follow their item by id, and moving the current
//! screen's cursor: by a key, back to the top, or re-found in the current
//! data before each frame ([`App::clamp`]).

use crate::model::Model;

use super::lists::Rows;
use super::{App, Screen};

/// A list cursor that follows an item by id. Until the user moves it, it
/// stays on the first row, so a live list shows its newest items.
#[derive(Debug, Clone)]
pub struct Cursor<T> {
    pub selected: Option<T>,
    /// The user moved it: from then on it follows its item.
    pub touched: bool,
    /// Row of the selection at the last resolve.
    pub index: usize,
    /// First row shown (kept by the renderer).
    pub offset: usize,
}

impl<T> Default for Cursor<T> {
    fn default() -> Self {
        Cursor {
            selected: None,
            touched: false,
            index: 0,
            offset: 0,
        }
    }
}

impl<T: Copy + PartialEq> Cursor<T> {
    /// Finds the selection in `rows`; when it is gone, keeps the row number
    /// (clamped) and selects what is there now. `None` when `rows` is empty.
    pub fn resolve<R: Rows<T> + ?Sized>(&mut self, rows: &R) -> Option<usize> {
        if rows.is_empty() {
            self.index = 0;
            return None;
        }
        let i = if self.touched {
            self.selected
                .and_then(|s| rows.position(s))
                .unwrap_or(self.index.min(rows.len() - 1))
        } else {
            0
        };
        self.index = i;
        self.selected = rows.get(i);
        Some(i)
    }

    pub(super) fn move_to<R: Rows<T> + ?Sized>(&mut self, rows: &R, i: usize) {
        if rows.is_empty() {
            return;
        }
        let i = i.min(rows.len() - 1);
        self.touched = true;
        self.index = i;
        self.selected = rows.get(i);
    }

    pub(super) fn reset(&mut self) {
        *self = Cursor::default();
    }
}

impl App {
    /// Re-finds every selection in the current data (call before render).
    pub fn clamp(&mut self, model: &Model) {
        let flows = self.flow_rows(model);
        self.flows.resolve(&flows);
        if self.screen != Screen::Flows {
            let pkts = self.packet_list(model);
            self.packets.resolve(&pkts);
        }
        if self.screen == Screen::Hops {
            let hops = self.hop_rows(model);
            self.hops.resolve(&hops);
        }
        if self.screen == Screen::Drops {
            let drops = self.drop_rows(model);
            self.drops.resolve(&drops);
        }
    }

    pub(super) fn cursor_reset(&mut self) {
        match self.screen {
            Screen::Flows => self.flows.reset(),
            Screen::Packets => self.packets.reset(),
            Screen::Hops => self.hops.reset(),
            Screen::Drops => self.drops.reset(),
        }
    }

    pub(super) fn move_cursor(&mut self, model: &Model, f: impl Fn(usize, usize) -> usize) {
        match self.screen {
            Screen::Flows => {
                let rows = self.flow_rows(model);
                let cur = self.flows.resolve(&rows).unwrap_or(0);
                self.flows.move_to(&rows, f(cur, rows.len()));
            }
            Screen::Packets => {
                let rows = self.packet_list(model);
                let cur = self.packets.resolve(&rows).unwrap_or(0);
                self.packets.move_to(&rows, f(cur, rows.len()));
            }
            Screen::Hops => {
                let rows = self.hop_rows(model);
                let cur = self.hops.resolve(&rows).unwrap_or(0);
                self.hops.move_to(&rows, f(cur, rows.len()));
            }
            Screen::Drops => {
                let rows = self.drop_rows(model);
                let cur = self.drops.resolve(&rows).unwrap_or(0);
                self.drops.move_to(&rows, f(cur, rows.len()));
            }
        }
    }
}
