#!/bin/bash
# Every subformat and create option of vmdk (adapter_type, compat6,
# hwversion, toolsversion, zeroed_grain, preallocation), made by qimg: the
# same "Formatting" line, the same files (the CID aside) and info as
# qemu-img's for the same options; filled by qimg convert from raw and from
# qcow2, each image passes qemu-img check, compares equal, reads back
# bit-exactly, has info and map byte-identical to qemu-img's, converts on
# to qcow2 cleanly, and is read by libvmdk (vmdkinfo, vmdkmount).
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
finish
