#!/usr/bin/env bash
# Inside a virtme-ng guest (started by scripts/check-kernel.sh): runs each test
# of the plan OUT/plan ("binary test-name" a line) alone, under a deadline,
# and appends "binary::test passed|failed|timeout SECONDS" to OUT/results.
# OUT is the host directory the guest may write; everything else of the host
# is read-only here. Writes OUT/booted (this kernel's release) first, the
# degraded hooks of a plain trace to OUT/degraded, and OUT/finished last.

set -uo pipefail
OUT=$1
DEADLINE=${TEST_DEADLINE:-420}
uname -r >"$OUT/booted"
: >"$OUT/results"

# /tmp of the guest is an overlay on the host's (9p), and may hold the
# checkout itself: temporary files and sockets (tmux) go to a tmpfs of
# their own under /run (a tmpfs in the guest), nothing is mounted on /tmp.
SCRATCH=/run/hs-guest
mkdir -p "$SCRATCH/tmp" "$SCRATCH/bin" /run/lock
mount -t tmpfs -o mode=1777 tmpfs "$SCRATCH/tmp"
export TMPDIR=$SCRATCH/tmp TMUX_TMPDIR=$SCRATCH/tmp
# Modules the lab and the tests use (autoloading works too; this is earlier).
for m in veth bridge vxlan macvlan tun nf_tables nft_chain_nat nf_nat nf_conntrack \
	iptable_filter iptable_nat ip6_tables; do
	modprobe -q "$m" 2>/dev/null || true
done
sysctl -qw net.ipv4.ip_forward=0 >/dev/null 2>&1 || true

# The stripped executables (OUT/bin) run from the tmpfs; hopscope also
# where the tests look for it (its path is compiled into them).
cp "$OUT"/bin/* "$SCRATCH/bin/"
hopscope=$(realpath -m "$(sed -n '1s/ .*//p' "$OUT/plan" | xargs dirname)/../hopscope")
mount --bind "$SCRATCH/bin/hopscope" "$hopscope"

# The hooks this kernel lacks, as hopscope reports them.
# Its log (libbpf's and the verifier's) is in OUT/probe.err.
if HOPSCOPE_LOG=debug timeout 300 "$hopscope" trace --json -- true >"$SCRATCH/probe.json" 2>"$OUT/probe.err"; then
	python3 - "$SCRATCH/probe.json" >"$OUT/degraded" <<'PY'
import json, sys
summary = [json.loads(l) for l in open(sys.argv[1]) if l.startswith('{"type":"summary"')]
hooks = summary[-1].get("degraded_hooks", []) if summary else ["(no summary)"]
print(", ".join(hooks) if hooks else "none")
PY
else
	echo "unknown (hopscope failed to start: $(tail -n1 "$OUT/probe.err"))" >"$OUT/degraded"
fi

while read -r bin name; do
	[ -n "$bin" ] || continue
	label="$(basename "$bin" | sed 's/-[0-9a-f]*$//')::$name"
	log="$OUT/logs/$label.log"
	t0=$(date +%s)
	timeout --kill-after=10 "$DEADLINE" "$SCRATCH/bin/${bin##*/}" --exact "$name" --test-threads=1 --show-output </dev/null >"$log" 2>&1
	rc=$?
	secs=$(($(date +%s) - t0))
	if ((rc == 0)) && grep -q '^test result: ok. 1 passed' "$log"; then
		result=passed
	elif ((rc == 124 || rc == 137)); then
		result=timeout
	else
		result=failed
	fi
	echo "$label $result $secs" >>"$OUT/results"
	# Whatever a failed test left behind must not disturb the next one.
	for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do ip netns del "$ns" 2>/dev/null; done
done <"$OUT/plan"
echo done >"$OUT/finished"
sync
