//! A cgroup v2 directory that holds the process tree of `trace -- COMMAND`.
//!
//! Why a cgroup and not pids: the kernel stamps every socket with the cgroup
//! v2 of the task that created it (`sk->sk_cgrp_data`), and packets carry
//! their socket, so the BPF side can tell "sent by COMMAND's tree" exactly,
//! even from softirq context where `current` is whoever was interrupted.
//! Children inherit the cgroup, so the whole tree is covered with no fork
//! tracking. A cgroup v2 id is the inode number of its directory.
//!
//! The child is placed in the cgroup without `pre_exec` (which is unsafe):
//! hopscope moves itself in, spawns, and moves itself back.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use anyhow::{bail, Context, Result};

pub struct CommandCgroup {
    dir: PathBuf,
    home: PathBuf,
    id: u64,
}

/// The mount point of the cgroup v2 hierarchy, from /proc/self/mountinfo.
fn cgroup2_mount() -> Result<PathBuf> {
    let info =
        fs::read_to_string("/proc/self/mountinfo").context("reading /proc/self/mountinfo")?;
    for line in info.lines() {
        // mountinfo: ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS... - FSTYPE SOURCE SUPEROPTS
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        if right.split_whitespace().next() == Some("cgroup2") {
            if let Some(mnt) = left.split_whitespace().nth(4) {
                return Ok(PathBuf::from(mnt));
            }
        }
    }
    bail!("`trace -- COMMAND` needs the cgroup v2 hierarchy mounted (mount -t cgroup2 none /sys/fs/cgroup)")
}

/// This process's cgroup v2 path relative to the hierarchy root.
fn own_cgroup_path() -> Result<String> {
    let text = fs::read_to_string("/proc/self/cgroup").context("reading /proc/self/cgroup")?;
    text.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(|p| p.trim_start_matches('/').to_owned())
        .context("no cgroup v2 entry in /proc/self/cgroup")
}

fn enter(dir: &Path) -> Result<()> {
    fs::write(dir.join("cgroup.procs"), std::process::id().to_string())
        .with_context(|| format!("moving hopscope into cgroup {}", dir.display()))
}

impl CommandCgroup {
    pub fn create() -> Result<CommandCgroup> {
        let mnt = cgroup2_mount()?;
        let home = mnt.join(own_cgroup_path()?);
        let dir = mnt.join(format!("hopscope-{}", std::process::id()));
        if !dir.exists() {
            fs::create_dir(&dir).with_context(|| format!("creating cgroup {}", dir.display()))?;
        }
        let id = fs::metadata(&dir)
            .with_context(|| format!("stat {}", dir.display()))?
            .ino();
        Ok(CommandCgroup { dir, home, id })
    }

    /// The cgroup v2 id the BPF side reports for sockets created inside.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Sends `sig` to every process of the command's tree (the cgroup's
    /// members); best effort: a process may be gone already.
    pub fn signal_all(&self, sig: nix::sys::signal::Signal) {
        let Ok(procs) = fs::read_to_string(self.dir.join("cgroup.procs")) else {
            return;
        };
        for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
        }
    }

    /// Spawns `cmd` inside the cgroup.
    pub fn spawn(&self, cmd: &mut Command) -> Result<Child> {
        enter(&self.dir)?;
        let child = cmd.spawn();
        let back = enter(&self.home);
        let child = child.context("starting the command")?;
        back?;
        Ok(child)
    }
}

impl Drop for CommandCgroup {
    fn drop(&mut self) {
        // Empty once the command's tree is gone; retry briefly for stragglers.
        for _ in 0..20 {
            if fs::remove_dir(&self.dir).is_ok() || !self.dir.exists() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        log::warn!(
            "cgroup {} still has processes; left in place",
            self.dir.display()
        );
    }
}
