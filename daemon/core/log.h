/* log.h — leveled logging to stderr. The level is checked before any
 * formatting, so a disabled debug line costs one comparison. */
#ifndef VD_CORE_LOG_H
#define VD_CORE_LOG_H

enum { VD_LOG_DEBUG, VD_LOG_INFO, VD_LOG_WARN, VD_LOG_ERROR };

extern int vd_log_level;

void vd_log_raw(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int vd_log_level_parse(const char *name);   /* -1 if unknown */

#define vd_log(level, ...)                         \
    do {                                           \
        if ((level) >= vd_log_level)               \
            vd_log_raw((level), __VA_ARGS__);      \
    } while (0)
#define vd_debug(...) vd_log(VD_LOG_DEBUG, __VA_ARGS__)
#define vd_info(...)  vd_log(VD_LOG_INFO, __VA_ARGS__)
#define vd_warn(...)  vd_log(VD_LOG_WARN, __VA_ARGS__)
#define vd_error(...) vd_log(VD_LOG_ERROR, __VA_ARGS__)

#endif
