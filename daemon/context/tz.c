/* tz.c — visitor-local time from the system's TZif files (RFC 8536).
 *
 * At open, every TZif file under the zoneinfo directory is parsed into an
 * immutable table: transition instants (only those where the UTC offset
 * really changes), the offset after each, and the POSIX TZ footer rule that
 * takes over after the file's last transition. A lookup is a binary search
 * (or a few date computations for the footer rule) over that data: no
 * locks, no allocation, no setenv/localtime, so it is safe on any thread.
 *
 * Every count in a file is checked against the file size before use; a file
 * that fails any check is skipped with a warning. */
#include "context/tz.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/log.h"

#define TZ_NAME_MAX 64          /* longest IANA name is ~32 bytes */
#define TZ_FILE_MAX (1u << 20)  /* real TZif files are < 4 KB */
#define TZ_MAX_TIMES 20000u
#define TZ_MAX_TYPES 256u
#define TZ_MAX_CHARS 4096u
#define TZ_MAX_LEAPS 1000u
#define TZ_MAX_ZONES 8192u
#define TZ_MAX_DEPTH 4
#define TZ_MAX_OFFSET (26 * 3600)
/* Instants are clamped to about +-35 million years so the date arithmetic
 * cannot overflow. */
#define TZ_CLAMP (INT64_C(1) << 50)

/* One transition date of a POSIX TZ rule. */
typedef struct tz_ruledate {
    char kind;          /* 'J' Julian 1..365 without Feb 29, 'D' 0..365, 'M' month.week.day */
    int16_t day;        /* J/D: day number; M: weekday 0 = Sunday */
    uint8_t month, week;
    int32_t time;       /* seconds after local midnight; -167h..167h */
} tz_ruledate;

typedef struct tz_rule {
    int32_t std_off, dst_off;   /* seconds east of UTC */
    bool has_dst;
    tz_ruledate start, end;     /* DST starts (in standard time) / ends (in DST) */
} tz_rule;

typedef struct tz_data {
    int64_t *trans;             /* ascending; each changes the offset */
    int32_t *offs;              /* offset from trans[i] on */
    uint32_t n;
    int32_t init_off;           /* before trans[0] */
    bool has_rule;
    int64_t rule_from;          /* the rule applies to instants >= this */
    tz_rule rule;
    dev_t dev;
    ino_t ino;
} tz_data;

struct vd_tz {
    const char *name;
    const tz_data *d;
};

struct vd_tzdb {
    vd_tz *zones;               /* sorted by name */
    size_t nzones, capzones;
    tz_data **datas;            /* distinct files (links share one) */
    size_t ndatas, capdatas;
    const vd_tz *country[26 * 26];
    const vd_tz *utc;
    size_t mem;
    size_t skipped;
    bool oom;                   /* an allocation failed: the database is incomplete */
};

/* "UTC" even when the directory has no such file. */
static const tz_data k_utc_data = { .rule_from = INT64_MIN };
static const vd_tz k_utc = { "UTC", &k_utc_data };

/* ---- civil dates ---- */

int64_t vd_days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void vd_civil_from_days(int64_t z, int *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t yy = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yy + (*m <= 2));
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static bool is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* ---- POSIX TZ footer rule ---- */

static bool p_num(const char **pp, int max, int *out)
{
    const char *p = *pp;
    int v = 0, nd = 0;
    while (*p >= '0' && *p <= '9') {
        v = v * 10 + (*p - '0');
        if (++nd > 3 || v > max)
            return false;
        p++;
    }
    if (nd == 0)
        return false;
    *pp = p;
    *out = v;
    return true;
}

