#!/bin/bash
# convert reading one qcow2 source from many workers at once (-m 16, with
# and without -W, with a tiny L2 cache so that workers evict each other's
# tables): the raw result is byte for byte qemu-img's conversion.  The
# source is a three-layer chain: a fragmented top (small clusters written
# in random order, zero clusters, discards), a middle layer of compressed
# clusters (zlib, and zstd in a second chain) including the partial last
# cluster, and a base with plain data.
. "$(dirname "$0")/../lib.sh"

SIZE=$((24 * 1024 * 1024 + 1536))

# make_chain PREFIX COMPRESSION_TYPE
make_chain() {
    local p=$1 ct=$2
    $QEMU_IMG create -q -f qcow2 -o cluster_size=64k "$p-base.qcow2" $SIZE
    $QEMU_IMG create -q -f qcow2 -o cluster_size=64k,compression_type=$ct \
        -b "$p-base.qcow2" -F qcow2 "$p-mid.qcow2" $SIZE
    $QEMU_IMG create -q -f qcow2 -o cluster_size=4k \
        -b "$p-mid.qcow2" -F qcow2 "$p-top.qcow2" $SIZE
    local base=() mid=() top=()
    mapfile -t base < <(python3 - "$SIZE" 1 <<'EOF'
import random, sys
size, seed = int(sys.argv[1]), int(sys.argv[2])
r = random.Random(seed)
for i in range(0, size // (1 << 20)):
    if r.random() < 0.6:
        print(f"write -P {r.randrange(1, 256)} {i << 20} 1M")
EOF
)
    mapfile -t mid < <(python3 - "$SIZE" 2 <<'EOF'
import random, sys
size, seed = int(sys.argv[1]), int(sys.argv[2])
r = random.Random(seed)
cl = 65536
n = (size + cl - 1) // cl
for i in r.sample(range(n - 1), 160):
    print(f"write -c -P {r.randrange(1, 256)} {i * cl} {cl}")
# the partial cluster at the end of the image, compressed
print(f"write -c -P 77 {(n - 1) * cl} {size - (n - 1) * cl}")
EOF
)
    mapfile -t top < <(python3 - "$SIZE" 3 <<'EOF'
import random, sys
size, seed = int(sys.argv[1]), int(sys.argv[2])
r = random.Random(seed)
for _ in range(900):
    off = r.randrange(0, size // 4096) * 4096
    ln = min(r.choice([4096, 8192, 12288, 65536]), size - off)
    k = r.random()
    if k < 0.75:
        print(f"write -P {r.randrange(1, 256)} {off} {ln}")
    elif k < 0.9:
        print(f"write -z {off} {ln}")
    else:
        print(f"discard {off} {ln}")
EOF
)
    local a=() c
    for c in "${base[@]}"; do a+=(-c "$c"); done
    $QEMU_IO -f qcow2 "${a[@]}" "$p-base.qcow2" >/dev/null || fail "qemu-io base"
    a=()
    for c in "${mid[@]}"; do a+=(-c "$c"); done
    $QEMU_IO -f qcow2 "${a[@]}" "$p-mid.qcow2" >/dev/null || fail "qemu-io mid"
    a=()
    for c in "${top[@]}"; do a+=(-c "$c"); done
    $QEMU_IO -f qcow2 "${a[@]}" "$p-top.qcow2" >/dev/null || fail "qemu-io top"
    $QEMU_IMG convert -f qcow2 -O raw "$p-top.qcow2" "$p-ref.raw" ||
        fail "qemu-img convert $p"
}

# check_conv NAME ARGS...: qimg convert ARGS ... got.raw equals NAME-ref.raw
check_conv() {
    local p=$1; shift
    rm -f got.raw
    "$QIMG" convert "$@" got.raw 2>err.txt ||
        { check_fail "qimg convert $* failed: $(cat err.txt)"; return; }
    cmp -s "$p-ref.raw" got.raw ||
        check_fail "convert $* differs from qemu-img's: $(cmp "$p-ref.raw" got.raw | head -1)"
}

make_chain z zlib
make_chain s zstd
for p in z s; do
    # The chain really holds compressed clusters and a fragmented top.
    $QEMU_IMG check -f qcow2 "$p-mid.qcow2" | grep -Eq ' [1-9][0-9.]*% compressed' ||
        fail "$p-mid.qcow2 has no compressed cluster"
    $QEMU_IMG check -f qcow2 "$p-top.qcow2" | grep -Eq ' [1-9][0-9.]*% fragmented' ||
        fail "$p-top.qcow2 is not fragmented"
    check_conv $p -f qcow2 -O raw -m 16 "$p-top.qcow2"
    check_conv $p -f qcow2 -O raw -m 16 -W "$p-top.qcow2"
    check_conv $p -f qcow2 -O raw -m 16 -W -S 0 "$p-top.qcow2"
    # The middle layer alone: every request decompresses.
    $QEMU_IMG convert -f qcow2 -O raw "$p-mid.qcow2" "$p-mid-ref.raw"
    check_conv $p-mid -f qcow2 -O raw -m 16 -W "$p-mid.qcow2"
    # Tiny L2 caches on every layer: lookups evict tables that other
    # workers use.
    check_conv $p -O raw -m 16 -W --image-opts \
        "driver=qcow2,file.filename=$p-top.qcow2,l2-cache-size=8k,backing.l2-cache-size=128k,backing.backing.l2-cache-size=128k"
done
finish
