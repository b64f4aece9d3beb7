#!/bin/bash
# qcow2 read path: images written by the real qemu-io (every cluster size
# class, compat 0.10/1.1, refcount widths, extended L2, zlib/zstd
# compression, data files, a chain of three, snapshots) read by qimg
# bit-exactly, compared with qemu-img's own raw conversion.
. "$(dirname "$0")/../lib.sh"

# write_pattern IMG : a mix of data, zero, discarded and compressed ranges
write_pattern() {
    "$QEMU_IO" -f qcow2 -c "write -P 0xa1 0 100k" -c "write -P 0xa2 300k 1m" \
        -c "write -z 500k 200k" -c "discard 900k 128k" \
        -c "write -P 0xa3 3000 5000" -c "write -P 0xa4 3m 17k" \
        -c "write -z -u 1500k 64k" "$1" >/dev/null || fail "qemu-io on $1"
}

same_raw() { # same_raw IMG : qimg and qemu-img give the same raw bytes
    "$QEMU_IMG" convert -O raw "$1" "$1.ref.raw" || fail "qemu-img convert $1"
    "$QIMG" convert -O raw "$1" "$1.got.raw" 2>"$T/conv.err" ||
        { check_fail "qimg convert $1: $(cat "$T/conv.err")"; return; }
    cmp -s "$1.ref.raw" "$1.got.raw" || check_fail "content differs: $1"
    rm -f "$1.ref.raw" "$1.got.raw"
}

n=0
for o in cluster_size=512 cluster_size=64k cluster_size=2M compat=0.10 \
         refcount_bits=1 refcount_bits=64 extended_l2=on \
         extended_l2=on,cluster_size=16k compression_type=zstd \
         lazy_refcounts=on cluster_size=4k,refcount_bits=8; do
    n=$((n + 1))
    "$QEMU_IMG" create -q -f qcow2 -o "$o" i$n.qcow2 4M
    write_pattern i$n.qcow2
    # Compressed clusters (qemu-io compresses whole clusters only).
    cs=$("$QEMU_IMG" info --output=json i$n.qcow2 | sed -n 's/.*"cluster-size": \([0-9]*\).*/\1/p')
    "$QEMU_IO" -f qcow2 -c "write -c -P 0xc1 $((cs * 40)) $cs" \
        -c "write -c -P 0xc2 $((cs * 41)) $cs" i$n.qcow2 >/dev/null 2>&1
    same_raw i$n.qcow2
done

# A chain of three with partial-cluster writes at every level.
"$QEMU_IMG" create -q -f qcow2 base.qcow2 4M
"$QEMU_IO" -c "write -P 0x11 0 4M" base.qcow2 >/dev/null
"$QEMU_IMG" create -q -f qcow2 -o cluster_size=4k -b base.qcow2 -F qcow2 mid.qcow2
"$QEMU_IO" -c "write -P 0x22 10k 100k" -c "write -z 1m 10k" mid.qcow2 >/dev/null
"$QEMU_IMG" create -q -f qcow2 -o extended_l2=on -b mid.qcow2 -F qcow2 top.qcow2 3M
"$QEMU_IO" -c "write -P 0x33 5000 3000" -c "discard 2m 64k" -c "write -z 1030k 2k" \
    top.qcow2 >/dev/null
same_raw top.qcow2
same_raw mid.qcow2

# External data file, raw and not.
"$QEMU_IMG" create -q -f qcow2 -o data_file=d1.raw df1.qcow2 4M
write_pattern df1.qcow2
same_raw df1.qcow2
"$QEMU_IMG" create -q -f qcow2 -o data_file=d2.raw,data_file_raw=on df2.qcow2 4M
write_pattern df2.qcow2
same_raw df2.qcow2

# Internal snapshots: the active layer and each snapshot (-l).
"$QEMU_IMG" create -q -f qcow2 s.qcow2 4M
"$QEMU_IO" -c "write -P 1 0 1M" s.qcow2 >/dev/null
"$QEMU_IMG" snapshot -c one s.qcow2
"$QEMU_IO" -c "write -P 2 512k 1M" s.qcow2 >/dev/null
"$QEMU_IMG" snapshot -c two s.qcow2
"$QEMU_IO" -c "write -P 3 0 64k" s.qcow2 >/dev/null
same_raw s.qcow2
for sn in one two; do
    "$QEMU_IMG" convert -l "$sn" -O raw s.qcow2 sn.ref.raw
    "$QIMG" convert -l "$sn" -O raw s.qcow2 sn.got.raw 2>"$T/sn.err" ||
        check_fail "qimg convert -l $sn: $(cat "$T/sn.err")"
    cmp -s sn.ref.raw sn.got.raw || check_fail "snapshot $sn content differs"
done

# qimg-io reads back the exact pattern.
"$QIMG_IO" -f qcow2 -c "read -P 0xa1 8000 94400" -c "read -P 0xa3 3000 5000" -c "read -P 0 500k 200k" \
    -c "read -P 0xa4 3m 17k" i2.qcow2 >/dev/null || check_fail "qimg-io read -P"
finish
