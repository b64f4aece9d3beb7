#!/bin/bash
# qcow2 in both directions at every point of the format matrix (cluster
# sizes 512 B, 64 KiB, 2 MiB; compat 0.10 and 1.1; refcount_bits 1 and
# 64; extended L2; zstd and zlib compression), each as a chain of three
# images made with that option and written at every level with data,
# partial clusters, zero writes with and without unmap, discards,
# compressed clusters and copy-on-write from the backing chain:
#  - written by qemu-img/qemu-io, every layer reads bit-exactly in qimg
#    (raw conversion byte for byte);
#  - created by qimg and written by qimg-io, qimg-io prints what qemu-io
#    prints, every layer passes qemu-img check and compares identical to
#    qemu's chain, maps the same ranges the same way, and qemu-img info
#    reports the same format details;
#  - freshly created images are qemu-img's byte for byte;
#  - qimg info (human, JSON, --backing-chain) is byte for byte qemu-img's
#    on both chains.
. "$(dirname "$0")/../lib.sh"

# ops LAYER CS: the qemu-io arguments for one layer of the chain.
ops() {
    local cs=$2
    case $1 in
    base) echo "-c|write -P 0x11 0 5M|-c|write -c -P 0x12 6M $cs|-c|write -P 0x13 7M 512k" ;;
    mid) echo "-c|write -P 0x21 $((cs / 2)) $cs|-c|write -z 1M 300k|-c|write -z -u 1536k 256k" \
              "|-c|discard 3M 2M|-c|write -c -P 0x22 4M $cs|-c|write -P 0x23 $((6 * 1048576 + cs / 4)) 1k" ;;
    top) echo "-c|write -c -P 0x35 $((8 * 1048576 - cs)) $cs" \
              "|-c|write -P 0x31 3000 5000|-c|write -P 0x32 $((3 * cs - 100)) 300" \
              "|-c|write -z $((2 * 1048576 + 1000)) 64k|-c|discard 0 1M" \
              "|-c|write -P 0x33 $((4 * 1048576 + 100)) 200|-c|write -z -u 5M 1M" \
              "|-c|write -P 0x34 7M 512k" ;;
    esac
}

same_raw() { # same_raw IMG : qimg and qemu-img give the same raw bytes
    "$QEMU_IMG" convert -O raw "$1" ref.raw || fail "qemu-img convert $1"
    "$QIMG" convert -O raw "$1" got.raw 2>"$T/conv.err" ||
        { check_fail "qimg convert $1: $(cat "$T/conv.err")"; return; }
    cmp -s ref.raw got.raw || check_fail "content differs: $1"
    rm -f ref.raw got.raw
}

info_same() { # info_same IMG : every info form identical
    same_as_qemu info "$1"
    same_as_qemu info --output=json "$1"
    same_as_qemu info --backing-chain "$1"
    same_as_qemu info --backing-chain --output=json "$1"
}

# Format details of an image as qemu-img reports them, without what may
# differ between two equal images (file names, allocated size).
details() {
    "$QEMU_IMG" info --output=json "$1" |
        sed -e 's/[rg]-\(base\|mid\|top\)/X-\1/g' -e '/"actual-size"/d'
}

for o in cluster_size=512 cluster_size=64k cluster_size=2M compat=0.10 compat=1.1 \
         refcount_bits=1 refcount_bits=64 extended_l2=on compression_type=zstd \
         compression_type=zlib; do
    case $o in
    cluster_size=512) cs=512 ;;
    cluster_size=2M) cs=2097152 ;;
    *) cs=65536 ;;
    esac
    rm -f r-* g-*
    for t in r g; do
        if [ $t = r ]; then mk=$QEMU_IMG io=$QEMU_IO; else mk=$QIMG io=$QIMG_IO; fi
        prev=
        for l in base mid top; do
            if [ -z "$prev" ]; then
                "$mk" create -q -f qcow2 -o "$o" $t-$l 8M || { check_fail "$mk create $o"; continue 3; }
            else
                "$mk" create -q -f qcow2 -o "$o" -b $t-$prev -F qcow2 $t-$l ||
                    { check_fail "$mk create -b [$o]"; continue 3; }
            fi
            IFS='|' read -r -a args <<<"$(ops $l $cs | sed 's/ |/|/g')"
            "$io" -f qcow2 "${args[@]}" $t-$l >$t-$l.out 2>&1
            echo "rc $?" >>$t-$l.out
            normalise_io $t-$l.out
            prev=$l
        done
    done
    for l in base mid top; do
        grep -q -e failed -e "rc [^0]" r-$l.out && fail "qemu-io [$o] $l: $(cat r-$l.out)"
        cmp -s r-$l.out g-$l.out ||
            { check_fail "qimg-io output [$o] $l"; diff r-$l.out g-$l.out | head -5 >&2; }
        # qemu -> qimg
        same_raw r-$l
        # qimg -> qemu
        qemu_check_clean g-$l
        images_equal g-$l r-$l
        expect_eq "format details [$o] $l" "$(details r-$l)" "$(details g-$l)"
        "$QEMU_IMG" map --output=json g-$l | sed 's/"offset": [0-9]*/O/' >g.map
        "$QEMU_IMG" map --output=json r-$l | sed 's/"offset": [0-9]*/O/' >r.map
        cmp -s r.map g.map || check_fail "map [$o] $l differs"
    done
    # Fresh images are qemu-img's byte for byte (header, extensions and
    # feature table, tables, refcounts).
    for a in "" "-b r-base -F qcow2"; do
        rm -f c-ref c-got
        "$QEMU_IMG" create -q -f qcow2 -o "$o" $a c-ref 8M
        "$QIMG" create -q -f qcow2 -o "$o" $a c-got 8M
        cmp -s c-ref c-got || check_fail "create [$o] $a: image differs from qemu-img's"
    done
    sync r-* g-*
    info_same r-top
    info_same g-top
done
finish