/* [+-]hh[:mm[:ss]] -> seconds; hours up to max_h. */
static bool p_hms(const char **pp, int max_h, int32_t *out)
{
    const char *p = *pp;
    int sign = 1, h, m = 0, s = 0;
    if (*p == '+' || *p == '-')
        sign = *p++ == '-' ? -1 : 1;
    if (!p_num(&p, max_h, &h))
        return false;
    if (*p == ':') {
        p++;
        if (!p_num(&p, 59, &m))
            return false;
        if (*p == ':') {
            p++;
            if (!p_num(&p, 59, &s))
                return false;
        }
    }
    *pp = p;
    *out = sign * (h * 3600 + m * 60 + s);
    return true;
}

static bool p_name(const char **pp)
{
    const char *p = *pp;
    size_t n = 0;
    if (*p == '<') {
        p++;
        while (*p && *p != '>') {
            char c = *p;
            if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '+' || c == '-'))
                return false;
            p++;
            n++;
        }
        if (*p != '>' || n == 0)
            return false;
        p++;
    } else {
        while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')) {
            p++;
            n++;
        }
        if (n < 3)
            return false;
    }
    *pp = p;
    return true;
}

static bool p_date(const char **pp, tz_ruledate *d)
{
    const char *p = *pp;
    int a, b, c;
    memset(d, 0, sizeof *d);
    if (*p == 'J') {
        p++;
        if (!p_num(&p, 365, &a) || a < 1)
            return false;
        d->kind = 'J';
        d->day = (int16_t)a;
    } else if (*p == 'M') {
        p++;
        if (!p_num(&p, 12, &a) || a < 1 || *p++ != '.' || !p_num(&p, 5, &b) || b < 1 ||
            *p++ != '.' || !p_num(&p, 6, &c))
            return false;
        d->kind = 'M';
        d->month = (uint8_t)a;
        d->week = (uint8_t)b;
        d->day = (int16_t)c;
    } else {
        if (!p_num(&p, 365, &a))
            return false;
        d->kind = 'D';
        d->day = (int16_t)a;
    }
    d->time = 2 * 3600;
    if (*p == '/') {
        p++;
        if (!p_hms(&p, 167, &d->time))
            return false;
    }
    *pp = p;
    return true;
}

/* Parses e.g. "CET-1CEST,M3.5.0,M10.5.0/3" or "<+0330>-3:30". */
static bool parse_rule(const char *s, tz_rule *r)
{
    const char *p = s;
    int32_t off;
    memset(r, 0, sizeof *r);
    if (!p_name(&p) || !p_hms(&p, 24, &off))
        return false;
    r->std_off = -off;
    if (*p == '\0')
        return true;
    if (!p_name(&p))
        return false;
    r->has_dst = true;
    r->dst_off = r->std_off + 3600;
    if (*p != ',' && *p != '\0') {
        if (!p_hms(&p, 24, &off))
            return false;
        r->dst_off = -off;
    }
    if (*p == '\0') {
        /* No rule given: POSIX leaves it to the implementation; glibc's
         * built-in default is the US rule. */
        const char *def = "M3.2.0,M11.1.0";
        p_date(&def, &r->start);
        def++;
        p_date(&def, &r->end);
        return true;
    }
    if (*p++ != ',' || !p_date(&p, &r->start) || *p++ != ',' || !p_date(&p, &r->end))
        return false;
    return *p == '\0';
}

/* Days since the epoch of a rule date in year y. */
static int64_t rule_day(const tz_ruledate *d, int y)
{
    int64_t jan1 = vd_days_from_civil(y, 1, 1);
    if (d->kind == 'J')
        return jan1 + d->day - 1 + (is_leap(y) && d->day >= 60 ? 1 : 0);
    if (d->kind == 'D')
        return jan1 + d->day;
    int64_t first = vd_days_from_civil(y, d->month, 1);
    int64_t next = d->month == 12 ? vd_days_from_civil(y + 1, 1, 1)
                                  : vd_days_from_civil(y, d->month + 1, 1);
    int wd0 = (int)(((first + 4) % 7 + 7) % 7);           /* 0 = Sunday */
    int64_t day = first + (d->day - wd0 + 7) % 7 + 7 * (d->week - 1);
    while (day >= next)
        day -= 7;
    return day;
}

