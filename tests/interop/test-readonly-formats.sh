#!/bin/bash
# parallels, bochs, cloop, dmg (read-only): parallels images made by
# qemu-img read bit-exactly; bochs, cloop and dmg images built from their
# published layouts (mkimg.py) read back as the raw bytes they were built
# from; opening any of them for writing gives qemu-img's error; malformed
# images are clean errors (see test-readonly-hostile.sh for those).
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib.sh"
. "$HERE/fmt-hostile.sh"
MKIMG="python3 $HERE/mkimg.py"

# Parallels: both cluster sizes, data written by qemu-io, qemu's conversion
# as the reference.
for cs in 1M 64k; do
    rm -f p.hdd ref.raw got.raw
    $QEMU_IMG create -q -f parallels -o cluster_size=$cs p.hdd 8M || fail "create parallels"
    $QEMU_IO -f parallels -c 'write -P 5 1M 100k' -c 'write -P 6 5000k 2M' \
        -c 'write -P 7 8188k 4k' p.hdd >/dev/null
    $QEMU_IMG convert -O raw p.hdd ref.raw
    $QIMG convert -O raw p.hdd got.raw || check_fail "qimg read parallels $cs"
    cmp -s ref.raw got.raw || check_fail "parallels $cs read differs"
    same_as_qemu map --output=json p.hdd
    same_as_qemu info p.hdd
done
same_as_qemu info --output=json p.hdd
# The older "WithoutFreeSpace" flavour counts BAT offsets in sectors.
python3 - <<'PY' || fail "v1 parallels"
import struct
d = bytearray(open("p.hdd", "rb").read())
tracks, entries = struct.unpack_from("<II", d, 28)
d[0:16] = b"WithoutFreeSpace"
for i in range(entries):
    (e,) = struct.unpack_from("<I", d, 64 + 4 * i)
    struct.pack_into("<I", d, 64 + 4 * i, e * tracks)
open("v1.hdd", "wb").write(d)
PY
rm -f got.raw
$QIMG convert -f parallels -O raw v1.hdd got.raw || check_fail "read v1 parallels"
cmp -s ref.raw got.raw || check_fail "v1 parallels read differs"
rm -f q.raw; $QEMU_IMG convert -f parallels -O raw v1.hdd q.raw
cmp -s ref.raw q.raw || check_fail "qemu-img reads the v1 image differently"
# A qimg round trip through raw and back to parallels with qemu-img.
rm -f back.hdd; $QEMU_IMG convert -O parallels got.raw back.hdd
images_equal got.raw back.hdd raw parallels

# Source bytes: random data, zero runs (whole and partial extents), a tail.
head -c 700k /dev/urandom > src.raw
dd if=/dev/zero of=src.raw bs=4k seek=20 count=40 conv=notrunc status=none
dd if=/dev/zero of=src.raw bs=512 seek=3 count=2 conv=notrunc status=none
truncate -s 1M src.raw

for f in bochs cloop dmg-rsrc dmg-xml; do
    fmt=${f%-*}
    img=img.$f
    [ $fmt = dmg ] && img=img-$f.dmg
    $MKIMG $f src.raw $img || fail "mkimg $f"
    rm -f got.raw
    $QIMG convert -f $fmt -O raw $img got.raw || check_fail "read $f"
    cmp -s src.raw got.raw || check_fail "$f read differs"
    # Probing: bochs by its header, dmg by its name, cloop by its preamble.
    rm -f got.raw
    $QIMG convert -O raw $img got.raw 2>/dev/null && cmp -s src.raw got.raw ||
        check_fail "$f probed read differs"
    # Writing is refused as qemu-img refuses it.
    same_as_qemu resize -f $fmt $img 2M
    run_tool w "$QIMG_IO" -f $fmt -c 'write 0 512' $img
    expect_eq "$f write refused" "qimg-io: can't open device $img: Image is read-only" "$(cat w.err)"
done
# qemu-img reads what mkimg builds too (its dmg needs an extra module for
# bzip2 chunks, so only bochs and cloop are compared here).
for f in bochs cloop; do
    rm -f q.raw; $QEMU_IMG convert -f $f -O raw img.$f q.raw
    cmp -s src.raw q.raw || check_fail "mkimg's $f image is not what qemu-img reads"
    same_as_qemu info img.$f
    same_as_qemu info --output=json img.$f
done
$QIMG_IO -r -f parallels -c 'read -P 5 1M 100k' p.hdd | grep -q 'verification failed' &&
    check_fail "parallels read through qimg-io"

# lzfse chunks: a clear error, not garbage.
$MKIMG dmg-xml src.raw lz.dmg lzfse
clean_error "lzfse chunk" $QIMG convert -f dmg -O raw lz.dmg o.raw

finish
