#!/bin/bash
# Corruption found while qimg-io works on a qcow2 image is reported as
# qemu-io reports it: a write that would overwrite metadata (data cluster
# pointing at the L1 table, an allocation landing on a refcount block whose
# own refcount is zero) or an unaligned table offset prints "qcow2: Marking
# image as corrupt: ...; further corruption events will be suppressed"
# once, sets the corrupt bit, fails with EIO and every later request with
# "No medium found"; opened read-only, "qcow2: Image is corrupt: ...;
# further non-fatal corruption events will be suppressed" once.  Stdout,
# stderr, exit code and the image afterwards match qemu-io byte for byte.
. "$(dirname "$0")/../lib.sh"
DAMAGE="python3 $TEST_SRCDIR/interop/qcow2_damage.py"

mk() { # mk NAME DAMAGE
    rm -f "$1"
    "$QEMU_IMG" create -q -f qcow2 "$1" 1M
    "$QEMU_IO" -c "write -P 1 0 512k" "$1" >/dev/null
    $DAMAGE "$1" "$2"
}

mk ovl l2-overlaps-l1
io_same_as_qemu ovl -c "write -P 2 448k 4k" -c "write -P 3 0 4k" -c "read 0 4k" @IMG@
io_same_as_qemu ovl -c "write -z 448k 4k" -c "read 0 4k" @IMG@
io_same_as_qemu ovl -r -c "read 448k 4k" -c "read 0 4k" @IMG@
# (qemu also returns the refused cluster's refcount to zero, qimg leaves
# it allocated: only the messages and the corrupt bit are compared.)
mk rbz refblock-zero
cp rbz rbz.ref; cp rbz rbz.got
ops=(-c "write -P 2 768k 4k" -c "write -P 3 900k 4k" -c "read 0 4k")
"$QEMU_IO" "${ops[@]}" rbz.ref >ref.out 2>ref.err; echo $? >>ref.out
"$QIMG_IO" "${ops[@]}" rbz.got >got.out 2>got.err; echo $? >>got.out
normalise_io ref.out; normalise_io got.out
cmp -s ref.out got.out && cmp -s ref.err got.err ||
    check_fail "refblock overlap: $(cat got.out got.err) vs $(cat ref.out ref.err)"
"$QEMU_IMG" info rbz.got | grep -q "corrupt: true" || check_fail "corrupt bit not set"
mk un l2-unaligned
io_same_as_qemu un -c "read 0 4k" -c "read 0 4k" -c "read 64k 4k" @IMG@
io_same_as_qemu un -r -c "read 0 4k" -c "read 0 4k" @IMG@

# An L1 entry pointing at an unaligned L2 table.
rm -f l1u
"$QEMU_IMG" create -q -f qcow2 l1u 1M
"$QEMU_IO" -c "write -P 1 0 64k" l1u >/dev/null
python3 - l1u <<'PY'
import struct, sys
f = open(sys.argv[1], 'r+b'); f.seek(40); l1 = struct.unpack('>Q', f.read(8))[0]
f.seek(l1); e = struct.unpack('>Q', f.read(8))[0]; f.seek(l1); f.write(struct.pack('>Q', e + 512))
PY
io_same_as_qemu l1u -c "read 0 4k" -c "read 0 4k" @IMG@
io_same_as_qemu l1u -r -c "read 0 4k" -c "read 0 4k" @IMG@
io_same_as_qemu l1u -c "write -P 2 0 4k" @IMG@
finish
