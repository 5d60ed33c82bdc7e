//! `--netns`, `--iface` and `--pid`: where hops are looked at, resolved to
//! what the kernel compares.
//!
//! Facts:
//! - A network namespace is identified in the kernel by the inode of its
//!   nsfs file (`ns.inum`): `/run/netns/NAME` (ip netns), `/proc/PID/ns/net`,
//!   or any bind mount of one. `stat` gives that inode; `statfs` says it is
//!   nsfs (NSFS_MAGIC) and not an ordinary file.
//! - Interface names are per namespace: `--iface eth0` selects every
//!   namespace's eth0, and `--netns` narrows it to one.
//! - The kernel side holds at most [`MAX`] of each.

use std::path::{Path, PathBuf};

use crate::UsageError;

/// Entries of each kind the kernel side holds (`HS_SCOPE_MAX`).
pub const MAX: usize = 8;
/// statfs f_type of nsfs.
const NSFS_MAGIC: i64 = 0x6e73_6673;

/// Where hops are looked at. Empty lists: everywhere.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// Namespace inodes, with how the user named them.
    pub netns: Vec<(u32, String)>,
    /// Interface names.
    pub ifnames: Vec<String>,
}

impl Scope {
    /// Resolves the command line's `--netns`, `--pid` and `--iface`.
    pub fn resolve(netns: &[String], pids: &[u32], ifaces: &[String]) -> Result<Scope, UsageError> {
        let mut scope = Scope::default();
        for n in netns {
            let ino = netns_inode(n)?;
            scope.push_netns(ino, n.clone());
        }
        for pid in pids {
            let path = PathBuf::from(format!("/proc/{pid}/ns/net"));
            let ino = nsfs_inode(&path).map_err(|e| {
                UsageError(format!(
                    "--pid {pid}: no such process, or its namespace is unreadable ({e})"
                ))
            })?;
            scope.push_netns(ino, format!("pid {pid}"));
        }
        if scope.netns.len() > MAX {
            return Err(UsageError(format!(
                "at most {MAX} namespaces (--netns and --pid together), got {}",
                scope.netns.len()
            )));
        }
        for i in ifaces {
            check_ifname(i)?;
            if !scope.ifnames.contains(i) {
                scope.ifnames.push(i.clone());
            }
        }
        if scope.ifnames.len() > MAX {
            return Err(UsageError(format!(
                "at most {MAX} interfaces (--iface), got {}",
                scope.ifnames.len()
            )));
        }
        Ok(scope)
    }

    fn push_netns(&mut self, ino: u32, label: String) {
        if !self.netns.iter().any(|(i, _)| *i == ino) {
            self.netns.push((ino, label));
        }
    }

    pub fn is_everywhere(&self) -> bool {
        self.netns.is_empty() && self.ifnames.is_empty()
    }

    /// The inodes, for the kernel.
    pub fn inodes(&self) -> Vec<u32> {
        self.netns.iter().map(|(i, _)| *i).collect()
    }

    /// Interface names as the kernel compares them: 16 bytes, zero padded,
    /// read as two native-endian words.
    pub fn ifname_words(&self) -> Vec<[u64; 2]> {
        self.ifnames
            .iter()
            .map(|n| {
                let mut b = [0u8; 16];
                b[..n.len()].copy_from_slice(n.as_bytes());
                let (lo, hi) = b.split_at(8);
                [
                    u64::from_ne_bytes(lo.try_into().unwrap_or_default()),
                    u64::from_ne_bytes(hi.try_into().unwrap_or_default()),
                ]
            })
            .collect()
    }

    /// "netns hs-c1, pid 42 · iface eth0", or None when everywhere.
    pub fn label(&self) -> Option<String> {
        let mut parts = Vec::new();
        if !self.netns.is_empty() {
            let names: Vec<&str> = self.netns.iter().map(|(_, n)| n.as_str()).collect();
            parts.push(format!("netns {}", names.join(", ")));
        }
        if !self.ifnames.is_empty() {
            parts.push(format!("iface {}", self.ifnames.join(", ")));
        }
        (!parts.is_empty()).then(|| parts.join(" · "))
    }
}

/// NAME (ip netns, or `host` for the initial namespace), PATH or INODE.
fn netns_inode(arg: &str) -> Result<u32, UsageError> {
    if let Ok(ino) = arg.parse::<u32>() {
        if ino == 0 {
            return Err(UsageError("--netns 0: not a namespace inode".to_owned()));
        }
        return Ok(ino);
    }
    let path = if arg.contains('/') {
        PathBuf::from(arg)
    } else if arg == "host" {
        PathBuf::from("/proc/1/ns/net")
    } else {
        Path::new("/run/netns").join(arg)
    };
    nsfs_inode(&path).map_err(|e| {
        if arg.contains('/') {
            UsageError(format!("--netns {arg}: not a network namespace file ({e})"))
        } else {
            UsageError(format!(
                "--netns {arg}: no network namespace named {arg} in /run/netns ({e})"
            ))
        }
    })
}

fn nsfs_inode(path: &Path) -> Result<u32, String> {
    let fs = nix::sys::statfs::statfs(path).map_err(|e| e.desc().to_owned())?;
    if fs.filesystem_type().0 != NSFS_MAGIC {
        return Err("not an nsfs file".to_owned());
    }
    let st = nix::sys::stat::stat(path).map_err(|e| e.desc().to_owned())?;
    u32::try_from(st.st_ino).map_err(|_| "inode out of range".to_owned())
}

fn check_ifname(name: &str) -> Result<(), UsageError> {
    let bad = name.is_empty()
        || name.len() > 15
        || name == "."
        || name == ".."
        || name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace() || b == 0);
    if bad {
        return Err(UsageError(format!(
            "--iface `{name}`: not an interface name (1 to 15 bytes, no '/', ':' or spaces)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inodes_names_and_errors() {
        let s =
            Scope::resolve(&["4026531840".into()], &[], &["eth0".into(), "eth0".into()]).unwrap();
        assert_eq!(s.inodes(), [4_026_531_840]);
        assert_eq!(s.ifnames, ["eth0"]);
        assert_eq!(s.label().as_deref(), Some("netns 4026531840 · iface eth0"));
        let w = s.ifname_words();
        assert_eq!(&w[0][0].to_ne_bytes()[..4], b"eth0");
        assert_eq!(w[0][1], 0);
        assert!(Scope::resolve(&["no-such-ns-hopscope".into()], &[], &[]).is_err());
        assert!(Scope::resolve(&["/etc/passwd".into()], &[], &[]).is_err());
        assert!(Scope::resolve(&[], &[], &["much-too-long-name".into()]).is_err());
        assert!(Scope::resolve(&[], &[], &["a b".into()]).is_err());
        assert!(Scope::resolve(&[], &[u32::MAX], &[]).is_err());
        assert!(Scope::resolve(&[], &[], &[]).unwrap().is_everywhere());
    }

    #[test]
    fn own_pid_is_a_namespace() {
        let s = Scope::resolve(&[], &[std::process::id()], &[]).unwrap();
        assert_eq!(s.netns.len(), 1);
        assert_eq!(s.netns[0].1, format!("pid {}", std::process::id()));
    }
}
