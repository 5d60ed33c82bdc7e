//! Namespace names from the file system: `/run/netns/*` (ip netns) and
//! `/var/run/docker/netns/*` bind mounts, and "host" for PID 1's namespace.
//! One scan reads a few directory entries; callers rescan when a namespace
//! without a name shows up, at most once per [`RESCAN_PERIOD`].

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// Minimum time between two scans triggered by unknown namespaces.
pub const RESCAN_PERIOD: Duration = Duration::from_secs(1);

/// `statfs` magic of the namespace file system.
const NSFS_MAGIC: i64 = 0x6e73_6673;

const BIND_MOUNT_DIRS: [&str; 2] = ["/run/netns", "/var/run/docker/netns"];

/// inode → name, as found by the last scan.
pub fn scan() -> HashMap<u32, String> {
    let mut names = HashMap::new();
    if let Ok(m) = std::fs::metadata("/proc/1/ns/net") {
        names.insert(m.ino() as u32, "host".to_owned());
    }
    for dir in BIND_MOUNT_DIRS {
        scan_dir(Path::new(dir), &mut names);
    }
    names
}

fn scan_dir(dir: &Path, names: &mut HashMap<u32, String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        // A live bind mount resolves to the nsfs inode; a stale entry is an
        // empty file on the underlying file system and is skipped.
        let path = e.path();
        let is_nsfs =
            nix::sys::statfs::statfs(&path).is_ok_and(|s| s.filesystem_type().0 == NSFS_MAGIC);
        if let (true, Ok(m), Some(name)) =
            (is_nsfs, std::fs::metadata(&path), e.file_name().to_str())
        {
            names
                .entry(m.ino() as u32)
                .or_insert_with(|| name.to_owned());
        }
    }
}

/// Rate-limited rescans.
#[derive(Debug, Default)]
pub struct NameScanner {
    last: Option<Instant>,
}

impl NameScanner {
    /// Scans if `unknown` is non-empty and the last scan is old enough.
    pub fn maybe_scan(&mut self, unknown: &[u32]) -> Option<HashMap<u32, String>> {
        if unknown.is_empty() || self.last.is_some_and(|t| t.elapsed() < RESCAN_PERIOD) {
            return None;
        }
        self.last = Some(Instant::now());
        Some(scan())
    }
}
