#!/usr/bin/env python3
"""Build a differencing VHD chain from the VHD specification ("Virtual Hard
Disk Image Format Specification"), the way Hyper-V and Virtual PC lay it
out, together with the bytes the child must read as.

usage: vhd-diff.py DIR [--loc w2ru,w2ku,macx] [--bad-uuid] [--self]
                   [--loop] [--parent-name NAME] [--bad-loc-offset] [--small]

Writes DIR/parent.vhd (dynamic), DIR/child.vhd (differencing, type 4) and
DIR/expected.raw.  --self makes the child's locators name the child itself,
--loop writes DIR/a.vhd and DIR/b.vhd, each differencing and naming the
other.  --small makes 64 KiB images with 4 KiB blocks (fuzzing seeds).
The child's sector bitmaps mix child and parent sectors inside its
blocks; unallocated child blocks read from the parent.
"""
import os
import struct
import sys
import uuid

MiB = 1024 * 1024
SIZE = 8 * MiB
BLOCK = 2 * MiB
SECT = 512
BITMAP = 512          # 4096 sectors per block -> 512 bytes, already aligned

W2RU, W2KU, MACX = b'W2ru', b'W2ku', b'MacX'


def checksum(buf):
    return (~sum(buf)) & 0xffffffff


def footer(disk_type, uid):
    f = bytearray(512)
    f[0:8] = b'conectix'
    struct.pack_into('>IIQI', f, 8, 2, 0x00010000, 512, 0x2a000000)
    f[28:32] = b'win '
    struct.pack_into('>I', f, 32, 0x000a0000)
    f[36:40] = b'Wi2k'
    struct.pack_into('>QQ', f, 40, SIZE, SIZE)
    struct.pack_into('>HBB', f, 56, 963, 4, 17)
    struct.pack_into('>I', f, 60, disk_type)
    f[68:84] = uid
    struct.pack_into('>I', f, 64, checksum(f))
    return bytes(f)


