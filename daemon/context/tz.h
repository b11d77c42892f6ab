/* tz.h — visitor-local time from the system's TZif files, thread-safely.
 *
 * No setenv("TZ")/localtime per request: every zone under the zoneinfo
 * directory is parsed once at open into transition tables (plus the POSIX
 * TZ footer rule for instants past the last transition), and lookups are
 * pure functions over that immutable data. The country -> zone map comes
 * from zone1970.tab / zone.tab (the first zone listed for a country). */
#ifndef VD_CONTEXT_TZ_H
#define VD_CONTEXT_TZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/str.h"

typedef struct vd_tzdb vd_tzdb;
typedef struct vd_tz vd_tz;

typedef struct vd_localtime {
    int year, month, day;          /* month 1-12, day 1-31 */
    int hour, minute, second;
    int weekday;                   /* 0 = Monday ... 6 = Sunday */
    int32_t utc_offset;            /* seconds east of UTC */
    int64_t days;                  /* local date as days since 1970-01-01 */
    int64_t next_transition;       /* next UTC instant the offset changes; INT64_MAX if none */
} vd_localtime;

/* dir NULL = /usr/share/zoneinfo. NULL on error with a message. */
vd_tzdb *vd_tzdb_open(const char *dir, char *err, size_t errcap);
void vd_tzdb_close(vd_tzdb *db);
size_t vd_tzdb_count(const vd_tzdb *db);

const vd_tz *vd_tzdb_zone(const vd_tzdb *db, vd_str name);           /* NULL if unknown */
const vd_tz *vd_tzdb_country_zone(const vd_tzdb *db, vd_str iso2);   /* NULL if unknown */
const vd_tz *vd_tzdb_utc(const vd_tzdb *db);                         /* never NULL */
const char *vd_tz_name(const vd_tz *tz);

void vd_tz_localtime(const vd_tz *tz, int64_t utc, vd_localtime *out);

/* Civil date helpers (proleptic Gregorian). */
int64_t vd_days_from_civil(int y, int m, int d);
void vd_civil_from_days(int64_t days, int *y, int *m, int *d);

#endif
