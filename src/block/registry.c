/* registry: every driver qimg knows, in probe order (raw last). */
#include "block/registry.h"

#include <string.h>

extern const struct driver drv_file;
extern const struct driver drv_raw;
extern const struct driver drv_vpc;
extern const struct driver drv_vdi;
extern const struct driver drv_qed;
extern const struct driver drv_qcow;
extern const struct driver drv_parallels;
extern const struct driver drv_bochs;
extern const struct driver drv_cloop;
extern const struct driver drv_dmg;
extern const struct driver drv_qcow2;
extern const struct driver drv_vmdk;
extern const struct driver drv_vhdx;

const struct driver *const registry_drivers[] = {
    &drv_file,
    &drv_vmdk,
    &drv_vhdx,
    &drv_vpc,
    &drv_vdi,
    &drv_qed,
    &drv_qcow,
    &drv_parallels,
    &drv_bochs,
    &drv_cloop,
    &drv_dmg,
    &drv_qcow2,
    &drv_raw,
    NULL,
};

const struct driver *registry_find(const char *name)
{
    for (int i = 0; registry_drivers[i]; i++) {
        const struct driver *d = registry_drivers[i];
        if (!strcmp(d->name, name) || (d->alias && !strcmp(d->alias, name)))
            return d;
    }
    return NULL;
}

const struct driver *registry_probe(struct bdev *file, const uint8_t *buf,
                                    size_t len, const char *filename)
{
    const struct driver *best = NULL;
    int best_score = 0;
    for (int i = 0; registry_drivers[i]; i++) {
        const struct driver *d = registry_drivers[i];
        if (d->kind != DRV_FORMAT || !d->probe)
            continue;
        int s = d->probe(file, buf, len, filename);
        if (s > best_score) {
            best_score = s;
            best = d;
        }
    }
    return best;
}
