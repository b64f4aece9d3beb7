#!/bin/bash
# qimg-io against the real qemu-io on raw images: the same commands give
# the same output lines, exit codes and resulting image bytes.
. "$(dirname "$0")/../lib.sh"

"$QEMU_IMG" create -q -f raw base.raw 1M || fail "create"
"$QEMU_IO" -f raw -c 'write -q -P 0x11 0 64k' -c 'write -q -P 0x22 192k 4k' base.raw ||
    fail "seed"

same() { io_same_as_qemu base.raw -f raw "$@" @IMG@; }

# Writes of every kind, then reads that verify them.
same -c 'write -P 0xab 0 64k' -c 'read -P 0xab 0 64k'
same -c 'write 4k 512' -c 'read -P 0xcd 4k 512'
same -c 'write -P 0x5a 1 3' -c 'read -v 0 40'
same -c 'write -z 64k 64k' -c 'read -P 0 64k 64k'
same -c 'write -z -u 0 4k' -c 'read -P 0 0 4k'
same -c 'write -z -n 0 8k'
same -c 'write -f 0 4k'
same -c 'write -c -z 0 4k'
same -c 'write -q -P 7 0 4k' -c 'read -q -P 7 0 4k'
same -c 'write -s /etc/passwd 0 5000' -c 'read -v 0 64'
same -c 'write 1M 0' -c 'read 1M 0' -c 'read 0 0'
same -c 'discard 128k 64k' -c 'discard -q 0 4k'
same -c 'flush' -c 'info' -c 'length'
same -c 'map' -c 'alloc 0' -c 'alloc 0 128k' -c 'alloc 1 512' -c 'alloc 1M' -c 'alloc 2M 1'
same -c 'truncate 512k' -c 'length' -c 'map' -c 'truncate 3M' -c 'length' -c 'read -P 0 1M 1M'
same -c 'truncate 0' -c 'map' -c 'alloc 0' -c 'length'
same -c 'read -C 0 4k' -c 'write -C 0 4k'
same -c 'read 0x10 1k' -c 'read 1.5k 1' -c 'read 1b 1'

# Failing commands: message, and exit 1 once all commands have run.
same -c 'read -P 0xcd 0 4k' -c 'read -P 0x11 0 4k'
same -c 'read -P 0x11 -s 4 -l 8 0 64' -c 'read -P 0x11 -s 60 -l 8 0 64'
same -c 'read -P 300 0 4' -c 'read -P x 0 4'
same -c 'read x 4' -c 'read 0 1e' -c 'read 0 3G' -c 'read 9E 1' -c 'read 8E 1'
same -c 'read 7E 1' -c 'read 0 2M' -c 'read 1M 512' -c 'read 0x 1' -c 'read 1.5 1'
same -c 'read' -c 'foo' -c 'flush x' -c 'truncate' -c 'alloc'
same -c 'read -1 4' -c 'read -l 3 0 17'
same -c 'write 2M 512' -c 'write 0 3G' -c 'write -z 0 3G' -c 'write -c -P 3 0 4k'
same -c 'write -u 0 4k' -c 'write -n 0 4k' -c 'write -z -P 1 0 4k' -c 'write -b 0 4k'
same -c 'write -s /nonexistent 0 4'
same -c 'discard 0 x' -c 'discard 0 2M'
same -c 'alloc x' -c 'alloc 0 x' -c 'truncate x' -c 'truncate -m foo 2M'
same -c 'quit' -c 'read 0 1'
same -c 'close' -c 'read 0 1'

# Read-only opens refuse every writing command.
io_same_as_qemu base.raw -r -f raw -c 'write 0 1' -c 'discard 0 1' -c 'truncate 1' -c 'read -P 0x11 0 1' @IMG@
# Probed raw: the warning, and block 0 protection.
io_same_as_qemu base.raw -c 'write -P 0 0 512' -c 'read -P 0 0 512' @IMG@
# Option strings.
io_same_as_qemu base.raw --image-opts -c 'read -P 0x11 0 4k' driver=raw,file.filename=@IMG@
io_same_as_qemu base.raw --image-opts -c 'read 0 1' driver=raw,file.filename=@IMG@,foo=1

finish
