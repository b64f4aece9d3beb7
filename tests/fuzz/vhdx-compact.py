#!/usr/bin/env python3
"""Convert a vhdx image in qemu-img's layout (log at 1 MiB, BAT at 2 MiB,
metadata at 3 MiB, payload from 4 MiB) to the compact input form the
fuzz-vhdx target expands.  Usage: vhdx-compact.py IMG OUT [PAYLOAD_BYTES]"""
import sys

KB, MB = 1024, 1024 * 1024
SEGS = [(0, 4 * KB), (64 * KB, 4 * KB), (128 * KB, 4 * KB), (192 * KB, 4 * KB),
        (256 * KB, 4 * KB), (MB, 8 * KB), (2 * MB, 4 * KB), (3 * MB, 4 * KB),
        (3 * MB + 64 * KB, 4 * KB), (2 * MB + 32 * KB, 4 * KB)]
data = open(sys.argv[1], 'rb').read()
out = b''.join(data[o:o + n].ljust(n, b'\0') for o, n in SEGS)
payload = int(sys.argv[3]) if len(sys.argv) > 3 else 0
out += data[4 * MB:4 * MB + payload]
open(sys.argv[2], 'wb').write(out)
