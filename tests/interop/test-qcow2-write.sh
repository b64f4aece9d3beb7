#!/bin/bash
# qcow2 write path: images created and written by qimg (data, zero writes
# with and without unmap, discards, compressed writes, partial clusters,
# backing chains with copy-on-write) pass `qemu-img check` and hold the
# same content as the same writes done by qemu-img and qemu-io.
. "$(dirname "$0")/../lib.sh"

OPS=(-c "write -P 0xab 0 64k" -c "write -P 0xcd 100k 300k"
     -c "write -z 2M 64k" -c "write -P 0x22 3000 5000" -c "discard 64k 64k"
     -c "write -z 3M 1k" -c "write -P 0x33 1M 4k" -c "write -z -u 128k 64k"
     -c "write -P 0x44 2080k 100k" -c "write -z 2090k 10k"
     -c "write -P 0x55 4000k 96k" -c "write -P 0x66 1500k 1k")

# run_both NAME CREATE-OPTS [more qemu-io args...]
run_both() {
    local name=$1 o=$2; shift 2
    rm -f $name.got $name.ref ${name}_d*.raw
    "$QIMG" create -q -f qcow2 ${o:+-o "${o//@/${name}_dg.raw}"} $name.got 4M ||
        { check_fail "qimg create $o"; return; }
    "$QEMU_IMG" create -q -f qcow2 ${o:+-o "${o//@/${name}_dr.raw}"} $name.ref 4M
    "$QIMG_IO" -f qcow2 "${OPS[@]}" "$@" $name.got >/dev/null 2>"$T/io.err" ||
        check_fail "qimg-io ($o): $(cat "$T/io.err")"
    "$QEMU_IO" -f qcow2 "${OPS[@]}" "$@" $name.ref >/dev/null 2>&1
    qemu_check_clean $name.got
    images_equal $name.got $name.ref qcow2 qcow2
}

run_both plain ""
run_both c512 cluster_size=512 -c "write -c -P 0x11 3200k 64k"
run_both c2m cluster_size=2M
run_both v2 compat=0.10 -c "write -c -P 0x11 3200k 64k"
run_both r1 refcount_bits=1 -c "write -c -P 0x11 3200k 64k"
run_both r64 refcount_bits=64,cluster_size=4k -c "write -c -P 0x11 3200k 64k"
run_both xl2 extended_l2=on -c "write -c -P 0x11 3200k 64k" -c "write -P 7 3201k 3k"
run_both xl2s extended_l2=on,cluster_size=16k -c "write -z 40k 3k" -c "write -z 33k 9k"
run_both zstd compression_type=zstd -c "write -c -P 0x11 3200k 64k" -c "write -P 9 3210k 512"
run_both zlib compression_type=zlib -c "write -c -P 0x11 3200k 64k" -c "write -c -P 0x12 3264k 64k"
run_both meta preallocation=metadata
run_both falloc preallocation=falloc,cluster_size=4k
run_both df data_file=@
run_both dfraw data_file=@,data_file_raw=on
cmp -s dfraw_dg.raw dfraw_dr.raw || check_fail "raw data files differ"
run_both dfx data_file=@,extended_l2=on

# Refcount table growth and reuse of freed clusters.
"$QIMG" create -q -f qcow2 -o cluster_size=512,refcount_bits=64 g.got 32M
"$QEMU_IMG" create -q -f qcow2 -o cluster_size=512,refcount_bits=64 g.ref 32M
G=(-c "write -P 1 0 6M" -c "discard 1M 2M" -c "write -P 2 20M 3M" -c "write -P 3 1M 1M")
"$QIMG_IO" -f qcow2 "${G[@]}" g.got >/dev/null || check_fail "qimg-io growth"
"$QEMU_IO" -f qcow2 "${G[@]}" g.ref >/dev/null
qemu_check_clean g.got
images_equal g.got g.ref
[ "$(stat -c %s g.got)" -le "$(stat -c %s g.ref)" ] ||
    check_fail "freed clusters were not reused"

