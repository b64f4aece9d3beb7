#!/bin/bash
# commit and rebase on qcow2 chains: qimg and qemu-img run on copies of the
# same chain give the same output, exit code and image contents, and the
# results pass the real qemu-img check.
. "$(dirname "$0")/../lib.sh"

chain() { # PREFIX: base <- mid <- top, all 2M
    local p=$1
    rm -f $p-*.qcow2
    "$QEMU_IMG" create -q -f qcow2 $p-base.qcow2 2M
    "$QEMU_IO" -c "write -P 1 0 1M" -c "write -P 9 1536k 64k" $p-base.qcow2 >/dev/null
    "$QEMU_IMG" create -q -f qcow2 -b $p-base.qcow2 -F qcow2 $p-mid.qcow2 2M
    "$QEMU_IO" -c "write -P 2 256k 64k" -c "write -z 0 4k" -c "write -P 6 1600k 8k" $p-mid.qcow2 >/dev/null
    "$QEMU_IMG" create -q -f qcow2 -b $p-mid.qcow2 -F qcow2 $p-top.qcow2 2M
    "$QEMU_IO" -c "write -P 3 1M 100k" -c "write -c -P 4 1536k 64k" -c "write -z 512k 64k" $p-top.qcow2 >/dev/null
}

# Run `TOOL ARGS` on chain ref (qemu-img) and got (qimg); $IMG in the
# arguments names the chain's file.
both() {
    local args=("$@")
    chain ref; chain got
    run_tool ref "$QEMU_IMG" "${args[@]//IMG/ref}"
    run_tool got "$QIMG" "${args[@]//IMG/got}"
    sed -i 's/^qemu-img: /PROG: /; s/^Try .qemu-img --help./Try HELP/; s/ref-/X-/g' "$T/ref.out" "$T/ref.err"
    sed -i 's/^qimg: /PROG: /; s/^Try .qimg --help./Try HELP/; s/got-/X-/g' "$T/got.out" "$T/got.err"
    cmp -s "$T/ref.out" "$T/got.out" || { check_fail "stdout differs: $*"; diff "$T/ref.out" "$T/got.out" >&2; }
    cmp -s "$T/ref.err" "$T/got.err" || { check_fail "stderr differs: $*"; diff "$T/ref.err" "$T/got.err" >&2; }
    expect_eq "exit code: $*" "$(cat "$T/ref.rc")" "$(cat "$T/got.rc")"
    for l in top mid base; do
        "$QEMU_IMG" compare -U ref-$l.qcow2 got-$l.qcow2 >/dev/null 2>&1 ||
            check_fail "$l differs after: $*"
        "$QEMU_IMG" check -U got-$l.qcow2 >/dev/null 2>&1 ||
            check_fail "qemu-img check $l after: $*"
        "$QEMU_IMG" info -U ref-$l.qcow2 | grep -E '^(virtual size|backing)' | sed 's/ref-/X-/g' >"$T/ri"
        "$QEMU_IMG" info -U got-$l.qcow2 | grep -E '^(virtual size|backing)' | sed 's/got-/X-/g' >"$T/gi"
        cmp -s "$T/ri" "$T/gi" || { check_fail "info of $l differs after: $*"; diff "$T/ri" "$T/gi" >&2; }
    done
}

# commit
both commit IMG-top.qcow2
both commit -d IMG-top.qcow2
both commit -q IMG-top.qcow2
both commit -b IMG-base.qcow2 IMG-top.qcow2
both commit IMG-mid.qcow2
both commit -r 100M IMG-top.qcow2
both commit -b nonexistent.qcow2 IMG-top.qcow2
both commit IMG-base.qcow2
both commit -t bogus IMG-top.qcow2
both commit
# The committed top reads the same as before through its backing file.
chain got
"$QEMU_IMG" convert -O raw got-top.qcow2 before.raw
"$QIMG" commit -q got-top.qcow2
"$QEMU_IMG" convert -O raw got-top.qcow2 after.raw
cmp -s before.raw after.raw || check_fail "commit changed what the image reads"
"$QEMU_IMG" map --output=json got-top.qcow2 | grep -q '"depth": 0' &&
    check_fail "committed top still allocates data"

