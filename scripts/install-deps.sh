#!/usr/bin/env bash
# Installs everything hopscope needs to build, demo and test, on Debian or
# Ubuntu, as root. Idempotent: installed packages are skipped quickly.
# --vm adds what the tests on other kernels need (scripts/check-kernel.sh):
# QEMU, busybox-static and kmod for the guest, virtme-ng (pip) to boot it.
set -euo pipefail

vm=0
[[ ${1:-} == --vm ]] && vm=1

if [[ $(id -u) -ne 0 ]]; then
    echo "install-deps: run as root (sudo $0)" >&2
    exit 1
fi

PACKAGES=(
    clang llvm libelf-dev zlib1g-dev libpcap-dev pkg-config make gcc
    iproute2 iputils-ping bpftool util-linux procps
    iperf3 tcpdump tmux graphviz nftables iptables ncat ca-certificates curl
    jq afl++ ethtool python3-minimal tshark
)
((vm)) && PACKAGES+=(qemu-system-x86 busybox-static kmod python3-pip)

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "install-deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Rust: use the machine's toolchain when there is one, else rustup.
if [[ -d "$HOME/.cargo/bin" ]]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null; then
    echo "install-deps: installing the Rust toolchain with rustup"
    curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --component rustfmt,clippy
    export PATH="$HOME/.cargo/bin:$PATH"
fi
if command -v rustup >/dev/null; then
    rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
    rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
fi
cargo --version >/dev/null

if ((vm)) && ! command -v vng >/dev/null; then
    echo "install-deps: installing virtme-ng (pip)"
    pip3 install -q virtme-ng 2>/dev/null || pip3 install -q --break-system-packages virtme-ng
    command -v vng >/dev/null || { echo "install-deps: vng not on PATH after pip" >&2; exit 1; }
fi
