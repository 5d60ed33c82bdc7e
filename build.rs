//! Compiles bpf/hopscope.bpf.c with clang and generates its libbpf-rs
//! skeleton (including the Rust mirror of bpf/hopscope.h) into OUT_DIR.

use std::env;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

const SRC: &str = "bpf/hopscope.bpf.c";

fn main() {
    let out =
        PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("hopscope.skel.rs");
    let arch = env::var("CARGO_CFG_TARGET_ARCH").expect("cargo sets CARGO_CFG_TARGET_ARCH");
    let vmlinux_dir = match arch.as_str() {
        "x86_64" => "vmlinux/x86",
        other => panic!("no vmlinux.h for target arch {other}; see vmlinux/README.md"),
    };

    SkeletonBuilder::new()
        .source(SRC)
        .clang_args(["-I", vmlinux_dir, "-I", "bpf", "-O2", "-g", "-Wall"])
        .build_and_generate(&out)
        .expect("building the BPF object failed (is clang installed? see README)");

    println!("cargo:rerun-if-changed=bpf");
    println!("cargo:rerun-if-changed={vmlinux_dir}");
}
