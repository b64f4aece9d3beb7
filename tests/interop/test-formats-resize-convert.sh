#!/bin/bash
# resize (qed as qemu-img; vdi grows where qemu-img refuses), measure's
# refusal for these formats, and conversions between vdi, qed, qcow and
# qcow2 in both directions, checked with qemu-img.
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib.sh"

# resize_same IMG ARGS...: both tools resize a fresh copy of IMG.
RS_IMG=
same_as_qemu_setup() { cp "$RS_IMG" t.img; }
resize_same() {
    RS_IMG=$1; shift
    same_as_qemu resize "$@"
    same_as_qemu_setup
    $QEMU_IMG resize "$@" >/dev/null 2>&1
    cp t.img ref.img
    same_as_qemu_setup
    $QIMG resize "$@" >/dev/null 2>&1
    expect_eq "size after resize $*" "$($QEMU_IMG info --output=json ref.img | grep virtual-size)" \
        "$($QEMU_IMG info --output=json t.img | grep virtual-size)"
}

$QEMU_IMG create -q -f qed r.qed 4M
$QEMU_IO -f qed -c 'write -P 3 0 1M' r.qed >/dev/null
for a in "4M" "8M" "+1M" "--shrink 2M" "2M" "1000" "3G" "-f qed +64k"; do
    resize_same r.qed t.img $a
done
resize_same r.qed --preallocation=full t.img 8M
cp r.qed g.qed; $QIMG resize g.qed 1G >/dev/null || check_fail "qed grow"
qemu_check_clean g.qed qed
$QEMU_IO -f qed -c 'read -P 3 0 1M' -c 'write -P 4 1000M 1M' g.qed | grep -q 'verification failed' &&
    check_fail "qed data after grow"
qemu_check_clean g.qed qed

# vdi: qemu-img 7.2 refuses; qimg grows and the result passes qemu's check.
$QEMU_IMG create -q -f vdi r.vdi 4M
$QEMU_IO -f vdi -c 'write -P 3 0 1M' r.vdi >/dev/null
cp r.vdi g.vdi
$QIMG resize g.vdi 2G >/dev/null || check_fail "vdi grow"
qemu_check_clean g.vdi vdi
expect_eq "vdi grown size" 2147483648 \
    "$($QEMU_IMG info --output=json g.vdi | sed -n 's/.*"virtual-size": \([0-9]*\).*/\1/p')"
$QEMU_IO -f vdi -c 'read -P 3 0 1M' g.vdi | grep -q 'verification failed' && check_fail "vdi data after grow"
run_tool s "$QIMG" resize --shrink g.vdi 1M
expect_eq "vdi shrink refused" 1 "$(cat s.rc)"

# measure: none of these formats supports it in qemu-img 7.2.
for f in vdi qed qcow; do
    same_as_qemu measure -O $f --size 1G
    same_as_qemu measure -O $f r.qed
done

# Conversions through qcow2 and between the formats, both directions.
head -c 2M /dev/urandom > src.raw
dd if=/dev/zero of=src.raw bs=64k seek=5 count=10 conv=notrunc status=none
truncate -s 5M src.raw
printf 'end' | dd of=src.raw bs=1 seek=5000000 conv=notrunc status=none
$QEMU_IMG convert -f raw -O qcow2 src.raw src.qcow2
for f in vdi qed qcow; do
    rm -f a.$f b.qcow2 c.$f d.raw
    $QIMG convert -f qcow2 -O $f src.qcow2 a.$f || { check_fail "qcow2 -> $f"; continue; }
    images_equal src.raw a.$f raw $f
    $QIMG convert -f $f -O qcow2 a.$f b.qcow2 || check_fail "$f -> qcow2"
    qemu_check_clean b.qcow2 qcow2
    images_equal src.raw b.qcow2 raw qcow2
    # a qemu-made image of the format converted by qimg
    $QEMU_IMG convert -f raw -O $f src.raw c.$f
    $QIMG convert -f $f -O raw c.$f d.raw || check_fail "qemu's $f -> raw"
    cmp -s src.raw d.raw || check_fail "qemu's $f read differs"
done
for pair in "vdi qed" "qed qcow" "qcow vdi"; do
    set -- $pair
    rm -f x.$2
    $QIMG convert -f $1 -O $2 a.$1 x.$2 || check_fail "$1 -> $2"
    images_equal src.raw x.$2 raw $2
done
qemu_check_clean x.vdi vdi

finish
