/* kvopts: option strings (-o, --image-opts), json: flattening, lookups
 * with used-tracking, prefixes, typed getters and rendering.  Messages are
 * qemu-img's (checked with qemu-img create -o and qemu-img info json:). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/kvopts.h"

/* "k1=v1|k2=v2" for compact comparisons. */
static char *dump(const struct kvlist *l)
{
    size_t cap = 1;
    for (size_t i = 0; i < l->n; i++)
        cap += strlen(l->items[i].key) + strlen(l->items[i].val) + 2;
    char *s = malloc(cap), *p = s;
    assert_non_null(s);
    *p = 0;
    for (size_t i = 0; i < l->n; i++)
        p += sprintf(p, "%s%s=%s", i ? "|" : "", l->items[i].key,
                     l->items[i].val);
    return s;
}

static void expect_parse(const char *in, const char *implied, const char *want)
{
    struct kvlist l = KVLIST_INIT;
    struct err err = ERR_INIT;
    int r = kv_parse(&l, in, implied, &err);
    if (r != 0)
        fail_msg("kv_parse(\"%s\") failed: %s", in, err.msg);
    char *got = dump(&l);
    if (strcmp(got, want))
        fail_msg("kv_parse(\"%s\"): got [%s], want [%s]", in, got, want);
    free(got);
    kv_free(&l);
}

static void expect_parse_error(const char *in, const char *implied,
                               const char *msg)
{
    struct kvlist l = KVLIST_INIT;
    struct err err = ERR_INIT;
    assert_int_equal(kv_parse(&l, in, implied, &err), -EINVAL);
    assert_int_equal(err.code, -EINVAL);
    assert_string_equal(err.msg, msg);
    kv_free(&l);
}

static void test_parse(void **state)
{
    (void)state;
    expect_parse("", NULL, "");
    expect_parse("a=b", NULL, "a=b");
    expect_parse("a=b,c=d", NULL, "a=b|c=d");
    expect_parse("a=b,", NULL, "a=b");
    expect_parse("a=", NULL, "a=");
    expect_parse("a=b=c", NULL, "a=b=c");
    expect_parse("a=1,a=2", NULL, "a=1|a=2");       /* duplicates kept */
    expect_parse("file.filename=x.img,file.driver=file", NULL,
                 "file.filename=x.img|file.driver=file");
    /* ",," is a literal comma, in values and keys. */
    expect_parse("file.filename=a,,b.img,size=1", NULL,
                 "file.filename=a,b.img|size=1");
    expect_parse("a=,,,,", NULL, "a=,,");
    expect_parse("a=x,,", NULL, "a=x,");
    expect_parse("a,,b=1", NULL, "a,b=1");
    /* Implied key: only the first token may omit "key=". */
    expect_parse("qcow2", "driver", "driver=qcow2");
    expect_parse("qcow2,size=1M", "driver", "driver=qcow2|size=1M");
    expect_parse("driver=raw", "driver", "driver=raw");
    expect_parse("a,,b,c=d", "driver", "driver=a,b|c=d");
    expect_parse_error("foo", NULL, "Invalid parameter 'foo'");
    expect_parse_error("a=b,foo", NULL, "Invalid parameter 'foo'");
    expect_parse_error("qcow2,foo", "driver", "Invalid parameter 'foo'");
}

static void test_parse_appends(void **state)
{
    (void)state;
    struct kvlist l = KVLIST_INIT;
    struct err err = ERR_INIT;
    assert_int_equal(kv_parse(&l, "a=1", NULL, &err), 0);
    assert_int_equal(kv_parse(&l, "b=2", NULL, &err), 0);
    char *got = dump(&l);
    assert_string_equal(got, "a=1|b=2");
    free(got);
    kv_free(&l);
    assert_int_equal(l.n, 0);
    kv_free(&l);                        /* twice is harmless */
}

static void expect_json(const char *in, const char *want)
{
    struct kvlist l = KVLIST_INIT;
    struct err err = ERR_INIT;
    if (kv_parse_json(&l, in, &err) != 0)
        fail_msg("kv_parse_json(%s) failed: %s", in, err.msg);
    char *got = dump(&l);
    if (strcmp(got, want))
        fail_msg("kv_parse_json(%s): got [%s], want [%s]", in, got, want);
    free(got);
    kv_free(&l);
}

static void expect_json_error(const char *in, const char *msg)
{
    struct kvlist l = KVLIST_INIT;
    struct err err = ERR_INIT;
    assert_int_equal(kv_parse_json(&l, in, &err), -EINVAL);
    assert_string_equal(err.msg, msg);
    assert_int_equal(l.n, 0);
    kv_free(&l);
}

