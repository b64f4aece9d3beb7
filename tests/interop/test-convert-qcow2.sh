#!/bin/bash
# convert with qcow2 on either side: allocation as qemu-img leaves it
# (map of the target identical), compression, backing files (-B/-F),
# internal snapshots (-l), -S 0, -n, --target-is-zero, create options
# and qcow2-specific errors.
. "$(dirname "$0")/../lib.sh"

# Sources: raw with data/zeros/holes, a qcow2 with data, zero clusters,
# a compressed cluster and a backing file, a qcow2 with snapshots.
head -c 3M /dev/urandom > a.raw
truncate -s 10M a.raw
dd if=/dev/zero of=a.raw bs=1M seek=5 count=2 conv=notrunc status=none
printf 'x' | dd of=a.raw bs=1 seek=9000000 conv=notrunc status=none
$QEMU_IMG create -q -f qcow2 base.qcow2 10M
$QEMU_IO -f qcow2 -c "write -P 1 0 64k" -c "write -z 1M 64k" \
    -c "write -P 2 2M 512k" -c "write -c -P 5 4M 64k" base.qcow2 >/dev/null
$QEMU_IMG create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2 12M
$QEMU_IO -f qcow2 -c "write -P 3 64k 64k" -c "write -z 2M 64k" \
    -c "discard 0 64k" -c "write -P 4 11M 4k" top.qcow2 >/dev/null
$QEMU_IMG create -q -f qcow2 sn.qcow2 4M
$QEMU_IO -f qcow2 -c "write -P 1 0 1M" sn.qcow2 >/dev/null
$QEMU_IMG snapshot -c first sn.qcow2
$QEMU_IO -f qcow2 -c "write -P 2 0 512k" sn.qcow2 >/dev/null
$QEMU_IMG snapshot -c second sn.qcow2
$QEMU_IO -f qcow2 -c "write -P 3 1M 512k" sn.qcow2 >/dev/null

# Convert with both tools; the results must have the same content, the
# same allocation map, and pass qemu-img check.
both() {
    rm -f ref.out got.out
    $QEMU_IMG convert "$@" ref.out 2>ref.err; local r1=$?
    $QIMG convert "$@" got.out 2>got.err; local r2=$?
    expect_eq "exit code of convert $*" "$r1" "$r2"
    expect_eq "stderr of convert $*" "$(sed 's/^qemu-img: //' ref.err)" \
        "$(sed 's/^qimg: //' got.err)"
    [ "$r1" = 0 ] || return 0
    [ -e got.out ] || { check_fail "no target for convert $*"; return 0; }
    "$QEMU_IMG" compare ref.out got.out >/dev/null ||
        check_fail "content differs for convert $*"
    if [ "${NOMAP:-}" != 1 ]; then
        expect_eq "map after convert $*" \
            "$($QEMU_IMG map --output=json ref.out)" \
            "$($QEMU_IMG map --output=json got.out)"
    fi
    case "$*" in *"-O qcow2"*) qemu_check_clean got.out qcow2 ;; esac
}

for src in a.raw base.qcow2 top.qcow2; do
    both -O qcow2 $src
    both -O raw $src
    both -O qcow2 -S 0 $src
    both -O qcow2 -S 64k $src
    both -O qcow2 -o cluster_size=4k $src
    both -O qcow2 -o compat=0.10 $src
    both -O qcow2 -o preallocation=metadata $src
    both -O qcow2 -c $src
    both -O qcow2 -c -o cluster_size=16k $src
    both -O qcow2 -m 1 $src
done
both -O qcow2 a.raw base.qcow2 a.raw
both -O qcow2 -c a.raw a.raw

# Compressed output is byte for byte qemu-img's (same clusters, same
# placement, same zlib stream), for compressible and random data.
{ seq 1 300000; head -c 1M /dev/urandom; seq 5 200000; } > c.raw
truncate -s 6M c.raw
for o in "" "-o cluster_size=16k" "-o compression_type=zstd"; do
    rm -f ref.qcow2 got.qcow2
    $QEMU_IMG convert -f raw -O qcow2 -c $o c.raw ref.qcow2
    $QIMG convert -f raw -O qcow2 -c $o c.raw got.qcow2 || check_fail "qimg -c $o"
    cmp -s ref.qcow2 got.qcow2 || check_fail "compressed qcow2 differs from qemu-img's ($o)"
done

# Target overlays: only what the source's top layer allocates is copied.
both -O qcow2 -B base.qcow2 -F qcow2 top.qcow2
both -O qcow2 -o backing_file=base.qcow2,backing_fmt=qcow2 top.qcow2
$QIMG convert -O qcow2 -B base.qcow2 -F qcow2 top.qcow2 ov.qcow2
expect_eq "overlay's backing" "base.qcow2" \
    "$($QEMU_IMG info --output=json ov.qcow2 | sed -n 's/.*"backing-filename": "\(.*\)",/\1/p')"
images_equal top.qcow2 ov.qcow2

# Internal snapshots.
for l in first 1 second snapshot.name=second snapshot.id=1 \
         snapshot.id=1,snapshot.name=second nope snapshot.id=9; do
    both -O qcow2 -l $l sn.qcow2
    both -O raw -l $l sn.qcow2
done
both -O raw -l first sn.qcow2 sn.qcow2

# Existing targets.
$QEMU_IMG create -q -f qcow2 n.qcow2 12M
$QEMU_IO -f qcow2 -c "write -P 9 0 12M" n.qcow2 >/dev/null
$QIMG convert -n -O qcow2 top.qcow2 n.qcow2 || fail "-n into qcow2"
images_equal top.qcow2 n.qcow2
qemu_check_clean n.qcow2
$QEMU_IMG create -q -f qcow2 z.qcow2 12M
$QIMG convert -n --target-is-zero -O qcow2 top.qcow2 z.qcow2 || fail "--target-is-zero"
images_equal top.qcow2 z.qcow2
$QEMU_IMG create -q -f qcow2 small.qcow2 1M
same_as_qemu convert -n -O qcow2 top.qcow2 small.qcow2

# Errors.
same_as_qemu_setup() { rm -f out.img; }
same_as_qemu convert -O qcow2 -B base.qcow2 top.qcow2 out.img
same_as_qemu convert -O qcow2 -o backing_file=base.qcow2 top.qcow2 out.img
same_as_qemu convert -O qcow2 -B base.qcow2 -F qcow2 a.raw a.raw out.img
same_as_qemu convert -O qcow2 -c -o preallocation=falloc a.raw out.img
same_as_qemu convert -O qcow2 -c -o encryption=on a.raw out.img
same_as_qemu convert -O qcow2 -o cluster_size=3k a.raw out.img
same_as_qemu convert -O qcow2 -o foo=1 a.raw out.img
same_as_qemu convert -O vdi -c a.raw out.img
same_as_qemu convert -n --target-is-zero -B base.qcow2 -O qcow2 top.qcow2 out.img
finish
