//! The BPF stack budget, checked on the compiled object at build time.
//!
//! The kernel's verifier allows a program 512 bytes of stack for its whole
//! call chain: the program's frame plus every subprogram frame under it,
//! each rounded up to 32 bytes (6.1 rejects a chain over the limit with
//! "combined stack size of N calls is M. Too large"; newer kernels with
//! private stacks are more lenient, so the host kernel alone does not
//! catch it). This module measures the same thing from the object clang
//! wrote, without loading it: each function's frame is the deepest stack
//! offset its instructions touch (through r10 or a register copied from
//! it), and its chain is its frame plus the deepest chain among the
//! subprograms it calls, counting `bpf_loop`-style callbacks as calls. The
//! build fails when a program's chain exceeds the budget, which stays below
//! 512 so that another compiler's spills or a small addition do not reach
//! the limit unseen.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One program's deepest call chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    pub program: String,
    /// Bytes the verifier counts for the chain (frames rounded up to 32).
    pub bytes: u32,
    /// The functions of the chain with their frame sizes, outermost first.
    pub frames: Vec<(String, u32)>,
}

impl Chain {
    fn describe(&self) -> String {
        let frames: Vec<String> = self
            .frames
            .iter()
            .map(|(name, frame)| format!("{name} ({frame})"))
            .collect();
        format!(
            "{}: {} bytes: {}",
            self.program,
            self.bytes,
            frames.join(" > ")
        )
    }
}

/// The deepest chain of every program in the ELF object `elf`, by name.
pub fn chains(elf: &[u8]) -> Result<Vec<Chain>, String> {
    let obj = Elf::parse(elf)?;
    let funcs = obj.functions()?;
    let by_start: BTreeMap<(u16, u64), usize> = funcs
        .iter()
        .enumerate()
        .map(|(i, f)| ((f.section, f.start), i))
        .collect();
    let mut frames = Vec::with_capacity(funcs.len());
    let mut callees = Vec::with_capacity(funcs.len());
    for f in &funcs {
        let (frame, targets) = obj.scan(f)?;
        frames.push(frame);
        let mut called = Vec::new();
        for t in targets {
            let callee = by_start
                .get(&t)
                .ok_or_else(|| format!("{}: a call to no function start ({t:?})", f.name))?;
            called.push(*callee);
        }
        callees.push(called);
    }
    let mut out = Vec::new();
    for (i, f) in funcs.iter().enumerate() {
        if f.is_subprogram {
            continue;
        }
        let (bytes, path) = deepest(i, &frames, &callees, &mut Vec::new())?;
        out.push(Chain {
            program: f.name.clone(),
            bytes,
            frames: path
                .iter()
                .map(|&j| (funcs[j].name.clone(), frames[j]))
                .collect(),
        });
    }
    Ok(out)
}

/// Fails with a report when a program's chain in `elf` exceeds `budget`.
pub fn check(elf: &[u8], budget: u32) -> Result<String, String> {
    let chains = chains(elf)?;
    if chains.is_empty() {
        return Err("no BPF program found in the object".into());
    }
    let mut report = String::new();
    let mut over = Vec::new();
    for c in &chains {
        let _ = writeln!(report, "{}", c.describe());
        if c.bytes > budget {
            over.push(c.describe());
        }
    }
    if over.is_empty() {
        Ok(report)
    } else {
        Err(format!(
            "BPF stack over budget ({budget} bytes per call chain; the verifier's limit is 512, \
             each frame rounded up to 32):\n  {}\nMove large locals into a per-CPU scratch slot \
             (bpf/filter.h, hs_scratch) or out of the chain (no large locals in subprograms).",
            over.join("\n  ")
        ))
    }
}

fn round32(frame: u32) -> u32 {
    frame.max(1).div_ceil(32) * 32
}

fn deepest(
    f: usize,
    frames: &[u32],
    callees: &[Vec<usize>],
    active: &mut Vec<usize>,
) -> Result<(u32, Vec<usize>), String> {
    if active.contains(&f) {
        return Err("recursive BPF calls".into());
    }
    active.push(f);
    let mut best = (0, Vec::new());
    for &c in &callees[f] {
        let sub = deepest(c, frames, callees, active)?;
        if sub.0 > best.0 {
            best = sub;
        }
    }
    active.pop();
    let mut path = vec![f];
    path.extend(best.1);
    Ok((round32(frames[f]) + best.0, path))
}

