/* bots.c — isbot's pattern list compiled with PCRE2; see bots.h.
 *
 * The list is written for JavaScript's RegExp with the "i" flag. PCRE2 reads
 * it with two adjustments: PCRE2_DOLLAR_ENDONLY (JS "$" never matches before
 * a final newline), and a '-' right after a class escape inside [...]
 * ("[\w\d-.]") escaped, which JS takes literally and PCRE2 refuses. The UA is
 * matched lower-cased, as bytes (PCRE2_CASELESS, no UTF mode).
 *
 * One alternation of all 206 patterns costs ~15 us per UA under the JIT (it
 * is tried at every offset), so each pattern is compiled alone and runs only
 * when the UA can match it:
 *   - an anchored pattern that starts with plain characters ("^python",
 *     "^ad muncher") when the UA starts with them (patterns filed by their
 *     first byte);
 *   - the anchored patterns without such a prefix, as one alternation (tried
 *     at offset 0 only); one by one only when that matches;
 *   - any other pattern when the UA holds its longest required literal (a
 *     run of plain characters outside groups and optional parts: "crawl",
 *     "/1.0;"), first tested with two bits of the UA's window set;
 *   - the rest (no literal of 3+ bytes) after a memchr for what literal
 *     they have.
 * vd_bots_match_all runs every pattern unguarded: tests check on the corpora
 * that both agree. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "context/bots.h"

#include "core/alloc.h"

#include <pcre2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* data/bots/isbot-patterns.txt, embedded (NUL-terminated). */
__asm__(".section .rodata\n"
        ".global vd_isbot_patterns_txt\n"
        ".type vd_isbot_patterns_txt, @object\n"
        "vd_isbot_patterns_txt:\n"
        ".incbin \"data/bots/isbot-patterns.txt\"\n"
        ".byte 0\n"
        ".previous\n");
extern const char vd_isbot_patterns_txt[];

#define MAX_PATTERNS 1024
#define LIT_MAX 48

typedef struct bot_pat {
    uint16_t h_first, h_last;   /* vd_tri_hash of the literal's first and last 3 bytes */
    bool jit;
    bool anchored;              /* starts with '^' and has no top-level '|' */
    unsigned char prefix_n;     /* anchored: the literal it starts with, in lit */
    pcre2_code *re;
    const char *text;         /* the list's line, NUL-terminated (in texts) */
    char lit[LIT_MAX];        /* required lower-case literal, "" = none */
    unsigned char lit_n;
} bot_pat;

static struct {
    pthread_once_t once;
    int rc;
    char err[256];
    char desc[160];
    bot_pat *pats;
    unsigned n;
    char *texts;
    pthread_key_t md_key;
    pcre2_code *anchored_re;    /* the anchored patterns without a prefix, as one */
    bool anchored_jit;
    /* Lookup tables built once: prefix patterns by their first byte, the
     * others with a literal as a compact array of window hashes. */
    uint16_t *by_first[256];    /* pattern indexes, ending with UINT16_MAX */
    struct guard { uint16_t h_first, h_last, idx; } *guards;
    unsigned nguards;
    /* The guards by their first window: a UA's window set ANDed with
     * first_set gives the few hashes to look up, gorder[gstart[h] ..
     * gstart[h + 1]] the guards whose literal starts with hash h. */
    uint64_t first_set[VD_TRI_BITS / 64];
    uint16_t *gstart;           /* VD_TRI_BITS + 1 */
    uint16_t *gorder;
    uint16_t *always;           /* unanchored, no literal of 3+ bytes: ending UINT16_MAX */
} g = { .once = PTHREAD_ONCE_INIT, .rc = -1 };

/* JS -> PCRE2: escape a '-' that follows \w \d \s (or upper case) inside a class. */
static char *to_pcre2(const char *p)
{
    size_t n = strlen(p), k = 0;
    char *o = vd_malloc(2 * n + 1);
    if (!o)
        return NULL;
    bool cls = false;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '\\' && i + 1 < n) {
            o[k++] = c;
            o[k++] = p[++i];
            if (cls && strchr("wdsWDS", p[i]) && i + 2 < n && p[i + 1] == '-' && p[i + 2] != ']') {
                o[k++] = '\\';
                o[k++] = '-';
                i++;
            }
            continue;
        }
        if (c == '[' && !cls) {
            cls = true;
            o[k++] = c;
            if (i + 1 < n && p[i + 1] == '^')
                o[k++] = p[++i];
            if (i + 1 < n && p[i + 1] == ']')
                o[k++] = p[++i];
            continue;
        }
        if (c == ']' && cls)
            cls = false;
        o[k++] = c;
    }
    o[k] = '\0';
    return o;
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c + ('a' - 'A')) : c;
}

