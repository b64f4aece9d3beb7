#!/bin/bash
# vhdx: images qimg creates (every option) pass qemu-img check and compare
# equal to their source; qemu-written images read bit-exactly; create/info
# output as qemu-img's; dirty-log replay (and the read-only refusal);
# growing resize; libvhdi as a third reader.
. "$(dirname "$0")/../lib.sh"

# info after the file's allocation settled (the filesystem may still be
# trimming speculative preallocation, which changes "disk size").
same_info() { sync "${@: -1}" 2>/dev/null; same_as_qemu info "$@"; }

head -c 3M /dev/urandom > src.raw
truncate -s 20M src.raw
head -c 1M /dev/urandom | dd of=src.raw bs=1M seek=17 conv=notrunc status=none

for o in "" "subformat=fixed" "block_size=1M" "block_state_zero=off" \
         "log_size=3M,block_size=32M" "block_size=512M" "log_size=1500k"; do
    rm -f m.vhdx c.vhdx
    same_as_qemu create -f vhdx ${o:+-o $o} c.vhdx 20M
    $QIMG convert -f raw -O vhdx ${o:+-o $o} src.raw m.vhdx || fail "convert [$o]"
    qemu_check_clean m.vhdx vhdx
    images_equal src.raw m.vhdx raw vhdx
    $QIMG convert -f vhdx -O raw m.vhdx back.raw || fail "read back [$o]"
    cmp -s back.raw src.raw || check_fail "read back [$o]"
    same_info m.vhdx
    same_info --output=json m.vhdx
done
for o in "block_size=3M" "subformat=foo"; do
    rm -f c.vhdx
    same_as_qemu create -f vhdx -o $o c.vhdx 20M
done
rm -f c.vhdx
same_as_qemu create -f vhdx c.vhdx 65T

# Images qemu-io filled read bit-exactly.
rm -f q.vhdx
$QEMU_IMG create -f vhdx q.vhdx 100M >/dev/null
$QEMU_IO -f vhdx -c 'write -P 0xab 0 100k' -c 'write -P 0x12 30M 9M' \
    -c 'write -z 31M 1M' -c 'write -P 0x99 99M 1M' q.vhdx >/dev/null
$QIMG convert -f vhdx -O raw q.vhdx m.raw || fail "read qemu vhdx"
$QEMU_IMG convert -f vhdx -O raw q.vhdx q.raw
cmp -s m.raw q.raw || check_fail "qemu-written vhdx read differs"
same_info q.vhdx
# qimg writes into it; qemu reads the result.
$QIMG_IO -f vhdx -c 'write -P 0x5a 60M 3M' q.vhdx >/dev/null || fail "qimg-io write"
qemu_check_clean q.vhdx vhdx
$QEMU_IO -f vhdx -c 'read -P 0x5a 60M 3M' -c 'read -P 0x99 99M 1M' q.vhdx |
    grep -q 'verification failed' && check_fail "qemu reads qimg's write wrong"

# A dirty log: read-only opens refuse (as qemu-img), a writable open
# (qimg-io's) replays it exactly as qemu-img's check -r all does.
rm -f w.vhdx
$QEMU_IMG create -f vhdx w.vhdx 64M >/dev/null
$QEMU_IO -f vhdx -c 'write -P 0xab 0 1M' -c 'write -P 0xcd 20M 64k' w.vhdx >/dev/null
python3 "$TEST_SRCDIR/data/vhdx-dirty-log.py" w.vhdx || fail "dirty-log helper"
cp w.vhdx w2.vhdx
cp w.vhdx dirty.vhdx
same_info w.vhdx
# check without -r refuses; check -r all replays and reports it as qemu-img.
same_as_qemu_setup() { cp dirty.vhdx d.vhdx; }
same_as_qemu check d.vhdx
same_as_qemu check -r all d.vhdx
unset -f same_as_qemu_setup
$QIMG_IO -f vhdx -c 'read 0 512' w.vhdx >/dev/null || check_fail "qimg-io replay"
$QEMU_IMG check -r all w2.vhdx >/dev/null 2>&1
$QEMU_IMG convert -O raw w.vhdx m.raw
$QEMU_IMG convert -O raw w2.vhdx q.raw
cmp -s m.raw q.raw || check_fail "log replay differs from qemu's"
qemu_check_clean w.vhdx vhdx

# qimg's own log entries (BAT updates go through the log): revived after
# the fact, qemu-img replays them to the right image.
rm -f lg.vhdx
$QIMG convert -f raw -O vhdx src.raw lg.vhdx || fail "convert lg"
python3 "$TEST_SRCDIR/data/vhdx-dirty-log.py" lg.vhdx || fail "revive qimg's log"
$QEMU_IMG check -r all lg.vhdx >/dev/null 2>&1 || check_fail "qemu replay of qimg's log"
images_equal src.raw lg.vhdx raw vhdx

# Growing resize; data and zeros survive.
rm -f g.vhdx
$QIMG convert -f raw -O vhdx src.raw g.vhdx
$QIMG resize -f vhdx g.vhdx 100M >/dev/null || check_fail "resize"
qemu_check_clean g.vhdx vhdx
expect_eq "resized" 104857600 \
    "$($QEMU_IMG info --output=json g.vhdx | sed -n 's/^    "virtual-size": \([0-9]*\).*/\1/p')"
$QIMG_IO -f vhdx -c 'write -P 0x44 90M 1M' g.vhdx >/dev/null || check_fail "write grown"
$QEMU_IO -f vhdx -c 'read -P 0x44 90M 1M' -c 'read -P 0 40M 1M' g.vhdx |
    grep -q 'verification failed' && check_fail "grown image read by qemu"
$QEMU_IMG convert -O raw g.vhdx g.raw
cmp -s -n 20971520 g.raw src.raw || check_fail "resized content"

# libvhdi reads qimg's images (when FUSE is usable).
if command -v vhdimount >/dev/null && [ -w /dev/fuse ]; then
    for o in "" "subformat=fixed"; do
        rm -f m.vhdx; mkdir -p mnt
        $QIMG convert -f raw -O vhdx ${o:+-o $o} src.raw m.vhdx
        vhdiinfo m.vhdx >/dev/null 2>&1 || check_fail "vhdiinfo [$o]"
        if vhdimount m.vhdx mnt >/dev/null 2>&1; then
            cmp -s mnt/vhdi1 src.raw || check_fail "vhdimount content [$o]"
            fusermount -u mnt 2>/dev/null || umount mnt
        fi
    done
fi
finish
