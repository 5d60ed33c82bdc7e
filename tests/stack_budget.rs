//! The build's BPF stack check (build/stack_check.rs) on objects compiled
//! here with clang: it must see a frame, a call and a callback, and fail a
//! chain over the budget the way the verifier of 6.1 would.

#[path = "../build/stack_check.rs"]
#[allow(dead_code)]
mod stack_check;

use std::process::Command;

/// Compiles BPF C `src` with clang (as build.rs does) and returns the object.
fn compile(name: &str, src: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let c = dir.path().join(format!("{name}.bpf.c"));
    let o = dir.path().join(format!("{name}.bpf.o"));
    std::fs::write(&c, src).expect("writing the source");
    let out = Command::new("clang")
        .args(["-g", "-O2", "-target", "bpf", "-c"])
        .arg(&c)
        .arg("-o")
        .arg(&o)
        .output()
        .expect("running clang (scripts/install-deps.sh installs it)");
    assert!(
        out.status.success(),
        "clang failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(&o).expect("reading the object")
}

const PRELUDE: &str = r#"
#define SEC(n) __attribute__((section(n), used))
#define NOINLINE __attribute__((noinline))
static long (*bpf_loop)(unsigned int n, void *cb, void *ctx, unsigned long flags) = (void *)181;
char LICENSE[] SEC("license") = "GPL";
"#;

#[test]
fn a_chain_over_the_budget_fails_and_names_its_frames() {
    let src = format!(
        "{PRELUDE}
static NOINLINE int leaf(int x)
{{
	volatile char b[256];

	b[0] = x;
	b[255] = x;
	return b[x & 255];
}}

SEC(\"tp_btf/net_dev_queue\")
int deep(void *ctx)
{{
	volatile char a[300];

	a[0] = 1;
	a[299] = 2;
	return leaf(a[(unsigned long)ctx & 255]) + a[299];
}}

SEC(\"tp_btf/netif_rx\")
int shallow(void *ctx)
{{
	volatile char a[64];

	a[0] = 1;
	a[63] = 2;
	return a[(unsigned long)ctx & 63];
}}
"
    );
    let elf = compile("deep", &src);
    let chains = stack_check::chains(&elf).expect("parsing the object");
    let deep = chains
        .iter()
        .find(|c| c.program == "deep")
        .expect("program deep");
    let names: Vec<&str> = deep.frames.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["deep", "leaf"]);
    let (outer, inner) = (deep.frames[0].1, deep.frames[1].1);
    assert!((300..332).contains(&outer), "deep's frame: {outer}");
    assert!((256..288).contains(&inner), "leaf's frame: {inner}");
    assert_eq!(
        deep.bytes,
        outer.div_ceil(32) * 32 + inner.div_ceil(32) * 32
    );
    let shallow = chains
        .iter()
        .find(|c| c.program == "shallow")
        .expect("program shallow");
    assert_eq!(shallow.frames.len(), 1);
    assert_eq!(shallow.bytes, 64);

    let err = stack_check::check(&elf, 400).expect_err("deep's chain is over 400 bytes");
    assert!(err.contains("deep: "), "{err}");
    assert!(!err.contains("shallow: "), "{err}");
    assert!(stack_check::check(&elf, 1024).is_ok());
}

#[test]
fn a_callback_counts_as_a_call() {
    let src = format!(
        "{PRELUDE}
static long step(unsigned int i, void *ctx)
{{
	volatile char b[200];

	b[0] = i;
	b[199] = i;
	return b[i & 127];
}}

SEC(\"tp_btf/kfree_skb\")
int looping(void *ctx)
{{
	volatile int n = 0;

	bpf_loop(4, step, 0, 0);
	return n;
}}
"
    );
    let elf = compile("callback", &src);
    let chains = stack_check::chains(&elf).expect("parsing the object");
    let looping = chains
        .iter()
        .find(|c| c.program == "looping")
        .expect("program looping");
    let names: Vec<&str> = looping.frames.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["looping", "step"]);
    assert_eq!(looping.bytes, 32 + 224);
}

#[test]
fn not_an_object_is_an_error() {
    assert!(stack_check::chains(b"not an ELF file").is_err());
    assert!(stack_check::check(&[], 400).is_err());
}
