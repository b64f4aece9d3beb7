#!/bin/bash
# The main job on a small generated image: make a 64 MiB raw disk, write
# recognisable data into it with qimg-io, convert it to qcow2 with qimg,
# show the result with qimg info, and check it with qimg and with the real
# qemu-img (when installed).  Usage: scripts/demo.sh [BUILD_DIR]
set -euo pipefail

BUILD=${1:-build}
QIMG=$(realpath "$BUILD/src/cli/qimg")
QIMG_IO=$(realpath "$BUILD/src/tool/qimg-io")
[ -x "$QIMG" ] && [ -x "$QIMG_IO" ] || { echo "demo: build first (make)" >&2; exit 1; }

DIR=$(mktemp -d "${TMPDIR:-/tmp}/qimg-demo.XXXXXX")
trap 'rm -rf "$DIR"' EXIT
cd "$DIR"

run() { echo "+ $*" | sed "s#$QIMG_IO#qimg-io#; s#$QIMG#qimg#"; "$@"; }

run "$QIMG" create -f raw disk.raw 64M
run "$QIMG_IO" -f raw -c 'write -q -P 0xa5 0 1M' -c 'write -q -P 0x5a 32M 4M' \
    -c 'write -q -P 0x3c 60M 64k' -c 'map' disk.raw
run "$QIMG" convert -f raw -O qcow2 disk.raw disk.qcow2
run "$QIMG" info disk.qcow2
run "$QIMG_IO" -r -f qcow2 -c 'read -P 0xa5 0 1M' -c 'read -P 0x5a 32M 4M' \
    -c 'read -P 0 40M 1M' -c 'map' disk.qcow2
run "$QIMG" compare -f raw -F qcow2 disk.raw disk.qcow2
if command -v qemu-img >/dev/null; then
    run qemu-img check -f qcow2 disk.qcow2
    run qemu-img compare -f raw -F qcow2 disk.raw disk.qcow2
fi
echo "demo: OK"
