#!/bin/bash
# Images that qemu-img creates (every vmdk subformat, vpc dynamic/fixed,
# vhdx options, vdi dynamic/static, qed, qcow, parallels) and qemu-io
# fills: qimg reads them bit-exactly, and its info (human and JSON), map,
# check (also -r), compare and measure (-O qcow2 and raw) print what
# qemu-img prints; qimg converts them to qcow2 cleanly; resizes both tools
# refuse get qemu-img's message (growing: test-formats-matrix-resize.sh).
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib.sh"
. "$HERE/fmt-matrix.sh"

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
    # repair modes (parallels is read-only in qimg, see below)
    if [ $f != parallels ]; then
        same_as_qemu check -f $f -r leaks q.$f
        same_as_qemu check -f $f -r all --output=json q.$f
    fi
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

finish
