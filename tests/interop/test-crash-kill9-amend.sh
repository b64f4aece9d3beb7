#!/bin/bash
# kill -9 at random moments of amend (compat 1.1 -> 0.10 expanding zero
# clusters, 0.10 -> 1.1, refcount_bits changes, lazy_refcounts on and off,
# size growth): qemu-img check never finds corruption (leaks allowed) and
# the active layer and the snapshot read back as before.
. "$(dirname "$0")/../lib.sh"
. "$TEST_SRCDIR/interop/crash-lib.sh"
# amend flushes between its steps and runs for tens of milliseconds:
# kills spread over 0-40 ms land before, inside and after it.
KILL_MAX_MS=40

mkam() { # IMG COMPAT [more create options]
    rm -f "$1"
    "$QEMU_IMG" create -q -f qcow2 -o "compat=$2${3:+,$3}" "$1" 4M
    for i in $(seq 0 63); do echo "write -P $((i + 1)) $((i * 64))k 64k"; done |
        "$QEMU_IO" "$1" >/dev/null
    if [ "$2" = 1.1 ]; then
        # zero clusters, some keeping their allocation
        for i in $(seq 0 8 63); do echo "write -z $((i * 64))k 64k"; done |
            "$QEMU_IO" "$1" >/dev/null
        for i in $(seq 4 8 63); do echo "write -z -u $((i * 64))k 64k"; done |
            "$QEMU_IO" "$1" >/dev/null
    fi
    "$QEMU_IMG" snapshot -c first "$1"
    for i in $(seq 1 5 63); do echo "write -P $((i + 100)) $((i * 64))k 32k"; done |
        "$QEMU_IO" "$1" >/dev/null
    if [ "$2" = 1.1 ]; then
        for i in $(seq 2 8 63); do echo "write -z $((i * 64))k 64k"; done |
            "$QEMU_IO" "$1" >/dev/null
    fi
}
mkam v3.tmpl 1.1
mkam v2.tmpl 0.10
mkam lazy.tmpl 1.1 lazy_refcounts=on
for t in v3 v2 lazy; do
    view "$t.tmpl" >"$t.cur"; view -l first "$t.tmpl" >"$t.first"
done

amend_run() { # RUN TEMPLATE AMEND-OPTIONS
    local run=$1 t=$2 opts=$3
    cp "$t.tmpl" a.qcow2
    kill_after_random "$QIMG" amend -o "$opts" a.qcow2
    check_ok a.qcow2 "amend $opts"
    # same data, and zeros in any grown area (compare without -s)
    "$QEMU_IMG" compare -U -q -f qcow2 -F raw a.qcow2 "$t.cur" ||
        check_fail "amend $opts $run: data changed"
    # (the snapshot reads with the active layer's size)
    view -l first a.qcow2 | head -c 4194304 >cur.raw
    same_as cur.raw "$t.first" "" "amend $opts $run: snapshot"
}

op_downgrade() { amend_run "$1" v3 compat=0.10; }
op_upgrade() { amend_run "$1" v2 compat=1.1; }
op_refcount() { # narrower and wider, alternating
    if [ $(($1 % 2)) = 0 ]; then amend_run "$1" v3 refcount_bits=4
    else amend_run "$1" v3 refcount_bits=64; fi
}
op_lazy() { # on and off, alternating
    if [ $(($1 % 2)) = 0 ]; then amend_run "$1" v3 lazy_refcounts=on
    else amend_run "$1" lazy lazy_refcounts=off; fi
}
op_size() { amend_run "$1" v3 size=64M; }

# Every operation must really complete when left alone, keeping the data.
for o in compat=0.10 compat=1.1 refcount_bits=4 refcount_bits=64 \
    lazy_refcounts=on lazy_refcounts=off size=64M; do
    case $o in compat=1.1) t=v2 ;; lazy_refcounts=off) t=lazy ;; *) t=v3 ;; esac
    cp "$t.tmpl" done.qcow2
    "$QIMG" amend -o "$o" done.qcow2 || check_fail "amend $o failed"
    "$QEMU_IMG" info done.qcow2 >info.out
    case $o in
    compat=*) grep -q "compat: ${o#compat=}" info.out ;;
    refcount_bits=*) grep -q "refcount bits: ${o#*=}" info.out ;;
    lazy_refcounts=on) grep -q "lazy refcounts: true" info.out ;;
    lazy_refcounts=off) grep -q "lazy refcounts: false" info.out ;;
    size=*) grep -q "virtual size: 64 MiB" info.out ;;
    esac || check_fail "amend $o: not applied"
    qemu_check_clean done.qcow2
    view done.qcow2 | head -c 4194304 | cmp -s - "$t.cur" ||
        check_fail "amend $o: data changed"
    view -l first done.qcow2 | head -c 4194304 | cmp -s - "$t.first" ||
        check_fail "amend $o: snapshot data changed"
done

run_ops downgrade upgrade refcount lazy size
finish
