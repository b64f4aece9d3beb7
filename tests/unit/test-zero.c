/* buf_is_zero: every length 0..200 and every position of a single
 * nonzero byte, at several buffer offsets (so the word loads see every
 * alignment), plus large buffers around the 64-byte block boundaries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "util/zero.h"

static void test_single_byte(void **state)
{
    (void)state;
    uint8_t *mem = malloc(256 + 16);
    assert_non_null(mem);
    for (size_t shift = 0; shift < 9; shift++) {
        uint8_t *buf = mem + shift;
        for (size_t len = 0; len <= 200; len++) {
            /* Nonzero bytes just outside the range must not matter. */
            memset(mem, 0xff, 256 + 16);
            memset(buf, 0, len);
            if (!buf_is_zero(buf, len))
                fail_msg("len %zu shift %zu: all-zero buffer reported nonzero",
                         len, shift);
            for (size_t pos = 0; pos < len; pos++) {
                for (int v = 1; v <= 0x80; v <<= 1) {
                    buf[pos] = (uint8_t)v;
                    if (buf_is_zero(buf, len))
                        fail_msg("len %zu shift %zu: byte 0x%02x at %zu missed",
                                 len, shift, v, pos);
                }
                buf[pos] = 0;
            }
        }
    }
    free(mem);
}

static void test_large(void **state)
{
    (void)state;
    const size_t sizes[] = { 4096, 65536, 65536 + 1, 65536 + 63, 1 << 20 };
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        size_t len = sizes[i];
        uint8_t *buf = calloc(1, len);
        assert_non_null(buf);
        assert_true(buf_is_zero(buf, len));
        const size_t positions[] = { 0, 7, 8, 63, 64, 65, len / 2, len - 65,
                                     len - 64, len - 9, len - 8, len - 1 };
        for (size_t k = 0; k < sizeof(positions) / sizeof(positions[0]); k++) {
            buf[positions[k]] = 1;
            if (buf_is_zero(buf, len))
                fail_msg("len %zu: byte at %zu missed", len, positions[k]);
            buf[positions[k]] = 0;
        }
        free(buf);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_byte),
        cmocka_unit_test(test_large),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
