#!/bin/bash
# info on raw images: human and JSON, options, json: and --image-opts names.
. "$(dirname "$0")/../lib.sh"

"$QEMU_IMG" create -q -f raw a.raw 1M
printf 'data' | dd of=a.raw conv=notrunc status=none
"$QEMU_IMG" create -q -f raw big.raw 3G
"$QEMU_IMG" create -q -f raw odd.raw 1536
: > empty.raw
for f in a.raw big.raw odd.raw empty.raw; do
    same_as_qemu info "$f"
    same_as_qemu info -f raw "$f"
    same_as_qemu info --output=json "$f"
    same_as_qemu info --output json -f raw "$f"
    same_as_qemu info --output=human -U "$f"
    same_as_qemu info --backing-chain "$f"
    same_as_qemu info --backing-chain --output=json "$f"
    same_as_qemu info -f file "$f"
    same_as_qemu info -f file --output=json "$f"
done
same_as_qemu info --image-opts driver=raw,file.filename=a.raw
same_as_qemu info --image-opts driver=file,filename=a.raw
same_as_qemu info --output=json --image-opts driver=raw,file.driver=file,file.filename=a.raw
same_as_qemu info 'json:{"driver":"raw","file":{"driver":"file","filename":"a.raw"}}'
same_as_qemu info 'json:{"file":{"driver":"file","filename":"a.raw"}}'
same_as_qemu info --output=json 'json:{"driver":"raw","file":{"filename":"a.raw"}}'
same_as_qemu info --image-opts driver=raw,file.filename=nonexist
same_as_qemu info --object secret,id=s,data=x a.raw
mkdir sub && cp a.raw sub/
same_as_qemu info sub/a.raw
same_as_qemu info "$T/sub/a.raw"
finish
