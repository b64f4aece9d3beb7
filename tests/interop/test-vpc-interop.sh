#!/bin/bash
# vpc (VHD): images qimg creates pass qemu-img's reading and compare equal
# to their source; images qemu-img/qemu-io write read bit-exactly in qimg;
# info, create and map output as qemu-img prints them; fixed-disk probing,
# force_size, creator quirks, growing resize; libvhdi as a third reader.
. "$(dirname "$0")/../lib.sh"

# info after the file's allocation settled (the filesystem may still be
# trimming speculative preallocation, which changes "disk size").
same_info() { sync "${@: -1}" 2>/dev/null; same_as_qemu info "$@"; }

head -c 3M /dev/urandom > src.raw
truncate -s 9M src.raw
head -c 1M /dev/urandom | dd of=src.raw bs=1M seek=7 conv=notrunc status=none

# create: same "Formatting" line and the same image (but for timestamps,
# UUIDs and checksums) as qemu-img, for every subformat.
for o in "" "subformat=fixed" "force_size=on" "subformat=fixed,force_size=on"; do
    rm -f q.vpc m.vpc
    same_as_qemu create -f vpc ${o:+-o $o} c.vpc 9M
    $QEMU_IMG create -f vpc ${o:+-o $o} q.vpc 9M >/dev/null
    $QIMG create -f vpc ${o:+-o $o} m.vpc 9M >/dev/null
    expect_eq "file size [$o]" "$(stat -c %s q.vpc)" "$(stat -c %s m.vpc)"
    same_info -f vpc m.vpc
    same_info -f vpc --output=json m.vpc
    rm -f c.vpc
done

# convert raw -> vpc by qimg: qemu-img reads the same bytes.
for o in "" "subformat=fixed" "force_size=on" "subformat=fixed,force_size=on"; do
    rm -f m.vpc
    $QIMG convert -f raw -O vpc ${o:+-o $o} src.raw m.vpc || fail "convert [$o]"
    $QEMU_IMG compare -f raw -F vpc src.raw m.vpc >/dev/null ||
        check_fail "qemu-img compare raw vs qimg vpc [$o]"
    $QIMG convert -f vpc -O raw m.vpc back.raw || fail "convert back [$o]"
    $QEMU_IMG convert -f vpc -O raw m.vpc qback.raw
    cmp -s back.raw qback.raw || check_fail "vpc -> raw differs from qemu [$o]"
done

# qemu-io fills a dynamic image; qimg reads it bit-exactly, maps it the same.
rm -f q.vpc
$QEMU_IMG create -f vpc q.vpc 20M >/dev/null
$QEMU_IO -f vpc -c 'write -P 0xab 512 3M' -c 'write -P 0x11 10M 100k' \
    -c 'write -z 12M 64k' q.vpc >/dev/null || fail "qemu-io write"
$QIMG convert -f vpc -O raw q.vpc m.raw || fail "qimg read qemu vpc"
$QEMU_IMG convert -f vpc -O raw q.vpc q.raw
cmp -s m.raw q.raw || check_fail "qemu-written vpc read differs"
same_as_qemu map -f vpc --output=json q.vpc
same_as_qemu map -f vpc q.vpc
same_info q.vpc

# qimg writes into a qemu-made image, qemu reads the result.
$QIMG_IO -f vpc -c 'write -P 0x5a 5M 1M' q.vpc >/dev/null || fail "qimg-io write"
$QEMU_IO -f vpc -c 'read -P 0x5a 5M 1M' -c 'read -P 0x11 10M 100k' q.vpc |
    grep -q 'Pattern verification failed' && check_fail "qemu reads qimg's write wrong"

# A fixed VHD is found by its footer at the end (qemu-img guesses raw).
rm -f f.vpc
$QIMG create -f vpc -o subformat=fixed f.vpc 4M >/dev/null
expect_eq "fixed probe" "file format: vpc" "$($QIMG info f.vpc | sed -n 2p)"

# force_size: the virtual size is exactly what was asked, in whole MiB.
rm -f fs.vpc
truncate -s 10M ten.raw
$QIMG convert -f raw -O vpc -o subformat=fixed,force_size=on ten.raw fs.vpc || fail "force_size"
expect_eq "force_size size" 10485760 \
    "$($QEMU_IMG info -f vpc --output=json fs.vpc | sed -n 's/.*"virtual-size": \([0-9]*\).*/\1/p')"

# Hyper-V ("win ") images are sized by current_size, not CHS geometry.
rm -f hv.vpc
$QEMU_IMG create -f vpc -o subformat=fixed hv.vpc 10M >/dev/null
sz=$(( $(stat -c %s hv.vpc) - 512 ))
python3 - hv.vpc "$sz" <<'PY'
import struct, sys
path, off = sys.argv[1], int(sys.argv[2])
with open(path, 'r+b') as f:
    f.seek(off); ft = bytearray(f.read(512))
    ft[28:32] = b'win '
    struct.pack_into('>Q', ft, 48, 10 * 1024 * 1024 - 4096)   # current_size
    ft[64:68] = b'\0\0\0\0'
    struct.pack_into('>I', ft, 64, (~sum(ft)) & 0xffffffff)
    f.seek(off); f.write(ft)
PY
same_info -f vpc hv.vpc

# Growing resize, dynamic and fixed; qemu-img reads the grown images.
for o in "" "subformat=fixed"; do
    rm -f g.vpc
    $QIMG convert -f raw -O vpc ${o:+-o $o} src.raw g.vpc || fail "convert g [$o]"
    $QIMG resize -f vpc g.vpc 40M >/dev/null || check_fail "resize [$o]"
    size=$($QEMU_IMG info -f vpc --output=json g.vpc | sed -n 's/.*"virtual-size": \([0-9]*\).*/\1/p')
    [ "$size" -ge 41943040 ] || check_fail "grown size $size [$o]"
    $QEMU_IMG convert -f vpc -O raw g.vpc g.raw
    cmp -s -n 9437184 g.raw src.raw || check_fail "resized content [$o]"
    [ -z "$(tail -c +9437185 g.raw | tr -d '\0' | head -c 1)" ] || check_fail "resized tail not zero [$o]"
    $QIMG_IO -f vpc -c 'write -P 0x77 39M 1M' g.vpc >/dev/null || check_fail "write grown [$o]"
    $QEMU_IO -f vpc -c 'read -P 0x77 39M 1M' g.vpc | grep -q 'verification failed' &&
        check_fail "grown write [$o]"
done

# libvhdi reads qimg's images the same (when FUSE is usable).
if command -v vhdimount >/dev/null && [ -w /dev/fuse ]; then
    rm -f m.vpc; mkdir -p mnt
    $QIMG convert -f raw -O vpc src.raw m.vpc
    if vhdimount m.vpc mnt >/dev/null 2>&1; then
        cmp -s -n 9437184 mnt/vhdi1 src.raw || check_fail "vhdimount content"
        fusermount -u mnt 2>/dev/null || umount mnt
    fi
fi
# qemu-img 7.2 cannot measure for these formats; neither does qimg.
for f in vpc vmdk vhdx; do
    same_as_qemu measure -O $f --size 100M
    same_as_qemu measure -O $f src.raw
done
finish
