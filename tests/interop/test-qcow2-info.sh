#!/bin/bash
# qcow2 create and info: "Formatting" lines, option errors and -o help as
# qemu-img prints them; info (human and JSON) identical to qemu-img's on
# images with every format-specific feature, made by either tool.
. "$(dirname "$0")/../lib.sh"

same_as_qemu_setup() { rm -f c.qcow2 d.raw; }
same_as_qemu create -f qcow2 -o help
same_as_qemu create -f qcow2 c.qcow2 1G
same_as_qemu create -f qcow2 c.qcow2 1000
same_as_qemu create -f qcow2 c.qcow2 0
for o in compat=0.10 compat=1.1 compat=v3 compat=0.9 cluster_size=512 cluster_size=2M \
         cluster_size=4M cluster_size=3000 cluster_size=abc refcount_bits=1 refcount_bits=64 \
         refcount_bits=3 refcount_bits=128 refcount_bits=abc compat=0.10,refcount_bits=8 \
         extended_l2=on extended_l2=on,cluster_size=8k compat=0.10,extended_l2=on \
         lazy_refcounts=on compat=0.10,lazy_refcounts=on lazy_refcounts=maybe \
         compression_type=zstd compression_type=lz4 compat=0.10,compression_type=zstd \
         preallocation=metadata preallocation=falloc preallocation=full preallocation=foo \
         data_file=d.raw data_file=d.raw,data_file_raw=on data_file_raw=on \
         data_file=d.raw,compat=0.10 backing_fmt=raw encrypt.format=foo \
         encryption=on,encrypt.format=luks encrypt.format=luks \
         cluster_size=4k,lazy_refcounts=on,extended_l2=on,compression_type=zstd,refcount_bits=64 \
         compat=1.1,preallocation=metadata,cluster_size=64k,refcount_bits=16,lazy_refcounts=on,extended_l2=off,compression_type=zlib; do
    same_as_qemu create -f qcow2 -o "$o" c.qcow2 1M
done
same_as_qemu create -f qcow2 -o cluster_size=512 c.qcow2 300G
"$QEMU_IMG" create -q -f qcow2 base.qcow2 1M
same_as_qemu create -f qcow2 -b base.qcow2 -F qcow2 c.qcow2
same_as_qemu create -f qcow2 -b base.qcow2 -F qcow2 -o preallocation=metadata c.qcow2
same_as_qemu create -f qcow2 -o backing_file=base.qcow2,backing_fmt=qcow2,data_file=d.raw,data_file_raw=on c.qcow2
unset -f same_as_qemu_setup

# info on images made by qemu-img with each feature.
mk() { local n=$1; shift; "$QEMU_IMG" create -q -f qcow2 "$@" "$n" 1M || fail "create $n"; }
mk v2.qcow2 -o compat=0.10
mk v3.qcow2
mk rich.qcow2 -o data_file=rich.raw,data_file_raw=on,lazy_refcounts=on,compression_type=zstd,extended_l2=on
mk df.qcow2 -o data_file=df.raw
mk r1.qcow2 -o refcount_bits=1,cluster_size=512
mk c2m.qcow2 -o cluster_size=2M,refcount_bits=64
mk bm.qcow2
"$QEMU_IMG" bitmap --add bm.qcow2 first
"$QEMU_IMG" bitmap --add -g 128k bm.qcow2 second
"$QEMU_IMG" bitmap --disable bm.qcow2 second
"$QEMU_IMG" create -q -f qcow2 --object secret,id=s,data=pw \
    -o encrypt.format=aes,encrypt.key-secret=s aes.qcow2 1M
mk chain.qcow2 -b v3.qcow2 -F qcow2
"$QEMU_IO" -c "write -P 1 0 64k" chain.qcow2 >/dev/null
"$QEMU_IMG" snapshot -c first chain.qcow2
"$QEMU_IO" -c "write -P 2 0 128k" chain.qcow2 >/dev/null
"$QEMU_IMG" snapshot -c second chain.qcow2
cp v3.qcow2 corrupt.qcow2
printf '\x02' | dd of=corrupt.qcow2 bs=1 seek=79 conv=notrunc status=none
cp v3.qcow2 dirty.qcow2
printf '\x01' | dd of=dirty.qcow2 bs=1 seek=79 conv=notrunc status=none

# And images made by qimg.
"$QIMG" create -q -f qcow2 -o extended_l2=on,compression_type=zstd q1.qcow2 5M
"$QIMG" create -q -f qcow2 -o compat=0.10,cluster_size=4k q2.qcow2 5M
"$QIMG" create -q -f qcow2 -b q1.qcow2 -F qcow2 -o data_file=q3.raw q3.qcow2
"$QIMG_IO" -f qcow2 -c "write -P 3 0 1M" -c "write -c -P 4 2M 64k" q1.qcow2 >/dev/null

for i in v2 v3 rich df r1 c2m bm aes chain corrupt dirty q1 q2 q3; do
    same_as_qemu info $i.qcow2
    same_as_qemu info --output=json $i.qcow2
done
same_as_qemu info --backing-chain chain.qcow2
same_as_qemu info -f qcow2 --output=json --backing-chain q3.qcow2
finish
