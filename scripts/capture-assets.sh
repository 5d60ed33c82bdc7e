#!/usr/bin/env bash
# Regenerates the README's visual assets in assets/ from the real binary:
# plain-text screen captures of the explorer (assets/screen-*.txt) and an
# asciinema v2 recording of the whole tour (assets/demo.cast).
#
# It builds hopscope (release), runs `hopscope demo --prefix hsa` under
# asciinema inside a private, detached tmux server (socket `hsassets`) with a
# 140x40 pane and TERM=xterm-256color, drives a short tour with send-keys and
# saves `tmux capture-pane -p` at each stop. Nothing is edited by hand: the
# captures are exactly what the binary drew.
#
# Needs root (the demo builds network namespaces and loads BPF programs).
# Idempotent: a leftover lab or tmux server from an earlier run is removed
# first, and the files in assets/ are only replaced once the whole tour has
# succeeded and the recording has been validated. On any exit the tmux
# server, the demo and its lab are gone.
#
#   sudo ./scripts/capture-assets.sh
#
# Environment: CARGO_TARGET_DIR (default ./target), TRAFFIC_SECS (seconds of
# traffic before the first capture, default 4), PAUSE (seconds spent on each
# screen, default 2.5).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
# UTF-8 for tmux, asciinema and the box-drawing characters we wait for.
export LC_ALL=C.UTF-8

PREFIX=hsa
SOCKET=hsassets
SESSION=tour
COLS=140
ROWS=40
ASSETS=$ROOT/assets
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET_DIR/release/hopscope
TRAFFIC_SECS=${TRAFFIC_SECS:-4}
PAUSE=${PAUSE:-2.5}
MAX_CAST_BYTES=$((3 * 1024 * 1024))

