//! How a packet's life ended, in the one vocabulary every mode uses
//! (text, JSON, the explorer, recordings replayed):
//!
//! | outcome     | meaning                                                        |
//! |-------------|----------------------------------------------------------------|
//! | `delivered` | copied to a socket (TCP, UDP, ping, raw, packet), the reading process when seen |
//! | `consumed`  | used up by the kernel: an echo request answered, ARP handled, a segment acknowledged |
//! | `dropped`   | `kfree_skb` for a reason worth attention                       |
//! | `freed`     | `kfree_skb` for a routine reason (socket closed, queue purged, ...) |
//! | `unseen`    | no end event came (freed without a tracepoint, or lost)        |
//!
//! [`Outcome::decide`] is the only place that turns the kernel's end events
//! into one of these words; everything else reads [`Packet::outcome`].

use super::{End, Packet};
use crate::event::drop_reason::DropReasons;
use crate::event::Task;

/// How one packet ended (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Outcome {
    /// Copied to a socket; the task that read it, when seen.
    Delivered { task: Option<Task> },
    /// Used up by the kernel (`consume_skb`).
    Consumed,
    /// Freed for a reason worth attention: the kernel's reason value, the
    /// code address of the free and the id (+1) of its kernel stack with
    /// `--drop-stack` (0: none).
    Dropped {
        reason: u32,
        location: u64,
        stack: u32,
    },
    /// Freed for a routine reason.
    Freed { reason: u32, location: u64 },
    /// No end event came.
    #[default]
    Unseen,
}

impl Outcome {
    /// Decides the outcome of a finished packet from what the kernel said,
    /// first match wins: read from a socket by a task (`delivered` to it); a
    /// drop for a reason that is not routine; a socket took it in (data:
    /// `delivered`; a pure TCP ACK: `consumed`; UDP and TCP free what they
    /// took in without a tracepoint); `consume_skb` (`consumed`); a routine
    /// free (`freed`); nothing (`unseen`). Without the kernel's reason
    /// names, every `kfree_skb` counts as a drop: nothing is hidden.
    pub fn decide(p: &Packet, reasons: &DropReasons) -> Outcome {
        if let Some(task) = p.receiver {
            return Outcome::Delivered { task: Some(task) };
        }
        if let Some(End::Dropped {
            reason,
            location,
            stack,
            ..
        }) = p.end
        {
            if !reasons.is_routine(reason, p.headers.as_ref(), p.copy_of.is_some()) {
                return Outcome::Dropped {
                    reason,
                    location,
                    stack,
                };
            }
        }
        if let Some(s) = p.socket {
            return if s.data {
                Outcome::Delivered { task: None }
            } else {
                Outcome::Consumed
            };
        }
        match p.end {
            Some(End::Consumed { .. }) => Outcome::Consumed,
            Some(End::Dropped {
                reason, location, ..
            }) => Outcome::Freed { reason, location },
            Some(End::Unseen) | None => Outcome::Unseen,
        }
    }

    /// The outcome's word: `delivered`, `consumed`, `dropped`, `freed` or
    /// `unseen`.
    pub fn word(&self) -> &'static str {
        match self {
            Outcome::Delivered { .. } => "delivered",
            Outcome::Consumed => "consumed",
            Outcome::Dropped { .. } => "dropped",
            Outcome::Freed { .. } => "freed",
            Outcome::Unseen => "unseen",
        }
    }

    /// A drop worth attention (flow drop counts, the drops view).
    pub fn is_drop(&self) -> bool {
        matches!(self, Outcome::Dropped { .. })
    }

    /// The kernel's reason value and the code address, for drops and
    /// routine frees.
    pub fn reason(&self) -> Option<(u32, u64)> {
        match *self {
            Outcome::Dropped {
                reason, location, ..
            }
            | Outcome::Freed { reason, location } => Some((reason, location)),
            _ => None,
        }
    }
}
