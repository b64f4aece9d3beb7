#!/bin/bash
# Persistent dirty bitmaps follow guest writes as in qemu: the same writes,
# zero writes and discards done by qemu-io and by qimg-io (and convert -n,
# commit and rebase done by qemu-img and qimg into images with bitmaps)
# leave the same bits in every enabled bitmap, disabled and inconsistent
# bitmaps unchanged, the same flags in qemu-img info, and a clean check.
. "$(dirname "$0")/../lib.sh"
DUMP="python3 $TEST_SRCDIR/interop/qcow2_bitmaps.py"

# same_bitmaps REF GOT LABEL: bitmap names, flags, granularity and bits,
# and the bitmaps qemu-img info shows, are the same; GOT checks clean.
same_bitmaps() {
    $DUMP "$1" >ref.bm; $DUMP "$2" >got.bm
    cmp -s ref.bm got.bm || { check_fail "bitmaps differ: $3"; diff ref.bm got.bm >&2; }
    "$QEMU_IMG" info --output=json "$1" | sed -n '/"bitmaps"/,/\]/p' >ref.info
    "$QEMU_IMG" info --output=json "$2" | sed -n '/"bitmaps"/,/\]/p' >got.info
    cmp -s ref.info got.info || { check_fail "info bitmaps differ: $3"; diff ref.info got.info >&2; }
    [ -s ref.info ] || check_fail "no bitmaps in info: $3"
    "$QEMU_IMG" check "$2" >check.out 2>&1 || check_fail "check $3: $(cat check.out)"
    "$QEMU_IMG" compare -f qcow2 -F qcow2 "$1" "$2" >/dev/null ||
        check_fail "contents differ: $3"
}

# Set the in-use flag of the bitmap named $2 (an inconsistent bitmap).
set_in_use() { python3 "$TEST_SRCDIR/interop/qcow2_bitmap_in_use.py" "$1" "$2"; }

ops=(-c "write -P 2 100k 5k" -c "write -z 3M 70000" -c "discard 5M 200k"
     -c "write -z -u 8M 64k" -c "write -c 9M 64k" -c "discard 1000 10"
     -c "write -P 3 10239k 1k" -c "write -P 4 6M 3k")
for o in "" cluster_size=512 extended_l2=on,refcount_bits=1; do
    rm -f base
    "$QEMU_IMG" create -q -f qcow2 ${o:+-o $o} base 10M
    "$QEMU_IMG" bitmap --add base olddis
    "$QEMU_IMG" bitmap --add -g 128k base en
    "$QEMU_IO" -c "write -P 1 0 1M" base >/dev/null
    "$QEMU_IMG" bitmap --disable base olddis   # disabled, bits set
    "$QEMU_IMG" bitmap --add -g 4096 base en4k
    "$QEMU_IMG" bitmap --add base dis
    "$QEMU_IMG" bitmap --disable base dis
    "$QEMU_IMG" bitmap --add -g 512 base en512
    "$QEMU_IMG" bitmap --add -g 1M base stale
    [ "$o" = extended_l2=on,refcount_bits=1 ] && set_in_use base stale
    cp base ref; cp base got
    "$QEMU_IO" "${ops[@]}" ref >/dev/null
    "$QIMG_IO" "${ops[@]}" got >/dev/null
    same_bitmaps ref got "qemu-io vs qimg-io [$o]"
    # A second session adds to the bits; a read-only one changes nothing.
    "$QEMU_IO" -c "write -P 5 7M 64k" ref >/dev/null
    "$QIMG_IO" -c "write -P 5 7M 64k" got >/dev/null
    "$QIMG_IO" -r -c "read 0 1M" got >/dev/null
    "$QIMG_IO" -c "read 0 1M" got >/dev/null
    same_bitmaps ref got "second session [$o]"
done

# convert -n into an image with bitmaps (zero ranges are written too).
rm -f src tgt
"$QEMU_IMG" create -q -f qcow2 src 4M
"$QEMU_IO" -c "write -P 7 64k 64k" -c "write -P 8 2M 4k" src >/dev/null
"$QEMU_IMG" create -q -f qcow2 tgt 4M
"$QEMU_IO" -c "write -P 9 1M 1M" tgt >/dev/null
"$QEMU_IMG" bitmap --add -g 8192 tgt b
cp tgt ref; cp tgt got
"$QEMU_IMG" convert -n -O qcow2 src ref
"$QIMG" convert -n -O qcow2 src got
same_bitmaps ref got "convert -n"
cp tgt ref; cp tgt got
"$QEMU_IMG" convert -n --target-is-zero -O qcow2 src ref 2>/dev/null
"$QIMG" convert -n --target-is-zero -O qcow2 src got 2>/dev/null
same_bitmaps ref got "convert -n --target-is-zero"

# commit into a base with a bitmap (the top's own bitmap stays as it is).
rm -f b t
"$QEMU_IMG" create -q -f qcow2 b 4M
"$QEMU_IO" -c "write -P 1 0 4M" b >/dev/null
"$QEMU_IMG" bitmap --add -g 4096 b bb
"$QEMU_IMG" create -q -f qcow2 -b b -F qcow2 t
"$QEMU_IMG" bitmap --add t tb
"$QEMU_IO" -c "write -P 2 100k 8k" -c "write -z 3M 64k" t >/dev/null
for x in ref got; do
    cp b $x.b; "$QEMU_IMG" create -q -f qcow2 -b $x.b -F qcow2 $x.t 2>/dev/null
    cp t $x.t; "$QEMU_IMG" rebase -q -u -b $x.b -F qcow2 $x.t
done
"$QEMU_IMG" commit -q ref.t
"$QIMG" commit -q got.t
same_bitmaps ref.b got.b "commit: base"
same_bitmaps ref.t got.t "commit: top"
for x in ref got; do
    cp b $x.b; cp t $x.t; "$QEMU_IMG" rebase -q -u -b $x.b -F qcow2 $x.t
done
"$QEMU_IMG" commit -q -d ref.t
"$QIMG" commit -q -d got.t
same_bitmaps ref.b got.b "commit -d: base"

# rebase (safe mode) writes the differences into the top.
rm -f nb
"$QEMU_IMG" create -q -f qcow2 nb 4M
"$QEMU_IO" -c "write -P 1 0 1M" -c "write -P 6 2M 1M" nb >/dev/null
for x in ref got; do
    cp b $x.b; cp t $x.t; cp nb $x.nb
    "$QEMU_IMG" rebase -q -u -b $x.b -F qcow2 $x.t
done
"$QEMU_IMG" rebase -q -b ref.nb -F qcow2 ref.t
"$QIMG" rebase -q -b got.nb -F qcow2 got.t
same_bitmaps ref.t got.t "rebase"
finish
