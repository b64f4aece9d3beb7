#!/usr/bin/env python3
"""Damage the snapshot table of a qcow2 image in one named way (for check
tests).

usage: qcow2_snapdamage.py IMAGE ACTION [ENTRY]"""
import struct
import sys

path, action = sys.argv[1], sys.argv[2]
index = int(sys.argv[3]) if len(sys.argv) > 3 else 0
f = open(path, 'r+b')


def rd(off, n):
    f.seek(off)
    return f.read(n)


def wr(off, data):
    f.seek(off)
    f.write(data)


nb = struct.unpack('>I', rd(60, 4))[0]
table = struct.unpack('>Q', rd(64, 8))[0]


def entry(k):
    """Offset of entry k in the file."""
    off = table
    for _ in range(k):
        id_len, name_len = struct.unpack('>HH', rd(off + 12, 4))
        extra = struct.unpack('>I', rd(off + 36, 4))[0]
        off += (40 + extra + id_len + name_len + 7) // 8 * 8
    return off


e = entry(index)
if action == 'l1_unaligned':
    wr(e, struct.pack('>Q', struct.unpack('>Q', rd(e, 8))[0] + 8))
elif action == 'l1_past_end':
    wr(e, struct.pack('>Q', 1 << 50))
elif action == 'l1_too_large':
    wr(e + 8, struct.pack('>I', 0x08000000))
elif action == 'extra_too_large':
    wr(e + 36, struct.pack('>I', 2048))
elif action == 'one_more_entry':
    wr(60, struct.pack('>I', nb + 1))
elif action == 'too_many':
    wr(60, struct.pack('>I', 70000))
elif action == 'table_unaligned':
    wr(64, struct.pack('>Q', table + 1))
elif action == 'table_past_end':
    wr(64, struct.pack('>Q', 1 << 50))
else:
    sys.exit('unknown action ' + action)