typedef struct tz_event {
    int64_t t;
    int32_t off;
    int order;          /* at equal instants, ends sort before starts */
} tz_event;

/* Offset at t under rule r, and the next instant it changes. */
static void rule_eval(const tz_rule *r, int64_t t, int32_t *off, int64_t *next)
{
    if (!r->has_dst) {
        *off = r->std_off;
        *next = INT64_MAX;
        return;
    }
    int y, m, d;
    vd_civil_from_days(floor_div(t + r->std_off, 86400), &y, &m, &d);
    tz_event ev[8];
    int n = 0;
    for (int yy = y - 1; yy <= y + 2; yy++) {
        ev[n++] = (tz_event){ rule_day(&r->start, yy) * 86400 + r->start.time - r->std_off,
                              r->dst_off, 1 };
        ev[n++] = (tz_event){ rule_day(&r->end, yy) * 86400 + r->end.time - r->dst_off,
                              r->std_off, 0 };
    }
    for (int i = 1; i < n; i++) {       /* insertion sort of 8 */
        tz_event e = ev[i];
        int j = i - 1;
        while (j >= 0 && (ev[j].t > e.t || (ev[j].t == e.t && ev[j].order > e.order))) {
            ev[j + 1] = ev[j];
            j--;
        }
        ev[j + 1] = e;
    }
    /* Before the first event the other state holds. */
    int32_t cur = ev[0].off == r->dst_off ? r->std_off : r->dst_off;
    int i = 0;
    while (i < n && ev[i].t <= t)
        cur = ev[i++].off;
    *off = cur;
    *next = INT64_MAX;
    while (i < n) {
        int64_t at = ev[i].t;
        int32_t o = cur;
        while (i < n && ev[i].t == at)
            o = ev[i++].off;
        /* The window's last instant may lack its same-instant partner from
         * the following year (permanent DST: end(Y) == start(Y+1)). A real
         * change is always followed by more events in the window. */
        if (i == n)
            break;
        if (o != cur) {
            *next = at;
            return;
        }
    }
}

/* ---- lookups ---- */

