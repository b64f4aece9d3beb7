/* info: qemu-io's "info" command: format name, cluster size, VM state
 * offset and the format-specific details.  Formats without format-level
 * information print only their name and fail, as in qemu-io; raw reports
 * zeros. */
#include "tool/tool.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "util/align.h"

/* qcow2 keeps the VM state after the last L1 entry the disk needs. */
static int64_t vm_state_offset(struct bdev *bs, const struct bdev_info *bi)
{
    if (strcmp(bdev_format_name(bs), "qcow2") || bi->cluster_size <= 0)
        return 0;
    uint64_t cs = (uint64_t)bi->cluster_size, entry = 8;
    struct json_object *v;
    if (bi->format_specific &&
        json_object_object_get_ex(bi->format_specific, "extended-l2", &v) &&
        json_object_get_boolean(v))
        entry = 16;
    uint64_t per_l1 = cs / entry * cs;
    return (int64_t)(div_round_up(bs->size, per_l1) * per_l1);
}

static void print_key(const char *key, int indent)
{
    printf("%*s", indent, "");
    for (const char *p = key; *p; p++)
        putchar(*p == '-' ? ' ' : *p);
}

/* qemu's human dump of a QAPI object: "key: value" with '-' in keys shown
 * as spaces, nested objects and lists indented by four. */
static void dump_value(struct json_object *o, int indent);

static void dump_object(struct json_object *o, int indent)
{
    json_object_object_foreach(o, key, val) {
        enum json_type t = json_object_get_type(val);
        print_key(key, indent);
        if (t == json_type_object || t == json_type_array) {
            printf(":\n");
            dump_value(val, indent + 4);
        } else {
            printf(": ");
            dump_value(val, 0);
        }
    }
}

static void dump_value(struct json_object *o, int indent)
{
    switch (json_object_get_type(o)) {
    case json_type_object:
        dump_object(o, indent);
        break;
    case json_type_array:
        for (size_t i = 0; i < json_object_array_length(o); i++) {
            struct json_object *e = json_object_array_get_idx(o, i);
            enum json_type t = json_object_get_type(e);
            printf("%*s[%zu]:", indent, "", i);
            if (t == json_type_object || t == json_type_array) {
                printf("\n");
                dump_value(e, indent + 4);
            } else {
                printf(" ");
                dump_value(e, 0);
            }
        }
        break;
    case json_type_boolean:
        printf("%s\n", json_object_get_boolean(o) ? "true" : "false");
        break;
    case json_type_null:
        printf("null\n");
        break;
    default:
        printf("%s\n", json_object_get_string(o));
        break;
    }
}

int tool_cmd_info(struct bdev **bsp, int argc, char **argv);
int tool_cmd_info(struct bdev **bsp, int argc, char **argv)
{
    (void)argc; (void)argv;
    struct bdev *bs = *bsp;
    struct bdev_info bi;
    struct err err = ERR_INIT;
    char s1[64], s2[64];

    memset(&bi, 0, sizeof(bi));
    printf("format name: %s\n", bdev_format_name(bs));
    int r = bdev_get_info(bs, &bi, &err);
    if (r == -ENOTSUP && !strcmp(bdev_format_name(bs), "raw"))
        r = 0;
    if (r < 0) {
        if (bi.format_specific)
            json_object_put(bi.format_specific);
        return r;
    }
    tool_cvtstr((double)bi.cluster_size, s1, sizeof(s1));
    tool_cvtstr((double)vm_state_offset(bs, &bi), s2, sizeof(s2));
    printf("cluster size: %s\n", s1);
    printf("vm state offset: %s\n", s2);
    if (bi.format_specific) {
        printf("Format specific information:\n");
        dump_object(bi.format_specific, 4);
        json_object_put(bi.format_specific);
    }
    return 0;
}
