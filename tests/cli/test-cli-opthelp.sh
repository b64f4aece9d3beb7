#!/bin/bash
# "-o help" / "-o ?" for every format the registry holds: the sorted
# "Supported <fmt> options:" list (and the protocol-level one with a file
# name) exactly as qemu-img prints it.
. "$(dirname "$0")/../lib.sh"

fmts=$("$QIMG" --help | sed -n 's/^Supported formats: //p')
[ -n "$fmts" ] || fail "no format list in --help"
for f in $fmts; do
    # qimg also accepts aliases (vhd for vpc) that qemu-img does not know
    "$QEMU_IMG" create -f "$f" -o help 2>&1 | grep -q "Unknown file format" && continue
    # formats qimg reads but cannot create yet are listed, not compared
    if "$QIMG" create -f "$f" -o help 2>&1 | grep -q "does not support image creation" &&
       ! "$QEMU_IMG" create -f "$f" -o help 2>&1 | grep -q "does not support image creation"; then
        echo "note: qimg cannot create $f images yet" >&2
        continue
    fi
    same_as_qemu create -f "$f" -o help
    same_as_qemu create -f "$f" -o help x.img
    same_as_qemu create -f "$f" -o '?'
done
same_as_qemu create -f nosuchfmt -o help
same_as_qemu create -o help,size=1M x.img
same_as_qemu create -f raw -o size=1M -o help x.img
[ ! -e x.img ] || check_fail "-o help created a file"
finish
