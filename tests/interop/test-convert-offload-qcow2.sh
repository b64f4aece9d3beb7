#!/bin/bash
# convert -C into qcow2 targets (docs/IO.md): like qemu-img 7.2, qimg
# allocates the target's clusters and has the kernel copy the source's
# data into them with copy_file_range (strace shows it), for raw and
# qcow2 sources and for data an overlay leaves to its backing file;
# compressed source clusters go through memory without a message.  The
# results are qemu-img compare-equal to qemu-img's, check clean, and have
# qemu-img's allocation (map without host offsets); a refused copy
# (QIMG_TEST_COPY_RANGE_FAIL, or a real EXDEV) leaves no leaked cluster.
. "$(dirname "$0")/../lib.sh"
command -v strace >/dev/null || fail "strace is missing: run scripts/install-deps.sh"

"$QEMU_IMG" create -q -f raw s.raw 4M
"$QEMU_IO" -f raw -c "write -P 0xaa 0 1M" -c "write -P 0 1M 64k" \
    -c "write -P 0xbb 3M 500k" s.raw >/dev/null
"$QEMU_IMG" convert -q -f raw -O qcow2 s.raw s.qcow2
"$QEMU_IMG" create -q -f qcow2 -b s.qcow2 -F qcow2 ov.qcow2
"$QEMU_IO" -c "write -P 0xcc 512k 1M" -c "write -P 0xdd 2M 4k" ov.qcow2 >/dev/null
yes qimg-compressible | head -c 2M > c.raw
"$QEMU_IMG" convert -q -c -f raw -O qcow2 c.raw c.qcow2

