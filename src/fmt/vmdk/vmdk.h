/* vmdk: private header shared by the VMDK driver's files (VMware "Virtual
 * Disk Format 1.1").
 *
 *   vmdk.c     open, close, read, write, block status, info, the driver
 *   desc.c     descriptor text: parsing and generation
 *   sparse.c   hosted sparse extents (KDMV) and VMware 3 (COWD) extents:
 *              headers, grain directories and tables, grain allocation,
 *              compressed grains
 *   sesparse.c seSparse extents (ESXi snapshots), read-only
 *   stream.c   streamOptimized writing: compressed grains, markers, footer
 *   create.c   image creation for every subformat */
#ifndef QIMG_FMT_VMDK_H
#define QIMG_FMT_VMDK_H

#include <stdbool.h>
#include <stdint.h>

#include "block/driver.h"
#include "fmt/table-map.h"

#define VMDK_SECTOR          UINT64_C(512)
#define VMDK4_MAGIC          0x564d444bu   /* "KDMV" little-endian */
#define VMDK3_MAGIC          0x44574f43u   /* "COWD" little-endian */
#define VMDK_GD_AT_END       UINT64_MAX
#define VMDK_DESC_MAX        (1u << 20)    /* largest descriptor we read */
#define VMDK_MAX_EXTENTS     4096

/* Header flags (hosted sparse extents). */
#define VMDK_FLAG_NL_TEST     (1u << 0)
#define VMDK_FLAG_RGD         (1u << 1)
#define VMDK_FLAG_ZERO_GRAIN  (1u << 2)
#define VMDK_FLAG_COMPRESSED  (1u << 16)
#define VMDK_FLAG_MARKERS     (1u << 17)

/* Stream markers. */
#define VMDK_MARKER_EOS       0
#define VMDK_MARKER_GT        1
#define VMDK_MARKER_GD        2
#define VMDK_MARKER_FOOTER    3

enum vmdk_ext_type {
    EXT_FLAT,         /* FLAT and VMFS: raw data at an offset */
    EXT_ZERO,         /* reads zeros, never written */
    EXT_SPARSE,       /* KDMV hosted sparse (SPARSE, monolithic files) */
    EXT_COWD,         /* VMFSSPARSE: VMware 3 COWD sparse */
    EXT_SESPARSE,     /* SESPARSE: ESXi space-efficient sparse, read-only */
};

struct vmdk_extent {
    enum vmdk_ext_type type;
    char *type_name;          /* as the descriptor spells it, NULL if none */
    char *path;               /* resolved path of the extent file */
    struct bdev *file;        /* the extent's file node */
    bool own_file;            /* opened by us (else it is bs->file) */
    bool read_only;
    uint64_t start;           /* first virtual byte */
    uint64_t length;          /* virtual bytes */
    uint64_t flat_off;        /* FLAT: byte offset in the file */

    /* Sparse extents. */
    uint32_t version;
    uint32_t flags;
    bool compressed;
    bool markers;
    bool zero_grain;          /* GTE 1 means a zeroed grain */
    uint64_t grain_bytes;
    uint32_t gtes_per_gt;
    uint64_t gt_bytes;        /* one grain table */
    uint64_t gd_off, rgd_off; /* bytes; rgd_off 0 when absent */
    uint32_t gd_entries;
    uint32_t *gd, *rgd;       /* native order */
    uint64_t *gd64;           /* seSparse: byte offsets of tables, 0 none */
    uint64_t se_gt_area;      /* seSparse: grain tables area (bytes) */
    uint64_t se_grains;       /* seSparse: grains area (bytes) */
    uint64_t alloc_end;       /* where the next grain goes (bytes) */
    struct tmap_cache gt_cache;   /* grain tables, by file offset */

    /* streamOptimized writer (see stream.c). */
    struct vmdk_stream *stream;
};

struct vmdk_desc_extent {
    char access[16];
    uint64_t sectors;
    char type[16];
    char *file;               /* NULL for ZERO */
    uint64_t offset_sectors;
};

