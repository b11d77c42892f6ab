/* files.h — the file store: the *.json files of a segments directory and of a
 * content-map directory. Files are read in name order; other files and dot files are skipped.
 * A file over VD_MAX_DEF_FILE_BYTES, an unreadable file or a missing
 * directory is an error naming the path. */
#ifndef VD_STORE_FILES_H
#define VD_STORE_FILES_H

#include "core/errors.h"
#include "rules/defs.h"

int vd_files_load(const char *segments_dir, const char *content_map_dir, vd_docset *out,
                  vd_errors *err);

/* Loads both directories and compiles them with the daemon's compiler; the
 * version is the content hash. NULL with every error in err. */
struct vd_ruleset;
struct vd_ruleset *vd_files_compile(const char *segments_dir, const char *content_map_dir,
                                    vd_errors *err);

/* The score definitions of a scores directory (contract v2); a NULL or
 * empty dir adds nothing. */
int vd_files_load_scores(const char *scores_dir, vd_docset *out, vd_errors *err);
/* The folder "scores" beside a segments folder (segments -> scores,
 * defs/segments/ -> defs/scores) in buf, or NULL if there is none. */
const char *vd_files_scores_beside(const char *segments_dir, char *buf, size_t cap);
/* All three folders. scores_dir NULL or "": the scores folder beside the
 * segments folder when there is one (so does vd_files_compile). */
struct vd_ruleset *vd_files_compile_all(const char *segments_dir, const char *content_map_dir,
                                        const char *scores_dir, vd_errors *err);

#endif
