//! Key bindings: one table maps keys to actions, and the help overlay is
//! generated from the same table, so the two cannot disagree.
//!
//! Only key *presses* count (terminals with the kitty protocol also report
//! releases and repeats, which would double every action).

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseEvent, MouseEventKind};

/// What the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Up,
    Down,
    PageUp,
    PageDown,
    Home,
    End,
    Enter,
    Back,
    Tab,
    ToggleRequests,
    ToggleReplies,
    Search,
    /// Edit the kernel's packet filter (live runs only).
    Filter,
    /// Filter whole flows or single packets (live runs only).
    WholeFlows,
    Sort,
    Freeze,
    Drops,
    ExportDot,
    /// Write the selected packet or flow, every hop with its bytes, as pcapng.
    ExportPcapng,
    Help,
    Quit,
}

/// One key: code plus the modifiers that must be held.
#[derive(Debug, Clone, Copy)]
pub struct Key(pub KeyCode, pub KeyModifiers);

const fn k(c: char) -> Key {
    Key(KeyCode::Char(c), KeyModifiers::NONE)
}

const fn code(c: KeyCode) -> Key {
    Key(c, KeyModifiers::NONE)
}

/// One row of the binding table.
pub struct Binding {
    pub keys: &'static [Key],
    /// How the keys are written in the help overlay.
    pub label: &'static str,
    pub help: &'static str,
    pub action: Action,
}

/// The key-binding table.
pub const BINDINGS: &[Binding] = &[
    Binding {
        keys: &[code(KeyCode::Up), k('k')],
        label: "↑ k",
        help: "move up",
        action: Action::Up,
    },
    Binding {
        keys: &[code(KeyCode::Down), k('j')],
        label: "↓ j",
        help: "move down",
        action: Action::Down,
    },
    Binding {
        keys: &[
            code(KeyCode::PageUp),
            Key(KeyCode::Char('b'), KeyModifiers::CONTROL),
        ],
        label: "PgUp ^B",
        help: "page up",
        action: Action::PageUp,
    },
    Binding {
        keys: &[
            code(KeyCode::PageDown),
            Key(KeyCode::Char('f'), KeyModifiers::CONTROL),
        ],
        label: "PgDn ^F",
        help: "page down",
        action: Action::PageDown,
    },
    Binding {
        keys: &[code(KeyCode::Home), k('g')],
        label: "Home g",
        help: "first row",
        action: Action::Home,
    },
    Binding {
        keys: &[
            code(KeyCode::End),
            Key(KeyCode::Char('G'), KeyModifiers::SHIFT),
            k('G'),
        ],
        label: "End G",
        help: "last row",
        action: Action::End,
    },
    Binding {
        keys: &[code(KeyCode::Enter), code(KeyCode::Right), k('l')],
        label: "Enter → l",
        help: "drill in: flow → packets → hops",
        action: Action::Enter,
    },
    Binding {
        keys: &[
            code(KeyCode::Esc),
            code(KeyCode::Backspace),
            code(KeyCode::Left),
            k('h'),
        ],
        label: "Esc ⌫ ← h",
        help: "back (first clears an active search)",
        action: Action::Back,
    },
    Binding {
        keys: &[code(KeyCode::Tab)],
        label: "Tab",
        help: "hop list → hop graph → path statistics",
        action: Action::Tab,
    },
    Binding {
        keys: &[k('r')],
        label: "r",
        help: "show / hide requests",
        action: Action::ToggleRequests,
    },
    Binding {
        keys: &[Key(KeyCode::Char('R'), KeyModifiers::SHIFT), k('R')],
        label: "R",
        help: "show / hide replies",
        action: Action::ToggleReplies,
    },
    Binding {
        keys: &[k('/')],
        label: "/",
        help: "search this list (address, port, name, protocol)",
        action: Action::Search,
    },
    Binding {
        keys: &[k('f')],
        label: "f",
        help: "edit the kernel filter (tcpdump syntax; live)",
        action: Action::Filter,
    },
    Binding {
        keys: &[Key(KeyCode::Char('F'), KeyModifiers::SHIFT), k('F')],
        label: "F",
        help: "filter whole flows (both directions) or packets",
        action: Action::WholeFlows,
    },
    Binding {
        keys: &[k('s')],
        label: "s",
        help: "cycle the sort order",
        action: Action::Sort,
    },
    Binding {
        keys: &[k(' ')],
        label: "space",
        help: "freeze / unfreeze live updates",
        action: Action::Freeze,
    },
    Binding {
        keys: &[Key(KeyCode::Char('D'), KeyModifiers::SHIFT), k('D')],
        label: "D",
        help: "drops by reason, namespace and device (Enter: an example)",
        action: Action::Drops,
    },
    Binding {
        keys: &[k('d')],
        label: "d",
        help: "write the flow's hop graph to a new hopscope-flow-N-RANDOM.dot",
        action: Action::ExportDot,
    },
    Binding {
        keys: &[k('w')],
        label: "w",
        help: "write the packet (flows: the flow) to a new pcapng file",
        action: Action::ExportPcapng,
    },
    Binding {
        keys: &[k('?'), Key(KeyCode::Char('?'), KeyModifiers::SHIFT)],
        label: "?",
        help: "this help",
        action: Action::Help,
    },
    Binding {
        keys: &[k('q'), Key(KeyCode::Char('c'), KeyModifiers::CONTROL)],
        label: "q ^C",
        help: "quit",
        action: Action::Quit,
    },
];

