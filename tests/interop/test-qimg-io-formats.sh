#!/bin/bash
# qimg-io against qemu-io on images of every format qemu-img can create
# and qimg can write (qcow2 has its own test): allocation maps, alloc
# counts, info, pattern reads, then writes, zero writes and discards with
# the same output and the same guest-visible content afterwards.
. "$(dirname "$0")/../lib.sh"

export IO_COMPARE=content
for fmt in qcow qed vdi vhdx vmdk; do
    "$QEMU_IMG" create -q -f $fmt base.$fmt 8M || fail "create $fmt"
    "$QEMU_IO" -c 'write -q -P 1 64k 64k' -c 'write -q -P 2 3M 4k' \
        -c 'write -q -z 5M 1M' base.$fmt || fail "seed $fmt"
    io_same_as_qemu base.$fmt -c map -c 'alloc 0 8M' -c 'alloc 3M' -c info -c length @IMG@
    io_same_as_qemu base.$fmt -f $fmt -c 'read -P 1 64k 64k' -c 'read -P 2 3M 4k' \
        -c 'read -P 0 5M 1M' -c 'read -P 0 0 64k' -c 'read -P 1 0 128k' @IMG@
    io_same_as_qemu base.$fmt -c 'write -P 3 7M 8k' -c 'write -P 4 100 1000' \
        -c 'read -P 3 7M 8k' -c 'read -P 4 100 1000' -c map @IMG@
    io_same_as_qemu base.$fmt -c 'write -z 64k 64k' -c 'read -P 0 64k 64k' @IMG@
    io_same_as_qemu base.$fmt -c 'discard 64k 64k' -c 'read -P 0 3M 4k' @IMG@
    io_same_as_qemu base.$fmt -c 'read 8M 1' -c 'write 8M 1' -c 'read 0 9M' @IMG@
    io_same_as_qemu base.$fmt -r -c 'write 0 1' -c 'read -P 1 64k 64k' @IMG@
done

finish
