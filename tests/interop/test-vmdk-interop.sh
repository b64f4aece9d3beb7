#!/bin/bash
# vmdk: every subformat qimg creates passes qemu-img check and compares
# equal to its source; qemu-written images read bit-exactly; info/map/create
# output as qemu-img prints it; streamOptimized in VMware's complete layout
# (footer and end-of-stream marker); backing files; growing resize; libvmdk
# as a third reader.
. "$(dirname "$0")/../lib.sh"

# info after the file's allocation settled (the filesystem may still be
# trimming speculative preallocation, which changes "disk size").
same_info() { sync "${@: -1}" 2>/dev/null; same_as_qemu info "$@"; }

head -c 3M /dev/urandom > src.raw
truncate -s 9M src.raw
head -c 1M /dev/urandom | dd of=src.raw bs=1M seek=7 conv=notrunc status=none

subs="monolithicSparse monolithicFlat twoGbMaxExtentSparse twoGbMaxExtentFlat streamOptimized"
for sub in $subs; do
    rm -rf m*.vmdk q m
    # Same layout as qemu-img's (the CID aside): compare the extent files.
    # CIDs are printed without leading zeros, so an embedded descriptor's
    # zero padding may be one byte longer in one file: NULs are dropped.
    mkdir q m
    $QEMU_IMG create -f vmdk -o subformat=$sub q/x.vmdk 9M >/dev/null
    $QIMG create -f vmdk -o subformat=$sub m/x.vmdk 9M >/dev/null || fail "create $sub"
    if [ $sub != streamOptimized ]; then
        for f in q/*.vmdk; do
            cmp -s <(sed 's/^CID=.*//' "$f" | tr -d '\0') \
                   <(sed 's/^CID=.*//' "m/${f#q/}" | tr -d '\0') ||
                check_fail "$sub: $f differs from qemu-img's"
        done
    fi
    qemu_check_clean m/x.vmdk vmdk
    $QIMG convert -f raw -O vmdk -o subformat=$sub src.raw m.vmdk || fail "convert $sub"
    qemu_check_clean m.vmdk vmdk
    images_equal src.raw m.vmdk raw vmdk
    $QIMG convert -f vmdk -O raw m.vmdk back.raw || fail "read back $sub"
    cmp -s back.raw src.raw || check_fail "$sub read back"
    same_info m.vmdk
    same_info --output=json m.vmdk
    [ $sub = streamOptimized ] || same_as_qemu map --output=json m.vmdk
done

# create options and their errors, as qemu-img.
for o in "adapter_type=lsilogic,hwversion=7,toolsversion=42" "compat6=on" \
         "zeroed_grain=on" "adapter_type=foo" "compat6=on,hwversion=7" \
         "subformat=monolithicFlat,backing_file=x.vmdk"; do
    rm -f c*.vmdk
    same_as_qemu create -f vmdk -o "$o" c.vmdk 5M
done

# streamOptimized ends like VMware's: footer marker, footer, EOS marker.
python3 - m.vmdk <<'PY' || check_fail "streamOptimized trailer"
import struct, sys
d = open(sys.argv[1], 'rb').read()
assert d[-512:] == b'\0' * 512, 'no end-of-stream marker'
assert struct.unpack_from('<I', d, len(d) - 1536 + 12)[0] == 3, 'no footer marker'
assert d[-1024:-1020] == b'KDMV', 'no footer'
assert struct.unpack_from('<Q', d, 56)[0] == 2**64 - 1, 'header gd not at end'
PY

# qemu-io fills images; qimg reads them bit-exactly.
for sub in monolithicSparse twoGbMaxExtentSparse streamOptimized \
           "monolithicSparse,zeroed_grain=on"; do
    rm -f q*.vmdk
    size=100M; case $sub in twoGb*) size=2100M ;; esac
    $QEMU_IMG create -f vmdk -o subformat=$sub q.vmdk $size >/dev/null
    $QEMU_IO -f vmdk -c 'write -P 0xab 0 100k' -c 'write -P 0x12 20M 2M' \
        -c 'write -P 0x33 50M 64k' -c 'write -z 50M 32k' -c 'write -P 0x44 99M 1M' \
        q.vmdk >/dev/null 2>&1
    [ $size = 2100M ] && $QEMU_IO -f vmdk -c 'write -P 0x55 2047M 2M' q.vmdk >/dev/null
    $QIMG convert -f vmdk -O raw q.vmdk m.raw || fail "read qemu $sub"
    $QEMU_IMG compare -f raw -F vmdk m.raw q.vmdk >/dev/null ||
        check_fail "qemu-written $sub read differs"
    $QIMG compare -f raw -F vmdk m.raw q.vmdk >/dev/null ||
        check_fail "qimg compare of qemu-written $sub"
    same_info q.vmdk
    same_as_qemu map --output=json q.vmdk
    rm -f m.raw
done

# Backing file: qimg creates the overlay, both tools read through it.
rm -f base.vmdk top.vmdk
$QIMG convert -f raw -O vmdk src.raw base.vmdk
$QIMG create -f vmdk -b base.vmdk -F vmdk top.vmdk >/dev/null || fail "overlay"
$QIMG_IO -f vmdk -c 'write -P 0x66 1000k 10k' top.vmdk >/dev/null || fail "overlay write"
qemu_check_clean top.vmdk vmdk
$QEMU_IO -f vmdk -c 'read -P 0x66 1000k 10k' top.vmdk | grep -q 'verification failed' &&
    check_fail "overlay write read by qemu"
$QEMU_IMG convert -O raw top.vmdk q.raw
$QIMG convert -O raw top.vmdk m.raw
cmp -s q.raw m.raw || check_fail "overlay read differs"
same_info top.vmdk
same_as_qemu map --output=json top.vmdk

