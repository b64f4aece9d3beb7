/* secret: the process-wide store of secrets given with
 * `--object secret,id=ID,data=...|file=...[,format=raw|base64]`, looked up
 * by id when an encrypted image needs a key (qcow2/LUKS "key-secret"). */
#ifndef QIMG_CRYPTO_SECRET_H
#define QIMG_CRYPTO_SECRET_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

struct secret {
    char *id;
    uint8_t *data;      /* decoded bytes, NUL-terminated for convenience */
    size_t len;         /* bytes, excluding that terminator */
};

/* Register a secret from its option list ("id", "data" or "file",
 * "format", "keyid", "iv"), with qemu-img's messages for bad options.
 * The caller has already checked that every key is one of those. */
int secret_add(const char *id, const char *data, const char *file,
               const char *format, const char *keyid, const char *iv,
               struct err *err);

/* The secret named `id`, or NULL.  The store owns the result. */
const struct secret *secret_lookup(const char *id);

/* As secret_lookup, failing with qemu-img's "No secret with id 'x'". */
const struct secret *secret_get(const char *id, struct err *err);

/* Base64 decode (RFC 4648, '=' padding, no whitespace); NULL with
 * "Base64 data contains invalid characters" / "...is not a valid length"
 * otherwise.  The result is NUL-terminated; caller frees. */
uint8_t *secret_base64_decode(const char *in, size_t *outlen, struct err *err);

/* Forget every secret (wiping their bytes). */
void secret_clear_all(void);

#endif
