#!/bin/bash
# vdi: images made and filled by qemu-img/qemu-io read bit-exactly; images
# qimg converts into (dynamic and static) pass qemu-img check and compare
# equal; qimg-io writes the same bytes as qemu-io; growing; hostile headers.
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib.sh"
. "$HERE/fmt-hostile.sh"

# Source data: random, a zero run, a hole, an odd tail.
head -c 3M /dev/urandom > src.raw
dd if=/dev/zero of=src.raw bs=64k seek=20 count=20 conv=notrunc status=none
truncate -s 7M src.raw
printf 'tail' | dd of=src.raw bs=1 seek=7000000 conv=notrunc status=none

# qemu-made images, read by qimg.
for opt in "static=off" "static=on"; do
    rm -f q.vdi
    $QEMU_IMG create -q -f vdi -o $opt q.vdi 9M || fail "qemu-img create $opt"
    $QEMU_IO -f vdi -c 'write -P 0xab 1M 64k' -c 'write -P 0x12 3000k 900k' \
        -c 'write -P 7 8M 512' q.vdi >/dev/null || fail "qemu-io $opt"
    $QEMU_IMG convert -f vdi -O raw q.vdi ref.raw
    rm -f got.raw
    $QIMG convert -f vdi -O raw q.vdi got.raw || check_fail "qimg read $opt"
    cmp -s ref.raw got.raw || check_fail "read of qemu's $opt image differs"
    # probing finds vdi
    rm -f got.raw
    $QIMG convert -O raw q.vdi got.raw 2>probe.err || check_fail "probe $opt"
    cmp -s ref.raw got.raw || check_fail "probed read differs ($opt)"
    [ -s probe.err ] && check_fail "probe warned: $(cat probe.err)"
done

# qimg-made images: qemu-img check clean, content equal, both directions.
for opt in "" "-o static=off" "-o static=on"; do
    rm -f m.vdi back.raw
    $QIMG convert -f raw -O vdi $opt src.raw m.vdi || { check_fail "convert $opt"; continue; }
    qemu_check_clean m.vdi vdi
    images_equal src.raw m.vdi raw vdi
    $QIMG convert -f vdi -O raw m.vdi back.raw || check_fail "back $opt"
    cmp -s src.raw back.raw || check_fail "round trip differs ($opt)"
done
expect_eq "static image type" 2 "$(od -An -tu4 -j 76 -N 4 m.vdi | tr -d ' ')"

# Writes through qimg-io land byte for byte where qemu-io puts them.
$QEMU_IMG create -q -f vdi w.vdi 5M || fail "create w.vdi"
io_same_as_qemu w.vdi -f vdi -c 'write -P 0x5a 100k 8k' -c 'write -P 1 4M 1M' \
    -c 'write -P 2 1000k 100k' -c 'read -P 0x5a 100k 8k' @IMG@
cp w.vdi w2.vdi
$QIMG_IO -f vdi -c 'write -P 0x5a 100k 8k' -c 'write -z 4M 1M' w2.vdi >/dev/null ||
    check_fail "qimg-io write"
qemu_check_clean w2.vdi vdi

# Growing (qemu-img refuses; qimg keeps the image valid for qemu-img),
# including a block map that has to make room by moving data blocks.
for opt in static=off static=on; do
    rm -f g.vdi g.raw
    $QIMG convert -f raw -O vdi -o $opt src.raw g.vdi || fail "convert $opt"
    $QIMG_IO -f vdi -c 'truncate 300M' g.vdi >/dev/null || check_fail "grow $opt"
    qemu_check_clean g.vdi vdi
    expect_eq "grown size ($opt)" 314572800 \
        "$($QEMU_IMG info --output=json g.vdi | sed -n 's/.*"virtual-size": \([0-9]*\).*/\1/p')"
    $QEMU_IMG convert -f vdi -O raw g.vdi g.raw
    cmp -s -n 7340032 src.raw g.raw || check_fail "grown image lost data ($opt)"
    $QEMU_IO -f vdi -c 'write -P 9 299M 1M' g.vdi >/dev/null && qemu_check_clean g.vdi vdi
done

# Hostile headers: each a clean error.
$QEMU_IMG create -q -f vdi h.vdi 4M
$QEMU_IO -f vdi -c 'write -P 1 0 1M' h.vdi >/dev/null
bad() { cp h.vdi bad.vdi; patch_bytes bad.vdi "$@"; }
bad 0x40 '<I' 0x12345678;  clean_error "bad signature" $QIMG convert -f vdi -O raw bad.vdi o.raw
bad 0x44 '<I' 0x00020000;  clean_error "bad version" $QIMG convert -f vdi -O raw bad.vdi o.raw
bad 0x154 '<I' 0x7ffffe00; clean_error "block map past end" $QIMG convert -f vdi -O raw bad.vdi o.raw
bad 0x180 '<I' 0x7fffffff; clean_error "too many blocks" $QIMG convert -f vdi -O raw bad.vdi o.raw
bad 0x178 '<I' 3000;       clean_error "block size" $QIMG convert -f vdi -O raw bad.vdi o.raw
bad 0x170 '<Q' 0x40000000; clean_error "disk larger than map" $QIMG convert -f vdi -O raw bad.vdi o.raw
bad 0x200 '<I' 0x00ffffff; clean_error "block past end" $QIMG convert -f vdi -O raw bad.vdi o.raw
bad 0x1a8 '<I' 1;          clean_error "link uuid" $QIMG convert -f vdi -O raw bad.vdi o.raw
head -c 300 h.vdi > bad.vdi; clean_error "truncated" $QIMG convert -f vdi -O raw bad.vdi o.raw
# An allocation count below the blocks in use must not let a new block
# overwrite data: the write fails and the data stays.
bad 0x184 '<I' 0
run_tool stale "$QIMG_IO" -f vdi -c 'write -P 9 2M 4k' bad.vdi
expect_eq "stale allocation count: write" "write failed: Input/output error" "$(cat stale.out)"
$QEMU_IO -f vdi -c 'read -P 1 0 1M' bad.vdi | grep -q 'verification failed' &&
    check_fail "data overwritten through a stale allocation count"
# The same messages as qemu-img for the header checks it shares.
# (Other block sizes are read by qimg: test-vdi-blocksize.sh.)
for spec in "0x40 <I 0x12345678" "0x44 <I 0x00020000" "0x168 <I 1024"; do
    bad $spec
    same_as_qemu convert -f vdi -O raw bad.vdi o.raw
done

finish
