//! Names and shape of what packets cross: namespace names and the hop graph.
//!
//! Kernel facts: a network namespace is named by its inode (`ns.inum`).
//! `ip netns` keeps a bind mount of `/proc/PID/ns/net` under `/run/netns`,
//! so `stat(/run/netns/NAME).st_ino` is that inode; the root namespace is
//! the one of PID 1.

pub mod dot;
pub mod graph;
pub mod links;
pub mod names;
pub mod resolver;
