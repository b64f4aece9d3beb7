/* Unit tests for crypto/secret.c: the bytes a secret holds for each way of
 * giving it, the lookup by id, and the errors qemu-img gives. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto/secret.h"

static void test_data_and_lookup(void **state)
{
    (void)state;
    struct err err = ERR_INIT;
    assert_int_equal(secret_add("a", "pass,word", NULL, NULL, NULL, NULL, &err), 0);
    assert_int_equal(secret_add("b", "aGVsbG8=", NULL, "base64", NULL, NULL, &err), 0);
    assert_int_equal(secret_add("c", "x", NULL, "raw", NULL, NULL, &err), 0);
    const struct secret *s = secret_lookup("a");
    assert_non_null(s);
    assert_int_equal(s->len, 9);
    assert_memory_equal(s->data, "pass,word", 9);
    s = secret_lookup("b");
    assert_non_null(s);
    assert_int_equal(s->len, 5);
    assert_memory_equal(s->data, "hello", 5);
    assert_null(secret_lookup("nosuch"));
    assert_null(secret_get("nosuch", &err));
    assert_string_equal(err.msg, "No secret with id 'nosuch'");
    secret_clear_all();
    assert_null(secret_lookup("a"));
}

static void test_file(void **state)
{
    (void)state;
    struct err err = ERR_INIT;
    char path[] = "/tmp/qimg-secret-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "abc\n\0z", 6), 6);
    close(fd);
    assert_int_equal(secret_add("f", NULL, path, NULL, NULL, NULL, &err), 0);
    const struct secret *s = secret_lookup("f");
    assert_non_null(s);
    assert_int_equal(s->len, 6);               /* the file as is, newline too */
    assert_memory_equal(s->data, "abc\n\0z", 6);
    unlink(path);
    secret_clear_all();
}

static void expect_add_error(const char *id, const char *data, const char *file,
                             const char *format, const char *msg)
{
    struct err err = ERR_INIT;
    assert_true(secret_add(id, data, file, format, NULL, NULL, &err) < 0);
    assert_string_equal(err.msg, msg);
}

static void test_errors(void **state)
{
    (void)state;
    struct err err = ERR_INIT;
    expect_add_error(NULL, "x", NULL, NULL, "Parameter 'id' is missing");
    expect_add_error("s", NULL, NULL, NULL, "Either 'file' or 'data' must be provided");
    expect_add_error("s", "x", "y", NULL, "'file' and 'data' are mutually exclusive");
    expect_add_error("s", "x", NULL, "hex", "Parameter 'format' does not accept value 'hex'");
    expect_add_error("s", "%%%", NULL, "base64", "Base64 data contains invalid characters");
    expect_add_error("s", NULL, "/nonexist/x", NULL,
                     "Unable to read /nonexist/x: Failed to open file \u201c/nonexist/x\u201d: "
                     "No such file or directory");
    assert_int_equal(secret_add("d", "x", NULL, NULL, NULL, NULL, &err), 0);
    expect_add_error("d", "y", NULL, NULL,
                     "attempt to add duplicate property 'd' to object (type 'container')");
    assert_null(secret_lookup("s"));
    secret_clear_all();
}

static void test_base64(void **state)
{
    (void)state;
    static const struct { const char *in, *out; } ok[] = {
        { "", "" }, { "YQ==", "a" }, { "YWI=", "ab" }, { "YWJj", "abc" },
        { "/+8=", "\xff\xef" },
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        struct err err = ERR_INIT;
        size_t n;
        uint8_t *d = secret_base64_decode(ok[i].in, &n, &err);
        assert_non_null(d);
        assert_int_equal(n, strlen(ok[i].out));
        assert_memory_equal(d, ok[i].out, n);
        free(d);
    }
    struct err err = ERR_INIT;
    size_t n;
    assert_null(secret_base64_decode("YQ=a", &n, &err));
    err_clear(&err);
    assert_null(secret_base64_decode("Y Q==", &n, &err));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_data_and_lookup),
        cmocka_unit_test(test_file),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_base64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
