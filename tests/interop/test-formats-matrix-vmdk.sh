#!/bin/bash
# Every subformat and create option of vmdk (adapter_type, compat6,
# hwversion, toolsversion, zeroed_grain, preallocation), made by qimg: the
# same "Formatting" line, the same files (the CID aside) and info as
# qemu-img's for the same options; filled by qimg convert from raw and from
# qcow2, each image passes qemu-img check, compares equal, reads back
# bit-exactly, has info and map byte-identical to qemu-img's, converts on
# to qcow2 cleanly, and is read by libvmdk (vmdkinfo, vmdkmount); and
# convert -c as qemu-img takes it.
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib.sh"
. "$HERE/fmt-matrix.sh"

for o in "" subformat=monolithicFlat subformat=twoGbMaxExtentSparse \
         subformat=twoGbMaxExtentFlat subformat=streamOptimized \
         adapter_type=lsilogic adapter_type=buslogic adapter_type=legacyESX \
         "subformat=monolithicFlat,adapter_type=lsilogic" compat6=on \
         "subformat=streamOptimized,compat6=on" hwversion=4 hwversion=7 \
         toolsversion=42 zeroed_grain=on "zeroed_grain=on,compat6=on" \
         preallocation=full "subformat=monolithicFlat,preallocation=falloc"; do
    case_run vmdk "$o"
done

# convert -c: accepted for the subformats with grains (same content as a
# plain convert), refused for flat ones with qemu-img's message.
for sub in monolithicSparse twoGbMaxExtentSparse streamOptimized; do
    rm -f c*.vmdk
    $QIMG convert -c -f raw -O vmdk -o subformat=$sub src.raw c.vmdk ||
        { check_fail "convert -c $sub"; continue; }
    qemu_check_clean c.vmdk vmdk
    images_equal src.raw c.vmdk raw vmdk
done
same_as_qemu_setup() { rm -f c*.vmdk; }
same_as_qemu convert -c -f raw -O vmdk -o subformat=monolithicFlat src.raw c.vmdk
same_as_qemu convert -c -f raw -O vmdk -o subformat=twoGbMaxExtentFlat src.raw c.vmdk
unset -f same_as_qemu_setup
finish
