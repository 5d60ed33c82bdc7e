#!/usr/bin/env bash
# Explorer responsiveness under load, for BENCHMARKS.md:
#
#     sudo bash scripts/bench-tui.sh
#
# Opens the explorer (`hopscope`, tracing everything) in a private tmux
# server at 160x45, floods a private lab with iperf3 (c1 -> c2), and times
# key presses: `?` until the help overlay is on screen, then any key until it
# is gone, BENCH_KEYS times each. The time includes tmux's own delivery and
# polling (capture-pane every 2 ms), so it is an upper bound. The events per
# second are read from the explorer's status bar at each press.
#
# Traffic stays inside the lab, which is removed at exit whatever happens.
# Knobs: BENCH_PREFIX, BENCH_KEYS (default 20), BENCH_STREAMS (iperf3 -P,
# default 4), BENCH_SKIP_BUILD=1.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=$ROOT/target/release/hopscope
OUT=$ROOT/target/bench
PREFIX=${BENCH_PREFIX:-bt$(($$ % 100000))}
KEYS=${BENCH_KEYS:-20}
STREAMS=${BENCH_STREAMS:-4}
SOCK=hopscope-bench-$$
C2_ADDR=198.18.0.3

log() { printf '==> %s\n' "$*" >&2; }
die() {
	printf 'bench-tui.sh: %s\n' "$*" >&2
	exit 1
}
[ "$(id -u)" = 0 ] || die "needs root (BPF, namespaces): sudo bash scripts/bench-tui.sh"

LAB_UP=0
IPERF_PIDFILE=$OUT/iperf3-tui-server.pid
CLIENT_PID=
cleanup() {
	set +e
	[ -n "$CLIENT_PID" ] && kill "$CLIENT_PID" 2>/dev/null
	tmux -L "$SOCK" kill-server 2>/dev/null
	if [ -s "$IPERF_PIDFILE" ]; then
		kill "$(cat "$IPERF_PIDFILE")" 2>/dev/null
		rm -f "$IPERF_PIDFILE"
	fi
	[ "$LAB_UP" = 1 ] && "$BIN" lab down --prefix "$PREFIX" >/dev/null 2>&1
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

for t in iperf3 tmux; do
	command -v "$t" >/dev/null ||
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$t" >/dev/null ||
		die "could not install $t"
done
command -v cargo >/dev/null || PATH=$HOME/.cargo/bin:$PATH
mkdir -p "$OUT"
if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
	log "cargo build --release"
	(cd "$ROOT" && cargo build --release 2>&1 | tail -n 1 >&2)
fi

log "lab $PREFIX"
"$BIN" lab up --prefix "$PREFIX" >/dev/null
LAB_UP=1
ip netns exec "$PREFIX-c2" iperf3 -s -D --pidfile "$IPERF_PIDFILE" -B "$C2_ADDR" >/dev/null

screen() { tmux -L "$SOCK" capture-pane -p -t bench; }
# Milliseconds until the screen does (or, with !, does not) contain $2.
wait_screen() {
	local want=$1 text=$2 t0 now
	t0=$(date +%s%N)
	while :; do
		if screen | grep -qF -- "$text"; then
			[ "$want" = has ] && break
		else
			[ "$want" = hasnt ] && break
		fi
		now=$(date +%s%N)
		[ $((now - t0)) -lt 10000000000 ] || die "screen never $want '$text'"
		sleep 0.002
	done
	now=$(date +%s%N)
	echo $(((now - t0) / 1000))
}

log "explorer in tmux (tracing everything)"
tmux -L "$SOCK" new-session -d -s bench -x 160 -y 45 "TERM=xterm-256color $BIN"
wait_screen has "ev/s" >/dev/null
ip netns exec "$PREFIX-c1" iperf3 -c "$C2_ADDR" -t 600 -P "$STREAMS" >/dev/null 2>&1 &
CLIENT_PID=$!
sleep 3

OPEN=()
CLOSE=()
RATES=()
for i in $(seq 1 "$KEYS"); do
	RATES+=("$(screen | grep -o '[0-9.]*[kM]\? ev/s' | head -n1 | cut -d' ' -f1)")
	t0=$(date +%s%N)
	tmux -L "$SOCK" send-keys -t bench '?'
	wait_screen has "this help" >/dev/null
	t1=$(date +%s%N)
	tmux -L "$SOCK" send-keys -t bench x
	wait_screen hasnt "this help" >/dev/null
	t2=$(date +%s%N)
	OPEN+=($(((t1 - t0) / 1000000)))
	CLOSE+=($(((t2 - t1) / 1000000)))
	sleep 0.2
done
lost=$(screen | grep -o 'LOST [0-9]*\|lost 0' | head -n1)
kept=$(screen | grep -o '[0-9]* in flight │ shown: [0-9]* packets' | head -n1)
pid=$(tmux -L "$SOCK" display -p -t bench '#{pane_pid}')
child=$(pgrep -P "$pid" | head -n1 || true)
rss=$(awk '/VmRSS/ { print $2 / 1024 " MiB" }' "/proc/${child:-$pid}/status")
tmux -L "$SOCK" send-keys -t bench q
sleep 1

stats() { sort -n | awk '{ v[NR] = $1 } END { printf "median %d ms, p90 %d ms, max %d ms", v[int((NR + 1) / 2)], v[int(NR * 0.9 + 0.5)], v[NR] }'; }
{
	echo
	echo "explorer under load: $(nproc) CPUs, Linux $(uname -r), iperf3 -P $STREAMS c1 -> c2, $KEYS presses"
	echo "  events/s on the status bar at each press: ${RATES[*]}"
	echo "  '?' until help shown:  $(printf '%s\n' "${OPEN[@]}" | stats)"
	echo "  key until help gone:   $(printf '%s\n' "${CLOSE[@]}" | stats)"
	echo "  status bar at the end: $lost; $kept"
	echo "  resident memory of the explorer at the end: $rss (default caps: 65536 packets, 16384 flows)"
} | tee "$OUT/tui-results.txt"
