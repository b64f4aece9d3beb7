/* secret: see secret.h.  Secrets live in a small list for the life of the
 * process and are wiped on clear. */
#include "crypto/secret.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECRET_FILE_MAX (64u << 20)

static struct secret *store;
static size_t store_n;

const struct secret *secret_lookup(const char *id)
{
    for (size_t i = 0; id && i < store_n; i++)
        if (!strcmp(store[i].id, id))
            return &store[i];
    return NULL;
}

const struct secret *secret_get(const char *id, struct err *err)
{
    const struct secret *s = secret_lookup(id);
    if (!s)
        err_set(err, -ENOENT, "No secret with id '%s'", id ? id : "");
    return s;
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

uint8_t *secret_base64_decode(const char *in, size_t *outlen, struct err *err)
{
    size_t n = strlen(in), pad = 0;
    for (size_t i = 0; i < n; i++) {
        if (in[i] == '=' && i + 2 >= n && (i + 1 == n || in[i + 1] == '=')) {
            pad++;
            continue;
        }
        if (b64_value((unsigned char)in[i]) < 0 || pad) {
            err_set(err, -EINVAL, "Base64 data contains invalid characters");
            return NULL;
        }
    }
    if (n % 4 != 0) {
        err_set(err, -EINVAL, "Base64 data is not a valid length");
        return NULL;
    }
    uint8_t *out = malloc(n / 4 * 3 + 1);
    size_t o = 0;
    if (!out) {
        err_set(err, -ENOMEM, "Out of memory");
        return NULL;
    }
    for (size_t i = 0; i + 4 <= n; i += 4) {
        uint32_t v = 0;
        int have = 0;
        for (int k = 0; k < 4; k++) {
            int d = in[i + k] == '=' ? 0 : b64_value((unsigned char)in[i + k]);
            if (in[i + k] != '=')
                have++;
            v = v << 6 | (uint32_t)d;
        }
        out[o++] = (uint8_t)(v >> 16);
        if (have > 2)
            out[o++] = (uint8_t)(v >> 8);
        if (have > 3)
            out[o++] = (uint8_t)v;
    }
    out[o] = 0;
    *outlen = o;
    return out;
}

/* The whole file, as glib's g_file_get_contents would return it (the
 * message wording matches qemu-img's, which goes through glib). */
static uint8_t *read_file(const char *path, size_t *len, struct err *err)
{
    struct stat st;
    uint8_t *buf = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        err_set(err, -errno, "Unable to read %s: Failed to open file \u201c%s\u201d: %s",
                path, path, strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
        (uint64_t)st.st_size > SECRET_FILE_MAX) {
        err_set(err, -EINVAL, "Unable to read %s: not a regular file of at most 64 MiB",
                path);
        goto out;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        err_set(err, -ENOMEM, "Out of memory");
        goto out;
    }
    size_t done = 0;
    while (done < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + done, (size_t)st.st_size - done);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            err_set(err, r < 0 ? -errno : -EIO, "Unable to read %s: %s", path,
                    r < 0 ? strerror(errno) : "short read");
            free(buf);
            buf = NULL;
            goto out;
        }
        done += (size_t)r;
    }
    buf[done] = 0;
    *len = done;
out:
    close(fd);
    return buf;
}

int secret_add(const char *id, const char *data, const char *file,
               const char *format, const char *keyid, const char *iv,
               struct err *err)
{
    uint8_t *raw = NULL;
    size_t len = 0;
    bool base64 = false;

    if (format) {
        if (!strcmp(format, "base64"))
            base64 = true;
        else if (strcmp(format, "raw"))
            return err_set(err, -EINVAL,
                           "Parameter 'format' does not accept value '%s'", format);
    }
    if (!id)
        return err_set(err, -EINVAL, "Parameter 'id' is missing");
    if (data && file)
        return err_set(err, -EINVAL, "'file' and 'data' are mutually exclusive");
    if (!data && !file)
        return err_set(err, -EINVAL, "Either 'file' or 'data' must be provided");
    if (secret_lookup(id))
        return err_set(err, -EEXIST,
                       "attempt to add duplicate property '%s' to object (type 'container')",
                       id);
    if (file) {
        raw = read_file(file, &len, err);
    } else {
        len = strlen(data);
        raw = (uint8_t *)strdup(data);
        if (!raw)
            err_set(err, -ENOMEM, "Out of memory");
    }
    if (!raw)
        return err->code;
    if (keyid) {
        /* Secrets encrypted with another secret need AES-CBC; only the
         * error for a missing key is reported like qemu-img. */
        int r = secret_get(keyid, err) ? err_set(err, -ENOTSUP,
                    "Encrypted secrets (keyid/iv) are not supported") : -ENOENT;
        free(raw);
        return r;
    }
    (void)iv;
    if (base64) {
        size_t dlen;
        uint8_t *dec = secret_base64_decode((const char *)raw, &dlen, err);
        memset(raw, 0, len);
        free(raw);
        if (!dec)
            return err->code;
        raw = dec;
        len = dlen;
    }
    struct secret *n = realloc(store, (store_n + 1) * sizeof(*store));
    char *sid = strdup(id);
    if (!n || !sid) {
        if (n)
            store = n;
        free(sid);
        free(raw);
        return err_set(err, -ENOMEM, "Out of memory");
    }
    store = n;
    store[store_n].id = sid;
    store[store_n].data = raw;
    store[store_n].len = len;
    store_n++;
    return 0;
}

void secret_clear_all(void)
{
    for (size_t i = 0; i < store_n; i++) {
        memset(store[i].data, 0, store[i].len);
        free(store[i].data);
        free(store[i].id);
    }
    free(store);
    store = NULL;
    store_n = 0;
}
