#!/bin/bash
# qimg-io against the real qemu-io on a qcow2 image that qemu-io wrote:
# the same output (map and alloc runs, info, pattern checks) and the same
# guest-visible content afterwards, with qimg-io's copy passing
# qemu-img check.
. "$(dirname "$0")/../lib.sh"

"$QEMU_IMG" create -q -f qcow2 base.qcow2 4M || fail "create"
"$QEMU_IO" -c 'write -q -P 1 64k 64k' -c 'write -q -P 2 1M 4k' \
    -c 'write -q -z 2M 64k' base.qcow2 || fail "seed"

export IO_COMPARE=content
same() { io_same_as_qemu base.qcow2 "$@" @IMG@; }

same -c map -c 'alloc 0 4M' -c 'alloc 64k' -c 'alloc 1M 64k' -c 'alloc 4M' -c info -c length
same -f qcow2 -c 'read -P 1 64k 64k' -c 'read -P 2 1M 4k' -c 'read -P 0 2M 64k' -c 'read -P 0 0 64k'
same -c 'write -P 9 100 1000' -c 'read -P 9 100 1000' -c 'read -P 0 0 100' -c map
same -c 'write -z 256k 64k' -c 'write -z -u 64k 64k' -c map -c 'read -P 0 64k 64k'
same -c 'write -z -n 0 4M' -c map
same -c 'discard 64k 64k' -c map -c 'read -P 0 64k 64k'
same -c 'write -c 0 64k' -c 'write -c 64k 4k' -c 'read -P 0xcd 0 64k' -c map
same -c 'write -c 3M 64k' -c 'write -c -P 7 4032k 64k' -c 'read -P 7 4032k 64k'
same -c 'read -P 1 64k 128k' -c 'read 4M 1' -c 'write 4M 1'
same -r -c 'write 0 1' -c 'read -v 64k 20'
same -f raw -c 'read -v 0 16'

finish
