#!/usr/bin/env bash
# Runs the privileged test suite on other Debian kernels, each booted under
# virtme-ng (QEMU, software emulation: no KVM needed), and prints one line per
# kernel:
#
#     kernel 6.1.0-57-amd64: 12 passed, 0 failed, degraded: sk_data_ready, tcp_send_reset
#
#     sudo bash scripts/check-kernel.sh [--core] [--build] [KERNEL...]
#
# KERNEL: 6.1, 6.12 (the default: both), or a linux-image package name.
# --core runs only the core scenarios (paths, drops, filters, names, NAT,
# tunnels);
# HOPSCOPE_GUEST_TESTS="live::some_test drops:: ..." runs those instead.
# --build first builds the test binaries (cargo test --no-run), else those
# of the last build are used. Installs qemu, busybox-static and virtme-ng if
# missing (scripts/install-deps.sh --vm); downloads each kernel package once
# into target/kernels/. The guest shares the host's file system read-only
# and runs stripped copies of the test binaries (scripts/guest-run.sh), one
# test at a time under a deadline; results, logs and the guest's console go
# to target/guest/<kernel>/, emptied first. Exit status: 0 when every kernel
# booted and passed every test; 1 otherwise (a guest that did not boot or
# did not finish fails loudly); 2 on bad usage. Traffic stays in the guest.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# The kernels CI tests: Debian 12's own (6.1) and its backport (6.12, LTS).
# Pinned, so a run is reproducible; when the archive drops one, the newest
# package of the same series is taken (and named in the output).
PIN_6_1=linux-image-6.1.0-57-amd64
PIN_6_12=linux-image-6.12.117+deb12-amd64
# Test binaries that need root (namespaces, BPF), and the core scenarios.
PRIVILEGED=(drops field field_paths filter_scope filters hostile_live lab links live nat pcapng topology tui)
CORE=(
	live::ping_across_the_bridge_exact_visits_and_roles
	live::routed_ping_through_the_host
	drops::udp_to_a_closed_port_no_socket_and_the_port_unreachable_linked
	drops::nft_drop_in_the_router_namespace
	drops::tcp_to_a_closed_port_the_reset_on_the_flow
	filter_scope::matched_before_nat_followed_after
	filter_scope::whole_flows_follow_replies_through_nat
	live::tcp_connect_and_data_roles_from_the_syn
	topology::every_hop_carries_kind_master_peer_and_names
	nat::a_published_tcp_port_is_one_flow_with_its_replies_and_the_dnat_shown
	field_paths::a_ping_across_a_vxlan_overlay_is_one_packet_per_echo
	field_paths::other_tunnels_are_followed_where_the_kernel_has_them
	pcapng::a_replay_writes_the_packets_the_live_run_wrote
)
# A test that takes longer than this fails (emulated CPUs are 10-20x slower).
TEST_DEADLINE=${HOPSCOPE_GUEST_TEST_DEADLINE:-420}
# Windows in the tests stretch by this much in the guest (tests/common).
SLOWDOWN=${HOPSCOPE_GUEST_SLOWDOWN:-8}

core=0 build=0 kernels=()
for a in "$@"; do
	case $a in
	--core) core=1 ;;
	--build) build=1 ;;
	-h | --help) sed -n '2,22p' "$0"; exit 0 ;;
	-*) echo "check-kernel.sh: unknown option $a" >&2; exit 2 ;;
	*) kernels+=("$a") ;;
	esac
done
((${#kernels[@]})) || kernels=(6.1 6.12)
# HOPSCOPE_GUEST_TESTS="binary::test binary:: ..." runs those instead.
if [ -n "${HOPSCOPE_GUEST_TESTS:-}" ]; then
	read -ra CORE <<<"$HOPSCOPE_GUEST_TESTS"
	core=1
fi

[ "$(id -u)" = 0 ] || { echo "check-kernel.sh: needs root" >&2; exit 2; }
bash "$ROOT/scripts/install-deps.sh" --vm
export PATH="$HOME/.cargo/bin:$PATH"

# The package for a kernel name: the pin, or the newest of its series.
package_of() {
	local pin series
	case $1 in
	6.1) pin=$PIN_6_1 series='^linux-image-6\.1\.0-[0-9]+-amd64$' ;;
	6.12) pin=$PIN_6_12 series='^linux-image-6\.12\.[0-9]+\+deb12-amd64$' ;;
	*) echo "$1"; return ;;
	esac
	if [ -d "$ROOT/target/kernels/$pin/root/boot" ] || apt-cache show "$pin" >/dev/null 2>&1; then
		echo "$pin"
		return
	fi
	apt-get update -qq >/dev/null 2>&1 || true
	apt-cache show "$pin" >/dev/null 2>&1 && { echo "$pin"; return; }
	apt-cache pkgnames linux-image- | grep -E "$series" | sort -V | tail -n1
}

