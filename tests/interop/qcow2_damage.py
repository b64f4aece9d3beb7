#!/usr/bin/env python3
"""Damage a qcow2 image in one named way (for check tests).

usage: qcow2_damage.py IMAGE ACTION

Works on images with refcount_bits=16 and standard L2 entries, as made by
`qemu-img create -f qcow2` plus a few qemu-io writes."""
import struct
import sys

path, action = sys.argv[1], sys.argv[2]
f = open(path, 'r+b')


def rd(off, n):
    f.seek(off)
    return f.read(n)


def wr(off, data):
    f.seek(off)
    f.write(data)


def u64(off):
    return struct.unpack('>Q', rd(off, 8))[0]


def put64(off, v):
    wr(off, struct.pack('>Q', v))


def put16(off, v):
    wr(off, struct.pack('>H', v))


cluster_bits = struct.unpack('>I', rd(20, 4))[0]
cs = 1 << cluster_bits
l1_off = u64(40)
rt_off = u64(48)
rb_off = u64(rt_off) & ~0x1ff
OFF = 0x00fffffffffffe00


def refcount_at(cluster):
    return struct.unpack('>H', rd(rb_off + 2 * cluster, 2))[0]


def set_refcount(cluster, v):
    put16(rb_off + 2 * cluster, v)


l2_off = u64(l1_off) & OFF
first_data = u64(l2_off) & OFF     # guest cluster 0 must be allocated

if action == 'leak':
    # A cluster past the end with refcount 1 that nothing references.
    f.seek(0, 2)
    end = f.tell()
    end = (end + cs - 1) // cs * cs
    wr(end, b'\0' * cs)
    set_refcount(end // cs, 1)
elif action == 'refcount-high':
    set_refcount(first_data // cs, 2)
elif action == 'refcount-zero':
    set_refcount(first_data // cs, 0)
elif action == 'l2-unaligned':
    put64(l2_off, (u64(l2_off) & ~OFF) | (first_data + 512))
elif action == 'l2-reserved':
    put64(l2_off, u64(l2_off) | (1 << 57))
elif action == 'l2-prealloc-unaligned':
    # A zero cluster with a misaligned preallocated offset.
    put64(l2_off + 8 * 5, (1 << 63) | ((first_data + 1024) & OFF) | 1)
elif action == 'copied-clear':
    put64(l2_off, u64(l2_off) & ~(1 << 63))
elif action == 'l1-copied-clear':
    put64(l1_off, u64(l1_off) & ~(1 << 63))
elif action == 'l2-overlaps-l1':
    put64(l2_off + 8 * 7, (1 << 63) | l1_off)
elif action == 'l2-beyond-eof':
    f.seek(0, 2)
    end = f.tell()
    put64(l2_off + 8 * 9, (1 << 63) | ((end // cs + 4) * cs))
elif action == 'refblock-zero':
    set_refcount(rb_off // cs, 0)
elif action == 'dirty-leak':
    f.seek(0, 2)
    end = (f.tell() + cs - 1) // cs * cs
    wr(end, b'\0' * cs)
    set_refcount(end // cs, 1)
    put64(72, u64(72) | 1)
elif action == 'corrupt-bit':
    put64(72, u64(72) | 2)
elif action == 'refblock-unaligned':
    put64(rt_off, rb_off + 512)
elif action == 'refblock-beyond-eof':
    # A second refcount block a little past the end: repair grows the file.
    f.seek(0, 2)
    put64(rt_off + 8, (f.tell() // cs + 8) * cs)
elif action == 'refblock-far-beyond-eof':
    # ... and one past any file size: growing it fails, the table is rebuilt.
    put64(rt_off + 8, 0xcccccccc0000)
elif action == 'truncate':
    f.truncate(first_data + cs // 2)
else:
    sys.exit('unknown action ' + action)
f.close()
