/* registry: the table of every driver (raw last, since it matches
 * anything). */
#ifndef QIMG_BLOCK_REGISTRY_H
#define QIMG_BLOCK_REGISTRY_H

#include "block/driver.h"

extern const struct driver *const registry_drivers[];

const struct driver *registry_find(const char *name);
/* Best-scoring format for the given first bytes (raw when nothing else). */
const struct driver *registry_probe(struct bdev *file, const uint8_t *buf,
                                    size_t len, const char *filename);

#endif
