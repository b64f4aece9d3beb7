#!/bin/bash
# qcow2 resize: growing (L1 table growth, preallocation modes), shrinking
# (--shrink, clusters and tables past the end released), qemu-img's
# messages and exit codes; the result passes qemu-img check and holds the
# same data as the same steps done by qemu-img.
. "$(dirname "$0")/../lib.sh"

for o in "" cluster_size=512 extended_l2=on compat=0.10 refcount_bits=1; do
    for img in got ref; do
        rm -f $img
        "$QEMU_IMG" create -q -f qcow2 ${o:+-o $o} $img 1M
        "$QEMU_IO" -c "write -P 1 0 1M" $img >/dev/null
    done
    # Unaligned shrinks then growth: like qemu-img 7.2, the bytes left in a
    # partly cut cluster read back after growing again.
    for step in 1000448 "--shrink 128k" "--shrink 99840" 1000 5M "--preallocation=metadata 8M" \
                "--preallocation=falloc 9M" "--preallocation=full 10M" \
                "--shrink 640k" 64M "--shrink 1M" +1M "--shrink -512k" 2G; do
        "$QEMU_IMG" resize ref $step >ref.out 2>ref.err; echo $? >>ref.out
        "$QIMG" resize got $step >got.out 2>got.err; echo $? >>got.out
        sed -i 's/^qimg: /qemu-img: /' got.err
        cmp -s ref.out got.out && cmp -s ref.err got.err ||
            check_fail "resize [$o] $step: $(cat got.out got.err) vs $(cat ref.out ref.err)"
    done
    qemu_check_clean got
    images_equal got ref qcow2 qcow2
done

# Growing over a longer backing file zeroes the new area (zero flags
# from the next subcluster, explicit zeros before it) so the backing data
# does not show through; v2 images cannot, and fail as qemu-img does.  Without
# a backing file, the stale tail of a shrink shows again (as in 7.2).
rm -f bk
"$QEMU_IMG" create -q -f qcow2 bk 2M
"$QEMU_IO" -c "write -P 9 0 2M" bk >/dev/null
for o in compat=1.1 compat=0.10 extended_l2=on cluster_size=512 nobacking; do
    for img in got ref; do
        rm -f $img
        if [ $o = nobacking ]; then
            "$QEMU_IMG" create -q -f qcow2 $img 1M
        else
            "$QEMU_IMG" create -q -f qcow2 -o $o -b bk -F qcow2 $img 1M
        fi
        "$QEMU_IO" -c "write -P 7 0 1M" $img >/dev/null
    done
    for step in "--shrink 99840" 1536k "--shrink 640k" "--preallocation=metadata 3M"; do
        "$QEMU_IMG" resize ref $step >ref.out 2>ref.err; echo $? >>ref.out
        "$QIMG" resize got $step >got.out 2>got.err; echo $? >>got.out
        sed -i 's/^qimg: /qemu-img: /' got.err
        cmp -s ref.out got.out && cmp -s ref.err got.err ||
            check_fail "resize over backing [$o] $step: $(cat got.out got.err) vs $(cat ref.out ref.err)"
        # (512-byte clusters: the host layout preallocation picks over a
        # backing file differs; the guest view is compared below.)
        [ $o = cluster_size=512 ] && [ "${step#--pre}" != "$step" ] && continue
        "$QEMU_IMG" map --output=json ref >ref.map
        "$QEMU_IMG" map --output=json got >got.map
        cmp -s ref.map got.map || check_fail "map after resize [$o] $step"
    done
    "$QEMU_IMG" convert -O raw ref ref.raw
    "$QEMU_IMG" convert -O raw got got.raw
    cmp -s ref.raw got.raw || check_fail "content after resize over backing [$o]"
    qemu_check_clean got
done
rm -f ref.raw got.raw

# External data files follow the image size.
"$QIMG" create -q -f qcow2 -o data_file=d.raw,data_file_raw=on dd 1M
"$QIMG" resize dd 3M >/dev/null
[ "$(stat -c %s d.raw)" = 3145728 ] || check_fail "data file not grown"
qemu_check_clean dd
finish
