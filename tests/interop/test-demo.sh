#!/bin/bash
# `make demo` keeps working: scripts/demo.sh over this build (create, write
# with qimg-io, convert to qcow2, info, verify with qimg and qemu-img).
. "$(dirname "$0")/../lib.sh"

build=$(cd "$(dirname "$QIMG")/../.." && pwd)
bash "$TEST_SRCDIR/../scripts/demo.sh" "$build" >demo.out 2>&1 ||
    fail "demo failed: $(tail -20 demo.out)"
expect_eq "last line" "demo: OK" "$(tail -1 demo.out)"
grep -q '^file format: qcow2$' demo.out || check_fail "no qcow2 info in: $(cat demo.out)"
grep -q '^virtual size: 64 MiB (67108864 bytes)$' demo.out || check_fail "virtual size missing"
expect_eq "compare lines" 2 "$(grep -c '^Images are identical.$' demo.out)"
finish
