#!/bin/bash
# measure with qcow2 targets: qemu-img's numbers for every cluster size
# class, refcount width, extended L2, preallocation mode, --size and
# image inputs (raw, qcow2 with zeros and bitmaps), human and JSON.
. "$(dirname "$0")/../lib.sh"

"$QEMU_IMG" create -q -f qcow2 in.qcow2 100M
"$QEMU_IO" -c "write -P 1 0 10M" -c "write -P 2 50M 3M" -c "write -z 60M 1M" \
    -c "write -P 3 99M 3k" in.qcow2 >/dev/null
"$QEMU_IMG" bitmap --add in.qcow2 b1
"$QEMU_IMG" bitmap --add -g 1M in.qcow2 longer-name
head -c 5M /dev/urandom > in.raw
truncate -s 20M in.raw

for o in "" cluster_size=512 cluster_size=2M,refcount_bits=1 extended_l2=on \
         preallocation=full preallocation=falloc preallocation=metadata,refcount_bits=64 \
         cluster_size=4k,refcount_bits=8 compat=0.10 refcount_bits=3 \
         cluster_size=1k,extended_l2=on; do
    for s in 0 1000 1G 10G; do
        same_as_qemu measure -O qcow2 ${o:+-o $o} --size $s
    done
    same_as_qemu measure -O qcow2 ${o:+-o $o} in.qcow2
    same_as_qemu measure -O qcow2 ${o:+-o $o} --output=json in.qcow2
    same_as_qemu measure -O qcow2 ${o:+-o $o} -f raw in.raw
done
same_as_qemu measure -O qcow2 -o backing_file=x,backing_fmt=raw in.raw
finish