# A hand-written descriptor with FLAT, SPARSE and VMFS extents.
rm -f x*.vmdk
head -c 1M /dev/urandom > f1.img
head -c 512k /dev/urandom > f2.img
$QEMU_IMG create -f vmdk -o subformat=twoGbMaxExtentSparse x.vmdk 1M >/dev/null
$QEMU_IO -f vmdk -c 'write -P 0x3c 64k 200k' x.vmdk >/dev/null
desc() {
    printf '# Disk DescriptorFile\nversion=1\nCID=0badcafe\nparentCID=ffffffff\ncreateType="monolithicFlat"\n\n# Extent description\n'
    printf '%s\n' "$@"
}
desc 'RW 2048 FLAT "f1.img" 0' 'RW 2048 SPARSE "x-s001.vmdk"' 'RW 1024 VMFS "f2.img"' > multi.vmdk
$QIMG convert -O raw multi.vmdk m.raw || fail "multi-extent read"
$QEMU_IMG convert -O raw multi.vmdk q.raw
cmp -s m.raw q.raw || check_fail "multi-extent descriptor read differs"
same_info multi.vmdk
same_info --output=json multi.vmdk
same_as_qemu map --output=json multi.vmdk
# ZERO and read-only extents (qemu-img 7.2 drops such lines; the format
# says a ZERO extent reads as zeros and RDONLY data is still part of the
# disk).
desc 'RW 1024 FLAT "f1.img" 1024' 'RW 2048 ZERO' 'RDONLY 1024 FLAT "f2.img" 0' > zro.vmdk
$QIMG convert -O raw zro.vmdk z.raw || fail "ZERO/RDONLY read"
{ tail -c 512k f1.img; head -c 1M /dev/zero; cat f2.img; } > z.expect
cmp -s z.raw z.expect || check_fail "ZERO/RDONLY extent content"
$QIMG_IO -f vmdk -c 'write -P 1 1536k 4k' zro.vmdk >/dev/null 2>&1 &&
    check_fail "write into a read-only extent succeeded"

# Zeroed-grain entries for whole grains written as zeros.
rm -f zg.vmdk
$QIMG create -f vmdk -o zeroed_grain=on zg.vmdk 4M >/dev/null
$QIMG_IO -f vmdk -c 'write -P 0x11 0 1M' -c 'write -z 64k 128k' -c 'write -z 300k 4k' \
    zg.vmdk >/dev/null || check_fail "zeroed grain writes"
qemu_check_clean zg.vmdk vmdk
$QEMU_IO -f vmdk -c 'read -P 0x11 0 64k' -c 'read -P 0 64k 128k' -c 'read -P 0x11 192k 108k' \
    -c 'read -P 0 300k 4k' -c 'read -P 0x11 304k 720k' zg.vmdk | grep -q 'verification failed' &&
    check_fail "zeroed grains read by qemu"
same_as_qemu map --output=json zg.vmdk

# VMware 3 (COWD) sparse images, which qemu-img reads but cannot create.
rm -f cowd.vmdk
python3 "$TEST_SRCDIR/data/mk-cowd.py" cowd.vmdk || fail "mk-cowd"
$QIMG convert -O raw cowd.vmdk m.raw || fail "COWD read"
$QEMU_IMG convert -O raw cowd.vmdk q.raw
cmp -s m.raw q.raw || check_fail "COWD read differs"
same_info cowd.vmdk
same_as_qemu map --output=json cowd.vmdk

# To and from qcow2.
rm -f c.qcow2 c.vmdk c2.qcow2
$QEMU_IMG convert -f raw -O qcow2 src.raw c.qcow2
$QIMG convert -O vmdk c.qcow2 c.vmdk || fail "qcow2 -> vmdk"
images_equal c.qcow2 c.vmdk qcow2 vmdk
$QIMG convert -O qcow2 c.vmdk c2.qcow2 || fail "vmdk -> qcow2"
images_equal src.raw c2.qcow2 raw qcow2
qemu_check_clean c2.qcow2 qcow2

# Growing resize of monolithicSparse and monolithicFlat.
for sub in monolithicSparse monolithicFlat; do
    rm -f g*.vmdk
    $QIMG convert -f raw -O vmdk -o subformat=$sub src.raw g.vmdk
    $QIMG resize -f vmdk g.vmdk 20M >/dev/null || check_fail "resize $sub"
    qemu_check_clean g.vmdk vmdk
    expect_eq "resized $sub" 20971520 \
        "$($QEMU_IMG info --output=json g.vmdk | sed -n 's/^    "virtual-size": \([0-9]*\).*/\1/p')"
    $QIMG_IO -f vmdk -c 'write -P 0x44 19M 1M' g.vmdk >/dev/null || check_fail "write grown $sub"
    $QEMU_IO -f vmdk -c 'read -P 0x44 19M 1M' -c 'read -P 0 10M 1M' g.vmdk |
        grep -q 'verification failed' && check_fail "grown $sub read by qemu"
done

# libvmdk reads the stream image (when FUSE is usable).
if command -v vmdkmount >/dev/null && [ -w /dev/fuse ]; then
    rm -f s.vmdk; mkdir -p mnt
    $QIMG convert -f raw -O vmdk -o subformat=streamOptimized src.raw s.vmdk
    if vmdkmount s.vmdk mnt >/dev/null 2>&1; then
        cmp -s mnt/vmdk1 src.raw || check_fail "vmdkmount content"
        fusermount -u mnt 2>/dev/null || umount mnt
    fi
fi
finish
