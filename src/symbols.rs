//! Kernel code addresses → `function+0xoffset`, from `/proc/kallsyms`.
//!
//! Kernel facts: kallsyms lists text symbols (`t`/`T`) of the kernel and of
//! loaded modules (`[module]` suffix), sorted or not; only root (or
//! CAP_SYSLOG with `kptr_restrict` < 2) sees real addresses, others see 0s,
//! in which case nothing resolves. The file is read once, on first use
//! (about 120k lines, a few tens of milliseconds); modules loaded later are
//! picked up by [`KernelSymbols::reload`].

use std::collections::HashMap;

/// Sorted text symbols.
#[derive(Debug, Default)]
pub struct KernelSymbols {
    /// (address, name), by address.
    syms: Vec<(u64, String)>,
    /// Resolved addresses, to answer repeated drops quickly.
    cache: HashMap<u64, Option<String>>,
}

impl KernelSymbols {
    /// Reads `/proc/kallsyms` (an empty table when unreadable or hidden).
    pub fn load() -> KernelSymbols {
        let text = std::fs::read_to_string("/proc/kallsyms").unwrap_or_default();
        KernelSymbols::parse(&text)
    }

    /// Parses kallsyms text.
    pub fn parse(text: &str) -> KernelSymbols {
        let mut syms: Vec<(u64, String)> = text
            .lines()
            .filter_map(|l| {
                let mut it = l.split_whitespace();
                let addr = u64::from_str_radix(it.next()?, 16).ok()?;
                let kind = it.next()?;
                let name = it.next()?;
                (addr != 0 && matches!(kind, "t" | "T")).then(|| (addr, name.to_owned()))
            })
            .collect();
        syms.sort_unstable();
        syms.dedup_by_key(|s| s.0);
        KernelSymbols {
            syms,
            cache: HashMap::new(),
        }
    }

    pub fn reload(&mut self) {
        *self = KernelSymbols::load();
    }

    pub fn is_empty(&self) -> bool {
        self.syms.is_empty()
    }

    /// Every address resolved so far, with its name.
    pub fn resolved(&self) -> impl Iterator<Item = (u64, &str)> {
        self.cache
            .iter()
            .filter_map(|(a, n)| n.as_deref().map(|n| (*a, n)))
    }

    /// `nft_do_chain+0x1f4`, or `None` outside known text (or without
    /// symbols).
    pub fn resolve(&mut self, addr: u64) -> Option<String> {
        if let Some(hit) = self.cache.get(&addr) {
            return hit.clone();
        }
        let found = self
            .lookup(addr)
            .map(|(name, off)| format!("{name}+0x{off:x}"));
        if self.cache.len() < 65_536 {
            self.cache.insert(addr, found.clone());
        }
        found
    }

    /// What [`KernelSymbols::resolve`] returned for `addr`, if it was
    /// asked and remembered it (`Some(None)`: not kernel text).
    pub fn cached(&self, addr: u64) -> Option<Option<&str>> {
        self.cache.get(&addr).map(Option::as_deref)
    }

    /// The function containing `addr` and the offset into it, without
    /// allocating or caching.
    pub fn lookup(&self, addr: u64) -> Option<(&str, u64)> {
        let i = self.syms.partition_point(|s| s.0 <= addr);
        let (start, name) = self.syms.get(i.checked_sub(1)?)?;
        // Far past the last symbol is not kernel text.
        (i < self.syms.len() || addr - start < 1 << 20).then_some((name.as_str(), addr - start))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_to_the_enclosing_function() {
        let mut k = KernelSymbols::parse(
            "ffffffff81000000 T _stext\n\
             ffffffff81fbd5d0 T nft_do_chain\n\
             ffffffff81fbd000 t nft_helper\n\
             ffffffff81fbe000 D some_data\n\
             ffffffffc0000000 t mod_fn\t[mymod]\n\
             0000000000000000 T hidden\n",
        );
        assert_eq!(
            k.resolve(0xffffffff81fbd5d0 + 0x1f4).as_deref(),
            Some("nft_do_chain+0x1f4")
        );
        assert_eq!(
            k.resolve(0xffffffff81fbd001).as_deref(),
            Some("nft_helper+0x1")
        );
        assert_eq!(
            k.resolve(0xffffffffc0000010).as_deref(),
            Some("mod_fn+0x10")
        );
        assert_eq!(k.resolve(0x1000), None, "below all text");
        assert_eq!(k.cached(0x1000), Some(None));
        assert_eq!(k.cached(0x2000), None, "not asked");
        assert_eq!(
            k.lookup(0xffffffff81fbd5d0 + 0x1f4),
            Some(("nft_do_chain", 0x1f4))
        );
        assert_eq!(
            k.resolve(0xffffffffc0000010).as_deref(),
            Some("mod_fn+0x10"),
            "cached"
        );
    }

    #[test]
    fn hidden_addresses_resolve_nothing() {
        let mut k = KernelSymbols::parse("0000000000000000 T a\n0000000000000000 T b\n");
        assert!(k.is_empty());
        assert_eq!(k.resolve(0xffffffff81000000), None);
    }

    #[test]
    fn this_kernel_has_kfree_skb_reason_callers() {
        let mut k = KernelSymbols::load();
        assert!(!k.is_empty(), "run as root to read /proc/kallsyms");
        let addr = std::fs::read_to_string("/proc/kallsyms")
            .unwrap()
            .lines()
            .find(|l| l.ends_with(" ip_rcv"))
            .and_then(|l| u64::from_str_radix(l.split(' ').next().unwrap(), 16).ok())
            .unwrap();
        assert_eq!(k.resolve(addr + 4).as_deref(), Some("ip_rcv+0x4"));
    }
}
