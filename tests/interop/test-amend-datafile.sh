#!/bin/bash
# amend of qcow2 images with and without an external data file: data_file
# renamed or cleared, data_file_raw toggled, the combinations qemu-img
# refuses and the encryption options it cannot amend; qimg and qemu-img
# on copies give the same output, exit code, info and check result.
. "$(dirname "$0")/../lib.sh"

mkdir tmpl
(cd tmpl &&
    "$QEMU_IMG" create -q -f qcow2 -o data_file=d1.raw ext.qcow2 1M &&
    "$QEMU_IMG" create -q -f qcow2 -o data_file=d2.raw,data_file_raw=on raw.qcow2 1M &&
    "$QEMU_IMG" create -q -f qcow2 plain.qcow2 1M &&
    "$QEMU_IO" -c "write -P 7 0 256k" ext.qcow2 >/dev/null &&
    "$QEMU_IO" -c "write -P 8 64k 256k" raw.qcow2 >/dev/null &&
    "$QEMU_IO" -c "write -P 9 0 64k" plain.qcow2 >/dev/null) || fail "setup"

one() { # TOOL DIR IMG ARGS...
    local tool=$1 dir=$2 img=$3; shift 3
    rm -rf "$dir"; cp -r tmpl "$dir"
    (cd "$dir" &&
        "$tool" amend "$@" "$img" >out 2>err; echo "rc=$?" >>out
        sed -i 's/^qemu-img: /PROG: /; s/^qimg: /PROG: /' err
        "$QEMU_IMG" info "$img" 2>&1 | sed '/^disk size/d' >info
        "$QEMU_IMG" check "$img" >check 2>&1; echo "rc=$?" >>check
        if [ -e d1.raw ]; then cat d1.raw >data; fi
        if [ -e d2.raw ]; then cat d2.raw >>data; fi
        "$QEMU_IMG" convert -O raw "$img" view.raw 2>/dev/null)
}
amend_both() { # IMG ARGS...
    one "$QEMU_IMG" r "$@"; one "$QIMG" g "$@"
    local f
    for f in out err info check data view.raw; do
        if [ -e "r/$f" ] || [ -e "g/$f" ]; then
            cmp -s "r/$f" "g/$f" || { check_fail "$f differs: $*"; diff "r/$f" "g/$f" | head -10 >&2; }
        fi
    done
}

for img in ext.qcow2 raw.qcow2 plain.qcow2; do
    for o in data_file=d3.raw data_file= data_file=d1.raw data_file_raw=on \
        data_file_raw=off data_file=d1.raw,data_file_raw=off \
        data_file=d2.raw,data_file_raw=on data_file=,data_file_raw=on \
        compat=0.10 lazy_refcounts=on,data_file=d1.raw \
        encrypt.new-secret=x encrypt.keyslot=1 encrypt.format=luks \
        encrypt.state=inactive; do
        amend_both "$img" -o "$o"
    done
done
# the data file renamed to one that exists: the image opens with it
amend_both ext.qcow2 -o data_file=d2.raw
finish
