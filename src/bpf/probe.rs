//! Start-up checks: are we allowed to trace, and does the kernel describe
//! itself with BTF? Each failure names exactly what is missing.
//!
//! Kernel facts: loading tracing programs needs CAP_BPF and CAP_PERFMON
//! (5.8+) or CAP_SYS_ADMIN; tp_btf and CO-RE need /sys/kernel/btf/vmlinux.
//! RLIMIT_MEMLOCK is not checked: kernels since 5.11 charge BPF memory to
//! the memory cgroup instead.

use std::fs;
use std::path::Path;

use thiserror::Error;

const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

#[derive(Debug, Error)]
pub enum ProbeError {
    #[error(
        "hopscope needs root, or the capabilities CAP_BPF and CAP_PERFMON (missing: {missing}); \
         try: sudo hopscope ..."
    )]
    Privilege { missing: String },
    #[error(
        "this kernel has no BTF (/sys/kernel/btf/vmlinux is missing); hopscope needs a kernel \
         built with CONFIG_DEBUG_INFO_BTF=y"
    )]
    NoBtf,
}

/// The effective capability set of this process, from /proc/self/status.
fn effective_caps() -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("CapEff:"))?;
    u64::from_str_radix(line.trim_start_matches("CapEff:").trim(), 16).ok()
}

/// Checks privileges and BTF before anything is loaded.
pub fn check_can_trace() -> Result<(), ProbeError> {
    let caps = effective_caps().unwrap_or(0);
    let has = |c: u32| caps & (1u64 << c) != 0;
    let allowed = has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON));
    if !allowed {
        let mut missing = Vec::new();
        if !has(CAP_BPF) {
            missing.push("CAP_BPF");
        }
        if !has(CAP_PERFMON) {
            missing.push("CAP_PERFMON");
        }
        return Err(ProbeError::Privilege {
            missing: missing.join(", "),
        });
    }
    if !Path::new("/sys/kernel/btf/vmlinux").exists() {
        return Err(ProbeError::NoBtf);
    }
    Ok(())
}

/// Commands that change namespaces (`lab`) need root.
pub fn check_root_for(what: &str) -> Result<(), anyhow::Error> {
    if !nix::unistd::geteuid().is_root() {
        anyhow::bail!("`hopscope {what}` creates network namespaces and needs root (try: sudo hopscope {what} ...)");
    }
    Ok(())
}
