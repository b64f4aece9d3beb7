#!/bin/bash
# qed: qemu-made images read bit-exactly (zero clusters, backing files);
# images qimg writes pass qemu-img check and compare equal; qimg-io writes
# the same bytes as qemu-io; need-check handling; growing; hostile input.
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib.sh"
. "$HERE/fmt-hostile.sh"

head -c 3M /dev/urandom > src.raw
dd if=/dev/zero of=src.raw bs=64k seek=20 count=20 conv=notrunc status=none
truncate -s 7M src.raw
printf 'tail' | dd of=src.raw bs=1 seek=7000000 conv=notrunc status=none

# qemu-made image with data, zero clusters and a backing file.
$QEMU_IMG create -q -f raw base.raw 8M
$QEMU_IO -f raw -c 'write -P 0x11 0 8M' base.raw >/dev/null
$QEMU_IMG create -q -f qed -b base.raw -F raw q.qed || fail "create q.qed"
$QEMU_IO -f qed -c 'write -P 0xab 1M 64k' -c 'write -z 2M 128k' \
    -c 'write -P 0x12 3000k 900k' -c 'write -P 5 100k 3k' q.qed >/dev/null
$QEMU_IMG convert -O raw q.qed ref.raw
$QIMG convert -O raw q.qed got.raw || check_fail "qimg read"
cmp -s ref.raw got.raw || check_fail "read of qemu's image differs"

# qimg-made images with each option: check clean, equal, both directions.
for opt in "" "-o cluster_size=4k" "-o cluster_size=1M,table_size=2" \
           "-o table_size=16" "-o cluster_size=2M"; do
    rm -f m.qed back.raw
    $QIMG convert -f raw -O qed $opt src.raw m.qed || { check_fail "convert $opt"; continue; }
    qemu_check_clean m.qed qed
    images_equal src.raw m.qed raw qed
    $QIMG convert -f qed -O raw m.qed back.raw || check_fail "back $opt"
    cmp -s src.raw back.raw || check_fail "round trip differs ($opt)"
done

# Writes over a backing file through qimg-io: same bytes as qemu-io.
rm -f w.qed
$QEMU_IMG create -q -f qed -b base.raw -F raw w.qed
io_same_as_qemu w.qed -f qed -c 'write -P 0x5a 100k 8k' -c 'write -P 1 4M 1M' \
    -c 'write -P 2 1000k 100k' -c 'read -P 0x11 0 100k' -c 'read -P 0x5a 100k 8k' @IMG@
cp w.qed w2.qed
$QIMG_IO -f qed -c 'write -P 0x5a 100k 8k' -c 'write -z 3M 1M' -c 'write -z 5000k 3k' \
    w2.qed >/dev/null || check_fail "qimg-io writes"
qemu_check_clean w2.qed qed
$QEMU_IO -f qed -c 'read -P 0x5a 100k 8k' -c 'read -P 0 3M 1M' -c 'read -P 0 5000k 3k' \
    -c 'read -P 0x11 6M 1M' w2.qed | grep -q 'Pattern verification failed' &&
    check_fail "qimg-io writes read back wrong"
# Without a backing file, writes leave no need-check flag behind.
$QEMU_IMG create -q -f qed n.qed 4M
io_same_as_qemu n.qed -f qed -c 'write -P 3 0 300k' -c 'write -P 4 1M 64k' @IMG@
expect_eq "need-check cleared" 0 "$(od -An -tu1 -j16 -N1 n.qed | tr -d ' ')"

# An image left dirty (need-check set) with a leaked cluster is repaired
# when opened for writing, as QEMU does.
$QEMU_IMG create -q -f qed d.qed 4M
$QEMU_IO -f qed -c 'write -P 3 0 64k' d.qed >/dev/null
printf '\x02' | dd of=d.qed bs=1 seek=16 conv=notrunc status=none
truncate -s +64k d.qed
$QIMG_IO -r -f qed -c 'read -P 3 0 64k' d.qed >/dev/null || check_fail "read dirty image"
expect_eq "read-only open keeps the flag" 2 "$(od -An -tu1 -j16 -N1 d.qed | tr -d ' ')"
$QIMG_IO -f qed -c 'write -P 4 64k 64k' d.qed >/dev/null || check_fail "write dirty image"
expect_eq "flag cleared" 0 "$(od -An -tu1 -j16 -N1 d.qed | tr -d ' ')"
$QEMU_IO -f qed -c 'read -P 3 0 64k' -c 'read -P 4 64k 64k' d.qed | grep -q 'verification failed' &&
    check_fail "dirty image data"

# Growing works; shrinking is refused with qemu's message.
cp m.qed g.qed
$QIMG_IO -f qed -c 'truncate 300M' g.qed >/dev/null || check_fail "grow"
qemu_check_clean g.qed qed
expect_eq "grown size" 314572800 \
    "$($QEMU_IMG info --output=json g.qed | sed -n 's/.*"virtual-size": \([0-9]*\).*/\1/p')"

# Hostile images: each a clean error.
$QEMU_IMG create -q -f qed h.qed 4M
$QEMU_IO -f qed -c 'write -P 1 0 128k' h.qed >/dev/null
bad() { cp h.qed bad.qed; patch_bytes bad.qed "$@"; }
rd() { clean_error "$1" $QIMG convert -f qed -O raw bad.qed o.raw; }
bad 0 '<I' 0x12345678;            rd "bad magic"
bad 4 '<I' 1000;                  rd "bad cluster size"
bad 8 '<I' 64;                    rd "table size too large"
bad 40 '<Q' 0x7fff0000;           rd "L1 past the end"
bad 48 '<Q' 0x7fffffffffffff00;   rd "image size too large"
bad 16 '<Q' 0x80;                 rd "unknown feature"
bad 16 '<Q' 1; patch_bytes bad.qed 56 '<II' 0x10000 100; rd "backing name past header"
bad 65536 '<Q' 0x7fff0000;        rd "L2 past the end"
bad 458752 '<Q' 0x7fff0000;       rd "data cluster past the end"
bad 458752 '<Q' 0x1234;           rd "unaligned data cluster"
head -c 1000 h.qed > bad.qed;     rd "truncated"
for spec in "0 <I 0x12345678" "4 <I 1000" "8 <I 64" "40 <Q 0x7fff0000" "16 <Q 0x80"; do
    bad $spec
    same_as_qemu convert -f qed -O raw bad.qed o.raw
done

# A backing loop between two images.
$QEMU_IMG create -q -f qed -u -b m2.qed -F qed m1.qed 4M
$QEMU_IMG create -q -f qed -u -b m1.qed -F qed m2.qed 4M
clean_error "backing loop (convert)" $QIMG convert -O raw m1.qed o.raw
clean_error "backing loop (info)" $QIMG info --backing-chain m1.qed
grep -q "creates an infinite loop" "$T/hostile.err" ||
    check_fail "backing loop: $(cat "$T/hostile.err")"

finish
