#!/usr/bin/env bash
# Coverage-guided fuzzing of hopscope's untrusted-input front ends on stable
# Rust: the targets in fuzz/ are instrumented with rustc's SanitizerCoverage
# pass (trace-pc-guard) and linked with Debian afl++'s runtime and libFuzzer-
# style driver; afl-fuzz (Debian's) runs them in persistent mode.
#
#   scripts/fuzz.sh build                      build the three targets
#   scripts/fuzz.sh run TARGET EXECS [DIR]     fuzz TARGET for EXECS executions
#                                              (output in DIR, default fuzz/out/TARGET)
#   scripts/fuzz.sh ci [SECONDS]               build, then each target from its
#                                              kept corpus for SECONDS (default 60);
#                                              fails on any crash
#   scripts/fuzz.sh keep TARGET [DIR]          minimise DIR's queue into
#                                              fuzz/corpus/TARGET (afl-cmin), copy
#                                              crashes to fuzz/crashes/TARGET
#
# Targets: decode, recording, filter (bodies in src/fuzzing.rs). Every file
# in fuzz/corpus and fuzz/crashes is replayed by tests/fuzz_corpus.rs.
# FUZZ_PROFILE=ci builds with less optimisation (a fresh build in minutes,
# for CI's short run); FUZZ_TARGET_DIR moves the build (default fuzz/target).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

AFL_LIB=/usr/lib/afl
TARGETS=(decode recording filter)
TRIPLE=$(rustc -vV | sed -n 's/^host: //p')
PROFILE=${FUZZ_PROFILE:-release}
TARGET_DIR=${FUZZ_TARGET_DIR:-fuzz/target}
BIN_DIR=$TARGET_DIR/$TRIPLE/$PROFILE

export AFL_SKIP_CPUFREQ=1 AFL_NO_UI=1 AFL_NO_AFFINITY=1
export AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_SKIP_CRASHES=1

build() {
    for f in libAFLDriver.a afl-compiler-rt.o; do
        [[ -e $AFL_LIB/$f ]] || { echo "fuzz: $AFL_LIB/$f missing (apt-get install afl++)" >&2; exit 1; }
    done
    # --target keeps these flags off build scripts and proc macros.
    RUSTFLAGS="-C passes=sancov-module \
-C llvm-args=-sanitizer-coverage-level=3 \
-C llvm-args=-sanitizer-coverage-trace-pc-guard \
-C llvm-args=-sanitizer-coverage-prune-blocks=0 \
-C codegen-units=1 --cfg fuzzing \
-C link-arg=$AFL_LIB/libAFLDriver.a -C link-arg=$AFL_LIB/afl-compiler-rt.o" \
        cargo build --quiet --profile "$PROFILE" --manifest-path fuzz/Cargo.toml \
        --target "$TRIPLE" --target-dir "$TARGET_DIR"
}

# Input directory for a target: the kept corpus, else the seeds.
inputs() {
    if compgen -G "fuzz/corpus/$1/*" >/dev/null; then
        echo "fuzz/corpus/$1"
    else
        echo "fuzz/seeds/$1"
    fi
}

# afl-fuzz with either an execution count (-E) or a time limit (-V).
fuzz() {
    local target=$1 out=$2
    shift 2
    local dict=() isolate=()
    # libpcap resolves host names in expressions (DNS): the filter target
    # runs in a network namespace of its own, where every lookup fails at
    # once and nothing leaves the machine.
    if [[ $target == filter ]]; then
        dict=(-x fuzz/filter.dict)
        isolate=(unshare --net)
    fi
    "${isolate[@]}" afl-fuzz -i "$(inputs "$target")" -o "$out" "${dict[@]}" -t 2000 "$@" -- "$BIN_DIR/$target"
}

crashes_in() {
    find "$1" -path '*/crashes/id:*' -type f 2>/dev/null | wc -l
}

stats() {
    local f=$1/default/fuzzer_stats
    [[ -e $f ]] || return 0
    grep -E '^(execs_done|execs_per_sec|corpus_count|saved_crashes|saved_hangs|run_time|bitmap_cvg) ' "$f" |
        sed 's/ *: /=/' | tr '\n' ' '
    echo
}

case ${1:-} in
build)
    build
    ;;
run)
    target=${2:?target}
    execs=${3:?executions}
    out=${4:-fuzz/out/$target}
    build
    rm -rf "$out"
    fuzz "$target" "$out" -E "$execs" >"$out.log" 2>&1 || true
    echo "fuzz $target: $(stats "$out")"
    ;;
keep)
    target=${2:?target}
    out=${3:-fuzz/out/$target}
    mkdir -p "fuzz/corpus/$target.new"
    AFL_PATH=$AFL_LIB afl-cmin -i "$out/default/queue" -o "fuzz/corpus/$target.new" -- "$BIN_DIR/$target" >/dev/null
    rm -rf "fuzz/corpus/$target"
    mv "fuzz/corpus/$target.new" "fuzz/corpus/$target"
    # Names that git and every filesystem take.
    (cd "fuzz/corpus/$target" && for f in *; do mv -n "$f" "$(sha1sum <"$f" | cut -c1-16)"; done)
    if compgen -G "$out/default/crashes/id:*" >/dev/null; then
        mkdir -p "fuzz/crashes/$target"
        for f in "$out"/default/crashes/id:*; do
            cp "$f" "fuzz/crashes/$target/$(sha1sum <"$f" | cut -c1-16)"
        done
    fi
    ls "fuzz/corpus/$target" | wc -l
    ;;
ci)
    secs=${2:-60}
    build
    status=0
    for t in "${TARGETS[@]}"; do
        out=$(mktemp -d /tmp/hopscope-fuzz-$t.XXXXXX)
        fuzz "$t" "$out/o" -V "$secs" >"$out/log" 2>&1 || { tail -20 "$out/log"; status=1; }
        n=$(crashes_in "$out/o")
        echo "fuzz $t (${secs}s): $(stats "$out/o")"
        if ((n > 0)); then
            echo "fuzz $t: $n crashing inputs; kept in $out/o/default/crashes" >&2
            status=1
        else
            rm -rf "$out"
        fi
    done
    exit $status
    ;;
*)
    sed -n '2,20p' "$0" >&2
    exit 2
    ;;
esac
