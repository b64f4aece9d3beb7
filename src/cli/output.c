/* output: printing json-c values the way qemu-img prints its results.
 *
 * JSON: qemu-img keeps objects in a 512-bucket hash table and prints them
 * in bucket order (within a bucket, the key added last comes first), so
 * the key order of its output follows from the key names alone.  We sort
 * keys the same way, which lets drivers build their json-c objects in any
 * order.  Strings escape every character outside printable ASCII as \uXXXX.
 * Human: the "Format specific information" dump: keys with '-' shown as
 * ' ', nested objects and lists indented by four spaces per level. */
#include "cli/cli.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#define QDICT_BUCKETS 512

/* The bucket qemu's dictionary puts `key` in (a TDB-style string hash). */
static unsigned key_bucket(const char *key)
{
    size_t len = strlen(key);
    uint32_t v = (uint32_t)(0x238F13AFu * (uint32_t)len);
    for (size_t i = 0; i < len; i++)
        v += (uint32_t)(unsigned char)key[i] << (i * 5 % 24);
    return (uint32_t)(1103515243u * v + 12345u) % QDICT_BUCKETS;
}

struct member {
    const char *key;
    struct json_object *val;
    unsigned bucket;
    size_t seq;
};

static int cmp_member(const void *a, const void *b)
{
    const struct member *x = a, *y = b;
    if (x->bucket != y->bucket)
        return x->bucket < y->bucket ? -1 : 1;
    return x->seq > y->seq ? -1 : x->seq < y->seq;   /* newest first */
}

/* The members of `obj` in qemu's order; caller frees. */
static struct member *sorted_members(struct json_object *obj, size_t *count)
{
    size_t n = (size_t)json_object_object_length(obj), i = 0;
    struct member *m = calloc(n ? n : 1, sizeof(*m));
    if (!m) {
        *count = 0;
        return NULL;
    }
    json_object_object_foreach(obj, key, val) {
        m[i].key = key;
        m[i].val = val;
        m[i].bucket = key_bucket(key);
        m[i].seq = i;
        i++;
    }
    qsort(m, n, sizeof(*m), cmp_member);
    *count = n;
    return m;
}

