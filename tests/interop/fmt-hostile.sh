# Helpers for the hostile-input checks of the format tests (sourced after
# lib.sh).

# patch_bytes FILE OFFSET STRUCT-FORMAT VALUE...: overwrite bytes in place, e.g.
#   patch_bytes img 0x40 '<I' 0xdeadbeef
patch_bytes() {
    python3 - "$@" <<'PY' || fail "patch_bytes $*"
import struct, sys
f, off, fmt = sys.argv[1], int(sys.argv[2], 0), sys.argv[3]
vals = [int(v, 0) for v in sys.argv[4:]]
with open(f, "r+b") as fh:
    fh.seek(off)
    fh.write(struct.pack(fmt, *vals))
PY
}

# clean_error WHAT CMD...: CMD must fail with an exit code (not a signal),
# print an error on stderr, and no sanitizer report.
clean_error() {
    local what=$1; shift
    run_tool hostile "$@"
    local rc; rc=$(cat "$T/hostile.rc")
    [ "$rc" -ne 0 ] || check_fail "$what: unexpectedly succeeded"
    [ "$rc" -lt 128 ] || check_fail "$what: killed by a signal (exit $rc)"
    [ -s "$T/hostile.err" ] || check_fail "$what: no error message"
    if grep -qE 'Sanitizer|runtime error|LeakSanitizer' "$T/hostile.err"; then
        check_fail "$what: sanitizer report"
        head -5 "$T/hostile.err" >&2
    fi
}