/* "^ad muncher", "^clamav[ /]": the plain characters right after '^' that
 * every match starts with (lower-cased into out); 0 if none. */
static size_t prefix_literal(const char *p, char *out, size_t cap)
{
    size_t n = 0, i = 1;
    while (p[i] && n < cap) {
        char c = p[i];
        size_t next = i + 1;
        if (c == '\\' && p[i + 1] && strchr(".\\/-()[]{}|?*+^$ @;:,'\"#%&!=<>~_", p[i + 1])) {
            c = p[i + 1];
            next = i + 2;
        } else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     c == ' ' || c == '-' || c == '/' || c == '_' || c == ';' || c == ':' ||
                     c == ',' || c == '@' || c == '%' || c == '=')) {
            break;
        }
        if (p[next] == '?' || p[next] == '*' || p[next] == '{')
            break;                     /* optional: not part of every match */
        out[n++] = lower(c);
        i = next;
    }
    return n;
}

static bool top_level_alternation(const char *p)
{
    int depth = 0;
    bool cls = false;
    for (size_t i = 0; p[i]; i++) {
        char c = p[i];
        if (c == '\\') {
            if (!p[i + 1])
                break;
            i++;
            continue;
        }
        if (cls) {
            if (c == ']')
                cls = false;
            continue;
        }
        if (c == '[')
            cls = true;
        else if (c == '(')
            depth++;
        else if (c == ')')
            depth--;
        else if (c == '|' && depth == 0)
            return true;
    }
    return false;
}

/* The longest run of characters every match must contain, lower-cased;
 * 0 when the pattern has a top-level '|' or no such run. Conservative:
 * groups, classes, escapes of character types and quantified characters
 * end a run. */
static size_t required_literal(const char *p, char *out, size_t cap)
{
    size_t n = strlen(p), best = 0, cn = 0;
    char cur[LIT_MAX];
    if (top_level_alternation(p))
        return 0;
#define FLUSH() do { if (cn > best && cn <= cap) { memcpy(out, cur, cn); best = cn; } cn = 0; } while (0)
    for (size_t i = 0; i < n; i++) {
        char c = p[i], lit;
        size_t next = i + 1;
        if (c == '\\') {
            if (i + 1 >= n)
                break;
            char e = p[i + 1];
            next = i + 2;
            if (!strchr(".\\/-()[]{}|?*+^$ @;:,'\"#%&!=<>~_", e)) {   /* \w \b \d \1 ... */
                FLUSH();
                i = next - 1;
                continue;
            }
            lit = e;
        } else if (c == '[') {                 /* skip the class */
            FLUSH();
            size_t j = i + 1;
            if (j < n && p[j] == '^')
                j++;
            if (j < n && p[j] == ']')
                j++;
            while (j < n && p[j] != ']')
                j += p[j] == '\\' ? 2 : 1;
            i = j;
            continue;
        } else if (c == '(') {                 /* skip the group, lookarounds too */
            FLUSH();
            int d = 1;
            bool in = false;
            size_t j = i + 1;
            while (j < n && d) {
                if (p[j] == '\\') {
                    j += 2;
                    continue;
                }
                if (in)
                    in = p[j] != ']';
                else if (p[j] == '[')
                    in = true;
                else if (p[j] == '(')
                    d++;
                else if (p[j] == ')')
                    d--;
                j++;
            }
            i = j - 1;
            continue;
        } else if (c == '^' || c == '$' || c == '.' || c == '?' || c == '*' || c == '+') {
            FLUSH();
            continue;
        } else if (c == '{') {
            FLUSH();
            while (i < n && p[i] != '}')
                i++;
            continue;
        } else {
            lit = c;
        }
        /* A quantifier on this character: optional or repeated. */
        if (next < n && (p[next] == '?' || p[next] == '*' || p[next] == '{')) {
            FLUSH();
            i = next - 1;
            continue;
        }
        if (cn < LIT_MAX)
            cur[cn++] = lower(lit);
        if (next < n && p[next] == '+') {      /* at least one: keep it, end the run */
            FLUSH();
            i = next;
            continue;
        }
        i = next - 1;
    }
    FLUSH();
#undef FLUSH
    return best;
}

