/* inflate_cluster: ISA-L when it is built in (about 1.5 times as fast as
 * zlib, with the same window limit), and zlib to judge whatever ISA-L
 * cannot read, so damaged data fails exactly as it does with zlib. */
#include "util/inflate.h"

#include <errno.h>
#include <stdbool.h>
#include <zlib.h>

#include "config.h"
#if HAVE_ISAL
#include <isa-l/igzip_lib.h>
#endif

#define WINDOW_BITS 12

#if HAVE_ISAL
static bool isal_inflate_cluster(const uint8_t *in, size_t in_len,
                                 uint8_t *out, size_t out_len)
{
    struct inflate_state st;
    if (in_len > UINT32_MAX || out_len > UINT32_MAX)
        return false;
    isal_inflate_init(&st);
    st.crc_flag = ISAL_DEFLATE;
    st.hist_bits = WINDOW_BITS;
    st.next_in = (uint8_t *)in;
    st.avail_in = (uint32_t)in_len;
    st.next_out = out;
    st.avail_out = (uint32_t)out_len;
    return isal_inflate(&st) >= 0 && st.avail_out == 0;
}
#endif

int inflate_cluster(const uint8_t *in, size_t in_len, uint8_t *out,
                    size_t out_len)
{
#if HAVE_ISAL
    if (isal_inflate_cluster(in, in_len, out, out_len))
        return 0;
#endif
    if (in_len > UINT32_MAX || out_len > UINT32_MAX)
        return -EIO;
    z_stream z = { 0 };
    if (inflateInit2(&z, -WINDOW_BITS) != Z_OK)
        return -ENOMEM;
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)in_len;
    z.next_out = out;
    z.avail_out = (uInt)out_len;
    /* With Z_FINISH a full output buffer before the end of the stream is
     * Z_BUF_ERROR: the cluster is complete all the same. */
    int r = inflate(&z, Z_FINISH);
    size_t got = out_len - z.avail_out;
    inflateEnd(&z);
    if ((r != Z_STREAM_END && r != Z_BUF_ERROR && r != Z_OK) ||
        got != out_len)
        return -EIO;
    return 0;
}
