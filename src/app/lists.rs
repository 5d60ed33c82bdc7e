//! The explorer's long lists without a `Vec` of their rows per frame.
//!
//! A frame needs a list's length, the rows in the window shown and the row
//! of the selection; none of that needs every row. The packets of a flow
//! come from the model's per-flow index ([`crate::model::PacketIndex`]),
//! sorted by id, so "newest first" and "oldest first" are a window onto it.
//! A search, or another order (transit time, visits), is computed once and
//! cached in [`ViewCache`] until its inputs change: the flow, the roles
//! shown, freezing, the order, the query, the flow's packets (their
//! [`crate::model::PacketIndex::version`]) or, for a search, the namespace
//! names. The hop graph and the path statistics are cached the same way,
//! and cover at most the newest [`DETAIL_PACKETS`] packets of the flow.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::app::PacketSort;
use crate::correlate::path::PathStats;
use crate::correlate::{FlowId, Packet};
use crate::event::PacketId;
use crate::model::{transit_ns, Model, Roles};
use crate::topology::graph::HopGraph;

/// Packets the hop graph and the path statistics look at, at most: the
/// newest ones of the flow. Building them costs time per packet, and they
/// are rebuilt whenever the flow's packets change (every frame under
/// load), so this bounds a frame's cost whatever the flow holds.
pub const DETAIL_PACKETS: usize = 2048;

/// A list's rows by position: what a cursor and a renderer need.
pub trait Rows<T> {
    /// Rows listed.
    fn len(&self) -> usize;
    /// The item on row `i`.
    fn get(&self, i: usize) -> Option<T>;
    /// The row of `item`, when listed.
    fn position(&self, item: T) -> Option<usize>;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T: Copy + PartialEq> Rows<T> for [T] {
    fn len(&self) -> usize {
        <[T]>::len(self)
    }
    fn get(&self, i: usize) -> Option<T> {
        <[T]>::get(self, i).copied()
    }
    fn position(&self, item: T) -> Option<usize> {
        self.iter().position(|r| *r == item)
    }
}

impl<T: Copy + PartialEq> Rows<T> for Vec<T> {
    fn len(&self) -> usize {
        self.as_slice().len()
    }
    fn get(&self, i: usize) -> Option<T> {
        self.as_slice().get(i).copied()
    }
    fn position(&self, item: T) -> Option<usize> {
        self.as_slice().position(item)
    }
}

/// Where a packet goes in a list sorted by `sort`: rows ascend by this key.
pub type SortKey = (u64, u64);

/// The key of `p` under `sort` (ties go to the lower id).
pub fn sort_key(sort: PacketSort, p: &Packet) -> SortKey {
    let id = p.id.0;
    match sort {
        PacketSort::Newest => (0, u64::MAX - id),
        PacketSort::Oldest => (0, id),
        PacketSort::Transit => (u64::MAX - transit_ns(p), id),
        PacketSort::Visits => (u64::MAX - p.visits.len() as u64, id),
    }
}

/// Rows computed once (a search, or an order other than by id), sorted by
/// [`SortKey`].
pub type SortedRows = Arc<[(SortKey, PacketId)]>;

/// The packets listed for the selected flow.
#[derive(Clone)]
pub struct PacketList<'m> {
    source: Source<'m>,
}

#[derive(Clone)]
enum Source<'m> {
    Empty,
    /// The first `len` ids of a flow's index (sorted by id).
    Index {
        ids: &'m VecDeque<PacketId>,
        len: usize,
        newest_first: bool,
    },
    Sorted {
        rows: SortedRows,
        sort: PacketSort,
        model: &'m Model,
    },
}

impl<'m> PacketList<'m> {
    pub fn empty() -> PacketList<'m> {
        PacketList {
            source: Source::Empty,
        }
    }

    pub(crate) fn index(
        ids: &'m VecDeque<PacketId>,
        len: usize,
        newest_first: bool,
    ) -> PacketList<'m> {
        PacketList {
            source: Source::Index {
                ids,
                len: len.min(ids.len()),
                newest_first,
            },
        }
    }

    pub(crate) fn sorted(rows: SortedRows, sort: PacketSort, model: &'m Model) -> PacketList<'m> {
        PacketList {
            source: Source::Sorted { rows, sort, model },
        }
    }

    /// The rows from `start`, in order.
    pub fn iter_from(&self, start: usize) -> impl Iterator<Item = PacketId> + '_ {
        (start..self.len()).map_while(|i| self.get(i))
    }

    /// Every row (costs one step per row: for tests and exports).
    pub fn to_vec(&self) -> Vec<PacketId> {
        self.iter_from(0).collect()
    }
}

