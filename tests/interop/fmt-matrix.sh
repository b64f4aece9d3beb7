# Shared by the test-formats-matrix-*.sh scripts (sourced after lib.sh):
# the source image; case_run FMT OPTS, which creates an image of FMT with
# OPTS with both tools and compares them, converts into it from raw and
# qcow2 and checks the result with qemu-img, libvmdk and libvhdi; and
# qemu_made FMT OPTS, an image made and filled by qemu-img/qemu-io.
# Source: random data, a zero run, a hole, data again at the end.
head -c 1M /dev/urandom > src.raw
dd if=/dev/zero of=src.raw bs=64k seek=4 count=4 conv=notrunc status=none
truncate -s 6M src.raw
head -c 300k /dev/urandom | dd of=src.raw bs=1k seek=5000 conv=notrunc status=none
SIZE=6291456
$QEMU_IMG convert -f raw -O qcow2 src.raw src.qcow2

# norm_info: info with vmdk CIDs (printed in decimal, any
# number of digits) and disk usage (filesystem dependent; streamOptimized
# files also differ by the footer and end-of-stream marker qimg adds, see
# docs/formats-vmdk-vpc-vhdx.md) blanked.
norm_info() {
    sed -E -e 's/^( *"?cid"?): [0-9]+/\1: N/' |
        grep -v 'disk size\|actual-size'
}

# vmdk_files_same DIR1 DIR2: the vmdk files two tools created are equal
# but for the CID line (the embedded descriptor's zero padding then
# differs in length, so NULs are dropped).
vmdk_files_same() {
    local f
    for f in "$1"/*; do
        cmp -s <(sed 's/^CID=.*//' "$f" | tr -d '\0') \
               <(sed 's/^CID=.*//' "$2/${f#"$1"/}" | tr -d '\0') ||
            check_fail "$3: $f differs from qemu-img's"
    done
    expect_eq "$3: files" "$(cd "$1" && ls)" "$(cd "$2" && ls)"
}

# reader_ok FMT IMG WHAT: libvmdk / libvhdi read the image: its media size
# and type as expected, and (when FUSE is usable) its content.
FUSE_OK=0
[ -w /dev/fuse ] && mkdir -p mnt && FUSE_OK=1
reader_ok() {
    local fmt=$1 img=$2 what=$3 out want
    case $fmt in
    vmdk)
        out=$(vmdkinfo "$img" 2>&1) || { check_fail "vmdkinfo $what: $out"; return; }
        grep -q "Media size:.*($SIZE bytes)" <<<"$out" || check_fail "vmdkinfo size $what: $out"
        want="Monolithic sparse"
        case $what in
        *monolithicFlat*) want="Monolithic flat" ;;
        *twoGbMaxExtentSparse*) want="2GB extent sparse" ;;
        *twoGbMaxExtentFlat*) want="2GB extent flat" ;;
        *streamOptimized*) want="Stream optimized" ;;
        esac
        grep -q "Disk type:[[:space:]]*$want\$" <<<"$out" || check_fail "vmdkinfo type $what: $out"
        if [ $FUSE_OK = 1 ] && vmdkmount "$img" mnt >/dev/null 2>&1; then
            cmp -s mnt/vmdk1 src.raw || check_fail "vmdkmount content $what"
            umount mnt
        fi ;;
    vpc|vhd|vhdx)
        out=$(vhdiinfo "$img" 2>&1) || { check_fail "vhdiinfo $what: $out"; return; }
        want=Dynamic; case $what in *fixed*) want=Fixed ;; esac
        grep -q "Disk type[[:space:]]*: $want\$" <<<"$out" || check_fail "vhdiinfo type $what: $out"
        local vsize
        local qf=$fmt; [ $fmt = vhd ] && qf=vpc
        vsize=$($QEMU_IMG info -f $qf --output=json "$img" |
                sed -n 's/^    "virtual-size": \([0-9]*\).*/\1/p')
        grep -q "Media size[[:space:]]*:.*($vsize bytes)" <<<"$out" ||
            check_fail "vhdiinfo size $what (want $vsize): $out"
        if [ $FUSE_OK = 1 ] && vhdimount "$img" mnt >/dev/null 2>&1; then
            cmp -s -n $SIZE mnt/vhdi1 src.raw || check_fail "vhdimount content $what"
            umount mnt
        fi ;;
    esac
}