def pattern(tag, n):
    """n bytes (whole sectors), every sector distinct from its neighbours."""
    rows = [bytes(((tag * 37 + k + i * 7) & 0xff) for i in range(SECT))
            for k in range(256)]
    return b''.join(rows[s % 256] for s in range(n // SECT))


def write_image(path, disk_type, uid, blocks, parent=None, locators=(),
                bad_loc_offset=False):
    """blocks: {index: (bitmap bytes, data bytes)}; parent: (uuid, name);
    locators: [(code, text)]."""
    entries = SIZE // BLOCK
    bat_off = 512 + 1024
    pos = bat_off + 512
    locs = []
    for code, text in locators:
        enc = text.encode('utf-8' if code == MACX else 'utf-16-le')
        locs.append((code, enc, pos))
        pos += 512 * ((len(enc) + 511) // 512)
    bat = [0xffffffff] * entries
    data = []
    for idx in sorted(blocks):
        bat[idx] = pos // 512
        bitmap, payload = blocks[idx]
        data.append((pos, bitmap + payload))
        pos += BITMAP + BLOCK
    dyn = bytearray(1024)
    dyn[0:8] = b'cxsparse'
    struct.pack_into('>QQIII', dyn, 8, 0xffffffffffffffff, bat_off,
                     0x00010000, entries, BLOCK)
    if parent:
        puid, pname = parent
        dyn[40:56] = puid
        struct.pack_into('>I', dyn, 56, 0x29000000)
        name = pname.encode('utf-16-be')[:512]
        dyn[64:64 + len(name)] = name
    for i, (code, enc, off) in enumerate(locs):
        if bad_loc_offset:
            off = 1 << 40
        struct.pack_into('>4sIIIQ', dyn, 576 + 24 * i, code,
                         512 * ((len(enc) + 511) // 512), len(enc), 0, off)
    struct.pack_into('>I', dyn, 36, checksum(dyn))
    foot = footer(disk_type, uid)
    with open(path, 'wb') as f:
        f.write(foot)
        f.write(dyn)
        f.write(b''.join(struct.pack('>I', e) for e in bat).ljust(512, b'\xff'))
        for code, enc, off in locs:
            f.seek(off)
            f.write(enc.ljust(512 * ((len(enc) + 511) // 512), b'\0'))
        for off, b in data:
            f.seek(off)
            f.write(b)
        f.seek(pos)
        f.write(foot)


def bitmap_from(present):
    """present: function sector-in-block -> bool.  Bit 7 of byte 0 is the
    block's first sector."""
    b = bytearray(BITMAP)
    for s in range(BLOCK // SECT):
        if present(s):
            b[s // 8] |= 0x80 >> (s % 8)
    return bytes(b)


def main():
    global SIZE, BLOCK
    args = sys.argv[1:]
    out = args.pop(0)
    if '--small' in args:
        args.remove('--small')
        SIZE, BLOCK = 64 * 1024, 4096
    opts = {'loc': 'w2ru,w2ku'}
    flags = set()
    while args:
        a = args.pop(0)
        if a in ('--loc', '--parent-name'):
            opts[a[2:]] = args.pop(0)
        else:
            flags.add(a[2:])

    puid = uuid.UUID('5a3c1d2e-0b4f-4c6d-8e9f-a0b1c2d3e4f5').bytes
    cuid = uuid.UUID('6b4d2e3f-1c50-4d7e-9fa0-b1c2d3e4f506').bytes

    # Parent: blocks 0, 1 and 3 allocated, every sector present.
    full = bytes([0xff]) * BITMAP
    pblocks = {i: (full, pattern(i + 1, BLOCK)) for i in (0, 1, 3)}
    parent_raw = bytearray(SIZE)
    for i, (_, d) in pblocks.items():
        parent_raw[i * BLOCK:(i + 1) * BLOCK] = d

    # Child: block 0 mixes sectors (first 8 present, then every third
    # sector, a run of 100 in the middle); block 2 (unallocated in the
    # parent) has half its sectors; blocks 1 and 3 come from the parent.
    def mix(s):
        return s < 8 or s % 3 == 0 or 2000 <= s < 2100
    cblocks = {0: (bitmap_from(mix), pattern(0x51, BLOCK)),
               2: (bitmap_from(lambda s: s % 2 == 0), pattern(0x52, BLOCK))}
    expected = bytearray(parent_raw)
    for i, (bm, d) in cblocks.items():
        for s in range(BLOCK // SECT):
            if bm[s // 8] & (0x80 >> (s % 8)):
                at = i * BLOCK + s * SECT
                expected[at:at + SECT] = d[s * SECT:(s + 1) * SECT]

    def locators(target):
        locs = []
        for kind in opts['loc'].split(','):
            if kind == 'w2ru':
                locs.append((W2RU, '.\\' + target))
            elif kind == 'w2ku':
                locs.append((W2KU, 'C:\\Hyper-V\\Disks\\' + target))
            elif kind == 'macx':
                locs.append((MACX, 'file://localhost' +
                             os.path.abspath(os.path.join(out, target))))
        return locs

    if 'loop' in flags:
        a_uid, b_uid = cuid, puid
        write_image(os.path.join(out, 'a.vhd'), 4, a_uid, cblocks,
                    (b_uid, 'b.vhd'), locators('b.vhd'))
        write_image(os.path.join(out, 'b.vhd'), 4, b_uid, cblocks,
                    (a_uid, 'a.vhd'), locators('a.vhd'))
        return
    write_image(os.path.join(out, 'parent.vhd'), 3, puid, pblocks)
    target = 'child.vhd' if 'self' in flags else opts.get('parent-name',
                                                          'parent.vhd')
    link = cuid if 'self' in flags else puid
    if 'bad-uuid' in flags:
        link = uuid.UUID(int=1).bytes
    write_image(os.path.join(out, 'child.vhd'), 4, cuid, cblocks,
                (link, target), locators(target),
                'bad-loc-offset' in flags)
    with open(os.path.join(out, 'expected.raw'), 'wb') as f:
        f.write(expected)


main()
