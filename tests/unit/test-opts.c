/* Unit tests for the option-string parsing qimg shares between commands:
 * -o strings (cli_parse_opt_string), help detection, -o accumulation,
 * kvopts (--image-opts strings and json: filenames), and the JSON key
 * order of the output printer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cli/cli.h"
#include "util/kvopts.h"

/* opts.c calls back into the global help; not exercised here. */
int cli_help(void)
{
    return 0;
}

static const struct opt_desc desc[] = {
    { "size", OPT_SIZE, "Virtual disk size", NULL },
    { "backing_file", OPT_STRING, "File name of a base image", NULL },
    { "lazy_refcounts", OPT_BOOL, "Postpone refcount updates", "off" },
    { "refcount_bits", OPT_NUMBER, "Width of a reference count entry in bits", "16" },
    { "cow", OPT_BOOL, "x", NULL },
};

static int parse(const char *s, struct kvlist *out, struct err *err)
{
    const struct opt_desc *list[5];
    for (int i = 0; i < 5; i++)
        list[i] = &desc[i];
    return cli_parse_opt_string(s, list, 5, out, err);
}

static void test_parse_ok(void **state)
{
    (void)state;
    struct kvlist kv = KVLIST_INIT;
    struct err err = ERR_INIT;
    assert_int_equal(parse("size=1M,backing_file=a,,b,,,,c,lazy_refcounts=on", &kv, &err), 0);
    assert_string_equal(kv_peek(&kv, "size"), "1M");
    assert_string_equal(kv_peek(&kv, "backing_file"), "a,b,,c");
    assert_string_equal(kv_peek(&kv, "lazy_refcounts"), "on");
    kv_free(&kv);
    /* bare flags: "x" is x=on, "nox" is x=off; the last repeat wins */
    assert_int_equal(parse("lazy_refcounts,nocow,size=1k,size=2k", &kv, &err), 0);
    assert_string_equal(kv_peek(&kv, "lazy_refcounts"), "on");
    assert_string_equal(kv_peek(&kv, "cow"), "off");
    assert_string_equal(kv_peek(&kv, "size"), "2k");
    assert_int_equal(kv.n, 3);
    kv_free(&kv);
}

static void expect_error(const char *in, int code, const char *msg)
{
    struct kvlist kv = KVLIST_INIT;
    struct err err = ERR_INIT;
    assert_int_equal(parse(in, &kv, &err), code);
    assert_int_equal(err.code, code);
    assert_string_equal(err.msg, msg);
    kv_free(&kv);
}

static void test_parse_errors(void **state)
{
    (void)state;
    expect_error("foo=bar", -EINVAL, "Invalid parameter 'foo'");
    expect_error("=x", -EINVAL, "Invalid parameter ''");
    expect_error("a,,b=c", -EINVAL, "Invalid parameter 'a'");
    expect_error("lazy_refcounts=maybe", -EINVAL,
                 "Parameter 'lazy_refcounts' expects 'on' or 'off'");
    expect_error("refcount_bits=abc", -EINVAL,
                 "Parameter 'refcount_bits' expects a number");
    expect_error("size", -EINVAL,
                 "Parameter 'size' expects a non-negative number below 2^64\n"
                 "Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\n"
                 "and exabytes, respectively.");
    expect_error("size=-1", -EINVAL,
                 "Parameter 'size' expects a non-negative number below 2^64\n"
                 "Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\n"
                 "and exabytes, respectively.");
}

static void test_want_help(void **state)
{
    (void)state;
    assert_true(cli_options_want_help("help"));
    assert_true(cli_options_want_help("?"));
    assert_true(cli_options_want_help("size=1k,help"));
    assert_true(cli_options_want_help("help,size=1k"));
    assert_false(cli_options_want_help("size=1k"));
    assert_false(cli_options_want_help("backing_file=help"));
    assert_false(cli_options_want_help("x,,help"));   /* escaped: one item */
    assert_false(cli_options_want_help("helpme"));
}