# commit of an image with an internal snapshot (tables shared with it)
for x in ref got; do
    "$QEMU_IMG" create -q -f qcow2 $x-b.qcow2 1M
    "$QEMU_IO" -c "write -P 1 0 1M" $x-b.qcow2 >/dev/null
    "$QEMU_IMG" create -q -f qcow2 -b $x-b.qcow2 -F qcow2 $x-t.qcow2 1M
    "$QEMU_IO" -c "write -P 2 0 128k" $x-t.qcow2 >/dev/null
    "$QEMU_IMG" snapshot -c s $x-t.qcow2
    "$QEMU_IO" -c "write -P 3 64k 128k" $x-t.qcow2 >/dev/null
done
"$QEMU_IMG" commit -q ref-t.qcow2
"$QIMG" commit -q got-t.qcow2 || check_fail "commit with snapshot"
images_equal ref-t.qcow2 got-t.qcow2
images_equal ref-b.qcow2 got-b.qcow2
qemu_check_clean got-t.qcow2
"$QEMU_IMG" convert -l s -O raw ref-t.qcow2 rs.raw
"$QEMU_IMG" convert -l s -O raw got-t.qcow2 gs.raw
cmp -s rs.raw gs.raw || check_fail "snapshot changed by commit"

# commit into a smaller base grows it
for x in ref got; do
    "$QEMU_IMG" create -q -f qcow2 $x-b.qcow2 1M
    "$QEMU_IO" -c "write -P 1 0 1M" $x-b.qcow2 >/dev/null
    "$QEMU_IMG" create -q -f qcow2 -b $x-b.qcow2 -F qcow2 $x-t.qcow2 3M
    "$QEMU_IO" -c "write -P 2 2M 128k" $x-t.qcow2 >/dev/null
done
"$QEMU_IMG" commit -q ref-t.qcow2
"$QIMG" commit -q got-t.qcow2 || check_fail "commit growing the base"
images_equal ref-b.qcow2 got-b.qcow2
images_equal ref-t.qcow2 got-t.qcow2
qemu_check_clean got-b.qcow2
expect_eq "grown base size" "$("$QEMU_IMG" info ref-b.qcow2 | grep '^virtual')" \
    "$("$QEMU_IMG" info got-b.qcow2 | grep '^virtual')"

# rebase
both rebase -b IMG-base.qcow2 -F qcow2 IMG-top.qcow2
both rebase -b '' IMG-top.qcow2
both rebase -b IMG-base.qcow2 IMG-top.qcow2
both rebase -u -b IMG-base.qcow2 -F qcow2 IMG-top.qcow2
both rebase -u -b IMG-base.qcow2 IMG-top.qcow2
both rebase -b nonexistent.qcow2 -F qcow2 IMG-top.qcow2
both rebase -b IMG-base.qcow2 -F bogus IMG-top.qcow2
both rebase IMG-top.qcow2
both rebase -q -p -b IMG-mid.qcow2 -F qcow2 IMG-top.qcow2
# A new backing file outside the chain, and the manual's diff recipe.
chain got
"$QEMU_IMG" create -q -f qcow2 other.qcow2 2M
"$QEMU_IO" -c "write -P 7 0 2M" other.qcow2 >/dev/null
"$QEMU_IMG" convert -O raw got-top.qcow2 before.raw
"$QIMG" rebase -b other.qcow2 -F qcow2 got-top.qcow2 || check_fail "rebase onto other"
"$QEMU_IMG" convert -O raw got-top.qcow2 after.raw
cmp -s before.raw after.raw || check_fail "rebase changed what the image reads"
qemu_check_clean got-top.qcow2
# -u with the old backing file missing.
chain got
rm got-mid.qcow2
"$QIMG" rebase -u -b got-base.qcow2 -F qcow2 got-top.qcow2 || check_fail "rebase -u with missing backing"
"$QEMU_IMG" info got-top.qcow2 | grep -q '^backing file: got-base.qcow2$' || check_fail "rebase -u did not rewrite the name"
finish
