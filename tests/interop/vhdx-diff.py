#!/usr/bin/env python3
"""Build VHDX images from [MS-VHDX]: a dynamic parent and a differencing
child (HasParent, a Parent Locator metadata item, PARTIALLY_PRESENT blocks
with a sector bitmap block), together with the bytes the child must read as.

usage: vhdx-diff.py DIR [--lss 512|4096] [--keys rel,abs,vol] [--bad-linkage]
                    [--self] [--loop] [--parent-name NAME] [--no-parent-flag]
                    [--bad-locator] [--fuzz-seed]

Writes DIR/parent.vhdx, DIR/child.vhdx and DIR/expected.raw (--loop writes
DIR/a.vhdx and DIR/b.vhdx naming each other; --self makes the child name
itself).  --lss 4096 gives 4 KiB logical and physical sectors, as Hyper-V
creates by default.  --fuzz-seed writes DIR/seed.vhdx instead: a child
whose metadata items are packed into their table's first 4 KiB and whose
one partially present block shares its offset with the sector bitmap
block, so that it fits the compact input of tests/fuzz/fuzz-vhdx.c
(tests/fuzz/vhdx-compact.py seed.vhdx OUT 4096).
"""
import os
import struct
import sys
import uuid

KiB, MiB = 1024, 1024 * 1024
SIZE = 8 * MiB
BLOCK = MiB

G_BAT = uuid.UUID('2dc27766-f623-4200-9d64-115e9bfd4a08')
G_META = uuid.UUID('8b7ca206-4790-4b9a-b8fe-575f050f886e')
G_FILE_PARAMS = uuid.UUID('caa16737-fa36-4d43-b3b6-33f0aa44e76b')
G_SIZE = uuid.UUID('2fa54224-cd1b-4876-b211-5dbed83bf4b8')
G_DISK_ID = uuid.UUID('beca12ab-b2e6-4523-93ef-c309e000c746')
G_LSS = uuid.UUID('8141bf1d-a96f-4709-ba47-f233a8faab5f')
G_PSS = uuid.UUID('cda348c7-445d-4471-9cc9-e9885251c556')
G_PARENT = uuid.UUID('a8d35f2d-b30b-454d-abf7-d3d84834ab0c')
G_LOC_TYPE = uuid.UUID('b04aefb7-d19e-4a81-b789-25b8e9445913')

_T = []
for _n in range(256):
    _c = _n
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _T.append(_c)


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = _T[(c ^ b) & 0xff] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def with_crc(buf):
    buf = bytearray(buf)
    buf[4:8] = b'\0\0\0\0'
    struct.pack_into('<I', buf, 4, crc32c(buf))
    return bytes(buf)


