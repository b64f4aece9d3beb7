#!/bin/bash
# compare: messages and exit codes as qemu-img's for equal and different
# images, size mismatches (plain and strict), allocation differences,
# backing chains, progress and errors.
. "$(dirname "$0")/../lib.sh"

head -c 3M /dev/urandom > a.img
truncate -s 10M a.img
dd if=/dev/zero of=a.img bs=1M seek=5 count=2 conv=notrunc status=none
cp a.img same.img
cp a.img diff.img
printf 'x' | dd of=diff.img bs=1 seek=6000700 conv=notrunc status=none
cp a.img big.img; truncate -s 12M big.img
cp big.img bigdirty.img
printf 'y' | dd of=bigdirty.img bs=1 seek=11000003 conv=notrunc status=none
head -c 1M /dev/urandom > first.img; truncate -s 10M first.img
# The same bytes, but the zeros written out rather than a hole.
cp a.img full.img; fallocate -l 10M full.img 2>/dev/null || \
    $QEMU_IMG convert -f raw -O raw -S 0 a.img full.img
# Flush delayed allocation first: block status (and so the progress steps)
# must not change between the qemu-img run and the qimg run.
sync

for p in "" -q -p -s "-s -q"; do
    same_as_qemu compare $p -f raw -F raw a.img same.img
    same_as_qemu compare $p -f raw -F raw a.img diff.img
    same_as_qemu compare $p -f raw -F raw a.img big.img
    same_as_qemu compare $p -f raw -F raw big.img a.img
    same_as_qemu compare $p -f raw -F raw a.img bigdirty.img
    same_as_qemu compare $p -f raw -F raw bigdirty.img a.img
    same_as_qemu compare $p -f raw -F raw a.img first.img
    same_as_qemu compare $p -f raw -F raw a.img full.img
done
same_as_qemu compare a.img same.img

for f in qed vdi vpc; do
    $QEMU_IMG create -q -f $f img.$f 4M
    $QEMU_IO -f $f -c "write -P 1 0 64k" -c "write -z 1M 64k" \
        -c "write -P 2 2M 512k" img.$f >/dev/null
    $QEMU_IMG convert -O raw img.$f img.$f.raw
    same_as_qemu compare img.$f img.$f.raw
    same_as_qemu compare -s img.$f img.$f.raw
    same_as_qemu compare img.$f img.qed
done
$QEMU_IMG create -q -f qed top.qed -b img.qed -F qed 6M
$QEMU_IO -f qed -c "write -P 3 64k 64k" -c "write -z 2M 64k" top.qed >/dev/null
$QEMU_IMG convert -O raw top.qed top.raw
same_as_qemu compare top.qed top.raw
same_as_qemu compare -s top.qed top.raw
same_as_qemu compare top.qed img.qed
same_as_qemu compare img.qed top.qed

# Errors: usage (1), open (2).
same_as_qemu compare a.img
same_as_qemu compare a.img b.img c.img
same_as_qemu compare -f raw a.img nonexistent.img
same_as_qemu compare -f raw nonexistent.img a.img
same_as_qemu compare -T bogus a.img same.img
same_as_qemu compare -f vdi a.img same.img
same_as_qemu compare -U --image-opts driver=raw,file.filename=a.img driver=raw,file.filename=diff.img
finish
