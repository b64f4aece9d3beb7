/* kvopts: see kvopts.h. */
#include "util/kvopts.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "util/size.h"

void kv_init(struct kvlist *l)
{
    l->items = NULL;
    l->n = l->cap = 0;
}

void kv_free(struct kvlist *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++) {
        free(l->items[i].key);
        free(l->items[i].val);
    }
    free(l->items);
    kv_init(l);
}

static int kv_append(struct kvlist *l, const char *key, size_t keylen,
                     const char *val, size_t vallen)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        struct kv *n = realloc(l->items, cap * sizeof(*n));
        if (!n)
            return -ENOMEM;
        l->items = n;
        l->cap = cap;
    }
    struct kv *kv = &l->items[l->n];
    kv->key = strndup(key, keylen);
    kv->val = strndup(val, vallen);
    kv->used = false;
    if (!kv->key || !kv->val) {
        free(kv->key);
        free(kv->val);
        return -ENOMEM;
    }
    l->n++;
    return 0;
}

int kv_copy(struct kvlist *dst, const struct kvlist *src)
{
    for (size_t i = 0; i < src->n; i++) {
        const struct kv *kv = &src->items[i];
        int r = kv_append(dst, kv->key, strlen(kv->key), kv->val, strlen(kv->val));
        if (r < 0)
            return r;
    }
    return 0;
}

/* Read one token up to an unescaped `stop` (or end); ",," becomes ",". */
static char *read_token(const char **p, char stop)
{
    const char *s = *p;
    size_t cap = strlen(s) + 1, n = 0;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    while (*s) {
        if (*s == ',') {
            if (s[1] == ',') {
                out[n++] = ',';
                s += 2;
                continue;
            }
            break;
        }
        if (*s == stop)
            break;
        out[n++] = *s++;
    }
    out[n] = 0;
    *p = s;
    return out;
}

int kv_parse(struct kvlist *l, const char *str, const char *implied_key,
             struct err *err)
{
    const char *p = str;
    bool first = true;
    while (*p) {
        char *key = read_token(&p, '=');
        char *val = NULL;
        int r;
        if (!key)
            return err_set(err, -ENOMEM, "Out of memory");
        if (*p == '=') {
            p++;
            val = read_token(&p, 0);
        } else if (first && implied_key) {
            val = key;
            key = strdup(implied_key);
        } else {
            r = err_set(err, -EINVAL, "Invalid parameter '%s'", key);
            free(key);
            return r;
        }
        if (!key || !val) {
            free(key);
            free(val);
            return err_set(err, -ENOMEM, "Out of memory");
        }
        r = kv_append(l, key, strlen(key), val, strlen(val));
        free(key);
        free(val);
        if (r < 0)
            return err_set(err, r, "Out of memory");
        first = false;
        if (*p == ',')
            p++;
    }
    return 0;
}

static int flatten_json(struct kvlist *l, const char *prefix,
                        struct json_object *obj, struct err *err)
{
    json_object_object_foreach(obj, key, val) {
        char *full;
        int r = 0;
        if (asprintf(&full, "%s%s%s", prefix, *prefix ? "." : "", key) < 0)
            return err_set(err, -ENOMEM, "Out of memory");
        switch (json_object_get_type(val)) {
        case json_type_object:
            r = flatten_json(l, full, val, err);
            break;
        case json_type_array: {
            size_t n = json_object_array_length(val);
            for (size_t i = 0; i < n && r == 0; i++) {
                struct json_object *e = json_object_array_get_idx(val, i);
                char *ek;
                if (asprintf(&ek, "%s.%zu", full, i) < 0) {
                    r = err_set(err, -ENOMEM, "Out of memory");
                    break;
                }
                if (json_object_get_type(e) == json_type_object) {
                    r = flatten_json(l, ek, e, err);
                } else {
                    const char *s = json_object_get_string(e);
                    r = kv_append(l, ek, strlen(ek), s, strlen(s));
                }
                free(ek);
            }
            break;
        }
        case json_type_null:
            break;
        default: {
            const char *s = json_object_get_string(val);
            r = kv_append(l, full, strlen(full), s, strlen(s));
            if (r < 0)
                err_set(err, r, "Out of memory");
            break;
        }
        }
        free(full);
        if (r < 0)
            return r;
    }
    return 0;
}

