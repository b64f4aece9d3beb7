#!/bin/bash
# qcow (version 1): qemu-made images read bit-exactly (plain, compressed,
# over a backing file); qimg-made images (plain and convert -c) compare
# equal with qemu-img; qimg-io writes match qemu-io's bytes; encrypted
# images fail with qemu-img's message; hostile headers are clean errors.
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib.sh"
. "$HERE/fmt-hostile.sh"

# Compressible source: text-like runs, random runs, zeros, an odd tail.
python3 - <<'PY'
import os, random
random.seed(7)
out = bytearray()
for i in range(48):
    kind = i % 4
    if kind == 0:
        out += (b"qimg %d " % i) * (65536 // 8)
    elif kind == 1:
        out += os.urandom(65536)
    elif kind == 2:
        out += bytes(65536)
    else:
        out += bytes(random.choice(b"abc") for _ in range(65536))
out = out[:3 * 1024 * 1024]
open("src.raw", "wb").write(out)
PY
truncate -s 5M src.raw
printf 'tail' | dd of=src.raw bs=1 seek=5000000 conv=notrunc status=none

# qemu-made images read by qimg.
$QEMU_IMG convert -f raw -O qcow src.raw q.qcow
$QEMU_IMG convert -c -f raw -O qcow src.raw qc.qcow
for img in q.qcow qc.qcow; do
    rm -f got.raw
    $QIMG convert -O raw $img got.raw || check_fail "qimg read $img"
    cmp -s src.raw got.raw || check_fail "read of qemu's $img differs"
done
$QEMU_IMG create -q -f qcow -b q.qcow -F qcow ov.qcow
$QEMU_IO -f qcow -c 'write -P 0xab 1M 4k' -c 'write -P 0xcd 4000k 1536' ov.qcow >/dev/null
$QEMU_IMG convert -O raw ov.qcow ref.raw
rm -f got.raw
$QIMG convert -O raw ov.qcow got.raw || check_fail "qimg read overlay"
cmp -s ref.raw got.raw || check_fail "read of qemu's overlay differs"

# qimg-made images, plain and compressed, both directions.
for opt in "" "-c"; do
    rm -f m.qcow back.raw
    $QIMG convert $opt -f raw -O qcow src.raw m.qcow || { check_fail "convert $opt"; continue; }
    images_equal src.raw m.qcow raw qcow
    $QIMG convert -f qcow -O raw m.qcow back.raw || check_fail "back $opt"
    cmp -s src.raw back.raw || check_fail "round trip differs ($opt)"
done
[ "$(stat -c %s m.qcow)" -lt "$(stat -c %s q.qcow)" ] ||
    check_fail "convert -c did not compress ($(stat -c %s m.qcow) bytes)"
# compressed images written by qimg and by qemu-img hold the same bytes
cmp -s m.qcow qc.qcow || check_fail "convert -c output differs from qemu-img's"

# Writes through qimg-io: plain, over a backing file, over compressed data.
$QEMU_IMG create -q -f qcow w.qcow 5M
io_same_as_qemu w.qcow -f qcow -c 'write -P 0x5a 100k 8k' -c 'write -P 1 4M 1M' \
    -c 'write -P 2 1000k 100k' -c 'read -P 0x5a 100k 8k' @IMG@
io_same_as_qemu ov.qcow -f qcow -c 'write -P 0x5a 2M 4k' -c 'read -P 0xab 1M 4k' @IMG@
cp qc.qcow wc.qcow
$QIMG_IO -f qcow -c 'write -P 0x77 70000 1000' wc.qcow >/dev/null || check_fail "write over compressed"
$QEMU_IMG convert -O raw wc.qcow wc.raw
printf '\x77%.0s' $(seq 1000) | dd of=src.raw bs=1 seek=70000 conv=notrunc status=none
cmp -s src.raw wc.raw || check_fail "write over a compressed cluster"

# Encrypted images: info works, reading needs the secret (qemu's message).
$QEMU_IMG create -q -f qcow --object secret,id=s0,data=abc \
    -o encrypt.format=aes,encrypt.key-secret=s0 enc.qcow 1M
same_as_qemu info enc.qcow
same_as_qemu convert -O raw enc.qcow enc.raw
rm -f enc.raw
clean_error "encrypted with a secret" $QIMG convert --object secret,id=s0,data=abc \
    --image-opts driver=qcow,file.filename=enc.qcow,encrypt.key-secret=s0 -O raw enc.raw

# Hostile headers.
$QEMU_IMG create -q -f qcow h.qcow 4M
$QEMU_IO -f qcow -c 'write -P 1 0 64k' h.qcow >/dev/null
bad() { cp h.qcow bad.qcow; patch_bytes bad.qcow "$@"; }
rd() { clean_error "$1" $QIMG convert -f qcow -O raw bad.qcow o.raw; }
bad 0 '>I' 0x12345678;          rd "bad magic"
bad 4 '>I' 2;                   rd "version 2"
bad 32 '>B' 30;                 rd "cluster bits"
bad 33 '>B' 20;                 rd "l2 bits"
bad 24 '>Q' 0x7fffffffffff0000; rd "size too large"
bad 40 '>Q' 0x7fff0000;         rd "L1 past the end"
bad 8 '>QI' 48 5000;            rd "backing name too long"
bad 48 '>Q' 0x7fff0000;         rd "L2 past the end"
bad 36 '>I' 7;                  rd "unknown encryption"
head -c 30 h.qcow > bad.qcow;   rd "truncated"
for spec in "0 >I 0x12345678" "32 >B 30" "33 >B 20" "36 >I 7"; do
    bad $spec
    same_as_qemu convert -f qcow -O raw bad.qcow o.raw
done

# A backing loop between two images.
$QEMU_IMG create -q -f qcow -u -b m2.qcow -F qcow m1.qcow 4M
$QEMU_IMG create -q -f qcow -u -b m1.qcow -F qcow m2.qcow 4M
clean_error "backing loop (convert)" $QIMG convert -O raw m1.qcow o.raw
clean_error "backing loop (info)" $QIMG info --backing-chain m1.qcow
grep -q "creates an infinite loop" "$T/hostile.err" ||
    check_fail "backing loop: $(cat "$T/hostile.err")"

finish
