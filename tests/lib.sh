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
    sed -i "s/^qemu-img: /PROG: /; s/'qemu-img --help'/'PROG --help'/" "$T/ref.err"
    sed -i "s/^qimg: /PROG: /; s/'qimg --help'/'PROG --help'/" "$T/got.err"
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

# normalise_io FILE: replace the parts of qemu-io's reports that vary from
# run to run (elapsed time and rates) by TIME.
normalise_io() {
    sed -i -E -e 's/^(.*, [0-9]+ ops; ).*$/\1TIME/' \
        -e 's/^([0-9]+,[0-9]+),[0-9:.]+,[0-9.]+,[0-9.]+$/\1,TIME/' "$1"
}

# io_same_as_qemu IMG ARGS... : run `qemu-io ARGS` and `qimg-io ARGS` each
# on its own copy of IMG (the word @IMG@ in ARGS stands for the copy), then
# compare stdout, stderr (program prefix, path and timings normalised), the
# exit code and the two images afterwards: byte for byte, or with
# IO_COMPARE=content by guest-visible content (qemu-img compare) plus a
# clean qemu-img check of qimg-io's copy, for formats whose layout may
# legitimately differ.
io_same_as_qemu() {
    local img=$1; shift
    local a args_ref=() args_got=()
    for a in "$@"; do
        args_ref+=("${a//@IMG@/$T/io-ref.img}")
        args_got+=("${a//@IMG@/$T/io-got.img}")
    done
    if [ -e "$img" ]; then
        cp "$img" "$T/io-ref.img" && cp "$img" "$T/io-got.img" || fail "cannot copy $img"
    else
        rm -f "$T/io-ref.img" "$T/io-got.img"
    fi
    run_tool ioref "$QEMU_IO" "${args_ref[@]}"
    run_tool iogot "$QIMG_IO" "${args_got[@]}"
    local f
    for f in ioref.out ioref.err iogot.out iogot.err; do
        normalise_io "$T/$f"
        sed -i -e "s#$T/io-ref.img#IMG#g; s#$T/io-got.img#IMG#g" \
            -e 's/^qemu-io: /PROG: /; s/^qimg-io: /PROG: /' "$T/$f"
    done
    local ok=1
    cmp -s "$T/ioref.out" "$T/iogot.out" || { ok=0; check_fail "stdout differs for: $*"; diff "$T/ioref.out" "$T/iogot.out" | head -20 >&2; }
    cmp -s "$T/ioref.err" "$T/iogot.err" || { ok=0; check_fail "stderr differs for: $*"; diff "$T/ioref.err" "$T/iogot.err" | head -20 >&2; }
    [ "$(cat "$T/ioref.rc")" = "$(cat "$T/iogot.rc")" ] || { ok=0; check_fail "exit code differs for: $* (qemu-io $(cat "$T/ioref.rc"), qimg-io $(cat "$T/iogot.rc"))"; }
    if [ "${IO_COMPARE:-bytes}" = content ] && [ -e "$T/io-ref.img" ]; then
        "$QEMU_IMG" compare -q "$T/io-ref.img" "$T/io-got.img" 2>"$T/cmp.err" ||
            { ok=0; check_fail "image contents differ after: $* $(cat "$T/cmp.err")"; }
        # Exit 63: the format has no checks (qcow, parallels, ...).
        "$QEMU_IMG" check -q "$T/io-got.img" >"$T/check.out" 2>&1
        case $? in
        0|63) ;;
        *) ok=0; check_fail "qemu-img check after: $*: $(cat "$T/check.out")" ;;
        esac
    elif [ -e "$T/io-ref.img" ] || [ -e "$T/io-got.img" ]; then
        cmp -s "$T/io-ref.img" "$T/io-got.img" || { ok=0; check_fail "image contents differ after: $*"; }
    fi
    [ $ok = 1 ]
}
