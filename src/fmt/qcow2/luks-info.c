/* qcow2 LUKS header description: the "encrypt" object `qemu-img info`
 * shows for a qcow2 image encrypted with LUKS (format luks), decoded from
 * the LUKS1 header the crypto header extension points at.  Only the
 * header is read: no key material is used and nothing is decrypted.
 * Layout (big endian): magic[6] version u16, cipher name[32], cipher mode
 * [32] ("xts-plain64", "cbc-essiv:sha256"), hash[32], payload offset u32
 * (sectors), key bytes u32, digest[20], digest salt[32], digest
 * iterations u32, uuid[40], then 8 key slots of 48 bytes: active u32,
 * iterations u32, salt[32], key material offset u32 (sectors), stripes. */
#include "fmt/qcow2/qcow2.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/align.h"
#include "util/endian.h"

#define LUKS_HDR_LEN 592
#define LUKS_SLOTS 8
#define LUKS_SLOT_ACTIVE 0x00AC71F3u

/* A NUL-terminated copy of a fixed-size header string field. */
static void field(char *dst, const uint8_t *src, size_t n)
{
    memcpy(dst, src, n);
    dst[n] = 0;
}

/* qemu's algorithm name for a LUKS cipher name and key size, or NULL. */
static const char *cipher_alg(const char *name, uint32_t key_bytes)
{
    static const struct { const char *luks; uint32_t bytes; const char *alg; } t[] = {
        { "aes", 16, "aes-128" }, { "aes", 24, "aes-192" }, { "aes", 32, "aes-256" },
        { "cast5", 16, "cast5-128" },
        { "serpent", 16, "serpent-128" }, { "serpent", 24, "serpent-192" },
        { "serpent", 32, "serpent-256" },
        { "twofish", 16, "twofish-128" }, { "twofish", 24, "twofish-192" },
        { "twofish", 32, "twofish-256" },
        { "sm4", 16, "sm4" },
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (!strcmp(t[i].luks, name) && t[i].bytes == key_bytes)
            return t[i].alg;
    return NULL;
}

static bool one_of(const char *v, const char *const *list)
{
    for (; *list; list++)
        if (!strcmp(v, *list))
            return true;
    return false;
}

int qcow2_luks_info(struct bdev *bs, struct json_object **out, struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    static const char *const modes[] = { "ecb", "cbc", "xts", "ctr", NULL };
    static const char *const ivgens[] = { "plain", "plain64", "essiv", NULL };
    static const char *const hashes[] = { "md5", "sha1", "sha224", "sha256",
        "sha384", "sha512", "ripemd160", NULL };
    uint8_t h[LUKS_HDR_LEN];
    char name[33], mode[33], hash[33], uuid[41];

    if (!s->x.has_crypto || s->x.crypto_length < LUKS_HDR_LEN ||
        !range_within(s->x.crypto_offset, LUKS_HDR_LEN, bs->file->size))
        return err_set(err, -EINVAL, "Volume is not in LUKS format");
    int r = bdev_pread(bs->file, s->x.crypto_offset, LUKS_HDR_LEN, h, err);
    if (r < 0)
        return r;
    if (memcmp(h, "LUKS\xba\xbe", 6))
        return err_set(err, -EINVAL, "Volume is not in LUKS format");
    if (ld_be16(h + 6) != 1)
        return err_set(err, -EINVAL, "Unsupported LUKS version %u",
                       ld_be16(h + 6));
    field(name, h + 8, 32);
    field(mode, h + 40, 32);
    field(hash, h + 72, 32);
    field(uuid, h + 168, 40);
    uint32_t key_bytes = ld_be32(h + 108);

    /* "mode-ivgen" or "mode-ivgen:hash". */
    char *ivgen = strchr(mode, '-');
    if (!ivgen)
        return err_set(err, -EINVAL, "Unexpected cipher mode string format '%s'",
                       mode);
    *ivgen++ = 0;
    char *ivhash = strchr(ivgen, ':');
    if (ivhash)
        *ivhash++ = 0;
    if (!one_of(mode, modes))
        return err_set(err, -EINVAL, "Cipher mode '%s' is not supported", mode);
    if (!one_of(ivgen, ivgens))
        return err_set(err, -EINVAL, "IV generator '%s' is not supported", ivgen);
    if (!one_of(hash, hashes) || (ivhash && !one_of(ivhash, hashes)))
        return err_set(err, -EINVAL, "Hash algorithm '%s' is not supported",
                       ivhash && !one_of(ivhash, hashes) ? ivhash : hash);
    const char *alg = cipher_alg(name, !strcmp(mode, "xts") ? key_bytes / 2 : key_bytes);
    if (!alg)
        return err_set(err, -EINVAL, "Algorithm '%s' with key size %u unsupported",
                       name, !strcmp(mode, "xts") ? key_bytes / 2 : key_bytes);

    /* Key order as qemu-img prints it. */
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "ivgen-alg", json_object_new_string(ivgen));
    json_object_object_add(o, "hash-alg", json_object_new_string(hash));
    json_object_object_add(o, "cipher-alg", json_object_new_string(alg));
    json_object_object_add(o, "uuid", json_object_new_string(uuid));
    if (ivhash)
        json_object_object_add(o, "ivgen-hash-alg", json_object_new_string(ivhash));
    json_object_object_add(o, "format", json_object_new_string("luks"));
    json_object_object_add(o, "cipher-mode", json_object_new_string(mode));
    struct json_object *slots = json_object_new_array();
    for (int i = 0; i < LUKS_SLOTS; i++) {
        const uint8_t *k = h + 208 + i * 48;
        bool active = ld_be32(k) == LUKS_SLOT_ACTIVE;
        struct json_object *so = json_object_new_object();
        json_object_object_add(so, "active", json_object_new_boolean(active));
        if (active)
            json_object_object_add(so, "iters", json_object_new_int64(ld_be32(k + 4)));
        json_object_object_add(so, "key-offset",
                               json_object_new_int64((int64_t)ld_be32(k + 40) * 512));
        if (active)
            json_object_object_add(so, "stripes", json_object_new_int64(ld_be32(k + 44)));
        json_object_array_add(slots, so);
    }
    json_object_object_add(o, "slots", slots);
    json_object_object_add(o, "payload-offset",
                           json_object_new_int64((int64_t)ld_be32(h + 104) * 512));
    json_object_object_add(o, "master-key-iters",
                           json_object_new_int64(ld_be32(h + 164)));
    *out = o;
    return 0;
}