impl Rows<PacketId> for PacketList<'_> {
    fn len(&self) -> usize {
        match &self.source {
            Source::Empty => 0,
            Source::Index { len, .. } => *len,
            Source::Sorted { rows, .. } => rows.len(),
        }
    }

    fn get(&self, i: usize) -> Option<PacketId> {
        match &self.source {
            Source::Empty => None,
            Source::Index {
                ids,
                len,
                newest_first,
            } => {
                if i >= *len {
                    return None;
                }
                ids.get(if *newest_first { len - 1 - i } else { i })
                    .copied()
            }
            Source::Sorted { rows, .. } => rows.get(i).map(|r| r.1),
        }
    }

    fn position(&self, item: PacketId) -> Option<usize> {
        match &self.source {
            Source::Empty => None,
            Source::Index {
                ids,
                len,
                newest_first,
            } => {
                let at = ids.binary_search(&item).ok().filter(|at| at < len)?;
                Some(if *newest_first { len - 1 - at } else { at })
            }
            Source::Sorted { rows, sort, model } => {
                let key = sort_key(*sort, model.packet(item)?);
                rows.binary_search(&(key, item)).ok()
            }
        }
    }
}

/// What a cached packet list was computed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListKey {
    pub flow: FlowId,
    pub roles: Roles,
    /// `Some` when frozen: the newest packet listed (`Some(None)`: none).
    pub upto: Option<Option<PacketId>>,
    pub sort: PacketSort,
    pub query: String,
    /// The flow's packets.
    pub version: u64,
    /// The namespace names (a search matches them; 0 without a search).
    pub names: u64,
}

/// What a cached hop graph or path statistics were computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DetailKey {
    pub flow: FlowId,
    pub roles: Roles,
    pub upto: Option<Option<PacketId>>,
    pub version: u64,
}

/// A flow's hop graph or path statistics, over the newest `shown` of its
/// `visible` packets.
#[derive(Debug)]
pub struct Detail<T> {
    pub value: Arc<T>,
    /// Packets the value covers.
    pub shown: usize,
    /// Packets of the flow that the roles and freezing let through.
    pub visible: usize,
}

// Not derived: that would ask `T: Clone`, and only the `Arc` is cloned.
impl<T> Clone for Detail<T> {
    fn clone(&self) -> Self {
        Detail {
            value: Arc::clone(&self.value),
            shown: self.shown,
            visible: self.visible,
        }
    }
}

/// Derived data the explorer keeps between frames (never state of its
/// own: dropping it changes nothing shown).
#[derive(Debug, Clone, Default)]
pub struct ViewCache {
    pub(crate) packets: Option<(ListKey, SortedRows)>,
    pub(crate) graph: Option<(DetailKey, Detail<HopGraph>)>,
    pub(crate) paths: Option<(DetailKey, Detail<Vec<PathStats>>)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_window_lists_and_finds_both_ways() {
        let mut ids: VecDeque<PacketId> = (10..20).map(PacketId).collect();
        // Wrap the ring so the deque has two halves.
        for _ in 0..4 {
            let f = ids.pop_front().unwrap();
            ids.push_back(PacketId(f.0 + 10));
        }
        assert_eq!(
            ids.as_slices().1.is_empty(),
            ids.as_slices().0.len() == ids.len()
        );
        let old = PacketList::index(&ids, 8, false);
        assert_eq!(old.len(), 8);
        assert_eq!(old.get(0), Some(PacketId(14)));
        assert_eq!(old.get(7), Some(PacketId(21)));
        assert_eq!(old.get(8), None);
        assert_eq!(old.position(PacketId(21)), Some(7));
        assert_eq!(old.position(PacketId(22)), None, "beyond the cut");
        let new = PacketList::index(&ids, 8, true);
        assert_eq!(new.get(0), Some(PacketId(21)));
        assert_eq!(new.position(PacketId(21)), Some(0));
        assert_eq!(new.position(PacketId(14)), Some(7));
        assert_eq!(new.to_vec().len(), 8);
        for i in 0..8 {
            let id = new.get(i).unwrap();
            assert_eq!(new.position(id), Some(i));
            assert_eq!(old.position(old.get(i).unwrap()), Some(i));
        }
    }
}
