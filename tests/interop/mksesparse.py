#!/usr/bin/env python3
"""Build a VMware seSparse vmdk (descriptor plus seSparse extent, the
space-efficient sparse format of ESXi snapshots) from a raw file, plus
malformed variants for the hostile-input tests.

Layout (sectors of 512 bytes, every number little-endian 64-bit):
  0      const header: magic 0xcafebabe, version 0x200000001, capacity,
         grain size 8, grain table size 64, flags, 4 reserved, then
         (offset, size) pairs of the volatile header, journal header,
         journal, grain directory, grain tables, free bitmap, backmap and
         grains; zero padding
  1      volatile header: magic 0xcafecafe, free grain table number,
         next transaction number, replay-journal flag; zero padding
  4096   grain directory: 0 = no table, 0x10000000_iiiiiiii = table i
  ...    grain tables (4096 entries each, one per 4 KiB grain):
         0 unallocated, 0x1... unmapped, 0x2... zero,
         0x3 | index bits 0-11 at 48-59 | index bits 12-59 at 0-47 = data
  ...    free bitmap, backmap, then the grains

usage: mksesparse.py RAW OUT.vmdk [VARIANT [PARENT]]
  writes OUT.vmdk (descriptor) and OUT-sesparse.vmdk (extent); VARIANT is
  good or a malformation (see build()); PARENT names a parent image
  (parentFileNameHint; PARENT:CID also sets parentCID, which must be the
  parent's CID), whose content shows through unallocated grains
"""
import os
import struct
import sys

SECTOR = 512
GRAIN = 8                       # sectors
GT_SECTORS = 64                 # one grain table
GTE_PER_GT = GT_SECTORS * SECTOR // 8
COVER = GTE_PER_GT * GRAIN      # sectors one table maps


def div_up(a, b):
    return (a + b - 1) // b


def round_up(a, b):
    return div_up(a, b) * b


