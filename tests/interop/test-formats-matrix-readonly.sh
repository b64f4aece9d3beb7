#!/bin/bash
# Read-only formats, and the create options of the writable ones:
# bochs, cloop and dmg images built from their published layouts
# (mkimg.py): info (human and JSON), map, check and measure (-O qcow2 and
# raw) print what qemu-img prints; converted to qcow2 and raw they hold the
# source's bytes; resizing is refused as by qemu-img.  (dmg: Debian's
# qemu-img lacks its bzip2 module and warns about it on stderr, so stdout
# and exit codes are compared.)  Then create's option handling (size as an
# option, invalid values) for every writable format, as qemu-img.
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib.sh"
MKIMG="python3 $HERE/mkimg.py"

head -c 700k /dev/urandom > src.raw
dd if=/dev/zero of=src.raw bs=4k seek=20 count=40 conv=notrunc status=none
truncate -s 1M src.raw
for f in bochs cloop dmg-rsrc dmg-xml; do
    fmt=${f%-*}
    img=img-$f.$fmt
    $MKIMG $f src.raw $img || fail "mkimg $f"
    for o in "" --output=json; do
        for cmd in "info $o" "map $o" "check $o" "measure -O qcow2 $o" "measure -O raw $o"; do
            if [ $fmt = dmg ]; then
                run_tool r "$QEMU_IMG" $cmd -f $fmt $img
                run_tool g "$QIMG" $cmd -f $fmt $img
                expect_eq "$cmd $img" "$(cat r.out r.rc)" "$(cat g.out g.rc)"
            else
                same_as_qemu $cmd -f $fmt $img
            fi
        done
    done
    [ $fmt = dmg ] || same_as_qemu resize -f $fmt $img 2M
    rm -f c.qcow2 c.raw
    $QIMG convert -f $fmt -O qcow2 $img c.qcow2 || check_fail "$f -> qcow2"
    qemu_check_clean c.qcow2 qcow2
    images_equal src.raw c.qcow2 raw qcow2
    $QIMG convert -f $fmt -O raw $img c.raw || check_fail "$f -> raw"
    cmp -s src.raw c.raw || check_fail "$f -> raw bytes"
done

# create: size given as an option, and invalid option values.
rm -f c.*
CR=
same_as_qemu_setup() { rm -f "$CR"; }
# (each: format, options or -, size or -)
norm_json() { grep -v '"actual-size"' | sed -E 's/"cid": [0-9]+/"cid": N/'; }
while read -r fmt opts size; do
    CR=c.$fmt
    oo=(); [ "$opts" = - ] || oo=(-o "$opts")
    ss=(); [ "$size" = - ] || ss=("$size")
    same_as_qemu create -f $fmt "${oo[@]}" c.$fmt "${ss[@]}"
    # what qimg made opens in qemu-img with the info of qemu-img's image
    if [ "$(cat got.rc)" = 0 ]; then
        rm -rf q; mkdir q
        (cd q && $QEMU_IMG create -q -f $fmt "${oo[@]}" c.$fmt "${ss[@]}")
        expect_eq "info of [$fmt $opts $size]" \
            "$(cd q && $QEMU_IMG info --output=json c.$fmt 2>&1 | norm_json)" \
            "$($QEMU_IMG info --output=json c.$fmt 2>&1 | norm_json)"
        rm -rf q c.*
    fi
done <<'EOF'
vmdk size=3M -
vmdk subformat=foo 1M
vmdk backing_fmt=raw 1M
vmdk hwversion=7,compat6=on 1M
vmdk adapter_type=ide 3T
vmdk adapter_type=lsilogic 3T
vmdk zeroed_grain=maybe 1M
vmdk subformat=streamOptimized,size=1M -
vpc size=3M -
vpc subformat=dynamic 1M
vpc subformat=foo 1M
vpc - 3T
vpc - 200G
vpc - 2040G
vpc - 2041G
vpc force_size=on 200G
vhdx - 0
vhdx subformat=fixed 0
vmdk - 0
qed - 0
vpc force_size=on 3T
vpc backing_file=x.vpc 1M
vhdx size=3M -
vhdx log_size=100 1M
vhdx block_size=512M 1M
vhdx block_size=1G 1M
vhdx block_state_zero=x 1M
vhdx - 65T
vdi size=3M -
vdi static=yes 1M
vdi - 2T
vdi - 0
qed size=3M -
qed cluster_size=3k 1M
qed table_size=20 1M
qcow size=3M -
qcow - 2T
vdi static=yes 1M
vdi static=n 1M
vmdk compat6=y 1M
vpc force_size=true 1M
vhdx block_state_zero=no 1M
vhdx subformat=foo 1M
EOF
# qemu-img 7.2 "creates" a qcow this large as a bare header it cannot open
# itself ("Image too large"); qimg refuses to create it.
run_tool big "$QIMG" create -f qcow big.qcow 3E
expect_eq "qcow 3E refused" "1 qimg: big.qcow: Image too large" "$(cat big.rc) $(cat big.err)"
unset -f same_as_qemu_setup
finish
