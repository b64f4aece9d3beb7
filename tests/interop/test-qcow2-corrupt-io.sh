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
# The refused allocation is given back: the image afterwards is qemu's,
# byte for byte (no leaked cluster).
mk rbz refblock-zero
io_same_as_qemu rbz -c "write -P 2 768k 4k" -c "write -P 3 900k 4k" -c "read 0 4k" @IMG@
"$QEMU_IMG" info "$T/io-got.img" | grep -q "corrupt: true" || check_fail "corrupt bit not set"
mk un l2-unaligned
io_same_as_qemu un -c "read 0 4k" -c "read 0 4k" -c "read 64k 4k" @IMG@
io_same_as_qemu un -r -c "read 0 4k" -c "read 0 4k" @IMG@
# Writes through the unaligned data cluster: in place (qemu's "Data
# cluster offset" report, with the guest offset the write enters it),
# zero writes, discards (the cluster is not freed: "Cannot free unaligned
# cluster", a leak as with qemu), compressed writes.
for w in "write -P 2 1000 4k" "write -P 2 0 64k" "write -P 2 64k 128k" "write -P 3 60k 8k" \
         "write -z 0 4k" "write -z 0 64k" "write -z -u 0 64k" "discard 0 64k" "write -c 0 64k"; do
    io_same_as_qemu un -c "$w" -c "read 0 4k" -c "read 64k 4k" @IMG@
done

# A refcount table entry naming an unaligned refcount block: found by
# an allocation (write), by the metadata preallocation probe of block
# status (map), by check (read-only: the non-fatal report).
mk rbu refblock-unaligned
for w in "write -P 2 768k 4k" "write -P 2 0 4k" "write -z 0 64k" map; do
    io_same_as_qemu rbu -c "$w" -c "read 0 4k" @IMG@
done
io_same_as_qemu rbu -c "write -z 0 64k" -c map -c "read 0 4k" @IMG@
same_as_qemu check rbu
same_as_qemu map --output=json rbu
same_as_qemu_setup() { rm -f out.raw; }
same_as_qemu convert -O raw rbu out.raw
unset -f same_as_qemu_setup

# An extended L2 entry with a subcluster both allocated and zero: reads
# (double space in qemu's message) and writes (single space) into that
# cluster mark the image corrupt; writes elsewhere go on.
rm -f xl
"$QEMU_IMG" create -q -f qcow2 -o extended_l2=on xl 1M
"$QEMU_IO" -c "write -P 1 0 64k" xl >/dev/null
python3 - xl <<'PY'
import struct, sys
f = open(sys.argv[1], 'r+b'); f.seek(40); l1 = struct.unpack('>Q', f.read(8))[0]
f.seek(l1); l2 = struct.unpack('>Q', f.read(8))[0] & 0x00fffffffffffe00
f.seek(l2 + 8); f.write(struct.pack('>Q', 0x0000000100000001))
PY
for w in "read 0 4k" "write 0 4k" "write 64k 4k" "write -z 0 64k" map; do
    io_same_as_qemu xl -c "$w" -c "read 0 4k" @IMG@
done
io_same_as_qemu xl -r -c "read 0 4k" -c "read 0 4k" @IMG@
same_as_qemu check xl
same_as_qemu_setup() { rm -f out.raw; }
same_as_qemu convert -O raw xl out.raw
unset -f same_as_qemu_setup

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