const SHT_SYMTAB: u32 = 2;
const SHT_REL: u32 = 9;
const SHF_EXECINSTR: u64 = 4;
const STT_FUNC: u8 = 2;

struct Section {
    name: String,
    kind: u32,
    flags: u64,
    offset: usize,
    size: usize,
    link: u32,
    info: u32,
}

struct Symbol {
    name: String,
    kind: u8,
    section: u16,
    value: u64,
    size: u64,
}

struct Function {
    name: String,
    section: u16,
    /// Index of the first instruction in its section.
    start: u64,
    len: u64,
    /// In .text: reached only through calls, not a program of its own.
    is_subprogram: bool,
}

/// The few parts of a little-endian ELF64 BPF object this check reads.
struct Elf<'a> {
    data: &'a [u8],
    sections: Vec<Section>,
    symbols: Vec<Symbol>,
    /// (section, instruction index) -> symbol the instruction is relocated against.
    relocations: BTreeMap<(u16, u64), usize>,
}

fn bytes<const N: usize>(data: &[u8], at: usize) -> Result<[u8; N], String> {
    data.get(at..at + N)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| format!("truncated ELF object (offset {at})"))
}

fn u16_at(d: &[u8], at: usize) -> Result<u16, String> {
    Ok(u16::from_le_bytes(bytes(d, at)?))
}

fn u32_at(d: &[u8], at: usize) -> Result<u32, String> {
    Ok(u32::from_le_bytes(bytes(d, at)?))
}

fn u64_at(d: &[u8], at: usize) -> Result<u64, String> {
    Ok(u64::from_le_bytes(bytes(d, at)?))
}

fn usize_at(d: &[u8], at: usize) -> Result<usize, String> {
    usize::try_from(u64_at(d, at)?).map_err(|e| e.to_string())
}

fn c_str(d: &[u8], at: usize) -> Result<String, String> {
    let tail = d.get(at..).ok_or("string out of bounds")?;
    let end = tail
        .iter()
        .position(|&b| b == 0)
        .ok_or("unterminated string")?;
    Ok(String::from_utf8_lossy(&tail[..end]).into_owned())
}

impl<'a> Elf<'a> {
    fn parse(data: &'a [u8]) -> Result<Self, String> {
        if data.get(..6) != Some(&[0x7f, b'E', b'L', b'F', 2, 1][..]) {
            return Err("not a little-endian ELF64 object".into());
        }
        let shoff = usize_at(data, 0x28)?;
        let shentsize = usize::from(u16_at(data, 0x3a)?);
        let shnum = usize::from(u16_at(data, 0x3c)?);
        let shstrndx = usize::from(u16_at(data, 0x3e)?);
        let mut raw = Vec::with_capacity(shnum);
        for i in 0..shnum {
            let h = shoff + i * shentsize;
            raw.push((
                u32_at(data, h)?,
                Section {
                    name: String::new(),
                    kind: u32_at(data, h + 4)?,
                    flags: u64_at(data, h + 8)?,
                    offset: usize_at(data, h + 0x18)?,
                    size: usize_at(data, h + 0x20)?,
                    link: u32_at(data, h + 0x28)?,
                    info: u32_at(data, h + 0x2c)?,
                },
            ));
        }
        let names_at = raw.get(shstrndx).ok_or("no section name table")?.1.offset;
        let mut sections = Vec::with_capacity(shnum);
        for (name, mut s) in raw {
            s.name = c_str(data, names_at + name as usize)?;
            sections.push(s);
        }
        let symtab = sections
            .iter()
            .find(|s| s.kind == SHT_SYMTAB)
            .ok_or("no symbol table")?;
        let strings = sections
            .get(symtab.link as usize)
            .ok_or("no string table")?
            .offset;
        let mut symbols = Vec::new();
        for i in 0..symtab.size / 24 {
            let at = symtab.offset + i * 24;
            symbols.push(Symbol {
                name: c_str(data, strings + u32_at(data, at)? as usize)?,
                kind: data[at + 4] & 0xf,
                section: u16_at(data, at + 6)?,
                value: u64_at(data, at + 8)?,
                size: u64_at(data, at + 16)?,
            });
        }
        let mut relocations = BTreeMap::new();
        for s in sections.iter().filter(|s| s.kind == SHT_REL) {
            let target = u16::try_from(s.info).map_err(|e| e.to_string())?;
            for i in 0..s.size / 16 {
                let at = s.offset + i * 16;
                let sym =
                    usize::try_from(u64_at(data, at + 8)? >> 32).map_err(|e| e.to_string())?;
                relocations.insert((target, u64_at(data, at)? / 8), sym);
            }
        }
        Ok(Elf {
            data,
            sections,
            symbols,
            relocations,
        })
    }

