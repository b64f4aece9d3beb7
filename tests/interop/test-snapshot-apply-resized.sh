#!/bin/bash
# snapshot -a of a snapshot whose disk size differs from the active
# layer's (taken, then the image resized): qimg and qemu-img, each on a
# copy, give the same output and exit code, and images with the same
# info, content and snapshots, which the real qemu-img check finds clean.
. "$(dirname "$0")/../lib.sh"

strip() { sed -E '1d; /^disk size/d; s/[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{8}/DATE/'; }
apply_both() { # IMG SNAPSHOT
    cp "$1" ref.qcow2; cp "$1" got.qcow2
    run_tool ref "$QEMU_IMG" snapshot -a "$2" ref.qcow2
    run_tool got "$QIMG" snapshot -a "$2" got.qcow2
    sed -i 's/^qemu-img: /PROG: /' "$T/ref.err"; sed -i 's/^qimg: /PROG: /' "$T/got.err"
    cmp -s "$T/ref.out" "$T/got.out" || check_fail "stdout differs: $*"
    cmp -s "$T/ref.err" "$T/got.err" || { check_fail "stderr differs: $*"; diff "$T/ref.err" "$T/got.err" >&2; }
    expect_eq "exit code: $*" "$(cat "$T/ref.rc")" "$(cat "$T/got.rc")"
    "$QEMU_IMG" info ref.qcow2 | strip >ri; "$QEMU_IMG" info got.qcow2 | strip >gi
    cmp -s ri gi || { check_fail "info differs: $*"; diff ri gi >&2; }
    images_equal ref.qcow2 got.qcow2
    qemu_check_clean got.qcow2
    local s
    for s in $("$QEMU_IMG" snapshot -l ref.qcow2 | awk 'NR > 2 { print $2 }'); do
        "$QEMU_IMG" convert -l "$s" -O raw ref.qcow2 r.raw
        "$QEMU_IMG" convert -l "$s" -O raw got.qcow2 g.raw
        cmp -s r.raw g.raw || check_fail "snapshot $s differs after: $*"
    done
    # the image stays usable: a write and a new snapshot on each
    "$QEMU_IO" -c "write -P 9 0 64k" ref.qcow2 >/dev/null
    "$QEMU_IO" -c "write -P 9 0 64k" got.qcow2 >/dev/null
    images_equal ref.qcow2 got.qcow2
    qemu_check_clean got.qcow2
}

# grown after the snapshot (same L1 size), then shrunk below it
"$QEMU_IMG" create -q -f qcow2 a.qcow2 4M
"$QEMU_IO" -c "write -P 1 0 4M" a.qcow2 >/dev/null
"$QEMU_IMG" snapshot -c s4 a.qcow2
"$QEMU_IMG" resize -q a.qcow2 2G
"$QEMU_IO" -c "write -P 2 1G 1M" a.qcow2 >/dev/null
"$QEMU_IMG" snapshot -c s2g a.qcow2
cp a.qcow2 grown.qcow2
"$QEMU_IMG" resize -q --shrink a.qcow2 1M
apply_both grown.qcow2 s4
apply_both a.qcow2 s4
apply_both a.qcow2 s2g
apply_both a.qcow2 1

# small clusters: the active L1 table grew past the snapshot's
"$QEMU_IMG" create -q -f qcow2 -o cluster_size=512 b.qcow2 1M
"$QEMU_IO" -c "write -P 3 0 1M" b.qcow2 >/dev/null
"$QEMU_IMG" snapshot -c small b.qcow2
"$QEMU_IMG" resize -q b.qcow2 8M
"$QEMU_IO" -c "write -P 4 7M 512k" b.qcow2 >/dev/null
"$QEMU_IMG" snapshot -c big b.qcow2
apply_both b.qcow2 small
cp ref.qcow2 b2.qcow2        # now at 1M with the large L1 table
apply_both b2.qcow2 big

finish
