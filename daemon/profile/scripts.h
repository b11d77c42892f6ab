/* scripts.h — the profile store's Lua scripts (layout 1) and their SHA-1
 * names for EVALSHA. Every script touches its KEYS only (all but the track
 * batch: KEYS[1] only). */
#ifndef VD_PROFILE_SCRIPTS_H
#define VD_PROFILE_SCRIPTS_H

#include <stddef.h>

enum {
    VD_SCRIPT_VISIT = 0,      /* decide: count the visit, maybe read the profile */
    VD_SCRIPT_EVENT,          /* track: visit + event counter + scores */
    VD_SCRIPT_FLAG,           /* set or clear a flag */
    VD_SCRIPT_SHOW,           /* read a profile (access requests) */
    VD_SCRIPT_FORGET,         /* erase a profile */
    VD_SCRIPT_CLAIM,          /* merge, step 1: take the vid's profile, leave an alias */
    VD_SCRIPT_MERGE,          /* merge, step 2: add it into the uid's profile */
    VD_SCRIPT_TRACK_BATCH,    /* track: many events for one or more profiles at once */
    VD_SCRIPT_DECIDE,         /* decide: exposures of slots with a goal (+ the visit) */
    VD_SCRIPT__COUNT
};

typedef struct vd_script {
    const char *name;
    const char *body;
    size_t len;
    char sha[41];
} vd_script;

/* Computes the SHA-1 names; call once before any worker starts. */
void vd_scripts_init(void);
const vd_script *vd_script_get(int id);

#endif
