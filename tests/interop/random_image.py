"""Write a raw image of runs of random data, written zeros and holes.

    random_image.py SEED PATH

The same SEED gives the same layout (the data bytes are random each time).
Runs are 512 bytes to 1 MiB, so they start and end inside the copy
engine's 512 KiB pieces and 2 MiB requests and at every alignment."""
import os
import random
import sys

seed, path = int(sys.argv[1]), sys.argv[2]
rnd = random.Random(seed)
size = rnd.choice([3, 5, 7]) * (1 << 20) + rnd.choice([0, 512, 4096, 65536])
with open(path, 'wb') as f:
    f.truncate(size)
    pos = 0
    while pos < size:
        run = min(rnd.choice([512, 1024, 4096, 8192, 65536, 300032, 1 << 20]),
                  size - pos)
        kind = rnd.random()
        if kind < 0.5:
            f.seek(pos)
            f.write(os.urandom(run))
        elif kind < 0.75:
            f.seek(pos)
            f.write(b'\0' * run)
        pos += run
