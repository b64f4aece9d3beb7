#!/usr/bin/env python3
"""Make a VHDX image's log dirty again: point the current header's log GUID
at the entries left in the log and damage the BAT entries the log rewrites,
so only a log replay restores the image.  Usage: vhdx-dirty-log.py IMG"""
import struct
import sys


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def main():
    path = sys.argv[1]
    with open(path, 'r+b') as f:
        hdrs = []
        for off in (64 * 1024, 128 * 1024):
            f.seek(off)
            hdrs.append((off, bytearray(f.read(4096))))
        off, h = max(hdrs, key=lambda x: struct.unpack_from('<Q', x[1], 8)[0])
        log_len, log_off = struct.unpack_from('<IQ', h, 68)
        f.seek(log_off)
        entry = f.read(4096)
        assert entry[:4] == b'loge', 'no log entry to revive'
        h[48:64] = entry[32:48]
        h[4:8] = b'\0\0\0\0'
        struct.pack_into('<I', h, 4, crc32c(bytes(h)))
        f.seek(off)
        f.write(h)
        # Damage every 4 KiB sector the first entry's descriptors target.
        ndesc = struct.unpack_from('<I', entry, 24)[0]
        for d in range(ndesc):
            sig, = struct.unpack_from('<I', entry, 64 + 32 * d)
            target, = struct.unpack_from('<Q', entry, 64 + 32 * d + 16)
            if sig == 0x63736564:
                f.seek(target)
                f.write(b'\0' * 4096)


main()
