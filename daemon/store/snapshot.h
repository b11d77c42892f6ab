/* snapshot.h — the last-known-good ruleset on local disk.
 *
 * A snapshot is one JSON file, self-describing and checked:
 *   {"format": "variantd-snapshot", "format_version": 1, "version": "r7-…",
 *    "saved_at": 1700000000,
 *    "documents": [{"kind": "segments"|"content-map", "name": "…", "text": "…"}],
 *    "checksum": "<16 hex digits over kinds, names and texts>"}
 * It stores the documents, not the compiled form: loading compiles them again
 * with this build's compiler, so a snapshot never outlives a format change.
 * Writing is atomic: a temporary file in the same directory, fsync, rename,
 * fsync of the directory. A crash leaves the old snapshot or the new one. */
#ifndef VD_STORE_SNAPSHOT_H
#define VD_STORE_SNAPSHOT_H

#include <stddef.h>

#include "rules/defs.h"

#define VD_SNAPSHOT_MAX_BYTES (512L * 1024 * 1024)

int vd_snapshot_write(const char *path, const char *version, const vd_docset *ds, char *err,
                      size_t cap);
/* Fills out (initialised by the caller) and version. -1 with a message if
 * the file is missing, unreadable, truncated, over the limit or fails its
 * checksum; errno_out (may be NULL) gets ENOENT for a missing file. */
int vd_snapshot_read(const char *path, char *version, size_t vcap, vd_docset *out, int *errno_out,
                     char *err, size_t cap);
/* The checksum above, as 16 hex digits. */
void vd_snapshot_checksum(const vd_docset *ds, char out[17]);

#endif
