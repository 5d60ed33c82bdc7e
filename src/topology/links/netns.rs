//! Namespaces: opening a handle's path (checking it is the namespace
//! expected) and reading one namespace on its own thread: enter it, dump its
//! links, map the nsids they use to the other namespaces read.

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use nix::sched::{setns, CloneFlags};

use super::netlink::RtSocket;
use super::parse::RawLink;
use super::NetnsHandle;

/// Namespaces read in parallel (one thread each).
pub(super) const MAX_THREADS: usize = 16;

/// A handle whose path is open.
pub(super) struct OpenNetns {
    pub(super) inode: u32,
    path: PathBuf,
    file: File,
}

impl OpenNetns {
    pub(super) fn describe(&self) -> String {
        format!("netns {} (inode {})", self.path.display(), self.inode)
    }
}

pub(super) fn open_netns(h: &NetnsHandle) -> Result<OpenNetns, String> {
    let what = || format!("netns {} (inode {})", h.path.display(), h.inode);
    let file = File::open(&h.path).map_err(|e| format!("{}: open: {e}", what()))?;
    // A dead bind mount (`ip netns` entry whose namespace is gone) is a
    // plain empty file; setns would only say EINVAL.
    let fs = nix::sys::statfs::fstatfs(&file).map_err(|e| format!("{}: fstatfs: {e}", what()))?;
    if fs.filesystem_type() != nix::sys::statfs::NSFS_MAGIC {
        return Err(format!("{}: not a namespace file (not on nsfs)", what()));
    }
    let meta = file
        .metadata()
        .map_err(|e| format!("{}: fstat: {e}", what()))?;
    let inode = u32::try_from(meta.ino())
        .map_err(|_| format!("{}: inode {} is not a namespace inode", what(), meta.ino()))?;
    if h.inode != 0 && h.inode != inode {
        return Err(format!(
            "{}: the path now names inode {inode}, not the expected namespace; skipped",
            what()
        ));
    }
    Ok(OpenNetns {
        inode,
        path: h.path.clone(),
        file,
    })
}

/// Links of one namespace and the nsids it uses for the others.
pub(super) struct NsLinks {
    pub(super) inode: u32,
    pub(super) links: Vec<RawLink>,
    /// nsid (as this namespace numbers them) → namespace inode.
    pub(super) nsids: HashMap<i32, u32>,
    /// Non-fatal problems (a failed nsid query).
    pub(super) warnings: Vec<String>,
}

/// Runs on its own thread: enters `ns`, dumps its links and maps the nsids
/// they use. The thread ends right after, so its namespace never leaks.
pub(super) fn read_one(ns: &OpenNetns, all: &[OpenNetns]) -> Result<NsLinks, String> {
    let what = ns.describe();
    setns(&ns.file, CloneFlags::CLONE_NEWNET).map_err(|e| format!("{what}: setns: {e}"))?;
    let mut sock = RtSocket::open().map_err(|e| format!("{what}: netlink socket: {e}"))?;
    let mut links = sock
        .dump_links()
        .map_err(|e| format!("{what}: RTM_GETLINK dump: {e}"))?;
    links.sort_by_key(|l| l.ifindex);

    // Ask after the dump: filling IFLA_LINK_NETNSID is what assigns an id.
    let mut wanted: BTreeSet<i32> = links
        .iter()
        .filter_map(|l| l.link_netnsid)
        .filter(|&id| id >= 0)
        .collect();
    let mut nsids = HashMap::new();
    let mut warnings = Vec::new();
    for other in all {
        if wanted.is_empty() {
            break;
        }
        if other.inode == ns.inode {
            continue;
        }
        match sock.nsid_of(&other.file) {
            Ok(Some(id)) => {
                if wanted.remove(&id) {
                    nsids.insert(id, other.inode);
                }
            }
            Ok(None) => {}
            Err(e) => warnings.push(format!("{what}: RTM_GETNSID for {}: {e}", other.describe())),
        }
    }
    Ok(NsLinks {
        inode: ns.inode,
        links,
        nsids,
        warnings,
    })
}
