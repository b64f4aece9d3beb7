#!/bin/bash
# bitmap on qcow2: every action done by qimg and by qemu-img on copies of
# the same images gives the same bitmaps (names, flags, granularity and
# dirty bits, read from the file), the same info and errors, and images
# the real qemu-img check finds clean.
. "$(dirname "$0")/../lib.sh"
DUMP="python3 $TEST_SRCDIR/interop/qcow2_bitmaps.py"

prep() { # IMG SRC
    rm -f "$1" "$2"
    "$QEMU_IMG" create -q -f qcow2 "$1" 4M
    "$QEMU_IMG" bitmap --add "$1" a
    "$QEMU_IMG" bitmap --add -g 4k "$1" b
    "$QEMU_IO" -c "write 0 100k" -c "write 1M 8k" "$1" >/dev/null
    "$QEMU_IMG" bitmap --disable "$1" b
    "$QEMU_IO" -c "write 2M 64k" "$1" >/dev/null
    "$QEMU_IMG" create -q -f qcow2 "$2" 4M
    "$QEMU_IMG" bitmap --add -g 16k "$2" s
    "$QEMU_IO" -c "write 3M 20k" "$2" >/dev/null
}

prep tmpl.qcow2 tmpl-src.qcow2
both() { # ARGS with IMG and SRC placeholders
    for x in ref got; do cp tmpl.qcow2 $x.qcow2; cp tmpl-src.qcow2 $x-src.qcow2; done
    local a=("$@")
    a=("${a[@]//SRC/@S@}")
    local r=("${a[@]//IMG/ref.qcow2}"); r=("${r[@]//@S@/ref-src.qcow2}")
    local g=("${a[@]//IMG/got.qcow2}"); g=("${g[@]//@S@/got-src.qcow2}")
    run_tool ref "$QEMU_IMG" bitmap "${r[@]}"
    run_tool got "$QIMG" bitmap "${g[@]}"
    sed -i -E 's/^qemu-img: /PROG: /; s/^Try .qemu-img --help./Try HELP/; s/ref(-src)?\.qcow2/X/g; s/#block[0-9]+/NODE/g' "$T/ref.err"
    sed -i -E 's/^qimg: /PROG: /; s/^Try .qimg --help./Try HELP/; s/got(-src)?\.qcow2/X/g' "$T/got.err"
    cmp -s "$T/ref.err" "$T/got.err" || { check_fail "stderr differs: $*"; diff "$T/ref.err" "$T/got.err" >&2; }
    expect_eq "exit code: $*" "$(cat "$T/ref.rc")" "$(cat "$T/got.rc")"
    $DUMP ref.qcow2 >"$T/rb"; $DUMP got.qcow2 >"$T/gb"
    cmp -s "$T/rb" "$T/gb" || { check_fail "bitmaps differ: $*"; diff "$T/rb" "$T/gb" >&2; }
    "$QEMU_IMG" info ref.qcow2 | sed '1d; /^disk size/d' >"$T/ri"
    "$QEMU_IMG" info got.qcow2 | sed '1d; /^disk size/d' >"$T/gi"
    cmp -s "$T/ri" "$T/gi" || { check_fail "info differs: $*"; diff "$T/ri" "$T/gi" >&2; }
    qemu_check_clean got.qcow2
}

both --add IMG n
both --add -g 64k --disable IMG n
both --remove IMG a
both --clear IMG a
both --enable IMG b
both --merge b IMG a
both --merge s -b SRC -F qcow2 IMG b
both --add --merge a IMG c
both --add IMG a
both --remove IMG nonexistent
both --add -g 1000 IMG n
both --disable --add IMG n
both --add IMG
both IMG a
both -g 4k --remove IMG a
both -F qcow2 --merge s IMG a

# compat=0.10 images cannot hold bitmaps.
"$QEMU_IMG" create -q -f qcow2 -o compat=0.10 v2.qcow2 1M
run_tool got "$QIMG" bitmap --add v2.qcow2 x
expect_eq "exit on v2" 1 "$(cat "$T/got.rc")"
grep -q "Cannot store dirty bitmaps in qcow2 v2 files" "$T/got.err" || check_fail "v2 message: $(cat "$T/got.err")"
finish
