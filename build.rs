//! Compiles bpf/hopscope.bpf.c (one source; its programs are in the bpf/
//! headers it includes) with clang and generates its libbpf-rs
//! skeleton (including the Rust mirror of bpf/hopscope.h) into OUT_DIR;
//! likewise bpf/empty_hooks.bpf.c, the benchmark's control
//! (examples/empty_hooks.rs). Fails when a program's call chain needs more
//! stack than the budget (build/stack_check.rs), whatever the host kernel
//! accepts.

use std::env;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

#[path = "build/stack_check.rs"]
mod stack_check;

/// Stack bytes a program's whole call chain may use, as the verifier counts
/// them (its limit is 512): room for other compilers' spills.
const STACK_BUDGET: u32 = 400;

/// Each BPF source and the skeleton generated from it.
const OBJECTS: [(&str, &str); 2] = [
    ("bpf/hopscope.bpf.c", "hopscope.skel.rs"),
    ("bpf/empty_hooks.bpf.c", "empty_hooks.skel.rs"),
];

fn main() {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let arch = env::var("CARGO_CFG_TARGET_ARCH").expect("cargo sets CARGO_CFG_TARGET_ARCH");
    let vmlinux_dir = match arch.as_str() {
        "x86_64" => "vmlinux/x86",
        other => panic!("no vmlinux.h for target arch {other}; see vmlinux/README.md"),
    };

    for (src, skel) in OBJECTS {
        let obj = out_dir.join(skel.replace(".skel.rs", ".bpf.o"));
        SkeletonBuilder::new()
            .source(src)
            .obj(&obj)
            .clang_args(["-I", vmlinux_dir, "-I", "bpf", "-O2", "-g", "-Wall"])
            .build_and_generate(out_dir.join(skel))
            .unwrap_or_else(|e| {
                panic!("building {src} failed (is clang installed? see README): {e}")
            });
        let elf = std::fs::read(&obj).unwrap_or_else(|e| panic!("reading {obj:?}: {e}"));
        match stack_check::check(&elf, STACK_BUDGET) {
            Ok(report) => {
                let path = out_dir.join(skel.replace(".skel.rs", ".stack.txt"));
                std::fs::write(&path, report).unwrap_or_else(|e| panic!("writing {path:?}: {e}"));
            }
            Err(e) => panic!("{src}: {e}"),
        }
    }

    // A directory: cargo reruns this when any file in it changes, so every
    // bpf/*.h the sources include is covered.
    println!("cargo:rerun-if-changed=bpf");
    println!("cargo:rerun-if-changed={vmlinux_dir}");
}
