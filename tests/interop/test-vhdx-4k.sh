#!/bin/bash
# vhdx with 4 KiB logical and physical sectors (Hyper-V's default): qimg
# reads and writes them, including the chunk ratio that depends on the
# sector size (a 5 GiB image with 1 MiB blocks has a sector bitmap entry
# after block 4095 with 512-byte sectors, but not with 4 KiB ones).
# qemu-img 7.2 refuses such images ("Operation not supported"), so the
# content is checked against qemu-io's writes on a raw image and, when
# FUSE is usable, against libvhdi.
. "$(dirname "$0")/../lib.sh"

# lss4k IMG: set the logical and physical sector size items to 4096.
lss4k() {
    python3 - "$1" <<'PY' || fail "lss4k $1"
import struct, sys
ids = {bytes.fromhex('1dbf41816fa90947ba47f233a8faab5f'),
       bytes.fromhex('c748a3cd5d4471449cc9e9885251c556')}
with open(sys.argv[1], 'r+b') as f:
    f.seek(192 * 1024); rt = f.read(64 * 1024)
    meta = [struct.unpack_from('<Q', rt, 16 + 32 * i + 16)[0] for i in range(2)
            if rt[16 + 32 * i:16 + 32 * i + 4] == bytes.fromhex('06a27c8b')][0]
    f.seek(meta); t = f.read(64 * 1024)
    for i in range(struct.unpack_from('<H', t, 10)[0]):
        e = t[32 + 32 * i:64 + 32 * i]
        if e[:16] in ids:
            f.seek(meta + struct.unpack_from('<I', e, 16)[0])
            f.write(struct.pack('<I', 4096))
PY
}

$QEMU_IMG create -f vhdx -o block_size=1M big.vhdx 5G >/dev/null
lss4k big.vhdx
run_tool q "$QEMU_IMG" info big.vhdx
expect_eq "qemu-img refuses 4 KiB sectors" \
    "qemu-img: Could not open 'big.vhdx': Could not open 'big.vhdx': Operation not supported" \
    "$(cat q.err)"
$QIMG info --output=json big.vhdx > info.json || check_fail "qimg info"
grep -q '"virtual-size": 5368709120,' info.json || check_fail "virtual size"

# Writes, aligned and not (read-modify-write of 4 KiB sectors), on both
# sides of the 4 GiB point where the 512-byte chunk ratio would insert a
# sector bitmap entry.
cmds=(-c 'write -P 0x11 0 64k' -c 'write -P 0x22 1000 3000' -c 'write -P 0x33 1048000 10000'
      -c 'write -P 0x44 4294963200 8192' -c 'write -P 0x55 4831838208 12288'
      -c 'write -P 0x66 5368700000 8000')
$QIMG_IO -f vhdx "${cmds[@]}" big.vhdx >/dev/null || check_fail "qimg-io writes"
truncate -s 5G want.raw
$QEMU_IO -f raw "${cmds[@]}" want.raw >/dev/null
$QIMG compare -f vhdx -F raw big.vhdx want.raw >/dev/null || check_fail "content after writes"
# The 4.5 GiB write landed in BAT entry 4608 (no bitmap entry before it).
python3 - big.vhdx <<'PY' || check_fail "BAT entry 4608"
import struct, sys
with open(sys.argv[1], 'rb') as f:
    f.seek(2 * 1024 * 1024 + 8 * 4608)
    e = struct.unpack('<Q', f.read(8))[0]
sys.exit(0 if e & 7 == 6 else 1)
PY
# Reopened: same content; map shows the allocated blocks.
$QIMG map --output=json big.vhdx > map.json || check_fail "map"
expect_eq "extents with data" 5 "$(grep -c '"zero": false, "data": true' map.json)"
if command -v vhdimount >/dev/null && [ -w /dev/fuse ]; then
    mkdir -p mnt
    if vhdimount big.vhdx mnt >/dev/null 2>&1; then
        for r in 0:1 4094:4 4608:1 5119:1; do
            dd if=mnt/vhdi1 of=a.bin bs=1M skip=${r%:*} count=${r#*:} status=none
            dd if=want.raw of=b.bin bs=1M skip=${r%:*} count=${r#*:} status=none
            cmp -s a.bin b.bin || check_fail "libvhdi MiB $r"
        done
        fusermount -u mnt 2>/dev/null || umount mnt
    fi
fi
# check (qimg) finds nothing wrong; a grow keeps the content.
$QIMG check big.vhdx >/dev/null || check_fail "qimg check"
$QIMG resize big.vhdx 6G >/dev/null || check_fail "resize"
truncate -s 6G want.raw
$QIMG compare -f vhdx -F raw big.vhdx want.raw >/dev/null || check_fail "content after resize"
run_tool r "$QIMG" resize big.vhdx +1000
expect_eq "resize to a non-multiple of 4096" 1 "$(cat r.rc)"
finish
