/* Unit tests for util/size.c: every accepted form and every rejection,
 * with the values and error codes qemu-img 7.2 gives for the same input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "util/size.h"

struct size_case {
    const char *in;
    int ret;
    uint64_t val;
};

static const struct size_case cases[] = {
    { "0", 0, 0 },
    { "512", 0, 512 },
    { "1k", 0, 1024 },
    { "1K", 0, 1024 },
    { "1M", 0, 1ULL << 20 },
    { "1m", 0, 1ULL << 20 },
    { "1G", 0, 1ULL << 30 },
    { "1g", 0, 1ULL << 30 },
    { "1T", 0, 1ULL << 40 },
    { "1t", 0, 1ULL << 40 },
    { "1P", 0, 1ULL << 50 },
    { "1E", 0, 1ULL << 60 },
    { "1e", 0, 1ULL << 60 },
    { "15E", 0, 15ULL << 60 },
    { "1b", 0, 1 },
    { "1B", 0, 1 },
    { "1.5k", 0, 1536 },
    { "1.5m", 0, 1572864 },
    { "1.5E", 0, 1729382256910270464ULL },
    { "7.99999E", 0, 9223360507639729792ULL },
    { "1.3333333333k", 0, 1365 },
    { "1.0000000001k", 0, 1024 },
    { "1.k", 0, 1024 },
    { "1.0", 0, 1 },
    { "0x10", 0, 16 },
    { "0xaB", 0, 171 },
    { "0xB", 0, 11 },          /* B and E are hex digits here */
    { "0xE", 0, 14 },
    { "0x1k", 0, 1024 },       /* accepted (qemu-img warns) */
    { "007", 0, 7 },
    { "+5", 0, 5 },
    { " 1k", 0, 1024 },
    { "18446744073709551615", 0, UINT64_MAX },
    { "18446744073709551616", -ERANGE, 0 },
    { "16E", -ERANGE, 0 },
    { "0xffffffffffffffffff", -ERANGE, 0 },
    { "", -EINVAL, 0 },
    { "abc", -EINVAL, 0 },
    { "1Q", -EINVAL, 0 },
    { "-1", -EINVAL, 0 },
    { "1.5", -EINVAL, 0 },     /* a fraction of a byte */
    { "0.1", -EINVAL, 0 },
    { "0.5b", -EINVAL, 0 },
    { ".5k", -EINVAL, 0 },
    { "1kb", -EINVAL, 0 },
    { "1k ", -EINVAL, 0 },
    { "1 k", -EINVAL, 0 },
    { "1e3", -EINVAL, 0 },
    { "1.5e3", -EINVAL, 0 },
    { "0x", -EINVAL, 0 },
    { "0x1.5k", -EINVAL, 0 },
};

static void test_parse_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t v = 12345;
        int r = parse_size(cases[i].in, &v);
        if (r != cases[i].ret || (r == 0 && v != cases[i].val))
            fail_msg("parse_size(\"%s\") = %d, %llu; want %d, %llu", cases[i].in,
                     r, (unsigned long long)v, cases[i].ret,
                     (unsigned long long)cases[i].val);
        if (r < 0)
            assert_int_equal(v, 12345);    /* untouched on error */
    }
}

static void test_hex_suffix_flag(void **state)
{
    (void)state;
    uint64_t v;
    unsigned flags = 0;
    assert_int_equal(parse_size_flags("0x1k", &v, &flags), 0);
    assert_int_equal(flags, SIZE_HEX_WITH_SUFFIX);
    assert_int_equal(parse_size_flags("0x1B", &v, &flags), 0);
    assert_int_equal(flags, 0);
    assert_int_equal(v, 0x1B);
    assert_int_equal(parse_size_flags("16k", &v, &flags), 0);
    assert_int_equal(flags, 0);
}

static void test_prefix(void **state)
{
    (void)state;
    const char *end;
    uint64_t v;
    assert_int_equal(parse_size_prefix("64k,rest", &end, &v), 0);
    assert_int_equal(v, 65536);
    assert_string_equal(end, ",rest");
}

static void test_human(void **state)
{
    (void)state;
    static const struct { uint64_t in; const char *out; } h[] = {
        { 0, "0 B" }, { 512, "512 B" }, { 999, "999 B" }, { 1000, "0.977 KiB" },
        { 1024, "1 KiB" }, { 4096, "4 KiB" }, { 200704, "196 KiB" },
        { 1048576, "1 MiB" }, { 1572864, "1.5 MiB" }, { 2297856, "2.19 MiB" },
        { 1073741824, "1 GiB" }, { 10514944, "10 MiB" },
        { 1ULL << 60, "1 EiB" }, { UINT64_MAX, "16 EiB" },
    };
    char buf[64];
    for (size_t i = 0; i < sizeof(h) / sizeof(h[0]); i++)
        assert_string_equal(format_size_human(h[i].in, buf, sizeof(buf)), h[i].out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_table),
        cmocka_unit_test(test_hex_suffix_flag),
        cmocka_unit_test(test_prefix),
        cmocka_unit_test(test_human),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