static void zone_offset(const tz_data *z, int64_t t, int32_t *off, int64_t *next)
{
    if (z->has_rule && t >= z->rule_from) {
        rule_eval(&z->rule, t, off, next);
        return;
    }
    if (z->n == 0 || t < z->trans[0]) {
        *off = z->init_off;
        *next = z->n ? z->trans[0] : INT64_MAX;
        if (z->n == 0 && z->has_rule) {
            /* t < rule_from without any table entry: rule_from is the first
             * instant the rule may differ. */
            int32_t ro;
            int64_t rn;
            rule_eval(&z->rule, z->rule_from, &ro, &rn);
            *next = ro != *off ? z->rule_from : rn;
        }
        return;
    }
    uint32_t lo = 0, hi = z->n;         /* last i with trans[i] <= t */
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (z->trans[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    *off = z->offs[lo];
    if (lo + 1 < z->n) {
        *next = z->trans[lo + 1];
    } else if (z->has_rule) {
        int32_t ro;
        int64_t rn;
        rule_eval(&z->rule, z->rule_from, &ro, &rn);
        *next = ro != *off ? z->rule_from : rn;
    } else {
        *next = INT64_MAX;
    }
}

void vd_tz_localtime(const vd_tz *tz, int64_t utc, vd_localtime *out)
{
    memset(out, 0, sizeof *out);
    if (utc > TZ_CLAMP)
        utc = TZ_CLAMP;
    if (utc < -TZ_CLAMP)
        utc = -TZ_CLAMP;
    int32_t off = 0;
    int64_t next = INT64_MAX;
    if (tz && tz->d)
        zone_offset(tz->d, utc, &off, &next);
    int64_t local = utc + off;
    int64_t days = floor_div(local, 86400);
    int64_t sod = local - days * 86400;
    out->days = days;
    vd_civil_from_days(days, &out->year, &out->month, &out->day);
    out->hour = (int)(sod / 3600);
    out->minute = (int)(sod / 60 % 60);
    out->second = (int)(sod % 60);
    out->weekday = (int)(((days % 7) + 7 + 3) % 7);
    out->utc_offset = off;
    out->next_transition = next;
}

/* ---- TZif parsing ---- */

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const uint8_t *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

typedef struct tzif_counts {
    uint32_t isut, isstd, leap, time, type, chars;
} tzif_counts;

static const char *read_header(const uint8_t *p, size_t avail, tzif_counts *c)
{
    if (avail < 44 || memcmp(p, "TZif", 4) != 0)
        return "bad header";
    c->isut = be32(p + 20);
    c->isstd = be32(p + 24);
    c->leap = be32(p + 28);
    c->time = be32(p + 32);
    c->type = be32(p + 36);
    c->chars = be32(p + 40);
    if (c->type == 0 || c->type > TZ_MAX_TYPES || c->time > TZ_MAX_TIMES ||
        c->chars > TZ_MAX_CHARS || c->leap > TZ_MAX_LEAPS)
        return "count out of range";
    if ((c->isut != 0 && c->isut != c->type) || (c->isstd != 0 && c->isstd != c->type))
        return "inconsistent indicator counts";
    return NULL;
}

static size_t block_size(const tzif_counts *c, size_t tsize)
{
    return (size_t)c->time * (tsize + 1) + (size_t)c->type * 6 + c->chars +
           (size_t)c->leap * (tsize + 4) + c->isstd + c->isut;
}

static void *track_alloc(vd_tzdb *db, size_t n)
{
    void *p = vd_malloc(n ? n : 1);
    if (p)
        db->mem += n;
    return p;
}

/* Fills z from a whole TZif file; NULL on success, else why not. */
static const char *parse_tzif(vd_tzdb *db, const uint8_t *buf, size_t len, tz_data *z)
{
    tzif_counts c;
    const char *why = read_header(buf, len, &c);
    if (why)
        return why;
    uint8_t version = buf[4];
    size_t tsize = 4;
    size_t pos = 44;
    size_t v1 = block_size(&c, 4);
    if (v1 > len - pos)
        return "truncated v1 data";
    bool v2 = version >= '2';
    if (v2) {
        pos += v1;
        if ((why = read_header(buf + pos, len - pos, &c)))
            return why;
        pos += 44;
        tsize = 8;
        if (block_size(&c, 8) > len - pos)
            return "truncated v2 data";
    }
    if (c.leap)
        return "leap-second table (a right/ zone)";
    const uint8_t *times = buf + pos;
    const uint8_t *idx = times + (size_t)c.time * tsize;
    const uint8_t *types = idx + c.time;
    int32_t type_off[TZ_MAX_TYPES];
    for (uint32_t i = 0; i < c.type; i++) {
        int32_t o = (int32_t)be32(types + 6 * i);
        if (o < -TZ_MAX_OFFSET || o > TZ_MAX_OFFSET)
            return "UTC offset out of range";
        if (types[6 * i + 4] > 1 || types[6 * i + 5] >= (c.chars ? c.chars : 1))
            return "bad type record";
        type_off[i] = o;
    }
    memset(z, 0, sizeof *z);
    z->init_off = type_off[0];
    z->rule_from = INT64_MIN;
    int64_t last = INT64_MIN;
    uint32_t kept = 0;
    for (uint32_t i = 0; i < c.time; i++) {
        int64_t t = tsize == 8 ? be64(times + 8 * i) : (int64_t)(int32_t)be32(times + 4 * i);
        if (i > 0 && t <= last)
            return "transitions not ascending";
        if (idx[i] >= c.type)
            return "type index out of range";
        last = t;
    }
    if (c.time) {
        z->trans = track_alloc(db, (size_t)c.time * sizeof *z->trans);
        z->offs = track_alloc(db, (size_t)c.time * sizeof *z->offs);
        if (!z->trans || !z->offs)
            return "out of memory";
        int32_t prev = z->init_off;
        for (uint32_t i = 0; i < c.time; i++) {
            int64_t t = tsize == 8 ? be64(times + 8 * i) : (int64_t)(int32_t)be32(times + 4 * i);
            int32_t o = type_off[idx[i]];
            if (o == prev)
                continue;   /* only the abbreviation or isdst changed */
            z->trans[kept] = t;
            z->offs[kept] = o;
            kept++;
            prev = o;
        }
        z->rule_from = last;
    }
    z->n = kept;
    if (v2) {
        pos += block_size(&c, 8);
        if (pos >= len || buf[pos] != '\n')
            return "missing footer";
        pos++;
        const uint8_t *nl = memchr(buf + pos, '\n', len - pos);
        if (!nl)
            return "unterminated footer";
        size_t flen = (size_t)(nl - (buf + pos));
        if (flen >= 128)
            return "footer too long";
        if (flen > 0) {
            char footer[128];
            memcpy(footer, buf + pos, flen);
            footer[flen] = '\0';
            if (memchr(footer, '\0', flen) || !parse_rule(footer, &z->rule))
                return "bad footer rule";
            z->has_rule = true;
        }
    }
    return NULL;
}

/* ---- directory walk ---- */

static bool name_ok(const char *rel)
{
    size_t n = strlen(rel);
    if (n == 0 || n >= TZ_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = rel[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '/' || c == '_' || c == '-' || c == '+' || c == '.'))
            return false;
    }
    return true;
}

static bool add_zone(vd_tzdb *db, const char *name, const tz_data *d)
{
    if (db->nzones == db->capzones) {
        size_t cap = db->capzones ? db->capzones * 2 : 512;
        vd_tz *z = vd_realloc(db->zones, cap * sizeof *z);
        if (!z) {
            db->oom = true;
            return false;
        }
        db->zones = z;
        db->capzones = cap;
    }
    size_t n = strlen(name) + 1;
    char *copy = track_alloc(db, n);
    if (!copy) {
        db->oom = true;
        return false;
    }
    memcpy(copy, name, n);
    db->zones[db->nzones++] = (vd_tz){ copy, d };
    return true;
}

static void load_file(vd_tzdb *db, const char *path, const char *rel, const struct stat *st)
{
    if (st->st_size < 44 || st->st_size > (off_t)TZ_FILE_MAX || db->nzones >= TZ_MAX_ZONES)
        return;
    /* Links (hard or symbolic) share one parsed table. */
    for (size_t i = 0; i < db->ndatas; i++)
        if (db->datas[i]->dev == st->st_dev && db->datas[i]->ino == st->st_ino) {
            if (name_ok(rel))
                add_zone(db, rel, db->datas[i]);
            return;
        }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    size_t len = (size_t)st->st_size;
    uint8_t *buf = vd_malloc(len);
    size_t got = 0;
    while (buf && got < len) {
        ssize_t r = read(fd, buf + got, len - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (!buf) {
        db->oom = true;
        return;
    }
    if (got < 4 || memcmp(buf, "TZif", 4) != 0) {
        vd_free(buf);  /* zone.tab, tzdata.zi, leapseconds, ...: not a zone */
        return;
    }
    if (!name_ok(rel)) {
        vd_warn("tz: %s: odd zone name, skipped", path);
        db->skipped++;
        vd_free(buf);
        return;
    }
    tz_data *z = vd_calloc(1, sizeof *z);
    const char *why = z ? parse_tzif(db, buf, got, z) : "out of memory";
    vd_free(buf);
    if (!why && db->ndatas == db->capdatas) {
        size_t cap = db->capdatas ? db->capdatas * 2 : 512;
        tz_data **d = vd_realloc(db->datas, cap * sizeof *d);
        if (d) {
            db->datas = d;
            db->capdatas = cap;
        } else {
            why = "out of memory";
        }
    }
    if (why) {
        /* Out of memory is not a bad file: the whole database is refused
         * below (a daemon missing a zone would answer wrongly). */
        if (strcmp(why, "out of memory") == 0)
            db->oom = true;
        else
            vd_warn("tz: %s: %s, skipped", path, why);
        db->skipped++;
        if (z) {
            vd_free(z->trans);
            vd_free(z->offs);
        }
        vd_free(z);
        return;
    }
    z->dev = st->st_dev;
    z->ino = st->st_ino;
    db->mem += sizeof *z;
    db->datas[db->ndatas++] = z;
    add_zone(db, rel, z);
}

static void walk(vd_tzdb *db, const char *dir, const char *rel, int depth)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *nm = de->d_name;
        if (nm[0] == '.')
            continue;
        /* posix/ and right/ are copies (right/ with leap seconds);
         * localtime and posixrules are aliases that would shadow nothing. */
        if (depth == 0 && (strcmp(nm, "posix") == 0 || strcmp(nm, "right") == 0 ||
                           strcmp(nm, "localtime") == 0 || strcmp(nm, "posixrules") == 0))
            continue;
        char path[4096], sub[TZ_NAME_MAX * 2];
        int pl = snprintf(path, sizeof path, "%s/%s", dir, nm);
        int rl = rel[0] ? snprintf(sub, sizeof sub, "%s/%s", rel, nm)
                        : snprintf(sub, sizeof sub, "%s", nm);
        if (pl < 0 || (size_t)pl >= sizeof path || rl < 0 || (size_t)rl >= sizeof sub)
            continue;
        struct stat lst, st;
        if (lstat(path, &lst) != 0)
            continue;
        if (S_ISDIR(lst.st_mode)) {
            if (depth + 1 < TZ_MAX_DEPTH)
                walk(db, path, sub, depth + 1);
            continue;
        }
        /* Follow symlinks to files only: a linked directory could loop. */
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        load_file(db, path, sub, &st);
    }
    closedir(d);
}

static int zone_cmp(const void *a, const void *b)
{
    return strcmp(((const vd_tz *)a)->name, ((const vd_tz *)b)->name);
}

static int str_zone_cmp(vd_str s, const char *name)
{
    size_t n = strlen(name);
    int c = memcmp(s.p, name, s.n < n ? s.n : n);
    if (c)
        return c;
    return s.n < n ? -1 : s.n > n ? 1 : 0;
}

const vd_tz *vd_tzdb_zone(const vd_tzdb *db, vd_str name)
{
    if (!db || !name.p || name.n == 0 || name.n >= TZ_NAME_MAX)
        return NULL;
    size_t lo = 0, hi = db->nzones;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = str_zone_cmp(name, db->zones[mid].name);
        if (c == 0)
            return &db->zones[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    if (name.n == 3 && memcmp(name.p, "UTC", 3) == 0)
        return &k_utc;
    return NULL;
}

static int country_slot(vd_str iso2)
{
    if (!iso2.p || iso2.n != 2)
        return -1;
    int a = iso2.p[0], b = iso2.p[1];
    if (a >= 'a' && a <= 'z')
        a -= 'a' - 'A';
    if (b >= 'a' && b <= 'z')
        b -= 'a' - 'A';
    if (a < 'A' || a > 'Z' || b < 'A' || b > 'Z')
        return -1;
    return (a - 'A') * 26 + (b - 'A');
}

/* zone1970.tab / zone.tab: "CC[,CC...]\tcoords\tZone[\tcomment]". The first
 * zone listed for a country wins; an earlier pass wins over a later one.
 * principal_only: take only the first code of a row — zone1970.tab lists
 * "CH,DE,LI Europe/Zurich" (for Busingen) before "DE,DK,... Europe/Berlin". */
static void load_tab(vd_tzdb *db, const char *dir, const char *file, bool principal_only)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, file) >= sizeof path)
        return;
    FILE *f = fopen(path, "re");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || !strchr(line, '\n'))
            continue;
        line[strcspn(line, "\r\n")] = '\0';
        char *codes = line, *t1 = strchr(line, '\t');
        if (!t1)
            continue;
        *t1 = '\0';
        char *t2 = strchr(t1 + 1, '\t');
        if (!t2)
            continue;
        char *zone = t2 + 1;
        zone[strcspn(zone, "\t")] = '\0';
        const vd_tz *tz = vd_tzdb_zone(db, vd_str_make(zone, strlen(zone)));
        if (!tz)
            continue;
        for (char *c = codes; *c;) {
            size_t n = strcspn(c, ",");
            int slot = country_slot(vd_str_make(c, n));
            if (slot >= 0 && !db->country[slot])
                db->country[slot] = tz;
            if (principal_only)
                break;
            c += n;
            if (*c == ',')
                c++;
        }
    }
    fclose(f);
}

