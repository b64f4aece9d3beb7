#!/bin/bash
# The aio choice (-i/-n of bench, -i/-k of qimg-io) and the cache mode
# (-t/-T) apply to every file node of the opened image, backing chain
# included (and a vmdk's extents, a qcow2 data file), with --image-opts
# as with plain names (docs/IO.md): the same
# errors and exit codes as qemu-img and qemu-io (aio=native without
# cache.direct=on, on the image's own file or on its backing file's), a
# node's own aio option still wins, strace shows the backing file's
# requests going through the chosen back end, and -T none opens the
# backing file with O_DIRECT for convert and compare as qemu-img does.
. "$(dirname "$0")/../lib.sh"
command -v strace >/dev/null || fail "strace is missing: run scripts/install-deps.sh"

URING=1
"$QIMG" bench -c 1 -f raw -i io_uring /dev/null 2>&1 | grep -q "not supported in this build" && URING=0

"$QEMU_IMG" create -q -f raw x.raw 1M
"$QEMU_IMG" create -q -f qcow2 base.q 1M
"$QEMU_IO" -c "write -P 0x41 0 512k" base.q >/dev/null
"$QEMU_IMG" create -q -f qcow2 -b base.q -F qcow2 top.q
"$QEMU_IO" -c "write -P 0x42 512k 64k" top.q >/dev/null

cmp_tool() { # cmp_tool REF GOT ARGS...: same stdout, stderr, exit code
    local ref=$1 got=$2; shift 2
    run_tool ref "$ref" "$@"
    run_tool got "$got" "$@"
    sed -i "s/in [0-9]*\.[0-9]* seconds/in X seconds/" "$T/ref.out" "$T/got.out"
    normalise_io "$T/ref.out"; normalise_io "$T/got.out"
    sed -i -E 's/^(qemu-img|qimg|qemu-io|qimg-io): /PROG: /' "$T/ref.err" "$T/got.err"
    cmp -s "$T/ref.out" "$T/got.out" || { check_fail "stdout differs: $*"; diff "$T/ref.out" "$T/got.out" >&2; }
    cmp -s "$T/ref.err" "$T/got.err" || { check_fail "stderr differs: $*"; diff "$T/ref.err" "$T/got.err" >&2; }
    expect_eq "exit code of $*" "$(cat "$T/ref.rc")" "$(cat "$T/got.rc")"
}

# --- errors and successes, as qemu-img bench and qemu-io ---
for a in "-i native" "-n" "-n -t none" "-i native -t directsync" "-i io_uring" \
         "-i threads -n -t none" "-t none" "-n -t writeback"; do
    [ $URING = 0 ] && [[ $a == *io_uring* ]] && continue
    for o in driver=file,filename=x.raw \
             driver=raw,file.filename=x.raw \
             driver=qcow2,file.filename=top.q \
             driver=qcow2,file.filename=top.q,file.cache.direct=on \
             driver=qcow2,file.filename=top.q,cache.direct=on \
             driver=qcow2,file.filename=top.q,file.aio=threads \
             driver=qcow2,file.filename=top.q,backing.file.aio=threads \
             driver=qcow2,file.filename=top.q,backing.cache.direct=off; do
        # shellcheck disable=SC2086
        cmp_tool "$QEMU_IMG" "$QIMG" bench -c 20 --image-opts $a "$o"
    done
    # shellcheck disable=SC2086
    cmp_tool "$QEMU_IMG" "$QIMG" bench -c 20 $a top.q
done
for a in "-k" "-i native" "-k -n" "-i native -t none" "-k -t directsync" "-i io_uring" "-n"; do
    [ $URING = 0 ] && [[ $a == *io_uring* ]] && continue
    for o in driver=qcow2,file.filename=top.q \
             driver=qcow2,file.filename=top.q,file.cache.direct=on \
             driver=qcow2,file.filename=top.q,file.aio=threads; do
        # shellcheck disable=SC2086
        cmp_tool "$QEMU_IO" "$QIMG_IO" --image-opts $a -c "read -P 0x41 0 64k" \
            -c "read -P 0x42 512k 64k" "$o"
    done
    # shellcheck disable=SC2086
    cmp_tool "$QEMU_IO" "$QIMG_IO" $a -c "read -P 0x41 0 64k" top.q
done

# --- the backing file's requests go through the chosen back end ---
# The top image's own file is told to use pread/pwrite; reads of ranges
# only the backing file holds must still use its inherited back end.
trace() { ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 strace -f -qq -o "$T/trace.log" -e trace=io_uring_enter,io_submit,pread64,openat "$@" >/dev/null 2>"$T/trace.err" ||
              check_fail "traced run failed: $* $(cat "$T/trace.err")"; }
calls() { grep -c "$1(" "$T/trace.log"; }