/// The action bound to a key press, if any.
pub fn action_for(ev: &KeyEvent) -> Option<Action> {
    if ev.kind != KeyEventKind::Press {
        return None;
    }
    BINDINGS
        .iter()
        .find(|b| {
            b.keys
                .iter()
                .any(|key| key.0 == ev.code && key.1 == ev.modifiers)
        })
        .map(|b| b.action)
}

/// Mouse wheel as movement (3 rows per notch, like most terminals).
pub fn mouse_action(ev: &MouseEvent) -> Option<(Action, usize)> {
    match ev.kind {
        MouseEventKind::ScrollUp => Some((Action::Up, 3)),
        MouseEventKind::ScrollDown => Some((Action::Down, 3)),
        _ => None,
    }
}

/// Ctrl-C quits from every mode, including while typing a search.
pub fn is_interrupt(ev: &KeyEvent) -> bool {
    ev.kind == KeyEventKind::Press
        && ev.code == KeyCode::Char('c')
        && ev.modifiers.contains(KeyModifiers::CONTROL)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(c: KeyCode, m: KeyModifiers) -> KeyEvent {
        KeyEvent::new(c, m)
    }

    #[test]
    fn every_action_has_a_key_and_keys_are_unique() {
        let mut seen = Vec::new();
        for b in BINDINGS {
            assert!(!b.keys.is_empty(), "{:?}", b.action);
            for key in b.keys {
                let dup = seen.iter().any(|(c, m)| *c == key.0 && *m == key.1);
                assert!(!dup, "{:?} bound twice", key.0);
                seen.push((key.0, key.1));
            }
        }
    }

    #[test]
    fn vim_keys_arrows_and_releases() {
        assert_eq!(
            action_for(&press(KeyCode::Char('j'), KeyModifiers::NONE)),
            Some(Action::Down)
        );
        assert_eq!(
            action_for(&press(KeyCode::Down, KeyModifiers::NONE)),
            Some(Action::Down)
        );
        assert_eq!(
            action_for(&press(KeyCode::Char('R'), KeyModifiers::SHIFT)),
            Some(Action::ToggleReplies)
        );
        assert_eq!(
            action_for(&press(KeyCode::Char('r'), KeyModifiers::NONE)),
            Some(Action::ToggleRequests)
        );
        assert_eq!(
            action_for(&press(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Some(Action::Quit)
        );
        assert_eq!(
            action_for(&press(KeyCode::Char('f'), KeyModifiers::NONE)),
            Some(Action::Filter)
        );
        assert_eq!(
            action_for(&press(KeyCode::Char('F'), KeyModifiers::SHIFT)),
            Some(Action::WholeFlows)
        );
        // Ctrl-F pages down, it does not open the filter.
        assert_eq!(
            action_for(&press(KeyCode::Char('f'), KeyModifiers::CONTROL)),
            Some(Action::PageDown)
        );
        let mut release = press(KeyCode::Char('q'), KeyModifiers::NONE);
        release.kind = KeyEventKind::Release;
        assert_eq!(action_for(&release), None);
        assert_eq!(
            action_for(&press(KeyCode::Char('x'), KeyModifiers::NONE)),
            None
        );
    }
}
