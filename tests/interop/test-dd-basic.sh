#!/bin/bash
# dd: bs/count/skip arithmetic, output size and content, formats, and the
# operand errors, against qemu-img dd.
. "$(dirname "$0")/../lib.sh"

head -c 3M /dev/urandom > a.img
truncate -s 10M a.img
printf 'tail' | dd of=a.img bs=1 seek=10000000 conv=notrunc status=none
$QEMU_IMG create -q -f qed b.qed 4M
$QEMU_IO -f qed -c "write -P 7 64k 1M" b.qed >/dev/null

# Raw output: the bytes and the size must be qemu-img's.
for ops in "" "bs=1M count=3" "bs=4k skip=3" "bs=1M count=5 skip=2" \
           "bs=1000 count=7" "bs=1000 skip=7" "skip=100000" "count=0" \
           "bs=64k count=100000"; do
    rm -f ref.img got.img
    $QEMU_IMG dd -f raw $ops if=a.img of=ref.img 2>ref.err; r1=$?
    $QIMG dd -f raw $ops if=a.img of=got.img 2>got.err; r2=$?
    expect_eq "exit code [$ops]" "$r1" "$r2"
    expect_eq "stderr [$ops]" "$(sed 's/^qemu-img: //' ref.err)" "$(sed 's/^qimg: //' got.err)"
    cmp -s ref.img got.img || check_fail "output differs for [$ops]"
done

# Other formats in and out: same content.
for fmt in qed vdi vpc; do
    rm -f ref.$fmt got.$fmt
    $QEMU_IMG dd -O $fmt bs=64k count=20 if=b.qed of=ref.$fmt || fail "qemu-img dd -O $fmt"
    $QIMG dd -O $fmt bs=64k count=20 if=b.qed of=got.$fmt || fail "qimg dd -O $fmt"
    images_equal ref.$fmt got.$fmt
    [ $fmt = vpc ] || qemu_check_clean got.$fmt
done

same_as_qemu_setup() { rm -f o.img; }
same_as_qemu dd if=a.img
same_as_qemu dd of=o.img
same_as_qemu dd
same_as_qemu dd foo=1 if=a.img of=o.img
same_as_qemu dd foo if=a.img of=o.img
same_as_qemu dd bs=0 if=a.img of=o.img
same_as_qemu dd bs=3G if=a.img of=o.img
same_as_qemu dd bs=1x if=a.img of=o.img
same_as_qemu dd count=x if=a.img of=o.img
same_as_qemu dd skip=-1 if=a.img of=o.img
same_as_qemu dd -O foo if=a.img of=o.img
same_as_qemu dd -f raw if=nonexistent.img of=o.img
same_as_qemu dd -f qed if=a.img of=o.img
same_as_qemu dd -f raw skip=100000 if=a.img of=o.img
finish
