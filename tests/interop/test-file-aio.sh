#!/bin/bash
# The file protocol's aio back ends (docs/IO.md): the -i/-n/-k and
# --image-opts aio choices give qemu-img's and qemu-io's errors and exit
# codes; each choice really does its I/O through that back end (strace
# counts the system calls, and io_uring requests come from several worker
# threads at once); data written and read through each back end, with and
# without O_DIRECT, is the same as with qemu-io and qemu-img; and when
# io_uring or native AIO cannot be set up (forced with QIMG_TEST_AIO_FAIL)
# the default falls back to pread/pwrite while an explicit choice fails as
# qemu-img does.
. "$(dirname "$0")/../lib.sh"
command -v strace >/dev/null || fail "strace is missing: run scripts/install-deps.sh"
# (LeakSanitizer cannot run under strace: the traced runs skip it.)

"$QEMU_IMG" create -q -f raw b.raw 4M
# A build without liburing (-Dio_uring=disabled) refuses aio=io_uring and
# defaults to pread/pwrite; the io_uring checks then check that instead.
URING=1
if "$QIMG" bench -c 1 -f raw -i io_uring b.raw 2>&1 | grep -q "not supported in this build"; then
    URING=0
    run_tool got "$QIMG" bench -c 1 -f raw -i io_uring b.raw
    expect_eq "io_uring in a build without it" \
        "qimg: Could not open 'b.raw': aio=io_uring was specified, but is not supported in this build." \
        "$(cat "$T/got.err")"
fi

norm() { sed -i "s/in [0-9]*\.[0-9]* seconds/in X seconds/" "$T/ref.out" "$T/got.out"; normalise_io "$T/ref.out"; normalise_io "$T/got.out"; }
cmp_tool() { # cmp_tool REF GOT ARGS...: same stdout, stderr, exit code
    local ref=$1 got=$2; shift 2
    run_tool ref "$ref" "$@"
    run_tool got "$got" "$@"
    norm
    sed -i -E 's/^(qemu-img|qimg|qemu-io|qimg-io): /PROG: /' "$T/ref.err" "$T/got.err"
    cmp -s "$T/ref.out" "$T/got.out" || { check_fail "stdout differs: $*"; diff "$T/ref.out" "$T/got.out" >&2; }
    cmp -s "$T/ref.err" "$T/got.err" || { check_fail "stderr differs: $*"; diff "$T/ref.err" "$T/got.err" >&2; }
    expect_eq "exit code of $*" "$(cat "$T/ref.rc")" "$(cat "$T/got.rc")"
}

# --- choices and their errors, as qemu-img bench and qemu-io ---
for a in "-i native" "-n" "-n -i threads" "-i io_uring -n" "-i threads -i native" \
         "-n -t none" "-i native -t directsync" "-i threads -t none" \
         "-i io_uring -t none" "-i io_uring -i threads" "-i bogus"; do
    [ $URING = 0 ] && [[ $a == *io_uring* ]] && continue
    # shellcheck disable=SC2086
    cmp_tool "$QEMU_IMG" "$QIMG" bench -c 20 $a -f raw b.raw
done
for o in driver=file,filename=b.raw,aio=native \
         driver=file,filename=b.raw,aio=native,cache.direct=on \
         driver=raw,file.filename=b.raw,file.aio=native,cache.direct=on \
         driver=raw,file.filename=b.raw,file.aio=native,file.cache.direct=on \
         driver=raw,file.filename=b.raw,file.aio=io_uring \
         driver=file,filename=b.raw,aio=bogus \
         driver=raw,file.filename=b.raw,cache.direct=xx; do
    [ $URING = 0 ] && [[ $o == *io_uring* ]] && continue
    cmp_tool "$QEMU_IMG" "$QIMG" bench -c 20 --image-opts "$o"
