#!/bin/bash
# vhdx hostile input: truncated files, bad header / region table checksums,
# regions and BAT entries past the end, tables too large, invalid metadata,
# a log pointing outside the file.  Each must fail cleanly.
. "$(dirname "$0")/../lib.sh"

# info after the file's allocation settled (the filesystem may still be
# trimming speculative preallocation, which changes "disk size").
same_info() { sync "${@: -1}" 2>/dev/null; same_as_qemu info "$@"; }
. "$TEST_SRCDIR/interop/fmt-hostile.sh"

$QEMU_IMG create -f vhdx base.vhdx 64M >/dev/null
$QEMU_IO -f vhdx -c 'write -P 0x11 0 1M' base.vhdx >/dev/null 2>&1
fresh() { cp base.vhdx h.vhdx; }

# vhdx_patch IMG WHAT OFF FMT VAL: patch both headers ("header", OFF inside
# the header) or both region tables ("region"), or the metadata item area
# ("meta", OFF from the metadata region), fixing the CRC-32C of headers
# and region tables.
vhdx_patch() {
    python3 - "$@" <<'PY' || fail "vhdx_patch $*"
import struct, sys
img, what, off, fmt, val = sys.argv[1], sys.argv[2], int(sys.argv[3], 0), sys.argv[4], int(sys.argv[5], 0)
def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF
with open(img, 'r+b') as f:
    if what == 'meta':
        f.seek(192 * 1024); rt = f.read(64 * 1024)
        meta = [struct.unpack_from('<Q', rt, 16 + 32 * i + 16)[0] for i in range(2)
                if rt[16 + 32 * i:16 + 32 * i + 4] == bytes.fromhex('06a27c8b')][0]
        f.seek(meta + off); f.write(struct.pack(fmt, val))
        sys.exit(0)
    bases, size = ((64 * 1024, 128 * 1024), 4096) if what == 'header' else ((192 * 1024, 256 * 1024), 65536)
    for base in bases:
        f.seek(base); b = bytearray(f.read(size))
        struct.pack_into(fmt, b, off, val)
        b[4:8] = b'\0\0\0\0'
        struct.pack_into('<I', b, 4, crc32c(bytes(b)))
        f.seek(base); f.write(b)
PY
}

# 1. Truncated: smaller than the header area.
head -c 200000 base.vhdx > t.vhdx
clean_error "truncated" $QIMG info -f vhdx t.vhdx
# 2. Both headers' checksums wrong.
fresh; patch_bytes h.vhdx $((64 * 1024 + 4)) '<I' 1; patch_bytes h.vhdx $((128 * 1024 + 4)) '<I' 1
clean_error "header checksums" $QIMG info -f vhdx h.vhdx
# 3. Both region tables' checksums wrong.
fresh; patch_bytes h.vhdx $((192 * 1024 + 4)) '<I' 1; patch_bytes h.vhdx $((256 * 1024 + 4)) '<I' 1
clean_error "region checksums" $QIMG info -f vhdx h.vhdx
# 4. The BAT region past the end of the file; too many region entries.
fresh; vhdx_patch h.vhdx region 32 '<Q' 0x100000000000
clean_error "BAT region offset" $QIMG info -f vhdx h.vhdx
fresh; vhdx_patch h.vhdx region 8 '<I' 0x7fffffff
clean_error "region entry count" $QIMG info -f vhdx h.vhdx
# 5. A BAT too small for the disk size (size made huge).
fresh; vhdx_patch h.vhdx meta 0x10008 '<Q' 0x3fffffffff000
clean_error "BAT too small" $QIMG info -f vhdx h.vhdx
# 6. Invalid block size and logical sector size.
fresh; vhdx_patch h.vhdx meta 0x10000 '<I' 12345
clean_error "block size" $QIMG info -f vhdx h.vhdx
fresh; vhdx_patch h.vhdx meta 0x10020 '<I' 1000
clean_error "logical sector size" $QIMG info -f vhdx h.vhdx
# 7. A BAT entry pointing past the end of the file.
fresh; patch_bytes h.vhdx $((2 * 1024 * 1024)) '<Q' $(( (1 << 40) | 6 ))
clean_error "BAT entry" $QIMG info -f vhdx h.vhdx
# 8. The log outside the file, and a log length that is not whole MiB.
fresh; vhdx_patch h.vhdx header 72 '<Q' 0x100000000000
clean_error "log offset" $QIMG info -f vhdx h.vhdx
fresh; vhdx_patch h.vhdx header 68 '<I' 12345
clean_error "log length" $QIMG info -f vhdx h.vhdx
# 9. The has-parent flag without a parent locator (test-vhdx-diff.sh
# covers broken parent links, loops and malformed locators).
fresh; vhdx_patch h.vhdx meta 0x10004 '<I' 2
clean_error "has parent" $QIMG info -f vhdx h.vhdx
# 10. A dirty log opened read-only: refused with qemu-img's message.
rm -f w.vhdx
$QEMU_IMG create -f vhdx w.vhdx 64M >/dev/null
$QEMU_IO -f vhdx -c 'write -P 0xab 0 1M' w.vhdx >/dev/null
python3 "$TEST_SRCDIR/data/vhdx-dirty-log.py" w.vhdx || fail "dirty-log helper"
clean_error "dirty log read-only" $QIMG convert -O raw w.vhdx out.raw
same_info w.vhdx
finish
