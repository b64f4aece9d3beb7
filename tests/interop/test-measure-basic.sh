#!/bin/bash
# measure: output (human and JSON) and errors as qemu-img's, for --size and
# for existing images, with raw as the target format.
. "$(dirname "$0")/../lib.sh"

head -c 3M /dev/urandom > a.img
truncate -s 10M a.img
$QEMU_IMG create -q -f qed b.qed 4M
$QEMU_IO -f qed -c "write -P 1 0 64k" b.qed >/dev/null

for o in "" --output=json --output=human; do
    same_as_qemu measure $o --size 1000
    same_as_qemu measure $o --size 1G -O raw
    same_as_qemu measure $o --size 0
    same_as_qemu measure $o a.img
    same_as_qemu measure $o -f raw a.img
    same_as_qemu measure $o -O raw b.qed
    same_as_qemu measure $o --image-opts driver=raw,file.filename=a.img
    same_as_qemu measure $o --size 1M -o preallocation=full
    same_as_qemu measure $o -o size=5M a.img
done

same_as_qemu measure
same_as_qemu measure a.img a.img
same_as_qemu measure -f raw
same_as_qemu measure -l foo
same_as_qemu measure --size 1M a.img
same_as_qemu measure --size 1M -o foo=1
same_as_qemu measure --size 1M -O foo
same_as_qemu measure --size 1M -O qed
same_as_qemu measure --size 1M -O vdi
same_as_qemu measure --size 1M --output=xml
same_as_qemu measure --size 1x
same_as_qemu measure -l foo a.img
same_as_qemu measure -l snapshot.id=1 a.img
same_as_qemu measure -l snapshot.bar=1 a.img
same_as_qemu measure nonexistent.img
finish