done
for a in "-i bogus" "-k" "-i native" "-k -n" "-i native -t none" "-i io_uring" \
         "-i threads -k -n" "--aio=io_uring" "--native-aio"; do
    [ $URING = 0 ] && [[ $a == *io_uring* ]] && continue
    # shellcheck disable=SC2086
    cmp_tool "$QEMU_IO" "$QIMG_IO" $a -f raw -c "read 0 4k" b.raw
done

# --- each choice uses its back end ---
# calls SYSCALL: how many times the traced run made it
trace() { ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 strace -f -qq -o "$T/trace.log" -e trace=io_uring_enter,io_submit,pread64,pwrite64 "$@" >/dev/null 2>"$T/trace.err" ||
              check_fail "traced run failed: $* $(cat "$T/trace.err")"; }
calls() { grep -c "$1(" "$T/trace.log"; }
threads_of() { grep "$1(" "$T/trace.log" | awk '{print $1}' | sort -u | wc -l; }

if [ $URING = 1 ]; then
    trace "$QIMG" bench -c 300 -d 4 -f raw -i io_uring b.raw
    [ "$(calls io_uring_enter)" -ge 300 ] || check_fail "bench -i io_uring: $(calls io_uring_enter) io_uring_enter calls"
    [ "$(calls pread64)" -lt 50 ] || check_fail "bench -i io_uring: $(calls pread64) preads"
    [ "$(threads_of io_uring_enter)" -ge 2 ] || check_fail "bench -d 4: io_uring used from one thread only"
    trace "$QIMG" bench -c 300 -f raw b.raw
    [ "$(calls io_uring_enter)" -ge 300 ] || check_fail "bench: io_uring is not the default"
else
    trace "$QIMG" bench -c 300 -f raw b.raw
    [ "$(calls pread64)" -ge 300 ] || check_fail "bench without io_uring: $(calls pread64) preads"
fi
trace "$QIMG" bench -c 300 -w -f raw -n -t none b.raw
[ "$(calls io_submit)" -ge 300 ] || check_fail "bench -n: $(calls io_submit) io_submit calls"
[ "$(calls io_uring_enter)" -eq 0 ] || check_fail "bench -n used io_uring"
trace "$QIMG" bench -c 300 -w -f raw -i threads b.raw
[ "$(calls pwrite64)" -ge 300 ] || check_fail "bench -i threads: $(calls pwrite64) pwrites"
[ "$(calls io_uring_enter)" -eq 0 ] && [ "$(calls io_submit)" -eq 0 ] ||
    check_fail "bench -i threads used an aio back end"
if [ $URING = 1 ]; then
    trace "$QIMG_IO" -i io_uring -f raw -c "write -P 7 0 1M" b.raw
    [ "$(calls io_uring_enter)" -ge 1 ] && [ "$(calls pwrite64)" -eq 0 ] || check_fail "qimg-io -i io_uring did not use io_uring"

    # The copy engine's workers submit their own requests concurrently.
    head -c 16M /dev/urandom > big.raw
    trace "$QIMG" convert -f raw -O raw big.raw big-out.raw
    [ "$(threads_of io_uring_enter)" -ge 2 ] || check_fail "convert: io_uring used from $(threads_of io_uring_enter) threads"
    cmp -s big.raw big-out.raw || check_fail "convert through io_uring changed the data"
    rm -f big.raw big-out.raw
fi

# --- the same bytes through every back end ---
"$QEMU_IMG" create -q -f raw base.raw 4M
"$QEMU_IO" -f raw -c "write -P 0x11 0 1M" -c "write -P 0x22 2M 512k" base.raw >/dev/null
for mode in "-i threads" "-i io_uring" "-i io_uring -t none" "-k -t none" "-i native -n" "-t none" ""; do
    [ $URING = 0 ] && [[ $mode == *io_uring* ]] && continue
    # shellcheck disable=SC2086
    io_same_as_qemu base.raw $mode -f raw \
        -c "write -P 0x5a 4096 1M" -c "write -P 0xa5 1000 5000" \
        -c "write -P 0x3c 4190000 4304" -c "read -P 0x5a 8192 4096" \
        -c "read -P 0xa5 1000 5000" -c "read -v 990 32" -c "read -P 0 3M 64k" @IMG@
