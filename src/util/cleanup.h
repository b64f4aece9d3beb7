/* Scope-bound cleanup for locals only (never for struct members). */
#ifndef QIMG_UTIL_CLEANUP_H
#define QIMG_UTIL_CLEANUP_H

#include <stdlib.h>

static inline void cleanup_freep(void *p) { free(*(void **)p); }
#define auto_free __attribute__((cleanup(cleanup_freep)))

#endif