int kv_parse_json(struct kvlist *l, const char *json, struct err *err)
{
    /* qemu's wording for the common failures: nothing, an unfinished
     * value, more than one value, anything else. */
    static const char prefix[] = "Could not parse the JSON options: ";
    const char *p = json;
    while (isspace((unsigned char)*p))
        p++;
    if (!*p)
        return err_set(err, -EINVAL, "%sExpecting a JSON value", prefix);
    size_t len = strlen(json);
    if (len > INT_MAX)
        return err_set(err, -EINVAL, "%sJSON parse error", prefix);
    struct json_tokener *tok = json_tokener_new();
    if (!tok)
        return err_set(err, -ENOMEM, "Out of memory");
    struct json_object *obj = json_tokener_parse_ex(tok, json, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    int r;
    if (!obj) {
        if (jerr == json_tokener_continue || jerr == json_tokener_success)
            return err_set(err, -EINVAL, "%sJSON parse error, premature EOI",
                           prefix);
        return err_set(err, -EINVAL, "%sJSON parse error, %s", prefix,
                       json_tokener_error_desc(jerr));
    }
    for (p = json + end; isspace((unsigned char)*p); p++)
        ;
    if (*p) {
        json_object_put(obj);
        return err_set(err, -EINVAL, "%sExpecting at most one JSON value",
                       prefix);
    }
    if (json_object_get_type(obj) != json_type_object) {
        json_object_put(obj);
        return err_set(err, -EINVAL, "Invalid JSON object given");
    }
    r = flatten_json(l, "", obj, err);
    json_object_put(obj);
    return r;
}

const char *kv_peek(const struct kvlist *l, const char *key)
{
    for (size_t i = l->n; i-- > 0;)
        if (!strcmp(l->items[i].key, key))
            return l->items[i].val;
    return NULL;
}

const char *kv_get(struct kvlist *l, const char *key)
{
    const char *v = NULL;
    for (size_t i = 0; i < l->n; i++) {
        if (!strcmp(l->items[i].key, key)) {
            l->items[i].used = true;
            v = l->items[i].val;
        }
    }
    return v;
}

bool kv_has(const struct kvlist *l, const char *key)
{
    return kv_peek(l, key) != NULL;
}

size_t kv_del(struct kvlist *l, const char *key)
{
    size_t j = 0, removed = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (!strcmp(l->items[i].key, key)) {
            free(l->items[i].key);
            free(l->items[i].val);
            removed++;
        } else {
            l->items[j++] = l->items[i];
        }
    }
    l->n = j;
    return removed;
}

int kv_set(struct kvlist *l, const char *key, const char *val)
{
    for (size_t i = 0; i < l->n; i++) {
        if (!strcmp(l->items[i].key, key)) {
            char *v = strdup(val);
            if (!v)
                return -ENOMEM;
            free(l->items[i].val);
            l->items[i].val = v;
            /* drop later duplicates so exactly one remains */
            for (size_t k = i + 1; k < l->n;) {
                if (!strcmp(l->items[k].key, key)) {
                    free(l->items[k].key);
                    free(l->items[k].val);
                    memmove(&l->items[k], &l->items[k + 1],
                            (l->n - k - 1) * sizeof(l->items[0]));
                    l->n--;
                } else {
                    k++;
                }
            }
            return 0;
        }
    }
    return kv_append(l, key, strlen(key), val, strlen(val));
}

int kv_set_u64(struct kvlist *l, const char *key, uint64_t val)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%" PRIu64, val);
    return kv_set(l, key, buf);
}

int kv_get_bool(struct kvlist *l, const char *key, bool def, bool *out,
                struct err *err)
{
    const char *v = kv_get(l, key);
    *out = def;
    if (!v)
        return 0;
    if (!strcmp(v, "on") || !strcmp(v, "yes") || !strcmp(v, "true") ||
        !strcmp(v, "y")) {
        *out = true;
    } else if (!strcmp(v, "off") || !strcmp(v, "no") || !strcmp(v, "false") ||
               !strcmp(v, "n")) {
        *out = false;
    } else {
        return err_set(err, -EINVAL,
                       "Parameter '%s' expects 'on' or 'off'", key);
    }
    return 0;
}

int kv_get_size(struct kvlist *l, const char *key, uint64_t def,
                uint64_t *out, struct err *err)
{
    const char *v = kv_get(l, key);
    *out = def;
    if (!v)
        return 0;
    if (parse_size(v, out) < 0)
        return err_set(err, -EINVAL,
                       "Parameter '%s' expects a non-negative number below 2^64\n"
                       "Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\n"
                       "and exabytes, respectively.", key);
    return 0;
}

int kv_get_u64(struct kvlist *l, const char *key, uint64_t def,
               uint64_t *out, struct err *err)
{
    const char *v = kv_get(l, key);
    char *end;
    *out = def;
    if (!v)
        return 0;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 0);
    if (!*v || *end || errno || *v == '-')
        return err_set(err, -EINVAL, "Parameter '%s' expects a number", key);
    *out = n;
    return 0;
}

void kv_take_prefix(struct kvlist *dst, struct kvlist *src, const char *prefix)
{
    size_t plen = strlen(prefix), j = 0;
    for (size_t i = 0; i < src->n; i++) {
        struct kv *kv = &src->items[i];
        if (!strncmp(kv->key, prefix, plen) && kv->key[plen]) {
            kv_append(dst, kv->key + plen, strlen(kv->key + plen), kv->val,
                      strlen(kv->val));
            free(kv->key);
            free(kv->val);
        } else {
            src->items[j++] = *kv;
        }
    }
    src->n = j;
}

const struct kv *kv_first_unused(const struct kvlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        if (!l->items[i].used)
            return &l->items[i];
    return NULL;
}

char *kv_to_string(const struct kvlist *l)
{
    size_t cap = 1;
    for (size_t i = 0; i < l->n; i++)
        cap += 2 * strlen(l->items[i].key) + 2 * strlen(l->items[i].val) + 2;
    char *s = malloc(cap), *p = s;
    if (!s)
        return NULL;
    for (size_t i = 0; i < l->n; i++) {
        if (i)
            *p++ = ',';
        /* Keys escape commas too, so kv_parse reads back the same list. */
        for (const char *k = l->items[i].key; *k; k++) {
            if (*k == ',')
                *p++ = ',';
            *p++ = *k;
        }
        *p++ = '=';
        for (const char *v = l->items[i].val; *v; v++) {
            if (*v == ',')
                *p++ = ',';
            *p++ = *v;
        }
    }
    *p = 0;
    return s;
}
