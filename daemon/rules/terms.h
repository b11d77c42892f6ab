/* terms.h — the terms of a value slot's term table that a string meets.
 *
 * One walk for every reader of the term tables (model.h, vd_term_tab): the
 * evaluator stamps the terms a request value meets (rules/eval.c), the
 * answer cache digests them into its key (rules/answers.c), and
 * vd-microbench's answer-key study does the same. Header-only so the
 * evaluator's callback inlines into the exact and prefix probes. */
#ifndef VD_RULES_TERMS_H
#define VD_RULES_TERMS_H

#include <stdint.h>

#include "core/str.h"
#include "rules/acmatch.h"
#include "rules/model.h"

typedef void vd_term_hit_fn(void *arg, uint32_t term);

/* The automata number their patterns from 0: their term ids start at base. */
typedef struct vd_terms_acm_arg {
    vd_term_hit_fn *hit;
    void *arg;
    uint32_t base;
} vd_terms_acm_arg;

static inline void vd_terms_acm_hit(void *p, uint32_t id)
{
    const vd_terms_acm_arg *w = p;
    w->hit(w->arg, w->base + id);
}

/* Calls hit(arg, term) for every term of table t in mode (vd_term_mode)
 * that s meets: the equal key (exact; h is vd_hash64_ci of s, unused by
 * the other modes), every prefix of s that is a key (one probe per length:
 * FNV-1a, as vd_hash64_ci, is incremental), the automaton's matches
 * (contains, suffix). A mode without terms in t calls nothing. */
static inline void vd_terms_each(const vd_term_tab *t, vd_str s, unsigned mode, uint64_t h, vd_term_hit_fn *hit,
                                 void *arg)
{
    switch (mode) {
    case VD_TM_EXACT:
        if (!t->exact)
            return;
        for (uint32_t k = (uint32_t)h & t->exact_mask; t->exact[k].key.p; k = (k + 1) & t->exact_mask)
            if (t->exact[k].hash == h && vd_str_eq_ci(t->exact[k].key, s)) {
                hit(arg, t->exact[k].term);
                return;
            }
        return;
    case VD_TM_PREFIX: {
        if (!t->prefix)
            return;
        uint64_t ph = 1469598103934665603ULL;
        size_t lim = s.n < t->prefix_maxlen ? s.n : t->prefix_maxlen;
        for (size_t l = 0; l < lim; l++) {
            unsigned char c = (unsigned char)s.p[l];
            if (c >= 'A' && c <= 'Z')
                c = (unsigned char)(c + 32);
            ph = (ph ^ c) * 1099511628211ULL;
            for (uint32_t k = (uint32_t)ph & t->prefix_mask; t->prefix[k].key.p; k = (k + 1) & t->prefix_mask)
                if (t->prefix[k].hash == ph && t->prefix[k].key.n == l + 1 &&
                    vd_str_eq_ci(t->prefix[k].key, vd_str_make(s.p, l + 1))) {
                    hit(arg, t->prefix[k].term);
                    break;
                }
        }
        return;
    }
    case VD_TM_CONTAINS:
    case VD_TM_SUFFIX: {
        bool suffix = mode == VD_TM_SUFFIX;
        const vd_acm *m = suffix ? t->suffix : t->contains;
        if (!m)
            return;
        vd_terms_acm_arg w = { hit, arg, suffix ? t->suffix_base : t->contains_base };
        vd_acm_each(m, s, suffix, vd_terms_acm_hit, &w);
        return;
    }
    default:
        return;
    }
}

#endif
