#!/bin/bash
# convert's less common options: -r rate limit, SIGUSR1 progress reports,
# -W/-m, -C, -t/-T cache modes, --salvage on a healthy image, -q, -U,
# --image-opts/--target-image-opts, --bitmaps.
. "$(dirname "$0")/../lib.sh"

head -c 8M /dev/urandom > src.raw
truncate -s 12M src.raw
$QEMU_IMG convert -f raw -O qcow2 src.raw src.qcow2

# Modes that must not change the result.
for o in "-W" "-W -m 16" "-m 1" "-m 3 -W" "-C" "-t none" "-T none" \
         "-t writeback -T writethrough" "-t directsync" "--salvage" "-q" \
         "-U" "-r 1G"; do
    for f in raw qcow2; do
        rm -f out.$f
        $QIMG convert $o -f qcow2 -O $f src.qcow2 out.$f 2>err ||
            { check_fail "convert $o -O $f: $(cat err)"; continue; }
        images_equal src.raw out.$f raw $f
        [ -s err ] && check_fail "convert $o -O $f printed: $(cat err)"
    done
done

# --image-opts for the source and --target-image-opts with -n.
$QEMU_IMG create -q -f qcow2 t.qcow2 12M
$QIMG convert --image-opts -n --target-image-opts \
    driver=qcow2,file.filename=src.qcow2 driver=qcow2,file.filename=t.qcow2 ||
    check_fail "--image-opts/--target-image-opts"
images_equal src.raw t.qcow2 raw qcow2

# -r: 8 MiB of data at 4 MiB/s cannot take much less than 1.5 s.
rm -f out.raw
start=$(date +%s%N)
$QIMG convert -r 4M -f raw -O raw src.raw out.raw || fail "-r"
ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ "$ms" -ge 1400 ] || check_fail "-r 4M copied 8 MiB in $ms ms"
cmp -s src.raw out.raw || check_fail "-r content"

# SIGUSR1 prints one progress line on stderr (qemu-img's format).
rm -f out.raw
$QIMG convert -r 2M -f raw -O raw src.raw out.raw 2>usr1.err &
pid=$!
sleep 1
kill -USR1 $pid
wait $pid || check_fail "convert interrupted by SIGUSR1"
grep -Eq '^    \([0-9]+\.[0-9]{2}/100%\)$' usr1.err ||
    check_fail "no progress line after SIGUSR1: $(cat usr1.err)"

# -p: the progress lines, byte for byte.
rm -f q.img m.img
$QEMU_IMG convert -p -f raw src.raw src.raw q.img > ref.p
$QIMG convert -p -f raw src.raw src.raw m.img > got.p
cmp -s ref.p got.p || check_fail "-p output differs"
cmp -s q.img m.img || check_fail "-p result differs"

# --bitmaps: refused where qemu-img refuses it.
same_as_qemu_setup() { rm -f out.img; }
same_as_qemu convert --bitmaps -f raw -O raw src.raw out.img
same_as_qemu convert --bitmaps -f raw src.raw src.raw out.img
same_as_qemu convert --bitmaps -f qcow2 -O raw src.qcow2 out.img
same_as_qemu convert --bitmaps --skip-broken-bitmaps -f qcow2 -O vdi src.qcow2 out.img
# A qcow2 source without bitmaps: nothing to copy, a plain conversion.
same_as_qemu convert --bitmaps -f qcow2 -O qcow2 src.qcow2 out.img
images_equal src.raw out.img raw qcow2
finish
