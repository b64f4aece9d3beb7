/* kvopts: ordered key=value option lists, as given with -o, --image-opts,
 * json: pseudo-filenames and driver options.  Nested keys use dots
 * ("file.filename", "backing.driver").  Each item remembers whether a
 * consumer read it, so unknown options can be reported as qemu-img does. */
#ifndef QIMG_UTIL_KVOPTS_H
#define QIMG_UTIL_KVOPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

struct kv {
    char *key;
    char *val;
    bool used;
};

struct kvlist {
    struct kv *items;
    size_t n, cap;
};

#define KVLIST_INIT { NULL, 0, 0 }

void kv_init(struct kvlist *l);
void kv_free(struct kvlist *l);             /* frees contents, not l itself */
int kv_copy(struct kvlist *dst, const struct kvlist *src);  /* appends */

/* Parse "a=b,c=d" (",," is a literal comma) and append to `l`.  A first
 * token without '=' takes `implied_key` when non-NULL; otherwise a token
 * without '=' is an error.  An empty string adds nothing. */
int kv_parse(struct kvlist *l, const char *str, const char *implied_key,
             struct err *err);

/* Parse a "json:{...}" body (without the "json:" prefix), flattening nested
 * objects into dotted keys.  Scalars become strings ("true"/"false" for
 * booleans). */
int kv_parse_json(struct kvlist *l, const char *json, struct err *err);

/* Last value for `key`, marking every item with that key used; NULL when
 * absent. */
const char *kv_get(struct kvlist *l, const char *key);
/* Same without marking. */
const char *kv_peek(const struct kvlist *l, const char *key);
bool kv_has(const struct kvlist *l, const char *key);

/* Replace every value of `key` by one item (appended when absent). */
int kv_set(struct kvlist *l, const char *key, const char *val);
int kv_set_u64(struct kvlist *l, const char *key, uint64_t val);
/* Remove every item with `key`; returns how many. */
size_t kv_del(struct kvlist *l, const char *key);

/* Typed getters: 0 and *out = def when absent, -EINVAL with qemu-img's
 * message when malformed.  Booleans accept on/off, yes/no, true/false. */
int kv_get_bool(struct kvlist *l, const char *key, bool def, bool *out,
                struct err *err);
int kv_get_size(struct kvlist *l, const char *key, uint64_t def,
                uint64_t *out, struct err *err);
int kv_get_u64(struct kvlist *l, const char *key, uint64_t def,
               uint64_t *out, struct err *err);

/* Move every item whose key starts with `prefix` (e.g. "file.") from `src`
 * into `dst`, with the prefix removed. */
void kv_take_prefix(struct kvlist *dst, struct kvlist *src, const char *prefix);

/* First item no consumer read, or NULL. */
const struct kv *kv_first_unused(const struct kvlist *l);

/* Render back as "a=b,c=d" with commas escaped; caller frees. */
char *kv_to_string(const struct kvlist *l);

#endif
