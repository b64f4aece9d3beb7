#!/usr/bin/env python3
"""Print the persistent bitmaps of a qcow2 image: name, flags, granularity
and a digest of the dirty bits (data read through the bitmap tables)."""
import hashlib
import struct
import sys

f = open(sys.argv[1], 'rb')
d = f.read()
cs = 1 << struct.unpack('>I', d[20:24])[0]
size = struct.unpack('>Q', d[24:32])[0]
hlen = struct.unpack('>I', d[100:104])[0] if struct.unpack('>I', d[4:8])[0] >= 3 else 72
pos = hlen
ext = None
while pos + 8 <= cs:
    t, ln = struct.unpack('>II', d[pos:pos + 8])
    if t == 0:
        break
    if t == 0x23852875:
        ext = struct.unpack('>IIQQ', d[pos + 8:pos + 32])
    pos += 8 + (ln + 7) // 8 * 8
if not ext:
    print('no bitmaps')
    sys.exit(0)
n, _, dsize, doff = ext
p = doff
for _ in range(n):
    toff, tsize, flags = struct.unpack('>QII', d[p:p + 16])
    gbits = d[p + 17]
    nlen, extra = struct.unpack('>HI', d[p + 18:p + 24])
    name = d[p + 24 + extra:p + 24 + extra + nlen].decode()
    p += (24 + extra + nlen + 7) // 8 * 8
    nbytes = ((size + (1 << gbits) - 1) >> gbits) // 8 + 1
    bits = bytearray()
    for i in range(tsize):
        e = struct.unpack('>Q', d[toff + 8 * i:toff + 8 * i + 8])[0]
        off = e & 0x00fffffffffffe00
        bits += d[off:off + cs] if off else (b'\xff' if e & 1 else b'\0') * cs
    bits = bytes(bits[:nbytes])
    print(name, flags, gbits, hashlib.sha1(bits).hexdigest(), sum(bin(b).count('1') for b in bits))
