#!/bin/bash
# Differencing VHDX images (HasParent, Parent Locator, PARTIALLY_PRESENT
# blocks with a sector bitmap block), built by vhdx-diff.py from [MS-VHDX]
# with 512-byte and 4 KiB logical sectors: qimg reads them through their
# parent, shows it as the backing file, and fails cleanly on broken links.
# qemu-img 7.2 cannot open such images at all ("Operation not supported"),
# so the expected bytes come from the script; libvhdi, when FUSE is usable,
# confirms them independently (but for the child's ZERO block, which
# libvhdi 20210425 reads from the parent although the specification
# defines its contents as zeros).
. "$(dirname "$0")/../lib.sh"
. "$TEST_SRCDIR/interop/fmt-hostile.sh"
GEN="$TEST_SRCDIR/interop/vhdx-diff.py"

chain() { rm -rf c; mkdir c; python3 "$GEN" c "$@" || fail "vhdx-diff.py $*"; }

for lss in 512 4096; do
    chain --lss $lss
    $QIMG info c/child.vhdx > info.out || check_fail "info [$lss]"
    grep -qx 'backing file: parent.vhdx (actual path: c/parent.vhdx)' info.out ||
        check_fail "info backing file [$lss]: $(cat info.out)"
    grep -qx 'backing file format: vhdx' info.out || check_fail "info backing format [$lss]"
    $QIMG convert -O raw c/child.vhdx out.raw || check_fail "convert child [$lss]"
    cmp -s out.raw c/expected.raw || check_fail "child content [$lss]"
    $QIMG convert -O qcow2 c/child.vhdx flat.qcow2 || check_fail "convert to qcow2 [$lss]"
    images_equal flat.qcow2 c/expected.raw qcow2 raw
    # qemu-img refuses the child (and, with 4 KiB sectors, the parent too).
    run_tool q "$QEMU_IMG" info c/child.vhdx
    expect_eq "qemu-img refuses differencing vhdx [$lss]" 1 "$(cat q.rc)"
    if command -v vhdimount >/dev/null && [ -w /dev/fuse ]; then
        mkdir -p mnt
        if vhdimount c/child.vhdx mnt >/dev/null 2>&1; then
            # vhdi1 is the parent, vhdi2 the child; block 2 (1 MiB) is ZERO.
            cmp -s -n 2097152 mnt/vhdi2 c/expected.raw || check_fail "libvhdi blocks 0-1 [$lss]"
            cmp -s -i 3145728 mnt/vhdi2 c/expected.raw || check_fail "libvhdi blocks 3-7 [$lss]"
            fusermount -u mnt 2>/dev/null || umount mnt
        fi
    fi
done
# map: the child's sectors at depth 0, the parent's at depth 1, the child's
# ZERO block allocated as zeros at depth 0.
chain
$QIMG map --output=json c/child.vhdx > map.json || check_fail "map"
expect_eq "map first extent" \
    '[{ "start": 0, "length": 2048, "depth": 0, "present": true, "zero": false, "data": true, "offset": 4194304},' \
    "$(head -1 map.json)"
grep -q '"start": 2048, "length": 512, "depth": 1,' map.json || check_fail "map parent sector"
grep -q '"start": 2097152, "length": 1048576, "depth": 0, "present": true, "zero": true, "data": false}' map.json ||
    check_fail "map ZERO block"

# Only an absolute Win32 path, only a volume path: found beside the child.
for k in abs vol; do
    chain --keys $k
    $QIMG convert -O raw c/child.vhdx out.raw && cmp -s out.raw c/expected.raw ||
        check_fail "child content (keys $k)"
done

# Writing is refused cleanly; the image is unchanged.
chain
sum=$(md5sum < c/child.vhdx)
run_tool w $QIMG_IO -f vhdx -c 'write -P 1 0 4k' c/child.vhdx
expect_eq "write refused" "write failed: Operation not supported" "$(cat w.out)"
expect_eq "write exit code" 1 "$(cat w.rc)"
expect_eq "child unchanged" "$sum" "$(md5sum < c/child.vhdx)"

# Broken links and malformed locators fail cleanly.
chain --parent-name missing.vhdx
clean_error "missing parent" $QIMG convert -O raw c/child.vhdx out.raw
grep -q "Could not open backing file" "$T/hostile.err" || check_fail "missing parent message"
chain --bad-linkage
clean_error "parent_linkage mismatch" $QIMG convert -O raw c/child.vhdx out.raw
grep -q "is not the parent of this differencing image" "$T/hostile.err" || check_fail "linkage message"
chain --self
clean_error "parent is itself" $QIMG convert -O raw c/child.vhdx out.raw
grep -q "forms a loop" "$T/hostile.err" || check_fail "self loop message"
chain --loop
clean_error "A -> B -> A" $QIMG convert -O raw c/a.vhdx out.raw
grep -q "forms a loop" "$T/hostile.err" || check_fail "loop message"
chain --bad-locator
clean_error "locator without parent_linkage" $QIMG info c/child.vhdx
grep -q "lacks parent_linkage" "$T/hostile.err" || check_fail "locator message"
chain --no-parent-flag
clean_error "partially present block, no HasParent" $QIMG info c/child.vhdx
grep -q "partially present without a sector bitmap" "$T/hostile.err" || check_fail "no-parent message"
# The locator (6th metadata item, at 3 MiB + 84 KiB) claiming 30000
# entries, and one entry's value offset far past the item.
chain
patch_bytes c/child.vhdx $((3 * 1048576 + 86016 + 18)) '<H' 30000
clean_error "locator entry count" $QIMG info c/child.vhdx
grep -q "Invalid VHDX parent locator (30000 entries" "$T/hostile.err" || check_fail "entry count message"
chain
patch_bytes c/child.vhdx $((3 * 1048576 + 86016 + 20 + 4)) '<I' 0x7ffffff0
clean_error "locator value offset" $QIMG info c/child.vhdx
grep -q "Invalid VHDX parent locator entry 0" "$T/hostile.err" || check_fail "entry offset message"
# The sector bitmap block entry pointing past the end of the file.
chain
patch_bytes c/child.vhdx $((2 * 1048576 + 8 * 4096)) '<Q' $(( (1 << 40) | 6 ))
clean_error "bitmap block offset" $QIMG info c/child.vhdx
grep -q "sector bitmap entry 4096 offset" "$T/hostile.err" || check_fail "bitmap offset message"
finish
