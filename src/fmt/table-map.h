/* table-map: helpers shared by the formats that map guest offsets through
 * on-disk tables (qcow, qed, vdi, vmdk): a small least-recently-used cache
 * of decoded tables, growing the image file, and creating the empty file a
 * new image is written into.  Not a driver. */
#ifndef QIMG_FMT_TABLE_MAP_H
#define QIMG_FMT_TABLE_MAP_H

#include <stdint.h>

#include "block/driver.h"

#define TMAP_CACHE_SLOTS 16

/* How a table's entries are stored on disk. */
enum tmap_entry { TMAP_LE32, TMAP_LE64, TMAP_BE64 };

struct tmap_slot {
    uint64_t off;             /* file offset of the table; 0: empty slot */
    uint64_t age;
    void *table;              /* host order: uint32_t or uint64_t entries */
};

struct tmap_cache {
    struct tmap_slot slot[TMAP_CACHE_SLOTS];
    uint64_t clock;
    uint64_t entries;         /* entries per table */
    enum tmap_entry kind;
};

/* Set up a zeroed (or dropped) cache for tables of `entries` entries of
 * `kind`. */
void tmap_cache_init(struct tmap_cache *c, uint64_t entries,
                     enum tmap_entry kind);
/* The table at `off` (non-zero) in `file`, read and decoded on a miss.
 * The caller checks that the table lies inside the file.  The table stays
 * valid until the next call; callers may update its entries in place
 * after writing them to the file. */
int tmap_cache_get(struct tmap_cache *c, struct bdev *file, uint64_t off,
                   void **table, struct err *err);
/* Forget every table and free the memory (the cache stays usable). */
void tmap_cache_drop(struct tmap_cache *c);

/* Make sure `file` is at least `end` bytes long. */
int tmap_grow_file(struct bdev *file, uint64_t end, struct err *err);

/* Create the empty protocol file of a new image: the "size" option is the
 * virtual size, not the file's, so it is passed on as 0. */
int tmap_create_empty_file(const char *filename, struct kvlist *opts,
                           struct err *err);

#endif
