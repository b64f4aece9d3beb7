#!/bin/bash
# qcow2 L2 cache: tables are cached in slices of l2-cache-entry-size bytes
# (a whole table by default), and l2-cache-size / cache-size count slices.
# The same command sequence runs under qemu-io and qimg-io with strace on
# the image: the reads of L2 tables must have the same sizes and count, a
# read-only sequence the same number of reads in all, and the images the
# two write must read the same and check clean.
. "$(dirname "$0")/../lib.sh"
command -v strace >/dev/null || fail "strace is missing: run scripts/install-deps.sh"
command -v python3 >/dev/null || fail "python3 is missing"

# summarise TRACE IMG: "total=N l2=SIZExCOUNT,... L2READS SIZE,..." of the
# traced preads
# (the total leaves out the header cluster, which qemu reads in pieces)
cat >"$T/sum.py" <<'PY'
import re, struct, sys
trace, img = sys.argv[1], sys.argv[2]
with open(img, 'rb') as f:
    h = f.read(104)
    cs = 1 << struct.unpack('>I', h[20:24])[0]
    l1n, l1off = struct.unpack('>IQ', h[36:48])
    f.seek(l1off)
    l1 = struct.unpack('>%dQ' % l1n, f.read(8 * l1n))
l2 = {e & 0x00fffffffffffe00 for e in l1} - {0}
total, hist = 0, {}
for line in open(trace):
    if 'pread64' not in line and 'preadv' not in line:
        continue
    m = re.search(r', (\d+), (\d+)\) += ', line)
    if not m:
        continue                    # first half of an interrupted call
    if 'preadv' in line:
        print('preadv-not-parsed'); sys.exit(0)
    size, off = int(m.group(1)), int(m.group(2))
    if off >= cs:                   # the header cluster is parsed otherwise
        total += 1
    if any(t <= off < t + cs for t in l2):
        hist[size] = hist.get(size, 0) + 1
print('total=%d l2=%s %d %s' % (total, ','.join('%dx%d' % (k, hist[k]) for k in sorted(hist)),
                               sum(hist.values()), ','.join(map(str, sorted(hist)))))
PY

# traced NAME IMG OPTS TOOL... -- CMDS: run TOOL under strace on IMG
traced() {
    local name=$1 img=$2 opts=$3; shift 3
    local tool=()
    while [ "$1" != -- ]; do tool+=("$1"); shift; done
    shift
    ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
        strace -f -qq -s 0 -P "$img" -o "$T/$name.trace" \
        -e trace=pread64,preadv,pwrite64,pwritev \
        "${tool[@]}" --image-opts "$@" "driver=qcow2,file.filename=$img$opts" \
        >"$T/$name.out" 2>"$T/$name.err" || check_fail "$name failed: $(cat "$T/$name.err")"
    normalise_io "$T/$name.out"
    python3 "$T/sum.py" "$T/$name.trace" "$img"
}

RCMDS=(-c "read -P 1 0 4k" -c "read -P 2 2M 4k" -c "read -P 3 4M 4k"
       -c "read -P 4 40M 64k" -c "read -P 0 30M 4k" -c "read 0 8M"
       -c "read -P 1 0 4k" -c "read -P 2 2M 4k" -c "read -P 3 4M 4k"
       -c "read -P 4 40M 64k")
WCMDS=(-c "write -P 5 0 4k" -c "write -P 6 1M 4k" -c "write -P 7 10M 64k"
       -c "write -P 8 60M 8k" -c "write -z 4M 64k" -c "write -P 9 2M 4k"
       -c "discard 40M 64k" -c "write -z -u 10M 64k"
       -c "read -P 6 1M 4k" -c "read -P 0 10M 64k" -c "read -P 9 2M 4k")

for spec in 4k: 64k: 2M: 64k:extended_l2=on 512:; do
    cl=${spec%%:*} extra=${spec#*:}
    img=base-$cl${extra:+-ext}.qcow2
    "$QEMU_IMG" create -q -f qcow2 -o cluster_size=$cl${extra:+,$extra} "$img" 64M ||
        fail "create $img"
    "$QEMU_IO" -c "write -P 1 0 4k" -c "write -P 2 2M 4k" -c "write -P 3 4M 4k" \
        -c "write -P 4 40M 64k" "$img" >/dev/null || fail "fill $img"
    for opts in "" ",l2-cache-size=8k" ",l2-cache-entry-size=512" \
                ",l2-cache-entry-size=1k,l2-cache-size=2k" \
                ",cache-size=1M,l2-cache-entry-size=4k"; do
        case $cl:$opts in 512:*entry-size=[14]k*) continue ;; esac
        what="$img$opts"
        ref=$(traced rref "$img" "$opts" "$QEMU_IO" -r -- "${RCMDS[@]}")
        got=$(traced rgot "$img" "$opts" "$QIMG_IO" -i threads -r -- "${RCMDS[@]}")
        expect_eq "reads of $what" "$ref" "$got"
        cmp -s "$T/rref.out" "$T/rgot.out" || check_fail "read output differs: $what"
        cp "$img" wref.qcow2; cp "$img" wgot.qcow2
        ref=$(traced wref wref.qcow2 "$opts" "$QEMU_IO" -- "${WCMDS[@]}")
        got=$(traced wgot wgot.qcow2 "$opts" "$QIMG_IO" -i threads -- "${WCMDS[@]}")
        [ -n "$extra" ] || {
            "$QEMU_IO" --image-opts -c "write -c -P 10 16M $cl" \
                "driver=qcow2,file.filename=wref.qcow2$opts" >/dev/null
            "$QIMG_IO" --image-opts -c "write -c -P 10 16M $cl" \
                "driver=qcow2,file.filename=wgot.qcow2$opts" >/dev/null ||
                check_fail "compressed write: $what"
        }
        # Same slice size; qemu may read more: it writes a new table slice
        # by slice through its cache and, when that holds fewer slices
        # than a table, reads the first one back.
        read -r _ _ rn rsz <<<"$ref"
        read -r _ _ gn gsz <<<"$got"
        expect_eq "L2 read sizes while writing $what" "$rsz" "$gsz"
        [ "$gn" -le "$rn" ] && [ "$gn" -gt 0 ] ||
            check_fail "L2 reads while writing $what: qemu $ref, qimg $got"
        cmp -s "$T/wref.out" "$T/wgot.out" || check_fail "write output differs: $what"
        images_equal wref.qcow2 wgot.qcow2
        qemu_check_clean wgot.qcow2
        # After a snapshot, tables are shared: a write copies its table.
        "$QEMU_IMG" snapshot -c s1 wref.qcow2 && "$QEMU_IMG" snapshot -c s1 wgot.qcow2 ||
            fail "snapshot"
        traced sref wref.qcow2 "$opts" "$QEMU_IO" -- "${WCMDS[@]}" >/dev/null
        traced sgot wgot.qcow2 "$opts" "$QIMG_IO" -i threads -- "${WCMDS[@]}" >/dev/null
        images_equal wref.qcow2 wgot.qcow2
        qemu_check_clean wgot.qcow2
        "$QEMU_IMG" snapshot -a s1 wgot.qcow2 || fail "snapshot -a"
        "$QEMU_IMG" snapshot -a s1 wref.qcow2 || fail "snapshot -a"
        images_equal wref.qcow2 wgot.qcow2
    done
done
finish
