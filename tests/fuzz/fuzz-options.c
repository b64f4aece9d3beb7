/* fuzz-options: the option and size parsers that read user strings
 * (kv_parse with and without an implied key, kv_parse_json, parse_size,
 * kv_to_string round trip).  Input: arbitrary bytes, used as a C string. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/kvopts.h"
#include "util/size.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = 0;

    struct kvlist l = KVLIST_INIT;
    struct err err = ERR_INIT;
    if (kv_parse(&l, s, size & 1 ? "driver" : NULL, &err) == 0) {
        /* What was parsed renders to a string that parses to the same. */
        char *again = kv_to_string(&l);
        if (again) {
            struct kvlist l2 = KVLIST_INIT;
            struct err e2 = ERR_INIT;
            if (kv_parse(&l2, again, NULL, &e2) != 0 || l2.n != l.n)
                abort();
            for (size_t i = 0; i < l.n; i++)
                if (strcmp(l.items[i].key, l2.items[i].key) ||
                    strcmp(l.items[i].val, l2.items[i].val))
                    abort();
            kv_free(&l2);
            free(again);
        }
        uint64_t v;
        kv_get_size(&l, "size", 0, &v, &err);
        struct kvlist sub = KVLIST_INIT;
        kv_take_prefix(&sub, &l, "file.");
        kv_free(&sub);
    }
    kv_free(&l);

    err_clear(&err);
    kv_parse_json(&l, s, &err);
    kv_free(&l);

    uint64_t v;
    parse_size(s, &v);
    free(s);
    return 0;
}