trace "$QIMG" bench -c 120 -d 1 -s 4k --image-opts -n -t none \
    driver=qcow2,file.filename=top.q,file.aio=threads
[ "$(calls io_submit)" -ge 120 ] || check_fail "bench -n --image-opts: the backing file made $(calls io_submit) io_submit calls"
[ "$(calls io_uring_enter)" -eq 0 ] || check_fail "bench -n --image-opts used io_uring"
grep -q '"base.q", O_RDONLY|O_DIRECT' "$T/trace.log" || check_fail "bench -t none: backing file opened without O_DIRECT"
trace "$QIMG" bench -c 120 -d 1 -s 4k --image-opts -i threads driver=qcow2,file.filename=top.q
[ "$(calls io_submit)" -eq 0 ] && [ "$(calls io_uring_enter)" -eq 0 ] ||
    check_fail "bench -i threads --image-opts used an aio back end"
[ "$(calls pread64)" -ge 120 ] || check_fail "bench -i threads --image-opts: $(calls pread64) preads"
trace "$QIMG_IO" --image-opts -k -n -c "read -P 0x41 0 512k" \
    driver=qcow2,file.filename=top.q,file.aio=threads
[ "$(calls io_submit)" -ge 1 ] || check_fail "qimg-io -k --image-opts: the backing file did not use native AIO"
if [ $URING = 1 ]; then
    trace "$QIMG_IO" --image-opts -i io_uring -c "read -P 0x41 0 512k" \
        driver=qcow2,file.filename=top.q,file.aio=threads
    [ "$(calls io_uring_enter)" -ge 1 ] || check_fail "qimg-io -i io_uring --image-opts: the backing file did not use io_uring"
    [ "$(calls io_submit)" -eq 0 ] || check_fail "qimg-io -i io_uring used native AIO"
fi

# --- -T none reaches the backing file, as in qemu-img ---
trace "$QIMG" convert -T none -O raw top.q out.raw
grep -q '"top.q", O_RDONLY|O_DIRECT' "$T/trace.log" || check_fail "convert -T none: image opened without O_DIRECT"
grep -q '"base.q", O_RDONLY|O_DIRECT' "$T/trace.log" || check_fail "convert -T none: backing file opened without O_DIRECT"
images_equal top.q out.raw qcow2 raw
trace "$QIMG" convert -O raw top.q out.raw
grep -q 'O_DIRECT' "$T/trace.log" && check_fail "convert without -T none used O_DIRECT"
trace "$QIMG" compare -T none top.q out.raw
grep -q '"base.q", O_RDONLY|O_DIRECT' "$T/trace.log" || check_fail "compare -T none: backing file opened without O_DIRECT"
grep -q '"out.raw", O_RDONLY|O_DIRECT' "$T/trace.log" || check_fail "compare -T none: second image opened without O_DIRECT"

# --- a vmdk's extent and a qcow2 data file inherit them too ---
"$QEMU_IMG" create -q -f vmdk -o subformat=monolithicFlat flat.vmdk 1M
"$QEMU_IO" -f vmdk -c "write -P 0x43 0 512k" flat.vmdk >/dev/null
"$QEMU_IMG" create -q -f qcow2 -o data_file=dq.data dq.qcow2 1M
"$QEMU_IO" -c "write -P 0x44 0 512k" dq.qcow2 >/dev/null
for o in driver=vmdk,file.filename=flat.vmdk driver=qcow2,file.filename=dq.qcow2; do
    for a in "-n -t none" "-n"; do
        # shellcheck disable=SC2086
        cmp_tool "$QEMU_IMG" "$QIMG" bench -c 20 --image-opts $a "$o,file.cache.direct=on"
    done
    trace "$QIMG" bench -c 100 -d 1 -s 4k --image-opts -n -t none "$o,file.aio=threads"
    [ "$(calls io_submit)" -ge 100 ] || check_fail "bench -n $o: the image's data made $(calls io_submit) io_submit calls"
done
# (a missing extent: the file's own message, as in qemu-img)
sed 's/"flat-flat.vmdk"/"gone-flat.vmdk"/' flat.vmdk > gone.vmdk
same_as_qemu info gone.vmdk
trace "$QIMG" convert -T none -O raw flat.vmdk out.raw
grep -q '"flat-flat.vmdk", O_RDONLY|O_DIRECT' "$T/trace.log" || check_fail "convert -T none: vmdk extent opened without O_DIRECT"
images_equal flat.vmdk out.raw vmdk raw
trace "$QIMG" convert -T none -O raw dq.qcow2 out.raw
grep -q '"dq.data", O_RDONLY|O_DIRECT' "$T/trace.log" || check_fail "convert -T none: data file opened without O_DIRECT"
images_equal dq.qcow2 out.raw qcow2 raw
finish