static void test_accumulate(void **state)
{
    (void)state;
    char *acc = NULL;
    assert_int_equal(cli_accumulate_options(&acc, "size=1k"), 0);
    assert_int_equal(cli_accumulate_options(&acc, "a=b,,c"), 0);
    assert_string_equal(acc, "size=1k,a=b,,c");
    assert_int_equal(cli_accumulate_options(&acc, "x=y,,"), 0);   /* escaped comma */
    /* invalid lists are refused and leave the accumulated string alone */
    freopen("/dev/null", "w", stderr);
    assert_int_equal(cli_accumulate_options(&acc, ""), -1);
    assert_int_equal(cli_accumulate_options(&acc, ",a=b"), -1);
    assert_int_equal(cli_accumulate_options(&acc, "a=b,"), -1);
    assert_int_equal(cli_accumulate_options(&acc, "a=b,,,"), -1);
    assert_string_equal(acc, "size=1k,a=b,,c,x=y,,");
    free(acc);
}

static void test_kv_image_opts(void **state)
{
    (void)state;
    struct kvlist kv = KVLIST_INIT;
    struct err err = ERR_INIT;
    assert_int_equal(kv_parse(&kv, "driver=qcow2,file.filename=a,,b.img,backing.driver=raw", NULL, &err), 0);
    assert_string_equal(kv_peek(&kv, "driver"), "qcow2");
    assert_string_equal(kv_peek(&kv, "file.filename"), "a,b.img");
    assert_string_equal(kv_peek(&kv, "backing.driver"), "raw");
    kv_free(&kv);
    assert_int_equal(kv_parse_json(&kv, "{\"driver\":\"qcow2\",\"file\":{\"driver\":\"file\","
                                        "\"filename\":\"x.img\"},\"backing\":{\"file\":"
                                        "{\"filename\":\"b.img\"}},\"n\":5,\"t\":true}", &err), 0);
    assert_string_equal(kv_peek(&kv, "file.filename"), "x.img");
    assert_string_equal(kv_peek(&kv, "file.driver"), "file");
    assert_string_equal(kv_peek(&kv, "backing.file.filename"), "b.img");
    assert_string_equal(kv_peek(&kv, "n"), "5");
    assert_string_equal(kv_peek(&kv, "t"), "true");
    kv_free(&kv);
    assert_int_equal(kv_parse_json(&kv, "[1,2]", &err), -EINVAL);
    err_clear(&err);
    assert_int_equal(kv_parse_json(&kv, "{\"a\":", &err), -EINVAL);
    kv_free(&kv);
}

/* The JSON printer orders keys as qemu-img does (by its hash buckets). */
static void test_json_order(void **state)
{
    (void)state;
    struct json_object *o = json_object_new_object();
    const char *keys[] = { "filename", "format", "virtual-size", "actual-size",
                           "dirty-flag", "cluster-size", "backing-filename",
                           "full-backing-filename", "backing-filename-format",
                           "snapshots", "format-specific" };
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        json_object_object_add(o, keys[i], json_object_new_int(1));
    json_object_object_add(o, "snapshots", json_object_new_array());
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cli_print_json(f, o);
    fclose(f);
    assert_string_equal(buf,
        "{\n"
        "    \"backing-filename-format\": 1,\n"
        "    \"snapshots\": [\n"
        "    ],\n"
        "    \"virtual-size\": 1,\n"
        "    \"filename\": 1,\n"
        "    \"cluster-size\": 1,\n"
        "    \"format\": 1,\n"
        "    \"actual-size\": 1,\n"
        "    \"format-specific\": 1,\n"
        "    \"full-backing-filename\": 1,\n"
        "    \"backing-filename\": 1,\n"
        "    \"dirty-flag\": 1\n"
        "}");
    free(buf);
    json_object_put(o);
}

static void test_json_strings(void **state)
{
    (void)state;
    struct json_object *s = json_object_new_string("a\"b\\c\n\t\x01\xc3\xa9\xf0\x9f\x98\x80\xff");
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cli_print_json(f, s);
    fclose(f);
    assert_string_equal(buf, "\"a\\\"b\\\\c\\n\\t\\u0001\\u00E9\\uD83D\\uDE00\\uFFFD\"");
    free(buf);
    json_object_put(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_ok),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_want_help),
        cmocka_unit_test(test_accumulate),
        cmocka_unit_test(test_kv_image_opts),
        cmocka_unit_test(test_json_order),
        cmocka_unit_test(test_json_strings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
