/* mmdb.h — opening a MaxMind database safely, for every database the
 * context reads (GeoIP city/country in geo.c, ASN and Anonymous-IP in
 * netdb.c): a private sealed copy is mapped, never the operator's file, and
 * the metadata is checked before any lookup trusts it. */
#ifndef VD_CONTEXT_MMDB_H
#define VD_CONTEXT_MMDB_H

#include <stddef.h>

#include <maxminddb.h>

#include "context/geo.h"

/* Copies path into a sealed memfd (vd_geo_file_copy, which fills *file),
 * opens that copy into *mmdb and checks ip_version, record_size, the tree
 * and database_type. 0, or -1 with "path: why" in err and nothing left
 * open. */
int vd_mmdb_open_copy(const char *path, MMDB_s *mmdb, vd_geo_file_id *file, char *err,
                      size_t errcap);

/* "TYPE, built YYYY-MM-DD, N nodes, IPvV" into buf (for the start-up log). */
void vd_mmdb_describe(const MMDB_s *mmdb, char *buf, size_t cap);

#endif
