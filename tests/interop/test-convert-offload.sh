#!/bin/bash
# convert -C (copy offloading, docs/IO.md): data ranges go through
# copy_file_range(2), holes stay holes, and the target equals qemu-img's
# conversion byte for byte and in `qemu-img map`; where the kernel refuses
# (a real EXDEV across file systems, or one forced with
# QIMG_TEST_COPY_RANGE_FAIL) the copy goes on through memory as qemu-img's
# does, with the same result; the option conflicts give qemu-img's
# messages and exit codes.
. "$(dirname "$0")/../lib.sh"
command -v strace >/dev/null || fail "strace is missing: run scripts/install-deps.sh"

"$QEMU_IMG" create -q -f raw s.raw 4M
"$QEMU_IO" -f raw -c "write -P 0xaa 0 1M" -c "write -P 0 1M 64k" \
    -c "write -P 0xbb 3M 512k" s.raw >/dev/null
printf 'odd-sized source' > odd.raw
head -c 1000 /dev/urandom >> odd.raw
"$QEMU_IMG" convert -q -f raw -O qcow2 s.raw s.qcow2

# offload NAME QIMG-ONLY-ENV... -- CONVERT-ARGS (last one the target):
# qemu-img and qimg convert the same; compare bytes and maps.
maps_equal() {
    "$QEMU_IMG" map --output=json -f raw "$1" > "$T/m1"
    "$QEMU_IMG" map --output=json -f raw "$2" > "$T/m2"
    cmp -s "$T/m1" "$T/m2" || { check_fail "allocation differs: $3"; diff "$T/m1" "$T/m2" >&2; }
}
convert_both() { # convert_both TARGET ARGS...: TARGET gets -ref/-got suffixes
    local tgt=$1; shift
    rm -f "ref-$tgt" "got-$tgt"
    "$QEMU_IMG" convert "$@" "ref-$tgt" || check_fail "qemu-img convert $*"
    ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 strace -f -qq -o "$T/trace.log" -e trace=copy_file_range "$QIMG" convert "$@" "got-$tgt" ||
        check_fail "qimg convert $*"
    cmp -s "ref-$tgt" "got-$tgt" || check_fail "data differs: convert $*"
}
offloaded() { grep -c "copy_file_range(.*= [1-9]" "$T/trace.log"; }
refused() { grep -c "copy_file_range(.*= -1" "$T/trace.log"; }

convert_both o.raw -C -f raw -O raw s.raw
maps_equal ref-o.raw got-o.raw "-C raw"
[ "$(offloaded)" -ge 2 ] || check_fail "-C raw: $(offloaded) offloaded copies"
# Nothing but the two data ranges is copied.
[ "$(grep -c "copy_file_range(" "$T/trace.log")" -eq "$(offloaded)" ] ||
    check_fail "-C raw: refused copies: $(cat "$T/trace.log")"
grep -q 'copy_file_range(.*\[1048576\]' "$T/trace.log" &&
    check_fail "-C raw: the hole was copied"

convert_both o.raw -C -t none -f raw -O raw s.raw
maps_equal ref-o.raw got-o.raw "-C -t none"
convert_both o.raw -C -W -m 4 -f raw -O raw s.raw
maps_equal ref-o.raw got-o.raw "-C -W -m 4"
convert_both o.raw -C -f raw -O raw s.raw s.raw
maps_equal ref-o.raw got-o.raw "-C with two sources"
[ "$(offloaded)" -ge 4 ] || check_fail "-C two sources: $(offloaded) offloaded copies"
# A source that ends inside a sector: qemu-img's copy_file_range makes no
# progress past its end and the copy falls back.
convert_both o.raw -C -f raw -O raw odd.raw
maps_equal ref-o.raw got-o.raw "-C odd-sized source"
# qcow2 source: its plain clusters are offloaded.
convert_both o.raw -C -f qcow2 -O raw s.qcow2
maps_equal ref-o.raw got-o.raw "-C qcow2 source"
[ "$(offloaded)" -ge 2 ] || check_fail "-C qcow2 source: $(offloaded) offloaded copies"
# Into an existing target, and one with an offset.
"$QEMU_IMG" create -q -f raw ref-n.raw 4M
"$QEMU_IMG" create -q -f raw got-n.raw 4M
"$QEMU_IMG" convert -C -n -f raw -O raw s.raw ref-n.raw
"$QIMG" convert -C -n -f raw -O raw s.raw got-n.raw || check_fail "-C -n"
cmp -s ref-n.raw got-n.raw || check_fail "-C -n: data differs"
maps_equal ref-n.raw got-n.raw "-C -n"
"$QEMU_IMG" create -q -f raw ref-off.raw 5M
"$QEMU_IMG" create -q -f raw got-off.raw 5M
"$QEMU_IMG" convert -C -n -f raw --target-image-opts s.raw \
    driver=raw,file.filename=ref-off.raw,offset=1M,size=4M
"$QIMG" convert -C -n -f raw --target-image-opts s.raw \
    driver=raw,file.filename=got-off.raw,offset=1M,size=4M || check_fail "-C into raw with offset"
cmp -s ref-off.raw got-off.raw || check_fail "-C into raw with offset: data differs"
# Other targets: contents as qemu-img's (qcow2 in detail:
# test-convert-offload-qcow2.sh; vmdk goes through memory).
for fmt in qcow2 vmdk; do
    rm -f ref.$fmt got.$fmt
    "$QEMU_IMG" convert -C -f raw -O $fmt s.raw ref.$fmt
    "$QIMG" convert -C -f raw -O $fmt s.raw got.$fmt || check_fail "-C -O $fmt"
    images_equal ref.$fmt got.$fmt
    qemu_check_clean got.$fmt
done

# The kernel refusing: the copy goes on through memory, as qemu-img's.
for e in EXDEV EOPNOTSUPP ENOSYS; do
    rm -f got-f.raw
    QIMG_TEST_COPY_RANGE_FAIL=$e "$QIMG" convert -C -f raw -O raw s.raw got-f.raw ||
        check_fail "-C with $e refused"
    "$QEMU_IMG" compare -q -f raw -F raw s.raw got-f.raw || check_fail "-C with $e: contents differ"
done
if [ -d /dev/shm ] && [ "$(stat -f -c %T /dev/shm)" != "$(stat -f -c %T .)" ]; then
    # A real EXDEV: source on another file system type.
    shm=$(mktemp /dev/shm/qimg-offload.XXXXXX)
    cp s.raw "$shm"
    "$QEMU_IO" -f raw -c "write -P 0 1M 64k" "$shm" >/dev/null   # keep the zero data allocated
    convert_both x.raw -C -f raw -O raw "$shm"
    maps_equal ref-x.raw got-x.raw "-C across file systems"
    [ "$(refused)" -ge 1 ] || check_fail "-C across file systems: no refusal seen"
    # ... and it is the same as forcing the refusal.
    rm -f got-f.raw
    QIMG_TEST_COPY_RANGE_FAIL=EXDEV "$QIMG" convert -C -f raw -O raw s.raw got-f.raw
    cmp -s ref-x.raw got-f.raw || check_fail "forced EXDEV differs from a real one"
    maps_equal ref-x.raw got-f.raw "forced EXDEV"
    rm -f "$shm"
fi

# Option conflicts.
for a in "-C -c -O qcow2" "-C -S 0" "-C -S 4k" "-C --salvage" "-C -c -S 0 -O qcow2"; do
    rm -f e.img
    # shellcheck disable=SC2086
    same_as_qemu convert $a -f raw s.raw e.img
done
finish
