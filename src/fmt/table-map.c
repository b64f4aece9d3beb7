/* table-map: the table cache, file growth and empty-file creation shared
 * by the table-based formats (see table-map.h). */
#include "fmt/table-map.h"

#include <errno.h>
#include <stdlib.h>

#include "util/endian.h"

void tmap_cache_init(struct tmap_cache *c, uint64_t entries,
                     enum tmap_entry kind)
{
    c->clock = 0;
    c->entries = entries;
    c->kind = kind;
}

static uint64_t entry_bytes(const struct tmap_cache *c)
{
    return c->kind == TMAP_LE32 ? 4 : 8;
}

static void decode(const struct tmap_cache *c, void *table)
{
    uint64_t *t64 = table;
    uint32_t *t32 = table;
    /* In place: each entry is read before it is overwritten. */
    for (uint64_t i = 0; i < c->entries; i++) {
        switch (c->kind) {
        case TMAP_LE32: t32[i] = ld_le32(&t32[i]); break;
        case TMAP_LE64: t64[i] = ld_le64(&t64[i]); break;
        case TMAP_BE64: t64[i] = ld_be64(&t64[i]); break;
        }
    }
}

int tmap_cache_get(struct tmap_cache *c, struct bdev *file, uint64_t off,
                   void **table, struct err *err)
{
    struct tmap_slot *victim = &c->slot[0];
    for (int i = 0; i < TMAP_CACHE_SLOTS; i++) {
        struct tmap_slot *s = &c->slot[i];
        if (s->table && s->off == off) {
            s->age = ++c->clock;
            *table = s->table;
            return 0;
        }
        if (!s->table || (victim->table && s->age < victim->age))
            victim = s;
    }
    uint64_t bytes = c->entries * entry_bytes(c);
    if (!victim->table && !(victim->table = malloc(bytes ? bytes : 1)))
        return err_set(err, -ENOMEM, "Out of memory");
    victim->off = 0;
    int r = bdev_pread(file, off, bytes, victim->table, err);
    if (r < 0)
        return r;
    decode(c, victim->table);
    victim->off = off;
    victim->age = ++c->clock;
    *table = victim->table;
    return 0;
}

void tmap_cache_drop(struct tmap_cache *c)
{
    for (int i = 0; i < TMAP_CACHE_SLOTS; i++) {
        free(c->slot[i].table);
        c->slot[i].table = NULL;
        c->slot[i].off = 0;
    }
}

int tmap_grow_file(struct bdev *file, uint64_t end, struct err *err)
{
    if (end <= file->size)
        return 0;
    return bdev_truncate(file, end, false, PREALLOC_OFF, err);
}

int tmap_create_empty_file(const char *filename, struct kvlist *opts,
                           struct err *err)
{
    struct kvlist o = KVLIST_INIT;
    int r = kv_copy(&o, opts);
    if (r >= 0)
        r = kv_set_u64(&o, "size", 0);
    if (r < 0)
        r = err_set(err, -ENOMEM, "Out of memory");
    else
        r = bdev_create_file(filename, &o, err);
    kv_free(&o);
    return r;
}
