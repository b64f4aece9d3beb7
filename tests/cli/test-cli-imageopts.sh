#!/bin/bash
# --image-opts option strings and json: file names (nested file. and
# backing. keys), as info and resize read them, compared with qemu-img.
. "$(dirname "$0")/../lib.sh"

"$QEMU_IMG" create -q -f raw a.raw 1M
"$QEMU_IMG" create -q -f qcow2 base.qcow2 1M
"$QEMU_IMG" create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2
mkdir d && "$QEMU_IMG" create -q -f raw 'd/x,y.raw' 64k

for args in \
    "--image-opts driver=raw,file.filename=a.raw" \
    "--image-opts driver=raw,file.driver=file,file.filename=a.raw" \
    "--image-opts file.filename=a.raw" \
    "--image-opts driver=file,filename=a.raw" \
    "--image-opts driver=file,filename=a.raw,locking=off" \
    "--image-opts driver=raw,file.filename=a.raw,file.locking=off" \
    "--image-opts driver=raw,file.filename=a.raw,file.aio=threads" \
    "--image-opts driver=raw,file.filename=a.raw,offset=512" \
    "--image-opts driver=raw,file.filename=a.raw,size=512" \
    "--image-opts driver=raw,file.filename=a.raw,offset=512,size=1024" \
    "--image-opts file.filename=a.raw,size=512" \
    "--image-opts driver=raw,file.filename=d/x,,y.raw" \
    "--image-opts driver=raw,file.filename=a.raw,offset=abc" \
    "--image-opts driver=raw,file.filename=a.raw,offset=2M" \
    "--image-opts driver=raw,file.filename=a.raw,bogus=1" \
    "--image-opts driver=raw" \
    "--image-opts driver=nosuch,file.filename=a.raw" \
    "--image-opts driver=raw,file.filename=nonexist" \
    "--image-opts -f raw driver=raw,file.filename=a.raw" \
    "--image-opts driver=qcow2,file.filename=top.qcow2" \
    "--backing-chain --image-opts driver=qcow2,file.filename=top.qcow2" \
    "--output=json --backing-chain --image-opts driver=qcow2,file.filename=top.qcow2" \
    "json:{\"driver\":\"raw\",\"file\":{\"driver\":\"file\",\"filename\":\"a.raw\"}}" \
    "json:{\"file\":{\"filename\":\"a.raw\"}}" \
    "json:{\"file.filename\":\"a.raw\"}" \
    "json:{\"driver\":\"raw\",\"offset\":512,\"file\":{\"filename\":\"a.raw\"}}" \
    "json:{\"driver\":\"raw\",\"size\":\"4096\",\"file\":{\"filename\":\"a.raw\"}}" \
    "json:{\"driver\":\"qcow2\",\"file\":{\"driver\":\"file\",\"filename\":\"top.qcow2\"}}" \
    "--backing-chain json:{\"driver\":\"qcow2\",\"file\":{\"filename\":\"top.qcow2\"}}" \
    "json:{\"driver\":\"raw\"" "json:[1]" "json:{}"; do
    # shellcheck disable=SC2086
    same_as_qemu info $args
done

same_as_qemu_setup() { rm -f r.raw; "$QEMU_IMG" create -q -f raw r.raw 1M; }
for args in "--image-opts driver=raw,file.filename=r.raw 2M" \
    "--image-opts driver=raw,file.filename=r.raw,offset=512 +1k" \
    "--image-opts driver=raw,file.filename=r.raw,size=4096 2M" \
    "--image-opts driver=file,filename=r.raw 3M" \
    "json:{\"driver\":\"raw\",\"file\":{\"filename\":\"r.raw\"}} 2M" \
    "json:{\"driver\":\"raw\",\"offset\":4096,\"file\":{\"filename\":\"r.raw\"}} 1M"; do
    # shellcheck disable=SC2086
    same_as_qemu resize $args
done
finish
