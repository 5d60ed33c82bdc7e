#!/usr/bin/env bash
# Compares hopscope binaries side by side, in one run:
#
#     sudo bash scripts/bench-ab.sh OLD_BINARY NEW_BINARY [MORE...]
#
# (build one with `git worktree add /tmp/old REV && cargo build --release`
# there). An argument may carry trace options after the binary, quoted as
# one word: "target/release/hopscope --snaplen 128" compares a flag's cost. For each round, each binary in turn runs `trace --json` (output
# through a pipe to `tail -n 1`) while iperf3 sends TCP from c1 to c2 in a
# private lab, and prints:
# - the throughput;
# - per BPF program, its runs and ns per run (kernel.bpf_stats_enabled,
#   programs of that process only);
# - hopscope's own CPU (user + system, from /proc) per event received.
# Knobs: AB_ROUNDS (default 2), AB_SECS (iperf3 seconds, default 4). The lab
# (a unique prefix) and the iperf3 server are removed and bpf_stats_enabled
# restored at exit, whatever happens. Traffic stays in the lab.
set -euo pipefail

[ $# -ge 1 ] || { echo "usage: $0 BINARY [BINARY...]" >&2; exit 2; }
for b in "$@"; do
	read -r -a words <<<"$b"
	[ -x "${words[0]}" ] || { echo "bench-ab.sh: ${words[0]} is not an executable" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "bench-ab.sh: needs root (BPF, namespaces)" >&2; exit 2; }
for t in iperf3 jq bpftool; do
	command -v "$t" >/dev/null || { echo "bench-ab.sh: $t not found (Debian: apt-get install $t)" >&2; exit 2; }
done

ROUNDS=${AB_ROUNDS:-2}
SECS=${AB_SECS:-4}
PREFIX=ab$(($$ % 100000))
read -r -a words <<<"$1"
LAB_BIN=${words[0]}
WORK=$(mktemp -d /tmp/hs-ab.XXXXXX)
STATS_OLD=$(sysctl -n kernel.bpf_stats_enabled)
TRACE_PID=
TAIL_PID=

cleanup() {
	set +e
	[ -n "$TRACE_PID" ] && kill -INT "$TRACE_PID" 2>/dev/null && wait "$TRACE_PID" 2>/dev/null
	[ -n "$TAIL_PID" ] && kill "$TAIL_PID" 2>/dev/null
	[ -s "$WORK/iperf.pid" ] && kill "$(cat "$WORK/iperf.pid")" 2>/dev/null
	sysctl -qw kernel.bpf_stats_enabled="$STATS_OLD"
	"$LAB_BIN" lab down --prefix "$PREFIX" >/dev/null 2>&1
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

"$LAB_BIN" lab up --prefix "$PREFIX" >/dev/null
C2=$(ip -n "$PREFIX-c2" -4 -o addr show dev eth0 | awk '{ split($4, a, "/"); print a[1] }')
ip netns exec "$PREFIX-c2" iperf3 -s -D -B "$C2" --pidfile "$WORK/iperf.pid"
sleep 0.5
sysctl -qw kernel.bpf_stats_enabled=1

# run_cnt and run_time_ns of the programs process $1 holds.
snapshot() {
	local ids
	ids=$({ grep -h '^prog_id:' /proc/"$1"/fdinfo/* 2>/dev/null || true; } | awk '{ print $2 }' | sort -un | jq -sc .)
	bpftool prog show -j | jq -c --argjson ids "$ids" \
		'[.[] | select(.id as $i | any($ids[]; . == $i)) | {name, cnt: (.run_cnt // 0), ns: (.run_time_ns // 0)}]'
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

for r in $(seq 1 "$ROUNDS"); do
	for bin in "$@"; do
		read -r -a words <<<"$bin"
		rm -f "$WORK/fifo"
		mkfifo "$WORK/fifo"
		tail -n 1 <"$WORK/fifo" >"$WORK/summary.json" &
		TAIL_PID=$!
		"${words[0]}" trace --json --duration 120 "${words[@]:1}" >"$WORK/fifo" 2>"$WORK/trace.err" &
		TRACE_PID=$!
		for _ in $(seq 1 300); do
			[ "$(find "/proc/$TRACE_PID/fd" -lname 'anon_inode:bpf_link' 2>/dev/null | wc -l)" -ge 10 ] && break
			kill -0 "$TRACE_PID" 2>/dev/null || { cat "$WORK/trace.err" >&2; exit 1; }
			sleep 0.1
		done
		sleep 0.5
		s0=$(snapshot "$TRACE_PID")
		c0=$(cpu_ticks "$TRACE_PID")
		gbit=$(ip netns exec "$PREFIX-c1" iperf3 -c "$C2" -t "$SECS" -J |
			jq -r '.end.sum_received.bits_per_second / 1e9 * 100 | round / 100')
		c1=$(cpu_ticks "$TRACE_PID")
		s1=$(snapshot "$TRACE_PID")
		kill -INT "$TRACE_PID"
		wait "$TRACE_PID" 2>/dev/null || true
		TRACE_PID=
		wait "$TAIL_PID" 2>/dev/null || true
		TAIL_PID=
		received=$(jq -r '.received // 0' "$WORK/summary.json")
		echo "== $bin, round $r: $gbit Gbit/s; hopscope CPU $(awk -v t=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" -v n="$received" \
			'BEGIN { printf "%.2f s, %.2f us per event (%d events)", t / hz, n ? t / hz / n * 1e6 : 0, n }')"
		jq -rn --argjson a "$s0" --argjson b "$s1" '
			$b[] | . as $p | ($a[] | select(.name == $p.name)) as $q
			| ($p.cnt - $q.cnt) as $runs | ($p.ns - $q.ns) as $ns
			| select($runs > 0) | "  \($p.name) \($runs) runs \(($ns / $runs) | round) ns"'
	done
done
