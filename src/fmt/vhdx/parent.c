/* vhdx/parent.c: differencing VHDX images ([MS-VHDX] 2.6.2.6, Parent
 * Locator).  The locator is a list of UTF-16LE key/value pairs; the parent
 * is named by relative_path, absolute_win32_path or volume_path (Windows
 * paths: relative ones are followed from the child's directory, absolute
 * ones keep their file name, looked up beside the child), and must carry,
 * as its current data write GUID, the parent_linkage (or parent_linkage2)
 * recorded in the child. */
#include "fmt/vhdx/vhdx.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/align.h"
#include "util/endian.h"
#include "util/winpath.h"

static const uint8_t vhdx_guid_locator_type[16] = { 0xb7, 0xef, 0x4a, 0xb0,
    0x9e, 0xd1, 0x81, 0x4a, 0xb7, 0x89, 0x25, 0xb8, 0xe9, 0x44, 0x59, 0x13 };

enum { K_LINKAGE, K_LINKAGE2, K_RELATIVE, K_ABSOLUTE, K_VOLUME, K_COUNT };
static const char *const key_names[K_COUNT] = { "parent_linkage",
    "parent_linkage2", "relative_path", "absolute_win32_path", "volume_path" };

/* "{xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}" for a GUID stored as on disk. */
static void guid_string(const uint8_t *g, char out[39])
{
    snprintf(out, 39, "{%08x-%04x-%04x-%02x%02x-%02x%02x%02x%02x%02x%02x}",
             ld_le32(g), ld_le16(g + 4), ld_le16(g + 6), g[8], g[9], g[10],
             g[11], g[12], g[13], g[14], g[15]);
}

/* The current data write GUID of the VHDX file at `path`; false when it
 * has no valid header. */
static bool parent_data_guid(const char *path, uint8_t guid[16])
{
    struct err e = ERR_INIT;
    struct bdev *file = bdev_open_file(path, BDEV_O_NO_LOCK, &e);
    uint8_t *b = malloc(VHDX_HEADER_SIZE);
    struct vhdx_header h[2];
    bool ok[2] = { false, false };
    if (file && b) {
        for (int i = 0; i < 2; i++)
            ok[i] = bdev_pread(file, i ? VHDX_HEADER2_OFF : VHDX_HEADER1_OFF,
                               VHDX_HEADER_SIZE, b, &e) == 0 &&
                    vhdx_header_decode(b, &h[i]);
    }
    free(b);
    bdev_close(file);
    err_clear(&e);
    if (!ok[0] && !ok[1])
        return false;
    int cur = ok[0] && ok[1] ? h[1].seq > h[0].seq : ok[1];
    memcpy(guid, h[cur].data_write_guid, 16);
    return true;
}

int vhdx_parse_parent(struct bdev *bs, const uint8_t *item, uint32_t len,
                      struct err *err)
{
    char *val[K_COUNT] = { NULL };
    char *names[3] = { NULL };
    int n = 0, r = 0;

    if (len < 20 || memcmp(item, vhdx_guid_locator_type, 16))
        return err_set(err, -ENOTSUP, "Unsupported VHDX parent locator type");
    uint16_t count = ld_le16(item + 18);
    if (20 + 12 * (uint64_t)count > len)
        return err_set(err, -EINVAL, "Invalid VHDX parent locator (%u entries "
                       "in %u bytes)", count, len);
    for (uint16_t i = 0; i < count; i++) {
        const uint8_t *e = item + 20 + 12 * (uint64_t)i;
        uint32_t ko = ld_le32(e), vo = ld_le32(e + 4);
        uint16_t kl = ld_le16(e + 8), vl = ld_le16(e + 10);
        if (!range_within(ko, kl, len) || !range_within(vo, vl, len) ||
            kl % 2 || vl % 2 || !kl || !vl) {
            r = err_set(err, -EINVAL, "Invalid VHDX parent locator entry %u", i);
            goto out;
        }
        char *key = utf16_to_utf8(item + ko, kl, false);
        if (!key) {
            r = err_set(err, -EINVAL, "Invalid VHDX parent locator entry %u", i);
            goto out;
        }
        int which = -1;
        for (int k = 0; k < K_COUNT; k++)
            if (!strcmp(key, key_names[k]))
                which = k;
        free(key);
        if (which < 0)
            continue;
        if (val[which]) {
            r = err_set(err, -EINVAL, "Duplicate VHDX parent locator key '%s'",
                        key_names[which]);
            goto out;
        }
        val[which] = utf16_to_utf8(item + vo, vl, false);
        if (!val[which]) {
            r = err_set(err, -EINVAL, "Invalid VHDX parent locator value for "
                        "'%s'", key_names[which]);
            goto out;
        }
    }
    if (!val[K_LINKAGE]) {
        r = err_set(err, -EINVAL, "VHDX parent locator lacks parent_linkage");
        goto out;
    }
    static const struct { int key; bool absolute; } order[] = {
        { K_RELATIVE, false }, { K_ABSOLUTE, true }, { K_VOLUME, true } };
    for (int k = 0; k < 3; k++) {
        const char *v = val[order[k].key];
        if (!v || !v[0])
            continue;
        char *name = winpath_to_posix(v, order[k].absolute);
        if (!name) {
            r = err_set(err, -ENOMEM, "Out of memory");
            goto out;
        }
        if (name[0])
            names[n++] = name;
        else
            free(name);
    }
    if (n == 0) {
        r = err_set(err, -EINVAL, "VHDX parent locator names no parent file");
        goto out;
    }
    r = bdev_choose_backing(bs, names, n, "vhdx", err);
    if (r < 0)
        goto out;
    if (!(bs->flags & BDEV_O_NO_BACKING)) {
        uint8_t g[16];
        char gs[39];
        char *path = bdev_resolve_backing(bs, bs->backing_file);
        if (path && parent_data_guid(path, g)) {
            guid_string(g, gs);
            if (strcasecmp(gs, val[K_LINKAGE]) &&
                (!val[K_LINKAGE2] || strcasecmp(gs, val[K_LINKAGE2])))
                r = err_set(err, -EINVAL, "Could not open backing file: '%s' "
                            "is not the parent of this differencing image "
                            "(parent_linkage %s, its data write GUID %s)",
                            path, val[K_LINKAGE], gs);
        }
        free(path);
    }
out:
    for (int k = 0; k < K_COUNT; k++)
        free(val[k]);
    for (int i = 0; i < n; i++)
        free(names[i]);
    return r;
}