static void test_json(void **state)
{
    (void)state;
    expect_json("{}", "");
    expect_json("{\"driver\":\"qcow2\",\"file\":{\"driver\":\"file\","
                "\"filename\":\"a,b.img\"}}",
                "driver=qcow2|file.driver=file|file.filename=a,b.img");
    expect_json("{\"a\":{\"b\":{\"c\":\"d\"}},\"e\":\"f\"}", "a.b.c=d|e=f");
    expect_json("{\"n\":42,\"t\":true,\"f\":false,\"x\":1.5}",
                "n=42|t=true|f=false|x=1.5");
    expect_json("{\"l\":[\"a\",\"b\"]}", "l.0=a|l.1=b");
    expect_json("{\"l\":[{\"k\":\"v\"}]}", "l.0.k=v");
    expect_json("  {\"a\":\"b\"}  ", "a=b");
    /* Already dotted keys stay as they are. */
    expect_json("{\"file.filename\":\"x\"}", "file.filename=x");

    /* qemu-img's messages for 'json:...' that does not parse. */
    expect_json_error("", "Could not parse the JSON options: Expecting a JSON value");
    expect_json_error("  ", "Could not parse the JSON options: Expecting a JSON value");
    expect_json_error("{\"a\":1", "Could not parse the JSON options: JSON parse error, premature EOI");
    expect_json_error("{\"a\":1}x", "Could not parse the JSON options: Expecting at most one JSON value");
    expect_json_error("\"s\"", "Invalid JSON object given");
    expect_json_error("[1]", "Invalid JSON object given");
}

static void test_get_used(void **state)
{
    (void)state;
    struct kvlist l = KVLIST_INIT;
    struct err err = ERR_INIT;
    assert_int_equal(kv_parse(&l, "a=1,b=2,a=3", NULL, &err), 0);
    assert_ptr_equal(kv_first_unused(&l), &l.items[0]);

    /* kv_peek neither marks nor changes the answer. */
    assert_string_equal(kv_peek(&l, "a"), "3");
    assert_ptr_equal(kv_first_unused(&l), &l.items[0]);
    assert_true(kv_has(&l, "b"));
    assert_false(kv_has(&l, "c"));
    assert_null(kv_peek(&l, "c"));

    /* kv_get returns the last value and marks every duplicate. */
    assert_string_equal(kv_get(&l, "a"), "3");
    assert_true(l.items[0].used);
    assert_true(l.items[2].used);
    assert_false(l.items[1].used);
    assert_string_equal(kv_first_unused(&l)->key, "b");
    assert_null(kv_get(&l, "zz"));
    assert_string_equal(kv_get(&l, "b"), "2");
    assert_null(kv_first_unused(&l));
    kv_free(&l);
}

static void test_set_del_copy(void **state)
{
    (void)state;
    struct kvlist l = KVLIST_INIT, c = KVLIST_INIT;
    struct err err = ERR_INIT;
    char *got;
    assert_int_equal(kv_parse(&l, "a=1,b=2,a=3,c=4", NULL, &err), 0);
    assert_int_equal(kv_set(&l, "a", "9"), 0);
    got = dump(&l);
    assert_string_equal(got, "a=9|b=2|c=4");   /* one item, first place */
    free(got);
    assert_int_equal(kv_set(&l, "d", "5"), 0);
    assert_int_equal(kv_set_u64(&l, "size", UINT64_MAX), 0);
    got = dump(&l);
    assert_string_equal(got, "a=9|b=2|c=4|d=5|size=18446744073709551615");
    free(got);
    assert_int_equal(kv_del(&l, "b"), 1);
    assert_int_equal(kv_del(&l, "b"), 0);
    assert_int_equal(kv_copy(&c, &l), 0);
    assert_int_equal(kv_copy(&c, &l), 0);      /* appends */
    assert_int_equal(c.n, 2 * l.n);
    assert_int_equal(kv_del(&c, "a"), 2);
    got = dump(&c);
    assert_string_equal(got, "c=4|d=5|size=18446744073709551615|"
                             "c=4|d=5|size=18446744073709551615");
    free(got);
    kv_free(&l);
    kv_free(&c);
}

static void test_take_prefix(void **state)
{
    (void)state;
    struct kvlist l = KVLIST_INIT, f = KVLIST_INIT;
    struct err err = ERR_INIT;
    char *got;
    assert_int_equal(kv_parse(&l, "driver=qcow2,file.driver=file,"
                     "file.filename=x,filex=1,file.=2,file=3,"
                     "backing.file.filename=b,file.aio=native", NULL, &err), 0);
    kv_take_prefix(&f, &l, "file.");
    got = dump(&f);
    assert_string_equal(got, "driver=file|filename=x|aio=native");
    free(got);
    got = dump(&l);
    assert_string_equal(got, "driver=qcow2|filex=1|file.=2|file=3|"
                             "backing.file.filename=b");
    free(got);
    /* Nested prefixes peel one level at a time. */
    struct kvlist b = KVLIST_INIT, bf = KVLIST_INIT;
    kv_take_prefix(&b, &l, "backing.");
    kv_take_prefix(&bf, &b, "file.");
    got = dump(&bf);
    assert_string_equal(got, "filename=b");
    free(got);
    assert_int_equal(b.n, 0);
    kv_free(&l);
    kv_free(&f);
    kv_free(&b);
    kv_free(&bf);
}

