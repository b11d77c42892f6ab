/* PLACEHOLDER: replaced by the source/url/lang work. */
#include "context/url.h"
#include <string.h>
bool vd_url_parse(vd_str s, vd_url *out) { memset(out, 0, sizeof *out); out->path = s; return s.n > 0; }
bool vd_url_query_get(vd_str query, vd_str name, char *buf, size_t cap, vd_str *out) { (void)query; (void)name; (void)buf; (void)cap; *out = VD_STR_NULL; return false; }
bool vd_url_query_next(vd_str query, size_t *pos, vd_str *key, vd_str *value) { (void)query; (void)pos; (void)key; (void)value; return false; }
size_t vd_url_decode(vd_str s, char *buf, size_t cap) { return vd_str_copy(buf, cap, s); }
