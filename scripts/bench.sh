#!/usr/bin/env bash
# Reproduces every figure in BENCHMARKS.md:
#
#     sudo bash scripts/bench.sh
#
# 1. userspace: `cargo bench --bench pipeline` (decode, decode+correlate,
#    allocations per event);
# 2. kernel: ns per invocation of each hs_* program (kernel.bpf_stats_enabled)
#    while `hopscope trace --json > /dev/null` runs, under lab ping traffic
#    and then under iperf3 TCP;
#    and, with a filter nothing matches (--filter "$NOMATCH"), the cost of
#    the hooks for packets the filter rejects;
# 3. live overhead: iperf3 c1 -> c2 with the tracer off, on (tracing
#    everything, JSON to a pipe), on with the non-matching filter, the
#    control (empty programs on hopscope's tracepoints) and the seed's way
#    (bpftrace printing tracepkt's four tracepoints), alternating, with the
#    trace summary's emitted/received/lost and hopscope's CPU per event for
#    each traced run;
# 4. the non-matching filter in paired windows: one long iperf3 run while
#    the filtered tracer is started and stopped in cycles, each window with
#    the tracer attached compared with the window without it right after;
#    in turn with it, the control: empty programs on the same tracepoints
#    (examples/empty_hooks), the floor of any tracer on these hooks;
# 5. the explorer under load (scripts/bench-tui.sh).
#
# Traffic stays inside a lab of namespaces built for the run (198.18.0.0/24
# on its own bridge) and removed at exit, whatever happens. Takes about ten
# minutes on 2 cores once built (a fresh build adds two or three). Logs and raw
# numbers go to target/bench/.
#
# Knobs (environment): BENCH_PREFIX (lab name prefix), BENCH_RUNS (iperf3
# runs per side, default 3), BENCH_IPERF_SECS (default 5), BENCH_PAIRED_SECS
# (length of the paired-window run, default 300; 0 skips it), BENCH_SKIP_CARGO=1
# (kernel and live parts only, with an already built binary), BENCH_SKIP_TUI=1
# (without the explorer's part, scripts/bench-tui.sh).

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=$ROOT/target/release/hopscope
EMPTY_HOOKS=$ROOT/target/release/examples/empty_hooks
OUT=$ROOT/target/bench
PREFIX=${BENCH_PREFIX:-bn$(($$ % 100000))}
RUNS=${BENCH_RUNS:-3}
IPERF_SECS=${BENCH_IPERF_SECS:-5}
PING_COUNT=2000
C2_ADDR=198.18.0.3
# A filter iperf3's TCP traffic never matches.
NOMATCH='udp port 9'
# Upper bound only: every trace is stopped with SIGINT once its traffic ends.
TRACE_LIMIT_SECS=60

log() { printf '==> %s\n' "$*" >&2; }
die() {
	printf 'bench.sh: %s\n' "$*" >&2
	exit 1
}

[ "$(id -u)" = 0 ] || die "needs root (BPF, namespaces, sysctl): sudo bash scripts/bench.sh"

# --- state the cleanup trap undoes ------------------------------------------
TRACE_PID=
TAIL_PID=
IPERF_CLIENT_PID=
LAB_UP=0
STATS_OLD=
IPERF_PIDFILE=$OUT/iperf3-server.pid

stop_trace() {
	if [ -n "$TRACE_PID" ]; then
		if kill -0 "$TRACE_PID" 2>/dev/null; then
			kill -INT "$TRACE_PID" 2>/dev/null || true
		fi
		wait "$TRACE_PID" 2>/dev/null || true
		TRACE_PID=
	fi
	if [ -n "$TAIL_PID" ]; then
		# EOF reaches it once the trace is gone; it never blocks long.
		for _ in $(seq 1 50); do
			kill -0 "$TAIL_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill "$TAIL_PID" 2>/dev/null || true
		wait "$TAIL_PID" 2>/dev/null || true
		TAIL_PID=
	fi
}