# case_run FMT OPTS: the whole sequence for one format and option set.
case_run() {
    local fmt=$1 o=$2 what="$1 [$2]" ext=$1 qfmt=$1
    [ $fmt = vhd ] && qfmt=vpc
    local oo=(); [ -n "$o" ] && oo=(-o "$o")
    rm -rf q m a.* b.* c.* back.raw
    # create: both tools, same output and same info
    mkdir q m
    (cd q && run_tool cq "$QEMU_IMG" create -f $qfmt "${oo[@]}" x.$ext $SIZE)
    (cd m && run_tool cm "$QIMG" create -f $fmt "${oo[@]}" x.$ext $SIZE)
    sed -i "s/fmt=vhd /fmt=vpc /" cm.out
    expect_eq "create output $what" "$(cat cq.out cq.err cq.rc)" "$(cat cm.out cm.err cm.rc)"
    local f
    for f in "" --output=json; do
        expect_eq "info $f of created $what" \
            "$(cd q && $QEMU_IMG info -f $qfmt $f x.$ext 2>&1 | norm_info)" \
            "$(cd m && $QEMU_IMG info -f $qfmt $f x.$ext 2>&1 | norm_info)"
    done
    case $fmt in
    vmdk) case $o in *streamOptimized*) ;; *) vmdk_files_same q m "$what" ;; esac ;;
    vdi|qed|qcow) ;;
    # qimg's fixed vhdx blocks are present, so whole blocks are in the file
    # (qemu-img marks them ZERO and stops the file at the virtual size)
    vhdx) case $o in *fixed*) ;; *) expect_eq "created file size $what" \
            "$(stat -c %s q/x.$ext)" "$(stat -c %s m/x.$ext)" ;; esac ;;
    *) expect_eq "created file size $what" "$(stat -c %s q/x.$ext)" "$(stat -c %s m/x.$ext)" ;;
    esac
    # from raw and from qcow2
    local src
    for src in raw qcow2; do
        rm -f a.* back.raw
        $QIMG convert -f $src -O $fmt "${oo[@]}" src.$src a.$ext 2>conv.err ||
            { check_fail "convert $src -> $what: $(cat conv.err)"; continue; }
        case $qfmt in
        vpc|qcow) run_tool ck "$QEMU_IMG" check -f $qfmt a.$ext
                  expect_eq "check refusal $what" 63 "$(cat ck.rc)" ;;
        *) qemu_check_clean a.$ext $qfmt ;;
        esac
        images_equal src.raw a.$ext raw $qfmt
        $QIMG convert -f $fmt -O raw a.$ext back.raw || check_fail "read back $what"
        cmp -s -n $SIZE back.raw src.raw || check_fail "read back $what from $src"
    done
    sync a.$ext m/x.$ext 2>/dev/null
    same_as_qemu info -f $qfmt a.$ext
    same_as_qemu info -f $qfmt --output=json a.$ext
    same_as_qemu info -f $qfmt m/x.$ext
    same_as_qemu map -f $qfmt --output=json a.$ext
    # on to qcow2
    $QIMG convert -f $fmt -O qcow2 a.$ext b.qcow2 || check_fail "$what -> qcow2"
    qemu_check_clean b.qcow2 qcow2
    images_equal src.raw b.qcow2 raw qcow2
    reader_ok $fmt a.$ext "$what"
    rm -rf q m a.* b.* back.raw
}

# (ascending and non-overlapping: streamOptimized takes no rewrites)
WRITES=(-c 'write -P 0xab 0 100k' -c 'write -P 0x12 2M 1M' -c 'write -z 3M 64k'
        -c 'write -P 0x44 5M 512k' -c 'write -P 0x45 6143k 1k')

# qemu_made FMT OPTS: q.FMT made by qemu-img and filled by qemu-io, and
# ref.raw, qemu-img's reading of it.
qemu_made() {
    rm -f q* ref.raw
    $QEMU_IMG create -q -f $1 ${2:+-o $2} q.$1 $SIZE || fail "qemu-img create $1 [$2]"
    local w=("${WRITES[@]}")
    # qemu writes streamOptimized images in whole grains only
    [[ $2 = *streamOptimized* ]] && w=(-c 'write -P 0xab 0 128k' -c 'write -P 0x12 2M 1M'
        -c 'write -z 3M 64k' -c 'write -P 0x44 5M 512k' -c 'write -P 0x45 6080k 64k')
    $QEMU_IO -f $1 "${w[@]}" q.$1 >/dev/null || fail "qemu-io $1 [$2]"
    $QEMU_IMG convert -f $1 -O raw q.$1 ref.raw
}
