/* mmdb.c — see mmdb.h. */
#include "context/mmdb.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

int vd_mmdb_open_copy(const char *path, MMDB_s *mmdb, vd_geo_file_id *file, char *err,
                      size_t errcap)
{
    /* libmaxminddb 1.7.1 only maps the file it is given (MMDB_MODE_MMAP):
     * mapping the operator's file itself means a file written over in place
     * kills the daemon with SIGBUS (truncated) or feeds lookups torn bytes.
     * So the file is copied once into a sealed memfd we own and that copy is
     * mapped: nothing outside can change or shrink it. */
    int memfd = vd_geo_file_copy(path, file, err, errcap);
    if (memfd < 0)
        return -1;
    char mpath[64];
    snprintf(mpath, sizeof mpath, "/proc/self/fd/%d", memfd);
    int rc = MMDB_open(mpath, MMDB_MODE_MMAP, mmdb);
    close(memfd);             /* the mapping keeps the copy alive */
    if (rc != MMDB_SUCCESS) {
        snprintf(err, errcap, "%s: %s", path, MMDB_strerror(rc));
        return -1;
    }
    const MMDB_metadata_s *m = &mmdb->metadata;
    const char *why = NULL;
    if (m->ip_version != 4 && m->ip_version != 6)
        why = "bad ip_version in metadata";
    else if (m->record_size != 24 && m->record_size != 28 && m->record_size != 32)
        why = "bad record_size in metadata";
    else if (m->node_count == 0)
        why = "empty search tree";
    else if (!m->database_type)
        why = "no database_type in metadata";
    if (why) {
        snprintf(err, errcap, "%s: %s", path, why);
        MMDB_close(mmdb);
        return -1;
    }
    return 0;
}

void vd_mmdb_describe(const MMDB_s *mmdb, char *buf, size_t cap)
{
    const MMDB_metadata_s *m = &mmdb->metadata;
    char date[16] = "?";
    time_t t = (time_t)m->build_epoch;
    struct tm tm;
    if (gmtime_r(&t, &tm))
        strftime(date, sizeof date, "%Y-%m-%d", &tm);
    snprintf(buf, cap, "%.64s, built %s, %u nodes, IPv%u", m->database_type, date, m->node_count,
             (unsigned)m->ip_version);
}
