/* qcow2 compression: zlib (raw deflate, 4 KiB window, as the spec's
 * readers expect) and zstd (one frame per cluster).  Decompression stops
 * once a whole cluster is produced, since the compressed data may be
 * followed by unrelated bytes of the same sector. */
#include "fmt/qcow2/qcow2.h"

#include <errno.h>
#include <zlib.h>
#include <zstd.h>

static int zlib_decompress(const uint8_t *in, size_t in_len, uint8_t *out,
                           size_t out_len)
{
    z_stream z = { 0 };
    if (inflateInit2(&z, -12) != Z_OK)
        return -ENOMEM;
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)in_len;
    z.next_out = out;
    z.avail_out = (uInt)out_len;
    int r = inflate(&z, Z_FINISH);
    size_t got = out_len - z.avail_out;
    inflateEnd(&z);
    if ((r != Z_STREAM_END && r != Z_BUF_ERROR && r != Z_OK) || got != out_len)
        return -EIO;
    return 0;
}

static int zstd_decompress(const uint8_t *in, size_t in_len, uint8_t *out,
                           size_t out_len)
{
    ZSTD_DCtx *d = ZSTD_createDCtx();
    if (!d)
        return -ENOMEM;
    ZSTD_inBuffer ib = { in, in_len, 0 };
    ZSTD_outBuffer ob = { out, out_len, 0 };
    int ret = 0;
    while (ob.pos < ob.size) {
        size_t r = ZSTD_decompressStream(d, &ob, &ib);
        if (ZSTD_isError(r)) {
            ret = -EIO;
            break;
        }
        if (r == 0 || ib.pos == ib.size) {
            /* Frame complete (or input exhausted) before the cluster. */
            if (ob.pos < ob.size)
                ret = -EIO;
            break;
        }
    }
    ZSTD_freeDCtx(d);
    return ret;
}

int qcow2_decompress(int type, const uint8_t *in, size_t in_len,
                     uint8_t *out, size_t out_len)
{
    if (type == QCOW2_COMPRESS_ZLIB)
        return zlib_decompress(in, in_len, out, out_len);
    if (type == QCOW2_COMPRESS_ZSTD)
        return zstd_decompress(in, in_len, out, out_len);
    return -ENOTSUP;
}

long qcow2_compress(int type, const uint8_t *in, size_t in_len, uint8_t *out,
                    size_t out_cap)
{
    if (type == QCOW2_COMPRESS_ZSTD) {
        size_t r = ZSTD_compress(out, out_cap, in, in_len, ZSTD_CLEVEL_DEFAULT);
        if (ZSTD_isError(r))
            return -ENOSPC;   /* in practice: does not fit */
        return (long)r;
    }
    if (type != QCOW2_COMPRESS_ZLIB)
        return -ENOTSUP;
    z_stream z = { 0 };
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -12, 9,
                     Z_DEFAULT_STRATEGY) != Z_OK)
        return -ENOMEM;
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)in_len;
    z.next_out = out;
    z.avail_out = (uInt)out_cap;
    int r = deflate(&z, Z_FINISH);
    long n = (long)(out_cap - z.avail_out);
    deflateEnd(&z);
    if (r != Z_STREAM_END)
        return -ENOSPC;
    return n;
}
