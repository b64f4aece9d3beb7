#!/bin/bash
# Every subformat and create option of vpc (also as "vhd"), vhdx, vdi, qed
# and qcow (vmdk: test-formats-matrix-vmdk.sh), made by qimg: the same
# "Formatting" line and (UUIDs, timestamps aside) the same info and file
# size as qemu-img's image for the same options; filled by qimg convert
# from raw and from qcow2, each image passes qemu-img check (or gets its
# refusal, for formats without checks), compares equal with qemu-img
# compare, reads back bit-exactly, has info (human and JSON) and map
# byte-identical to qemu-img's, converts on to qcow2 cleanly, and is read
# by libvhdi (vhdiinfo, vhdimount).
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib.sh"
. "$HERE/fmt-matrix.sh"

for o in "" subformat=fixed force_size=on "subformat=fixed,force_size=on"; do
    case_run vpc "$o"
done
case_run vhd ""
case_run vhd subformat=fixed
for o in "" subformat=fixed block_size=1M block_state_zero=off log_size=2M \
         "block_size=8M,log_size=4M" "subformat=fixed,block_size=2M"; do
    case_run vhdx "$o"
done
for o in "" static=on static=off; do
    case_run vdi "$o"
done
for o in "" cluster_size=4k table_size=8 "cluster_size=1M,table_size=2"; do
    case_run qed "$o"
done
case_run qcow ""
finish
