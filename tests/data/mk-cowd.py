#!/usr/bin/env python3
"""Write a small VMware 3 (COWD) sparse image, the format qemu-img reads
but cannot create: 2 MiB, 8 KiB grains, a few grains filled with a
pattern.  Usage: mk-cowd.py OUT"""
import struct
import sys

SECTOR = 512
GRAIN = 16                      # sectors
DISK = 4096                     # sectors
GT_ENTRIES = 4096
gd_off, gt_off = 4, 8           # sectors
data_off = gt_off + GT_ENTRIES * 4 // SECTOR

hdr = bytearray(SECTOR)
struct.pack_into('<4sIIIIIII', hdr, 0, b'COWD', 1, 3, DISK, GRAIN, gd_off, 1,
                 0)
img = bytearray(data_off * SECTOR)
img[:SECTOR] = hdr
# qemu-img looks for the content IDs as text in the second sector.
desc = b'CID=12345678\nparentCID=ffffffff\n'
img[SECTOR:SECTOR + len(desc)] = desc
struct.pack_into('<I', img, gd_off * SECTOR, gt_off)
next_sector = data_off
for grain, byte in ((0, 0x11), (5, 0x55), (255, 0xff)):
    struct.pack_into('<I', img, gt_off * SECTOR + 4 * grain, next_sector)
    img += bytes([byte]) * (GRAIN * SECTOR)
    next_sector += GRAIN
open(sys.argv[1], 'wb').write(img)
