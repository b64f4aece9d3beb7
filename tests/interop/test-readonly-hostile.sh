#!/bin/bash
# parallels, bochs, cloop, dmg: malformed images (at least five per
# format) are clean errors, with qemu-img's wording where it has one.
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib.sh"
. "$HERE/fmt-hostile.sh"
MKIMG="python3 $HERE/mkimg.py"

head -c 700k /dev/urandom > src.raw
truncate -s 1M src.raw
$QEMU_IMG create -q -f parallels p.hdd 8M || fail "create parallels"
$QEMU_IO -f parallels -c 'write -P 5 1M 100k' p.hdd >/dev/null

# Malformed images, at least five per format.
for v in truncated bad-magic catalog-huge extent-not-pow2 catalog-small \
         catalog-past-end extent-past-end; do
    $MKIMG bochs src.raw bad.img $v
    clean_error "bochs $v" $QIMG convert -f bochs -O raw bad.img o.raw
done
for v in truncated block-size-odd too-many-blocks not-monotonic past-end bad-zlib; do
    $MKIMG cloop src.raw bad.img $v
    clean_error "cloop $v" $QIMG convert -f cloop -O raw bad.img o.raw
done
for v in truncated no-koly rsrc-past-end chunk-past-end chunk-too-long overlap \
         rsrc-bad-length; do
    $MKIMG dmg-rsrc src.raw bad.dmg $v
    clean_error "dmg $v" $QIMG convert -f dmg -O raw bad.dmg o.raw
done
$MKIMG dmg-xml src.raw bad.dmg xml-unterminated
clean_error "dmg xml-unterminated" $QIMG convert -f dmg -O raw bad.dmg o.raw
# Messages shared with qemu-img.
for v in bad-magic catalog-huge extent-not-pow2 catalog-small; do
    $MKIMG bochs src.raw bad.img $v
    same_as_qemu convert -f bochs -O raw bad.img o.raw
done
for v in block-size-odd too-many-blocks not-monotonic; do
    $MKIMG cloop src.raw bad.img $v
    same_as_qemu convert -f cloop -O raw bad.img o.raw
done

cp p.hdd h.hdd
bad() { cp p.hdd bad.hdd; patch_bytes bad.hdd "$@"; }
rd() { clean_error "parallels $1" $QIMG convert -f parallels -O raw bad.hdd o.raw; }
bad 0 '<I' 0x41414141;         rd "bad magic"
bad 16 '<I' 3;                 rd "bad version"
bad 28 '<I' 0;                 rd "zero cluster"
bad 28 '<I' 0x7fffffff;        rd "huge cluster"
bad 32 '<I' 0x10000000;        rd "BAT too large"
bad 32 '<I' 0x01000000;        rd "BAT past the end"
bad 64 '<I' 0x00ffffff;        rd "cluster past the end"
head -c 40 p.hdd > bad.hdd;    rd "truncated"
for spec in "16 <I 3" "28 <I 0" "28 <I 0x7fffffff" "32 <I 0x40000000"; do
    bad $spec
    same_as_qemu convert -f parallels -O raw bad.hdd o.raw
done

finish
