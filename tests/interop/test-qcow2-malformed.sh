#!/bin/bash
# qcow2 hostile images: ~50 images with one defect each (header fields,
# extensions, tables, snapshot table, L1/L2 entries, compressed data,
# truncation).  Each gives a clean error: non-zero exit below 128, a
# message, no sanitizer report; where qemu-img info refuses an image, qimg
# says exactly what qemu-img says.  A write through a table that overlaps
# other metadata marks the image corrupt instead of damaging it.
SRC=$(cd "$(dirname "$0")" && pwd)
. "$(dirname "$0")/../lib.sh"

"$QEMU_IMG" create -q -f qcow2 good.qcow2 4M
"$QEMU_IO" -c "write -P 1 0 64k" -c "write -c -P 2 1M 64k" good.qcow2 >/dev/null
mkdir m
python3 "$SRC/qcow2-malformed.py" good.qcow2 m > list || fail "generator failed"
n=$(wc -l < list)
[ "$n" -ge 30 ] || fail "only $n malformed images"

clean_error() { # clean_error WHAT RC ERRFILE
    [ "$2" -gt 0 ] && [ "$2" -lt 128 ] || check_fail "$1: exit code $2"
    [ -s "$3" ] || check_fail "$1: no error message"
    ! grep -q -e AddressSanitizer -e "runtime error" "$3" || check_fail "$1: sanitizer report"
}

while read -r name; do
    img=m/$name.qcow2
    [ "$name" = l2-is-refblock ] && continue
    "$QEMU_IMG" info -f qcow2 "$img" >/dev/null 2>&1 && qemu_ok=1 || qemu_ok=0
    if [ $qemu_ok = 0 ]; then
        same_as_qemu info -f qcow2 "$img" || true
    else
        "$QIMG" info -f qcow2 "$img" >/dev/null 2>"$T/i.err"
        rc=$?
        [ $rc -lt 128 ] || check_fail "$name: info crashed ($rc)"
    fi
    "$QIMG" convert -f qcow2 -O raw "$img" out.raw 2>"$T/c.err"
    rc=$?
    case $name in
    snapshot-beyond-eof|snapshot-truncated)
        # qemu-img reads a snapshot table past the end of the file as
        # zeros (empty entries): the image converts as with qemu-img.
        "$QEMU_IMG" convert -f qcow2 -O raw "$img" ref.raw
        expect_eq "convert $name" 0 $rc
        cmp -s out.raw ref.raw || check_fail "convert $name: content differs" ;;
    *) clean_error "convert $name" $rc "$T/c.err" ;;
    esac
    "$QIMG_IO" -f qcow2 -c "read 0 64k" -c "read 1M 64k" "$img" >"$T/r.out" 2>"$T/r.err"
    rc=$?
    [ $rc -lt 128 ] || check_fail "$name: qimg-io crashed ($rc)"
    ! grep -q -e AddressSanitizer -e "runtime error" "$T/r.err" || check_fail "$name: sanitizer"
done < list

# Overlap protection: the write is refused and the image marked corrupt.
cp m/l2-is-refblock.qcow2 ov.qcow2
"$QIMG_IO" -f qcow2 -c "write -P 9 0 4k" ov.qcow2 >"$T/w.out" 2>&1
grep -q "write failed" "$T/w.out" || check_fail "overlapping write succeeded: $(cat "$T/w.out")"
"$QEMU_IMG" info --output=json ov.qcow2 | grep -q '"corrupt": true' ||
    check_fail "corrupt bit not set"
cmp -s <(dd if=ov.qcow2 bs=64k skip=2 count=1 status=none) \
       <(dd if=m/l2-is-refblock.qcow2 bs=64k skip=2 count=1 status=none) ||
    check_fail "refcount block was overwritten"
"$QIMG_IO" -f qcow2 -c "write 0 512" ov.qcow2 >"$T/w2.out" 2>&1 &&
    check_fail "read-write open of a corrupt image succeeded"
grep -q "Image is corrupt; cannot be opened read/write" "$T/w2.out" ||
    check_fail "wrong message: $(cat "$T/w2.out")"
finish
