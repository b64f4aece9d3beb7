/* err: see err.h. */
#include "util/err.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int err_setv(struct err *err, int code, const char *fmt, va_list ap)
{
    if (code >= 0)
        code = -EIO;
    if (!err || err->code)
        return code;
    err->code = code;
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    return code;
}

int err_set(struct err *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    code = err_setv(err, code, fmt, ap);
    va_end(ap);
    return code;
}

int err_set_errno(struct err *err, int code, const char *fmt, ...)
{
    char buf[ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    return err_set(err, code, "%s: %s", buf, strerror(code < 0 ? -code : EIO));
}

void err_prefix(struct err *err, const char *fmt, ...)
{
    char buf[ERR_MSG_MAX], old[ERR_MSG_MAX];
    va_list ap;
    if (!err || !err->code)
        return;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof(old));
    size_t n = strlen(buf);
    if (n >= sizeof(err->msg))
        n = sizeof(err->msg) - 1;
    memcpy(err->msg, buf, n);
    size_t m = strnlen(old, sizeof(old) - 1);
    if (m > sizeof(err->msg) - 1 - n)
        m = sizeof(err->msg) - 1 - n;
    memcpy(err->msg + n, old, m);
    err->msg[n + m] = 0;
}

void err_clear(struct err *err)
{
    if (err) {
        err->code = 0;
        err->msg[0] = 0;
    }
}
