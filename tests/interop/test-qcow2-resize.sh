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
    # Shrinks to cluster boundaries only: qemu-img 7.2 leaves stale bytes
    # in a partly cut cluster, where qimg reads zeros after growing again.
    for step in 1000448 "--shrink 128k" 99999 1000 5M "--preallocation=metadata 8M" \
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

# A grow from an unaligned size reads zeros in the grown part.
"$QIMG" create -q -f qcow2 z 1M
"$QIMG_IO" -f qcow2 -c "write -P 7 0 1M" z >/dev/null
"$QIMG" resize --shrink z 100k >/dev/null
"$QIMG" resize z 1M >/dev/null
"$QIMG_IO" -f qcow2 -c "read -P 7 0 100k" -c "read -P 0 100k 924k" z >/dev/null ||
    check_fail "grown area does not read as zeros"
qemu_check_clean z

# External data files follow the image size.
"$QIMG" create -q -f qcow2 -o data_file=d.raw,data_file_raw=on dd 1M
"$QIMG" resize dd 3M >/dev/null
[ "$(stat -c %s d.raw)" = 3145728 ] || check_fail "data file not grown"
qemu_check_clean dd
finish
