#!/usr/bin/env python3
"""Mark one persistent bitmap of a qcow2 image in use (flag bit 0 of its
directory entry), as a writer that crashed leaves it.

usage: qcow2_bitmap_in_use.py IMAGE BITMAP"""
import struct
import sys

f = open(sys.argv[1], 'r+b')
d = f.read()
pos = struct.unpack('>I', d[100:104])[0]
while True:
    t, ln = struct.unpack('>II', d[pos:pos + 8])
    if t == 0:
        sys.exit('no bitmaps extension')
    if t == 0x23852875:
        n, _, _, doff = struct.unpack('>IIQQ', d[pos + 8:pos + 32])
        break
    pos += 8 + (ln + 7) // 8 * 8
p = doff
for _ in range(n):
    flags = struct.unpack('>I', d[p + 12:p + 16])[0]
    nlen, extra = struct.unpack('>HI', d[p + 18:p + 24])
    if d[p + 24 + extra:p + 24 + extra + nlen].decode() == sys.argv[2]:
        f.seek(p + 12)
        f.write(struct.pack('>I', flags | 1))
        sys.exit(0)
    p += (24 + extra + nlen + 7) // 8 * 8
sys.exit('no bitmap named ' + sys.argv[2])
