#!/usr/bin/env python3
"""Build a VDI 1.1 image the way VirtualBox lays it out, with any block
size (VirtualBox's AllocationBlockSize property), from a raw file.  qemu-img
creates only 1 MiB blocks and refuses to open the others, so the tests make
their own.

Layout: pre-header (text, signature 0xbeda107f, version 1.1), header
(size 0x190, type 1 dynamic / 2 static, block map and data offsets aligned
to 1 MiB as VirtualBox aligns them, legacy geometry, disk size, block size,
block extra 0, blocks, blocks allocated, creation and modification UUIDs,
null link and parent UUIDs, LCHS geometry), the block map (32-bit entries,
0xffffffff unallocated), then the blocks.  Dynamic images store only
non-zero blocks, in reverse order of their place on the disk, so the map
is exercised.

usage: mkvdi.py RAW OUT BLOCK_SIZE [dynamic|static]
"""
import struct
import sys
import uuid

ALIGN = 1 << 20


def align(v, a):
    return (v + a - 1) // a * a


def main():
    raw = open(sys.argv[1], "rb").read()
    out, bsize = sys.argv[2], int(sys.argv[3], 0)
    static = len(sys.argv) > 4 and sys.argv[4] == "static"
    disk = len(raw)
    blocks = (disk + bsize - 1) // bsize
    chunks = [raw[i * bsize:(i + 1) * bsize].ljust(bsize, b"\0")
              for i in range(blocks)]
    if static:
        order = list(range(blocks))
    else:
        order = [i for i in reversed(range(blocks)) if chunks[i].strip(b"\0")]
    bmap = [0xffffffff] * blocks
    for n, i in enumerate(order):
        bmap[i] = n
    off_bmap = ALIGN
    off_data = align(off_bmap + 4 * blocks, ALIGN)
    hdr = bytearray(512)
    hdr[0:64] = b"<<< Oracle VM VirtualBox Disk Image >>>\n".ljust(64, b"\0")
    struct.pack_into("<III", hdr, 0x40, 0xbeda107f, 0x00010001, 0x190)
    struct.pack_into("<II", hdr, 0x4c, 2 if static else 1, 0)
    struct.pack_into("<II", hdr, 0x154, off_bmap, off_data)
    struct.pack_into("<IIII", hdr, 0x15c, 0, 0, 0, 512)
    struct.pack_into("<QIIII", hdr, 0x170, disk, bsize, 0, blocks, len(order))
    hdr[0x188:0x198] = uuid.uuid4().bytes
    hdr[0x198:0x1a8] = uuid.uuid4().bytes
    cyl = max(1, min(disk // (16 * 63 * 512), 16383))
    struct.pack_into("<IIII", hdr, 0x1c8, cyl, 16, 63, 512)
    with open(out, "wb") as f:
        f.write(hdr)
        f.seek(off_bmap)
        f.write(struct.pack("<%dI" % blocks, *bmap))
        f.truncate(off_data)
        for n, i in enumerate(order):
            f.seek(off_data + n * bsize)
            f.write(chunks[i])


if __name__ == "__main__":
    main()
