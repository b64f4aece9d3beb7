#!/bin/bash
# bench: same output lines, errors and exit codes as qemu-img, and writes
# really land with the requested pattern, offset and step.
. "$(dirname "$0")/../lib.sh"

"$QEMU_IMG" create -q -f raw b.raw 1M
norm() { sed -i 's/in [0-9]*\.[0-9]* seconds/in X seconds/' "$T/ref.out" "$T/got.out"; }
cmp_bench() {
    run_tool ref "$QEMU_IMG" bench "$@"
    run_tool got "$QIMG" bench "$@"
    norm
    sed -i 's/^qemu-img: /PROG: /; s/^Try .qemu-img --help./Try HELP/' "$T/ref.err"
    sed -i 's/^qimg: /PROG: /; s/^Try .qimg --help./Try HELP/' "$T/got.err"
    cmp -s "$T/ref.out" "$T/got.out" || { check_fail "stdout differs: $*"; diff "$T/ref.out" "$T/got.out" >&2; }
    cmp -s "$T/ref.err" "$T/got.err" || { check_fail "stderr differs: $*"; diff "$T/ref.err" "$T/got.err" >&2; }
    expect_eq "exit code of bench $*" "$(cat "$T/ref.rc")" "$(cat "$T/got.rc")"
}

cmp_bench -c 100 b.raw
cmp_bench -c 100 -f raw -d 4 -s 1k -S 8k -o 512 b.raw
cmp_bench -w -c 200 -f raw --flush-interval=64 b.raw
cmp_bench -w -c 200 -f raw -d 8 --flush-interval=10 --no-drain b.raw
cmp_bench -w -c 10 b.raw
cmp_bench -q -w -c 10 b.raw
cmp_bench -c 100 --flush-interval=10 -f raw b.raw
cmp_bench -w -c 100 --flush-interval=10 -f raw b.raw
cmp_bench -c 10 -o 1048000 -f raw b.raw
cmp_bench -c 10 -n -f raw b.raw
cmp_bench -c 10 -n -t none -f raw b.raw
cmp_bench -c 10 -i io_uring -f raw b.raw
cmp_bench -c 10 -i bogus -f raw b.raw
cmp_bench -c 10 -t bogus -f raw b.raw
cmp_bench -c 10 -s 1x -f raw b.raw
cmp_bench -c 10 -s 3000000000 -f raw b.raw
cmp_bench -c -1 -f raw b.raw
cmp_bench -c 0x10 -f raw b.raw
cmp_bench -c 10 --pattern=256 -f raw b.raw
cmp_bench -c 10 -f raw nonexist.raw
cmp_bench -c
cmp_bench -Z b.raw
cmp_bench a b
cmp_bench -c 10 -s 0 -f raw b.raw

# Writes: pattern 0x5a, 512 bytes every 4 KiB from 1 KiB, wrapping at the end.
"$QEMU_IMG" create -q -f raw w.raw 64k
"$QIMG" bench -q -w -f raw -c 20 -s 512 -S 4k -o 1k -d 3 --pattern=0x5a w.raw >/dev/null ||
    check_fail "bench -w failed"
python3 - w.raw <<'PY' || check_fail "bench wrote wrong bytes"
import sys
d = open(sys.argv[1], 'rb').read()
want = bytearray(65536)
off = 1024
for i in range(20):
    want[off:off + 512] = b'\x5a' * 512
    off = (off + 4096) % 65536
sys.exit(0 if bytes(want) == d else 1)
PY
finish
