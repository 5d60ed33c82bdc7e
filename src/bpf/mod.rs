//! Kernel side glue: the generated skeleton, the ABI, start-up checks and
//! the reader thread that owns everything loaded into the kernel.

// The only hand-written unsafe: `plain` impls and byte views of ABI structs.
#[allow(unsafe_code)]
pub mod abi;
pub mod probe;
pub mod reader;

/// The libbpf-cargo skeleton of bpf/hopscope.bpf.c (generated code).
pub mod skel {
    #![allow(
        clippy::all,
        clippy::pedantic,
        missing_docs,
        non_camel_case_types,
        non_upper_case_globals,
        dead_code,
        unused_imports,
        unsafe_code
    )]
    include!(concat!(env!("OUT_DIR"), "/hopscope.skel.rs"));
}
