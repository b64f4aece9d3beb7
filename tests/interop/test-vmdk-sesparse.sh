#!/bin/bash
# vmdk seSparse extents (ESXi snapshots), built from the layout by
# mksesparse.py: qimg reads them as qemu-img does (info, map, check,
# convert to raw, a parent seen through unallocated grains), refuses to
# open them for writing with qemu-img's message, and fails cleanly on
# malformed ones.
. "$(dirname "$0")/../lib.sh"
. "$TEST_SRCDIR/interop/fmt-hostile.sh"
MK="python3 $TEST_SRCDIR/interop/mksesparse.py"

# 20 MiB over two grain tables: data grains, zero grains (recorded as zero
# or left unallocated) and data in the second table.
python3 - <<'PY'
b = bytearray(20 << 20)
for i in range(0, len(b), 3 * 4096):
    b[i:i + 4096] = bytes([(i // 4096) % 251 + 1]) * 4096
b[17 << 20:(17 << 20) + 5] = b"hello"
open("src.raw", "wb").write(b)
PY
$MK src.raw se.vmdk || fail "mksesparse"

same_as_qemu info se.vmdk
same_as_qemu info --output=json se.vmdk
same_as_qemu map --output=json se.vmdk
same_as_qemu map se.vmdk
same_as_qemu check se.vmdk
same_as_qemu compare -f vmdk -F raw se.vmdk src.raw
$QIMG convert -O raw se.vmdk got.raw || check_fail "convert to raw"
cmp -s got.raw src.raw || check_fail "converted bytes differ from the source"
$QEMU_IMG convert -O raw se.vmdk ref.raw
cmp -s got.raw ref.raw || check_fail "qimg and qemu-img conversions differ"
$QIMG convert -O qcow2 se.vmdk got.qcow2 || check_fail "convert to qcow2"
images_equal got.qcow2 src.raw qcow2 raw
rm -f got.raw ref.raw got.qcow2

# Unmapped grains read as zeros like zero grains.
$MK src.raw un.vmdk unmapped || fail "mksesparse unmapped"
$QIMG convert -O raw un.vmdk got.raw || check_fail "convert unmapped"
cmp -s got.raw src.raw || check_fail "unmapped grains do not read as zeros"
same_as_qemu map --output=json un.vmdk
rm -f got.raw

# Opening for writing is refused, with qemu-img's message.
same_as_qemu resize se.vmdk +1M
same_as_qemu check -r all se.vmdk
same_as_qemu commit se.vmdk
run_tool io "$QIMG_IO" -c 'write 0 4k' se.vmdk
grep -q "No write support for seSparse images available" io.err ||
    check_fail "qimg-io write: $(cat io.err)"
cmp -s se-sesparse.vmdk <($MK src.raw chk.vmdk >/dev/null; cat chk-sesparse.vmdk) ||
    check_fail "the extent changed"

# A snapshot over a parent: unallocated grains show the parent, zero
# grains hide it.
$QEMU_IMG create -f vmdk parent.vmdk 20M >/dev/null
$QEMU_IO -f vmdk -c 'write -P 0x77 0 20M' parent.vmdk >/dev/null
cid=$($QEMU_IMG info --output=json parent.vmdk |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["format-specific"]["data"]["cid"])')
$MK src.raw child.vmdk good parent.vmdk:$cid || fail "mksesparse child"
same_as_qemu info --backing-chain child.vmdk
$QIMG convert -O raw child.vmdk got.raw || check_fail "convert child"
$QEMU_IMG convert -O raw child.vmdk ref.raw
cmp -s got.raw ref.raw || check_fail "child: qimg and qemu-img differ"
cmp -s got.raw src.raw && check_fail "child: the parent does not show through"
rm -f got.raw ref.raw
# A parentCID that is not the parent's CID: reads that reach the parent
# fail as in qemu-img (the parent changed since the snapshot was taken).
rm -f child.vmdk child-sesparse.vmdk
$MK src.raw child.vmdk good parent.vmdk:0x1234 || fail "mksesparse child"
same_as_qemu convert -O raw child.vmdk out.raw
same_as_qemu info child.vmdk
rm -f out.raw parent.vmdk

# Malformed images (small ones): the header checks answer as qemu-img does; the
# others (which qemu-img reads as zeros or fails on later) fail cleanly.
head -c 1M src.raw > small.raw
for v in bad-magic bad-version grain-size reserved dirty bad-volatile \
         truncated; do
    rm -f v.vmdk v-sesparse.vmdk
    $MK small.raw v.vmdk $v || fail "mksesparse $v"
    same_as_qemu info v.vmdk
    clean_error "$v" $QIMG convert -O raw v.vmdk out.raw
done
for v in cap-huge gd-past-end gd-bad-entry gd-table-past-end gt-bad-type \
         grain-past-end; do
    rm -f v.vmdk v-sesparse.vmdk
    $MK small.raw v.vmdk $v || fail "mksesparse $v"
    clean_error "$v" $QIMG convert -O raw v.vmdk out.raw
done
# A snapshot naming itself as its parent.
$MK small.raw loop.vmdk good loop.vmdk || fail "mksesparse loop"
clean_error "parent loop" $QIMG convert -O raw loop.vmdk out.raw
finish
