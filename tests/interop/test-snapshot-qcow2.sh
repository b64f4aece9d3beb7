#!/bin/bash
# snapshot on qcow2: the same operations done by qimg and by qemu-img give
# images with the same content, list and check results; snapshots made by
# either tool are listed, applied and deleted by the other; errors match.
. "$(dirname "$0")/../lib.sh"

base() {
    rm -f "$1"
    "$QEMU_IMG" create -q -f qcow2 "$1" 2M
    "$QEMU_IO" -c "write -P 0x11 0 128k" -c "write -c -P 0x77 512k 64k" "$1" >/dev/null
}
strip_dates() { sed -E 's/[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{8}/DATE/' "$@"; }

# One sequence run by each tool on its own copy.
run_seq() { # TOOL IMG
    local tool=$1 img=$2
    base "$img"
    "$tool" snapshot -c one "$img" || check_fail "$tool create one"
    "$QEMU_IO" -c "write -P 0x22 64k 128k" -c "write -P 0x33 1M 64k" "$img" >/dev/null
    "$tool" snapshot -c two "$img" || check_fail "$tool create two"
    "$QEMU_IO" -c "write -P 0x44 0 64k" -c "discard 512k 64k" "$img" >/dev/null
    "$tool" snapshot -c one "$img" || check_fail "$tool create one again"
    "$tool" snapshot -a one "$img" || check_fail "$tool apply one"
    "$tool" snapshot -d two "$img" || check_fail "$tool delete two"
    "$tool" snapshot -a 1 "$img" || check_fail "$tool apply by id"
}
run_seq "$QEMU_IMG" ref.qcow2
run_seq "$QIMG" got.qcow2
images_equal ref.qcow2 got.qcow2
qemu_check_clean got.qcow2
"$QEMU_IMG" snapshot -l ref.qcow2 | strip_dates >ref.list
"$QIMG" snapshot -l got.qcow2 | strip_dates >got.list
cmp -s ref.list got.list || { check_fail "snapshot lists differ"; diff ref.list got.list >&2; }
"$QEMU_IMG" snapshot -l got.qcow2 | strip_dates >got2.list
cmp -s ref.list got2.list || check_fail "qemu-img lists qimg's snapshots differently"
"$QEMU_IMG" check ref.qcow2 | sed 's/ref/IMG/' >ref.chk
"$QEMU_IMG" check got.qcow2 | sed 's/got/IMG/' >got.chk
cmp -s ref.chk got.chk || { check_fail "check output differs"; diff ref.chk got.chk >&2; }

# Every snapshot of each image reads back like the other tool's.
for sn in 1 3; do
    "$QEMU_IMG" convert -l "snapshot.id=$sn" -O raw ref.qcow2 ref-$sn.raw
    "$QEMU_IMG" convert -l "snapshot.id=$sn" -O raw got.qcow2 got-$sn.raw
    cmp -s ref-$sn.raw got-$sn.raw || check_fail "snapshot $sn content differs"
done

# Cross: qemu's snapshots handled by qimg, qimg's by qemu-img.
base a.qcow2
"$QEMU_IMG" snapshot -c qsnap a.qcow2
"$QEMU_IO" -c "write -P 0x55 0 64k" a.qcow2 >/dev/null
"$QIMG" snapshot -a qsnap a.qcow2 || check_fail "apply qemu snapshot"
"$QEMU_IO" -c "read -P 0x11 0 128k" a.qcow2 | grep -q "^read" || check_fail "qemu snapshot content after qimg apply"
"$QIMG" snapshot -d qsnap a.qcow2 || check_fail "delete qemu snapshot"
qemu_check_clean a.qcow2
base b.qcow2
"$QIMG" snapshot -c isnap b.qcow2
"$QEMU_IO" -c "write -P 0x66 0 64k" b.qcow2 >/dev/null
"$QEMU_IMG" snapshot -a isnap b.qcow2 || check_fail "qemu-img applies qimg snapshot"
"$QEMU_IO" -c "read -P 0x11 0 128k" b.qcow2 | grep -q "^read" || check_fail "qimg snapshot content after qemu apply"
"$QEMU_IMG" snapshot -d isnap b.qcow2 || check_fail "qemu-img deletes qimg snapshot"
qemu_check_clean b.qcow2

# Errors and the table, compared with qemu-img.
same_as_qemu_setup() { base e.qcow2; "$QEMU_IMG" snapshot -c have e.qcow2; }
same_as_qemu snapshot -a nonexistent e.qcow2
same_as_qemu snapshot -d nonexistent e.qcow2
same_as_qemu snapshot -d 1 e.qcow2
same_as_qemu snapshot -l -c x e.qcow2
same_as_qemu snapshot -c
same_as_qemu snapshot e.qcow2
same_as_qemu snapshot -f qcow2 -l e.qcow2
"$QEMU_IMG" create -q -f raw r.raw 1M
same_as_qemu_setup() { :; }
same_as_qemu snapshot -l r.raw
same_as_qemu snapshot -c x r.raw
same_as_qemu snapshot -a x r.raw
same_as_qemu snapshot -d x r.raw
finish
