//! The kernel's packet filter as the explorer knows it, and editing it: `f`
//! opens a line, Enter asks the runner to compile it with libpcap, the
//! compiled filter waits in an outbox for the reader, and the status bar
//! shows it once the reader says it is in force. `F` toggles whole flows.

use std::collections::VecDeque;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::filter::PacketFilter;

use super::{App, EVERYTHING};

/// An expression and its mode, as the user asked for them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilterSpec {
    /// pcap-filter expression; empty: no filter, follow everything.
    pub expr: String,
    /// Follow whole flows (`--flow`), not only the matching packets.
    pub whole_flows: bool,
}

/// The filter input line (`f`).
#[derive(Debug, Clone, Default)]
pub struct FilterEdit {
    pub text: String,
    /// libpcap's refusal of the last Enter; the filter in force stays.
    pub error: Option<String>,
}

/// The packet filter in the kernel, as the explorer knows it.
#[derive(Debug, Clone, Default)]
pub struct KernelFilter {
    /// A live reader can take a new filter (false in a replay).
    pub editable: bool,
    /// What is in force.
    pub current: FilterSpec,
    /// How the filter in force is described (`PacketFilter::label`); None:
    /// no filter.
    pub label: Option<String>,
    /// Where hops are looked at (`--netns`, `--iface`, `--pid`); fixed
    /// for the run.
    pub scope: Option<String>,
    /// The input line, while open.
    pub editing: Option<FilterEdit>,
    /// An expression for the runner to compile, off the screen's thread
    /// and bounded in time (`filter::Compilation`); the answer comes back
    /// through [`App::filter_compiled`].
    pub compile: Option<FilterSpec>,
    /// The newest expression being compiled; answers for older ones are
    /// dropped.
    pub compiling: Option<FilterSpec>,
    /// A compiled filter (None: no filter) for the runner to hand to the
    /// reader (`Reader::set_filter`).
    pub outbox: Option<Option<PacketFilter>>,
    /// Sent to the reader, oldest first, not confirmed yet (the reader
    /// answers each, in order).
    pub pending: VecDeque<FilterSpec>,
}

impl KernelFilter {
    /// What the next change starts from: the newest one asked for.
    pub fn latest(&self) -> &FilterSpec {
        self.pending.back().unwrap_or(&self.current)
    }
}

