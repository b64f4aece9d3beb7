#!/bin/bash
# create with backing files (-b/-F/-u, -o backing_file/backing_fmt): the
# size taken from the backing image, qemu-img's errors and hints, and the
# link the new image records, compared with qemu-img.
. "$(dirname "$0")/../lib.sh"

"$QEMU_IMG" create -q -f raw base.raw 1M
"$QEMU_IMG" create -q -f qcow2 base.qcow2 3M
mkdir sub && "$QEMU_IMG" create -q -f raw sub/inner.raw 2M
same_as_qemu_setup() { rm -f x.qcow2 sub/x.qcow2; }
for args in "-f qcow2 -b base.qcow2 x.qcow2" "-f qcow2 -b base.raw x.qcow2" \
    "-f qcow2 -b base.qcow2 -F qcow2 x.qcow2" "-f qcow2 -b base.raw -F raw x.qcow2" \
    "-f qcow2 -b base.raw -F raw x.qcow2 5M" "-f qcow2 -b base.raw -F raw -o size=3M x.qcow2" \
    "-f qcow2 -b base.raw -F qcow2 x.qcow2" "-f qcow2 -b base.raw -F foo x.qcow2" \
    "-f qcow2 -b nonexist -F raw x.qcow2" "-f qcow2 -b nonexist x.qcow2" \
    "-f qcow2 -u -b nonexist -F raw x.qcow2" "-f qcow2 -u -b nonexist -F raw x.qcow2 1M" \
    "-f qcow2 -u -b nonexist x.qcow2 1M" "-f qcow2 -b x.qcow2 -F qcow2 x.qcow2" \
    "-f qcow2 -b '' -F raw x.qcow2 1M" "-f qcow2 -F raw x.qcow2 1M" \
    "-f qcow2 -o backing_file=base.raw x.qcow2" "-f qcow2 -o backing_file=base.raw,backing_fmt=raw x.qcow2" \
    "-f qcow2 -b base.raw -F raw -o backing_fmt=qcow2 x.qcow2" \
    "-f qcow2 -b inner.raw -F raw sub/x.qcow2" "-f qcow2 -b base.raw -F raw sub/x.qcow2" \
    "-f qcow2 -b ../base.raw -F raw sub/x.qcow2" "-f qcow2 -b $T/base.raw -F raw sub/x.qcow2" \
    "-q -f qcow2 -b base.qcow2 x.qcow2" "-f raw -b base.raw -F raw x.qcow2" \
    "-f qed -b base.raw -F raw x.qcow2" "-f vmdk -b base.raw -F raw x.qcow2"; do
    eval "same_as_qemu create $args"
    for img in x.qcow2 sub/x.qcow2; do
        [ -e "$img" ] || continue
        "$QEMU_IMG" info -U --output=json "$img" | grep -v actual-size >"$T/info.got"
        eval "same_as_qemu_setup; \"\$QEMU_IMG\" create $args" >/dev/null 2>&1
        "$QEMU_IMG" info -U --output=json "$img" | grep -v actual-size >"$T/info.ref"
        cmp -s "$T/info.ref" "$T/info.got" || check_fail "image made by create $args differs: $(diff "$T/info.ref" "$T/info.got")"
    done
done
finish