cleanup() {
	set +e
	stop_trace
	[ -n "$IPERF_CLIENT_PID" ] && kill "$IPERF_CLIENT_PID" 2>/dev/null
	if [ -s "$IPERF_PIDFILE" ]; then
		kill "$(cat "$IPERF_PIDFILE")" 2>/dev/null
		rm -f "$IPERF_PIDFILE"
	fi
	if [ -n "$STATS_OLD" ]; then
		sysctl -qw kernel.bpf_stats_enabled="$STATS_OLD"
	fi
	if [ "$LAB_UP" = 1 ]; then
		"$BIN" lab down --prefix "$PREFIX" >/dev/null 2>&1 ||
			echo "bench.sh: could not remove lab $PREFIX: run '$BIN lab down --prefix $PREFIX'" >&2
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# --- tools --------------------------------------------------------------------
missing=()
for t in iperf3 jq bpftrace; do
	command -v "$t" >/dev/null || missing+=("$t")
done
if [ ${#missing[@]} -gt 0 ]; then
	log "installing ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null ||
		die "could not install ${missing[*]}"
fi
command -v bpftool >/dev/null || die "bpftool not found (Debian/Ubuntu: apt-get install bpftool or linux-tools-common)"
command -v ping >/dev/null || die "ping not found"

# cargo as the invoking user when run through sudo, so target/ stays theirs.
run_cargo() {
	if [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then
		sudo -u "$SUDO_USER" -H bash -lc 'cd "$0" && cargo "$@"' "$ROOT" "$@"
	else
		(cd "$ROOT" && cargo "$@")
	fi
}
command -v cargo >/dev/null || PATH=$HOME/.cargo/bin:$PATH

mkdir -p "$OUT"
rm -f "$OUT"/*.json "$OUT"/*.err "$OUT"/*.txt "$OUT"/*.tsv "$OUT"/*.wall "$OUT/trace.fifo"

# --- 1. userspace ---------------------------------------------------------------
if [ "${BENCH_SKIP_CARGO:-0}" != 1 ]; then
	log "cargo build --release (and the control, examples/empty_hooks)"
	run_cargo build --release --bin hopscope --example empty_hooks 2>&1 | tail -n 1 >&2
	log "cargo bench --bench pipeline (about a minute)"
	run_cargo bench --bench pipeline 2>&1 | tee "$OUT/pipeline.txt" |
		grep -E '^(synthetic|allocations|decode)|thrpt' >&2
fi
[ -x "$BIN" ] || die "$BIN missing: cargo build --release"

# Middle figure of criterion's "thrpt: [low mid high]" after a group's name.
thrpt() {
	awk -v g="$1/" '
		index($0, g) == 1 { want = 1 }
		want && /thrpt:/ {
			sub(/.*thrpt: *\[/, ""); split($0, f, " ");
			printf "%s %s\n", f[3], f[4]; exit
		}' "$OUT/pipeline.txt" 2>/dev/null
}

# --- helpers ------------------------------------------------------------------------
# Starts `hopscope trace --json ARGS...` in the background, stdout to OUT and
# stderr to ERR, and waits until it is attached (TRACE_PID, for stop_trace).
start_trace() {
	local out=$1 err=$2
	shift 2
	"$BIN" trace --json "$@" --duration "$TRACE_LIMIT_SECS" >"$out" 2>"$err" &
	TRACE_PID=$!
	wait_attached "$TRACE_PID" || die "trace did not attach: $(cat "$err")"
}

# The seed's way (tracepkt, DESIGN.md): bpftrace printing its four
# tracepoints. bpftrace reads tracepoint formats from tracefs, which may be
# unmounted here: it gets a private mount namespace with tracefs mounted.
SEED_TRACEPOINTS="tracepoint:net:net_dev_queue,tracepoint:net:netif_receive_skb_entry,tracepoint:net:netif_rx,tracepoint:net:napi_gro_receive_entry"
start_seed_bpftrace() {
	unshare -m sh -c 'mount -t tracefs nodev /sys/kernel/tracing && exec bpftrace -e "$0"' \
		"$SEED_TRACEPOINTS { printf(\"%s %s %lx %u\\n\", probe, str(args->name), args->skbaddr, args->len); }" \
		>/dev/null 2>"$OUT/bpftrace.err" &
	TRACE_PID=$!
	local i n
	for i in $(seq 1 300); do
		kill -0 "$TRACE_PID" 2>/dev/null || die "bpftrace did not start: $(cat "$OUT/bpftrace.err")"
		n=$(prog_ids "$TRACE_PID" | jq length)
		[ "$n" -ge 4 ] && return 0
		sleep 0.1
	done
	die "bpftrace did not attach: $(cat "$OUT/bpftrace.err")"
}

# Starts the control (empty programs on hopscope's tracepoints) like start_trace.
start_empty_hooks() {
	"$EMPTY_HOOKS" 2>"$OUT/empty-hooks.err" &
	TRACE_PID=$!
	wait_attached "$TRACE_PID" || die "empty_hooks did not attach: $(cat "$OUT/empty-hooks.err")"
}

# Waits until the trace process holds its BPF links (attached), 30 s at most.
wait_attached() {
	local pid=$1 n prev=-1 i
	for i in $(seq 1 300); do
		kill -0 "$pid" 2>/dev/null || return 1
		n=$(find "/proc/$pid/fd" -lname 'anon_inode:bpf_link' 2>/dev/null | wc -l)
		if [ "$n" -ge 4 ] && [ "$n" = "$prev" ]; then
			return 0
		fi
		prev=$n
		sleep 0.1
	done
	return 1
}

# Ids of the BPF programs the process holds, as a JSON array. Read from its
# fdinfo, so programs of any other hopscope running meanwhile are not mixed in.
prog_ids() {
	# grep exits 2 when an fd closes while it reads; the ids are there anyway.
	{ grep -h '^prog_id:' /proc/"$1"/fdinfo/* 2>/dev/null || true; } | awk '{print $2}' | sort -un | jq -sc .
}

# run_cnt and run_time_ns of those programs now.
snapshot() {
	bpftool prog show -j | jq -c --argjson ids "$1" \
		'[.[] | select(.id as $i | any($ids[]; . == $i))
		      | {name, cnt: (.run_cnt // 0), ns: (.run_time_ns // 0)}]'
}

# Per-program difference of two snapshots: name runs total_ns ns_per_run.
delta() {
	jq -rn --argjson a "$1" --argjson b "$2" '
		$b[] | . as $p | ($a[] | select(.name == $p.name)) as $q
		| ($p.cnt - $q.cnt) as $runs | ($p.ns - $q.ns) as $ns
		| [$p.name, $runs, $ns, (if $runs > 0 then ($ns / $runs | round) else "-" end)] | @tsv'
}

# CPU time (user + system, all threads) a live process has used, in seconds.
cpu_secs() {
	awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' "/proc/$1/stat" 2>/dev/null ||
		echo "?"
}

now_ns() { date +%s%N; }

# One iperf3 run c1 -> c2; prints the receiver's Gbit/s.
iperf_run() {
	local tag=$1
	ip netns exec "$PREFIX-c1" iperf3 -c "$C2_ADDR" -t "$IPERF_SECS" -J >"$OUT/iperf-$tag.json" ||
		die "iperf3 failed ($tag): $(jq -r '.error // empty' "$OUT/iperf-$tag.json" 2>/dev/null)"
	jq -r '.end.sum_received.bits_per_second / 1e9 | . * 100 | round / 100' "$OUT/iperf-$tag.json"
}

median() {
	sort -g | awk '{ v[NR] = $1 } END {
		if (NR == 0) { print "-"; exit }
		if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# --- lab --------------------------------------------------------------------------
log "lab up --prefix $PREFIX"
LAB_UP=1
"$BIN" lab up --prefix "$PREFIX" >"$OUT/lab.txt" 2>&1 || die "lab up failed: $(tail -n 3 "$OUT/lab.txt")"
ip netns exec "$PREFIX-c1" ping -c 3 -i 0.2 -W 1 -q "$C2_ADDR" >/dev/null || die "lab: c1 cannot reach c2"
ip netns exec "$PREFIX-c2" iperf3 -s -D --pidfile "$IPERF_PIDFILE" -B "$C2_ADDR"
for _ in $(seq 1 50); do
	[ -s "$IPERF_PIDFILE" ] && ip netns exec "$PREFIX-c2" ss -Hltn "sport = :5201" | grep -q . && break
	sleep 0.1
done

# --- 2. kernel cost per hook ----------------------------------------------------
log "kernel cost: bpf_stats_enabled=1, trace --json > /dev/null; ping then iperf3"
STATS_OLD=$(sysctl -n kernel.bpf_stats_enabled)
sysctl -qw kernel.bpf_stats_enabled=1
start_trace /dev/null "$OUT/trace-kernel.err"
IDS=$(prog_ids "$TRACE_PID")
t0=$(now_ns)
s0=$(snapshot "$IDS")
ip netns exec "$PREFIX-c1" ping -c "$PING_COUNT" -i 0.002 -q "$C2_ADDR" >"$OUT/ping.txt"
s1=$(snapshot "$IDS")
t1=$(now_ns)
ip netns exec "$PREFIX-c1" iperf3 -c "$C2_ADDR" -t "$IPERF_SECS" -J >"$OUT/iperf-kernel.json" ||
	die "iperf3 failed (kernel phase)"
s2=$(snapshot "$IDS")
t2=$(now_ns)
stop_trace
sysctl -qw kernel.bpf_stats_enabled="$STATS_OLD"
delta "$s0" "$s1" >"$OUT/kernel-ping.tsv"
delta "$s1" "$s2" >"$OUT/kernel-iperf.tsv"
echo "$((t1 - t0))" >"$OUT/kernel-ping.wall"
echo "$((t2 - t1))" >"$OUT/kernel-iperf.wall"

log "kernel cost with --filter '$NOMATCH' (nothing matches): iperf3"
sysctl -qw kernel.bpf_stats_enabled=1
start_trace "$OUT/trace-filtered.json" "$OUT/trace-filtered.err" --filter "$NOMATCH"
IDS=$(prog_ids "$TRACE_PID")
s0=$(snapshot "$IDS")
t0=$(now_ns)
ip netns exec "$PREFIX-c1" iperf3 -c "$C2_ADDR" -t "$IPERF_SECS" -J >"$OUT/iperf-kernel-filtered.json" ||
	die "iperf3 failed (filtered kernel phase)"
s1=$(snapshot "$IDS")
t1=$(now_ns)
stop_trace
sysctl -qw kernel.bpf_stats_enabled="$STATS_OLD"
delta "$s0" "$s1" >"$OUT/kernel-filtered.tsv"
echo "$((t1 - t0))" >"$OUT/kernel-filtered.wall"

# --- 3. live overhead ---------------------------------------------------------------
log "live overhead: iperf3 ${IPERF_SECS}s x $RUNS, tracer off / on / filtered alternating"
OFF=()
ON=()
FILTERED=()
CONTROL=()
SEED=()
SUMMARIES=()
[ -x "$EMPTY_HOOKS" ] || die "$EMPTY_HOOKS missing: cargo build --release --example empty_hooks"
for i in $(seq 1 "$RUNS"); do
	OFF+=("$(iperf_run "off-$i")")
	log "  run $i off: ${OFF[-1]} Gbit/s"

	start_empty_hooks
	CONTROL+=("$(iperf_run "control-$i")")
	stop_trace
	log "  run $i control (empty programs): ${CONTROL[-1]} Gbit/s"

	start_seed_bpftrace
	SEED+=("$(iperf_run "seed-$i")")
	stop_trace
	log "  run $i seed's way (bpftrace): ${SEED[-1]} Gbit/s"

	start_trace /dev/null "$OUT/trace-filtered-$i.err" --filter "$NOMATCH"
	FILTERED+=("$(iperf_run "filtered-$i")")
	stop_trace
	log "  run $i filtered: ${FILTERED[-1]} Gbit/s"

	# JSON goes through a pipe to a consumer (tail keeps the summary line).
	summary=$OUT/summary-on-$i.json
	rm -f "$OUT/trace.fifo"
	mkfifo "$OUT/trace.fifo"
	tail -n 1 <"$OUT/trace.fifo" >"$summary" &
	TAIL_PID=$!
	start_trace "$OUT/trace.fifo" "$OUT/trace-on-$i.err"
	cpu0=$(cpu_secs "$TRACE_PID")
	tcpu0=$(cpu_secs "$TAIL_PID")
	ON+=("$(iperf_run "on-$i")")
	cpu1=$(cpu_secs "$TRACE_PID")
	tcpu1=$(cpu_secs "$TAIL_PID")
	stop_trace
	rm -f "$OUT/trace.fifo"
	s=$(jq -r 'select(.type == "summary")
		| "\(.emitted) \(.received) \(.lost) \(.channel_dropped)"' "$summary" 2>/dev/null || true)
	s="${s:-? ? ? ?} $(awk -v a="$cpu0" -v b="$cpu1" -v c="$tcpu0" -v d="$tcpu1" \
		'BEGIN { printf "%.2f %.2f", b - a, d - c }')"
	SUMMARIES+=("$s")
	log "  run $i on:  ${ON[-1]} Gbit/s; emitted received lost dropped hopscope-cpu-s tail-cpu-s: $s"
done

# --- 4. the filter in paired windows ------------------------------------------------
# iperf3 on this kind of machine drifts by several percent from one minute to
# the next, as much as the cost measured here. So: one long iperf3 run, and
# two arms attached in turn, each for a window and then detached for one:
# the filtered tracer, and the control (examples/empty_hooks: a program that
# returns at once on each of the same tracepoints), which gives the floor any
# tracer on these hooks pays before doing any work. A window with an arm
# attached runs from 0.5 s after it attached to its stop; the window without
# it from 0.5 s after it exited, 2.5 s long. iperf3 reports every 0.5 s, and
# a report counts for a window if it lies inside it. A cycle's ratio is the
# mean throughput of its "on" reports over that of its "off" reports; the
# result is the median over cycles, per arm.
PAIRED_SECS=${BENCH_PAIRED_SECS:-300}
if [ "$PAIRED_SECS" -gt 0 ]; then
	[ -x "$EMPTY_HOOKS" ] || die "$EMPTY_HOOKS missing: cargo build --release --example empty_hooks"
	log "paired windows: iperf3 ${PAIRED_SECS}s; --filter '$NOMATCH', then empty programs, each on 2.5 s / off 2.5 s"
	: >"$OUT/paired-windows.txt"
	now_s() { awk -v t="$(now_ns)" -v t0="$1" 'BEGIN { printf "%.3f", (t - t0) / 1e9 }'; }
	t0=$(now_ns)
	ip netns exec "$PREFIX-c1" iperf3 -c "$C2_ADDR" -t "$PAIRED_SECS" -i 0.5 -J >"$OUT/iperf-paired.json" &
	IPERF_CLIENT_PID=$!
	sleep 2
	while [ "$(( ($(now_ns) - t0) / 1000000000 ))" -lt "$((PAIRED_SECS - 14))" ]; do
		for arm in filtered empty; do
			if [ "$arm" = filtered ]; then
				start_trace /dev/null "$OUT/trace-paired.err" --filter "$NOMATCH"
			else
				start_empty_hooks
			fi
			sleep 0.5
			a=$(now_s "$t0")
			sleep 2.5
			b=$(now_s "$t0")
			stop_trace
			sleep 0.5
			c=$(now_s "$t0")
			sleep 2.5
			d=$(now_s "$t0")
			echo "$arm $a $b $c $d" >>"$OUT/paired-windows.txt"
		done
	done
	wait "$IPERF_CLIENT_PID" || die "iperf3 failed (paired windows)"
	IPERF_CLIENT_PID=
	# Reports are timed from the test's start, a few ms after t0.
	jq -r '.intervals[].sum | "\(.start) \(.end) \(.bits_per_second / 1e9)"' "$OUT/iperf-paired.json" |
		awk 'NR == FNR { arm[FNR] = $1; a[FNR] = $2; b[FNR] = $3; c[FNR] = $4; d[FNR] = $5; n = FNR; next }
			{ s = $1 + 0.02; e = $2 + 0.02
			  for (i = 1; i <= n; i++) {
				if (s >= a[i] && e <= b[i]) { on[i] += $3; non[i]++ }
				if (s >= c[i] && e <= d[i]) { off[i] += $3; noff[i]++ }
			  } }
			END { for (i = 1; i <= n; i++) if (non[i] && noff[i])
				printf "%s %.4f %.2f %.2f\n", arm[i], (on[i] / non[i]) / (off[i] / noff[i]), on[i] / non[i], off[i] / noff[i] }' \
			"$OUT/paired-windows.txt" - >"$OUT/paired-ratios.txt"
fi

# --- results ------------------------------------------------------------------------
{
	echo
	echo "hopscope benchmarks: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), Linux $(uname -r)"
	echo
	if [ -s "$OUT/pipeline.txt" ]; then
		echo "userspace, one core, 1M synthetic events (criterion median)"
		printf '  %-20s %s\n' "decode" "$(thrpt decode)"
		printf '  %-20s %s\n' "decode+correlate" "$(thrpt decode+correlate)"
		printf '  %s\n' "$(grep -m1 -o '^allocations per event (steady state): [0-9.]*' "$OUT/pipeline.txt")"
		echo
	fi
	for phase in ping iperf filtered; do
		case $phase in
		ping) echo "kernel, ns per invocation: lab ping ($PING_COUNT x 2 ms)" ;;
		iperf) echo "kernel, ns per invocation: iperf3 TCP c1 -> c2 (${IPERF_SECS}s)" ;;
		filtered) echo "kernel, ns per invocation: iperf3 TCP c1 -> c2 (${IPERF_SECS}s), --filter '$NOMATCH' (every packet rejected)" ;;
		esac
		printf '  %-28s %-9s %10s %8s\n' program emits runs ns/run
		sort "$OUT/kernel-$phase.tsv" | while IFS=$'\t' read -r name runs _ ns; do
			case $name in
			hs_net_dev_queue | hs_netif_rx | hs_netif_receive_skb | hs_napi_gro_receive_entry) e=always ;;
			*) e=followed ;;
			esac
			printf '  %-28s %-9s %10s %8s\n' "$name" "$e" "$runs" "$ns"
		done
		awk -F'\t' -v wall="$(cat "$OUT/kernel-$phase.wall")" '{ t += $3 } END {
			printf "  all programs: %.0f ms of CPU in %.1f s (%.1f%% of one CPU)\n",
				t / 1e6, wall / 1e9, 100 * t / wall }' "$OUT/kernel-$phase.tsv"
		awk -F'\t' '$1 ~ /^hs_(net_dev_queue|netif_rx|netif_receive_skb|napi_gro_receive_entry|net_dev_xmit|consume_skb|kfree_skb)$/ {
			r += $2; t += $3 } END { if (r) printf "  device and free hooks together: %.0f ns per run\n", t / r }' "$OUT/kernel-$phase.tsv"
		echo
	done
	off_med=$(printf '%s\n' "${OFF[@]}" | median)
	on_med=$(printf '%s\n' "${ON[@]}" | median)
	filt_med=$(printf '%s\n' "${FILTERED[@]}" | median)
	ctl_med=$(printf '%s\n' "${CONTROL[@]}" | median)
	seed_med=$(printf '%s\n' "${SEED[@]}" | median)
	echo "live overhead: iperf3 c1 -> c2, Gbit/s, $RUNS runs each, alternating"
	printf '  %-10s %-24s %s\n' "tracer" "runs" "median"
	printf '  %-10s %-24s %s\n' "off" "${OFF[*]}" "$off_med"
	printf '  %-10s %-24s %s\n' "on" "${ON[*]}" "$on_med"
	printf '  %-10s %-24s %s\n' "filtered" "${FILTERED[*]}" "$filt_med"
	printf '  %-10s %-24s %s\n' "control" "${CONTROL[*]}" "$ctl_med"
	printf '  %-10s %-24s %s\n' "bpftrace" "${SEED[*]}" "$seed_med"
	echo "  on/off ratio of medians: $(awk -v a="$on_med" -v b="$off_med" 'BEGIN { printf "%.2f", a / b }')"
	echo "  filtered/off ratio of medians (--filter '$NOMATCH'): $(awk -v a="$filt_med" -v b="$off_med" 'BEGIN { printf "%.3f", a / b }')"
	echo "  control/off (empty programs, the floor): $(awk -v a="$ctl_med" -v b="$off_med" 'BEGIN { printf "%.3f", a / b }')"
	echo "  bpftrace/off (the seed's way: four tracepoints printed): $(awk -v a="$seed_med" -v b="$off_med" 'BEGIN { printf "%.2f", a / b }')"
	echo
	if [ -s "$OUT/paired-ratios.txt" ]; then
		echo "paired windows: iperf3 c1 -> c2 for ${PAIRED_SECS}s, each arm attached 2.5 s / detached 2.5 s in turn"
		for arm in filtered empty; do
			case $arm in
			filtered) echo "  --filter '$NOMATCH' (hopscope, every packet rejected)" ;;
			empty) echo "  empty programs on the same tracepoints (examples/empty_hooks: the floor)" ;;
			esac
			awk -v arm="$arm" '$1 == arm { n++; r = $2; s += r; ss += r * r; on += $3; off += $4 } END {
				if (!n) { print "    no cycles"; exit }
				m = s / n; sd = n > 1 ? sqrt((ss - n * m * m) / (n - 1)) : 0
				printf "    cycles %d; mean Gbit/s attached %.2f, detached %.2f\n", n, on / n, off / n
				printf "    attached/detached per cycle: mean %.3f, standard error %.3f\n", m, sd / sqrt(n) }' \
				"$OUT/paired-ratios.txt"
			echo "    attached/detached per cycle: median $(awk -v arm="$arm" '$1 == arm { print $2 }' "$OUT/paired-ratios.txt" | median | awk '{ printf "%.3f", $1 }')"
		done
		echo
	fi
	echo "traced runs: summary counters, and CPU seconds of hopscope and of its JSON consumer during iperf3"
	echo "  (emitted received lost channel_dropped hopscope-cpu-s tail-cpu-s)"
	for i in "${!SUMMARIES[@]}"; do
		echo "  run $((i + 1)): ${SUMMARIES[$i]}" |
			awk '{ cpu = ($7 != "?" && $3 > 0) ? sprintf("; hopscope CPU per event %.2f us", $7 / $3 * 1e6) : ""; print $0 cpu }'
	done
} | tee "$OUT/results.txt"

# --- 5. the explorer under load (its own lab, tmux) ------------------------------
if [ "${BENCH_SKIP_TUI:-0}" != 1 ]; then
	BENCH_SKIP_BUILD=1 bash "$ROOT/scripts/bench-tui.sh"
fi
