#!/usr/bin/env bash
# Records tests/fixtures/field-*.hsrec: one exchange on each field topology
# of tests/common/field.rs (built and torn down by examples/field.rs, prefix
# hfx), traced by the real binary. The correlator tests replay them
# (tests/correlate_fixtures.rs), so re-record after a change of what the
# kernel side reports, and review what those tests then say. Root only.
#
#     sudo bash scripts/record-fixtures.sh [TOPOLOGY...]
#
# TOPOLOGY: published, vxlan, macvlan, gso-off, bridge-tcpdump (default: all).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
[[ $(id -u) == 0 ]] || { echo "record-fixtures.sh: run as root" >&2; exit 2; }

cargo build --release --quiet --bin hopscope --example field
HS=target/release/hopscope
FIELD=target/release/examples/field
OUT=tests/fixtures
export HF_PREFIX=hfx
# One UDP question and its answer: python3 $UDP_ASK ADDR PORT.
UDP_ASK=$(mktemp /tmp/hopscope-udp-ask.XXXXXX.py)
trap 'rm -f "$UDP_ASK"' EXIT
cat >"$UDP_ASK" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
s.sendto(b"hi\n", (sys.argv[1], int(sys.argv[2])))
print(s.recvfrom(65536)[0].decode().strip())
PY

# Runs TOPOLOGY's field while "$@" (a shell line) is traced into FILE.
record() {
	local topo=$1 file=$2 line=$3 fifo pid
	fifo=$(mktemp -u /tmp/hopscope-field.XXXXXX)
	mkfifo "$fifo"
	"$FIELD" "$topo" 300 <"$fifo" >/dev/null &
	pid=$!
	exec {hold}>"$fifo"
	# Up when its namespaces are.
	for _ in $(seq 100); do
		ip netns list | grep -q "^$HF_PREFIX-" && break
		sleep 0.1
	done
	sleep 1
	rm -f "$OUT/$file"
	"$HS" trace --record "$OUT/$file" -- sh -c "$line" >/dev/null 2>&1 || true
	exec {hold}>&-
	wait "$pid" || true
	rm -f "$fifo"
	echo "$OUT/$file: $(stat -c %s "$OUT/$file") bytes"
}

topos=("$@")
((${#topos[@]})) || topos=(published vxlan macvlan gso-off bridge-tcpdump)
for t in "${topos[@]}"; do
	case $t in
	published)
		record published field-published.hsrec \
			"ip netns exec hfx-cli sh -c 'echo hi | ncat -w 2 198.18.20.1 8080' &&
			 ip netns exec hfx-cli python3 $UDP_ASK 198.18.20.1 8080 &&
			 ip netns exec hfx-ctr sh -c 'echo hi | ncat -w 2 198.18.30.2 9000'"
		;;
	vxlan)
		record vxlan field-vxlan.hsrec \
			"ip netns exec hfx-pod1 ping -c 2 -i 0.2 198.18.42.2 &&
			 ip netns exec hfx-pod1 ping -c 1 2001:2:0:42::2 &&
			 ip netns exec hfx-pod1 sh -c 'echo hi | ncat -w 2 198.18.42.2 7042'"
		;;
	macvlan)
		record macvlan field-macvlan.hsrec \
			"ip netns exec hfx-m1 ping -c 2 -i 0.2 198.18.50.3 &&
			 ip netns exec hfx-far ping -c 2 -i 0.2 198.18.50.2"
		;;
	gso-off)
		record gso-off field-gso-off.hsrec \
			"ip netns exec hfx-snd sh -c 'head -c 65536 /dev/zero | ncat -w 2 198.18.80.2 5001'"
		;;
	bridge-tcpdump)
		record bridge field-bridge-tcpdump.hsrec \
			"ip netns exec hfx-sw timeout 5 tcpdump -i br0 -n -w /dev/null 'icmp or tcp' 2>/dev/null &
			 sleep 1;
			 ip netns exec hfx-a ping -c 2 -i 0.2 198.18.60.3 &&
			 ip netns exec hfx-a sh -c 'echo hi | ncat -w 2 198.18.60.3 7060';
			 wait"
		;;
	*)
		sed -n '2,10p' "$0" >&2
		exit 2
		;;
	esac
done
