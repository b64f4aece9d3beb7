/* err: the one error type carried from where a failure is detected up to
 * cli/, which alone prints it.  A fallible function returns 0 or -errno (or
 * NULL) and takes `struct err *err` as its last argument. */
#ifndef QIMG_UTIL_ERR_H
#define QIMG_UTIL_ERR_H

#include <stdarg.h>
#include <stdbool.h>

#define ERR_MSG_MAX 1024

struct err {
    int code;               /* negative errno; 0 while no error is set */
    char msg[ERR_MSG_MAX];  /* complete message, without the program prefix */
};

#define ERR_INIT { 0, { 0 } }

/* Set the error unless one is already set (the first, most precise message
 * wins).  Returns `code`, so callers can write `return err_set(...)`.  `err`
 * may be NULL. */
int err_set(struct err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int err_setv(struct err *err, int code, const char *fmt, va_list ap);

/* Like err_set, with ": strerror(-code)" appended. */
int err_set_errno(struct err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepend context: "ctx" + existing message.  No-op when no error is set. */
void err_prefix(struct err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

void err_clear(struct err *err);
static inline bool err_isset(const struct err *err) { return err && err->code; }

#endif
