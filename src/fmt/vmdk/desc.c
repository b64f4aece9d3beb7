/* vmdk descriptor text: parsing the header keys and extent lines of a
 * "# Disk DescriptorFile", and generating one for new images in the layout
 * qemu-img writes. */
#include "fmt/vmdk/vmdk.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool vmdk_desc_probe(const uint8_t *buf, size_t len)
{
    size_t i = 0;
    /* The first line that is neither blank nor a comment must be version=N. */
    while (i < len) {
        size_t e = i;
        while (e < len && buf[e] != '\n')
            e++;
        size_t k = i;
        while (k < e && (buf[k] == ' ' || buf[k] == '\t' || buf[k] == '\r'))
            k++;
        if (k == e || buf[k] == '#') {
            i = e + 1;
            continue;
        }
        if (e - k >= 9 && !memcmp(buf + k, "version=", 8) &&
            buf[k + 8] >= '1' && buf[k + 8] <= '3') {
            size_t t = k + 9;
            return t == len || buf[t] == '\n' || buf[t] == '\r';
        }
        return false;
    }
    return false;
}

/* Copy the value of `key = "value"` / `key=value` into a new string. */
static char *parse_value(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    while (end > p && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
        end--;
    if (end - p >= 2 && *p == '"' && end[-1] == '"') {
        p++;
        end--;
    }
    return strndup(p, (size_t)(end - p));
}

static int parse_extent_line(struct vmdk_desc *d, const char *line,
                             size_t len, struct err *err)
{
    char *copy = strndup(line, len), *p, *q;
    struct vmdk_desc_extent x;
    int r = 0;

    memset(&x, 0, sizeof(x));
    if (!copy)
        return err_set(err, -ENOMEM, "Out of memory");
    p = copy;
    if (sscanf(p, "%15s", x.access) != 1)
        goto bad;
    p += strlen(x.access);
    while (*p == ' ' || *p == '\t')
        p++;
    if (!isdigit((unsigned char)*p))
        goto bad;
    errno = 0;
    x.sectors = strtoull(p, &q, 10);
    if (errno || q == p)
        goto bad;
    p = q;
    while (*p == ' ' || *p == '\t')
        p++;
    if (sscanf(p, "%15s", x.type) != 1)
        goto bad;
    p += strlen(x.type);
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p == '"') {
        q = strchr(p + 1, '"');
        if (!q)
            goto bad;
        x.file = strndup(p + 1, (size_t)(q - p - 1));
        if (!x.file) {
            r = err_set(err, -ENOMEM, "Out of memory");
            goto out;
        }
        p = q + 1;
        while (*p == ' ' || *p == '\t')
            p++;
        if (isdigit((unsigned char)*p)) {
            errno = 0;
            x.offset_sectors = strtoull(p, &q, 10);
            if (errno)
                goto bad;
            p = q;
        }
    } else if (strcmp(x.type, "ZERO")) {
        goto bad;
    }
    while (*p == ' ' || *p == '\t' || *p == '\r')
        p++;
    if (*p)
        goto bad;
    if (d->n_ext >= VMDK_MAX_EXTENTS) {
        free(x.file);
        r = err_set(err, -EINVAL, "Too many extents in the descriptor");
        goto out;
    }
    struct vmdk_desc_extent *n = realloc(d->ext, sizeof(*n) * (size_t)(d->n_ext + 1));
    if (!n) {
        free(x.file);
        r = err_set(err, -ENOMEM, "Out of memory");
        goto out;
    }
    d->ext = n;
    d->ext[d->n_ext++] = x;
    goto out;
bad:
    free(x.file);
    r = err_set(err, -EINVAL, "Invalid extent line: %s", copy);
out:
    free(copy);
    return r;
}

static bool is_access(const char *p, size_t len)
{
    static const char *words[] = { "RW ", "RDONLY ", "NOACCESS ",
                                   "RW\t", "RDONLY\t", "NOACCESS\t" };
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        size_t n = strlen(words[i]);
        if (len >= n && !memcmp(p, words[i], n))
            return true;
    }
    return false;
}

