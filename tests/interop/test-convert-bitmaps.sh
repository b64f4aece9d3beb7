#!/bin/bash
# convert --bitmaps: every persistent bitmap of a qcow2 source (name,
# granularity, enabled/disabled, dirty bits) lands in the qcow2 target as
# qemu-img puts it there; inconsistent (in-use) bitmaps stop the
# conversion or, with --skip-broken-bitmaps, are skipped with a warning;
# the errors of qemu-img for targets and sources that cannot hold bitmaps.
. "$(dirname "$0")/../lib.sh"
DUMP="python3 $TEST_SRCDIR/interop/qcow2_bitmaps.py"

# Mark bitmap $2 of qcow2 image $1 in use (flag bit 0 of its directory
# entry), as a crashed writer leaves it.
set_in_use() { python3 "$TEST_SRCDIR/interop/qcow2_bitmap_in_use.py" "$1" "$2"; }

bitmaps_of() { "$QEMU_IMG" info "$1" | sed -n '/bitmaps:/,/refcount bits/p'; }

# Source: three bitmaps with different granularities, one disabled, dirty
# bits from writes made while each was enabled.
"$QEMU_IMG" create -q -f qcow2 src.qcow2 64M
"$QEMU_IMG" bitmap --add src.qcow2 b1
"$QEMU_IMG" bitmap --add -g 128k src.qcow2 b2
"$QEMU_IO" -c "write -P 1 0 1M" -c "write -P 2 10M 64k" src.qcow2 >/dev/null
"$QEMU_IMG" bitmap --disable src.qcow2 b2
"$QEMU_IMG" bitmap --add -g 512 src.qcow2 "b 3"
"$QEMU_IO" -c "write -P 3 20M 4k" -c "write -P 4 63M 1536" src.qcow2 >/dev/null

check_copy() { # check_copy NAME ARGS... (target: NAME.ref / NAME.got)
    local n=$1; shift
    run_tool ref "$QEMU_IMG" convert "$@" "$n.ref"
    run_tool got "$QIMG" convert "$@" "$n.got"
    expect_eq "$n: exit" "$(cat ref.rc)" "$(cat got.rc)"
    expect_eq "$n: stderr" "$(sed 's/^qemu-img:/P:/' ref.err)" "$(sed 's/^qimg:/P:/' got.err)"
    expect_eq "$n: info bitmaps" "$(bitmaps_of "$n.ref")" "$(bitmaps_of "$n.got")"
    expect_eq "$n: bitmap contents" "$($DUMP "$n.ref")" "$($DUMP "$n.got")"
    qemu_check_clean "$n.got"
    images_equal "$n.ref" "$n.got"
}

check_copy plain --bitmaps -O qcow2 src.qcow2
[ "$($DUMP plain.got | wc -l)" = 3 ] || check_fail "three bitmaps expected"
check_copy cluster --bitmaps -O qcow2 -o cluster_size=4k src.qcow2
check_copy compressed --bitmaps -c -O qcow2 src.qcow2

# Into an existing target (-n), and a second time: the names exist.
"$QEMU_IMG" create -q -f qcow2 exist.ref 64M
"$QEMU_IMG" create -q -f qcow2 exist.got 64M
check_copy exist --bitmaps -n -O qcow2 src.qcow2
same_as_qemu_setup() { cp exist.got again.qcow2; }
same_as_qemu convert --bitmaps -n -O qcow2 src.qcow2 again.qcow2
unset -f same_as_qemu_setup

# Inconsistent bitmaps: refused before the target is created; skipped
# with a warning under --skip-broken-bitmaps (also with -q).
cp src.qcow2 inuse.qcow2
set_in_use inuse.qcow2 b2
same_as_qemu convert --bitmaps -O qcow2 inuse.qcow2 refused.qcow2
[ -e refused.qcow2 ] && check_fail "target created despite the refusal"
check_copy skip --bitmaps --skip-broken-bitmaps -O qcow2 inuse.qcow2
check_copy skipq -q --bitmaps --skip-broken-bitmaps -O qcow2 inuse.qcow2
[ "$($DUMP skip.got | cut -d' ' -f1 | tr '\n' ,)" = "b1,b," ] ||
    check_fail "skip: expected b1 and 'b 3', got $($DUMP skip.got)"

# Targets and sources that cannot hold bitmaps.
same_as_qemu convert --bitmaps -O qcow2 -o compat=0.10 src.qcow2 v2.qcow2
same_as_qemu convert --bitmaps -O raw src.qcow2 out.raw
"$QEMU_IMG" create -q -f qcow2 -o compat=0.10 v2src.qcow2 1M
same_as_qemu convert --bitmaps -O qcow2 v2src.qcow2 fromv2.qcow2
same_as_qemu convert --bitmaps -O qcow2 src.qcow2 src.qcow2 two.qcow2
finish
