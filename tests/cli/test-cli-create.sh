#!/bin/bash
# create with raw images: every option combination and error, compared
# with qemu-img (output, exit code and the file it leaves).
. "$(dirname "$0")/../lib.sh"

same_as_qemu_setup() { rm -f x.raw y.raw; }
for args in "x.raw 1M" "-f raw x.raw 1M" "-q -f raw x.raw 1k" "-f raw x.raw 1M -q" \
    "-f raw x.raw 0" "-f raw x.raw 0x10" "-f raw x.raw 1.5k" "-f raw x.raw 1b" \
    "-f raw x.raw 1B" "-f raw x.raw 1.k" "-f raw x.raw 1.0" "-f raw x.raw +5" \
    "-f raw x.raw 007" "-f raw x.raw 0xaB" "-f raw x.raw 1.3333333333k" \
    "-f raw x.raw 1.5m" "-f raw x.raw 1t" "-f raw x.raw 1g" \
    "-f raw x.raw 0x1k" "-o size=1M x.raw" "-f raw -o size=1k,size=2k x.raw" \
    "-f raw -o size=1k -o preallocation=full x.raw" \
    "-f raw -o preallocation=falloc x.raw 64k" "-f raw -o preallocation=full x.raw 64k" \
    "-f raw -o preallocation=off x.raw 64k" "-f raw -o preallocation=metadata x.raw 1M" \
    "-f raw -o preallocation=foo x.raw 1k" "-f raw -o preallocation=off,,x x.raw 1k" \
    "-f raw -o nocow=on x.raw 1k" "-f raw -o nocow=maybe x.raw 1k" "-f raw -o nocow x.raw 1k" \
    "-f raw -o extent_size_hint=1M x.raw 1k" "-f raw -o a,,b=c x.raw 1k" \
    "-f raw -o size x.raw" "-f raw -o size=abc x.raw" "-f raw -o size=-1 x.raw" \
    "-f raw -o size=1.5 x.raw" "-f raw -o size=18446744073709551615 x.raw" \
    "-f raw -o =x x.raw 1M" "-f raw -o foo=bar x.raw 1M" "-f raw -o size=2M x.raw 1M" \
    "-f raw -o ,size=1k x.raw" "-f raw -o size=1k, x.raw" "-f raw -o size=1k,,, x.raw" \
    "x.raw" "-f raw x.raw" "-f raw x.raw 1Q" "-f raw x.raw 9E" "-f raw x.raw 8E" \
    "-f raw x.raw 1.5" "-f raw x.raw 0.5b" "-f raw x.raw .5k" "-f raw x.raw 1kb" \
    "-f raw x.raw 0x" "-f raw x.raw 0x1.5k" "-f raw x.raw 1e3" \
    "-f raw x.raw 18446744073709551615" "-f raw x.raw 18446744073709551616" \
    "-f raw x.raw 0x8000000000000000" "-f raw x.raw -- -1" \
    "-f raw x.raw 1P" "-f foo x.raw 1M" "-f raw x.raw 1M extra" \
    "-f raw -b y.raw x.raw 1M" "-f raw -F raw x.raw 1M" \
    "-f raw -o help" "-o help" "-o ?" "-f raw -o help x.raw" \
    "-f raw -o preallocation=off,help x.raw 1k" "-f raw -o help -o size=1k" \
    "-f foo -o help" "--object secret,id=s,data=x -f raw x.raw 1k"; do
    # shellcheck disable=SC2086
    same_as_qemu create $args
    if [ "$(cat "$T/ref.rc")" = 0 ] && grep -q "^Formatting" "$T/ref.out"; then
        # qemu-img creates whole 512-byte sectors.
        sz=$(sed -n "s/.*size=\([0-9]*\).*/\1/p" "$T/ref.out")
        expect_eq "size of x.raw after create $args" \
            "$(( (sz + 511) / 512 * 512 ))" "$(stat -c %s x.raw)"
    fi
done
# The file has the requested size and no data; preallocation=full writes it
rm -f x.raw; "$QIMG" create -q -f raw -o preallocation=full x.raw 64k
expect_eq "full prealloc size" 65536 "$(stat -c %s x.raw)"
[ "$(stat -c %b x.raw)" -gt 0 ] || check_fail "full preallocation allocated nothing"
finish