static int build_tables(void)
{
    unsigned count[256] = { 0 };
    for (unsigned i = 0; i < g.n; i++)
        if (g.pats[i].prefix_n)
            count[(unsigned char)g.pats[i].lit[0]]++;
    for (unsigned c = 0; c < 256; c++) {
        if (!count[c])
            continue;
        g.by_first[c] = vd_malloc((count[c] + 1) * sizeof *g.by_first[c]);
        if (!g.by_first[c])
            return -1;
        count[c] = 0;
    }
    g.guards = vd_malloc(g.n * sizeof *g.guards);
    g.always = vd_malloc((g.n + 1) * sizeof *g.always);
    if (!g.guards || !g.always)
        return -1;
    unsigned na = 0;
    for (unsigned i = 0; i < g.n; i++) {
        const bot_pat *bp = &g.pats[i];
        if (bp->prefix_n) {
            unsigned c = (unsigned char)bp->lit[0];
            g.by_first[c][count[c]++] = (uint16_t)i;
        } else if (bp->anchored) {
            continue;                   /* in anchored_re */
        } else if (bp->lit_n >= 3) {
            g.guards[g.nguards++] = (struct guard){ bp->h_first, bp->h_last, (uint16_t)i };
        } else {
            g.always[na++] = (uint16_t)i;
        }
    }
    for (unsigned c = 0; c < 256; c++)
        if (g.by_first[c])
            g.by_first[c][count[c]] = UINT16_MAX;
    g.always[na] = UINT16_MAX;
    g.gstart = vd_calloc(VD_TRI_BITS + 1, sizeof *g.gstart);
    g.gorder = vd_malloc((g.nguards + 1) * sizeof *g.gorder);
    if (!g.gstart || !g.gorder)
        return -1;
    for (unsigned k = 0; k < g.nguards; k++) {
        g.gstart[g.guards[k].h_first + 1]++;
        g.first_set[g.guards[k].h_first / 64] |= (uint64_t)1 << (g.guards[k].h_first % 64);
    }
    for (unsigned h = 0; h < VD_TRI_BITS; h++)
        g.gstart[h + 1] = (uint16_t)(g.gstart[h + 1] + g.gstart[h]);
    uint16_t fill[VD_TRI_BITS];
    memcpy(fill, g.gstart, sizeof fill);
    for (unsigned k = 0; k < g.nguards; k++)
        g.gorder[fill[g.guards[k].h_first]++] = (uint16_t)k;
    return 0;
}

