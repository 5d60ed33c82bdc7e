//! Which correlated packets a sink shows: the selection applied after
//! correlation (`trace -- COMMAND`'s flows, the lab's namespaces), shared by
//! the line printers and the explorer's model. Kernel-side filtering is
//! separate ([`crate::filter`]).

use crate::correlate::{Flow, Packet};
use crate::event::HopEvent;

/// Which packets the sinks print. Applied after correlation (kernel-side
/// filtering is separate).
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only flows marked owned (`trace -- COMMAND`).
    pub only_owned: bool,
    /// Only hops in these netns inodes, and packets that visited one (empty: all).
    pub netns: Vec<u32>,
    /// A filter in the kernel chose the packets: annotations must belong to
    /// a flow of theirs (route lookups and neighbour events of other
    /// traffic are not shown).
    pub kernel_filtered: bool,
}

impl Filter {
    fn flow_ok(&self, flow: Option<&Flow>) -> bool {
        !self.only_owned || flow.is_some_and(|f| f.owned)
    }

    /// Whether to print this hop event.
    pub fn hop(&self, ev: &HopEvent, flow: Option<&Flow>) -> bool {
        self.flow_ok(flow)
            && (self.netns.is_empty() || ev.device.is_some_and(|d| self.netns.contains(&d.netns.0)))
    }

    /// Whether to print this annotation: its flow passes, and it happened
    /// in one of the namespaces (if any are set; without a namespace, it
    /// passes with its flow).
    pub fn annotation(&self, device: Option<crate::event::Device>, flow: Option<&Flow>) -> bool {
        self.flow_ok(flow)
            && (!self.kernel_filtered || flow.is_some())
            && (self.netns.is_empty() || device.is_none_or(|d| self.netns.contains(&d.netns.0)))
    }

    /// Whether to print this finished packet.
    pub fn packet(&self, p: &Packet, flow: Option<&Flow>) -> bool {
        self.flow_ok(flow)
            && !p.visits.is_empty()
            && (self.netns.is_empty()
                || p.visits
                    .iter()
                    .any(|v| self.netns.contains(&v.device.netns.0)))
    }
}