done

# convert: source and target through each back end, plain and O_DIRECT;
# the result is qemu-img's, byte for byte and in its allocation.
"$QEMU_IO" -f raw -c "write -P 0 1M 64k" -c "write -P 0x33 3M 4k" base.raw >/dev/null
"$QEMU_IMG" convert -f raw -O raw base.raw ref.raw
"$QEMU_IMG" map --output=json -f raw ref.raw > ref.map
for aio in threads io_uring native; do
    [ $URING = 0 ] && [ $aio = io_uring ] && continue
    for direct in off on; do
        [ $aio = native ] && [ $direct = off ] && continue
        rm -f out.raw
        "$QEMU_IMG" create -q -f raw out.raw 4M
        t=""; [ $direct = on ] && t="-t none"
        # shellcheck disable=SC2086
        "$QIMG" convert $t -n \
            --image-opts "driver=raw,file.filename=base.raw,file.aio=$aio,file.cache.direct=$direct" \
            --target-image-opts "driver=raw,file.filename=out.raw,file.aio=$aio,file.cache.direct=$direct" \
            2>"$T/conv.err" || check_fail "convert aio=$aio direct=$direct: $(cat "$T/conv.err")"
        cmp -s ref.raw out.raw || check_fail "convert aio=$aio direct=$direct: data differs"
        "$QEMU_IMG" map --output=json -f raw out.raw | cmp -s - ref.map ||
            check_fail "convert aio=$aio direct=$direct: allocation differs from qemu-img's"
    done
done
for t in "" "-t none"; do
    rm -f q-ref.qcow2 q-got.qcow2
    # shellcheck disable=SC2086
    "$QEMU_IMG" convert $t -f raw -O qcow2 base.raw q-ref.qcow2
    # shellcheck disable=SC2086
    "$QIMG" convert $t -f raw -O qcow2 base.raw q-got.qcow2 || check_fail "convert -O qcow2 $t"
    images_equal q-ref.qcow2 q-got.qcow2
    qemu_check_clean q-got.qcow2
done

# --- fallback when the ring or context cannot be set up ---
export QIMG_TEST_AIO_FAIL=io_uring,native
trace "$QIMG" bench -c 300 -f raw b.raw
[ "$(calls io_uring_enter)" -eq 0 ] && [ "$(calls pread64)" -ge 300 ] ||
    check_fail "no fallback to pread: $(calls io_uring_enter) io_uring_enter, $(calls pread64) pread64"
rm -f out.raw
"$QIMG" convert -f raw -O raw base.raw out.raw || check_fail "convert with the fallback"
cmp -s ref.raw out.raw || check_fail "convert with the fallback: data differs"
if [ $URING = 1 ]; then
    run_tool got "$QIMG" bench -c 10 -f raw -i io_uring b.raw
    expect_eq "explicit io_uring without a ring" \
        "qimg: Could not open 'b.raw': Unable to use io_uring: failed to init linux io_uring ring: Function not implemented" \
        "$(cat "$T/got.err")"
    expect_eq "its exit code" 1 "$(cat "$T/got.rc")"
    run_tool got "$QIMG_IO" -i io_uring -f raw -c "read 0 4k" b.raw
    expect_eq "qimg-io explicit io_uring without a ring" \
        "qimg-io: can't open device b.raw: Unable to use io_uring: failed to init linux io_uring ring: Function not implemented" \
        "$(cat "$T/got.err")"
fi
run_tool got "$QIMG" bench -c 10 -f raw -n -t none b.raw
expect_eq "explicit native without a context" \
    "qimg: Could not open 'b.raw': Unable to use native AIO: failed to create linux AIO context: Function not implemented" \
    "$(cat "$T/got.err")"
unset QIMG_TEST_AIO_FAIL
finish
