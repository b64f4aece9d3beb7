#!/usr/bin/env python3
"""Build malformed qcow2 images from a valid one, one defect each.

usage: qcow2-malformed.py GOOD.qcow2 OUTDIR
GOOD must be a v3 image with 64 KiB clusters, 4 MiB, data in cluster 0,
one compressed cluster at 1 MiB, made by qemu-img/qemu-io.  Prints the
names of the images it wrote."""
import os
import struct
import sys

good, outdir = sys.argv[1], sys.argv[2]
base = open(good, 'rb').read()
base += bytes((-len(base)) % 65536)
cs = 1 << struct.unpack_from('>I', base, 20)[0]
l1_off = struct.unpack_from('>Q', base, 40)[0]
rt_off = struct.unpack_from('>Q', base, 48)[0]
l2_off = struct.unpack_from('>Q', base, l1_off)[0] & 0x00fffffffffffe00
hdr_len = struct.unpack_from('>I', base, 100)[0]
made = []


def emit(name, data):
    with open(os.path.join(outdir, name + '.qcow2'), 'wb') as f:
        f.write(data)
    made.append(name)


def patch(name, fmt, off, val, data=None):
    d = bytearray(base if data is None else data)
    struct.pack_into(fmt, d, off, val)
    emit(name, bytes(d))
    return d


def with_ext(name, etype, payload, declared=None):
    """Replace the extension area by one extension (plus end marker)."""
    d = bytearray(base)
    d[hdr_len:cs] = bytes(cs - hdr_len)
    ln = len(payload) if declared is None else declared
    struct.pack_into('>II', d, hdr_len, etype, ln)
    d[hdr_len + 8:hdr_len + 8 + len(payload)] = payload
    emit(name, bytes(d))


patch('bad-magic', '>I', 0, 0x514649fa)
patch('version-1', '>I', 4, 1)
patch('version-4', '>I', 4, 4)
patch('cluster-bits-8', '>I', 20, 8)
patch('cluster-bits-22', '>I', 20, 22)
patch('cluster-bits-63', '>I', 20, 63)
patch('header-length-short', '>I', 100, 100)
patch('header-length-huge', '>I', 100, cs + 8)
patch('backing-offset-beyond', '>Q', 8, cs + 512)
d = patch('backing-size-huge', '>Q', 8, 4096)
patch('backing-size-huge', '>I', 16, 2000, d)
patch('refcount-order-7', '>I', 96, 7)
patch('crypt-method-3', '>I', 32, 3)
patch('unknown-incompat', '>Q', 72, 1 << 40)
patch('compress-bit-zlib', '>Q', 72, 1 << 3)
d = patch('compress-type-2', '>Q', 72, 1 << 3)
patch('compress-type-2', '>B', 104, 2, d)
patch('compress-type-no-bit', '>B', 104, 1)
patch('l1-size-huge', '>I', 36, 0x10000000)
patch('l1-offset-unaligned', '>Q', 40, l1_off + 8)
patch('l1-offset-beyond-eof', '>Q', 40, 1 << 40)
patch('l1-too-small', '>Q', 24, 1 << 40)
patch('size-huge', '>Q', 24, 1 << 62)
patch('reftable-clusters-0', '>I', 56, 0)
patch('reftable-clusters-huge', '>I', 56, 0x10000000)
patch('reftable-offset-unaligned', '>Q', 48, rt_off + 512)
patch('reftable-offset-beyond-eof', '>Q', 48, 1 << 40)
d = patch('snapshots-too-many', '>I', 60, 70000)
d = patch('snapshot-offset-unaligned', '>I', 60, 1)
patch('snapshot-offset-unaligned', '>Q', 64, cs + 8, d)
d = patch('snapshot-beyond-eof', '>I', 60, 1)
patch('snapshot-beyond-eof', '>Q', 64, 1 << 40, d)
d = patch('snapshot-truncated', '>I', 60, 2000)
patch('snapshot-truncated', '>Q', 64, len(base) - cs, d)
# A snapshot entry with absurd extra data size at the end of the file.
ent = struct.pack('>QIHHIIQII', l1_off, 1, 1, 1, 0, 0, 0, 0, 0xfffffff0)
tail = bytearray(base) + ent + b'11' + bytes(6)
tail += bytes((-len(tail)) % cs)
snap_off = len(base)
struct.pack_into('>I', tail, 60, 1)
struct.pack_into('>Q', tail, 64, snap_off)
emit('snapshot-extra-huge', bytes(tail))
with_ext('ext-len-overflow', 0xe2792aca, b'qcow2', declared=0x7ffffff0)
with_ext('ext-backing-fmt-long', 0xe2792aca, b'x' * 2000)
with_ext('ext-crypto-short', 0x0537be77, b'\0' * 8)
with_ext('ext-bitmaps-short', 0x23852875, b'\0' * 8)
d = bytearray(base)
struct.pack_into('>Q', d, 72, 1 << 2)
d[hdr_len:cs] = bytes(cs - hdr_len)
emit('data-file-no-name', bytes(d))
patch('extl2-small-clusters', '>Q', 72, 1 << 4, patch('x', '>I', 20, 12))
made.remove('x')
os.unlink(os.path.join(outdir, 'x.qcow2'))
patch('l1-entry-unaligned', '>Q', l1_off, (l2_off + 512) | (1 << 63))
patch('l1-entry-beyond-eof', '>Q', l1_off, (1 << 40) | (1 << 63))
e0 = struct.unpack_from('>Q', base, l2_off)[0]
patch('l2-entry-unaligned', '>Q', l2_off, e0 + 512)
# The compressed cluster at 1 MiB: garbage in its compressed bytes.
ce = struct.unpack_from('>Q', base, l2_off + 16 * 8)[0]
coff = ce & ((1 << (62 - (16 - 8))) - 1)
d = bytearray(base)
d[coff:coff + 64] = b'\xff' * 64
emit('compressed-garbage', bytes(d))
patch('compressed-beyond-eof', '>Q', l2_off + 16 * 8,
      (1 << 62) | (1 << 40) | (3 << (62 - 8)))
emit('truncated-header', base[:50])
emit('truncated-cluster', base[:200])
emit('magic-only', base[:8])
# An L1 entry naming the refcount block as an L2 table: writes through it
# must hit the overlap check.
patch('l2-is-refblock', '>Q', l1_off, (2 * cs))
print('\n'.join(made))