int vmdk_desc_parse(const char *text, struct vmdk_desc *d, struct err *err)
{
    const char *p = text;
    memset(d, 0, sizeof(*d));
    d->parent_cid = UINT32_MAX;
    while (*p) {
        const char *e = strchr(p, '\n');
        if (!e)
            e = p + strlen(p);
        const char *k = p;
        while (k < e && (*k == ' ' || *k == '\t'))
            k++;
        size_t len = (size_t)(e - k);
        const char *eq = memchr(k, '=', len);
        if (len == 0 || *k == '#' || *k == '\r') {
            /* blank or comment */
        } else if (is_access(k, len)) {
            int r = parse_extent_line(d, k, len, err);
            if (r < 0)
                return r;
        } else if (eq) {
            const char *ke = eq;
            while (ke > k && (ke[-1] == ' ' || ke[-1] == '\t'))
                ke--;
            size_t klen = (size_t)(ke - k);
            char *v = parse_value(eq + 1, e);
            if (!v)
                return err_set(err, -ENOMEM, "Out of memory");
            if (klen == 3 && !memcmp(k, "CID", 3)) {
                d->cid = (uint32_t)strtoul(v, NULL, 16);
                d->has_cid = true;
            } else if (klen == 9 && !memcmp(k, "parentCID", 9)) {
                d->parent_cid = (uint32_t)strtoul(v, NULL, 16);
            } else if (klen == 10 && !memcmp(k, "createType", 10)) {
                free(d->create_type);
                d->create_type = v;
                v = NULL;
            } else if (klen == 18 && !memcmp(k, "parentFileNameHint", 18)) {
                free(d->parent_hint);
                d->parent_hint = v;
                v = NULL;
            }
            free(v);
        }
        p = *e ? e + 1 : e;
    }
    return 0;
}

void vmdk_desc_free(struct vmdk_desc *d)
{
    for (int i = 0; i < d->n_ext; i++)
        free(d->ext[i].file);
    free(d->ext);
    free(d->create_type);
    free(d->parent_hint);
    memset(d, 0, sizeof(*d));
}

char *vmdk_desc_set_cid(const char *text, uint32_t cid)
{
    const char *p = text;
    char *out;
    while (p && *p) {
        const char *e = strchr(p, '\n');
        if (!e)
            e = p + strlen(p);
        if (!strncmp(p, "CID=", 4)) {
            const char *v = p + 4, *ve = v;
            while (ve < e && isxdigit((unsigned char)*ve))
                ve++;
            if (asprintf(&out, "%.*sCID=%" PRIx32 "%s", (int)(p - text), text,
                         cid, ve) < 0)
                return NULL;
            return out;
        }
        p = *e ? e + 1 : e;
    }
    return strdup(text);
}

/* Content IDs are printed without zero padding, as qemu-img does. */
char *vmdk_desc_generate(const struct vmdk_desc_gen *g)
{
    char *out, *hint = NULL;
    if (g->parent_hint &&
        asprintf(&hint, "parentFileNameHint=\"%s\"", g->parent_hint) < 0)
        return NULL;
    int n = asprintf(&out,
        "# Disk DescriptorFile\n"
        "version=1\n"
        "CID=%" PRIx32 "\n"
        "parentCID=%" PRIx32 "\n"
        "createType=\"%s\"\n"
        "%s\n"
        "# Extent description\n"
        "%s"
        "\n"
        "# The Disk Data Base\n"
        "#DDB\n"
        "\n"
        "ddb.virtualHWVersion = \"%s\"\n"
        "ddb.geometry.cylinders = \"%" PRIu64 "\"\n"
        "ddb.geometry.heads = \"%u\"\n"
        "ddb.geometry.sectors = \"63\"\n"
        "ddb.adapterType = \"%s\"\n"
        "ddb.toolsVersion = \"%s\"\n",
        g->cid, g->parent_cid, g->create_type, hint ? hint : "",
        g->extent_lines, g->hw_version, g->cylinders, g->heads,
        g->adapter_type, g->tools_version);
    free(hint);
    return n < 0 ? NULL : out;
}
