/* compile_slot.h — compiles one content-map slot: variants (payloads
 * pre-encoded), default, ordered rules and weighted splits. Private to
 * daemon/rules (build.c calls it once per slot object). */
#ifndef VD_RULES_COMPILE_SLOT_H
#define VD_RULES_COMPILE_SLOT_H

#include "core/json.h"
#include <stdbool.h>

#include "rules/compile.h"

/* Compiles slot object j into *out; false after reporting what is wrong. */
bool vd_compile_slot(vd_compiler *c, const vd_json *j, vd_slot *out);

#endif
