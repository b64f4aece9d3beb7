/* fuzz-vhdx: open/log replay/read/block-status/check/write of vhdx images.
 *
 * A vhdx file places its structures at MiB offsets, so a literal image is
 * at least 4 MiB.  The input is a compact form instead: ten fixed 4 KiB
 * segments copied to where qemu-img's layout keeps the file identifier,
 * both headers, both region tables, the log (8 KiB), the BAT, the
 * metadata table and items, then the BAT's first sector bitmap entry
 * (index 4096 with 512-byte sectors and 1 MiB blocks: differencing
 * images); whatever follows is payload at 4 MiB, padded to a whole MiB.
 * tests/fuzz/vhdx-compact.py converts an image to this form (the seed
 * a.bin's BAT entry 0 was then pointed at 4 MiB; diff.bin comes from
 * tests/interop/vhdx-diff.py --fuzz-seed).
 * The expanded file then goes through the shared body (fuzz-image.h). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_FORMAT "vhdx"
#define FUZZ_WRITE
#define LLVMFuzzerTestOneInput fuzz_image_body
#include "fuzz-image.h"
#undef LLVMFuzzerTestOneInput

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define KB 1024u
#define MB (1024u * 1024u)

static const struct { uint32_t file_off, len; } segs[] = {
    { 0, 4 * KB }, { 64 * KB, 4 * KB }, { 128 * KB, 4 * KB },
    { 192 * KB, 4 * KB }, { 256 * KB, 4 * KB }, { 1 * MB, 8 * KB },
    { 2 * MB, 4 * KB }, { 3 * MB, 4 * KB }, { 3 * MB + 64 * KB, 4 * KB },
    { 2 * MB + 32 * KB, 4 * KB },
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t in = 0, payload = 0;
    for (size_t i = 0; i < sizeof(segs) / sizeof(segs[0]); i++)
        in += segs[i].len;
    if (size > in)
        payload = size - in;
    if (payload > 16 * MB)
        payload = 16 * MB;
    size_t total = 4 * MB + (payload + MB - 1) / MB * MB;
    uint8_t *img = calloc(1, total);
    if (!img)
        return 0;
    size_t pos = 0;
    for (size_t i = 0; i < sizeof(segs) / sizeof(segs[0]) && pos < size; i++) {
        size_t n = size - pos < segs[i].len ? size - pos : segs[i].len;
        memcpy(img + segs[i].file_off, data + pos, n);
        pos += segs[i].len;
    }
    if (payload)
        memcpy(img + 4 * MB, data + in, payload);
    fuzz_image_body(img, total);
    free(img);
    return 0;
}
