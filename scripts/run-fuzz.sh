#!/bin/bash
# Run every libFuzzer target of a -Dfuzz=true build for FUZZ_SECONDS each
# (default 20), starting from a scratch copy of its seed corpus so the tree
# is never modified.  Prints one "fuzz <name>: ok|FAIL" line per target and
# exits non-zero if any target crashed.  Usage: scripts/run-fuzz.sh BUILD_DIR
set -uo pipefail

BUILD=${1:?usage: run-fuzz.sh BUILD_DIR}
SECONDS_EACH=${FUZZ_SECONDS:-20}
SRC=$(cd "$(dirname "$0")/.." && pwd)
export ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

BUILD=$(cd "$BUILD" && pwd)
failed=0
shopt -s nullglob
targets=()
for t in "$BUILD"/tests/fuzz/fuzz-*; do
    [ -f "$t" ] && [ -x "$t" ] && targets+=("$t")
done
for t in "${targets[@]}"; do
    name=${t##*/fuzz-}
    work=$(mktemp -d "${TMPDIR:-/tmp}/qimg-fuzz.XXXXXX")
    mkdir -p "$work/corpus"
    if [ -d "$SRC/tests/fuzz/corpus/$name" ]; then
        cp -r "$SRC/tests/fuzz/corpus/$name/." "$work/corpus/"
    fi
    if (cd "$work" && "$t" -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 \
            -timeout=10 -print_final_stats=0 corpus >"$work/log" 2>&1); then
        echo "fuzz $name: ok ($(grep -o 'Done [0-9]* runs' "$work/log" | tail -1))"
    else
        echo "fuzz $name: FAIL"
        tail -40 "$work/log"
        for f in "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-*; do
            echo "  input (base64): $(base64 -w0 "$f")"
        done
        failed=$((failed + 1))
    fi
    rm -rf "$work"
done
echo "fuzz: ${#targets[@]} target(s), $failed failed"
[ "$failed" -eq 0 ]
