#!/bin/bash
# vpc hostile input: truncated files, offsets past the end, tables too
# large, bad checksums.  Each must fail with a message and an exit code,
# never a crash or sanitizer report.
. "$(dirname "$0")/../lib.sh"
. "$TEST_SRCDIR/interop/fmt-hostile.sh"

# vhd_patch IMG WHERE OFF FMT VAL: patch the footer copy at 0 and the one
# at the end ("footer") or the dynamic header ("dyn"), then fix checksums.
vhd_patch() {
    python3 - "$@" <<'PY' || fail "vhd_patch $*"
import os, struct, sys
img, where, off, fmt = sys.argv[1], sys.argv[2], int(sys.argv[3], 0), sys.argv[4]
val = int(sys.argv[5], 0)
def fix(buf, at):
    buf[at:at + 4] = b'\0\0\0\0'
    struct.pack_into('>I', buf, at, (~sum(buf)) & 0xffffffff)
size = os.path.getsize(img)
with open(img, 'r+b') as f:
    places = [(0, 512, 64), (size - 512, 512, 64)] if where == 'footer' else [(512, 1024, 36)]
    for base, n, ck in places:
        f.seek(base); b = bytearray(f.read(n))
        if where == 'footer' and b[:8] != b'conectix':
            continue
        struct.pack_into(fmt, b, off, val)
        fix(b, ck)
        f.seek(base); f.write(b)
PY
}

$QEMU_IMG create -f vpc dyn.vpc 20M >/dev/null
$QEMU_IO -f vpc -c 'write -P 0x11 0 3M' dyn.vpc >/dev/null 2>&1
$QEMU_IMG create -f vpc -o subformat=fixed fixed.vpc 20M >/dev/null
fresh() {
    if [ "${2:-}" = subformat=fixed ]; then cp fixed.vpc h.vpc; else cp dyn.vpc h.vpc; fi
}

# 1. Truncated: only the first 300 bytes of the footer copy.
fresh; head -c 300 h.vpc > t.vpc
clean_error "truncated" $QIMG info -f vpc t.vpc
# 2. Footer checksum wrong (both copies).
fresh; patch_bytes h.vpc 64 '>I' 0x12345678
sz=$(stat -c %s h.vpc); patch_bytes h.vpc $((sz - 512 + 64)) '>I' 0x12345678
clean_error "footer checksum" $QIMG info -f vpc h.vpc
# 3. Dynamic header past the end of the file.
fresh; vhd_patch h.vpc footer 16 '>Q' 0x7fffffffffff0000
clean_error "dynamic header offset" $QIMG info -f vpc h.vpc
# 4. Dynamic header checksum wrong.
fresh; patch_bytes h.vpc $((512 + 36)) '>I' 0
clean_error "dynamic header checksum" $QIMG info -f vpc h.vpc
# 5. BAT past the end.
fresh; vhd_patch h.vpc dyn 16 '>Q' 0x100000000000
clean_error "BAT offset" $QIMG info -f vpc h.vpc
# 6. BAT too large for the file.
fresh; vhd_patch h.vpc dyn 28 '>I' 0xffffffff
clean_error "max table entries" $QIMG info -f vpc h.vpc
# 7. Block size zero, and not a power of two.
fresh; vhd_patch h.vpc dyn 32 '>I' 0
clean_error "block size 0" $QIMG info -f vpc h.vpc
fresh; vhd_patch h.vpc dyn 32 '>I' 3000
clean_error "block size 3000" $QIMG info -f vpc h.vpc
# 8. A BAT entry pointing past the end.
fresh; patch_bytes h.vpc 1536 '>I' 0x7fffffff
clean_error "BAT entry" $QIMG convert -f vpc -O raw h.vpc out.raw
# 9. A size beyond what VHD allows (Hyper-V creator, huge current_size).
fresh "" subformat=fixed; vhd_patch h.vpc footer 28 '>I' 0x77696e20
vhd_patch h.vpc footer 48 '>Q' 0x7fffffffffffff00
clean_error "huge size" $QIMG info -f vpc h.vpc
# 10. A fixed image whose data would extend past the file.
fresh 20M subformat=fixed; vhd_patch h.vpc footer 56 '>H' 0x4000
clean_error "fixed larger than file" $QIMG info -f vpc h.vpc
# 11. An unknown disk type, and a differencing disk without parent
# locators (test-vpc-diff.sh covers broken parent links and loops).
fresh; vhd_patch h.vpc footer 60 '>I' 9
clean_error "disk type 9" $QIMG info -f vpc h.vpc
fresh; vhd_patch h.vpc footer 60 '>I' 4
clean_error "differencing" $QIMG info -f vpc h.vpc
finish
