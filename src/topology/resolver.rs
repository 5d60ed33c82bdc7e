//! What is known about the namespaces and links packets cross, and when to
//! look again. Devices seen in events are *observed* (a few hash lookups,
//! no system call); a *refresh* (namespace scan plus an rtnetlink dump of
//! every reachable namespace, a few milliseconds) runs only when something
//! unknown was observed, at most once per [`MIN_REFRESH_INTERVAL`] (so a
//! namespace is named from its first packets on), and a key that stays
//! unknown is retried only every [`RETRY_PERIOD`]: each unknown key costs
//! one lookup per period, whatever the traffic.
//!
//! Kernel facts: namespace inodes can be reused once a namespace is gone.
//! The net cookie (5.14+) never is, so when an inode shows up with another
//! cookie, everything learned about that inode is forgotten and looked up
//! again.

use rustc_hash::{FxHashMap, FxHashSet};
use std::time::{Duration, Instant};

use super::links::{read_links, LinkInfo, NetnsHandle};
use super::names;
use crate::event::Device;

/// Shortest time between two lookups.
pub const MIN_REFRESH_INTERVAL: Duration = Duration::from_millis(100);

/// How long a key that a refresh did not resolve is left alone.
pub const RETRY_PERIOD: Duration = Duration::from_secs(10);
/// How often a namespace named after a process is looked at again (it may
/// get a bind mount, i.e. a better name, later).
pub const PROVISIONAL_PERIOD: Duration = Duration::from_secs(3);

/// What a refresh learned: new or changed names and links.
#[derive(Debug, Default)]
pub struct Learned {
    pub names: Vec<(u32, String)>,
    pub links: Vec<LinkInfo>,
    /// Namespaces that could not be entered, and why.
    pub errors: Vec<String>,
}

/// The namespaces and links the packets named, as learned from the
/// machine: namespace names (bind mounts, processes), each link's kind,
/// master, peer and parent over rtnetlink. Only the pipeline's facts edge
/// asks it ([`Topology::observe`] what a packet named, then
/// [`Topology::refresh`], rate-limited); a namespace whose inode was reused
/// (its cookie changed) is forgotten and learned again.
#[derive(Debug, Default)]
pub struct Topology {
    names: FxHashMap<u32, String>,
    links: FxHashMap<(u32, u32), LinkInfo>,
    cookies: FxHashMap<u32, u64>,
    /// Keys a refresh could not resolve, and when it tried.
    unresolved: FxHashMap<(u32, u32), Instant>,
    /// Keys observed unknown since the last refresh.
    pending: FxHashSet<(u32, u32)>,
    /// Namespaces named after a process, not a bind mount.
    provisional: FxHashSet<u32>,
    last_refresh: Option<Instant>,
}

impl Topology {
    pub fn new() -> Topology {
        Topology::default()
    }

    pub fn netns_name(&self, netns: u32) -> Option<&str> {
        self.names.get(&netns).map(String::as_str)
    }

    pub fn link(&self, netns: u32, ifindex: u32) -> Option<&LinkInfo> {
        self.links.get(&(netns, ifindex))
    }

    /// Every namespace name known.
    pub fn names(&self) -> impl Iterator<Item = (u32, &str)> {
        self.names.iter().map(|(k, v)| (*k, v.as_str()))
    }

    /// Every link known.
    pub fn links(&self) -> impl Iterator<Item = &LinkInfo> {
        self.links.values()
    }

    /// Notes a device an event named.
    pub fn observe(&mut self, d: &Device) {
        let (ns, idx) = (d.netns.0, d.ifindex.0);
        if d.netns_cookie != 0
            && self.cookies.get(&ns) != Some(&d.netns_cookie)
            && self.cookies.insert(ns, d.netns_cookie).is_some()
        {
            // The inode was reused by a new namespace.
            self.names.remove(&ns);
            self.links.retain(|k, _| k.0 != ns);
            self.unresolved.retain(|k, _| k.0 != ns);
        }
        if self.links.contains_key(&(ns, idx)) && self.names.contains_key(&ns) {
            if self.provisional.contains(&ns)
                && self
                    .last_refresh
                    .is_none_or(|t| t.elapsed() >= PROVISIONAL_PERIOD)
            {
                self.pending.insert((ns, idx));
            }
            return;
        }
        let retry = self
            .unresolved
            .get(&(ns, idx))
            .is_none_or(|t| t.elapsed() >= RETRY_PERIOD);
        if retry {
            self.pending.insert((ns, idx));
        }
    }