# A chain of three: copy-on-write of partial clusters from the backing
# chain, in several layouts of the top image.
"$QEMU_IMG" create -q -f qcow2 base 4M
"$QEMU_IO" -c "write -P 0x61 0 4M" base >/dev/null
"$QEMU_IMG" create -q -f qcow2 -b base -F qcow2 mid
"$QEMU_IO" -c "write -P 0x62 64k 200k" -c "write -z 1M 100k" mid >/dev/null
C=(-c "write -P 0x71 3000 5000" -c "write -P 0x72 70k 3k" -c "write -z 1030k 3k"
   -c "discard 2M 128k" -c "write -z 3M 64k" -c "write -P 0x73 3500k 300k")
for o in "" extended_l2=on compat=0.10 cluster_size=4k; do
    rm -f top.got top.ref
    "$QIMG" create -q -f qcow2 -b mid -F qcow2 ${o:+-o $o} top.got
    "$QEMU_IMG" create -q -f qcow2 -b mid -F qcow2 ${o:+-o $o} top.ref
    "$QIMG_IO" -f qcow2 "${C[@]}" top.got >/dev/null || check_fail "qimg-io chain $o"
    "$QEMU_IO" -f qcow2 "${C[@]}" top.ref >/dev/null
    qemu_check_clean top.got
    images_equal top.got top.ref
done

# Compressed writes cannot overwrite allocated clusters (qemu's EIO).
"$QIMG" create -q -f qcow2 cw 1M
"$QIMG_IO" -f qcow2 -c "write -P 1 0 64k" cw >/dev/null
if "$QIMG_IO" -f qcow2 -c "write -c -P 2 0 64k" cw >/dev/null 2>&1; then
    check_fail "compressed overwrite of an allocated cluster succeeded"
fi
qemu_check_clean cw

# A dirty image (lazy refcounts, writer killed) is repaired when opened
# for writing, as qemu does, and keeps its data.
"$QEMU_IMG" create -q -f qcow2 -o lazy_refcounts=on lazy 4M
{ "$QEMU_IO" -c "write -P 1 0 1M" -c "write -P 2 2M 64k" -c abort lazy >/dev/null 2>&1; } 2>/dev/null
"$QEMU_IMG" info --output=json lazy | grep -q '"dirty-flag": true' ||
    check_fail "qemu-io abort did not leave the image dirty"
"$QIMG_IO" -f qcow2 -c "write -P 3 3M 64k" lazy >/dev/null 2>"$T/lazy.err" ||
    check_fail "write to a dirty image: $(cat "$T/lazy.err")"
qemu_check_clean lazy
"$QEMU_IO" -c "read -P 1 0 1M" -c "read -P 2 2M 64k" -c "read -P 3 3M 64k" lazy |
    grep -q "Pattern verification failed" && check_fail "dirty image lost data"
"$QEMU_IMG" info --output=json lazy | grep -q '"dirty-flag": false' ||
    check_fail "dirty flag not cleared"

# Enabled ("auto") bitmaps follow writes and are stored on close, in use
# no more; disabled ones and reads change nothing, and the directory
# stays valid (test-qcow2-bitmap-writes.sh compares the bits with qemu).
"$QEMU_IMG" create -q -f qcow2 bm 4M
"$QEMU_IMG" bitmap --add bm on
"$QEMU_IMG" bitmap --add bm off
"$QEMU_IMG" bitmap --disable bm off
"$QIMG_IO" -f qcow2 -c "read 0 64k" bm >/dev/null
"$QEMU_IMG" info --output=json bm | grep -q in-use && check_fail "a read marked bitmaps"
"$QIMG_IO" -f qcow2 -c "write -P 1 0 64k" bm >/dev/null || check_fail "write with bitmaps"
"$QEMU_IMG" info --output=json bm | tr -d ' \n' >"$T/bm.json"
grep -q '"flags":\["auto"\],"name":"on"' "$T/bm.json" ||
    check_fail "enabled bitmap left in use: $(cat "$T/bm.json")"
grep -q '"flags":\[\],"name":"off"' "$T/bm.json" || check_fail "disabled bitmap changed"
qemu_check_clean bm

# Sequential writes become few large host writes: a 16 MiB write to a new
# image is not split per cluster.
"$QIMG" create -q -f qcow2 -o cluster_size=4k seq 16M
if command -v strace >/dev/null; then
    strace -f -e trace=pwrite64 -o "$T/st" "$QIMG_IO" -f qcow2 -c "write -P 5 0 16M" seq >/dev/null
    nw=$(grep -c pwrite64 "$T/st")
    [ "$nw" -lt 64 ] || check_fail "16 MiB write used $nw host writes"
fi
finish
