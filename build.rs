//! Compiles bpf/hopscope.bpf.c with clang and generates its libbpf-rs
//! skeleton (including the Rust mirror of bpf/hopscope.h) into OUT_DIR;
//! likewise bpf/empty_hooks.bpf.c, the benchmark's control
//! (examples/empty_hooks.rs).

use std::env;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

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
        SkeletonBuilder::new()
            .source(src)
            .clang_args(["-I", vmlinux_dir, "-I", "bpf", "-O2", "-g", "-Wall"])
            .build_and_generate(out_dir.join(skel))
            .unwrap_or_else(|e| {
                panic!("building {src} failed (is clang installed? see README): {e}")
            });
    }

    println!("cargo:rerun-if-changed=bpf");
    println!("cargo:rerun-if-changed={vmlinux_dir}");
}