    fn functions(&self) -> Result<Vec<Function>, String> {
        let mut out = Vec::new();
        for sym in &self.symbols {
            if sym.kind != STT_FUNC {
                continue;
            }
            let section = self
                .sections
                .get(usize::from(sym.section))
                .ok_or_else(|| format!("{}: no section", sym.name))?;
            if section.flags & SHF_EXECINSTR == 0 {
                continue;
            }
            out.push(Function {
                name: sym.name.clone(),
                section: sym.section,
                start: sym.value / 8,
                len: sym.size / 8,
                is_subprogram: section.name == ".text",
            });
        }
        Ok(out)
    }

    /// The frame size of f and the (section, instruction) starts it calls.
    fn scan(&self, f: &Function) -> Result<(u32, Vec<(u16, u64)>), String> {
        let base = self.sections[usize::from(f.section)].offset;
        // Registers holding r10 + offset.
        let mut derived: [Option<i64>; 11] = [None; 11];
        derived[10] = Some(0);
        let mut deepest: i64 = 0;
        let mut calls = Vec::new();
        let mut i = f.start;
        while i < f.start + f.len {
            let at = base + usize::try_from(i * 8).map_err(|e| e.to_string())?;
            let code = self.data[at];
            let dst = usize::from(self.data[at + 1] & 0xf).min(10);
            let src = usize::from(self.data[at + 1] >> 4).min(10);
            let off = i64::from(i16::from_le_bytes(bytes(self.data, at + 2)?));
            let imm = i64::from(i32::from_le_bytes(bytes(self.data, at + 4)?));
            let reloc = self
                .relocations
                .get(&(f.section, i))
                .map(|&s| &self.symbols[s]);
            match code {
                // ld_imm64: a reference to a function is a callback (bpf_loop).
                0x18 => {
                    if let Some(sym) = reloc {
                        let exec = self
                            .sections
                            .get(usize::from(sym.section))
                            .is_some_and(|s| s.flags & SHF_EXECINSTR != 0);
                        if exec {
                            let byte = i64::try_from(sym.value).map_err(|e| e.to_string())? + imm;
                            calls.push((
                                sym.section,
                                u64::try_from(byte / 8).map_err(|e| e.to_string())?,
                            ));
                        }
                    }
                    if dst != 10 {
                        derived[dst] = None;
                    }
                    i += 2;
                    continue;
                }
                // call: a BPF-to-BPF call (src_reg 1) or a helper.
                0x85 => {
                    if src == 1 {
                        let target = match reloc {
                            Some(sym) => {
                                (sym.section, (sym.value / 8).wrapping_add_signed(imm + 1))
                            }
                            None => (f.section, i.wrapping_add_signed(imm + 1)),
                        };
                        calls.push(target);
                    }
                    for r in derived.iter_mut().take(6) {
                        *r = None;
                    }
                }
                // mov64 reg: a copy of the frame pointer.
                0xbf => {
                    if dst != 10 {
                        derived[dst] = derived[src];
                    }
                }
                // add64 imm on a copy of the frame pointer.
                0x07 if derived[dst].is_some() && dst != 10 => {
                    let k = derived[dst].unwrap_or(0) + imm;
                    derived[dst] = Some(k);
                    deepest = deepest.min(k);
                }
                _ => {
                    let class = code & 7;
                    // Loads go through src, stores (and atomics) through dst.
                    let base_reg = match class {
                        1 => Some(src),
                        2 | 3 => Some(dst),
                        _ => None,
                    };
                    if let Some(k) = base_reg.and_then(|r| derived[r]) {
                        deepest = deepest.min(k + off);
                    }
                    // Anything else that writes dst ends what it held.
                    if matches!(class, 1 | 4 | 7) && dst != 10 {
                        derived[dst] = None;
                    }
                }
            }
            i += 1;
        }
        let frame = u32::try_from(-deepest).map_err(|e| e.to_string())?;
        Ok((frame, calls))
    }
}
