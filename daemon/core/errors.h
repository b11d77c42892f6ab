/* errors.h — an error list that travels with a compile or load.
 * Convention for the whole codebase: functions return 0 / a pointer on
 * success, -1 / NULL on failure, and put human-readable messages here
 * (file, segment id and JSON path for definition errors). */
#ifndef VD_CORE_ERRORS_H
#define VD_CORE_ERRORS_H

#include <stddef.h>

#define VD_ERRORS_MAX 64      /* more than this are counted, not kept */
#define VD_ERROR_LEN  512

typedef struct vd_errors {
    size_t n;                 /* messages kept */
    size_t dropped;           /* messages beyond VD_ERRORS_MAX */
    char msg[VD_ERRORS_MAX][VD_ERROR_LEN];
} vd_errors;

void vd_errors_init(vd_errors *e);
void vd_errors_addf(vd_errors *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline size_t vd_errors_count(const vd_errors *e) { return e->n + e->dropped; }
/* "first message (+N more)" in buf, for one-line logs. */
const char *vd_errors_summary(const vd_errors *e, char *buf, size_t cap);

#endif