log() { printf 'capture-assets: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

[[ $(id -u) -eq 0 ]] || die "needs root (the demo builds namespaces and loads BPF): sudo $0"

# --- tools -----------------------------------------------------------------
missing=()
command -v tmux >/dev/null || missing+=(tmux)
command -v asciinema >/dev/null || missing+=(asciinema)
command -v jq >/dev/null || missing+=(jq)
if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi
export PATH="$HOME/.cargo/bin:$PATH"

tm() { tmux -L "$SOCKET" -f /dev/null "$@"; }

# --- cleanup ---------------------------------------------------------------
WORK=$(mktemp -d)
TOUR_PIDS=() # the pane's process tree (asciinema, the demo)

alive() {
    local p
    for p in "${TOUR_PIDS[@]}"; do
        kill -0 "$p" 2>/dev/null && return 0
    done
    return 1
}

cleanup() {
    local rc=$?
    set +e
    # Killing the server hangs up the pane: the demo treats SIGHUP like `q`
    # (detaches its programs, removes its lab).
    tm kill-server 2>/dev/null
    local deadline=$((SECONDS + 15))
    while alive && ((SECONDS < deadline)); do sleep 0.2; done
    if alive; then
        log "the demo did not exit after the hang-up; terminating it"
        for p in "${TOUR_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
        sleep 3
        for p in "${TOUR_PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
    fi
    if [[ -x $BIN ]]; then
        "$BIN" lab down --prefix "$PREFIX" >/dev/null 2>&1 ||
            log "warning: lab down --prefix $PREFIX failed"
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# --- build -----------------------------------------------------------------
log "building (release, target dir $TARGET_DIR)"
cargo build --release --quiet
[[ -x $BIN ]] || die "no binary at $BIN"

# Leftovers of an interrupted run.
tm kill-server 2>/dev/null || true
"$BIN" lab down --prefix "$PREFIX" >/dev/null 2>&1 || true

# --- tmux helpers ----------------------------------------------------------
screen() { tm capture-pane -p -t "$SESSION"; }

# wait_for REGEX [SECS]: until the pane shows REGEX (grep -E), or fail.
wait_for() {
    local re=$1 secs=${2:-10}
    local deadline=$((SECONDS + secs))
    while ((SECONDS < deadline)); do
        if [[ $(tm display-message -p -t "$SESSION" '#{pane_dead}') == 1 ]]; then
            screen >&2 || true
            die "the demo exited while waiting for /$re/"
        fi
        screen | grep -Eq -- "$re" && return 0
        sleep 0.2
    done
    log "timed out after ${secs}s waiting for /$re/; the pane shows:"
    screen >&2 || true
    exit 1
}

# wait_gone REGEX [SECS]: until the pane no longer shows REGEX.
wait_gone() {
    local re=$1 secs=${2:-10}
    local deadline=$((SECONDS + secs))
    while ((SECONDS < deadline)); do
        screen | grep -Eq -- "$re" || return 0
        sleep 0.2
    done
    screen >&2 || true
    die "timed out after ${secs}s waiting for /$re/ to go away"
}

keys() { tm send-keys -t "$SESSION" "$@"; }
text() { tm send-keys -t "$SESSION" -l -- "$1"; }
pause() { sleep "${1:-$PAUSE}"; }

# snap NAME: the pane as plain text, as drawn by the binary.
snap() {
    screen >"$WORK/screen-$1.txt"
    log "captured screen-$1.txt"
}

descendants() {
    local p=$1 c
    echo "$p"
    for c in $(ps -o pid= --ppid "$p" 2>/dev/null); do descendants "$c"; done
}

# --- the tour --------------------------------------------------------------
DEMO="$BIN demo --prefix $PREFIX"
CAST=$WORK/demo.cast
REC="asciinema rec --overwrite -q --cols $COLS --rows $ROWS -c '$DEMO' '$CAST'"

log "starting the demo in tmux (${COLS}x${ROWS}) under asciinema"
tm new-session -d -s "$SESSION" -x "$COLS" -y "$ROWS" \
    "cd '$ROOT' && exec env TERM=xterm-256color $REC" \; \
    set-option -g status off \; \
    set-option -g remain-on-exit on \; \
    set-option -g default-terminal xterm-256color
size=$(tm display-message -p -t "$SESSION" '#{pane_width}x#{pane_height}')
[[ $size == "${COLS}x${ROWS}" ]] || die "pane is $size, expected ${COLS}x${ROWS}"

# Flows appear once the lab is up and the first traffic round has run.
wait_for '^(icmp|icmp6|udp|tcp) ' 60
# Only the long-lived processes: the demo's short-lived children (ping) exit
# and their pids may be reused by anything.
mapfile -t TOUR_PIDS < <(descendants "$(tm display-message -p -t "$SESSION" '#{pane_pid}')" |
    while read -r p; do
        case $(ps -o comm= -p "$p" 2>/dev/null) in hopscope | asciinema*) echo "$p" ;; esac
    done)
((${#TOUR_PIDS[@]})) || die "no hopscope process found in the pane"
pause "$TRAFFIC_SECS"
snap flows

# The TCP flows through the router namespace.
keys /
wait_for '^ /'
text 198.18.1.2:8008
pause 1
keys Enter
wait_for '^ search: 198\.18\.1\.2:8008'
wait_for '^tcp .*198\.18\.1\.2:8008'
pause
# The third connection is over 2 s old: all its packets have finished.
keys j
pause 0.5
keys j
pause

keys Enter # its packets
wait_for '^ Packets \('
pause
snap packets

keys Enter # the hops of one packet
wait_for '^ hopscope .* › packet [0-9]+'
pause
snap hops

keys Tab
wait_for '\[hop graph\]'
pause
snap graph

keys Tab
wait_for '\[path statistics\]'
pause
snap paths

keys Escape # back to the packets
wait_for '^ Packets \('
pause 1
keys Escape # back to the flows
wait_for '^ Flows \('
pause

keys r # hide requests
wait_for '^ hopscope .*│ replies *$'
pause
keys r # show them again
wait_for '^ hopscope .*│ requests replies *$'
pause 1

keys '?'
wait_for '╭ keys '
pause
snap help
keys Space # any key closes the help
wait_gone '╭ keys '
pause 1

keys q
deadline=$((SECONDS + 30))
until [[ $(tm display-message -p -t "$SESSION" '#{pane_dead}') == 1 ]]; do
    ((SECONDS < deadline)) || die "the demo did not exit after q"
    sleep 0.2
done
# tmux 3.3 leaves pane_dead_status empty for status 0.
status=$(tm display-message -p -t "$SESSION" '#{pane_dead_status}/#{pane_dead_signal}')
tail=$(screen | grep -v '^$' | tail -n 5)
[[ $status == / || $status == 0/ ]] || die "asciinema/demo exited with status/signal $status: $tail"
grep -q "lab $PREFIX removed" <<<"$tail" || log "warning: the demo did not report removing its lab: $tail"
tm kill-server

# --- validate the recording ------------------------------------------------
[[ -s $CAST ]] || die "no recording at $CAST"
header=$(head -n 1 "$CAST")
jq -e --argjson w "$COLS" --argjson h "$ROWS" \
    '.version == 2 and .width == $w and .height == $h' <<<"$header" >/dev/null ||
    die "bad cast header: $header"
events=$(tail -n +2 "$CAST" | jq -c 'select(type == "array" and .[1] == "o")' | wc -l)
((events > 0)) || die "the cast has no output events"
bytes=$(stat -c %s "$CAST")
((bytes < MAX_CAST_BYTES)) ||
    die "the cast is $bytes bytes (limit $MAX_CAST_BYTES): shorten the tour (PAUSE, TRAFFIC_SECS)"
duration=$(tail -n 1 "$CAST" | jq '.[0]')
log "cast: $bytes bytes, $events output events, ${duration}s"

# --- publish ---------------------------------------------------------------
mkdir -p "$ASSETS"
for f in "$WORK"/screen-*.txt "$CAST"; do
    install -m 0644 "$f" "$ASSETS/$(basename "$f")"
done

# The demo is gone with its lab and programs.
alive && die "the demo is still running"
if ip netns list | grep -q "^$PREFIX-"; then die "namespaces $PREFIX-* remain"; fi
for p in "${TOUR_PIDS[@]}"; do
    if bpftool prog show 2>/dev/null | grep -q "($p)"; then
        die "BPF programs of pid $p remain"
    fi
done
log "done: $(cd "$ASSETS" && ls screen-*.txt demo.cast | tr '\n' ' ')"
