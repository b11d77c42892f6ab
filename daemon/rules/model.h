/* model.h — the compiled form, shared by the compilers (build.c,
 * compile_segment.c, compile_slot.c), the index and the evaluator. Nothing
 * outside daemon/rules includes it: other floors use ruleset.h, index.h and
 * eval.h.
 *
 * Everything is flat: nodes and predicates are arrays addressed by index,
 * the children of an all/any node are contiguous, strings and value sets
 * live in one arena owned by the ruleset. */
#ifndef VD_RULES_MODEL_H
#define VD_RULES_MODEL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "context/attrs.h"
#include "context/ip.h"
#include "core/value.h"
#include "rules/acmatch.h"
#include "rules/arena.h"
#include "rules/ruleset.h"

enum vd_node_kind {
    VD_N_ALL = 0,     /* a = first child, n = count (n == 0: true) */
    VD_N_ANY,         /* a = first child, n = count (n == 0: false) */
    VD_N_NOT,         /* a = child */
    VD_N_REF,         /* a = segment index */
    VD_N_PRED,        /* a = predicate index */
};

typedef struct vd_node {
    uint32_t kind;
    uint32_t a;
    uint32_t n;
} vd_node;

enum vd_op {
#define VD_OP_LIST(X) X(EQ, "eq") X(NE, "ne") X(IN, "in") X(NOT_IN, "not_in")         \
    X(PREFIX, "prefix") X(SUFFIX, "suffix") X(CONTAINS, "contains") X(LT, "lt")      \
    X(LTE, "lte") X(GT, "gt") X(GTE, "gte") X(BETWEEN, "between") X(CIDR, "cidr")    \
    X(WITHIN, "within") X(EXISTS, "exists")
#define VD_OP_ENUM(id, name) VD_OP_##id,
    VD_OP_LIST(VD_OP_ENUM)
#undef VD_OP_ENUM
    VD_OP__COUNT
};

/* How a predicate tests a present value (the op is folded into this). */
enum vd_test {
    VD_T_EXISTS = 0,  /* always true when present */
    VD_T_SET,         /* equality with any of strs / nums / bools */
    VD_T_PREFIX,      /* any of strs */
    VD_T_SUFFIX,
    VD_T_CONTAINS,
    VD_T_RANGE,       /* lo..hi on numbers (incl flags) */
    VD_T_IPNET,       /* any of nets */
    VD_T_WITHIN,      /* haversine distance <= km */
    VD_T_BITS,        /* hour / minute / weekday bitmap */
};

/* A predicate whose verdict time alone can change (it bounds `until`):
 * hour / minute / weekday bitmaps, ranges on dates and instants. */
static inline bool vd_pred_timed(uint8_t test, uint8_t type)
{
    return test == VD_T_BITS || (test == VD_T_RANGE && (type == VD_AT_INSTANT || type == VD_AT_DATE));
}

/* String sets up to this size are tested by hash (one per request value)
 * then bytes; larger sorted sets by bisection. */
#define VD_SET_HASHED 16

/* From this many `contains` terms on, one Aho–Corasick pass replaces the
 * term-by-term scan (rules/acmatch.h). */
#define VD_ACM_MIN_TERMS 4

typedef struct vd_pred {
    vd_attr_ref attr;         /* sub interned in the arena */
    uint8_t type;             /* vd_attr_type of the attribute */
    uint8_t op;               /* vd_op, for explain and docs */
    uint8_t test;             /* vd_test */
    bool negate;              /* ne / not_in / exists false: result of the test inverted */
    bool if_missing;          /* result when the attribute is missing */
    bool lo_incl, hi_incl;
    uint8_t bools;            /* bit 0: false in the set, bit 1: true in the set */
    bool sorted;              /* strs sorted (case-folded) for bsearch */
    uint32_t nstrs, nnums, nnets, nbits;
    const vd_str *strs;       /* lower case, interned */
    const double *nums;
    const vd_ipnet *nets;
    const uint64_t *bits;     /* nbits bits: 24 hours, 1440 minutes, 7 weekdays */
    const vd_acm *acm;        /* CONTAINS with VD_ACM_MIN_TERMS+ strs: all of them at once */
    /* SET with at most VD_SET_HASHED strs: vd_hash64_ci of each (index.c),
     * compared with the request value's hash before its bytes */
    const uint64_t *hashes;
    double lo, hi;            /* RANGE; +-INFINITY for open ends */
    double lat, lon, km;      /* WITHIN */
} vd_pred;

/* One instruction of a segment's branching program: test predicate op
 * (or, with VD_INS_REF, the verdict of segment op & ~VD_INS_REF), then go
 * to t or f; pcs from VD_PC_FALSE up are final. */
