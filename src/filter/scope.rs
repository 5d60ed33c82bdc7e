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
//! - nsfs holds every kind of namespace: an open nsfs file reads back
//!   through `/proc/self/fd/N` as `net:[INODE]` only for a network
//!   namespace (`mnt:[...]`, `pid:[...]` for the others).
//! - A namespace exists while a process is in it, a bind mount holds it
//!   (`/run/netns`, docker's `/var/run/docker/netns`) or a descriptor is
//!   open on it: an inode given on the command line must be one of these.
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
            if !Path::new(&format!("/proc/{pid}")).exists() {
                return Err(UsageError(format!("--pid {pid}: no such process")));
            }
            let path = PathBuf::from(format!("/proc/{pid}/ns/net"));
            let ino = nsfs_inode(&path).map_err(|e| {
                UsageError(format!(
                    "--pid {pid}: cannot read its network namespace ({}): {e}",
                    path.display()
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
        if ino == 0 || !netns_exists(ino) {
            return Err(UsageError(format!(
                "--netns {ino}: no network namespace has this inode (no process is in one, \
                 and no bind mount or open descriptor holds one)"
            )));
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
        if arg == "host" {
            UsageError(format!(
                "--netns host: cannot read the initial namespace at /proc/1/ns/net: {e} \
                 (in a container or a restricted /proc? name the namespace by path or inode)"
            ))
        } else if arg.contains('/') {
            UsageError(format!("--netns {arg}: not a network namespace file ({e})"))
        } else {
            UsageError(format!(
                "--netns {arg}: no network namespace named {arg} in /run/netns ({e})"
            ))
        }
    })
}

/// The inode of the network namespace `path` names; an error for any
/// other file, nsfs files of other namespace kinds included.
fn nsfs_inode(path: &Path) -> Result<u32, String> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::MetadataExt;
    let file = std::fs::File::open(path).map_err(|e| io_desc(&e))?;
    let fs = nix::sys::statfs::fstatfs(&file).map_err(|e| e.desc().to_owned())?;
    if fs.filesystem_type().0 != NSFS_MAGIC {
        return Err("not a namespace file".to_owned());
    }
    let ino = file.metadata().map_err(|e| io_desc(&e))?.ino();
    // `/proc/PID/ns/*` reads back as `kind:[inode]`; a bind mount reads
    // back as its path, and its mount's root says `kind:[inode]`.
    let link = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
        .map_err(|e| io_desc(&e))?;
    let link = link.to_string_lossy().into_owned();
    let kind = if link.contains(":[") {
        Some(link)
    } else {
        mount_root(&link)
    };
    match kind {
        Some(k) if !k.starts_with("net:[") => {
            let kind = k.split(':').next().unwrap_or("another");
            Err(format!("a {kind} namespace, not a network namespace"))
        }
        // Net, or a kind nothing tells (nsfs all the same).
        _ => u32::try_from(ino).map_err(|_| "inode out of range".to_owned()),
    }
}

/// The root of the mount at `mount_point` (`net:[4026532182]` for a bind
/// mount of a network namespace), from /proc/self/mountinfo.
fn mount_root(mount_point: &str) -> Option<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().rev().find_map(|l| {
        let mut f = l.split(' ');
        let root = f.nth(3)?;
        (f.next()? == mount_point).then(|| root.to_owned())
    })
}

/// An I/O error's reason without the "(os error N)" suffix.
fn io_desc(e: &std::io::Error) -> String {
    e.raw_os_error().map_or_else(
        || e.to_string(),
        |n| nix::errno::Errno::from_raw(n).desc().to_owned(),
    )
}

/// Whether a network namespace with inode `ino` exists: a process is in
/// it, a bind mount in the usual places holds it, or a descriptor is open
/// on it.
fn netns_exists(ino: u32) -> bool {
    let want = format!("net:[{ino}]");
    let procs: Vec<PathBuf> = std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
                })
                .collect()
        })
        .unwrap_or_default();
    let link_is = |p: &Path| std::fs::read_link(p).is_ok_and(|l| l.as_os_str() == want.as_str());
    if procs.iter().any(|p| link_is(&p.join("ns/net"))) {
        return true;
    }
    for dir in ["/run/netns", "/var/run/docker/netns"] {
        if let Ok(d) = std::fs::read_dir(dir) {
            if d.filter_map(Result::ok)
                .any(|e| nsfs_inode(&e.path()) == Ok(ino))
            {
                return true;
            }
        }
    }
    procs.iter().any(|p| {
        std::fs::read_dir(p.join("fd"))
            .is_ok_and(|d| d.filter_map(Result::ok).any(|e| link_is(&e.path())))
    })
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
        use std::os::unix::fs::MetadataExt;
        let own = std::fs::metadata("/proc/self/ns/net").unwrap().ino() as u32;
        let s = Scope::resolve(&[own.to_string()], &[], &["eth0".into(), "eth0".into()]).unwrap();
        assert_eq!(s.inodes(), [own]);
        assert_eq!(s.ifnames, ["eth0"]);
        assert_eq!(s.label(), Some(format!("netns {own} · iface eth0")));
        let w = s.ifname_words();
        assert_eq!(&w[0][0].to_ne_bytes()[..4], b"eth0");
        assert_eq!(w[0][1], 0);
        assert!(Scope::resolve(&["no-such-ns-hopscope".into()], &[], &[]).is_err());
        assert!(Scope::resolve(&["/etc/passwd".into()], &[], &[]).is_err());
        assert!(Scope::resolve(&[], &[], &["much-too-long-name".into()]).is_err());
        assert!(Scope::resolve(&[], &[], &["a b".into()]).is_err());
        assert!(Scope::resolve(&[], &[u32::MAX], &[]).is_err());
        // nsfs, but a mount namespace; an inode no namespace has.
        let e = Scope::resolve(&["/proc/self/ns/mnt".into()], &[], &[]).unwrap_err();
        assert!(
            e.0.contains("a mnt namespace, not a network namespace"),
            "{e}"
        );
        let e = Scope::resolve(&["12345".into()], &[], &[]).unwrap_err();
        assert!(e.0.contains("no network namespace has this inode"), "{e}");

        assert!(Scope::resolve(&[], &[], &[]).unwrap().is_everywhere());
    }

    #[test]
    fn own_pid_is_a_namespace() {
        let s = Scope::resolve(&[], &[std::process::id()], &[]).unwrap();
        assert_eq!(s.netns.len(), 1);
        assert_eq!(s.netns[0].1, format!("pid {}", std::process::id()));
    }
}
