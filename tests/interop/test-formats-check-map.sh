#!/bin/bash
# check (vdi, qed) and map (vdi, qed, qcow) against qemu-img: clean and
# corrupted images, human and JSON output, exit codes, and for qed the
# repaired image's bytes after -r leaks / -r all.
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib.sh"
. "$HERE/fmt-hostile.sh"

# check_same IMG ARGS...: both tools check a fresh copy of IMG; outputs,
# exit codes and the image bytes afterwards must match.
check_same() {
    local img=$1; shift
    CK_IMG=$img
    same_as_qemu check "$@" t.img
    cp t.img ref.after
    same_as_qemu_setup
    $QIMG check "$@" t.img >/dev/null 2>&1
    cmp -s ref.after t.img || check_fail "image bytes after check $* differ ($img)"
}
same_as_qemu_setup() { cp "$CK_IMG" t.img; }

$QEMU_IMG create -q -f vdi v.vdi 8M
$QEMU_IO -f vdi -c 'write 0 3M' v.vdi >/dev/null
cp v.vdi v1.vdi; patch_bytes v1.vdi 0x204 '<I' 0; patch_bytes v1.vdi 0x20c '<I' 999
cp v.vdi v2.vdi; patch_bytes v2.vdi 0x184 '<I' 7
for img in v.vdi v1.vdi v2.vdi; do
    for o in "" "--output=json" "-r all" "-r leaks"; do
        check_same $img -f vdi $o
    done
done

$QEMU_IMG create -q -f qed q.qed 8M
$QEMU_IO -f qed -c 'write 0 200k' -c 'write 3M 64k' q.qed >/dev/null
# the L2 table qemu placed for the first 256 MiB
l2=$(od -An -tu8 -j 65536 -N 8 q.qed | tr -d ' ')
first=$(od -An -tu8 -j "$l2" -N 8 q.qed | tr -d ' ')
cp q.qed c1.qed; patch_bytes c1.qed "$l2" '<Q' 0x7fff0000          # past the end
cp q.qed c2.qed; patch_bytes c2.qed $((l2 + 8)) '<Q' "$first"     # used twice
cp q.qed c3.qed; truncate -s +192k c3.qed                          # leaks
cp q.qed c4.qed; patch_bytes c4.qed 65544 '<Q' 0x7fff0000         # bad L2 offset
cp q.qed c5.qed; patch_bytes c5.qed 16 '<Q' 2; truncate -s +64k c5.qed  # dirty
cp q.qed c6.qed; patch_bytes c6.qed "$l2" '<Q' 12345               # unaligned
cp q.qed c7.qed; patch_bytes c7.qed 65544 '<Q' 65536               # L1 as an L2
for img in q.qed c1.qed c2.qed c3.qed c4.qed c5.qed c6.qed c7.qed; do
    for o in "" "--output=json" "-r leaks" "-r all"; do
        check_same $img -f qed $o
    done
done
# after qimg's repair qemu-img finds only the cluster the cleared entry
# leaked (exit 3: leaks, no corruption)
cp c1.qed r.qed; $QIMG check -r all r.qed >/dev/null
$QEMU_IMG check r.qed >/dev/null 2>&1
expect_eq "qemu-img check after repair" 3 $?

# parallels (read-only here): clean, leaked tail, left in use with a
# cluster outside the file
$QEMU_IMG create -q -f parallels p.hdd 8M
$QEMU_IO -f parallels -c 'write 1M 64k' -c 'write 5M 2M' p.hdd >/dev/null
cp p.hdd p1.hdd; truncate -s +100k p1.hdd
cp p.hdd p2.hdd; patch_bytes p2.hdd 44 '<I' 0x746f6e59; patch_bytes p2.hdd 76 '<I' 999
for img in p.hdd p1.hdd p2.hdd; do
    same_as_qemu check $img
    same_as_qemu check --output=json $img
done

# formats without checks
$QEMU_IMG create -q -f qcow b.qcow 8M
$QEMU_IO -f qcow -c 'write 0 200k' -c 'write 3M 64k' b.qcow >/dev/null
same_as_qemu check b.qcow

# map: dynamic and static vdi, qed over a backing file with zero clusters,
# qcow over a backing file.
$QEMU_IMG create -q -f qcow -b b.qcow -F qcow o.qcow
$QEMU_IO -f qcow -c 'write 100k 8k' o.qcow >/dev/null
$QEMU_IMG create -q -f vdi -o static=on s.vdi 5M
$QEMU_IO -f vdi -c 'write 1M 8k' s.vdi >/dev/null
$QEMU_IMG create -q -f qed -b b.qcow -F qcow o.qed
$QEMU_IO -f qed -c 'write 100k 8k' -c 'write -z 2M 64k' o.qed >/dev/null
for img in v.vdi s.vdi q.qed o.qed b.qcow o.qcow; do
    same_as_qemu map $img
    same_as_qemu map --output=json $img
done

finish
