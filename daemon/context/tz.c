/* PLACEHOLDER: replaced by the ip/geo/tz work. */
#include "context/tz.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
struct vd_tz { const char *name; };
struct vd_tzdb { struct vd_tz utc; };
vd_tzdb *vd_tzdb_open(const char *dir, char *err, size_t errcap) { (void)dir; (void)err; (void)errcap; vd_tzdb *db = calloc(1, sizeof *db); if (db) db->utc.name = "UTC"; return db; }
void vd_tzdb_close(vd_tzdb *db) { free(db); }
size_t vd_tzdb_count(const vd_tzdb *db) { (void)db; return 1; }
const vd_tz *vd_tzdb_zone(const vd_tzdb *db, vd_str name) { (void)db; (void)name; return NULL; }
const vd_tz *vd_tzdb_country_zone(const vd_tzdb *db, vd_str iso2) { (void)db; (void)iso2; return NULL; }
const vd_tz *vd_tzdb_utc(const vd_tzdb *db) { return &db->utc; }
const char *vd_tz_name(const vd_tz *tz) { return tz->name; }
int64_t vd_days_from_civil(int y, int m, int d) { y -= m <= 2; int64_t era = (y >= 0 ? y : y - 399) / 400; int64_t yoe = y - era * 400; int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1; int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; return era * 146097 + doe - 719468; }
void vd_civil_from_days(int64_t z, int *y, int *m, int *d) { z += 719468; int64_t era = (z >= 0 ? z : z - 146096) / 146097; int64_t doe = z - era * 146097; int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; int64_t yy = yoe + era * 400; int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100); int64_t mp = (5 * doy + 2) / 153; *d = (int)(doy - (153 * mp + 2) / 5 + 1); *m = (int)(mp < 10 ? mp + 3 : mp - 9); *y = (int)(yy + (*m <= 2)); }
void vd_tz_localtime(const vd_tz *tz, int64_t utc, vd_localtime *out) { (void)tz; memset(out, 0, sizeof *out); int64_t days = utc >= 0 ? utc / 86400 : -((-utc + 86399) / 86400); int64_t sod = utc - days * 86400; out->days = days; vd_civil_from_days(days, &out->year, &out->month, &out->day); out->hour = (int)(sod / 3600); out->minute = (int)(sod / 60 % 60); out->second = (int)(sod % 60); out->weekday = (int)(((days % 7) + 7 + 3) % 7); out->next_transition = INT64_MAX; }
