#!/usr/bin/env python3
"""Build bochs, cloop and dmg images from a raw file, following each
format's published layout, plus deliberately malformed variants for the
hostile-input tests.  qemu-img cannot create these formats, so the tests
make their own and compare what qimg reads with the raw source.

usage: mkimg.py FORMAT RAW OUT [VARIANT]
  FORMAT  bochs | cloop | dmg-rsrc | dmg-xml
  VARIANT good (default) or a malformation named in BAD[FORMAT]
"""
import base64
import bz2
import struct
import sys
import zlib

SECTOR = 512


def chunks_of(data, size):
    return [data[i:i + size] for i in range(0, len(data), size)]


# ---------------------------------------------------------------- bochs
def bochs(raw, variant):
    extent = 4096
    nextents = (len(raw) + extent - 1) // extent
    catalog = [0xffffffff] * nextents
    body = b""
    allocated = 0
    for i, ext in enumerate(chunks_of(raw, extent)):
        if not ext.strip(b"\0"):
            continue
        ext = ext.ljust(extent, b"\0")
        bitmap = bytearray(SECTOR)
        for s in range(extent // SECTOR):
            if ext[s * SECTOR:(s + 1) * SECTOR].strip(b"\0"):
                bitmap[s // 8] |= 1 << (s % 8)
        catalog[i] = allocated
        allocated += 1
        body += bytes(bitmap) + ext
    entries = nextents
    disk = len(raw)
    header_size = SECTOR
    magic = b"Bochs Virtual HD Image"
    if variant == "bad-magic":
        magic = b"Bochs Virtual XX Image"
    if variant == "catalog-huge":
        entries = 0x200000
    if variant == "extent-not-pow2":
        extent = 3000
    if variant == "catalog-small":
        entries = 1
    if variant == "catalog-past-end":
        header_size = 1 << 30
    if variant == "extent-past-end":
        catalog[0] = 0x7ffffff0
    hdr = struct.pack("<32s16s16sIIIII", magic, b"Redolog", b"Growing",
                      0x00020000, header_size, entries, SECTOR, extent)
    hdr += struct.pack("<IQ", 0, disk)
    hdr = hdr.ljust(SECTOR, b"\0")
    cat = b"".join(struct.pack("<I", c) for c in catalog)
    out = hdr + cat + body
    if variant == "truncated":
        out = out[:300]
    return out


# ---------------------------------------------------------------- cloop
CLOOP_MAGIC = (b"#!/bin/sh\n#V2.0 Format\n"
               b"modprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n")


def cloop(raw, variant):
    bs = 65536
    blocks = [c.ljust(bs, b"\0") for c in chunks_of(raw, bs)]
    comp = [zlib.compress(b, 9) for b in blocks]
    table_off = 136
    data_off = table_off + 8 * (len(blocks) + 1)
    offsets = [data_off]
    for c in comp:
        offsets.append(offsets[-1] + len(c))
    n = len(blocks)
    if variant == "block-size-odd":
        bs = 1000
    if variant == "too-many-blocks":
        n = 0x10000000
    if variant == "not-monotonic" and len(offsets) > 2:
        offsets[1], offsets[2] = offsets[2], offsets[1]
    if variant == "past-end":
        offsets[-1] += 1 << 20
    if variant == "bad-zlib":
        comp[0] = b"\xff" * len(comp[0])
    pre = CLOOP_MAGIC.ljust(128, b"\0")
    out = pre + struct.pack(">II", bs, n)
    out += b"".join(struct.pack(">Q", o) for o in offsets) + b"".join(comp)
    if variant == "truncated":
        out = out[:140]
    return out


# ---------------------------------------------------------------- dmg
UDZE, UDRW, UDZO, UDBZ, ULFO, UDCM, UDLE = (0, 1, 0x80000005, 0x80000006,
                                            0x80000007, 0x7ffffffe, 0xffffffff)


def dmg_mish(raw, variant):
    """Data fork and one mish block for `raw`: 64 KiB chunks cycling through
    zero (for all-zero runs), raw, zlib and bzip2."""
    csize = 65536
    fork = b""
    entries = []
    kinds = [UDZO, UDRW, UDBZ]
    for i, c in enumerate(chunks_of(raw, csize)):
        sector = i * csize // SECTOR
        count = (len(c) + SECTOR - 1) // SECTOR
        c = c.ljust(count * SECTOR, b"\0")
        if not c.strip(b"\0"):
            entries.append((UDZE, sector, count, len(fork), 0))
            continue
        kind = kinds[i % len(kinds)]
        if variant == "lzfse" and i == 0:
            kind = ULFO
        if kind == UDZO:
            blob = zlib.compress(c)
        elif kind == UDBZ:
            blob = bz2.compress(c)
        else:
            blob = c
        entries.append((kind, sector, count, len(fork), len(blob)))
        fork += blob
    if variant == "chunk-past-end":
        k, s, n, o, l = entries[0]
        entries[0] = (k if k != UDZE else UDRW, s, n, o + (1 << 30), max(l, 1))
    if variant == "chunk-too-long":
        k, s, n, o, l = entries[0]
        entries[0] = (UDRW, s, n, o, 1 << 30)
    if variant == "overlap" and len(entries) > 1:
        k, s, n, o, l = entries[1]
        entries[1] = (k, s - 1, n, o, l)
    entries.append((UDCM, 0, 0, 0, 0))
    entries.append((UDLE, len(raw) // SECTOR, 0, len(fork), 0))
    total = len(raw) // SECTOR
    m = struct.pack(">4sIQQQII", b"mish", 1, 0, total, 0, 0, len(entries))
    m = m.ljust(200, b"\0") + struct.pack(">I", len(entries))
    for k, s, n, o, l in entries:
        m += struct.pack(">IIQQQQ", k, 0, s, n, o, l)
    return fork, m


def koly(data_len, rsrc_off, rsrc_len, xml_off, xml_len, sectors):
    k = bytearray(512)
    struct.pack_into(">4sIII", k, 0, b"koly", 4, 512, 1)
    struct.pack_into(">QQQQQ", k, 0x10, 0, 0, data_len, rsrc_off, rsrc_len)
    struct.pack_into(">QQ", k, 0xd8, xml_off, xml_len)
    struct.pack_into(">Q", k, 0x1ec, sectors)
    return bytes(k)


def dmg(raw, variant, use_xml):
    fork, mish = dmg_mish(raw, variant)
    sectors = len(raw) // SECTOR
    if use_xml:
        b64 = base64.b64encode(mish).decode()
        lines = "\n".join("\t\t\t" + b64[i:i + 52]
                          for i in range(0, len(b64), 52))
        xml = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<plist><dict>"
               "<key>resource-fork</key><dict><key>blkx</key><array><dict>"
               "<key>Data</key>\n\t\t<data>\n%s\n\t\t</data>\n"
               "</dict></array></dict></dict></plist>\n" % lines).encode()
        if variant == "xml-unterminated":
            xml = xml.replace(b"</data>", b"")
        xml_off = len(fork)
        body = fork + xml
        k = koly(len(fork), 0, 0, xml_off, len(xml), sectors)
    else:
        res = struct.pack(">I", len(mish)) + mish
        hdr = struct.pack(">IIII", 16, 16 + len(res), len(res), 0)
        if variant == "rsrc-bad-length":
            hdr = struct.pack(">IIII", 16, 16 + len(res), len(res) + 4096, 0)
        rsrc = hdr + res
        rsrc_off = len(fork)
        body = fork + rsrc
        k = koly(len(fork), rsrc_off, len(rsrc), 0, 0, sectors)
    if variant == "no-koly":
        k = b"\0" * 512
    if variant == "rsrc-past-end":
        k = koly(len(fork), 1 << 40, 16, 0, 0, sectors)
    out = body + k
    if variant == "truncated":
        out = out[:100]
    return out


def main():
    fmt, src, dst = sys.argv[1:4]
    variant = sys.argv[4] if len(sys.argv) > 4 else "good"
    raw = open(src, "rb").read()
    if fmt == "bochs":
        out = bochs(raw, variant)
    elif fmt == "cloop":
        out = cloop(raw, variant)
    elif fmt == "dmg-rsrc":
        out = dmg(raw, variant, False)
    elif fmt == "dmg-xml":
        out = dmg(raw, variant, True)
    else:
        sys.exit("unknown format " + fmt)
    open(dst, "wb").write(out)


if __name__ == "__main__":
    main()
