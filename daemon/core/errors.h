/* errors.h — an error list that travels with a compile or load; and the
 * error convention of the codebase, as the code follows it:
 *   - int functions return 0 on success and -1 on failure; functions that
 *     make something return it, or NULL on failure;
 *   - the reason travels with the failure, phrased for whoever reads it:
 *       a compile or load that can find many errors fills a vd_errors list
 *       (file, segment id and JSON path for definition errors);
 *       start-up, I/O and request-validation functions that fail for one
 *       reason write it into the caller's buffer (`char *err, size_t cap`):
 *       for the operator at start-up, for the client on a request;
 *   - parsers of one value (vd_ip_parse, vd_url_parse, vd_ipnet_parse)
 *     return bool and zero their output on false: "not valid" is an
 *     answer, not an error;
 *   - on the request path a failure becomes an error reply and a counter,
 *     never a log line above debug level, and never ends the process. */
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