    /// Whether a refresh would run now.
    pub fn due(&self) -> bool {
        !self.pending.is_empty()
            && self
                .last_refresh
                .is_none_or(|t| t.elapsed() >= MIN_REFRESH_INTERVAL)
    }

    /// Looks again if something unknown was observed (or `force`), and
    /// returns what changed.
    pub fn refresh(&mut self, force: bool) -> Option<Learned> {
        if !force && !self.due() {
            return None;
        }
        self.last_refresh = Some(Instant::now());
        let entries = names::scan();
        let mut learned = Learned::default();
        // Namespaces that are gone are forgotten (containers come and go).
        self.names
            .retain(|ino, _| entries.iter().any(|e| e.inode == *ino));
        self.cookies
            .retain(|ino, _| entries.iter().any(|e| e.inode == *ino));
        self.provisional = entries
            .iter()
            .filter(|e| matches!(e.source, names::NameSource::Process { .. }))
            .map(|e| e.inode)
            .collect();
        for e in &entries {
            if self.names.get(&e.inode) != Some(&e.name) {
                self.names.insert(e.inode, e.name.clone());
                learned.names.push((e.inode, e.name.clone()));
            }
        }
        let handles: Vec<NetnsHandle> = entries
            .iter()
            .map(|e| NetnsHandle {
                inode: e.inode,
                path: e.path.clone(),
            })
            .collect();
        let (links, errors) = read_links(&handles);
        learned.errors = errors;
        // A namespace read now replaces what was known of it (links
        // deleted since are dropped); namespaces gone take theirs along.
        let read: FxHashSet<u32> = links.iter().map(|l| l.netns).collect();
        let fresh: FxHashSet<(u32, u32)> = links.iter().map(|l| (l.netns, l.ifindex)).collect();
        self.links.retain(|k, _| {
            (!read.contains(&k.0) || fresh.contains(k)) && self.names.contains_key(&k.0)
        });
        for l in links {
            let key = (l.netns, l.ifindex);
            if self.links.get(&key) != Some(&l) {
                learned.links.push(l.clone());
                self.links.insert(key, l);
            }
        }
        self.unresolved.retain(|_, t| t.elapsed() < RETRY_PERIOD);
        let now = Instant::now();
        for k in std::mem::take(&mut self.pending) {
            if !self.links.contains_key(&k) {
                self.unresolved.insert(k, now);
            }
        }
        Some(learned)
    }

    /// Takes what another process learned (a replay).
    pub fn set_name(&mut self, netns: u32, name: &str) {
        self.names.insert(netns, name.to_owned());
    }

    pub fn set_link(&mut self, l: LinkInfo) {
        self.links.insert((l.netns, l.ifindex), l);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{IfIndex, NetnsId, ShortName};

    fn dev(ns: u32, cookie: u64) -> Device {
        Device {
            netns: NetnsId(ns),
            netns_cookie: cookie,
            ifindex: IfIndex(2),
            ifname: ShortName::from_bytes(b"eth0"),
        }
    }

    #[test]
    fn a_reused_inode_forgets_its_predecessor() {
        let mut t = Topology::new();
        t.set_name(77, "old");
        t.observe(&dev(77, 1000));
        assert_eq!(t.netns_name(77), Some("old"), "first cookie seen");
        t.observe(&dev(77, 1000));
        assert_eq!(t.netns_name(77), Some("old"));
        t.observe(&dev(77, 2000));
        assert_eq!(t.netns_name(77), None, "another namespace, same inode");
        assert!(t.due(), "looked up again");
    }
}
