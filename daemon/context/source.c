/* PLACEHOLDER: replaced by the source/url/lang work. */
#include "context/source.h"
#include <string.h>
void vd_source_classify(vd_str referer, vd_str page_url, vd_source *out) { (void)page_url; memset(out, 0, sizeof *out); out->medium = referer.n ? VD_MEDIUM_REFERRAL : VD_MEDIUM_DIRECT; }
const char *vd_medium_name(unsigned m) { static const char *const n[] = { "direct", "organic", "paid", "social", "email", "referral", "internal" }; return m < VD_MEDIUM__COUNT ? n[m] : "direct"; }
