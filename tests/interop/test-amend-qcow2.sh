#!/bin/bash
# amend on qcow2: the same option changes made by qimg and qemu-img on
# copies of one image give the same output, exit code, `info` and content,
# and the result passes the real qemu-img check.
. "$(dirname "$0")/../lib.sh"

mk() { # IMG [create options]
    rm -f "$1"
    "$QEMU_IMG" create -q -f qcow2 ${2:+-o $2} "$1" 2M
    "$QEMU_IO" -c "write -P 5 0 64k" -c "write -z 128k 64k" -c "write -z 256k 4k" \
        -c "write -c -P 6 512k 64k" "$1" >/dev/null
}
amend_both() { # CREATE_OPTS SNAPSHOT(yes/no) AMEND_ARGS...
    local copts=$1 snap=$2; shift 2
    mk ref.qcow2 "$copts"; mk got.qcow2 "$copts"
    if [ "$snap" = yes ]; then
        "$QEMU_IMG" snapshot -c s1 ref.qcow2; "$QEMU_IMG" snapshot -c s1 got.qcow2
        "$QEMU_IO" -c "write -z 0 64k" ref.qcow2 >/dev/null
        "$QEMU_IO" -c "write -z 0 64k" got.qcow2 >/dev/null
    fi
    # The snapshot must read as before.  (qemu-img's downgrade writes
    # zeros into a cluster the zero write left shared with the snapshot,
    # changing the snapshot and leaving OFLAG_COPIED errors: not copied.)
    [ "$snap" = yes ] && "$QEMU_IMG" convert -l s1 -O raw got.qcow2 s1.raw
    run_tool ref "$QEMU_IMG" amend "$@" ref.qcow2
    run_tool got "$QIMG" amend "$@" got.qcow2
    sed -i 's/^qemu-img: /PROG: /; s/^Try .qemu-img --help./Try HELP/' "$T/ref.err"
    sed -i 's/^qimg: /PROG: /; s/^Try .qimg --help./Try HELP/' "$T/got.err"
    cmp -s "$T/ref.out" "$T/got.out" || { check_fail "stdout differs: $copts $*"; diff "$T/ref.out" "$T/got.out" >&2; }
    cmp -s "$T/ref.err" "$T/got.err" || { check_fail "stderr differs: $copts $*"; diff "$T/ref.err" "$T/got.err" >&2; }
    expect_eq "exit code: $copts $*" "$(cat "$T/ref.rc")" "$(cat "$T/got.rc")"
    "$QEMU_IMG" info ref.qcow2 | sed '1d; /^disk size/d; /^[0-9]/d' >"$T/ri"
    "$QEMU_IMG" info got.qcow2 | sed '1d; /^disk size/d; /^[0-9]/d' >"$T/gi"
    cmp -s "$T/ri" "$T/gi" || { check_fail "info differs: $copts $*"; diff "$T/ri" "$T/gi" >&2; }
    images_equal ref.qcow2 got.qcow2
    qemu_check_clean got.qcow2
    if [ "$snap" = yes ]; then
        "$QEMU_IMG" convert -l s1 -O raw got.qcow2 g.raw 2>/dev/null
        cmp -s s1.raw g.raw || check_fail "snapshot content changed: $copts $*"
    fi
}

amend_both "" yes -o compat=0.10
amend_both "compat=0.10" yes -o compat=1.1
amend_both "" yes -o refcount_bits=64
amend_both "" yes -o refcount_bits=1
amend_both "" no -o compat=v2,lazy_refcounts=off
amend_both "compat=0.10" no -o compat=v3,lazy_refcounts=on
amend_both "" no -o refcount_bits=1
amend_both "refcount_bits=8" no -o refcount_bits=16,compat=0.10
amend_both "" no -o lazy_refcounts=on
amend_both "lazy_refcounts=on" no -o lazy_refcounts=off
amend_both "compat=0.10" no -o lazy_refcounts=on
amend_both "compat=0.10" no -o refcount_bits=8
amend_both "" no -o refcount_bits=8,compat=0.10
amend_both "extended_l2=on" no -o compat=0.10
amend_both "compression_type=zstd" no -o compat=0.10
amend_both "" no -o size=5M
amend_both "" no -o size=512k
amend_both "compat=0.10" no -o size=3M,compat=1.1
amend_both "" no -o compat=0.9
amend_both "" no -o cluster_size=4k
amend_both "" no -o refcount_bits=3
amend_both "" no -o backing_file=x
amend_both "" no -o data_file=x
amend_both "" no -o data_file_raw=on
amend_both "" no -o help
# -p: the same progress lines, stage by stage (version change, refcount
# rewrite in three passes over the refcount table, zero cluster expansion
# per L1 entry of the active layer and of each snapshot).
amend_both "" yes -p -o compat=0.10
amend_both "cluster_size=512" yes -p -o compat=0.10
amend_both "compat=0.10" yes -p -o compat=1.1
amend_both "compat=0.10" yes -p -o compat=1.1,refcount_bits=8,lazy_refcounts=on
amend_both "" no -p -o refcount_bits=64
amend_both "cluster_size=512" yes -p -o refcount_bits=4
amend_both "refcount_bits=8" no -p -o refcount_bits=16,compat=0.10
amend_both "cluster_size=512,refcount_bits=8" yes -p -o refcount_bits=16,compat=0.10
amend_both "" no -p -o lazy_refcounts=on,size=4M
amend_both "compat=0.10" no -p -o refcount_bits=8
amend_both "" no -q -o compat=0.10
amend_both "" no
same_as_qemu amend -f qcow2 -o help
same_as_qemu amend -f raw -o help
"$QEMU_IMG" create -q -f raw r.raw 1M
same_as_qemu amend -f raw -o size=2M r.raw
finish
