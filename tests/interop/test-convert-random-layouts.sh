#!/bin/bash
# convert of images made of random runs of data, written zeros and holes
# that start and end at every alignment: qimg's output has the same bytes
# and the same allocation (qemu-img map) as qemu-img's, for raw and qcow2
# sources, several sources, and the options that change how zeros are
# found and written.
. "$(dirname "$0")/../lib.sh"
GEN="python3 $TEST_SRCDIR/interop/random_image.py"

same_output() { # same_output WHAT ARGS... (sources, then options)
    local what=$1; shift
    rm -f q.img m.img
    $QEMU_IMG convert -O raw "$@" q.img || fail "qemu-img $what"
    $QIMG convert -O raw "$@" m.img || { check_fail "qimg $what"; return; }
    cmp -s q.img m.img || check_fail "content differs: $what"
    expect_eq "map of $what" "$($QEMU_IMG map --output=json -f raw q.img)" \
        "$($QEMU_IMG map --output=json -f raw m.img)"
}

for seed in 1 2 3 4 5 6 7 8; do
    $GEN $seed a.raw || fail "generate $seed"
    for opts in "" "-S 0" "-S 512" "-S 64k" "-S 1M" "-W"; do
        same_output "seed $seed [$opts]" -f raw $opts a.raw
    done
done
for seed in 11 12 13 14; do
    $GEN $seed a.raw && $GEN $((seed + 100)) b.raw || fail "generate $seed"
    $QEMU_IMG convert -f raw -O qcow2 -o cluster_size=4096 b.raw b.qcow2 ||
        fail "qcow2 $seed"
    for opts in "" "-S 64k" "-m 1"; do
        same_output "seeds $seed+$((seed + 100)) raw+qcow2 [$opts]" $opts \
            a.raw b.qcow2
    done
done
finish
