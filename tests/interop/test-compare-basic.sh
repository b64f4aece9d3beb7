#!/bin/bash
# compare: messages and exit codes as qemu-img's for equal and different
# images, size mismatches (plain and strict), allocation differences,
# backing chains, progress and errors.
. "$(dirname "$0")/../lib.sh"

head -c 3M /dev/urandom > a.img
truncate -s 10M a.img
dd if=/dev/zero of=a.img bs=1M seek=5 count=2 conv=notrunc status=none
cp a.img same.img
cp a.img diff.img
printf 'x' | dd of=diff.img bs=1 seek=6000700 conv=notrunc status=none
cp a.img big.img; truncate -s 12M big.img
cp big.img bigdirty.img
printf 'y' | dd of=bigdirty.img bs=1 seek=11000003 conv=notrunc status=none
head -c 1M /dev/urandom > first.img; truncate -s 10M first.img
# The same bytes, but the zeros written out rather than a hole.
cp a.img full.img; fallocate -l 10M full.img 2>/dev/null || \
    $QEMU_IMG convert -f raw -O raw -S 0 a.img full.img
# Flush delayed allocation first: block status (and so the progress steps)
# must not change between the qemu-img run and the qimg run.
sync

# compare -p: qemu-img's progress steps follow its block-status calls,
# which a busy machine can shift between two of its own runs.  Where
# qemu-img agrees with itself the lines must match exactly; where it does
# not, the output without the progress lines and the exit code must.
progress_same_as_qemu() {
    run_tool ref "$QEMU_IMG" "$@"
    run_tool ref2 "$QEMU_IMG" "$@"
    run_tool got "$QIMG" "$@"
    local r=ref
    if ! cmp -s "$T/ref.out" "$T/ref2.out"; then
        r=ref.np
        sed 's/.*\r//; /^ *([0-9.]*\/100%)$/d' "$T/ref.out" >"$T/ref.np.out"
        sed 's/.*\r//; /^ *([0-9.]*\/100%)$/d' "$T/got.out" >"$T/got.np.out"
        mv "$T/got.np.out" "$T/got.out"
    fi
    cmp -s "$T/$r.out" "$T/got.out" ||
        { check_fail "stdout differs for: $*"; diff "$T/$r.out" "$T/got.out" | head -20 >&2; }
    cmp -s <(sed 's/^qemu-img: //' "$T/ref.err") <(sed 's/^qimg: //' "$T/got.err") ||
        check_fail "stderr differs for: $*"
    expect_eq "exit code of $*" "$(cat "$T/ref.rc")" "$(cat "$T/got.rc")"
}

for p in "" -q -p -s "-s -q"; do
    if [ "$p" = -p ]; then
        for pair in "a.img same.img" "a.img diff.img" "a.img big.img" \
                    "big.img a.img" "a.img bigdirty.img" "bigdirty.img a.img" \
                    "a.img first.img" "a.img full.img"; do
            progress_same_as_qemu compare -p -f raw -F raw $pair
        done
        continue
    fi
    same_as_qemu compare $p -f raw -F raw a.img same.img
    same_as_qemu compare $p -f raw -F raw a.img diff.img
    same_as_qemu compare $p -f raw -F raw a.img big.img
    same_as_qemu compare $p -f raw -F raw big.img a.img
    same_as_qemu compare $p -f raw -F raw a.img bigdirty.img
    same_as_qemu compare $p -f raw -F raw bigdirty.img a.img
    same_as_qemu compare $p -f raw -F raw a.img first.img
    same_as_qemu compare $p -f raw -F raw a.img full.img
done
same_as_qemu compare a.img same.img

for f in qed vdi vpc; do
    $QEMU_IMG create -q -f $f img.$f 4M
    $QEMU_IO -f $f -c "write -P 1 0 64k" -c "write -z 1M 64k" \
        -c "write -P 2 2M 512k" img.$f >/dev/null
    $QEMU_IMG convert -O raw img.$f img.$f.raw
    same_as_qemu compare img.$f img.$f.raw
    same_as_qemu compare -s img.$f img.$f.raw
    same_as_qemu compare img.$f img.qed
done
$QEMU_IMG create -q -f qed top.qed -b img.qed -F qed 6M
$QEMU_IO -f qed -c "write -P 3 64k 64k" -c "write -z 2M 64k" top.qed >/dev/null
$QEMU_IMG convert -O raw top.qed top.raw
same_as_qemu compare top.qed top.raw
same_as_qemu compare -s top.qed top.raw
same_as_qemu compare top.qed img.qed
same_as_qemu compare img.qed top.qed

# Errors: usage (1), open (2).
same_as_qemu compare a.img
same_as_qemu compare a.img b.img c.img
same_as_qemu compare -f raw a.img nonexistent.img
same_as_qemu compare -f raw nonexistent.img a.img
same_as_qemu compare -T bogus a.img same.img
same_as_qemu compare -f vdi a.img same.img
same_as_qemu compare -U --image-opts driver=raw,file.filename=a.img driver=raw,file.filename=diff.img
finish
