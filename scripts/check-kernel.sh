#!/usr/bin/env bash
# Runs hopscope on another Debian kernel under virtme-ng (QEMU, software
# emulation) and checks it loads, traces the lab with names and links, and
# names drops and ICMP errors:
#
#     sudo bash scripts/check-kernel.sh [linux-image package]   # default: 6.1
#
# Installs qemu-system-x86, kmod and virtme-ng if missing, downloads and
# unpacks the kernel package into target/kernels/, copies its modules into
# /lib/modules (vng needs them), and boots it with the host's file system.
# All traffic stays inside the lab, inside the VM.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PKG=${1:-linux-image-6.1.0-50-amd64}
WORK=$ROOT/target/kernels/$PKG
BIN=$ROOT/target/release/hopscope

[ "$(id -u)" = 0 ] || { echo "check-kernel.sh: needs root" >&2; exit 1; }
command -v qemu-system-x86_64 >/dev/null && command -v depmod >/dev/null ||
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-system-x86 kmod >/dev/null
command -v vng >/dev/null || pip install -q virtme-ng 2>/dev/null || pip install -q --break-system-packages virtme-ng
command -v cargo >/dev/null || PATH=$HOME/.cargo/bin:$PATH
(cd "$ROOT" && cargo build --release --quiet)

mkdir -p "$WORK"
cd "$WORK"
if [ ! -d root/boot ]; then
	apt-get download "$PKG" >/dev/null
	dpkg -x ./*.deb root
fi
KVER=$(ls root/lib/modules | head -n1)
[ -d "/lib/modules/$KVER" ] || cp -a "root/lib/modules/$KVER" /lib/modules/

cat > run.sh <<SCRIPT
#!/bin/bash
exec > $WORK/vm.log 2>&1
echo "kernel \$(uname -r)"
modprobe veth; modprobe bridge
$BIN lab up --prefix hk >/dev/null || exit 1
$BIN trace --json -- ip netns exec hk-c1 ping -q -c 2 198.18.0.3 > $WORK/out.json 2> $WORK/err.txt; echo "json rc=\$?"
$BIN trace -- ip netns exec hk-c1 bash -c 'ping -q -c 1 -W 1 -t 1 198.18.1.2; echo x > /dev/udp/198.18.0.3/9' > $WORK/text.txt 2>&1; echo "text rc=\$?"
$BIN lab down --prefix hk
echo "programs left: \$(bpftool prog 2>/dev/null | grep -c ' hs_')"
SCRIPT
chmod +x run.sh
timeout 900 vng --run "root/boot/vmlinuz-$KVER" --disable-kvm --verbose --rwdir="$WORK" --memory 2G \
	--exec "$WORK/run.sh" >vng.log 2>&1 || true

cat vm.log
fail=0
grep -q "json rc=0" vm.log || fail=1
grep '^{' out.json | tail -n1 | grep -q '"type":"summary"' || fail=1
grep '^{' out.json | grep '"type":"hop"' | grep -q '"kind":"veth"' || fail=1
grep -q "ICMP error sent: time exceeded" text.txt || fail=1
grep -q "dropped: NO_SOCKET" text.txt || fail=1
grep -q "programs left: 0" vm.log || fail=1
echo "degraded: $(grep '^{' out.json | tail -n1 | sed 's/.*"degraded_hooks":\(\[[^]]*\]\).*/\1/')"
[ $fail = 0 ] && echo "check-kernel: $KVER OK" || { echo "check-kernel: $KVER FAILED (see $WORK)"; cat err.txt; exit 1; }