typedef struct vd_ins {
    uint32_t op, t, f;
} vd_ins;

#define VD_INS_REF 0x80000000u
#define VD_PC_NONE UINT32_MAX
#define VD_PC_TRUE (UINT32_MAX - 1)
#define VD_PC_FALSE (UINT32_MAX - 2)

/* Term tables of the evaluator (rules/eval.c, vd_eval_prepare). Every
 * distinct string a string test (eq/in, prefix, contains, suffix) compares
 * with is a term, numbered per (value slot, mode): a request value is
 * matched against all the terms of its slot and mode at once, the first
 * time a predicate of that mode asks for it (one hash lookup for exact
 * terms, one per prefix length for prefixes, one Aho–Corasick pass for
 * contains and suffix terms), and each term met is stamped; a predicate's
 * verdict is then whether any of its terms was stamped. */
enum vd_term_mode {
    VD_TM_NONE = 0,           /* the predicate is tested by test_value */
    VD_TM_EXACT,
    VD_TM_PREFIX,
    VD_TM_CONTAINS,
    VD_TM_SUFFIX,
};

typedef struct vd_term_slot {
    vd_str key;               /* lower case; key.p NULL: empty slot */
    uint64_t hash;            /* vd_hash64_ci(key) */
    uint32_t term;
} vd_term_slot;

typedef struct vd_term_tab {  /* per value slot (rs->pred_aslot) */
    vd_term_slot *exact, *prefix;
    uint32_t exact_mask, prefix_mask;   /* size - 1; 0 with NULL: no terms */
    uint32_t prefix_maxlen;
    const vd_acm *contains, *suffix;    /* term ids base + automaton id */
    uint32_t contains_base, suffix_base;
} vd_term_tab;

typedef struct vd_term_pred { /* per predicate */
    uint32_t first;           /* its terms: rs->pred_terms[first .. first + n) */
    uint16_t n;
    uint8_t mode;             /* vd_term_mode */
} vd_term_pred;

typedef struct vd_segment {
    vd_str id;
    vd_str description;
    uint32_t root;            /* node index */
    uint32_t node_first, node_end;  /* this segment's nodes, contiguous */
    /* The node of its string guard (VD_G_SET / _PREFIX / _CONTAINS /
     * _SUFFIX), else
     * VD_NO_NODE: reached through that guard's index bucket, the guard is
     * known to hold and is not tested again. */
    uint32_t guard_node;
} vd_segment;

#define VD_NO_NODE UINT32_MAX

/* Candidate index. A segment whose match is (or is an `all` containing) a
 * guard predicate can only match when the request passes that guard, so a
 * request evaluates only the segments filed under its own values plus the
 * unguarded ones. Guards, most selective first: eq/in on a string
 * attribute (exact keys), prefix on a string attribute (the request value's
 * prefixes are looked up), time.hour and time.weekday sets (one bucket per
 * hour / weekday). Each segment is filed under its single most selective
 * guard. */
enum vd_guard_kind {
    VD_G_NONE = 0,            /* unguarded: always evaluated */
    VD_G_SET,
    VD_G_PREFIX,
    VD_G_HOUR,
    VD_G_WEEKDAY,
    VD_G_CONTAINS,            /* keys are found in the request value (Aho–Corasick) */
    VD_G_SUFFIX,              /* keys end the request value (the same automaton) */
};

/* How the keys of an index table meet a request value. */
enum vd_index_mode {
    VD_IX_EXACT = 0,
    VD_IX_PREFIX,
    VD_IX_CONTAINS,
    VD_IX_SUFFIX,
};
typedef struct vd_index_entry {
    vd_str key;               /* lower case */
    uint64_t hash;            /* vd_hash64_ci(key) */
    uint32_t first, n;        /* into vd_ruleset.index_segs */
    uint32_t rfirst, rn;      /* into vd_ruleset.entry_runs: one run per slot using
                               * those segments */
} vd_index_entry;

/* A piece of one slot's rule bitmap: bit b of `bits` is rule 64 * word + b
 * of the slot. */
typedef struct vd_rule_bits {
    uint64_t bits;
    uint32_t word;
} vd_rule_bits;

/* The rules of one slot whose segments one index entry files: bitmap
 * pieces in ascending word order, run_bits[first .. first + n); or, when
 * they fill at least half the slot's words (dense), the slot's whole
 * bitmap, run_words[first .. first + n) (n: the slot's words). */
typedef struct vd_slot_run {
    uint32_t slot, first, n;
    uint32_t dense;
} vd_slot_run;