/* Decode one UTF-8 sequence; invalid input yields U+FFFD for one byte. */
static uint32_t utf8_next(const unsigned char **pp)
{
    const unsigned char *p = *pp;
    uint32_t cp;
    int extra;
    if (p[0] < 0x80) {
        *pp = p + 1;
        return p[0];
    } else if ((p[0] & 0xE0) == 0xC0) {
        cp = p[0] & 0x1F;
        extra = 1;
    } else if ((p[0] & 0xF0) == 0xE0) {
        cp = p[0] & 0x0F;
        extra = 2;
    } else if ((p[0] & 0xF8) == 0xF0) {
        cp = p[0] & 0x07;
        extra = 3;
    } else {
        *pp = p + 1;
        return 0xFFFD;
    }
    for (int i = 1; i <= extra; i++) {
        if ((p[i] & 0xC0) != 0x80) {
            *pp = p + 1;
            return 0xFFFD;
        }
        cp = cp << 6 | (p[i] & 0x3F);
    }
    *pp = p + 1 + extra;
    if ((extra == 1 && cp < 0x80) || (extra == 2 && cp < 0x800) ||
        (extra == 3 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0xFFFD;
    return cp;
}

static void print_quoted(FILE *f, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    fputc('"', f);
    while (*p) {
        uint32_t cp = utf8_next(&p);
        switch (cp) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\b': fputs("\\b", f); break;
        case '\f': fputs("\\f", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (cp > 0xFFFF)
                fprintf(f, "\\u%04X\\u%04X", 0xD800 + ((cp - 0x10000) >> 10),
                        0xDC00 + ((cp - 0x10000) & 0x3FF));
            else if (cp < 0x20 || cp >= 0x7F)
                fprintf(f, "\\u%04X", cp);
            else
                fputc((int)cp, f);
        }
    }
    fputc('"', f);
}

static void print_number(FILE *f, struct json_object *v)
{
    if (json_object_get_type(v) == json_type_double) {
        fprintf(f, "%.17g", json_object_get_double(v));
        return;
    }
    int64_t i = json_object_get_int64(v);
    if (i == INT64_MAX && json_object_get_uint64(v) > (uint64_t)INT64_MAX)
        fprintf(f, "%" PRIu64, json_object_get_uint64(v));
    else
        fprintf(f, "%" PRId64, i);
}

/* depth < 0: compact form ("{"a": 1, "b": 2}"), as in json: names */
static void newline(FILE *f, int depth)
{
    if (depth >= 0)
        fprintf(f, "\n%*s", depth * 4, "");
}

static void separator(FILE *f, int depth, size_t i)
{
    if (i)
        fputc(',', f);
    if (depth >= 0)
        newline(f, depth + 1);
    else if (i)
        fputc(' ', f);
}

static void print_json(FILE *f, struct json_object *v, int depth)
{
    int inner = depth >= 0 ? depth + 1 : -1;
    switch (json_object_get_type(v)) {
    case json_type_null:
        fputs("null", f);
        break;
    case json_type_boolean:
        fputs(json_object_get_boolean(v) ? "true" : "false", f);
        break;
    case json_type_int:
    case json_type_double:
        print_number(f, v);
        break;
    case json_type_string:
        print_quoted(f, json_object_get_string(v));
        break;
    case json_type_object: {
        size_t n;
        struct member *m = sorted_members(v, &n);
        fputc('{', f);
        for (size_t i = 0; i < n; i++) {
            separator(f, depth, i);
            print_quoted(f, m[i].key);
            fputs(": ", f);
            print_json(f, m[i].val, inner);
        }
        free(m);
        newline(f, depth);
        fputc('}', f);
        break;
    }
    case json_type_array: {
        size_t n = json_object_array_length(v);
        fputc('[', f);
        for (size_t i = 0; i < n; i++) {
            separator(f, depth, i);
            print_json(f, json_object_array_get_idx(v, i), inner);
        }
        newline(f, depth);
        fputc(']', f);
        break;
    }
    }
}

void cli_print_json(FILE *f, struct json_object *obj)
{
    print_json(f, obj, 0);
}

void cli_print_json_compact(FILE *f, struct json_object *obj)
{
    print_json(f, obj, -1);
}

static void print_human_value(FILE *f, struct json_object *v, int indent);

static void print_human_list(FILE *f, struct json_object *arr, int indent)
{
    size_t n = json_object_array_length(arr);
    for (size_t i = 0; i < n; i++) {
        struct json_object *e = json_object_array_get_idx(arr, i);
        json_type t = json_object_get_type(e);
        bool composite = t == json_type_object || t == json_type_array;
        fprintf(f, "%*s[%zu]:%c", indent * 4, "", i, composite ? '\n' : ' ');
        print_human_value(f, e, indent + 1);
    }
}

void cli_print_human_dict(FILE *f, struct json_object *obj, int indent)
{
    size_t n;
    struct member *m = sorted_members(obj, &n);
    for (size_t i = 0; i < n; i++) {
        json_type t = json_object_get_type(m[i].val);
        bool composite = t == json_type_object || t == json_type_array;
        char *key = strdup(m[i].key);
        for (char *p = key; p && *p; p++)
            if (*p == '-')
                *p = ' ';
        fprintf(f, "%*s%s:%c", indent * 4, "", key ? key : m[i].key,
                composite ? '\n' : ' ');
        free(key);
        print_human_value(f, m[i].val, indent + 1);
    }
    free(m);
}

static void print_human_value(FILE *f, struct json_object *v, int indent)
{
    switch (json_object_get_type(v)) {
    case json_type_object:
        cli_print_human_dict(f, v, indent);
        break;
    case json_type_array:
        print_human_list(f, v, indent);
        break;
    case json_type_boolean:
        fprintf(f, "%s\n", json_object_get_boolean(v) ? "true" : "false");
        break;
    case json_type_int:
    case json_type_double:
        print_number(f, v);
        fputc('\n', f);
        break;
    case json_type_string:
        fprintf(f, "%s\n", json_object_get_string(v));
        break;
    case json_type_null:
        fputs("null\n", f);
        break;
    }
}