# map_of IMG: qemu-img map without host offsets, adjacent runs merged
map_of() {
    "$QEMU_IMG" map --output=json "$1" | sed -E 's/, "offset": [0-9]+//' |
        awk '{ match($0, /"start": [0-9]+/); s = substr($0, RSTART + 9, RLENGTH - 9) + 0
               match($0, /"length": [0-9]+/); l = substr($0, RSTART + 10, RLENGTH - 10) + 0
               match($0, /"depth".*(true|false)/); k = substr($0, RSTART, RLENGTH)
               if (n && k == key && s == start + len) { len += l; next }
               if (n) print start, len, key
               start = s; len = l; key = k; n = 1 }
             END { if (n) print start, len, key }'
}
# both TARGET ARGS...: qemu-img and qimg convert (target ref-/got-TARGET),
# qimg under strace; same content, clean check, same allocation.
both() {
    local tgt=$1; shift
    rm -f "ref-$tgt" "got-$tgt" ./*.data
    "$QEMU_IMG" convert "$@" "ref-$tgt" 2>"$T/ref.err"; echo $? > "$T/ref.rc"
    ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 strace -f -qq -o "$T/trace.log" \
        -e trace=copy_file_range "$QIMG" convert "$@" "got-$tgt" 2>"$T/got.err"; echo $? > "$T/got.rc"
    expect_eq "exit code of convert $*" "$(cat "$T/ref.rc")" "$(cat "$T/got.rc")"
    sed -i 's/^qemu-img: //' "$T/ref.err"; sed -i 's/^qimg: //' "$T/got.err"
    expect_eq "messages of convert $*" "$(cat "$T/ref.err")" "$(cat "$T/got.err")"
    [ "$(cat "$T/ref.rc")" = 0 ] || return 0
    "$QEMU_IMG" compare -q "ref-$tgt" "got-$tgt" || check_fail "convert $*: contents differ"
    qemu_check_clean "got-$tgt"
    [ "$(map_of "ref-$tgt")" = "$(map_of "got-$tgt")" ] ||
        { check_fail "convert $*: allocation differs"; diff <(map_of "ref-$tgt") <(map_of "got-$tgt") >&2; }
}
offloaded() { grep -c "copy_file_range(.*= [1-9]" "$T/trace.log"; }

for o in "" "-o cluster_size=4096" "-o extended_l2=on" "-o cluster_size=2M" \
         "-o preallocation=metadata" "-o compat=0.10"; do
    # shellcheck disable=SC2086
    both o.qcow2 -C -f raw -O qcow2 $o s.raw
    [ "$(offloaded)" -ge 2 ] || check_fail "-C -O qcow2 $o: $(offloaded) offloaded copies"
done
# An external data file: the data goes there.
for who in ref got; do
    rm -f "$who-d.qcow2" "$who-d.data"
    [ $who = ref ] && prog=$QEMU_IMG || prog=$QIMG
    ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 strace -f -qq -o "$T/trace.log" \
        -e trace=copy_file_range "$prog" convert -C -f raw -O qcow2 -o data_file="$who-d.data" s.raw "$who-d.qcow2" ||
        check_fail "$who: -C with a data file"
done
"$QEMU_IMG" compare -q ref-d.qcow2 got-d.qcow2 || check_fail "-C with a data file: contents differ"
qemu_check_clean got-d.qcow2
cmp -s ref-d.data got-d.data || check_fail "-C with a data file: data files differ"
[ "$(offloaded)" -ge 2 ] || check_fail "-C with a data file: $(offloaded) offloaded copies"
both o.qcow2 -C -O qcow2 s.qcow2
[ "$(offloaded)" -ge 2 ] || check_fail "-C qcow2 to qcow2: $(offloaded) offloaded copies"
# Every byte the kernel copied was source data: nothing past 4M of s.raw.
both o.qcow2 -C -t none -O qcow2 s.qcow2
[ "$(offloaded)" -ge 2 ] || check_fail "-C -t none: $(offloaded) offloaded copies"
both o.qcow2 -C -W -m 4 -O qcow2 s.qcow2
# An overlay: its own clusters and its backing file's.
both o.qcow2 -C -O qcow2 ov.qcow2
grep -q "copy_file_range(.*\[327680\]" "$T/trace.log" || check_fail "-C overlay: nothing copied from the backing file"
[ "$(offloaded)" -ge 3 ] || check_fail "-C overlay: $(offloaded) offloaded copies"
both o.qcow2 -C -O qcow2 -B s.qcow2 -F qcow2 ov.qcow2
[ "$(offloaded)" -ge 1 ] || check_fail "-C -B: $(offloaded) offloaded copies"
# Compressed clusters cannot be offloaded: through memory, no message.
both o.qcow2 -C -O qcow2 c.qcow2
expect_eq "-C from compressed clusters: copies" 0 "$(grep -c "copy_file_range(" "$T/trace.log")"
# Into an existing image with data (-n): clusters are overwritten in place.
for who in ref got; do
    rm -f "$who-n.qcow2"
    "$QEMU_IMG" create -q -f qcow2 "$who-n.qcow2" 4M
    "$QEMU_IO" -c "write -P 3 0 4M" "$who-n.qcow2" >/dev/null
done
"$QEMU_IMG" convert -C -n -f raw -O qcow2 s.raw ref-n.qcow2
ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 strace -f -qq -o "$T/trace.log" \
    -e trace=copy_file_range "$QIMG" convert -C -n -f raw -O qcow2 s.raw got-n.qcow2 || check_fail "-C -n"
"$QEMU_IMG" compare -q ref-n.qcow2 got-n.qcow2 || check_fail "-C -n: contents differ"
qemu_check_clean got-n.qcow2
[ "$(offloaded)" -ge 2 ] || check_fail "-C -n: $(offloaded) offloaded copies"

# A refused copy: the clusters it had are given back (no leak), the rest
# goes through memory, with the allocation qemu-img's real refusal gives.
for e in EXDEV EOPNOTSUPP ENOSYS; do
    rm -f got-f.qcow2
    QIMG_TEST_COPY_RANGE_FAIL=$e "$QIMG" convert -C -f raw -O qcow2 s.raw got-f.qcow2 ||
        check_fail "-C -O qcow2 with $e refused"
    "$QEMU_IMG" compare -q -f raw s.raw got-f.qcow2 || check_fail "-C -O qcow2 with $e: contents differ"
    qemu_check_clean got-f.qcow2
done
"$QEMU_IMG" convert -q -f raw -O qcow2 s.raw plain.qcow2
[ "$(map_of got-f.qcow2)" = "$(map_of plain.qcow2)" ] || check_fail "refused -C: allocation is not the plain conversion's"
if [ -d /dev/shm ] && [ "$(stat -f -c %T /dev/shm)" != "$(stat -f -c %T .)" ]; then
    shm=$(mktemp /dev/shm/qimg-offload.XXXXXX)
    cp s.raw "$shm"
    both x.qcow2 -C -f raw -O qcow2 "$shm"
    grep -q "copy_file_range(.*= -1 EXDEV" "$T/trace.log" || check_fail "-C across file systems: no refusal seen"
    "$QEMU_IMG" map --output=json ref-x.qcow2 > ref.map
    "$QEMU_IMG" map --output=json got-f.qcow2 > got.map
    cmp -s ref.map got.map || { check_fail "forced EXDEV differs from qemu-img's real one"; diff ref.map got.map >&2; }
    rm -f "$shm"
fi

# Offloading cannot be combined with compression, as in qemu-img.
rm -f e.qcow2
same_as_qemu convert -C -c -f raw -O qcow2 s.raw e.qcow2
finish
