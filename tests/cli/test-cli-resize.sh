#!/bin/bash
# resize of raw images: absolute and relative sizes, shrinking, errors and
# preallocation, compared with qemu-img (output, exit code, file size).
. "$(dirname "$0")/../lib.sh"

same_as_qemu_setup() { rm -f r.raw; "$QEMU_IMG" create -q -f raw r.raw 1M; }
for args in "r.raw 2M" "-f raw r.raw 2M" "-q r.raw 2M" "r.raw +1M" "-f raw r.raw +512" \
    "-f raw r.raw -512k" "-f raw --shrink r.raw -512k" "r.raw 512k" "--shrink r.raw 512k" \
    "-f raw --shrink r.raw 1M" "-f raw r.raw 1M" "-f raw r.raw -1M" "-f raw --shrink r.raw -1M" \
    "-f raw r.raw -2M" "-f raw r.raw 0" "-f raw r.raw +8E" "-f raw r.raw abc" "-f raw r.raw 1.5" \
    "-f raw r.raw +" "-f raw r.raw 1Q" "-f raw --preallocation=full r.raw 2M" \
    "-f raw --preallocation=falloc r.raw +64k" "-f raw --preallocation=off r.raw 2M" \
    "-f raw --preallocation=metadata r.raw 2M" "-f raw --preallocation=foo r.raw 2M" \
    "-f raw --preallocation=full --shrink r.raw 512k" "-f raw --preallocation=full r.raw 1M" \
    "r.raw" "resize" "-f raw r.raw 2M extra" "-Z r.raw 2M" "-f r.raw 2M" \
    "nonexist 2M" "-f raw nonexist 2M" "--image-opts driver=raw,file.filename=r.raw 3M" \
    "--image-opts driver=raw,file.filename=r.raw,offset=4096 3M" \
    "--image-opts driver=raw,file.filename=r.raw,size=4096 3M" \
    "--object secret,id=s,data=x -f raw r.raw 2M" "-f file r.raw 3M"; do
    # shellcheck disable=SC2086
    same_as_qemu resize $args
    "$QEMU_IMG" create -q -f raw ref.raw 1M
    # shellcheck disable=SC2086
    set -- $args
    if [ "$(cat "$T/ref.rc")" = 0 ]; then
        # qimg's result must have the size qemu-img produced (rerun qemu-img)
        same_as_qemu_setup; "$QEMU_IMG" resize $args >/dev/null 2>&1; want=$(stat -c %s r.raw)
        same_as_qemu_setup; "$QIMG" resize $args >/dev/null 2>&1; got=$(stat -c %s r.raw)
        expect_eq "size after resize $args" "$want" "$got"
    fi
done
# preallocation=full on grow allocates the new range
same_as_qemu_setup
"$QIMG" resize -q -f raw --preallocation=full r.raw 4M
[ "$(stat -c %b r.raw)" -ge 6144 ] || check_fail "full preallocation did not allocate ($(stat -c %b r.raw) blocks)"
finish