impl App {
    /// Keys while the filter line is open: Enter compiles and applies, Esc
    /// cancels, ^U clears the line.
    pub(super) fn on_filter_key(&mut self, key: KeyEvent) {
        let Some(edit) = self.filter.editing.as_mut() else {
            return;
        };
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Enter => {
                let spec = FilterSpec {
                    expr: edit.text.trim().to_owned(),
                    whole_flows: self.filter.latest().whole_flows,
                };
                // The line stays open until the expression compiled: it
                // closes then, or shows libpcap's refusal.
                if let Some(edit) = self.filter.editing.as_mut() {
                    edit.error = None;
                }
                self.request_filter(spec);
            }
            KeyCode::Esc => {
                // A compilation still running is forgotten with the line.
                self.filter.editing = None;
                self.filter.compile = None;
                if self.filter.compiling.take().is_some() {
                    self.notice = None;
                }
            }
            KeyCode::Backspace => {
                edit.text.pop();
            }
            KeyCode::Char('u') if ctrl => edit.text.clear(),
            KeyCode::Char(c)
                if !ctrl && !key.modifiers.contains(KeyModifiers::ALT) && !c.is_control() =>
            {
                edit.text.push(c)
            }
            _ => {}
        }
    }

    /// Asks the runner to compile `spec` (libpcap, on a worker).
    fn request_filter(&mut self, spec: FilterSpec) {
        self.notice = Some(if spec.expr.is_empty() {
            "removing the filter …".to_owned()
        } else {
            format!("compiling `{}` …", spec.expr)
        });
        self.filter.compile = Some(spec.clone());
        self.filter.compiling = Some(spec);
    }

    /// The runner's answer for `spec`: compiled (queued for the reader; the
    /// filter line closes) or refused (libpcap's message on the line, or in
    /// the notice; nothing changes).
    pub fn filter_compiled(
        &mut self,
        spec: FilterSpec,
        result: Result<Option<PacketFilter>, String>,
    ) {
        if self.filter.compiling.as_ref() != Some(&spec) {
            return;
        }
        self.filter.compiling = None;
        match result {
            Ok(compiled) => {
                self.notice = Some(match &compiled {
                    Some(f) => format!("applying {} …", f.label()),
                    None => "removing the filter …".to_owned(),
                });
                // A newer change replaces one the runner has not sent yet.
                if self.filter.outbox.replace(compiled).is_some() {
                    self.filter.pending.pop_back();
                }
                self.filter.pending.push_back(spec);
                self.filter.editing = None;
            }
            Err(e) => match self.filter.editing.as_mut() {
                Some(edit) => {
                    edit.error = Some(e);
                    self.notice = None;
                }
                None => self.notice = Some(e),
            },
        }
    }

    /// Compiles the expression asked for, here and now (within the time
    /// limit): for tests and callers without a worker loop.
    pub fn compile_requested(&mut self) {
        if let Some(spec) = self.filter.compile.take() {
            let r = crate::filter::compile_bounded(&spec.expr, spec.whole_flows)
                .map_err(|e| e.to_string());
            self.filter_compiled(spec, r);
        }
    }

    /// The reader's answer to the oldest change sent: in force (its label,
    /// None for no filter), or refused by the kernel (the previous filter
    /// stays).
    pub fn filter_applied(&mut self, result: Result<Option<String>, String>) {
        let spec = self.filter.pending.pop_front();
        match result {
            Ok(label) => {
                if let Some(spec) = spec {
                    self.filter.current = spec;
                }
                self.filter.label = label;
                // The status bar shows it now; "applying …" is done unless
                // a newer change is still on its way.
                if self.filter.pending.is_empty() {
                    self.notice = None;
                }
            }
            Err(e) => self.notice = Some(format!("filter not changed: {e}")),
        }
    }

    /// `F`: the same expression again, for whole flows or packets only.
    pub(super) fn toggle_whole_flows(&mut self) {
        let mut spec = self.filter.latest().clone();
        spec.whole_flows = !spec.whole_flows;
        let mode = if spec.whole_flows {
            "whole flows"
        } else {
            "matching packets only"
        };
        if spec.expr.is_empty() {
            // Nothing to send: the mode waits for the next filter.
            match self.filter.pending.back_mut() {
                Some(p) => p.whole_flows = spec.whole_flows,
                None => self.filter.current.whole_flows = spec.whole_flows,
            }
            self.notice = Some(format!("no filter yet (f sets one); it will follow {mode}"));
        } else {
            self.request_filter(spec);
        }
    }

    /// What the status bar says is filtered: the kernel's filter, the
    /// scope, and what is filtered after correlation.
    pub fn filter_summary(&self) -> String {
        let mut parts: Vec<&str> = Vec::new();
        parts.extend(self.filter.label.as_deref());
        parts.extend(self.filter.scope.as_deref());
        if parts.is_empty() || self.filter_label != EVERYTHING {
            parts.push(&self.filter_label);
        }
        parts.join(" · ")
    }

    /// Why `f` and `F` do nothing in a replay.
    pub(super) fn filter_not_editable(&mut self) {
        self.notice = Some("filters apply to live tracing only, not to a replay".to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::{Input, Screen};
    use crate::model::{Model, ModelConfig};

    fn key(app: &mut App, model: &Model, code: KeyCode, m: KeyModifiers) {
        app.update(model, Input::Key(KeyEvent::new(code, m)));
    }

    fn typed(app: &mut App, model: &Model, s: &str) {
        for c in s.chars() {
            key(app, model, KeyCode::Char(c), KeyModifiers::NONE);
        }
    }

    fn live(expr: &str) -> App {
        App {
            filter: KernelFilter {
                editable: true,
                current: FilterSpec {
                    expr: expr.to_owned(),
                    whole_flows: false,
                },
                label: (!expr.is_empty()).then(|| format!("`{expr}`")),
                scope: Some("netns hs-c1".to_owned()),
                ..KernelFilter::default()
            },
            ..App::default()
        }
    }

    #[test]
    fn f_edits_and_applies_once_the_reader_confirms() {
        let model = Model::new(ModelConfig::default());
        let mut a = live("icmp");
        assert_eq!(a.filter_summary(), "`icmp` · netns hs-c1");
        key(&mut a, &model, KeyCode::Char('f'), KeyModifiers::NONE);
        assert_eq!(a.filter.editing.as_ref().unwrap().text, "icmp", "prefilled");
        key(&mut a, &model, KeyCode::Char('u'), KeyModifiers::CONTROL);
        assert_eq!(a.filter.editing.as_ref().unwrap().text, "");
        // Keys are text while the line is open.
        typed(&mut a, &model, "udp q");
        key(&mut a, &model, KeyCode::Backspace, KeyModifiers::NONE);
        key(&mut a, &model, KeyCode::Backspace, KeyModifiers::NONE);
        assert!(!a.quit);
        key(&mut a, &model, KeyCode::Enter, KeyModifiers::NONE);
        a.compile_requested();
        assert!(a.filter.editing.is_none());
        let sent = a.filter.outbox.take().expect("a filter for the reader");
        assert_eq!(sent.as_ref().map(|f| f.expr.as_str()), Some("udp"));
        assert!(!sent.unwrap().whole_flows);
        // Not in force until the reader says so.
        assert_eq!(a.filter.label.as_deref(), Some("`icmp`"));
        a.filter_applied(Ok(Some("`udp`".to_owned())));
        assert_eq!(a.filter.current.expr, "udp");
        assert_eq!(a.filter_summary(), "`udp` · netns hs-c1");
        assert!(a.filter.pending.is_empty());
    }

    #[test]
    fn a_refused_expression_shows_libpcap_and_changes_nothing() {
        let model = Model::new(ModelConfig::default());
        let mut a = live("udp");
        key(&mut a, &model, KeyCode::Char('f'), KeyModifiers::NONE);
        key(&mut a, &model, KeyCode::Char('u'), KeyModifiers::CONTROL);
        typed(&mut a, &model, "tcp port");
        key(&mut a, &model, KeyCode::Enter, KeyModifiers::NONE);
        a.compile_requested();
        let err = a.filter.editing.as_ref().unwrap().error.clone().unwrap();
        assert!(err.starts_with("invalid filter `tcp port`: "), "{err}");
        assert!(a.filter.outbox.is_none() && a.filter.pending.is_empty());
        assert_eq!(a.filter_summary(), "`udp` · netns hs-c1");
        // Esc cancels; the old filter stays.
        key(&mut a, &model, KeyCode::Esc, KeyModifiers::NONE);
        assert!(a.filter.editing.is_none());
        assert_eq!(a.filter.current.expr, "udp");
        assert_eq!(a.screen, Screen::Flows);
    }

    #[test]
    fn empty_removes_and_shift_f_toggles_whole_flows() {
        let model = Model::new(ModelConfig::default());
        let mut a = live("udp");
        key(&mut a, &model, KeyCode::Char('F'), KeyModifiers::SHIFT);
        a.compile_requested();
        let sent = a.filter.outbox.take().unwrap().unwrap();
        assert!(sent.whole_flows && sent.expr == "udp");
        a.filter_applied(Ok(Some(sent.label())));
        assert_eq!(a.filter_summary(), "flows of `udp` · netns hs-c1");
        // The line opens in whole-flows mode and keeps it.
        key(&mut a, &model, KeyCode::Char('f'), KeyModifiers::NONE);
        key(&mut a, &model, KeyCode::Char('u'), KeyModifiers::CONTROL);
        typed(&mut a, &model, "icmp");
        key(&mut a, &model, KeyCode::Enter, KeyModifiers::NONE);
        a.compile_requested();
        let sent = a.filter.outbox.take().unwrap().unwrap();
        assert!(sent.whole_flows);
        a.filter_applied(Ok(Some(sent.label())));
        // Empty: no filter.
        key(&mut a, &model, KeyCode::Char('f'), KeyModifiers::NONE);
        key(&mut a, &model, KeyCode::Char('u'), KeyModifiers::CONTROL);
        key(&mut a, &model, KeyCode::Enter, KeyModifiers::NONE);
        a.compile_requested();
        assert!(a.filter.outbox.take().unwrap().is_none());
        a.filter_applied(Ok(None));
        assert_eq!(a.filter_summary(), "netns hs-c1");
        // A kernel refusal keeps what was in force.
        key(&mut a, &model, KeyCode::Char('f'), KeyModifiers::NONE);
        typed(&mut a, &model, "tcp");
        key(&mut a, &model, KeyCode::Enter, KeyModifiers::NONE);
        a.compile_requested();
        a.filter_applied(Err("writing the filter program".to_owned()));
        assert_eq!(a.filter_summary(), "netns hs-c1");
        assert_eq!(a.filter.current.expr, "");
        assert!(a.notice.as_deref().unwrap().contains("not changed"));
    }

    #[test]
    fn replays_explain_that_filters_are_live() {
        let model = Model::new(ModelConfig::default());
        let mut a = App::default();
        for (c, m) in [('f', KeyModifiers::NONE), ('F', KeyModifiers::SHIFT)] {
            key(&mut a, &model, KeyCode::Char(c), m);
            assert!(a.filter.editing.is_none() && a.filter.outbox.is_none());
            assert!(a.notice.as_deref().unwrap().contains("live tracing"));
        }
        assert_eq!(a.filter_summary(), "everything");
    }
}
