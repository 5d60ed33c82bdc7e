//! mtr-style statistics along a flow's dominant path. Pure.
//!
//! A path is the sequence of `(netns, ifindex)` visits one packet took. The
//! dominant path of a role is the most frequent *maximal* path (one that is
//! not a prefix of another observed path), so packets that died half way
//! are counted against the full path instead of hiding it. For each
//! position: how many packets reached it, how many of those never reached
//! the next position, and the time from the previous position (last, mean,
//! best, worst).

use std::hash::{Hash, Hasher};

use rustc_hash::{FxHashMap, FxHasher};

use super::{Packet, Role};
use crate::event::{Device, IfIndex, NetnsId};

/// One position of the dominant path.
#[derive(Debug, Clone, PartialEq)]
pub struct PathHop {
    pub device: Device,
    /// Packets whose path matched the dominant path up to here.
    pub seen: u64,
    /// Of those, the ones that never reached the next position (0 on the
    /// last position).
    pub lost: u64,
    /// Δt from the previous position, over the packets that reached both.
    pub last_ns: u64,
    pub best_ns: u64,
    pub worst_ns: u64,
    pub sum_ns: u64,
    pub samples: u64,
}

impl PathHop {
    pub fn mean_ns(&self) -> Option<u64> {
        (self.samples > 0).then(|| self.sum_ns / self.samples)
    }

    /// Share of `seen` that never reached the next position, in percent.
    pub fn loss_pct(&self) -> f64 {
        if self.seen == 0 {
            0.0
        } else {
            self.lost as f64 * 100.0 / self.seen as f64
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PathStats {
    pub role: Role,
    /// Packets of this role considered.
    pub packets: u64,
    /// Packets that took exactly the dominant path (or a prefix of it).
    pub on_path: u64,
    /// Distinct paths seen for this role.
    pub distinct_paths: usize,
    pub hops: Vec<PathHop>,
}

type Step = (NetnsId, IfIndex);

fn steps(p: &Packet) -> impl Iterator<Item = Step> + '_ {
    p.visits.iter().map(|v| (v.device.netns, v.device.ifindex))
}

/// Statistics of the dominant path of `role` among `packets` (oldest
/// first, so "last" is the newest packet's value). `None` without packets
/// of that role.
pub fn dominant_path<'a>(
    packets: impl IntoIterator<Item = &'a Packet>,
    role: Role,
) -> Option<PathStats> {
    let packets: Vec<&Packet> = packets
        .into_iter()
        .filter(|p| p.role.unwrap_or(Role::Request) == role && !p.visits.is_empty())
        .collect();
    if packets.is_empty() {
        return None;
    }
    // Distinct paths, how many packets took each and the first of them;
    // found by the hash of their steps, so that counting a packet
    // allocates nothing (the explorer counts thousands per frame).
    let mut paths: Vec<(Vec<Step>, u64, &Packet)> = Vec::new();
    let mut by_hash: FxHashMap<u64, Vec<usize>> = FxHashMap::default();
    for p in &packets {
        let mut h = FxHasher::default();
        for s in steps(p) {
            s.hash(&mut h);
        }
        let same = by_hash.entry(h.finish()).or_default();
        match same
            .iter()
            .find(|&&i| steps(p).eq(paths[i].0.iter().copied()))
        {
            Some(&i) => paths[i].1 += 1,
            None => {
                same.push(paths.len());
                paths.push((steps(p).collect(), 1, p));
            }
        }
    }
    let distinct_paths = paths.len();
    let is_prefix_of_other = |path: &[Step]| {
        paths
            .iter()
            .any(|(o, _, _)| o.len() > path.len() && o[..path.len()] == path[..])
    };
    let (path, example) = paths
        .iter()
        .filter(|(path, _, _)| !is_prefix_of_other(path))
        .max_by(|a, b| {
            (a.1, a.0.len())
                .cmp(&(b.1, b.0.len()))
                .then_with(|| b.2.id.cmp(&a.2.id))
        })
        .map(|(path, _, ex)| (path.clone(), *ex))?;

    let mut hops: Vec<PathHop> = example
        .visits
        .iter()
        .map(|v| PathHop {
            device: v.device,
            seen: 0,
            lost: 0,
            last_ns: 0,
            best_ns: u64::MAX,
            worst_ns: 0,
            sum_ns: 0,
            samples: 0,
        })
        .collect();
    let mut on_path = 0;
    for p in &packets {
        let matched = steps(p)
            .zip(path.iter())
            .take_while(|(s, want)| s == *want)
            .count();
        if matched == p.visits.len() {
            on_path += 1;
        }
        for (i, h) in hops.iter_mut().enumerate().take(matched) {
            h.seen += 1;
            if i + 1 < path.len() && i + 1 == matched {
                h.lost += 1;
            }
            if i > 0 {
                let dt = p.visits[i]
                    .first_ts
                    .saturating_sub(p.visits[i - 1].first_ts);
                h.last_ns = dt;
                h.best_ns = h.best_ns.min(dt);
                h.worst_ns = h.worst_ns.max(dt);
                h.sum_ns += dt;
                h.samples += 1;
            }
        }
    }
    for h in &mut hops {
        if h.samples == 0 {
            h.best_ns = 0;
        }
    }
    Some(PathStats {
        role,
        packets: packets.len() as u64,
        on_path,
        distinct_paths,
        hops,
    })
}
