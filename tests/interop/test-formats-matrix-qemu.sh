#!/bin/bash
# Images that qemu-img creates (every vmdk subformat, vpc dynamic/fixed,
# vhdx options, vdi dynamic/static, qed, qcow, parallels) and qemu-io
# fills: qimg reads them bit-exactly, and its info (human and JSON), map,
# check and measure (-O qcow2 and raw) print what qemu-img prints; qimg
# converts them to qcow2 cleanly; resizes qemu-img refuses are refused with
# its message, and the growing resizes qimg adds keep them valid for
# qemu-img.
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib.sh"

SIZE=6291456
# (ascending and non-overlapping: streamOptimized takes no rewrites)
WRITES=(-c 'write -P 0xab 0 100k' -c 'write -P 0x12 2M 1M' -c 'write -z 3M 64k'
        -c 'write -P 0x44 5M 512k' -c 'write -P 0x45 6143k 1k')

# qemu_made FMT OPTS: q.FMT made by qemu-img and filled by qemu-io, and
# ref.raw, qemu-img's reading of it.
qemu_made() {
    rm -f q* ref.raw
    $QEMU_IMG create -q -f $1 ${2:+-o $2} q.$1 $SIZE || fail "qemu-img create $1 [$2]"
    local w=("${WRITES[@]}")
    # qemu writes streamOptimized images in whole grains only
    [[ $2 = *streamOptimized* ]] && w=(-c 'write -P 0xab 0 128k' -c 'write -P 0x12 2M 1M'
        -c 'write -z 3M 64k' -c 'write -P 0x44 5M 512k' -c 'write -P 0x45 6080k 64k')
    $QEMU_IO -f $1 "${w[@]}" q.$1 >/dev/null || fail "qemu-io $1 [$2]"
    $QEMU_IMG convert -f $1 -O raw q.$1 ref.raw
}

for spec in vmdk: vmdk:subformat=monolithicFlat vmdk:subformat=twoGbMaxExtentSparse \
            vmdk:subformat=twoGbMaxExtentFlat vmdk:subformat=streamOptimized \
            vmdk:zeroed_grain=on vmdk:compat6=on vmdk:adapter_type=lsilogic \
            vpc: vpc:subformat=fixed vpc:force_size=on \
            vhdx: vhdx:subformat=fixed vhdx:block_size=1M vhdx:block_state_zero=off \
            vhdx:log_size=2M vdi: vdi:static=on qed: qed:cluster_size=4k qcow: \
            parallels: parallels:cluster_size=64k; do
    f=${spec%%:*} o=${spec#*:} what="${spec%%:*} [${spec#*:}]"
    qemu_made $f "$o"
    sync q* 2>/dev/null
    rm -f got.raw
    $QIMG convert -f $f -O raw q.$f got.raw || check_fail "qimg read $what"
    cmp -s ref.raw got.raw || check_fail "read of qemu's $what differs"
    for out in "" --output=json; do
        same_as_qemu info -f $f $out q.$f
        same_as_qemu map -f $f $out q.$f
        same_as_qemu check -f $f $out q.$f
        same_as_qemu measure -f $f -O qcow2 $out q.$f
        same_as_qemu measure -f $f -O raw $out q.$f
    done
    same_as_qemu compare -f $f -F raw q.$f ref.raw
    rm -f c.qcow2
    $QIMG convert -f $f -O qcow2 q.$f c.qcow2 || check_fail "$what -> qcow2"
    qemu_check_clean c.qcow2 qcow2
    images_equal ref.raw c.qcow2 raw qcow2
    # resizes both tools refuse (parallels is read-only in qimg: see below)
    [ $f = parallels ] && continue
    RS=q.$f
    same_as_qemu resize -f $f --shrink q.$f 2M
    same_as_qemu resize -f $f q.$f 2M
    same_as_qemu resize -f $f --preallocation=full q.$f 8M
done

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