/* The first rule of a slot filed under index attribute attr. */
typedef struct vd_lazy_first {
    uint32_t rule, attr;
} vd_lazy_first;

/* vd_attr_family bits (context/attrs.h) the index keeps masks for. */
#define VD_INDEX_FAMILIES 16

/* Families whose first read costs far more than an index probe (measured
 * in docs/PERFORMANCE.md, "Lazy probing"): the GeoIP walk, the User-Agent,
 * the traffic source (Referer, utm, PSL), the network databases. The URL
 * is parsed once (~1,600 instructions) and its path is what most URL rules
 * read; lang and attr.* are slices of the request. A decision probes an
 * index attribute of these families, while the family is not computed
 * yet, only when a slot's walk reaches a rule filed under it. */
#define VD_COSTLY_FAMILIES (VD_FAM_GEO | VD_FAM_DEVICE | VD_FAM_SOURCE | VD_FAM_NET)

/* Where a segment is used: rule `rule` of slot `slot` (slot order of rs->slots). */
typedef struct vd_seg_use {
    uint32_t slot, rule;
} vd_seg_use;

typedef struct vd_index_attr {
    vd_attr_ref attr;
    uint8_t mode;             /* vd_index_mode */
    uint32_t maxlen;          /* longest key (prefix tables) */
    uint32_t nkeys;           /* distinct keys */
    uint32_t mask;            /* table size - 1 (power of two) */
    vd_index_entry *tab;      /* key.p == NULL: empty */
    /* contains / suffix: every key in one automaton; term id k is the key
     * of tab[term_slot[k]] */
    const vd_acm *acm;
    uint32_t *term_slot;
    uint16_t family;          /* vd_attr_family bits of attr (its context cost) */
} vd_index_attr;

struct vd_ruleset {
    atomic_uint refs;
    char *version;
    vd_arena arena;
    vd_node *nodes;
    uint32_t nnodes, cap_nodes;
    vd_pred *preds;
    uint32_t npreds, cap_preds;
    vd_segment *segs;
    uint32_t nsegs, cap_segs;
    uint32_t *seg_by_id;      /* hash table of segment indexes by id (UINT32_MAX: empty) */
    uint32_t seg_by_id_mask;  /* its size - 1 (a power of two, over twice nsegs) */
    /* timeless[node]: no predicate below it (references followed) depends
     * on time, so its `until` is always INT64_MAX and the evaluator skips
     * the bookkeeping (index.c; NULL until the index is built). */
    uint8_t *timeless;
    /* Timeless segments as branching programs (index.c): each predicate
     * or reference of the tree is one instruction with the next pc for
     * true and for false, so a test walks leaves only, no all/any/not
     * nodes. prog_entry[seg]: the whole tree; prog_past[seg]: the tree
     * with its string guard taken as true (reached through the guard's
     * index bucket); VD_PC_NONE: no program (a time predicate inside). */
    vd_ins *prog;
    uint32_t nprog;
    uint32_t *prog_entry, *prog_past;
    vd_index_attr *index;     /* one per indexed attribute */
    uint32_t nindex;
    uint32_t max_hits;        /* most index entries one request can reach */
    uint32_t *index_segs;     /* segment lists of the index entries */
    uint32_t *unguarded;      /* segments that must always be evaluated */
    uint32_t nunguarded;
    uint8_t *guard;           /* vd_guard_kind per segment */
    uint32_t hour_first[25];  /* hour h: hour_segs[hour_first[h] .. hour_first[h+1]) */
    uint32_t *hour_segs;
    uint32_t wday_first[8];   /* weekday d (0 = mon): likewise */
    uint32_t *wday_segs;
    uint32_t *use_first;      /* segment s: uses[use_first[s] .. use_first[s+1]) */
    vd_seg_use *uses;
    uint32_t *check_first;    /* slot i: check[check_first[i] .. check_first[i+1]) */
    uint32_t *check;          /* rule indexes whose segment has no string guard, ascending */
    /* Predicate p's verdict is shared with identical predicates of other
     * segments: pred_share[p] is the group's id (0..nshared-1), memoized
     * once per request; UINT32_MAX: p is the only one of its kind. */
    uint32_t *pred_share;
    uint32_t nshared;
    /* pred_group[p]: the group of predicates identical to p (0 ..
     * ngroups-1), whose one verdict slot the evaluator's memo uses;
     * group_pred[g]: the predicate tested for group g (its first);
     * pred_ident[p] == p, used for both while pred_share is NULL (no
     * sharing). Built by vd_eval_prepare, in the arena. */
    const uint32_t *pred_group, *group_pred, *pred_ident;
    uint32_t ngroups;
    const vd_term_pred *term_pred;      /* per predicate (vd_eval_prepare) */
    const uint32_t *pred_terms;
    const vd_term_tab *term_tab;        /* per value slot */
    uint32_t nterms;
    /* Slot names by their key (vd_slot_key): open addressing, slot ==
     * UINT32_MAX empty; NULL until the index is built
     * (vd_ruleset_find_slot then bisects). */
    struct vd_slot_ent *slot_tab;
    uint32_t slot_mask;
    /* Nonzero once the slot table is built, and never the same for two
     * rulesets of one process (an address may be reused after a free):
     * the key of the decision step's per-thread memo of the previous
     * request's slot names (decision/decide.c). */
    uint64_t slot_serial;
    /* Lazy probing (decision/decide.c): slot s's index attributes (0..63)
     * of a costly family (VD_COSTLY_FAMILIES) with the first of its rules
     * filed under each, by ascending rule:
     * lazy_first[slot_lazy_first[s] .. slot_lazy_first[s + 1]). Rules
     * before that one cannot be reached through the attribute, so a walk
     * of the slot that stops earlier need not probe it (nor compute its
     * context family). index_family[f]: the attributes (0..63) whose
     * context family has bit f. */
    vd_lazy_first *lazy_first;
    uint32_t *slot_lazy_first;
    /* slot_eager[s]: the attributes slot s uses (slot_want) that are not
     * in its lazy_first list. A request defers an attribute only when no
     * requested slot needs it probed up front. */
    uint64_t *slot_eager;
    uint64_t index_family[VD_INDEX_FAMILIES];
    /* slot_want[s]: bit a set when slot s has a rule filed under index
     * attribute a (all ones when there are more than 64 index attributes). */
    uint64_t *slot_want;
    /* pred_aslot[p]: the request value predicate p reads, memoized once
     * per request (one id per distinct attribute and NAME); naslots ids. */
    uint32_t *pred_aslot;
    uint32_t naslots;
    /* A decision builds one bitmap of rules per requested slot: its rules
     * without a string guard (check_bits) or(ed) with the runs of the index
     * entries the request reaches, then walks the set bits in rule order
     * and stops at the first match. Slot s owns words slot_word[s] ..
     * slot_word[s + 1] of the bitmap (and of check_bits). */
    vd_slot_run *entry_runs;  /* per index entry (rfirst, rn), by slot */
    vd_rule_bits *run_bits;
    uint64_t *run_words;
    uint32_t *slot_word;
    uint64_t *check_bits;
    vd_slot *slots;           /* sorted by name */
    uint32_t nslots, cap_slots;
    vd_score_def *scores;     /* sorted by id (rules/scores.c) */
    uint32_t nscores, cap_scores;
};

