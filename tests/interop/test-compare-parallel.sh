#!/bin/bash
# compare reads chunks in parallel: the mismatch reported is still the
# first one (as qemu-img's sequential comparison finds it), whichever
# chunk a worker finishes first; progress steps and exit codes are
# qemu-img's, for raw and qcow2 (plain, compressed, backing chains).
. "$(dirname "$0")/../lib.sh"

# 48 MiB: random data, a written-zero stretch, a hole, more data.
head -c 20M /dev/urandom > a.img
dd if=/dev/zero of=a.img bs=1M seek=20 count=8 conv=notrunc status=none
truncate -s 36M a.img
head -c 12M /dev/urandom | dd of=a.img bs=1M seek=36 conv=notrunc status=none
sync

# poke FILE OFFSET: change one byte.
poke() {
    printf '\x5a' | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

cp a.img late.img;  poke late.img $((45 * 1024 * 1024 + 4097))
cp a.img two.img;   poke two.img $((3 * 1024 * 1024 + 511)); poke two.img $((40 * 1024 * 1024))
cp a.img many.img
for o in 47185920 31457282 16777216 8388609 2097153 1048577; do poke many.img $o; done
cp a.img zero.img;  poke zero.img $((24 * 1024 * 1024 + 700))   # in the zeros
cp a.img hole.img;  poke hole.img $((30 * 1024 * 1024 + 9))     # in the hole
cp a.img end.img;   poke end.img $((48 * 1024 * 1024 - 1))      # last byte
sync

for b in late two many zero hole end; do
    for p in "" -p -q -s; do
        same_as_qemu compare $p -f raw -F raw a.img $b.img
        same_as_qemu compare $p -f raw -F raw $b.img a.img
    done
done
same_as_qemu compare -p -f raw -F raw a.img a.img

# Size mismatch: a difference in the longer image's tail, after equal
# common parts.
cp a.img longer.img; truncate -s 60M longer.img
poke longer.img $((55 * 1024 * 1024 + 3))
cp a.img longer0.img; truncate -s 60M longer0.img
sync
for p in "" -p -s; do
    same_as_qemu compare $p -f raw -F raw a.img longer.img
    same_as_qemu compare $p -f raw -F raw longer.img a.img
    same_as_qemu compare $p -f raw -F raw longer0.img a.img
done

# qcow2 sides: plain, compressed, and an overlay whose backing file holds
# most of the data.
$QEMU_IMG convert -f raw -O qcow2 a.img a.qcow2
$QEMU_IMG convert -f raw -O qcow2 -c a.img c.qcow2
$QEMU_IMG convert -f raw -O qcow2 two.img two.qcow2
$QEMU_IMG create -q -f qcow2 -b a.qcow2 -F qcow2 ov.qcow2
$QEMU_IO -f qcow2 -c "write -P 7 $((44 * 1024 * 1024)) 4k" \
    -c "write -P 8 $((9 * 1024 * 1024)) 64k" ov.qcow2 >/dev/null
for p in "" -p -s; do
    same_as_qemu compare $p a.img a.qcow2
    same_as_qemu compare $p c.qcow2 a.qcow2
    same_as_qemu compare $p c.qcow2 two.qcow2
    same_as_qemu compare $p two.img c.qcow2
    same_as_qemu compare $p ov.qcow2 a.qcow2
    same_as_qemu compare $p a.img ov.qcow2
done
finish
