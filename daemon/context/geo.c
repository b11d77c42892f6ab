/* PLACEHOLDER: replaced by the ip/geo/tz work. */
#include "context/geo.h"
#include <stdio.h>
#include <string.h>
vd_geo_db *vd_geo_open(const char *path, char *err, size_t errcap) { snprintf(err, errcap, "%s: geo not built yet", path); return NULL; }
void vd_geo_close(vd_geo_db *db) { (void)db; }
const char *vd_geo_describe(const vd_geo_db *db) { (void)db; return "none"; }
bool vd_geo_lookup(const vd_geo_db *db, const vd_ipaddr *ip, vd_geo *out) { (void)db; (void)ip; memset(out, 0, sizeof *out); out->eu = -1; return false; }
