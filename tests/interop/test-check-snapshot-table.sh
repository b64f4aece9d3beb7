#!/bin/bash
# check on qcow2 images with a damaged snapshot table (snapshot L1 offset
# unaligned or past the end, L1 too large, too much extra data, entries
# without the disk size, table offset invalid): qimg and qemu-img on
# copies print the same, exit the same, repair (-r all) the same way, and
# leave images that check and list the same afterwards.
. "$(dirname "$0")/../lib.sh"
DAMAGE="$TEST_SRCDIR/interop/qcow2_snapdamage.py"

"$QEMU_IMG" create -q -f qcow2 base.qcow2 1M
"$QEMU_IO" -c "write -P 1 0 512k" base.qcow2 >/dev/null
"$QEMU_IMG" snapshot -c one base.qcow2
"$QEMU_IO" -c "write -P 2 0 128k" base.qcow2 >/dev/null
"$QEMU_IMG" snapshot -c two base.qcow2

one() { # TOOL OUT IMG MODE...
    local tool=$1 out=$2 img=$3; shift 3
    cp "$img" "$out.qcow2"
    "$tool" check "$@" "$out.qcow2" >"$out.out" 2>"$out.err"
    echo "rc=$?" >>"$out.out"
    "$QEMU_IMG" check "$out.qcow2" >>"$out.out" 2>&1; echo "after rc=$?" >>"$out.out"
    "$QEMU_IMG" snapshot -l "$out.qcow2" 2>&1 |
        sed -E 's/[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{8}/DATE/' >>"$out.out"
    sed -i "s/$out\.qcow2/IMG/g; s/^qemu-img: /PROG: /; s/^qimg: /PROG: /" "$out.out" "$out.err"
}
check_both() { # IMG MODE...
    one "$QEMU_IMG" ref "$@"; one "$QIMG" got "$@"
    cmp -s ref.out got.out || { check_fail "stdout differs: $*"; diff ref.out got.out | head -10 >&2; }
    cmp -s ref.err got.err || { check_fail "stderr differs: $*"; diff ref.err got.err | head -10 >&2; }
}

for d in l1_unaligned:0 l1_unaligned:1 l1_past_end:0 l1_too_large:1 \
    extra_too_large:0 extra_too_large:1 one_more_entry:0 table_unaligned:0 \
    table_past_end:0 too_many:0; do
    cp base.qcow2 "${d%:*}.qcow2"
    python3 "$DAMAGE" "${d%:*}.qcow2" "${d%:*}" "${d#*:}" || fail "damage $d"
    modes=("" "-r leaks" "-r all" "--output=json -r all")
    # qemu-img's own repair of a table past the end fails half-way
    # and of more than 65536 snapshots leaves a corrupt image (qimg's
    # repair must leave a clean one)
    case ${d%:*} in
    table_past_end) modes=("" "-r leaks") ;;
    too_many)
        modes=("" "-r leaks")
        cp too_many.qcow2 fixed.qcow2
        "$QIMG" check -r all fixed.qcow2 >/dev/null 2>&1 ||
            check_fail "too_many: check -r all exit $?"
        qemu_check_clean fixed.qcow2 ;;
    esac
    for m in "${modes[@]}"; do
        # shellcheck disable=SC2086
        check_both "${d%:*}.qcow2" $m
    done
done
finish