# Unpacks a kernel package under target/kernels/PKG/root (once).
fetch_kernel() {
	local pkg=$1 dir=$ROOT/target/kernels/$1
	if [ ! -d "$dir/root/boot" ]; then
		rm -rf "$dir" && mkdir -p "$dir"
		(cd "$dir" && apt-get download "$pkg" >/dev/null 2>&1) ||
			{ echo "check-kernel.sh: cannot download $pkg" >&2; return 1; }
		dpkg -x "$dir"/*.deb "$dir/root.tmp" && mv "$dir/root.tmp" "$dir/root"
		rm -f "$dir"/*.deb
	fi
}

# The test binaries of the last `cargo test` build, one "name path" a line.
test_binaries() {
	(cd "$ROOT" && cargo test --no-run --message-format=json 2>/dev/null) | python3 -c '
import json, sys
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["test"]:
        print(m["target"]["name"], m["executable"])
'
}

if ((build)); then
	echo "== cargo test --no-run"
	(cd "$ROOT" && cargo test --no-run --quiet)
fi
mapfile -t bins < <(test_binaries)
((${#bins[@]})) || { echo "check-kernel.sh: no test binaries (run with --build)" >&2; exit 1; }

# The plan: one "binary test-name" a line.
plan() {
	local entry name path t
	for entry in "${bins[@]}"; do
		name=${entry%% *} path=${entry#* }
		[[ " ${PRIVILEGED[*]} " == *" $name "* ]] || continue
		"$path" --list --format terse 2>/dev/null | sed -n 's/: test$//p' | while read -r t; do
			if ((core)); then
				local want=0 c
				for c in "${CORE[@]}"; do
					[[ $c == "$name::" || $c == "$name::$t" ]] && want=1
				done
				((want)) || continue
			fi
			echo "$path $t"
		done
	done
}

status=0
for k in "${kernels[@]}"; do
	pkg=$(package_of "$k")
	[ -n "$pkg" ] || { echo "kernel $k: FAILED: no package found"; status=1; continue; }
	fetch_kernel "$pkg" || { echo "kernel $k: FAILED: $pkg not downloaded"; status=1; continue; }
	boot=$(ls "$ROOT/target/kernels/$pkg/root/boot"/vmlinuz-* | head -n1)
	kver=${boot##*/vmlinuz-}
	out=$ROOT/target/guest/$kver
	rm -rf "$out" && mkdir -p "$out/logs"
	plan >"$out/plan"
	[ -s "$out/plan" ] || { echo "kernel $kver: FAILED: no test planned"; status=1; continue; }
	# Executables from the 9p share are paged in slowly, and debug info
	# makes them 4x bigger: the guest copies stripped ones into its tmpfs.
	mkdir -p "$out/bin"
	for b in $(cut -d' ' -f1 "$out/plan" | sort -u) "$ROOT/target/debug/hopscope"; do
		objcopy --strip-debug "$b" "$out/bin/${b##*/}"
	done
	n=$(wc -l <"$out/plan")
	echo "== kernel $kver ($pkg): $n tests$( ((core)) && echo ' (core scenarios)')"
	# A whole run's deadline: every test at its deadline, plus the boot.
	limit=$((n * TEST_DEADLINE + 600))
	t0=$(date +%s)
	timeout --kill-after=30 "$limit" vng --run "$boot" --disable-kvm --memory 3G --cpus 2 \
		--rwdir="$out" --cwd "$ROOT" \
		--exec "HOPSCOPE_TEST_SLOWDOWN=$SLOWDOWN TEST_DEADLINE=$TEST_DEADLINE bash $ROOT/scripts/guest-run.sh $out" \
		</dev/null >"$out/console.log" 2>&1 || true
	secs=$(($(date +%s) - t0))
	if [ "$(cat "$out/booted" 2>/dev/null)" != "$kver" ]; then
		echo "kernel $kver: FAILED: the guest did not boot (see $out/console.log)"
		tail -n 20 "$out/console.log" | sed 's/^/    /'
		status=1
		continue
	fi
	passed=$(grep -c ' passed ' "$out/results" 2>/dev/null || true)
	failed=$(grep -vc ' passed ' "$out/results" 2>/dev/null || true)
	ran=$((passed + failed))
	if [ ! -e "$out/finished" ] || ((ran < n)); then
		failed=$((n - passed))
		echo "kernel $kver: the guest stopped after $ran of $n tests (see $out/console.log)"
		status=1
	fi
	grep -v ' passed ' "$out/results" 2>/dev/null | sed 's/^/    FAILED /' || true
	degraded=$(cat "$out/degraded" 2>/dev/null || echo "unknown (no probe)")
	echo "kernel $kver: $passed passed, $failed failed, degraded: ${degraded:-none} (${secs}s)"
	# What the tunnel test found in this kernel.
	grep -h '^tunnels followed:\|^tunnel not in this kernel' "$out"/logs/*.log 2>/dev/null | sed 's/^/    /' || true
	((failed == 0)) || status=1
done
exit $status
