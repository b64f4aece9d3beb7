#!/bin/bash
# Global options and argument errors: same stdout, stderr and exit code as
# qemu-img for every case.
. "$(dirname "$0")/../lib.sh"

same_as_qemu
same_as_qemu foo
same_as_qemu -x
same_as_qemu --bogus
same_as_qemu -T
same_as_qemu -T foo
same_as_qemu create
same_as_qemu create -Z
same_as_qemu create --foo
same_as_qemu create -f
same_as_qemu create -o
same_as_qemu create -f raw -b
same_as_qemu info
same_as_qemu info -f
same_as_qemu info a b
same_as_qemu info --output=foo
same_as_qemu info --output=xml a.raw
same_as_qemu info --output
same_as_qemu info nonexist
same_as_qemu info -f raw nonexist
same_as_qemu info -f nosuchfmt nonexist

# -V prints "<name> version <x>" then a copyright line, exits 0
out=$("$QIMG" -V); rc=$?
expect_eq "-V exit" 0 "$rc"
expect_eq "-V lines" 2 "$(printf '%s\n' "$out" | wc -l)"
case "$out" in "qimg version "*) ;; *) check_fail "-V first line: $out" ;; esac
case "$(printf '%s\n' "$out" | sed -n 2p)" in "Copyright (c) "*) ;; *) check_fail "-V copyright line" ;; esac
expect_eq "--version same as -V" "$out" "$("$QIMG" --version)"
expect_eq "-V ignores what follows" "$out" "$("$QIMG" -V create x)"

# A qemu-img symlink prints qemu-img's prefix
ln -s "$QIMG" "$T/qemu-img"
"$T/qemu-img" foo 2>"$T/sym.err"; rc=$?
expect_eq "symlink exit" 1 "$rc"
expect_eq "symlink stderr" "qemu-img: Command not found: foo
Try 'qemu-img --help' for more information" "$(cat "$T/sym.err")"
finish
