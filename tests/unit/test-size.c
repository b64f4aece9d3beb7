/* Size strings as qemu-img and qemu-io read them, and qemu's human size
 * form.  Every accepted value below was read back from the real qemu-io
 * (its "read N 0" reports the parsed offset); every rejected form is one
 * qemu-img create refuses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "util/size.h"

static const struct { const char *s; uint64_t v; } accepted[] = {
    { "0", UINT64_C(0) },
    { "512", UINT64_C(512) },
    { "1k", UINT64_C(1024) },
    { "1K", UINT64_C(1024) },
    { "1b", UINT64_C(1) },
    { "1B", UINT64_C(1) },
    { "1.5k", UINT64_C(1536) },
    { "1.0", UINT64_C(1) },
    { "1.0k", UINT64_C(1024) },
    { "0.5M", UINT64_C(524288) },
    { "1.9k", UINT64_C(1946) },
    { "1.99k", UINT64_C(2038) },
    { "1.999k", UINT64_C(2047) },
    { "1.9999k", UINT64_C(2048) },
    { "1.99999999999999999k", UINT64_C(1024) },
    { "0.99999k", UINT64_C(1024) },
    { "1.1k", UINT64_C(1126) },
    { "0.3k", UINT64_C(307) },
    { "1.2345678901234567890123M", UINT64_C(1294538) },
    { "1.7e", UINT64_C(1959966557831639808) },
    { "1.e", UINT64_C(1152921504606846976) },
    { "3.99999999999999999999E", UINT64_C(3458764513820540928) },
    { "1.00000001G", UINT64_C(1073741835) },
    { "1.00000001T", UINT64_C(1099511638771) },
    { "4.5T", UINT64_C(4947802324992) },
    { "+5", UINT64_C(5) },
    { "+5k", UINT64_C(5120) },
    { "5.k", UINT64_C(5120) },
    { "1.k", UINT64_C(1024) },
    { "0.k", UINT64_C(0) },
    { "0.0", UINT64_C(0) },
    { "0X1F", UINT64_C(31) },
    { "0x10", UINT64_C(16) },
    { "  7", UINT64_C(7) },
    { "00012", UINT64_C(12) },
    { "1m", UINT64_C(1048576) },
    { "1g", UINT64_C(1073741824) },
    { "1t", UINT64_C(1099511627776) },
    { "1p", UINT64_C(1125899906842624) },
    { "2e", UINT64_C(2305843009213693952) },
    { "3.5P", UINT64_C(3940649673949184) },
    { "1.00000000000000000001k", UINT64_C(1024) },
    { "1.0000000000000000000000000000000000001M", UINT64_C(1048576) },
    { "0x3fffffffffffffff", UINT64_C(4611686018427387903) },
    { "3.999999E", UINT64_C(4611684865505883264) },
    { "2.0000000000000000001E", UINT64_C(2305843009213693952) },
    { "1.33333333333333333333333G", UINT64_C(1431655765) },
    /* Values above INT64_MAX parse; callers reject them with their own
     * message ("Must be between 0 and 9223372036854775807"). */
    { "9223372036854775808", UINT64_C(9223372036854775808) },
    { "18446744073709551615", UINT64_MAX },
    { "15E", UINT64_C(15) << 60 },
};

static const char *const invalid[] = {
    "", " ", "k", "1.5", "0.5", "1.5b", "0.5b", ".5k", "1kb", "1KiB", "1k ",
    "1 k", "1e3", "1E0", "1M5", "0x1.8k", "0x", "0xg", "1_0", "2.5e1k",
    "inf", "nan", "-1", " -1", "-0", "1x", "1.Mx", "+", "++1", "1.5e3k",
    "0x.8", "abc",
};

static const char *const too_large[] = {
    "18446744073709551616", "99999999999999999999", "16E", "17e",
    "0x10000000000000000", "16384P",
};

static void test_accepted(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(accepted) / sizeof(accepted[0]); i++) {
        uint64_t v = 0xdead;
        int r = parse_size(accepted[i].s, &v);
        if (r != 0 || v != accepted[i].v)
            fail_msg("parse_size(\"%s\") = %d, %llu; expected %llu",
                     accepted[i].s, r, (unsigned long long)v,
                     (unsigned long long)accepted[i].v);
    }
}

static void test_invalid(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
        uint64_t v = 0xdead;
        int r = parse_size(invalid[i], &v);
        if (r != -EINVAL)
            fail_msg("parse_size(\"%s\") = %d (value %llu), expected -EINVAL",
                     invalid[i], r, (unsigned long long)v);
        assert_int_equal(v, 0xdead);    /* untouched on failure */
    }
}

static void test_too_large(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(too_large) / sizeof(too_large[0]); i++) {
        uint64_t v = 0xdead;
        int r = parse_size(too_large[i], &v);
        if (r != -ERANGE)
            fail_msg("parse_size(\"%s\") = %d, expected -ERANGE",
                     too_large[i], r);
    }
}

static void test_prefix(void **state)
{
    (void)state;
    const char *end;
    uint64_t v;
    const char *s = "64k,cluster_size=512";
    assert_int_equal(parse_size_prefix(s, &end, &v), 0);
    assert_int_equal(v, 65536);
    assert_ptr_equal(end, s + 3);

    s = "1.5Mrest";
    assert_int_equal(parse_size_prefix(s, &end, &v), 0);
    assert_int_equal(v, 1572864);
    assert_string_equal(end, "rest");

    /* A bare number stops before an unknown letter. */
    s = "12x";
    assert_int_equal(parse_size_prefix(s, &end, &v), 0);
    assert_int_equal(v, 12);
    assert_string_equal(end, "x");

    /* Failure leaves *end at the start. */
    s = "x12";
    assert_int_equal(parse_size_prefix(s, &end, &v), -EINVAL);
    assert_ptr_equal(end, s);
}

/* Checked against qemu-img info's "virtual size" of raw files. */
static void test_human(void **state)
{
    (void)state;
    static const struct { uint64_t v; const char *s; } cases[] = {
        { 0, "0 B" }, { 512, "512 B" }, { 1536, "1.5 KiB" },
        { 1023488, "1e+03 KiB" }, { 1024000, "0.977 MiB" },
        { 1048576, "1 MiB" }, { 1073741824, "1 GiB" },
        { 1610612736, "1.5 GiB" }, { 123457024, "118 MiB" },
        { UINT64_C(1099511627776), "1 TiB" },
        { UINT64_C(1) << 60, "1 EiB" }, { UINT64_MAX, "16 EiB" },
    };
    char buf[32];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_string_equal(format_size_human(cases[i].v, buf, sizeof(buf)),
                            cases[i].s);
    /* A short buffer is truncated, never overrun. */
    char small[4];
    format_size_human(1536, small, sizeof(small));
    assert_string_equal(small, "1.5");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepted),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_prefix),
        cmocka_unit_test(test_human),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