static void md_free(void *p)
{
    pcre2_match_data_free(p);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void init_once(void)
{
    double t0 = now_ms();
    size_t len = strlen(vd_isbot_patterns_txt);
    g.texts = vd_malloc(len + 1);
    g.pats = vd_calloc(MAX_PATTERNS, sizeof *g.pats);
    if (!g.texts || !g.pats) {
        snprintf(g.err, sizeof g.err, "out of memory");
        return;
    }
    memcpy(g.texts, vd_isbot_patterns_txt, len + 1);
    char version[32] = "?";
    bool jit = false;
    uint32_t has_jit = 0;
    pcre2_config(PCRE2_CONFIG_JIT, &has_jit);
    for (char *line = g.texts, *nl; line && *line; line = nl) {
        nl = strchr(line, '\n');
        if (nl)
            *nl++ = '\0';
        if (line[0] == '#') {
            sscanf(line, "# isbot %31s", version);
            continue;
        }
        if (!line[0])
            continue;
        if (g.n == MAX_PATTERNS) {
            snprintf(g.err, sizeof g.err, "more than %d bot patterns", MAX_PATTERNS);
            return;
        }
        char *src = to_pcre2(line);
        if (!src) {
            snprintf(g.err, sizeof g.err, "out of memory");
            return;
        }
        int ec;
        PCRE2_SIZE eo;
        bot_pat *bp = &g.pats[g.n];
        bp->re = pcre2_compile((PCRE2_SPTR)src, PCRE2_ZERO_TERMINATED,
                               PCRE2_CASELESS | PCRE2_DOLLAR_ENDONLY, &ec, &eo, NULL);
        if (!bp->re) {
            PCRE2_UCHAR msg[128];
            pcre2_get_error_message(ec, msg, sizeof msg);
            snprintf(g.err, sizeof g.err, "bot pattern %u \"%.60s\": %s at offset %zu", g.n + 1,
                     line, (const char *)msg, (size_t)eo);
            vd_free(src);
            return;
        }
        if (has_jit && pcre2_jit_compile(bp->re, PCRE2_JIT_COMPLETE) == 0)
            jit = bp->jit = true;
        bp->text = line;
        size_t ln = required_literal(src, bp->lit, sizeof bp->lit);
        bp->lit_n = (unsigned char)ln;
        bp->anchored = src[0] == '^' && !top_level_alternation(src);
        if (bp->anchored) {
            char pre[LIT_MAX];
            size_t pn = prefix_literal(src, pre, sizeof pre);
            if (pn) {                  /* the prefix is the better guard */
                memcpy(bp->lit, pre, pn);
                bp->lit_n = (unsigned char)(ln = pn);
                bp->prefix_n = (unsigned char)pn;
            }
        }
        if (ln >= 3) {
            bp->h_first = (uint16_t)vd_tri_hash(bp->lit);
            bp->h_last = (uint16_t)vd_tri_hash(bp->lit + ln - 3);
        }
        vd_free(src);
        g.n++;
    }
    if (g.n == 0) {
        snprintf(g.err, sizeof g.err, "the embedded bot pattern list is empty");
        return;
    }
    /* The anchored patterns that start with no literal, as one alternation:
     * PCRE2 tries it at offset 0 only, one call instead of several. */
    size_t cap = 1;
    char *srcs[MAX_PATTERNS] = { 0 };
    for (unsigned i = 0; i < g.n; i++)
        if (g.pats[i].anchored && !g.pats[i].prefix_n) {
            srcs[i] = to_pcre2(g.pats[i].text);
            if (!srcs[i])
                break;
            cap += strlen(srcs[i]) + 5;
        }
    char *alt = vd_malloc(cap);
    bool oom = !alt;
    for (unsigned i = 0; i < g.n && !oom; i++)
        oom = g.pats[i].anchored && !g.pats[i].prefix_n && !srcs[i];
    if (oom) {
        /* Out of memory (tests/integration/test_alloc_fail.py): free what
         * was converted, the error fails start-up. */
        for (unsigned i = 0; i < g.n; i++)
            vd_free(srcs[i]);
        vd_free(alt);
        snprintf(g.err, sizeof g.err, "out of memory");
        return;
    }
    size_t an = 0;
    for (unsigned i = 0; i < g.n; i++)
        if (srcs[i]) {
            an += (size_t)sprintf(alt + an, "%s(?:%s)", an ? "|" : "", srcs[i]);
            vd_free(srcs[i]);
        }
    if (an) {
        int ec;
        PCRE2_SIZE eo;
        g.anchored_re = pcre2_compile((PCRE2_SPTR)alt, an, PCRE2_CASELESS | PCRE2_DOLLAR_ENDONLY,
                                      &ec, &eo, NULL);
        if (!g.anchored_re) {
            snprintf(g.err, sizeof g.err, "the anchored bot patterns do not compile as one");
            vd_free(alt);
            return;
        }
        g.anchored_jit = has_jit && pcre2_jit_compile(g.anchored_re, PCRE2_JIT_COMPLETE) == 0;
    }
    vd_free(alt);
    if (build_tables() != 0) {
        snprintf(g.err, sizeof g.err, "out of memory");
        return;
    }
    if (pthread_key_create(&g.md_key, md_free) != 0) {
        snprintf(g.err, sizeof g.err, "pthread_key_create failed");
        return;
    }
    char rel[32] = "";
    pcre2_config(PCRE2_CONFIG_VERSION, rel);
    snprintf(g.desc, sizeof g.desc, "isbot %s: %u patterns (PCRE2 %s%s), compiled in %.1f ms",
             version, g.n, rel, jit ? ", JIT" : ", interpreted", now_ms() - t0);
    g.rc = 0;
}

int vd_bots_init(char *err, size_t cap)
{
    pthread_once(&g.once, init_once);
    if (g.rc != 0 && err && cap)
        snprintf(err, cap, "%s", g.err);
    return g.rc;
}

const char *vd_bots_describe(void)
{
    return g.rc == 0 ? g.desc : "bot pattern list not loaded";
}

unsigned vd_bots_count(void)
{
    return g.rc == 0 ? g.n : 0;
}

const char *vd_bots_pattern(int i)
{
    return g.rc == 0 && i >= 0 && (unsigned)i < g.n ? g.pats[i].text : NULL;
}

static inline bool tri_has(const uint64_t *tri, unsigned h)
{
    return (tri[h / 64] >> (h % 64)) & 1u;
}

static int run(pcre2_code *re, bool jit, const char *s, size_t n, pcre2_match_data *md)
{
    return jit ? pcre2_jit_match(re, (PCRE2_SPTR)s, n, 0, 0, md, NULL)
               : pcre2_match(re, (PCRE2_SPTR)s, n, 0, 0, md, NULL);
}

/* memmem for a short literal in a User-Agent: memchr finds the candidates,
 * memcmp confirms (glibc's memmem spends longer setting up its search). */
static bool contains(const char *s, size_t n, const char *lit, size_t ln)
{
    if (ln > n)
        return false;
    for (const char *p = s, *last = s + n - ln; p <= last; p++) {
        p = memchr(p, lit[0], (size_t)(last - p) + 1);
        if (!p)
            return false;
        if (memcmp(p + 1, lit + 1, ln - 1) == 0)
            return true;
    }
    return false;
}

/* A pattern's literal is in the UA: two bit tests rule most out. */
static bool literal_present(const bot_pat *bp, const char *s, size_t n, const uint64_t *tri)
{
    if (!bp->lit_n)
        return true;
    if (bp->lit_n > n)
        return false;
    if (bp->lit_n >= 3) {
        if (!tri_has(tri, bp->h_first) || !tri_has(tri, bp->h_last))
            return false;
        return contains(s, n, bp->lit, bp->lit_n);
    }
    /* One or two bytes (";", "()"): memchr beats memmem's set-up. */
    for (const char *p = s, *end = s + n; (p = memchr(p, bp->lit[0], (size_t)(end - p))); p++)
        if (bp->lit_n == 1 || (p + 1 < end && p[1] == bp->lit[1]))
            return true;
    return false;
}

int vd_bots_match_all(const char *s, size_t n)
{
    if (vd_bots_init(NULL, 0) != 0 || n == 0)
        return -1;
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    if (!md)
        return -1;
    int found = -1;
    for (unsigned i = 0; i < g.n && found < 0; i++)
        if (run(g.pats[i].re, g.pats[i].jit, s, n, md) >= 0)
            found = (int)i;
    pcre2_match_data_free(md);
    return found;
}

int vd_bots_match(const char *s, size_t n, const uint64_t *tri)
{
    if (vd_bots_init(NULL, 0) != 0 || n == 0)
        return -1;
    pcre2_match_data *md = pthread_getspecific(g.md_key);
    if (!md) {
        md = pcre2_match_data_create(1, NULL);
        if (!md || pthread_setspecific(g.md_key, md) != 0) {
            pcre2_match_data_free(md);
            return -1;
        }
    }
    /* Matches are rare (robots), so every candidate group is scanned and
     * the smallest matching index kept: the first pattern in list order. */
    unsigned best = UINT16_MAX;
    const uint16_t *lst = g.by_first[(unsigned char)s[0]];
    for (; lst && *lst != UINT16_MAX; lst++) {
        const bot_pat *bp = &g.pats[*lst];
        if (*lst < best && bp->prefix_n <= n && memcmp(s, bp->lit, bp->prefix_n) == 0 &&
            run(bp->re, bp->jit, s, n, md) >= 0)
            best = *lst;
    }
    if (g.anchored_re && run(g.anchored_re, g.anchored_jit, s, n, md) >= 0)
        for (unsigned i = 0; i < best; i++)    /* name the one that matched */
            if (g.pats[i].anchored && !g.pats[i].prefix_n &&
                run(g.pats[i].re, g.pats[i].jit, s, n, md) >= 0) {
                best = i;
                break;
            }
    /* The guarded patterns whose literal's first window is in the UA, in
     * any order: the smallest matching index is kept all the same. */
    for (unsigned w = 0; w < VD_TRI_BITS / 64; w++) {
        for (uint64_t m = tri[w] & g.first_set[w]; m; m &= m - 1) {
            unsigned h = w * 64 + (unsigned)__builtin_ctzll(m);
            for (unsigned k = g.gstart[h]; k < g.gstart[h + 1]; k++) {
                const struct guard *gd = &g.guards[g.gorder[k]];
                if (gd->idx >= best || !tri_has(tri, gd->h_last))
                    continue;
                const bot_pat *bp = &g.pats[gd->idx];
                if (contains(s, n, bp->lit, bp->lit_n) && run(bp->re, bp->jit, s, n, md) >= 0)
                    best = gd->idx;
            }
        }
    }
    for (const uint16_t *al = g.always; *al != UINT16_MAX && *al < best; al++) {
        const bot_pat *bp = &g.pats[*al];
        if (literal_present(bp, s, n, tri) && run(bp->re, bp->jit, s, n, md) >= 0)
            best = *al;
    }
    return best == UINT16_MAX ? -1 : (int)best;
}
