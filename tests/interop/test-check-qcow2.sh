#!/bin/bash
# check on qcow2: the same report, JSON, exit code and repair as qemu-img
# on clean images and on images damaged in many ways; repaired images pass
# the real qemu-img check and keep their data.
. "$(dirname "$0")/../lib.sh"
DAMAGE="python3 $TEST_SRCDIR/interop/qcow2_damage.py"

make_base() {
    "$QEMU_IMG" create -q -f qcow2 "$1" 4M
    "$QEMU_IO" -c "write -P 0x11 0 128k" -c "write -P 0x22 1M 64k" \
        -c "write -c -P 0x33 2M 64k" -c "write -z 3M 64k" "$1" >/dev/null
}
make_base base.qcow2

cmp_check() { # cmp_check DAMAGE ARGS...
    local dmg=$1; shift
    cp base.qcow2 ref.qcow2
    [ "$dmg" = none ] || $DAMAGE ref.qcow2 "$dmg"
    cp ref.qcow2 got.qcow2
    run_tool ref "$QEMU_IMG" check "$@" ref.qcow2
    run_tool got "$QIMG" check "$@" got.qcow2
    sed -i 's/^qemu-img: /PROG: /; s/^Try .qemu-img --help./Try HELP/; s/ref\.qcow2/IMG/g' "$T/ref.err" "$T/ref.out"
    sed -i 's/^qimg: /PROG: /; s/^Try .qimg --help./Try HELP/; s/got\.qcow2/IMG/g' "$T/got.err" "$T/got.out"
    cmp -s "$T/ref.out" "$T/got.out" || { check_fail "stdout differs: $dmg $*"; diff "$T/ref.out" "$T/got.out" >&2; }
    cmp -s "$T/ref.err" "$T/got.err" || { check_fail "stderr differs: $dmg $*"; diff "$T/ref.err" "$T/got.err" >&2; }
    expect_eq "exit code of check $dmg $*" "$(cat "$T/ref.rc")" "$(cat "$T/got.rc")"
    case " $* " in
    *" -r "*)
        # Both repaired images: the real check agrees and data is kept.
        run_tool ref2 "$QEMU_IMG" check ref.qcow2
        run_tool got2 "$QEMU_IMG" check got.qcow2
        sed -i 's/ref\.qcow2/IMG/g' "$T/ref2.out" "$T/ref2.err"
        sed -i 's/got\.qcow2/IMG/g' "$T/got2.out" "$T/got2.err"
        cmp -s "$T/ref2.out" "$T/got2.out" || { check_fail "post-repair check differs: $dmg $*"; diff "$T/ref2.out" "$T/got2.out" >&2; }
        expect_eq "post-repair check exit $dmg $*" "$(cat "$T/ref2.rc")" "$(cat "$T/got2.rc")"
        if [ "$(cat "$T/ref2.rc")" = 0 ]; then
            "$QEMU_IMG" compare -U ref.qcow2 got.qcow2 >/dev/null 2>&1 ||
                check_fail "repaired images differ in content: $dmg $*"
        fi
        ;;
    esac
}

for d in none leak refcount-high refcount-zero l2-unaligned l2-reserved \
         l2-prealloc-unaligned copied-clear l1-copied-clear l2-overlaps-l1 \
         l2-beyond-eof refblock-zero dirty-leak corrupt-bit truncate \
         refblock-beyond-eof refblock-far-beyond-eof; do
    cmp_check $d
    cmp_check $d -r leaks
    cmp_check $d -r all
done
for d in none leak l2-unaligned refcount-zero; do
    cmp_check $d --output=json
    cmp_check $d -r all --output=json
done
cmp_check none -q
cmp_check leak -q
cmp_check none -r bogus
cmp_check none --output=xml
cmp_check none -T bogus

# Formats without checks, and a missing file.
"$QEMU_IMG" create -q -f raw r.raw 1M
same_as_qemu check r.raw
same_as_qemu check -f raw r.raw
same_as_qemu check nonexistent.qcow2

# Images with snapshots and compressed data made by qemu.
make_base s.qcow2
"$QEMU_IMG" snapshot -c one s.qcow2
"$QEMU_IO" -c "write -P 0x44 64k 128k" s.qcow2 >/dev/null
"$QEMU_IMG" snapshot -c two s.qcow2
"$QEMU_IO" -c "write -P 0x55 0 64k" s.qcow2 >/dev/null
same_as_qemu check s.qcow2
same_as_qemu check --output=json s.qcow2
finish