def pattern(tag, n):
    rows = [bytes(((tag * 37 + k + i * 7) & 0xff) for i in range(512))
            for k in range(256)]
    return b''.join(rows[s % 256] for s in range(n // 512))


def locator(keys):
    """Parent Locator item: header, key/value entries, UTF-16LE strings."""
    head = bytearray(G_LOC_TYPE.bytes_le + struct.pack('<HH', 0, len(keys)))
    strings = bytearray()
    base = len(head) + 12 * len(keys)
    ents = bytearray()
    for k, v in keys:
        kb, vb = k.encode('utf-16-le'), v.encode('utf-16-le')
        ko = base + len(strings)
        strings += kb
        vo = base + len(strings)
        strings += vb
        ents += struct.pack('<IIHH', ko, vo, len(kb), len(vb))
    return bytes(head + ents + strings)


def write_image(path, lss, data_guid, blocks, parent_keys=None,
                has_parent_flag=True, fuzz_seed=False):
    """blocks: {index: (state, payload bytes or None, present-sector set)}."""
    chunk_ratio = (1 << 23) * lss // BLOCK
    log_off, bat_off, meta_off, data_off = MiB, 2 * MiB, 3 * MiB, 4 * MiB
    f = bytearray(data_off)
    f[0:8] = b'vhdxfile'
    f[8:8 + 20] = 'qimg tests'.encode('utf-16-le')
    hdr = bytearray(4 * KiB)
    hdr[0:4] = b'head'
    struct.pack_into('<Q', hdr, 8, 1)
    hdr[16:32] = uuid.uuid4().bytes_le
    hdr[32:48] = data_guid.bytes_le
    struct.pack_into('<HHIQ', hdr, 64, 0, 1, MiB, log_off)
    for i, at in enumerate((64 * KiB, 128 * KiB)):
        struct.pack_into('<Q', hdr, 8, i + 1)
        f[at:at + 4 * KiB] = with_crc(hdr)
    rt = bytearray(64 * KiB)
    rt[0:4] = b'regi'
    struct.pack_into('<I', rt, 8, 2)
    rt[16:32] = G_BAT.bytes_le
    struct.pack_into('<QII', rt, 32, bat_off, MiB, 1)
    rt[48:64] = G_META.bytes_le
    struct.pack_into('<QII', rt, 64, meta_off, MiB, 1)
    rt = with_crc(rt)
    f[192 * KiB:256 * KiB] = rt
    f[256 * KiB:320 * KiB] = rt

    items = [(G_FILE_PARAMS, struct.pack('<II', BLOCK,
                                         2 if parent_keys is not None and has_parent_flag else 0), 4),
             (G_SIZE, struct.pack('<Q', SIZE), 6),
             (G_DISK_ID, uuid.uuid4().bytes_le, 6),
             (G_LSS, struct.pack('<I', lss), 6),
             (G_PSS, struct.pack('<I', lss), 6)]
    if parent_keys is not None:
        items.append((G_PARENT, locator(parent_keys), 6))
    tab = bytearray(b'metadata' + struct.pack('<HH', 0, len(items)) + bytes(20))
    off = 64 * KiB
    for g, val, flags in items:
        tab += g.bytes_le + struct.pack('<IIII', off, len(val), flags, 0)
        f[meta_off + off:meta_off + off + len(val)] = val
        off += 512 if fuzz_seed else 4 * KiB
    f[meta_off:meta_off + len(tab)] = tab

    nblocks = SIZE // BLOCK
    pos = data_off
    tail = []
    bitmap = None
    for i in range(nblocks):
        if i not in blocks:
            continue
        state, payload, present = blocks[i]
        entry = state
        if fuzz_seed:
            entry |= pos
            tail.append((pos, payload[:4 * KiB]))
        elif payload is not None:
            entry |= pos
            tail.append((pos, payload))
            pos += BLOCK
        struct.pack_into('<Q', f, bat_off + 8 * (i + i // chunk_ratio), entry)
        if present:
            if bitmap is None:
                bitmap = bytearray(MiB)
            per = BLOCK // lss
            for s in present:
                n = i * per + s
                bitmap[n // 8] |= 1 << (n % 8)
    if fuzz_seed:
        struct.pack_into('<Q', f, bat_off + 8 * chunk_ratio, pos | 6)
        tail[0] = (pos, bytes(bitmap[:4 * KiB]))
        pos += 4 * KiB
    elif bitmap is not None:
        struct.pack_into('<Q', f, bat_off + 8 * chunk_ratio, pos | 6)
        tail.append((pos, bytes(bitmap)))
        pos += MiB
    with open(path, 'wb') as out:
        out.write(f)
        for at, b in tail:
            out.seek(at)
            out.write(b)
        out.truncate(pos)


def main():
    args = sys.argv[1:]
    out = args.pop(0)
    opts = {'lss': '512', 'keys': 'rel,abs,vol'}
    flags = set()
    while args:
        a = args.pop(0)
        if a in ('--lss', '--keys', '--parent-name'):
            opts[a[2:]] = args.pop(0)
        else:
            flags.add(a[2:])
    lss = int(opts['lss'])
    per = BLOCK // lss
    pguid = uuid.UUID('0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9')
    cguid = uuid.UUID('1a2b3c4d-5e6f-4081-92a3-b4c5d6e7f809')

    # Parent: blocks 0-3 and 6 present; block 5 ZERO.
    pblocks = {i: (6, pattern(i + 1, BLOCK), None) for i in (0, 1, 2, 3, 6)}
    pblocks[5] = (2, None, None)
    parent_raw = bytearray(SIZE)
    for i in (0, 1, 2, 3, 6):
        parent_raw[i * BLOCK:(i + 1) * BLOCK] = pblocks[i][1]

    # Child: block 0 partially present (mixed sectors), block 1 fully
    # present, block 2 ZERO (hides the parent), block 4 partially present
    # over a hole in the parent; blocks 3, 5, 6, 7 come from the parent.
    mix = {s for s in range(per) if s < 4 or s % 5 == 0 or 100 <= s < 140}
    half = {s for s in range(per) if s % 2}
    cblocks = {0: (7, pattern(0x61, BLOCK), mix),
               1: (6, pattern(0x62, BLOCK), None),
               2: (2, None, None),
               4: (7, pattern(0x64, BLOCK), half)}
    expected = bytearray(parent_raw)
    for i, (state, payload, present) in cblocks.items():
        base = i * BLOCK
        if state == 2:
            expected[base:base + BLOCK] = bytes(BLOCK)
        elif present is None:
            expected[base:base + BLOCK] = payload
        else:
            for s in present:
                expected[base + s * lss:base + (s + 1) * lss] = \
                    payload[s * lss:(s + 1) * lss]

    def keys(target, link):
        k = [('parent_linkage', '{%s}' % link)]
        for kind in opts['keys'].split(','):
            if kind == 'rel':
                k.append(('relative_path', '.\\' + target))
            elif kind == 'abs':
                k.append(('absolute_win32_path', 'C:\\VMs\\Disks\\' + target))
            elif kind == 'vol':
                k.append(('volume_path', '\\\\?\\Volume{26a21bda-a627-11d7-9931-'
                          '806e6f6e6963}\\VMs\\Disks\\' + target))
        return k

    if 'fuzz-seed' in flags:
        write_image(os.path.join(out, 'seed.vhdx'), 512, cguid,
                    {0: cblocks[0]}, keys('parent.vhdx', pguid),
                    fuzz_seed=True)
        return
    if 'loop' in flags:
        write_image(os.path.join(out, 'a.vhdx'), lss, cguid, cblocks,
                    keys('b.vhdx', pguid))
        write_image(os.path.join(out, 'b.vhdx'), lss, pguid, cblocks,
                    keys('a.vhdx', cguid))
        return
    write_image(os.path.join(out, 'parent.vhdx'), lss, pguid, pblocks)
    target = 'child.vhdx' if 'self' in flags else opts.get('parent-name',
                                                           'parent.vhdx')
    link = cguid if 'self' in flags else pguid
    if 'bad-linkage' in flags:
        link = uuid.UUID(int=7)
    k = keys(target, link)
    if 'bad-locator' in flags:
        k = [('relative_path', '.\\' + target)]   # no parent_linkage
    write_image(os.path.join(out, 'child.vhdx'), lss, cguid, cblocks, k,
                'no-parent-flag' not in flags)
    with open(os.path.join(out, 'expected.raw'), 'wb') as f:
        f.write(expected)


main()
