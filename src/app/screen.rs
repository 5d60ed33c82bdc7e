//! Where the explorer is: the screen whose list fills the terminal, and
//! what the detail area under it shows.

/// Which list fills the screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Flows,
    Packets,
    Hops,
    /// Drops by reason, namespace and device.
    Drops,
}

impl Screen {
    pub(super) fn index(self) -> usize {
        self as usize
    }
}

/// What the detail area shows (Tab cycles).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    HopList,
    Graph,
    PathStats,
}

impl Detail {
    /// What the detail area is called in the tab bar.
    pub fn name(self) -> &'static str {
        match self {
            Detail::HopList => "hops",
            Detail::Graph => "hop graph",
            Detail::PathStats => "path statistics",
        }
    }
    pub(super) fn next(self) -> Detail {
        match self {
            Detail::HopList => Detail::Graph,
            Detail::Graph => Detail::PathStats,
            Detail::PathStats => Detail::HopList,
        }
    }
}
