#!/bin/bash
# Side-by-side timing of qimg and qemu-img (not a test).
#
#   bench/bench.sh [QIMG] [RUNS]
#
# Generates once, in $BENCH_DIR (default /var/tmp/qimg-bench): a 2 GiB raw
# image (in 64 MiB stripes: half random data, a quarter written zeros, a
# quarter holes), its qcow2 and compressed-qcow2 conversions, a 100 GiB
# sparse qcow2 with 10 000 data extents, and 256 MiB of compressible text
# with its compressed qcow2.  Then each case runs qemu-img and
# qimg alternately RUNS times (default 3) on the same input and prints the
# median and best wall time of each, the ratios qemu-img/qimg, and peak RSS.
# On a virtual machine, writing into freshly allocated page-cache pages is
# sometimes several times slower (pages the host has to fault in again),
# which hits both tools at random: use 7 or more runs, and read the best
# times as the cost without that noise.  Copies
# are also compared with qemu-img -W -m 16 and with a plain sequential
# read+write of the same bytes through the page cache.
set -u
QIMG=${1:-$(dirname "$0")/../build/src/cli/qimg}
RUNS=${2:-3}
QEMU_IMG=${QEMU_IMG:-qemu-img}
D=${BENCH_DIR:-/var/tmp/qimg-bench}
TIME=/usr/bin/time
[ -x "$TIME" ] || { echo "install GNU time (package 'time')" >&2; exit 1; }
QIMG=$(readlink -f "$QIMG")
mkdir -p "$D" && cd "$D" || exit 1

gen() {
    [ -e src.raw ] && return
    echo "generating inputs in $D ..." >&2
    rm -f src.raw
    truncate -s 2G src.raw
    local stripe=$((64 << 20)) i
    for ((i = 0; i < 32; i++)); do
        case $((i % 4)) in
        0|1) head -c $stripe /dev/urandom |
                 dd of=src.raw bs=1M seek=$((i * 64)) conv=notrunc status=none ;;
        2) dd if=/dev/zero of=src.raw bs=1M seek=$((i * 64)) count=64 \
               conv=notrunc status=none ;;
        3) ;;   # hole
        esac
    done
    "$QEMU_IMG" convert -f raw -O qcow2 src.raw src.qcow2
    "$QEMU_IMG" convert -f raw -O qcow2 -c src.raw src-c.qcow2
    cp src.raw src2.raw
    # 100 GiB with 10 000 4 KiB extents spread over it.
    rm -f sparse.raw
    truncate -s 100G sparse.raw
    python3 - <<'EOF'
import os
fd = os.open("sparse.raw", os.O_WRONLY)
step = (100 << 30) // 10000
blk = os.urandom(4096)
for i in range(10000):
    os.pwrite(fd, blk, i * step // 65536 * 65536)
os.close(fd)
EOF
    "$QEMU_IMG" convert -f raw -O qcow2 sparse.raw sparse.qcow2
    rm -f sparse.raw
}

# Compressible data (the random half of src.raw is stored uncompressed by
# both tools): 256 MiB of lines of pseudo-random words, and its compressed
# qcow2 made by qemu-img.
gen_text() {
    [ -e text.raw ] && return
    echo "generating compressible input in $D ..." >&2
    python3 - <<'EOF'
import random
random.seed(1)
words = [''.join(random.choice('abcdefghijklmnopqrstuvwxyz')
                 for _ in range(random.randint(2, 9))) for _ in range(5000)]
size = 256 << 20
with open('text.raw.tmp', 'wb') as f:
    done = 0
    while done < size:
        lines = [' '.join(random.choices(words, k=12)) for _ in range(4096)]
        b = ('\n'.join(lines) + '\n').encode()[:size - done]
        f.write(b)
        done += len(b)
EOF
    mv text.raw.tmp text.raw
    "$QEMU_IMG" convert -f raw -O qcow2 -c text.raw text-c.qcow2
}

# run TOOL ARGS...: prints "seconds maxrss_kib cpu_seconds"
run() {
    rm -f out.img
    sync -f . 2>/dev/null
    $TIME -f "%e %M %U %S" -o t.out "$@" >/dev/null 2>t.err || {
        echo "FAILED: $* ($(tail -1 t.err))" >&2; echo "nan 0 nan"; return; }
    awk '{printf "%s %s %.2f\n", $1, $2, $3 + $4}' t.out
}

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
best() { sort -g | head -1; }

