#include "core/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

int vd_log_level = VD_LOG_INFO;

/* Rate limit: the same line (same level and text) is written at most
 * BURST times per WINDOW seconds; the rest are counted, and the count is
 * written as "... (repeated N more times)" once the window is over (with
 * the next line logged, or at the next occurrence), so a fault that
 * repeats hundreds of times a second (accept failing for want of fds) is
 * a few lines, not a flood. A small table of recent lines, under a mutex:
 * logging is never on the decision path. */
#define RL_SLOTS 32
#define RL_WINDOW 10
#define RL_BURST 5
#define RL_TEXT 200

typedef struct rl_entry {
    uint64_t hash;
    int level;
    time_t window_start;
    unsigned printed, suppressed;
    char text[RL_TEXT];
} rl_entry;

static pthread_mutex_t rl_mu = PTHREAD_MUTEX_INITIALIZER;
static rl_entry rl[RL_SLOTS];

static const char *const level_names[] = { "debug", "info", "warn", "error" };

static void emit(int level, const char *msg, const char *suffix)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char ts[32];
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(stderr, "%s.%03dZ variantd[%d] %s: %s%s\n", ts, (int)(tv.tv_usec / 1000), (int)getpid(),
            level_names[level < 0 ? 0 : level > 3 ? 3 : level], msg, suffix);
}

static void flush_expired(time_t now)
{
    for (int i = 0; i < RL_SLOTS; i++) {
        rl_entry *e = &rl[i];
        if (e->suppressed && now - e->window_start >= RL_WINDOW) {
            char suffix[64];
            snprintf(suffix, sizeof suffix, " (repeated %u more times)", e->suppressed);
            emit(e->level, e->text, suffix);
            e->suppressed = 0;
            e->printed = 0;
            e->window_start = now;
        }
    }
}

void vd_log_raw(int level, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* Client bytes may reach a log line: keep it one printable line. */
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)level;
    for (char *c = msg; *c; c++) {
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '?';
        h = (h ^ (unsigned char)*c) * 1099511628211ULL;
    }
    time_t now = time(NULL);
    pthread_mutex_lock(&rl_mu);
    flush_expired(now);
    rl_entry *e = &rl[h % RL_SLOTS];
    if (e->hash != h || e->level != level) {
        /* A new line takes the slot (an evicted count was written above or
         * is dropped only if still inside its window: rare, and harmless). */
        if (e->suppressed) {
            char suffix[64];
            snprintf(suffix, sizeof suffix, " (repeated %u more times)", e->suppressed);
            emit(e->level, e->text, suffix);
        }
        e->hash = h;
        e->level = level;
        e->window_start = now;
        e->printed = 0;
        e->suppressed = 0;
        size_t n = strlen(msg);
        if (n >= sizeof e->text)
            n = sizeof e->text - 1;
        memcpy(e->text, msg, n);
        e->text[n] = '\0';
    } else if (now - e->window_start >= RL_WINDOW) {
        e->window_start = now;
        e->printed = 0;
    }
    if (e->printed >= RL_BURST) {
        e->suppressed++;
        pthread_mutex_unlock(&rl_mu);
        return;
    }
    e->printed++;
    emit(level, msg, "");
    pthread_mutex_unlock(&rl_mu);
}

int vd_log_level_parse(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    return -1;
}
