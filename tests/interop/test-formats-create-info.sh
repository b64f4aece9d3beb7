#!/bin/bash
# create and info for vdi, qed, qcow (and the read-only formats) against
# qemu-img: the "Formatting" line, errors and exit codes, -o help, and
# info (human and JSON) of the images each tool makes.
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib.sh"

$QEMU_IMG create -q -f qed base.qed 64M
$QEMU_IMG create -q -f raw base.raw 32M

# create_same IMG ARGS...: both tools create IMG from scratch with ARGS;
# outputs must match, then info of the two results must match too.
# (disk usage may differ by a filesystem block, so it is left out there)
CS_IMG=
same_as_qemu_setup() { [ -z "$CS_IMG" ] || rm -f "$CS_IMG"; }
create_same() {
    local img=$1; shift
    CS_IMG=$img
    same_as_qemu create "$@"
    CS_IMG=
    [ -e "$img" ] || return 0
    mv "$img" "got-$img"
    $QEMU_IMG create -q "$@" >/dev/null 2>&1
    local f
    for f in "" "--output=json"; do
        expect_eq "info $f of $img from [$*]" \
            "$($QEMU_IMG info $f "$img" | sed "s/$img/IMG/" | grep -v 'disk size\|actual-size')" \
            "$($QEMU_IMG info $f "got-$img" | sed "s/got-$img/IMG/" | grep -v 'disk size\|actual-size')"
        expect_eq "qimg info $f of $img from [$*]" \
            "$($QEMU_IMG info $f "$img")" "$($QIMG info $f "$img")"
    done
    rm -f "$img" "got-$img"
}

create_same a.vdi -f vdi a.vdi 1G
create_same a.vdi -f vdi -o static=on a.vdi 10M
create_same a.vdi -f vdi -o static=off a.vdi 1000
create_same a.vdi -f vdi a.vdi 4T
create_same a.vdi -f vdi -o static=on,size=3M a.vdi
create_same a.qed -f qed a.qed 1G
create_same a.qed -f qed -o cluster_size=128k,table_size=8 a.qed 1G
create_same a.qed -f qed -o backing_file=base.qed,backing_fmt=qed a.qed
create_same a.qed -f qed -b base.raw -F raw a.qed 8M
create_same a.qed -f qed -o cluster_size=1k a.qed 1M
create_same a.qed -f qed -o table_size=3 a.qed 1M
create_same a.qed -f qed -o cluster_size=64M a.qed 7M
create_same a.qcow -f qcow a.qcow 1G
create_same a.qcow -f qcow a.qcow 1000
create_same a.qcow -f qcow -b base.qed -F qed a.qcow
create_same a.qcow -f qcow -o encryption=off a.qcow 1M
create_same a.qcow -f qcow -o encrypt.format=aes a.qcow 1M
create_same a.qcow -f qcow -o encryption=on a.qcow 1M
create_same a.qcow -f qcow -o backing_fmt=foo a.qcow 1M
create_same a.img -f bochs a.img 1M
create_same a.img -f cloop a.img 1M
create_same a.img -f dmg a.img 1M

for f in vdi qed qcow; do
    same_as_qemu create -f $f -o help
done

# info of images qemu made and filled (disk size, dirty flag, backing).
$QEMU_IMG create -q -f vdi i.vdi 8M && $QEMU_IO -c 'write 0 2M' i.vdi >/dev/null
$QEMU_IMG create -q -f qed -b base.qed -F qed i.qed && $QEMU_IO -c 'write 1M 64k' i.qed >/dev/null
$QEMU_IMG create -q -f qcow -b base.raw -F raw i.qcow && $QEMU_IO -c 'write 0 4k' i.qcow >/dev/null
$QEMU_IMG create -q -f parallels i.hdd 8M && $QEMU_IO -c 'write 0 64k' i.hdd >/dev/null
for img in i.vdi i.qed i.qcow i.hdd; do
    same_as_qemu info $img
    same_as_qemu info --output=json $img
done
# a qed image left with its need-check flag shows dirty-flag true
cp i.qed d.qed
printf '\x02' | dd of=d.qed bs=1 seek=16 conv=notrunc status=none
same_as_qemu info --output=json d.qed

finish
