/* lang.h — the visitor's primary language from an Accept-Language value. */
#ifndef VD_CONTEXT_LANG_H
#define VD_CONTEXT_LANG_H

#include <stdbool.h>

#include "core/str.h"

/* Primary subtag (lower case, 2-8 letters) of the highest-q language range;
 * ties keep header order; "*" and q=0 are ignored. False if none. */
bool vd_lang_primary(vd_str accept_language, char out[9]);

#endif
