#!/bin/bash
# qcow2 map against qemu-img map (human and json, byte for byte): images
# preallocated with metadata (holes in the file show as zero data, found
# by asking the file layer), falloc and full, clusters zero-written over
# allocated data, discarded ranges, small clusters, extended L2 entries,
# compressed clusters and images qimg preallocates itself.
. "$(dirname "$0")/../lib.sh"

map_same() { # map_same IMG LABEL
    local fmt
    for fmt in human json; do
        "$QEMU_IMG" map --output=$fmt "$1" >ref.map 2>&1; echo $? >>ref.map
        "$QIMG" map --output=$fmt "$1" >got.map 2>&1; echo $? >>got.map
        cmp -s ref.map got.map || {
            check_fail "map $fmt differs: $2"; diff ref.map got.map | head -10 >&2; }
    done
}

ops='-c "write -P 1 64k 64k" -c "write -z 1M 64k" -c "write -P 2 1500k 4k" -c "discard 2M 128k"'
for p in metadata falloc full; do
    for o in "" cluster_size=512 extended_l2=on compat=0.10 cluster_size=2M; do
        rm -f a.qcow2
        "$QEMU_IMG" create -q -f qcow2 -o preallocation=$p${o:+,$o} a.qcow2 3M
        map_same a.qcow2 "created prealloc=$p $o"
        eval "\"\$QEMU_IO\" $ops a.qcow2" >/dev/null
        map_same a.qcow2 "written prealloc=$p $o"
    done
    # Preallocated by qimg, written by qimg-io.
    rm -f b.qcow2
    "$QIMG" create -q -f qcow2 -o preallocation=$p b.qcow2 3M
    map_same b.qcow2 "qimg create prealloc=$p"
    eval "\"\$QIMG_IO\" $ops b.qcow2" >/dev/null
    map_same b.qcow2 "qimg-io written prealloc=$p"
    # Grown with preallocation.
    "$QIMG" resize -q --preallocation=$p b.qcow2 5M
    map_same b.qcow2 "qimg resize prealloc=$p"
done

# Zero writes over allocated data (with and without unmap), a sparse
# image with data, zero and unallocated clusters, compressed clusters.
rm -f c.qcow2
"$QEMU_IMG" create -q -f qcow2 c.qcow2 4M
"$QEMU_IO" -c "write -P 3 0 4M" -c "write -z 64k 128k" -c "write -z -u 1M 192k" \
    -c "discard 2M 64k" -c "write -c -P 4 3M 64k" c.qcow2 >/dev/null
map_same c.qcow2 "zero-written over data"
rm -f d.qcow2
"$QIMG" create -q -f qcow2 d.qcow2 4M
"$QIMG_IO" -c "write -P 3 0 4M" -c "write -z 64k 128k" -c "write -z -u 1M 192k" \
    -c "discard 2M 64k" -c "write -c -P 4 3M 64k" d.qcow2 >/dev/null
map_same d.qcow2 "qimg-io zero-written over data"
"$QEMU_IMG" map --output=json c.qcow2 | sed 's/"offset": [0-9]*/O/' >c.map
"$QEMU_IMG" map --output=json d.qcow2 | sed 's/"offset": [0-9]*/O/' >d.map
cmp -s c.map d.map || check_fail "qimg-io zero writes map differently from qemu-io's"

# Backing chain over a metadata-preallocated base.
rm -f base.qcow2 top.qcow2
"$QEMU_IMG" create -q -f qcow2 -o preallocation=metadata base.qcow2 2M
"$QEMU_IO" -c "write -P 5 0 64k" base.qcow2 >/dev/null
"$QEMU_IMG" create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2
"$QEMU_IO" -c "write -P 6 1M 64k" top.qcow2 >/dev/null
map_same top.qcow2 "chain over prealloc=metadata"
finish