/* A slot name as two words: its first and last 8 bytes (overlapping
 * when shorter than 16; shorter than 8: first and last 4, or the bytes
 * themselves). Names of up to 16 bytes are equal when their lengths and
 * keys are; longer ones compare their middle bytes too. Fixed-size loads,
 * no per-byte loop: a 20-slot page looks up 20 names. */
typedef struct vd_slot_key {
    uint64_t a, b;
} vd_slot_key;

typedef struct vd_slot_ent {
    vd_slot_key key;
    uint32_t n;               /* name length */
    uint32_t slot;            /* index in rs->slots; UINT32_MAX: empty */
} vd_slot_ent;

static inline vd_slot_key vd_slot_key_of(const char *p, size_t n)
{
    vd_slot_key k = { 0, 0 };
    if (n >= 8) {
        memcpy(&k.a, p, 8);
        memcpy(&k.b, p + n - 8, 8);
    } else if (n >= 4) {
        uint32_t x, y;
        memcpy(&x, p, 4);
        memcpy(&y, p + n - 4, 4);
        k.a = x;
        k.b = y;
    } else if (n) {
        k.a = (uint64_t)(unsigned char)p[0] | (uint64_t)(unsigned char)p[n / 2] << 8 |
              (uint64_t)(unsigned char)p[n - 1] << 16;
    }
    return k;
}

static inline uint32_t vd_slot_hash(vd_slot_key k, size_t n)
{
    uint64_t h = (k.a ^ (uint64_t)n) * 0x9E3779B97F4A7C15ULL ^ k.b * 0xC2B2AE3D27D4EB4FULL;
    return (uint32_t)(h >> 32) ^ (uint32_t)h;
}

/* Frees a ruleset whose last reference is gone (or a failed build's). */
void vd_ruleset_destroy(vd_ruleset *rs);

#endif
