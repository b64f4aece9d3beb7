/* endian.h loads/stores and align.h arithmetic, including the edges where
 * sign extension or overflow would show. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "util/align.h"
#include "util/endian.h"

static void test_loads(void **state)
{
    (void)state;
    /* High bits set in every byte: a signed shift would smear them. */
    const uint8_t b[8] = { 0x81, 0x92, 0xa3, 0xb4, 0xc5, 0xd6, 0xe7, 0xf8 };
    assert_int_equal(ld_be16(b), 0x8192);
    assert_int_equal(ld_le16(b), 0x9281);
    assert_int_equal(ld_be32(b), 0x8192a3b4u);
    assert_int_equal(ld_le32(b), 0xb4a39281u);
    assert_true(ld_be64(b) == UINT64_C(0x8192a3b4c5d6e7f8));
    assert_true(ld_le64(b) == UINT64_C(0xf8e7d6c5b4a39281));
    /* Unaligned addresses work the same. */
    uint8_t u[9] = { 0 };
    memcpy(u + 1, b, 8);
    assert_true(ld_be64(u + 1) == UINT64_C(0x8192a3b4c5d6e7f8));
    assert_int_equal(ld_le32(u + 1), 0xb4a39281u);
}

static void test_stores(void **state)
{
    (void)state;
    uint8_t b[10];
    const uint8_t be[8] = { 0x81, 0x92, 0xa3, 0xb4, 0xc5, 0xd6, 0xe7, 0xf8 };
    const uint8_t le[8] = { 0xf8, 0xe7, 0xd6, 0xc5, 0xb4, 0xa3, 0x92, 0x81 };

    memset(b, 0x55, sizeof(b));
    st_be64(b + 1, UINT64_C(0x8192a3b4c5d6e7f8));
    assert_memory_equal(b + 1, be, 8);
    assert_int_equal(b[0], 0x55);       /* neighbours untouched */
    assert_int_equal(b[9], 0x55);

    st_le64(b + 1, UINT64_C(0x8192a3b4c5d6e7f8));
    assert_memory_equal(b + 1, le, 8);

    st_be32(b, 0x8192a3b4u);
    assert_memory_equal(b, be, 4);
    st_le32(b, 0xb4a39281u);
    assert_memory_equal(b, be, 4);
    st_be16(b, 0x8192);
    assert_memory_equal(b, be, 2);
    st_le16(b, 0x9281);
    assert_memory_equal(b, be, 2);

    /* Round trips at the extremes. */
    static const uint64_t v64[] = { 0, 1, UINT64_MAX, UINT64_C(1) << 63,
                                    UINT64_C(0x0123456789abcdef) };
    for (size_t i = 0; i < sizeof(v64) / sizeof(v64[0]); i++) {
        st_be64(b, v64[i]);
        assert_true(ld_be64(b) == v64[i]);
        st_le64(b, v64[i]);
        assert_true(ld_le64(b) == v64[i]);
        st_be32(b, (uint32_t)v64[i]);
        assert_int_equal(ld_be32(b), (uint32_t)v64[i]);
        st_le32(b, (uint32_t)v64[i]);
        assert_int_equal(ld_le32(b), (uint32_t)v64[i]);
        st_be16(b, (uint16_t)v64[i]);
        assert_int_equal(ld_be16(b), (uint16_t)v64[i]);
        st_le16(b, (uint16_t)v64[i]);
        assert_int_equal(ld_le16(b), (uint16_t)v64[i]);
    }
}

static void test_align(void **state)
{
    (void)state;
    assert_int_equal(align_down(0, 512), 0);
    assert_int_equal(align_down(511, 512), 0);
    assert_int_equal(align_down(512, 512), 512);
    assert_int_equal(align_down(1025, 512), 1024);
    assert_true(align_down(UINT64_MAX, 512) == UINT64_MAX - 511);
    assert_int_equal(align_down(100, 3), 99);       /* any alignment */
    assert_int_equal(align_up(0, 512), 0);
    assert_int_equal(align_up(1, 512), 512);
    assert_int_equal(align_up(512, 512), 512);
    assert_int_equal(align_up(513, 512), 1024);
    assert_int_equal(align_up(100, 3), 102);
    assert_true(align_up(UINT64_MAX - 511, 512) == UINT64_MAX - 511);
    assert_true(is_aligned(0, 4096));
    assert_true(is_aligned(8192, 4096));
    assert_false(is_aligned(8193, 4096));
    assert_false(is_pow2(0));
    assert_true(is_pow2(1));
    assert_true(is_pow2(UINT64_C(1) << 63));
    assert_false(is_pow2(3));
    assert_false(is_pow2(UINT64_MAX));
    assert_int_equal(div_round_up(0, 512), 0);
    assert_int_equal(div_round_up(1, 512), 1);
    assert_int_equal(div_round_up(1024, 512), 2);
    assert_int_equal(div_round_up(1025, 512), 3);
    /* No overflow where (n + d - 1) / d would wrap. */
    assert_true(div_round_up(UINT64_MAX, 2) == (UINT64_C(1) << 63));
    assert_true(div_round_up(UINT64_MAX, UINT64_MAX) == 1);
    assert_int_equal(min_u64(3, 5), 3);
    assert_true(max_u64(3, UINT64_MAX) == UINT64_MAX);
}

static void test_overflow(void **state)
{
    (void)state;
    uint64_t r;
    uint32_t r32;
    assert_false(add_overflow(UINT64_MAX - 1, (uint64_t)1, &r));
    assert_true(r == UINT64_MAX);
    assert_true(add_overflow(UINT64_MAX, (uint64_t)1, &r));
    assert_false(mul_overflow(UINT64_C(1) << 32, (UINT64_C(1) << 31), &r));
    assert_true(r == UINT64_C(1) << 63);
    assert_true(mul_overflow(UINT64_C(1) << 32, UINT64_C(1) << 32, &r));
    /* The result type decides: 32-bit products overflow at 2^32. */
    assert_true(mul_overflow((uint32_t)65536, (uint32_t)65536, &r32));
    assert_false(mul_overflow((uint32_t)65535, (uint32_t)65537, &r32));
    assert_int_equal(r32, 0xffffffffu);
    /* A negative int never fits an unsigned result. */
    assert_true(add_overflow(-1, 0, &r));

    assert_true(range_within(0, 0, 0));
    assert_true(range_within(0, 512, 512));
    assert_true(range_within(512, 0, 512));
    assert_false(range_within(513, 0, 512));
    assert_false(range_within(1, 512, 512));
    assert_false(range_within(0, 513, 512));
    /* No wrap-around: off + len would overflow to a small number. */
    assert_false(range_within(UINT64_MAX, 2, UINT64_MAX));
    assert_false(range_within(2, UINT64_MAX, UINT64_MAX));
    assert_true(range_within(1, UINT64_MAX - 1, UINT64_MAX));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loads),
        cmocka_unit_test(test_stores),
        cmocka_unit_test(test_align),
        cmocka_unit_test(test_overflow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
