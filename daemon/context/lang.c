/* PLACEHOLDER: replaced by the source/url/lang work. */
#include "context/lang.h"
bool vd_lang_primary(vd_str al, char out[9]) { size_t i = 0; while (i < al.n && i < 8 && ((al.p[i] | 32) >= 'a' && (al.p[i] | 32) <= 'z')) { out[i] = (char)(al.p[i] | 32); i++; } out[i] = 0; return i >= 2; }
