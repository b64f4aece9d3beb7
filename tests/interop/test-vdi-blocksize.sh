#!/bin/bash
# VDI images with block sizes other than 1 MiB (VirtualBox's
# AllocationBlockSize), built by mkvdi.py in VirtualBox's layout: qemu-img
# 7.2 refuses them; qimg reads, writes, checks, maps, grows and converts
# them.  The generator itself is checked against qemu-img with 1 MiB blocks.
. "$(dirname "$0")/../lib.sh"
. "$TEST_SRCDIR/interop/fmt-hostile.sh"
MK="python3 $TEST_SRCDIR/interop/mkvdi.py"

python3 - <<'PY'
b = bytearray(6 << 20)
for i in range(0, len(b), 5 * 65536):
    b[i:i + 70000] = bytes([(i // 65536) % 251 + 1]) * 70000
b[(5 << 20) - 3:(5 << 20) + 3] = b"abcdef"
open("src.raw", "wb").write(bytes(b[:6 << 20]))
PY

# 1 MiB blocks: the generator's images are read by qemu-img.
for t in dynamic static; do
    $MK src.raw ref.vdi 1048576 $t || fail "mkvdi 1M $t"
    qemu_check_clean ref.vdi vdi
    images_equal ref.vdi src.raw vdi raw
    same_as_qemu map --output=json ref.vdi
    same_as_qemu info ref.vdi
    rm -f ref.vdi
done

for bsz in 512 65536 2097152 4194304; do
    for t in dynamic static; do
        img=b$bsz-$t.vdi
        $MK src.raw $img $bsz $t || fail "mkvdi $bsz $t"
        # qemu-img 7.2 refuses; qimg reads.
        run_tool ref "$QEMU_IMG" info $img
        grep -q "unsupported VDI image (block size $bsz is not 1048576)" ref.err ||
            check_fail "qemu-img no longer refuses block size $bsz: $(cat ref.err)"
        expect_eq "cluster size $bsz" "\"cluster-size\": $bsz," \
            "$($QIMG info --output=json $img | grep -o '"cluster-size": [0-9]*,')"
        $QIMG convert -O raw $img got.raw || check_fail "convert $img"
        cmp -s got.raw src.raw || check_fail "$img: content differs"
        expect_eq "check $img" "No errors were found on the image." \
            "$($QIMG check $img 2>&1)"
        # Block status: allocated runs only where the source has data
        # (dynamic) or everywhere (static), by way of a sparse qcow2.
        $QIMG convert -O qcow2 $img got.qcow2 || check_fail "to qcow2 $img"
        images_equal got.qcow2 src.raw qcow2 raw
        if [ $t = static ]; then
            expect_eq "static map $bsz" 1 \
                "$($QIMG map --output=json $img | grep -c '"data": true')"
        fi
        # Writes across block boundaries, into unallocated blocks, then a
        # grown disk; the result reads as the same writes on the raw file.
        cp src.raw exp.raw
        w="write -P 0x5a $((bsz - 100)) 300"
        w2="write -P 0x33 $((3 << 20)) 70000"
        w3="write -P 0x44 $((6 << 20)) 4096"
        $QIMG_IO -f vdi -c "$w" -c "$w2" $img >/dev/null || check_fail "write $img"
        $QIMG resize -f vdi $img 8M >/dev/null || check_fail "resize $img"
        $QIMG_IO -f vdi -c "$w3" $img >/dev/null || check_fail "write grown $img"
        truncate -s 8M exp.raw
        $QEMU_IO -f raw -c "$w" -c "$w2" -c "$w3" exp.raw >/dev/null
        $QIMG convert -O raw $img got.raw || check_fail "convert written $img"
        cmp -s got.raw exp.raw || check_fail "$img: written content differs"
        expect_eq "check written $img" "No errors were found on the image." \
            "$($QIMG check $img 2>&1)"
        rm -f $img got.raw got.qcow2 exp.raw
    done
done

# Block sizes VirtualBox would not accept either: clean errors.
$MK src.raw h.vdi 65536 || fail "mkvdi"
for b in 0 3000 256 0x20000000 0x80000000; do
    cp h.vdi bad.vdi; patch_bytes bad.vdi 0x178 '<I' $b
    clean_error "block size $b" $QIMG convert -f vdi -O raw bad.vdi o.raw
done
# More blocks than the map can describe after a resize.
$MK src.raw small.vdi 512 || fail "mkvdi 512"
clean_error "resize past the map limit" $QIMG resize -f vdi small.vdi 2T
# A map that outgrows its room moves the first 2 MiB blocks to the end of
# the file (in pieces smaller than a block); the data stays where it was.
head -c $((6 << 20)) /dev/urandom > six.raw
$MK six.raw big.vdi 2097152 dynamic || fail "mkvdi 2M"
$QIMG resize -f vdi big.vdi 2T >/dev/null || check_fail "resize 2M blocks to 2T"
expect_eq "data offset after the move" 6291456 \
    "$(python3 -c 'import struct,sys; print(struct.unpack("<I", open(sys.argv[1], "rb").read(0x15c)[0x158:])[0])' big.vdi)"
truncate -s 2T six.raw
expect_eq "moved blocks read back" "Images are identical." \
    "$($QIMG compare -f vdi -F raw big.vdi six.raw 2>&1)"
expect_eq "check after the move" "No errors were found on the image." \
    "$($QIMG check big.vdi 2>&1)"
finish
