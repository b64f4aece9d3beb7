/* qcow2 make_empty: drop every cluster of the active layer so that it
 * reads entirely from its backing file again (commit without -d).
 *
 * Each L1 entry is cleared on disk first; only then are the references
 * made through it released: one on every data cluster the L2 table names
 * (refcounts count each L1's walk through a table) and one on the table.
 * A crash leaves leaks only. */
#include "fmt/qcow2/qcow2.h"

#include <errno.h>
#include <stdlib.h>

#include "util/endian.h"

int qcow2_make_empty(struct bdev *bs, struct err *err)
{
    struct qcow2_state *s = qcow2_st(bs);
    uint8_t *t = malloc(s->cluster_size);
    int r = 0;
    if (!t)
        return err_set(err, -ENOMEM, "Out of memory");
    if (s->snapshot_loaded || s->corrupt) {
        free(t);
        return err_set(err, -EACCES, "Image is read-only");
    }
    for (uint32_t i = 0; i < s->l1_size; i++) {
        uint64_t l2 = s->l1[i] & QCOW2_OFFSET_MASK;
        if (!l2)
            continue;
        r = bdev_pread(bs->file, l2, s->cluster_size, t, err);
        if (r < 0)
            break;
        s->l1[i] = 0;
        r = qcow2_write_l1(bs, i, 1, err);
        if (r >= 0)
            r = qcow2_barrier(bs, err);
        qcow2_cache_drop_range(&s->l2_cache, l2, s->cluster_size);
        if (r < 0)
            break;
        {
            for (uint64_t j = 0; j < s->l2_entries && r >= 0; j++) {
                uint64_t e = ld_be64(t + j * s->l2_entry_size);
                enum qcow2_ctype ty = qcow2_l2_classify(e, s->ext_l2,
                                                        s->data_file != NULL);
                if (ty == QCOW2_C_NORMAL || ty == QCOW2_C_ZERO_ALLOC ||
                    ty == QCOW2_C_COMPRESSED)
                    r = qcow2_free_l2_entry(bs, e, err);
            }
            if (r < 0)
                break;
        }
        r = qcow2_free_clusters(bs, l2, 1, err);
        if (r < 0)
            break;
    }
    s->cbuf_valid = false;
    free(t);
    if (r >= 0)
        r = qcow2_barrier(bs, err);
    return r;
}
