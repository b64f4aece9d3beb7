/* qcow2 pure helpers: L2 entry and subcluster classification, refcount
 * block entry access for every width, measure arithmetic against
 * qemu-img's numbers, header/extension round trips, compression. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "fmt/qcow2/qcow2.h"
#include "util/endian.h"

static void test_classify(void **state)
{
    (void)state;
    const uint64_t off = 0x50000;
    assert_int_equal(qcow2_l2_classify(0, false, false), QCOW2_C_UNALLOCATED);
    assert_int_equal(qcow2_l2_classify(1, false, false), QCOW2_C_ZERO_PLAIN);
    assert_int_equal(qcow2_l2_classify(off | 1, false, false), QCOW2_C_ZERO_ALLOC);
    assert_int_equal(qcow2_l2_classify(off | QCOW2_OFLAG_COPIED, false, false),
                     QCOW2_C_NORMAL);
    assert_int_equal(qcow2_l2_classify(off, false, false), QCOW2_C_NORMAL);
    assert_int_equal(qcow2_l2_classify(QCOW2_OFLAG_COMPRESSED | 1234, false, false),
                     QCOW2_C_COMPRESSED);
    /* Offset 0 with COPIED is a real mapping only with a data file. */
    assert_int_equal(qcow2_l2_classify(QCOW2_OFLAG_COPIED, false, true), QCOW2_C_NORMAL);
    assert_int_equal(qcow2_l2_classify(QCOW2_OFLAG_COPIED, false, false),
                     QCOW2_C_UNALLOCATED);
    /* Bit 0 is not the zero flag with extended L2 entries. */
    assert_int_equal(qcow2_l2_classify(1, true, false), QCOW2_C_UNALLOCATED);
}

static void test_subclusters(void **state)
{
    (void)state;
    uint64_t e = 0x50000 | QCOW2_OFLAG_COPIED;
    uint64_t bm = 0x5ull | (0x2ull << 32);     /* sc0, sc2 data; sc1 zero */
    assert_int_equal(qcow2_subcluster_classify(e, bm, 0, true, false), QCOW2_SC_NORMAL);
    assert_int_equal(qcow2_subcluster_classify(e, bm, 1, true, false), QCOW2_SC_ZERO);
    assert_int_equal(qcow2_subcluster_classify(e, bm, 2, true, false), QCOW2_SC_NORMAL);
    assert_int_equal(qcow2_subcluster_classify(e, bm, 3, true, false),
                     QCOW2_SC_UNALLOCATED);
    /* Allocated and zero at once is invalid. */
    assert_int_equal(qcow2_subcluster_classify(e, 0x1ull | (0x1ull << 32), 5, true, false),
                     QCOW2_SC_INVALID);
    /* No host cluster but allocation bits: invalid. */
    assert_int_equal(qcow2_subcluster_classify(0, 1, 0, true, false), QCOW2_SC_INVALID);
    assert_int_equal(qcow2_subcluster_classify(0, 1ull << 63, 31, true, false),
                     QCOW2_SC_ZERO);
    assert_int_equal(qcow2_subcluster_classify(QCOW2_OFLAG_COMPRESSED, 0, 7, true, false),
                     QCOW2_SC_COMPRESSED);
    assert_int_equal(qcow2_subcluster_classify(QCOW2_OFLAG_COMPRESSED, 1, 7, true, false),
                     QCOW2_SC_INVALID);
    /* Without extended entries the cluster type decides. */
    assert_int_equal(qcow2_subcluster_classify(0x50001, 0, 0, false, false), QCOW2_SC_ZERO);
}

static void test_refcount_entries(void **state)
{
    (void)state;
    uint8_t blk[512];
    for (uint32_t order = 0; order <= 6; order++) {
        unsigned bits = 1u << order;
        uint64_t max = order == 6 ? UINT64_MAX : (1ull << bits) - 1;
        uint64_t n = sizeof(blk) * 8 / bits;
        memset(blk, 0, sizeof(blk));
        for (uint64_t i = 0; i < n; i++)
            qcow2_rb_set(blk, i, order, (i * 2654435761ull) & max);
        for (uint64_t i = 0; i < n; i++)
            assert_true(qcow2_rb_get(blk, i, order) == ((i * 2654435761ull) & max));
        /* Setting one entry leaves its neighbours alone. */
        qcow2_rb_set(blk, 5, order, max);
        assert_true(qcow2_rb_get(blk, 5, order) == max);
        assert_true(qcow2_rb_get(blk, 4, order) == ((4 * 2654435761ull) & max));
        assert_true(qcow2_rb_get(blk, 6, order) == ((6 * 2654435761ull) & max));
    }
    /* Widths of 16 bits and more are big-endian, whole bytes. */
    memset(blk, 0, sizeof(blk));
    qcow2_rb_set(blk, 1, 4, 0x1234);
    assert_int_equal(blk[2], 0x12);
    assert_int_equal(blk[3], 0x34);
    /* Sub-byte widths: bit 0 is the least significant bit. */
    memset(blk, 0, sizeof(blk));
    qcow2_rb_set(blk, 1, 0, 1);
    assert_int_equal(blk[0], 0x02);
}

