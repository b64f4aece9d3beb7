/* winpath: the parent-image names that Windows products (Hyper-V, Virtual
 * PC) store in VHD and VHDX differencing images: UTF-16 text and Windows
 * path syntax, turned into names a POSIX host can open. */
#ifndef QIMG_UTIL_WINPATH_H
#define QIMG_UTIL_WINPATH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Decode `len` bytes of UTF-16 (little- or big-endian) into a new UTF-8
 * string, stopping at the first NUL code unit.  NULL when the text is not
 * valid UTF-16 (lone surrogates, odd length), contains control characters,
 * or on allocation failure. */
char *utf16_to_utf8(const uint8_t *p, size_t len, bool big_endian);

/* A Windows path as a POSIX name, new string (NULL on allocation failure):
 * backslashes become slashes; a relative path loses its leading "./"
 * components; an absolute one (drive letter, UNC "//server/share", or a
 * root) cannot name anything here, so only its last component is kept
 * (looked up beside the child image, where copied chains usually live). */
char *winpath_to_posix(const char *win, bool absolute);

#endif
