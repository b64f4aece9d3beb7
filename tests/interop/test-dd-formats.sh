#!/bin/bash
# dd through the copy engine: skip/count/bs combinations over sparse raw
# and qcow2 (with backing) inputs into raw, qcow2 and vmdk outputs,
# compared byte for byte with qemu-img dd's output (vmdk: its random CID
# aside), plus qemu-img check of the images qimg writes.
. "$(dirname "$0")/../lib.sh"

# Sparse raw input: data, holes, an odd tail (size not a multiple of 512).
truncate -s $((12 * 1048576 + 1234)) sp.raw
head -c 1M /dev/urandom | dd of=sp.raw bs=64k seek=3 conv=notrunc status=none
head -c 100000 /dev/urandom | dd of=sp.raw bs=1 seek=7000000 conv=notrunc status=none
printf 'end' | dd of=sp.raw bs=1 seek=$((12 * 1048576 + 1230)) conv=notrunc status=none

# qcow2 input with a backing file, a zero cluster and a compressed one.
"$QEMU_IMG" create -q -f qcow2 base.qcow2 8M
"$QEMU_IO" -c "write -P 0x11 0 3M" base.qcow2 >/dev/null
"$QEMU_IMG" create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2
"$QEMU_IO" -c "write -P 0x22 1M 512k" -c "write -z 2M 64k" \
    -c "write -c -P 0x33 5M 64k" top.qcow2 >/dev/null

# The vmdk descriptor holds a random CID (hex, unpadded, so 1 to 8
# digits): blank it, and pad the descriptor's end with as many NULs as
# digits were removed so that everything after it stays in place.
no_cid() { python3 -c '
import re, sys
d = open(sys.argv[1], "rb").read()
m = re.search(rb"\nCID=([0-9a-f]+)\n", d)
k = len(m.group(1))
end = d.index(b"\0", m.end())
d = d[:m.start(1)] + d[m.end(1):end] + b"\0" * k + d[end:]
sys.stdout.buffer.write(d)' "$1"; }

mkdir -p r g
n=0
for in in "sp.raw raw" "top.qcow2 qcow2"; do
    set -- $in; src=$1; ifmt=$2
    for ops in "" "bs=1M count=3" "bs=4k skip=300" "bs=1000 skip=7 count=5000" \
               "bs=64k skip=20 count=40" "bs=512 skip=1 count=1" \
               "bs=1M skip=11" "bs=3000 count=2000"; do
        for ofmt in raw qcow2 vmdk; do
            # Outputs under 1 KiB or empty: vmdk creation edge cases, not dd's.
            case "$ofmt $ops" in "vmdk bs=512 skip=1 count=1"|"vmdk bs=1M skip=11") continue;; esac
            n=$((n + 1))
            rm -f r/o.img g/o.img
            "$QEMU_IMG" dd -f $ifmt -O $ofmt $ops if=$src of=r/o.img 2>r.err; r1=$?
            "$QIMG" dd -f $ifmt -O $ofmt $ops if=$src of=g/o.img 2>g.err; r2=$?
            what="$src -> $ofmt [$ops]"
            expect_eq "exit $what" "$r1" "$r2"
            expect_eq "stderr $what" "$(sed 's/^qemu-img: //' r.err)" "$(sed 's/^qimg: //' g.err)"
            if [ $ofmt = vmdk ]; then
                # qimg's vmdk leaves grains unallocated where zeros are
                # written (qemu allocates them): same content here, the
                # layout is compared below on ranges without zeros.
                images_equal r/o.img g/o.img vmdk vmdk
            else
                cmp -s r/o.img g/o.img || check_fail "output differs: $what"
            fi
            [ $ofmt = raw ] || qemu_check_clean g/o.img $ofmt
        done
    done
done
# vmdk byte for byte where the range holds no zeros.
for c in "sp.raw raw bs=64k skip=3 count=16" \
         "top.qcow2 qcow2 bs=1M count=2" "top.qcow2 qcow2 bs=3000 skip=5 count=400"; do
    set -- $c; src=$1; ifmt=$2; shift 2
    rm -f r/o.img g/o.img
    "$QEMU_IMG" dd -f $ifmt -O vmdk "$@" if=$src of=r/o.img || fail "qemu-img dd $c"
    "$QIMG" dd -f $ifmt -O vmdk "$@" if=$src of=g/o.img || fail "qimg dd $c"
    cmp -s <(no_cid r/o.img) <(no_cid g/o.img) || check_fail "vmdk output differs: $c"
done
echo "$n conversions compared"
finish
