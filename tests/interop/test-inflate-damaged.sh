#!/bin/bash
# Damaged deflate data in compressed qcow2 and qcow clusters: convert and
# compare fail as qemu-img's do (message and exit code), intact clusters
# still read, and the image is left as it was.
. "$(dirname "$0")/../lib.sh"

# Text compresses well, so every cluster is stored compressed.
python3 -c '
import random
r = random.Random(7)
w = ["".join(r.choice("abcdefghij") for _ in range(r.randint(2, 8))) for _ in range(300)]
open("t.raw", "w").write("".join(" ".join(r.choices(w, k=10)) + "\n" for _ in range(20000))[:1 << 20])
'
$QEMU_IMG convert -f raw -O qcow2 -c t.raw c.qcow2 || fail "qemu-img -c"
# qemu-img 7.2 cannot finish a compressed qcow conversion; qimg makes it.
$QIMG convert -f raw -O qcow -c t.raw c.qcow || fail "qimg -c qcow"
images_equal c.qcow t.raw qcow raw || check_fail "intact qcow differs"

damage() { # damage IN OUT: flip 64 bytes three quarters into the file
    python3 - "$1" "$2" <<'PY'
import sys
d = bytearray(open(sys.argv[1], 'rb').read())
mid = len(d) * 3 // 4
for i in range(mid, mid + 64):
    d[i] ^= 0x5a
open(sys.argv[2], 'wb').write(d)
PY
}

for img in c.qcow2 c.qcow; do
    damage $img bad-$img
    truncate -s $(( $(stat -c %s $img) * 3 / 4 )) cut-$img
    dd if=$img of=cut-$img conv=notrunc status=none count=$(( $(stat -c %s $img) * 3 / 4 / 512 ))
    # A qcow cut short fails in block status where qemu-img fails reading
    # (its table reads past the end give zeros), so only qcow2 is cut.
    cases="bad-$img"
    [ $img = c.qcow2 ] && cases+=" cut-$img"
    for b in $cases; do
        sum=$(md5sum < $b)
        # One request at a time: qemu-img's parallel requests may each
        # report an error line.
        same_as_qemu convert -m 1 -O raw $b out.raw
        same_as_qemu compare t.raw $b
        same_as_qemu compare --image-opts driver=raw,file.filename=t.raw \
            "driver=${img#c.},file.filename=$b"
        expect_eq "$b left as it was" "$sum" "$(md5sum < $b)"
    done
done
finish
