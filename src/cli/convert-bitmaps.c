/* convert-bitmaps: convert --bitmaps, copying every persistent dirty
 * bitmap of the source (name, granularity, enabled or disabled, dirty
 * bits) into the target after the data, as qemu-img 7.2 does.  Bitmaps
 * marked in use (inconsistent) stop the conversion before the target is
 * created, or with --skip-broken-bitmaps are left out with a warning.
 * The copy is one list of bitmap actions (add, merge from the source,
 * disable) applied by the format's bitmap support. */
#include "cli/cli.h"

#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

struct src_bitmap {
    const char *name;       /* points into the info object */
    uint64_t granularity;
    bool in_use, enabled;
};

/* The persistent bitmaps of `bs` as its format reports them; *info holds
 * the names and must be released with json_object_put.  Returns the count
 * (0 when the format reports none) or -1 after printing. */
static int list_bitmaps(struct bdev *bs, struct src_bitmap **out,
                        struct json_object **info)
{
    struct bdev_info bi;
    struct err err = ERR_INIT;
    struct json_object *list, *data;
    memset(&bi, 0, sizeof(bi));
    *out = NULL;
    *info = NULL;
    if (bdev_get_info(bs, &bi, &err) < 0) {
        if (bi.format_specific)
            json_object_put(bi.format_specific);
        cli_report(&err);
        return -1;
    }
    *info = bi.format_specific;
    if (!bi.format_specific)
        return 0;
    if (!json_object_object_get_ex(bi.format_specific, "bitmaps", &list) &&
        !(json_object_object_get_ex(bi.format_specific, "data", &data) &&
          json_object_object_get_ex(data, "bitmaps", &list)))
        return 0;
    if (!json_object_is_type(list, json_type_array))
        return 0;
    int n = (int)json_object_array_length(list);
    struct src_bitmap *v = calloc((size_t)n + 1, sizeof(*v));
    if (!v) {
        cli_error("Out of memory");
        return -1;
    }
    for (int i = 0; i < n; i++) {
        struct json_object *o = json_object_array_get_idx(list, (size_t)i);
        struct json_object *name, *gran, *flags;
        if (json_object_object_get_ex(o, "name", &name))
            v[i].name = json_object_get_string(name);
        if (json_object_object_get_ex(o, "granularity", &gran))
            v[i].granularity = (uint64_t)json_object_get_int64(gran);
        if (json_object_object_get_ex(o, "flags", &flags) &&
            json_object_is_type(flags, json_type_array)) {
            for (size_t k = 0; k < json_object_array_length(flags); k++) {
                const char *f = json_object_get_string(
                    json_object_array_get_idx(flags, k));
                v[i].in_use |= !strcmp(f, "in-use");
                v[i].enabled |= !strcmp(f, "auto");
            }
        }
        if (!v[i].name)
            v[i].name = "";
    }
    *out = v;
    return n;
}

/* qemu-img goes through a source's bitmaps last to first (the order it
 * holds them in memory), which decides which error or warning comes
 * first; the target still stores them in the source's order. */
int cli_convert_check_bitmaps(struct bdev *src, bool skip_broken)
{
    struct src_bitmap *v;
    struct json_object *info;
    int n = list_bitmaps(src, &v, &info), r = 0;
    for (int i = n - 1; i >= 0 && !skip_broken; i--) {
        if (v[i].in_use) {
            cli_error("Cannot copy inconsistent bitmap '%s'", v[i].name);
            fprintf(stderr, "Try --skip-broken-bitmaps, or use 'qemu-img "
                    "bitmap --remove' to delete it\n");
            r = -1;
            break;
        }
    }
    free(v);
    json_object_put(info);
    return n < 0 ? -1 : r;
}

int cli_convert_copy_bitmaps(struct bdev *src, struct bdev *dst)
{
    struct src_bitmap *v, *dv = NULL;
    struct json_object *info, *dinfo = NULL;
    struct bitmap_action *acts = NULL;
    int n = list_bitmaps(src, &v, &info), na = 0, failed = -1, r = 0;
    if (n <= 0) {
        json_object_put(info);
        return n;
    }
    /* Names the target already has (convert -n) fail as qemu-img's
     * first attempt to create one fails. */
    int dn = list_bitmaps(dst, &dv, &dinfo);
    for (int i = n - 1; i >= 0 && r == 0; i--) {
        if (v[i].in_use) {
            /* Refused before the copy without --skip-broken-bitmaps. */
            fprintf(stderr, "%s: warning: Skipping inconsistent bitmap "
                    "'%s'\n", cli_prog, v[i].name);
            continue;
        }
        for (int k = 0; k < dn; k++) {
            if (!strcmp(dv[k].name, v[i].name)) {
                cli_error("Failed to create bitmap %s: Bitmap already "
                          "exists: %s", v[i].name, v[i].name);
                r = -1;
                break;
            }
        }
    }
    if (dn < 0 || r < 0) {
        r = -1;
        goto out;
    }
    acts = calloc((size_t)n * 3, sizeof(*acts));
    if (!acts) {
        cli_error("Out of memory");
        r = -1;
        goto out;
    }
    for (int i = 0; i < n; i++) {
        if (v[i].in_use)
            continue;
        acts[na++] = (struct bitmap_action){
            .op = BITMAP_ACT_ADD, .name = v[i].name,
            .granularity = v[i].granularity,
        };
        acts[na++] = (struct bitmap_action){
            .op = BITMAP_ACT_MERGE, .name = v[i].name,
            .src_name = v[i].name, .src = src,
        };
        if (!v[i].enabled)
            acts[na++] = (struct bitmap_action){
                .op = BITMAP_ACT_DISABLE, .name = v[i].name,
            };
    }
    struct err err = ERR_INIT;
    if (na && bdev_bitmap_apply(dst, acts, na, &failed, &err) < 0) {
        if (failed < 0 || failed >= na)
            failed = 0;
        const struct bitmap_action *a = &acts[failed];
        cli_report_prefixed(&err, "Failed to %s bitmap %s: ",
                            a->op == BITMAP_ACT_ADD ? "create" :
                            a->op == BITMAP_ACT_MERGE ? "populate" : "disable",
                            a->name);
        r = -1;
    }
out:
    free(acts);
    free(v);
    free(dv);
    json_object_put(info);
    json_object_put(dinfo);
    return r;
}