vd_tzdb *vd_tzdb_open(const char *dir, char *err, size_t errcap)
{
    if (!dir)
        dir = "/usr/share/zoneinfo";
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct stat st;
    if (stat(dir, &st) != 0) {
        snprintf(err, errcap, "%s: %s", dir, strerror(errno));
        return NULL;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, errcap, "%s: not a directory", dir);
        return NULL;
    }
    vd_tzdb *db = vd_calloc(1, sizeof *db);
    if (!db) {
        snprintf(err, errcap, "out of memory");
        return NULL;
    }
    db->utc = &k_utc;
    walk(db, dir, "", 0);
    if (db->oom) {
        snprintf(err, errcap, "%s: out of memory loading the time zones", dir);
        vd_tzdb_close(db);
        return NULL;
    }
    if (db->nzones == 0) {
        snprintf(err, errcap, "%s: no usable TZif files", dir);
        vd_tzdb_close(db);
        return NULL;
    }
    qsort(db->zones, db->nzones, sizeof *db->zones, zone_cmp);
    db->utc = vd_tzdb_zone(db, VD_STR_LIT("UTC"));
    /* A country's own row in zone1970.tab, else its first zone.tab row
     * (NO -> Europe/Oslo rather than the shared Europe/Berlin), else any
     * zone1970.tab row that lists it. */
    load_tab(db, dir, "zone1970.tab", true);
    load_tab(db, dir, "zone.tab", false);
    load_tab(db, dir, "zone1970.tab", false);
    db->mem += db->capzones * sizeof *db->zones + db->capdatas * sizeof *db->datas + sizeof *db;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    vd_info("tz: %zu zones (%zu distinct tables, %zu files skipped) from %s, %zu KB, %.1f ms",
            db->nzones, db->ndatas, db->skipped, dir, db->mem / 1024, ms);
    return db;
}

void vd_tzdb_close(vd_tzdb *db)
{
    if (!db)
        return;
    for (size_t i = 0; i < db->nzones; i++)
        vd_free((char *)db->zones[i].name);
    for (size_t i = 0; i < db->ndatas; i++) {
        vd_free(db->datas[i]->trans);
        vd_free(db->datas[i]->offs);
        vd_free(db->datas[i]);
    }
    vd_free(db->zones);
    vd_free(db->datas);
    vd_free(db);
}

size_t vd_tzdb_count(const vd_tzdb *db)
{
    return db ? db->nzones : 0;
}

const vd_tz *vd_tzdb_country_zone(const vd_tzdb *db, vd_str iso2)
{
    int slot = country_slot(iso2);
    return db && slot >= 0 ? db->country[slot] : NULL;
}

const vd_tz *vd_tzdb_utc(const vd_tzdb *db)
{
    return db && db->utc ? db->utc : &k_utc;
}

const char *vd_tz_name(const vd_tz *tz)
{
    return tz ? tz->name : "UTC";
}
