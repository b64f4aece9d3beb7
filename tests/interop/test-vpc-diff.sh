#!/bin/bash
# Differencing VHDs (disk type 4), as Hyper-V and Virtual PC write them,
# built by vhd-diff.py from the specification: qimg reads them through their
# parent (chosen from W2ru, W2ku or MacX locators, unique ID checked) and the
# per-sector bitmaps, shows the parent as the backing file, writes them, and
# fails cleanly on broken links (wrong parent, loops, bad locators).
# qemu-img 7.2 reads these images as plain dynamic disks, parent ignored,
# so the expected bytes come from the script, not from qemu-img.
. "$(dirname "$0")/../lib.sh"
. "$TEST_SRCDIR/interop/fmt-hostile.sh"
GEN="$TEST_SRCDIR/interop/vhd-diff.py"

chain() { rm -rf c; mkdir c; python3 "$GEN" c "$@" || fail "vhd-diff.py $*"; }

# Relative and absolute Windows locators: read through the parent.
chain
$QIMG info c/child.vhd > info.out || check_fail "info"
grep -qx 'backing file: parent.vhd (actual path: c/parent.vhd)' info.out || check_fail "info backing file: $(cat info.out)"
grep -qx 'backing file format: vpc' info.out || check_fail "info backing format"
$QIMG convert -O raw c/child.vhd out.raw || check_fail "convert child"
cmp -s out.raw c/expected.raw || check_fail "child content (w2ru)"
$QIMG compare -f vpc -F raw c/child.vhd c/expected.raw >/dev/null ||
    check_fail "qimg compare child vs expected"
# qemu-img gets the same bytes from what qimg converts to qcow2 (the chain
# flattened), and a qcow2 overlay keeps the parent's sectors right.
$QIMG convert -O qcow2 c/child.vhd flat.qcow2 || check_fail "convert to qcow2"
images_equal flat.qcow2 c/expected.raw qcow2 raw
# map: child sectors at depth 0, the parent's at depth 1, none unallocated
# in blocks 1 and 3 of the parent.
$QIMG map --output=json c/child.vhd > map.json || check_fail "map"
expect_eq "map first extent" \
    '[{ "start": 0, "length": 4096, "depth": 0, "present": true, "zero": false, "data": true, "offset": 3584},' \
    "$(head -1 map.json)"
grep -q '"start": 4096, "length": 512, "depth": 1,' map.json || check_fail "map parent sector"
grep -q '"start": 2097152, "length": 2097152, "depth": 1,' map.json || check_fail "map parent block"

# Only an absolute locator (C:\...): the parent is looked up beside the child.
chain --loc w2ku
$QIMG convert -O raw c/child.vhd out.raw && cmp -s out.raw c/expected.raw ||
    check_fail "child content (w2ku)"
# Only a MacX file URL (absolute POSIX path).
chain --loc macx
$QIMG info c/child.vhd | grep -qx "backing file: $T/c/parent.vhd" || check_fail "macx backing name"
$QIMG convert -O raw c/child.vhd out.raw && cmp -s out.raw c/expected.raw ||
    check_fail "child content (macx)"

# Writes land in the child (bitmaps updated), the parent stays unchanged.
chain
psum=$(md5sum < c/parent.vhd)
cp c/expected.raw want.raw
$QIMG_IO -f vpc -c 'write -P 0x77 4608 1536' -c 'write -P 0x78 2101248 8192' \
    -c 'write -z 6291456 4096' c/child.vhd >/dev/null || check_fail "qimg-io write"
$QEMU_IO -f raw -c 'write -P 0x77 4608 1536' -c 'write -P 0x78 2101248 8192' \
    -c 'write -z 6291456 4096' want.raw >/dev/null
$QIMG convert -O raw c/child.vhd out.raw && cmp -s out.raw want.raw ||
    check_fail "child content after writes"
expect_eq "parent unchanged" "$psum" "$(md5sum < c/parent.vhd)"
# libvhdi (an independent reader) still sees a valid differencing image.
if command -v vhdiinfo >/dev/null; then
    vhdiinfo c/child.vhd > vi.out 2>&1 || check_fail "vhdiinfo after writes"
    grep -q 'Differential' vi.out || check_fail "vhdiinfo disk type"
fi

# Broken links fail cleanly.
chain --parent-name missing.vhd
clean_error "missing parent" $QIMG convert -O raw c/child.vhd out.raw
grep -q "Could not open backing file" "$T/hostile.err" || check_fail "missing parent message"
chain --bad-uuid
clean_error "unique ID mismatch" $QIMG convert -O raw c/child.vhd out.raw
grep -q "unique ID mismatch" "$T/hostile.err" || check_fail "mismatch message"
chain --self
clean_error "parent is itself" $QIMG convert -O raw c/child.vhd out.raw
grep -q "forms a loop" "$T/hostile.err" || check_fail "self loop message"
chain --loop
clean_error "A -> B -> A" $QIMG convert -O raw c/a.vhd out.raw
grep -q "forms a loop" "$T/hostile.err" || check_fail "loop message"
chain --bad-loc-offset
clean_error "locator past the end" $QIMG info c/child.vhd
grep -q "parent locator 0 beyond end of file" "$T/hostile.err" || check_fail "locator message"
# A W2ru locator (the first, at byte 2048) with a lone UTF-16 surrogate.
chain
patch_bytes c/child.vhd 2048 '<HH' 0xd800 0x41
clean_error "invalid UTF-16 locator" $QIMG info c/child.vhd
grep -q "parent locator 0 is not valid UTF-16" "$T/hostile.err" || check_fail "UTF-16 message"
finish
