#!/bin/bash
# convert between raw images: content, sparseness, -S, -n, concatenation,
# progress output and option errors, against the real qemu-img.
. "$(dirname "$0")/../lib.sh"

# A source with random data, written zeros, a hole and a small data tail.
head -c 3M /dev/urandom > src.img
truncate -s 10M src.img
dd if=/dev/zero of=src.img bs=1M seek=5 count=2 conv=notrunc status=none
printf 'hello' | dd of=src.img bs=1 seek=9000000 conv=notrunc status=none

# Same bytes and same allocation as qemu-img's conversion.
for opts in "" "-S 0" "-S 64k" "-W -m 16" "-m 1" "-C" "-t none" "-T none"; do
    rm -f q.img m.img
    $QEMU_IMG convert -f raw -O raw $opts src.img q.img || fail "qemu-img $opts"
    $QIMG convert -f raw -O raw $opts src.img m.img || fail "qimg $opts"
    cmp -s src.img m.img || check_fail "content differs with [$opts]"
    expect_eq "map with [$opts]" "$($QEMU_IMG map --output=json -f raw q.img)" \
        "$($QEMU_IMG map --output=json -f raw m.img)"
done

# Concatenation, including an odd-sized source rounded up to 512 bytes.
head -c 1000 /dev/urandom > odd.img
$QIMG convert -f raw odd.img src.img odd.img cat.img || fail "concat"
$QEMU_IMG convert -f raw odd.img src.img odd.img qcat.img || fail "qemu concat"
cmp -s cat.img qcat.img || check_fail "concatenation differs"

# -n into an existing (non-zero) target; --target-is-zero into a zero one.
head -c 10M /dev/urandom > n.img
$QIMG convert -n -f raw -O raw src.img n.img || fail "-n"
cmp -s src.img n.img || check_fail "-n content"
truncate -s 10M z.img
$QIMG convert -n --target-is-zero -f raw -O raw src.img z.img || fail "--target-is-zero"
cmp -s src.img z.img || check_fail "--target-is-zero content"

# Progress line, byte for byte.
rm -f q.img m.img
$QEMU_IMG convert -p -f raw src.img q.img > ref.progress
$QIMG convert -p -f raw src.img m.img > got.progress
cmp -s ref.progress got.progress || check_fail "progress output differs"

# Errors: same message and exit code.
same_as_qemu_setup() { rm -f out.img; }
same_as_qemu convert
same_as_qemu convert -f raw
same_as_qemu convert -O foo -f raw src.img out.img
same_as_qemu convert -f raw nonexistent.img out.img
same_as_qemu convert -f raw -S 1000 src.img out.img
same_as_qemu convert -f raw -S 4x src.img out.img
same_as_qemu convert -f raw -m 17 src.img out.img
same_as_qemu convert -f raw -m 0 src.img out.img
same_as_qemu convert -f raw -c -C src.img out.img
same_as_qemu convert -f raw -S 4k -C src.img out.img
same_as_qemu convert -f raw --salvage -C src.img out.img
same_as_qemu convert -f raw --target-is-zero src.img out.img
same_as_qemu convert -f raw -n -o size=1M src.img out.img
same_as_qemu convert -f raw --target-image-opts src.img out.img
same_as_qemu convert -f raw --skip-broken-bitmaps src.img out.img
same_as_qemu convert -f raw -O raw -B src.img src.img out.img
same_as_qemu convert -f raw -O raw -c src.img out.img
same_as_qemu convert -f raw -O raw -o foo=bar src.img out.img
same_as_qemu convert -f raw -T bogus src.img out.img
same_as_qemu convert -f raw -t bogus src.img out.img
same_as_qemu convert -f raw -l foo src.img out.img
same_as_qemu convert -f raw -l snapshot.id=1 src.img out.img
same_as_qemu convert -f raw -l snapshot.foo=1 src.img out.img
same_as_qemu convert -f raw -l foo src.img src.img out.img
same_as_qemu convert -f raw src.img
truncate -s 1M small.img
same_as_qemu_setup() { rm -f out.img; truncate -s 1M small.img; }
same_as_qemu convert -n -f raw -O raw src.img small.img
finish