# case NAME QEMU_ARGS -- QIMG_ARGS  (args after the tool name)
bench_case() {
    local name=$1; shift
    local qargs=() margs=()
    while [ "$1" != "--" ]; do qargs+=("$1"); shift; done; shift
    margs=("$@")
    local qt=() mt=() qc=() mc=() qm=0 mm=0 i r
    run "$QIMG" "${margs[@]}" >/dev/null   # warm the page cache
    for ((i = 0; i < RUNS; i++)); do
        r=($(run "$QEMU_IMG" "${qargs[@]}")); qt+=("${r[0]}"); qc+=("${r[2]}")
        [ "${r[1]}" -gt "$qm" ] && qm=${r[1]}
        r=($(run "$QIMG" "${margs[@]}")); mt+=("${r[0]}"); mc+=("${r[2]}")
        [ "${r[1]}" -gt "$mm" ] && mm=${r[1]}
    done
    local q m qb mb qcpu mcpu
    q=$(printf '%s\n' "${qt[@]}" | median)
    m=$(printf '%s\n' "${mt[@]}" | median)
    qb=$(printf '%s\n' "${qt[@]}" | best)
    mb=$(printf '%s\n' "${mt[@]}" | best)
    qcpu=$(printf '%s\n' "${qc[@]}" | median)
    mcpu=$(printf '%s\n' "${mc[@]}" | median)
    printf '%-31s wall %6.2fs/%6.2fs = %5.2fx  best %6.2fs/%6.2fs = %5.2fx  cpu %6.2fs/%6.2fs = %5.2fx  RSS %6d/%6d KiB\n' \
        "$name" "$q" "$m" "$(echo "$q / $m" | bc -l)" "$qb" "$mb" \
        "$(echo "$qb / $mb" | bc -l)" "$qcpu" "$mcpu" \
        "$(echo "$qcpu / ($mcpu + 0.005)" | bc -l)" "$qm" "$mm"
    rm -f out.img
}

gen
gen_text
echo "qimg: $QIMG   runs: $RUNS   data: $D   load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "columns: qemu-img/qimg (median wall time, best wall time, median user+sys CPU time, peak RSS); ratio = qemu-img / qimg"
both() { local n=$1; shift; bench_case "$n" "$@" -- "$@"; }
both "convert raw->qcow2"          convert -f raw -O qcow2 src.raw out.img
both "convert qcow2->raw"          convert -f qcow2 -O raw src.qcow2 out.img
both "convert qcow2->qcow2"        convert -f qcow2 -O qcow2 src.qcow2 out.img
both "convert raw->raw"            convert -f raw -O raw src.raw out.img
both "convert raw->qcow2 -c"       convert -f raw -O qcow2 -c src.raw out.img
both "convert qcow2(compressed)->raw" convert -f qcow2 -O raw src-c.qcow2 out.img
both "raw->qcow2 -c (text)"        convert -f raw -O qcow2 -c text.raw out.img
both "qcow2 -c (text)->raw"        convert -f qcow2 -O raw text-c.qcow2 out.img
both "compare raw raw (equal)"     compare -f raw -F raw src.raw src2.raw
both "compare raw qcow2 (equal)"   compare -f raw -F qcow2 src.raw src.qcow2
both "map 100G qcow2, 10k extents" map -f qcow2 --output=json sparse.qcow2

echo "-- against qemu-img -W -m 16 (qimg with default options)"
bench_case "convert raw->qcow2"   convert -W -m 16 -f raw -O qcow2 src.raw out.img -- convert -f raw -O qcow2 src.raw out.img
bench_case "convert qcow2->raw"   convert -W -m 16 -f qcow2 -O raw src.qcow2 out.img -- convert -f qcow2 -O raw src.qcow2 out.img
bench_case "convert qcow2->qcow2" convert -W -m 16 -f qcow2 -O qcow2 src.qcow2 out.img -- convert -f qcow2 -O qcow2 src.qcow2 out.img

echo "-- against a plain sequential copy of the same bytes (dd, page cache)"
dts=() mts=()
for ((i = 0; i < RUNS; i++)); do
    r=($(run dd if=src.raw of=out.img bs=2M status=none)); dts+=("${r[0]}")
    r=($(run "$QIMG" convert -f raw -O raw src.raw out.img)); mts+=("${r[0]}")
done
dt=$(printf '%s\n' "${dts[@]}" | best)
mt=$(printf '%s\n' "${mts[@]}" | best)
printf 'best of %d: dd of 2 GiB: %.2fs (%.0f MiB/s)   qimg raw->raw: %.2fs (%.0f MiB/s of image)\n' \
    "$RUNS" \
    "$dt" "$(echo "2048 / $dt" | bc -l)" "$mt" "$(echo "2048 / $mt" | bc -l)"
echo "compressed size: qemu-img $(stat -c %s src-c.qcow2)"
"$QIMG" convert -f raw -O qcow2 -c src.raw out.img && echo "compressed size: qimg     $(stat -c %s out.img)"
echo "compressed size (text): qemu-img $(stat -c %s text-c.qcow2)"
"$QIMG" convert -f raw -O qcow2 -c text.raw out.img && echo "compressed size (text): qimg     $(stat -c %s out.img)"
rm -f out.img t.out t.err
