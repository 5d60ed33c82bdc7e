//! Namespace names, and a path to enter each namespace.
//!
//! Sources, best first:
//! - bind mounts in `/run/netns` (`ip netns`) and `/var/run/docker/netns`:
//!   the file name;
//! - PID 1's namespace: `host`;
//! - otherwise a process inside the namespace (`/proc/PID/ns/net`): the
//!   container id (12 hex digits) when its cgroup path shows docker,
//!   containerd, CRI-O, podman or a Kubernetes pod, else `comm[pid]` of the
//!   lowest pid.
//!
//! Kernel facts: `readlink /proc/PID/ns/net` is `net:[INODE]`, one syscall
//! per process, so a full scan of a busy node costs a few milliseconds;
//! callers scan only when a namespace without a name shows up (see
//! `resolver`). A bind-mount entry whose namespace died is an
//! empty file on the underlying file system, told apart by `statfs`.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// `statfs` magic of the namespace file system.
const NSFS_MAGIC: i64 = 0x6e73_6673;

const BIND_MOUNT_DIRS: [&str; 2] = ["/run/netns", "/var/run/docker/netns"];

/// Where a name came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameSource {
    BindMount,
    Host,
    /// A process living in the namespace (and its container, if any).
    Process {
        pid: u32,
        comm: String,
        container: Option<String>,
    },
}

/// One namespace found on the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetnsEntry {
    pub inode: u32,
    pub name: String,
    pub source: NameSource,
    /// A path that enters it (`setns`): the bind mount or `/proc/PID/ns/net`.
    pub path: PathBuf,
}

/// Every namespace reachable now: bind mounts, then the host, then those
/// only processes hold.
pub fn scan() -> Vec<NetnsEntry> {
    let mut found: Vec<NetnsEntry> = Vec::new();
    for dir in BIND_MOUNT_DIRS {
        scan_bind_mounts(Path::new(dir), &mut found);
    }
    let mut by_process: HashMap<u32, (u32, PathBuf)> = HashMap::new();
    if let Ok(procs) = std::fs::read_dir("/proc") {
        for e in procs.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let link = e.path().join("ns/net");
            let Some(ino) = std::fs::read_link(&link)
                .ok()
                .and_then(|t| parse_ns_link(t.to_str()?))
            else {
                continue;
            };
            let slot = by_process.entry(ino).or_insert((pid, link.clone()));
            if pid < slot.0 {
                *slot = (pid, link);
            }
        }
    }
    let host = std::fs::metadata("/proc/1/ns/net")
        .ok()
        .map(|m| m.ino() as u32);
    if let Some(h) = host {
        if !found.iter().any(|f| f.inode == h) {
            found.push(NetnsEntry {
                inode: h,
                name: "host".to_owned(),
                source: NameSource::Host,
                path: PathBuf::from("/proc/1/ns/net"),
            });
        }
    }
    let mut rest: Vec<(u32, (u32, PathBuf))> = by_process
        .into_iter()
        .filter(|(ino, _)| !found.iter().any(|f| f.inode == *ino))
        .collect();
    rest.sort_unstable();
    for (ino, (pid, path)) in rest {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .map(|c| c.trim_end().to_owned())
            .unwrap_or_default();
        let container = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
            .ok()
            .and_then(|c| container_id(&c));
        let name = match &container {
            Some(id) => format!("ctr {id}"),
            None => format!("{comm}[{pid}]"),
        };
        found.push(NetnsEntry {
            inode: ino,
            name,
            source: NameSource::Process {
                pid,
                comm,
                container,
            },
            path,
        });
    }
    found
}

/// inode → name.
pub fn names(entries: &[NetnsEntry]) -> HashMap<u32, String> {
    entries.iter().map(|e| (e.inode, e.name.clone())).collect()
}

fn scan_bind_mounts(dir: &Path, found: &mut Vec<NetnsEntry>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut list: Vec<_> = entries.flatten().collect();
    list.sort_by_key(|e| e.file_name());
    for e in list {
        let path = e.path();
        let is_nsfs =
            nix::sys::statfs::statfs(&path).is_ok_and(|s| s.filesystem_type().0 == NSFS_MAGIC);
        if let (true, Ok(m), Some(name)) =
            (is_nsfs, std::fs::metadata(&path), e.file_name().to_str())
        {
            let inode = m.ino() as u32;
            if !found.iter().any(|f| f.inode == inode) {
                found.push(NetnsEntry {
                    inode,
                    name: name.to_owned(),
                    source: NameSource::BindMount,
                    path,
                });
            }
        }
    }
}

/// `net:[4026531840]` → 4026531840.
pub fn parse_ns_link(target: &str) -> Option<u32> {
    target
        .strip_prefix("net:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// The short (12 hex digit) container id in a `/proc/PID/cgroup` text, when
/// the path is a docker, containerd, CRI-O, podman or Kubernetes one.
pub fn container_id(cgroup: &str) -> Option<String> {
    const RUNTIMES: [&str; 6] = [
        "docker",
        "containerd",
        "crio",
        "libpod",
        "kubepods",
        "podman",
    ];
    for line in cgroup.lines() {
        let path = line.splitn(3, ':').nth(2).unwrap_or("");
        if !RUNTIMES.iter().any(|r| path.contains(r)) {
            continue;
        }
        // The last component holding a run of 64 hex digits.
        for comp in path.rsplit('/') {
            if let Some(id) = hex64(comp) {
                return Some(id[..12].to_owned());
            }
        }
    }
    None
}

fn hex64(s: &str) -> Option<&str> {
    let b = s.as_bytes();
    let mut start = 0;
    while start + 64 <= b.len() {
        let run = b[start..]
            .iter()
            .take_while(|c| c.is_ascii_hexdigit())
            .count();
        if run >= 64 {
            return s.get(start..start + 64);
        }
        start += run + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_ids_from_cgroup_paths() {
        let id = "3f2a9c1d0e4b5a6978877665544332211000ffeeddccbbaa9988776655443322";
        for text in [
            format!("0::/system.slice/docker-{id}.scope\n"),
            format!("12:pids:/docker/{id}\n0::/\n"),
            format!("0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234.slice/cri-containerd-{id}.scope\n"),
            format!("0::/kubepods/besteffort/pod5b1f/{id}\n"),
            format!("0::/machine.slice/libpod-{id}.scope/container\n"),
            format!("0::/system.slice/crio-{id}.scope\n"),
        ] {
            assert_eq!(container_id(&text).as_deref(), Some("3f2a9c1d0e4b"), "{text}");
        }
        assert_eq!(
            container_id("0::/user.slice/user-0.slice/session-3.scope\n"),
            None
        );
        assert_eq!(
            container_id(&format!("0::/system.slice/{id}.service\n")),
            None,
            "not a runtime"
        );
        assert_eq!(container_id(""), None);
    }

    #[test]
    fn namespace_links() {
        assert_eq!(parse_ns_link("net:[4026531840]"), Some(4026531840));
        assert_eq!(parse_ns_link("mnt:[4026531840]"), None);
        assert_eq!(parse_ns_link("net:[x]"), None);
    }
}
