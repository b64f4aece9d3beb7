#!/bin/bash
# --object secret definitions (data, file, base64) and their errors, as
# create, info and resize accept them, compared with qemu-img.
. "$(dirname "$0")/../lib.sh"

"$QEMU_IMG" create -q -f raw a.raw 1M
printf 'secret-from-file' > pw.txt
same_as_qemu_setup() { rm -f x.raw; }
for obj in "secret,id=s,data=x" "secret,id=s,file=pw.txt" \
    "secret,id=s,data=c2VjcmV0,format=base64" "secret,id=s,data=x,format=raw" \
    "secret,id=s" "secret,data=x" "secret,id=s,data=x,file=pw.txt" \
    "secret,id=s,file=/nonexist/pw" "secret,id=s,data=x,format=hex" \
    "secret,id=s,data=%%%,format=base64" "secret,id=s,data=x,foo=bar" \
    "secret,id=s,data=x,keyid=nosuch" "foo" "iothread,id=x" "help" "secret,help" \
    "id=s,data=x"; do
    same_as_qemu create --object "$obj" -f raw x.raw 1k
    same_as_qemu info --object "$obj" a.raw
done
same_as_qemu create --object secret,id=s,data=x --object secret,id=s,data=y -f raw x.raw 1k
same_as_qemu info --object secret,id=s,data=x --object secret,id=t,data=y a.raw
finish
