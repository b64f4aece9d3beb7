#!/bin/bash
# vmdk hostile input: truncated headers, offsets past the end, tables too
# large, corrupt compressed grains, descriptor extent and parent loops.
# Each must fail cleanly (message, exit code, no sanitizer report).
. "$(dirname "$0")/../lib.sh"
. "$TEST_SRCDIR/interop/fmt-hostile.sh"

$QEMU_IMG create -f vmdk base.vmdk 20M >/dev/null
$QEMU_IO -f vmdk -c 'write -P 0x11 0 1M' base.vmdk >/dev/null 2>&1
fresh() { cp base.vmdk h.vmdk; }

# 1. Truncated inside the header.
head -c 100 base.vmdk > t.vmdk
clean_error "truncated header" $QIMG info -f vmdk t.vmdk
# 2. Grain directory past the end.
fresh; patch_bytes h.vmdk 56 '<Q' 0x100000000000
clean_error "gd offset" $QIMG info -f vmdk h.vmdk
# 3. Grain size zero, huge, and not a power of two.
for g in 0 0x100000000 3; do
    fresh; patch_bytes h.vmdk 20 '<Q' $g
    clean_error "grain size $g" $QIMG info -f vmdk h.vmdk
done
# 4. Grain table size zero and too large.
for n in 0 4096; do
    fresh; patch_bytes h.vmdk 44 '<I' $n
    clean_error "gtes per gt $n" $QIMG info -f vmdk h.vmdk
done
# 5. A capacity whose grain directory cannot fit in the file.
fresh; patch_bytes h.vmdk 12 '<Q' 0x100000000000
clean_error "capacity" $QIMG info -f vmdk h.vmdk
# 6. A grain table past the end of the file (found when reading).
fresh; patch_bytes h.vmdk $((26 * 512)) '<I' 0x7fffffff
clean_error "gt offset" $QIMG convert -f vmdk -O raw h.vmdk out.raw
# 7. Unsupported version, descriptor size too large.
fresh; patch_bytes h.vmdk 4 '<I' 9
clean_error "version" $QIMG info -f vmdk h.vmdk
fresh; patch_bytes h.vmdk 36 '<Q' 0x1000000
clean_error "descriptor size" $QIMG info -f vmdk h.vmdk
# 8. A compressed grain with a bad length in its marker.
rm -f s.vmdk
head -c 1M /dev/urandom > r.raw
$QIMG convert -f raw -O vmdk -o subformat=streamOptimized r.raw s.vmdk || fail "stream"
patch_bytes s.vmdk $((128 * 512 + 8)) '<I' 0x7fffffff
clean_error "compressed grain size" $QIMG convert -f vmdk -O raw s.vmdk out.raw
rm -f s.vmdk
$QIMG convert -f raw -O vmdk -o subformat=streamOptimized r.raw s.vmdk || fail "stream"
patch_bytes s.vmdk $((128 * 512 + 12)) '<I' 0xdeadbeef
clean_error "compressed grain data" $QIMG convert -f vmdk -O raw s.vmdk out.raw
# 9. A stream whose footer is missing.
head -c $(( $(stat -c %s s.vmdk) - 1536 )) s.vmdk > nf.vmdk
clean_error "missing footer" $QIMG info -f vmdk nf.vmdk

# Descriptor files.
desc() { # desc FILE EXTENT-LINE [EXTRA-LINE]
    printf '# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType="monolithicFlat"\n%s\n%s\n' \
        "${3:-}" "$2" > "$1"
}
# 10. An extent naming the descriptor itself as a sparse extent (a loop).
desc loop.vmdk 'RW 2048 SPARSE "loop.vmdk"'
clean_error "extent loop" $QIMG info -f vmdk loop.vmdk
# 11. A missing extent file, and an extent line that does not parse.
desc miss.vmdk 'RW 2048 FLAT "nowhere.img" 0'
clean_error "missing extent" $QIMG info -f vmdk miss.vmdk
desc bad.vmdk 'RW lots FLAT "x.img" 0'
clean_error "bad extent line" $QIMG info -f vmdk bad.vmdk
# 12. Extent sizes that overflow the disk size.
truncate -s 1M flat.img
desc big.vmdk "RW 18014398509481983 FLAT \"flat.img\" 0
RW 18014398509481983 FLAT \"flat.img\" 0"
clean_error "extent size overflow" $QIMG info -f vmdk big.vmdk
# 13. A parent loop: the image names itself as its parent.
rm -f p.vmdk
$QEMU_IMG create -f vmdk p.vmdk 1M >/dev/null
python3 - p.vmdk <<'PY'
import sys
p = sys.argv[1]
d = bytearray(open(p, 'rb').read())
at = d.find(b'createType="monolithicSparse"\n') + len(b'createType="monolithicSparse"\n')
hint = b'parentFileNameHint="p.vmdk"\n'
d[at:at + len(hint)] = hint
open(p, 'wb').write(d)
PY
clean_error "parent loop" $QIMG convert -O raw p.vmdk out.raw
# 14. A SESPARSE extent that is not one, and a raw-device extent.
desc se.vmdk 'RW 2048 SESPARSE "flat.img"'
clean_error "SESPARSE" $QIMG info -f vmdk se.vmdk
desc rdm.vmdk 'RW 2048 VMFSRDM "flat.img"'
clean_error "VMFSRDM" $QIMG info -f vmdk rdm.vmdk
finish