static void test_measure_numbers(void **state)
{
    (void)state;
    /* qemu-img measure -O qcow2 --size 1G (fully allocated). */
    assert_true(qcow2_prealloc_size(1ull << 30, 65536, 4, false) == 1074135040ull);
    /* ... -o cluster_size=512,refcount_bits=64 */
    assert_true(qcow2_prealloc_size(1ull << 30, 512, 6, false) == 1108370944ull);
    /* The fixed point counts refcount blocks for themselves. */
    uint64_t r = qcow2_refcount_metadata_size(100, 512, 6, false);
    assert_true(r % 512 == 0 && r >= 2 * 512);
}

static void test_header_roundtrip(void **state)
{
    (void)state;
    struct qcow2_header h = { 0 }, d;
    struct qcow2_exts x = { 0 }, y = { 0 };
    struct err e = ERR_INIT;
    uint8_t *buf = malloc(65536);
    uint8_t unk[5] = { 1, 2, 3, 4, 5 };
    struct qcow2_ext u = { 0x12345678, 5, unk };
    h.version = 3;
    h.cluster_bits = 16;
    h.size = 1 << 30;
    h.l1_size = 2;
    h.l1_table_offset = 0x30000;
    h.refcount_table_offset = 0x10000;
    h.refcount_table_clusters = 1;
    h.incompat = QCOW2_INCOMPAT_COMPRESSION;
    h.refcount_order = 4;
    h.header_length = 112;
    h.compression_type = 1;
    x.backing_fmt = "qcow2";
    x.data_file = "data.raw";
    x.unknown = &u;
    x.nb_unknown = 1;
    x.feature_table = (uint8_t *)qcow2_default_feature_table(&x.feature_table_len);
    assert_int_equal(qcow2_header_encode(&h, &x, "base.img", buf, 65536, &e), 0);
    assert_int_equal(qcow2_header_decode(buf, 112, &d, &e), 0);
    assert_int_equal(d.version, 3);
    assert_true(d.size == 1ull << 30);
    assert_int_equal(d.compression_type, 1);
    assert_int_equal(d.backing_file_size, 8);
    assert_memory_equal(buf + d.backing_file_offset, "base.img", 8);
    assert_int_equal(qcow2_exts_decode(buf, 112, d.backing_file_offset, 0, &y, &e), 0);
    assert_string_equal(y.backing_fmt, "qcow2");
    assert_string_equal(y.data_file, "data.raw");
    assert_int_equal(y.nb_unknown, 1);
    assert_int_equal(y.unknown[0].type, 0x12345678);
    assert_memory_equal(y.unknown[0].data, unk, 5);
    qcow2_exts_free(&y);
    /* Unknown incompatible bits are named from the image's table. */
    memset(&y, 0, sizeof(y));
    y.feature_table = (uint8_t *)qcow2_default_feature_table(&y.feature_table_len);
    qcow2_report_unknown_incompat(&y, (1ull << 4) | (1ull << 40), &e);
    assert_string_equal(e.msg, "Unsupported qcow2 feature(s): extended L2 entries, "
                        "Unknown incompatible feature: 10000000000");
    /* Decoding refuses what is not qcow2, with qemu's messages. */
    err_clear(&e);
    st_be32(buf + 20, 8);
    assert_true(qcow2_header_decode(buf, 112, &d, &e) < 0);
    assert_string_equal(e.msg, "Unsupported cluster size: 2^8");
    free(buf);
}

static void test_compress(void **state)
{
    (void)state;
    uint8_t in[65536], out[65536], back[65536];
    for (size_t i = 0; i < sizeof(in); i++)
        in[i] = (uint8_t)(i / 100);
    for (int t = 0; t <= 1; t++) {
        long n = qcow2_compress(t, in, sizeof(in), out, sizeof(out) - 1);
        assert_true(n > 0 && n < 65535);
        memset(out + n, 0xee, 16);   /* trailing bytes are ignored */
        assert_int_equal(qcow2_decompress(t, out, (size_t)n + 16, back, sizeof(back)), 0);
        assert_memory_equal(in, back, sizeof(in));
        assert_true(qcow2_decompress(t, out, (size_t)n / 2, back, sizeof(back)) < 0);
    }
    /* Random data does not fit: the caller writes it uncompressed. */
    srand(1);
    for (size_t i = 0; i < sizeof(in); i++)
        in[i] = (uint8_t)rand();
    assert_int_equal(qcow2_compress(0, in, sizeof(in), out, sizeof(out) - 1), -ENOSPC);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_subclusters),
        cmocka_unit_test(test_refcount_entries),
        cmocka_unit_test(test_measure_numbers),
        cmocka_unit_test(test_header_roundtrip),
        cmocka_unit_test(test_compress),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
