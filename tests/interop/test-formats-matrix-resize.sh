#!/bin/bash
# Resizing images qemu-img made and qemu-io filled: qemu-img 7.2 refuses
# every resize of vmdk, vpc, vhdx and vdi; qimg grows them (vmdk
# monolithicSparse/Flat and single-extent twoGbMaxExtent, vpc dynamic and
# fixed, vhdx dynamic and fixed, vdi dynamic and static) and qed (as
# qemu-img), and qemu-img checks the result and reads the old data, the new
# zeros and data it writes past the old end.  What neither can resize
# (streamOptimized vmdk, qcow) gets qemu-img's message; parallels, read-only
# in qimg, refuses writing and stays unchanged.
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib.sh"
. "$HERE/fmt-matrix.sh"

# Growing: qemu-img refuses for all of these but qed; qimg grows them and
# qemu-img reads the old data, the new zeros and data written past the old
# end.
# (twoGbMaxExtent images of a single extent grow like monolithic ones)
for spec in vmdk: vmdk:subformat=monolithicFlat vmdk:subformat=twoGbMaxExtentSparse \
            vmdk:subformat=twoGbMaxExtentFlat vpc: vpc:subformat=fixed vhdx: \
            vhdx:subformat=fixed vdi: vdi:static=on qed:; do
    f=${spec%%:*} o=${spec#*:} what="${spec%%:*} [${spec#*:}]"
    qemu_made $f "$o"
    $QIMG resize -f $f q.$f 20M >/dev/null || { check_fail "grow $what"; continue; }
    case $f in vpc) ;; *) qemu_check_clean q.$f $f ;; esac
    vs=$($QEMU_IMG info -f $f --output=json q.$f | sed -n 's/^    "virtual-size": \([0-9]*\).*/\1/p')
    [ "$vs" -ge 20971520 ] && [ "$vs" -lt 22020096 ] || check_fail "grown size of $what: $vs"
    $QEMU_IO -f $f -c 'write -P 0x66 19M 1M' q.$f >/dev/null || check_fail "qemu-io write grown $what"
    rm -f g.raw
    $QEMU_IMG convert -f $f -O raw q.$f g.raw
    cmp -s -n $SIZE g.raw ref.raw || check_fail "old data of grown $what"
    $QEMU_IO -f raw -c "read -P 0 $SIZE $((19 * 1048576 - SIZE))" -c 'read -P 0x66 19M 1M' g.raw |
        grep -q 'verification failed' && check_fail "new area of grown $what"
    rm -f m.raw
    $QIMG convert -f $f -O raw q.$f m.raw && cmp -s g.raw m.raw || check_fail "qimg read of grown $what"
done
# resizes qimg cannot do either: streamOptimized vmdk, qcow
for spec in vmdk:subformat=streamOptimized qcow:; do
    f=${spec%%:*} o=${spec#*:}
    qemu_made $f "$o"
    same_as_qemu resize -f $f q.$f 20M
    same_as_qemu resize -f $f q.$f +1M
done

# parallels is read-only in qimg (qemu-img writes it): writing is refused
# with the read-only error, the image stays as it was.
qemu_made parallels ""
cp q.parallels before
run_tool pw "$QIMG_IO" -f parallels -c 'write 0 4k' q.parallels
expect_eq "parallels write" "1 qimg-io: can't open device q.parallels: Image is read-only" \
    "$(cat pw.rc) $(cat pw.err)"
cmp -s before q.parallels || check_fail "parallels image changed"
finish
