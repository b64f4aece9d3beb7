#!/bin/bash
# convert between every writable format pair, both ways: qimg converts
# qemu-img-made images, qemu-img reads what qimg wrote; the contents must
# be equal per qemu-img compare and the targets pass qemu-img check.
. "$(dirname "$0")/../lib.sh"

FORMATS="raw qcow2 qed vdi vpc vmdk qcow"

# One source per format, made by qemu-img from the same raw bytes.
head -c 1M /dev/urandom > seed.raw
truncate -s 4M seed.raw
dd if=/dev/zero of=seed.raw bs=64k seek=20 count=4 conv=notrunc status=none
head -c 200k /dev/urandom | dd of=seed.raw bs=64k seek=40 conv=notrunc status=none
for f in $FORMATS; do
    $QEMU_IMG convert -f raw -O $f seed.raw src.$f || fail "qemu-img makes $f"
done

checkable() { case $1 in raw|vpc|qcow) return 1 ;; esac; return 0; }

for from in $FORMATS; do
    for to in $FORMATS; do
        rm -f out.$to
        $QIMG convert -f $from -O $to src.$from out.$to 2>err ||
            { check_fail "qimg convert $from -> $to: $(cat err)"; continue; }
        images_equal src.$from out.$to $from $to
        if checkable $to; then qemu_check_clean out.$to $to; fi
        # The other direction: qemu-img reads qimg's output.
        rm -f back.raw
        $QEMU_IMG convert -f $to -O raw out.$to back.raw ||
            check_fail "qemu-img cannot convert qimg's $to"
        images_equal src.$from back.raw $from raw
    done
done

# Read-only formats as sources are covered by their own tests; raw into
# formats that store a size in sectors keeps qemu-img's size.
for to in $FORMATS; do
    expect_eq "virtual size of $to" \
        "$($QEMU_IMG info --output=json src.$to | grep '"virtual-size"')" \
        "$($QEMU_IMG info --output=json out.$to | grep '"virtual-size"')"
done
finish
