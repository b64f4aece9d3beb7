#!/bin/bash
# qimg-io's program-level behaviour against qemu-io: open failures, bad
# options, missing image, exit codes.
. "$(dirname "$0")/../lib.sh"

"$QEMU_IMG" create -q -f raw base.raw 64k || fail "create"

io_same_as_qemu base.raw -c 'read 0 1' "$T/nonexistent"
io_same_as_qemu base.raw -f foo -c 'read 0 1' @IMG@
io_same_as_qemu base.raw -t foo -f raw -c 'read 0 1' @IMG@
io_same_as_qemu base.raw -t none -f raw -c 'write -P 3 0 4k' -c 'read -P 3 0 4k' @IMG@
io_same_as_qemu base.raw -n -f raw -c 'read 0 4k' @IMG@
io_same_as_qemu base.raw -U -f raw -c 'read 0 4k' @IMG@
io_same_as_qemu base.raw -U -r -f raw -c 'read 0 4k' @IMG@
io_same_as_qemu base.raw -f raw -c 'write 0 1'

# Usage errors exit 1 (the usage text itself is qimg-io's own).
run_tool a "$QIMG_IO" -f raw base.raw base.raw
expect_eq "two files: exit" 1 "$(cat a.rc)"
run_tool b "$QIMG_IO" -x base.raw
expect_eq "bad option: exit" 1 "$(cat b.rc)"
grep -q "invalid option -- 'x'" b.err || check_fail "bad option message: $(cat b.err)"
run_tool c "$QIMG_IO" --help
expect_eq "help: exit" 0 "$(cat c.rc)"

# Commands from standard input when no -c is given.
printf 'write -P 9 0 512\nread -P 9 0 512\n' | "$QIMG_IO" -f raw base.raw >stdin.out 2>&1 ||
    check_fail "stdin commands failed: $(cat stdin.out)"
grep -q '^qimg-io> read 512/512 bytes at offset 0' stdin.out ||
    check_fail "stdin output: $(cat stdin.out)"
"$QEMU_IO" -f raw -c 'read -P 9 0 512' base.raw >/dev/null ||
    check_fail "qemu-io does not read what qimg-io wrote from stdin commands"

finish
