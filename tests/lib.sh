# Shared helpers for qimg's shell tests.  Source it first:
#   . "$(dirname "$0")/../lib.sh"
# Provides $QIMG, $QIMG_IO, $QEMU_IMG, $QEMU_IO and a scratch dir $T that is
# removed on exit.  Every helper fails the test (exit 1) with a message.
set -u

: "${QIMG:?QIMG must point to the qimg binary}"
QIMG_IO=${QIMG_IO:-$(dirname "$QIMG")/../tool/qimg-io}
QEMU_IMG=${QEMU_IMG:-qemu-img}
QEMU_IO=${QEMU_IO:-qemu-io}
command -v "$QEMU_IMG" >/dev/null || { echo "qemu-img not installed" >&2; exit 1; }

T=$(mktemp -d "${TMPDIR:-/tmp}/qimg-test.XXXXXX")
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1
TEST_FAILS=0

fail() { echo "FAIL: $*" >&2; exit 1; }

# Record a failed check but keep going; call `finish` at the end.
check_fail() { echo "FAIL: $*" >&2; TEST_FAILS=$((TEST_FAILS + 1)); }
finish() { [ "$TEST_FAILS" -eq 0 ] || { echo "$TEST_FAILS check(s) failed" >&2; exit 1; }; echo ok; exit 0; }

expect_eq() { # expect_eq WHAT EXPECTED ACTUAL
    [ "$2" = "$3" ] || check_fail "$1: expected [$2], got [$3]"
}

# run_tool NAME CMD... : runs CMD, stores stdout/stderr/exit in $T/NAME.{out,err,rc}
run_tool() {
    local name=$1; shift
    "$@" >"$T/$name.out" 2>"$T/$name.err"
    echo $? >"$T/$name.rc"
}

# same_as_qemu ARGS... : run `qemu-img ARGS` and `qimg ARGS` in $T and
# compare stdout, stderr (program prefix normalised) and exit code.
# Images the command writes must be recreated by the caller between runs,
# so use it for read-only commands, or call `same_as_qemu_setup` first.
same_as_qemu() {
    if declare -F same_as_qemu_setup >/dev/null; then same_as_qemu_setup; fi
    run_tool ref "$QEMU_IMG" "$@"
    if declare -F same_as_qemu_setup >/dev/null; then same_as_qemu_setup; fi
    run_tool got "$QIMG" "$@"
    sed -i 's/^qemu-img: /PROG: /' "$T/ref.err"
    sed -i 's/^qimg: /PROG: /' "$T/got.err"
    local ok=1
    cmp -s "$T/ref.out" "$T/got.out" || { ok=0; check_fail "stdout differs for: $*"; diff "$T/ref.out" "$T/got.out" | head -20 >&2; }
    cmp -s "$T/ref.err" "$T/got.err" || { ok=0; check_fail "stderr differs for: $*"; diff "$T/ref.err" "$T/got.err" | head -20 >&2; }
    [ "$(cat "$T/ref.rc")" = "$(cat "$T/got.rc")" ] || { ok=0; check_fail "exit code differs for: $* (qemu-img $(cat "$T/ref.rc"), qimg $(cat "$T/got.rc"))"; }
    [ $ok = 1 ]
}

# images_equal A B [fmtA fmtB]: content equal according to qemu-img compare
images_equal() {
    "$QEMU_IMG" compare ${3:+-f $3} ${4:+-F $4} "$1" "$2" >/dev/null 2>"$T/cmp.err" ||
        check_fail "images differ: $1 $2: $(cat "$T/cmp.err")"
}

# qemu_check_clean IMG [fmt]: the real qemu-img check finds no errors/leaks
qemu_check_clean() {
    "$QEMU_IMG" check ${2:+-f $2} "$1" >"$T/check.out" 2>&1 ||
        check_fail "qemu-img check $1: $(cat "$T/check.out")"
}
