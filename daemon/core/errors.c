#include "core/errors.h"

#include <stdarg.h>
#include <stdio.h>

void vd_errors_init(vd_errors *e)
{
    e->n = 0;
    e->dropped = 0;
}

void vd_errors_addf(vd_errors *e, const char *fmt, ...)
{
    if (e->n >= VD_ERRORS_MAX) {
        e->dropped++;
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg[e->n], VD_ERROR_LEN, fmt, ap);
    va_end(ap);
    e->n++;
}

const char *vd_errors_summary(const vd_errors *e, char *buf, size_t cap)
{
    size_t total = vd_errors_count(e);
    if (total == 0)
        snprintf(buf, cap, "no error");
    else if (total == 1)
        snprintf(buf, cap, "%s", e->msg[0]);
    else
        snprintf(buf, cap, "%s (+%zu more)", e->msg[0], total - 1);
    return buf;
}
