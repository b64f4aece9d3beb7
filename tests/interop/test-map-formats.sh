#!/bin/bash
# map: human and JSON output byte-identical to qemu-img's, for raw and
# every format with allocation (data, written zeros, holes), through a
# backing chain, with --start-offset/--max-length, and its errors.
. "$(dirname "$0")/../lib.sh"

FORMATS="qed vdi vpc"

head -c 3M /dev/urandom > r.img
truncate -s 10M r.img
dd if=/dev/zero of=r.img bs=1M seek=5 count=2 conv=notrunc status=none
printf 'x' | dd of=r.img bs=1 seek=9000000 conv=notrunc status=none

for o in "" --output=json --output=human; do
    same_as_qemu map $o -f raw r.img
    same_as_qemu map $o r.img
    same_as_qemu map $o -f raw --start-offset=1M --max-length=5M r.img
    same_as_qemu map $o -f raw -s 9000000 -l 1 r.img
    same_as_qemu map $o -f raw --start-offset=100M r.img
    same_as_qemu map $o -U -f raw --image-opts driver=raw,file.filename=r.img
done

for f in $FORMATS; do
    $QEMU_IMG create -q -f $f base.$f 4M
    $QEMU_IO -f $f -c "write -P 1 0 64k" -c "write -z 1M 64k" \
        -c "write -P 2 2M 512k" base.$f >/dev/null
    for o in "" --output=json; do
        same_as_qemu map $o base.$f
        same_as_qemu map $o -f $f -s 64k -l 3M base.$f
    done
done

# A chain: depth, present and zero through two backing levels.
$QEMU_IMG create -q -f qed mid.qed -b base.qed -F qed 6M
$QEMU_IO -f qed -c "write -P 3 64k 64k" -c "write -z 2M 64k" mid.qed >/dev/null
$QEMU_IMG create -q -f qed top.qed -b mid.qed -F qed 8M
$QEMU_IO -f qed -c "write -P 4 1M 128k" top.qed >/dev/null
for o in "" --output=json; do
    same_as_qemu map $o top.qed
    same_as_qemu map $o -f qed --start-offset 4M top.qed
done

# Errors.
same_as_qemu map
same_as_qemu map r.img r.img
same_as_qemu map --output=xml r.img
same_as_qemu map -s 1x r.img
same_as_qemu map -l -1 r.img
same_as_qemu map nonexistent.img
same_as_qemu map -f vdi r.img
finish
