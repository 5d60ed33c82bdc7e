//! The orders of the flows list and of a flow's packets (`s` cycles them).

/// The order of the flows list (`s` cycles).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowSort {
    LastSeen,
    Packets,
    Bytes,
    Drops,
    Transit,
    FirstSeen,
}

impl FlowSort {
    /// How the order is shown next to the list's title.
    pub fn name(self) -> &'static str {
        match self {
            FlowSort::LastSeen => "last seen",
            FlowSort::Packets => "packets",
            FlowSort::Bytes => "bytes",
            FlowSort::Drops => "drops",
            FlowSort::Transit => "median transit",
            FlowSort::FirstSeen => "first seen",
        }
    }
    pub(super) fn next(self) -> FlowSort {
        match self {
            FlowSort::LastSeen => FlowSort::Packets,
            FlowSort::Packets => FlowSort::Bytes,
            FlowSort::Bytes => FlowSort::Drops,
            FlowSort::Drops => FlowSort::Transit,
            FlowSort::Transit => FlowSort::FirstSeen,
            FlowSort::FirstSeen => FlowSort::LastSeen,
        }
    }
}

/// The order of a flow's packets (`s` cycles); newest and oldest first
/// are by packet id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketSort {
    Newest,
    Oldest,
    Transit,
    Visits,
}

impl PacketSort {
    /// How the order is shown next to the list's title.
    pub fn name(self) -> &'static str {
        match self {
            PacketSort::Newest => "newest first",
            PacketSort::Oldest => "oldest first",
            PacketSort::Transit => "transit time",
            PacketSort::Visits => "visits",
        }
    }
    pub(super) fn next(self) -> PacketSort {
        match self {
            PacketSort::Newest => PacketSort::Oldest,
            PacketSort::Oldest => PacketSort::Transit,
            PacketSort::Transit => PacketSort::Visits,
            PacketSort::Visits => PacketSort::Newest,
        }
    }
}
