/* qcow2 compression: zlib (raw deflate, 4 KiB window, as the spec's
 * readers expect) and zstd (one frame per cluster).  Decompression stops
 * once a whole cluster is produced, since the compressed data may be
 * followed by unrelated bytes of the same sector. */
#include "fmt/qcow2/qcow2.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <zlib.h>
#include <zstd.h>

#include "config.h"
#include "util/inflate.h"
#if HAVE_ISAL
#include <isa-l/igzip_lib.h>
#endif

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
        return inflate_cluster(in, in_len, out, out_len);
    if (type == QCOW2_COMPRESS_ZSTD)
        return zstd_decompress(in, in_len, out, out_len);
    return -ENOTSUP;
}

#if HAVE_ISAL
/* Whether ISA-L's level-1 deflate with a 4 KiB window fits `in` into
 * `cap` bytes. */
static bool isal_fits(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
    static __thread uint8_t level_buf[ISAL_DEF_LVL1_SMALL];
    struct isal_zstream z;
    isal_deflate_stateless_init(&z);
    z.next_in = (uint8_t *)in;
    z.avail_in = (uint32_t)len;
    z.next_out = out;
    z.avail_out = (uint32_t)cap;
    z.level = 1;
    z.level_buf = level_buf;
    z.level_buf_size = sizeof(level_buf);
    z.hist_bits = 12;
    z.end_of_stream = 1;
    z.flush = NO_FLUSH;
    z.gzip_flag = IGZIP_DEFLATE;
    int r = isal_deflate_stateless(&z);
#if defined(__x86_64__)
    /* ISA-L leaves the upper halves of the AVX registers dirty; without
     * clearing them, zlib's SSE code afterwards runs half as fast. */
    if (__builtin_cpu_supports("avx"))
        __asm__ volatile("vzeroupper");
#endif
    return r == COMP_OK;    /* else: overflow */
}
#endif

/* A cluster that even a fast deflate pass with the same 4 KiB window
 * cannot shrink below `cap` (random or already compressed data) is not
 * worth zlib's much slower search: it would be stored uncompressed anyway.
 * ISA-L answers that at several hundred MB/s on such data.  Its first
 * 4 KiB are tried first: when they shrink, the cluster goes straight to
 * zlib, so compressible data pays almost nothing for the screening and
 * compressed clusters keep zlib's ratio.  Without ISA-L every cluster goes
 * to zlib. */
static bool zlib_may_shrink(const uint8_t *in, size_t in_len, uint8_t *out,
                            size_t out_cap)
{
#if HAVE_ISAL
    const size_t probe = 4096;
    if (in_len > UINT32_MAX || out_cap > UINT32_MAX)
        return true;
    if (in_len > 2 * probe && out_cap >= probe &&
        isal_fits(in, probe, out, probe - probe / 64))
        return true;
    return isal_fits(in, in_len, out, out_cap);
#else
    (void)in; (void)in_len; (void)out; (void)out_cap;
    return true;
#endif
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
    if (!zlib_may_shrink(in, in_len, out, out_cap))
        return -ENOSPC;
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