def build(raw, variant):
    cap = div_up(len(raw), SECTOR)
    cap = round_up(cap, GRAIN)
    tables = div_up(cap, COVER)
    gd_size = round_up(div_up(tables * 8, SECTOR), 2048)
    gt_size = round_up(tables * GT_SECTORS, 2048)
    fb_size = round_up(div_up(div_up(div_up(cap, GRAIN), 8), SECTOR), 2048)
    gd_off = 4096
    gt_off = gd_off + gd_size
    fb_off = gt_off + gt_size
    bm_off = fb_off + fb_size
    bm_size = gt_size
    grains_off = bm_off + bm_size
    fields = [0xcafebabe, 0x200000001, cap, GRAIN, GT_SECTORS, 0, 0, 0, 0, 0,
              1, 1, 2, 2, 2048, 2048, gd_off, gd_size, gt_off, gt_size,
              fb_off, fb_size, bm_off, bm_size, grains_off, cap]
    if variant == "bad-magic":
        fields[0] = 0xcafebabf
    if variant == "bad-version":
        fields[1] = 0x100000001
    if variant == "grain-size":
        fields[3] = 16
    if variant == "gd-size":
        fields[17] = 0x1000000000
    if variant == "cap-huge":
        fields[2] = 1 << 50
    if variant == "reserved":
        fields[7] = 1
    if variant == "gd-past-end":
        fields[16] = 0x100000000
    gd = [0] * (gd_size * SECTOR // 8)
    gts = {}
    grains = []
    unmapped = variant == "unmapped"
    for g in range(div_up(len(raw), GRAIN * SECTOR)):
        data = raw[g * GRAIN * SECTOR:(g + 1) * GRAIN * SECTOR]
        t, i = divmod(g, GTE_PER_GT)
        if not data.strip(b"\0"):
            # Every other zero grain is recorded as a zero grain, the rest
            # stays unallocated (both read as zeros).
            if g % 2:
                gts.setdefault(t, [0] * GTE_PER_GT)[i] = \
                    (0x1 if unmapped else 0x2) << 60
            continue
        gts.setdefault(t, [0] * GTE_PER_GT)[i] = len(grains)
        grains.append(data.ljust(GRAIN * SECTOR, b"\0"))
    # Grains are stored in reverse order and table numbers run backwards,
    # so that the index encodings and the mapping are both exercised.
    n = len(grains)
    order = list(reversed(range(n)))
    tnums = {t: len(gts) - 1 - k for k, t in enumerate(sorted(gts))}
    for t in gts:
        gd[t] = (0x10000000 << 32) | tnums[t]
    # Rewrite allocated entries with their final (reversed) grain index.
    allocated = {}
    for t in sorted(gts):
        gt = gts[t]
        for i in range(GTE_PER_GT):
            g = t * GTE_PER_GT + i
            d = raw[g * GRAIN * SECTOR:(g + 1) * GRAIN * SECTOR]
            if d and d.strip(b"\0"):
                allocated[(t, i)] = gt[i]
    for (t, i), k in allocated.items():
        idx = order[k]
        gts[t][i] = (0x3 << 60) | ((idx & 0xfff) << 48) | (idx >> 12)
    if variant == "gt-bad-type" and allocated:
        t, i = next(iter(allocated))
        gts[t][i] = 0x4 << 60
    if variant == "grain-past-end" and allocated:
        t, i = next(iter(allocated))
        gts[t][i] = (0x3 << 60) | 0x0000ffffffffffff
    if variant == "gd-bad-entry" and gts:
        gd[min(gts)] = 0x2000000000000005
    if variant == "gd-table-past-end" and gts:
        gd[min(gts)] = (0x10000000 << 32) | 0xffffff
    hdr = struct.pack("<26Q", *fields)
    vol = struct.pack("<4Q", 0xcafecafe, 0, 1, 1 if variant == "dirty" else 0)
    if variant == "bad-volatile":
        vol = struct.pack("<4Q", 0xcafebabe, 0, 1, 0)
    return hdr, vol, gd_off, gd, gt_off, gts, tnums, grains_off, grains, order


def main():
    raw_path, out = sys.argv[1], sys.argv[2]
    variant = sys.argv[3] if len(sys.argv) > 3 else "good"
    parent = sys.argv[4] if len(sys.argv) > 4 else None
    parent_cid = 0xffffffff
    if parent and ":" in parent:
        parent, cid = parent.rsplit(":", 1)
        parent_cid = int(cid, 0)
    raw = open(raw_path, "rb").read()
    (hdr, vol, gd_off, gd, gt_off, gts, tnums, grains_off, grains,
     order) = build(raw, variant)
    base = os.path.basename(out)
    ext = (base[:-5] if base.endswith(".vmdk") else base) + "-sesparse.vmdk"
    ext_path = os.path.join(os.path.dirname(out), ext)
    cap = struct.unpack_from("<Q", hdr, 16)[0]
    with open(ext_path, "wb") as f:
        f.write(hdr.ljust(SECTOR, b"\0"))
        f.write(vol.ljust(SECTOR, b"\0"))
        f.seek(gd_off * SECTOR)
        f.write(struct.pack("<%dQ" % len(gd), *gd))
        for t, gt in gts.items():
            f.seek((gt_off + tnums[t] * GT_SECTORS) * SECTOR)
            f.write(struct.pack("<%dQ" % GTE_PER_GT, *gt))
        for k, g in enumerate(grains):
            f.seek((grains_off + order[k] * GRAIN) * SECTOR)
            f.write(g)
        end = grains_off * SECTOR + len(grains) * GRAIN * SECTOR
        if variant == "truncated":
            end = 300
        f.truncate(end)
    desc = ("# Disk DescriptorFile\nversion=1\nCID=5c0b8c42\n"
            "parentCID=%s\ncreateType=\"seSparse\"\n%s\n"
            "# Extent description\nRW %d SESPARSE \"%s\"\n\n"
            "# The Disk Data Base\n#DDB\n\n"
            "ddb.virtualHWVersion = \"14\"\n"
            "ddb.geometry.cylinders = \"%d\"\nddb.geometry.heads = \"16\"\n"
            "ddb.geometry.sectors = \"63\"\nddb.adapterType = \"lsilogic\"\n"
            % ("%08x" % parent_cid,
               'parentFileNameHint="%s"\n' % parent if parent else "",
               cap, ext, max(1, cap // (16 * 63))))
    with open(out, "w") as f:
        f.write(desc)


if __name__ == "__main__":
    main()