static void test_typed(void **state)
{
    (void)state;
    struct kvlist l = KVLIST_INIT;
    struct err err = ERR_INIT;
    bool bv;
    uint64_t u;
    assert_int_equal(kv_parse(&l, "on=on,off=off,yes=yes,no=no,t=true,"
                     "f=false,yy=y,nn=n,bad=maybe,sz=64k,szbad=abc,n=0x10,nbad=-1,"
                     "nbad2=12x,nempty=", NULL, &err), 0);
    static const struct { const char *k; bool v; } bools[] = {
        { "on", true }, { "off", false }, { "yes", true }, { "no", false },
        { "t", true }, { "f", false }, { "yy", true }, { "nn", false },
    };
    for (size_t i = 0; i < 8; i++) {
        assert_int_equal(kv_get_bool(&l, bools[i].k, !bools[i].v, &bv, &err), 0);
        assert_int_equal(bv, bools[i].v);
    }
    assert_int_equal(kv_get_bool(&l, "absent", true, &bv, &err), 0);
    assert_true(bv);
    assert_int_equal(kv_get_bool(&l, "bad", false, &bv, &err), -EINVAL);
    assert_string_equal(err.msg, "Parameter 'bad' expects 'on' or 'off'");
    err_clear(&err);

    assert_int_equal(kv_get_size(&l, "sz", 1, &u, &err), 0);
    assert_int_equal(u, 65536);
    assert_int_equal(kv_get_size(&l, "absent", 77, &u, &err), 0);
    assert_int_equal(u, 77);
    assert_int_equal(kv_get_size(&l, "szbad", 0, &u, &err), -EINVAL);
    assert_string_equal(err.msg,
        "Parameter 'szbad' expects a non-negative number below 2^64\n"
        "Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\n"
        "and exabytes, respectively.");
    err_clear(&err);

    assert_int_equal(kv_get_u64(&l, "n", 0, &u, &err), 0);
    assert_int_equal(u, 16);
    assert_int_equal(kv_get_u64(&l, "nbad", 0, &u, &err), -EINVAL);
    err_clear(&err);
    assert_int_equal(kv_get_u64(&l, "nbad2", 0, &u, &err), -EINVAL);
    err_clear(&err);
    assert_int_equal(kv_get_u64(&l, "nempty", 0, &u, &err), -EINVAL);
    assert_string_equal(err.msg, "Parameter 'nempty' expects a number");
    err_clear(&err);
    /* Every getter marks what it read. */
    assert_null(kv_first_unused(&l));
    kv_free(&l);
}

static void expect_roundtrip(const char *in)
{
    struct kvlist a = KVLIST_INIT, b = KVLIST_INIT;
    struct err err = ERR_INIT;
    assert_int_equal(kv_parse(&a, in, NULL, &err), 0);
    char *s = kv_to_string(&a);
    assert_non_null(s);
    assert_int_equal(kv_parse(&b, s, NULL, &err), 0);
    char *da = dump(&a), *db = dump(&b);
    if (strcmp(da, db))
        fail_msg("\"%s\" rendered as \"%s\" reads back as [%s]", in, s, db);
    free(da);
    free(db);
    free(s);
    kv_free(&a);
    kv_free(&b);
}

static void test_to_string(void **state)
{
    (void)state;
    struct kvlist l = KVLIST_INIT;
    struct err err = ERR_INIT;
    char *s = kv_to_string(&l);
    assert_string_equal(s, "");
    free(s);
    assert_int_equal(kv_parse(&l, "driver=raw,file.filename=a,,b", NULL, &err), 0);
    s = kv_to_string(&l);
    assert_string_equal(s, "driver=raw,file.filename=a,,b");
    free(s);
    kv_free(&l);
    expect_roundtrip("a=1,b=,c=x,,y,,,,z");
    expect_roundtrip("k,,ey=v,,al");       /* commas in a key survive */
    expect_roundtrip("=x,a==b");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_parse_appends),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_get_used),
        cmocka_unit_test(test_set_del_copy),
        cmocka_unit_test(test_take_prefix),
        cmocka_unit_test(test_typed),
        cmocka_unit_test(test_to_string),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
