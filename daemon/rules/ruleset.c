/* PLACEHOLDER: replaced by the rules compiler work. */
#include "rules/ruleset.h"
#include <stdlib.h>
#include <string.h>
struct vd_ruleset { char *version; };
vd_ruleset *vd_ruleset_compile(const vd_docset *docs, const char *version, vd_errors *err) { (void)docs; (void)err; vd_ruleset *rs = calloc(1, sizeof *rs); if (rs) rs->version = strdup(version); return rs; }
void vd_ruleset_retain(vd_ruleset *rs) { (void)rs; }
void vd_ruleset_release(vd_ruleset *rs) { if (rs) { free(rs->version); free(rs); } }
const char *vd_ruleset_version(const vd_ruleset *rs) { return rs->version; }
uint32_t vd_ruleset_nsegments(const vd_ruleset *rs) { (void)rs; return 0; }
vd_str vd_ruleset_segment_id(const vd_ruleset *rs, uint32_t seg) { (void)rs; (void)seg; return VD_STR_NULL; }
int32_t vd_ruleset_find_segment(const vd_ruleset *rs, vd_str id) { (void)rs; (void)id; return -1; }
uint32_t vd_ruleset_nslots(const vd_ruleset *rs) { (void)rs; return 0; }
const vd_slot *vd_ruleset_slot_at(const vd_ruleset *rs, uint32_t i) { (void)rs; (void)i; return NULL; }
const vd_slot *vd_ruleset_find_slot(const vd_ruleset *rs, vd_str name) { (void)rs; (void)name; return NULL; }