struct vmdk_desc {
    uint32_t cid, parent_cid;
    bool has_cid;
    char *create_type;
    char *parent_hint;
    struct vmdk_desc_extent *ext;
    int n_ext;
};

struct vmdk {
    struct vmdk_extent *ext;
    int n_ext;
    struct vmdk_desc desc;
    char *desc_text;          /* the descriptor as stored */
    uint64_t desc_off;        /* embedded: byte offset in bs->file */
    uint64_t desc_cap;        /* embedded: bytes reserved for it */
    bool desc_embedded;
    bool cid_updated;
    bool parent_cid_checked;  /* the parent's CID matched parentCID */
    bool embedded_sparse;     /* the image file is itself a sparse extent */
};

/* desc.c */
int vmdk_desc_parse(const char *text, struct vmdk_desc *d, struct err *err);
void vmdk_desc_free(struct vmdk_desc *d);
/* Replace the CID value in descriptor text; returns a new string. */
char *vmdk_desc_set_cid(const char *text, uint32_t cid);
/* True when `buf` looks like a descriptor text file. */
bool vmdk_desc_probe(const uint8_t *buf, size_t len);

struct vmdk_desc_gen {
    uint32_t cid, parent_cid;
    const char *create_type;
    const char *parent_hint;      /* NULL: none */
    const char *extent_lines;     /* every "RW ..." line, each ending \n */
    const char *hw_version;
    uint64_t cylinders;
    unsigned heads;
    const char *adapter_type;
    const char *tools_version;
};
char *vmdk_desc_generate(const struct vmdk_desc_gen *g);

/* sparse.c */
int vmdk_sparse_open(struct vmdk_extent *e, bool is_image_file,
                     struct vmdk *s, uint64_t *capacity_bytes, struct err *err);
void vmdk_extent_free(struct vmdk_extent *e);
/* Host offset of the grain holding virtual extent offset `off`:
 * 0 unallocated, 1 zeroed grain, else the grain's byte offset. */
int vmdk_sparse_lookup(struct vmdk_extent *e, uint64_t off, uint64_t *host,
                       struct err *err);
int vmdk_sparse_read_grain(struct vmdk_extent *e, uint64_t host,
                           uint64_t in_off, uint64_t len, uint8_t *buf,
                           struct err *err);
/* Allocate the grain for `off` (data appended at the end, then the table
 * entries); `grain` holds the grain's full contents. */
int vmdk_sparse_alloc(struct vmdk_extent *e, uint64_t off,
                      const uint8_t *grain, struct err *err);
/* Set a grain table entry (and its redundant copy). */
int vmdk_sparse_set_gte(struct vmdk_extent *e, uint64_t off, uint32_t val,
                        struct err *err);
uint32_t vmdk_sparse_make_header(uint8_t *hdr, uint64_t capacity_sectors,
                                 uint64_t grain_sectors, uint64_t desc_off,
                                 uint64_t desc_sectors, uint64_t rgd_off,
                                 uint64_t gd_off, uint64_t overhead,
                                 uint32_t version, uint32_t flags,
                                 uint16_t compress);

/* sesparse.c: open checks the headers and loads the directory; lookup
 * answers like vmdk_sparse_lookup. */
int vmdk_sesparse_open(struct vmdk_extent *e, uint64_t *capacity_bytes,
                       struct err *err);
int vmdk_sesparse_lookup(struct vmdk_extent *e, uint64_t off, uint64_t *host,
                         struct err *err);

/* stream.c */
int vmdk_stream_begin(struct vmdk_extent *e, struct err *err);
int vmdk_stream_write(struct vmdk_extent *e, uint64_t off, uint64_t len,
                      const uint8_t *buf, struct err *err);
/* Write the tables, footer and end-of-stream marker (when anything was
 * written, or always with `force`). */
int vmdk_stream_finish(struct vmdk_extent *e, bool force, struct err *err);
void vmdk_stream_free(struct vmdk_extent *e);

/* create.c */
int vmdk_create(const char *filename, struct kvlist *opts, struct err *err);

#endif
