/* variantd-bench — a load generator for the decision port.
 *
 *   variantd-bench [--connect HOST:PORT] [-c CONNS] [-P DEPTH] [-d SECONDS | -n REQUESTS]
 *                  [--contexts FILE] [--slots a,b,c] [--method decide|explain|ping|redis-get]
 *                  [--warmup SECONDS] [--rate REQ_PER_S] [--visitors N] [--quiet]
 *
 * CONNS connections each keep DEPTH requests in flight (pipelining). Requests
 * rotate over realistic contexts read from FILE (TSV: ip, ua, referer, url,
 * lang, expected "slot=variant;..." or empty). Every response is checked:
 * right msgid in order, no error, every slot answered with a variant, and the
 * expected variant where the file names one — a wrong or failed decision is
 * an error, not a success. Latency is measured per request from send to
 * reply. --visitors N adds a vid and consent to every request; the vids
 * rotate over N visitors (bench-0000000000 …) independently of the rows, so
 * N distinct visitors are seen whatever the number of contexts (consent
 * "personalization", for profiles). --rate paces sends to a fixed total rate (open loop within the
 * connections' pipeline depth), for latency at a given load: tokens every
 * 100 us (a timerfd-precise timer), handed to idle connections in turn, so
 * requests arrive spread out rather than in millisecond bursts. The last line
 * is machine-readable. --method redis-get drives a Redis server instead with
 * GET key:NNNNNNNNNNNN over 100,000 keys (redis-benchmark -t get -r 100000's
 * requests), so a decision and a GET are compared with the same client:
 *   BENCH_RESULT requests=… errors=… rps=… p50_us=… p90_us=… p99_us=… p999_us=… max_us=…
 * --method track sends -n track notifications ([2, "track", [map]], vid one
 * of --visitors, consent personalization, --event TYPE[:CATEGORY]) spread
 * over the connections as fast as the daemon reads them, then one track
 * request per connection; the daemon answers it once the store applied
 * everything before it on that connection, so rps is notifications applied
 * per second (losses: the daemon's variantd_track_lost_total).
 */
#include <poll.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <math.h>
#include <msgpack.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define MAX_SLOTS 64
#define HIST_BUCKETS 2048   /* log-linear: 64 sub-buckets per power of two of ns */

typedef struct ctx_row {
    uint8_t *req;           /* pre-packed request; msgid patched at offset 3 */
    size_t len;
    size_t vid_off;         /* --visitors: offset of the vid's 10 digits (patched per send) */
    char **expect;          /* expected variant per slot (NULL each), or NULL: none
                             * (a traffic model has 100,000s of rows) */
} ctx_row;

typedef struct bench bench;

typedef struct conn {
    bench *b;
    struct bufferevent *bev;
    uint32_t next_id;       /* msgid of the next request to send */
    uint32_t next_reply;    /* msgid expected next */
    unsigned inflight;
    uint64_t *sent_ns;      /* ring of DEPTH send times */
    unsigned *sent_ctx;     /* ring of context index per in-flight request */
    msgpack_unpacker up;
    msgpack_unpacked msg;
} conn;

struct bench {
    struct event_base *base;
    struct sockaddr_storage ss;
    int sslen;
    int redis;              /* --method redis-get */
    int nconns, depth;
    int visitors;           /* > 0: vid (one of N) + consent on every request */
    unsigned long long next_visitor;   /* the vid of the next request: this modulo N */
    double duration, warmup;
    long long limit;        /* -n: total requests (0 = by time) */
    const char *method;
    char *slots[MAX_SLOTS];
    int nslots;
    ctx_row *ctx;
    size_t nctx, next_ctx;
    conn *conns;
    int measuring, stopping, quiet;
    uint64_t t_start, t_measure, t_end;
    long long sent, done, errors, measured;
    long long err_kinds[6];
    uint64_t hist[HIST_BUCKETS];
    uint64_t max_ns;
    struct event *tick, *pace;
    double rate, tokens;      /* --rate: requests per second, tokens available */
    int pace_next;            /* --rate: the connection the next tick starts with */
    uint64_t pace_last;
};

enum { E_RPC, E_SLOT, E_WRONG, E_ORDER, E_CONN, E_SHAPE };
static const char *const err_names[] = { "rpc_error", "slot_missing", "wrong_variant",
                                         "out_of_order", "connection", "bad_shape" };

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static unsigned hist_index(uint64_t ns)
{
    if (ns < 64)
        return (unsigned)ns;
    unsigned p = 63 - (unsigned)__builtin_clzll(ns);   /* ns in [2^p, 2^p+1) */
    unsigned sub = (unsigned)((ns >> (p - 6)) & 63);
    unsigned idx = (p - 5) * 64 + sub;
    return idx < HIST_BUCKETS ? idx : HIST_BUCKETS - 1;
}

static uint64_t hist_value(unsigned idx)
{
    if (idx < 64)
        return idx;
    unsigned p = idx / 64 + 5, sub = idx % 64;
    return ((uint64_t)1 << p) + ((uint64_t)sub << (p - 6)) + ((uint64_t)1 << (p - 6)) / 2;
}

static double percentile_us(const bench *b, double q)
{
    uint64_t total = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++)
        total += b->hist[i];
    if (!total)
        return 0;
    uint64_t want = (uint64_t)ceil(q * (double)total), seen = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += b->hist[i];
        if (seen >= want)
            return (double)hist_value(i) / 1000.0;
    }
    return (double)b->max_ns / 1000.0;
}

/* ---- request building ---- */

static void pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static int build_request(bench *b, char **f, int nf, ctx_row *row)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    /* [0, uint32 msgid, method, params]: the msgid is always 5 bytes so it
     * can be patched in place. */
    static const char head[] = { (char)0x94, 0x00, (char)0xce, 0, 0, 0, 0 };
    if (b->redis) {
        char cmd[96];
        static unsigned key;
        int n = snprintf(cmd, sizeof cmd, "*2\r\n$3\r\nGET\r\n$16\r\nkey:%012u\r\n", key++ % 100000);
        msgpack_sbuffer_write(&sb, cmd, (size_t)n);
    } else {
        msgpack_sbuffer_write(&sb, head, sizeof head);
        pack_str(&pk, b->method);
    }
    if (b->redis) {
        /* the GET above */
    } else if (strcmp(b->method, "ping") == 0) {
        msgpack_pack_array(&pk, 0);
    } else {
        static const char *const keys[] = { "ip", "ua", "referer", "url", "lang" };
        int n = 1 + (b->visitors > 0 ? 2 : 0);
        for (int i = 0; i < 5 && i < nf; i++)
            n += f[i][0] != '\0';
        msgpack_pack_array(&pk, 1);
        msgpack_pack_map(&pk, (size_t)n);
        pack_str(&pk, "slots");
        msgpack_pack_array(&pk, (size_t)b->nslots);
        for (int i = 0; i < b->nslots; i++)
            pack_str(&pk, b->slots[i]);
        for (int i = 0; i < 5 && i < nf; i++)
            if (f[i][0]) {
                pack_str(&pk, keys[i]);
                pack_str(&pk, f[i]);
            }
        if (b->visitors > 0) {
            /* Fixed width: the digits are rewritten per send (send_more),
             * so N visitors rotate over the requests whatever the number
             * of context rows. */
            char vid[32];
            snprintf(vid, sizeof vid, "bench-%010u", 0u);
            pack_str(&pk, "vid");
            pack_str(&pk, vid);
            pack_str(&pk, "consent");
            pack_str(&pk, "personalization");
        }
    }
    /* Ownership moves to the row, trimmed: the sbuffer starts at 8 KB and
     * a traffic model has 100,000s of rows. */
    uint8_t *trimmed = realloc(sb.data, sb.size);
    row->req = trimmed ? trimmed : (uint8_t *)sb.data;
    row->len = sb.size;
    row->vid_off = 0;
    if (b->visitors > 0)
        for (size_t i = sb.size; i >= 16; i--)
            if (memcmp(row->req + i - 16, "bench-", 6) == 0) {
                row->vid_off = i - 10;
                break;
            }
    row->expect = NULL;
    if (nf > 5 && f[5][0]) {
        /* expected: slot=variant;slot=variant */
        char *save, *tok = strtok_r(f[5], ";", &save);
        for (; tok; tok = strtok_r(NULL, ";", &save)) {
            char *eq = strchr(tok, '=');
            if (!eq)
                continue;
            *eq = '\0';
            for (int s = 0; s < b->nslots; s++)
                if (strcmp(b->slots[s], tok) == 0)
                    if (row->expect || (row->expect = calloc(MAX_SLOTS, sizeof *row->expect)))
                        row->expect[s] = strdup(eq + 1);
        }
    }
    return 0;
}

static int load_contexts(bench *b, const char *path)
{
    static char blank[6][1];
    char *empty[6] = { blank[0], blank[1], blank[2], blank[3], blank[4], blank[5] };
    if (!path) {
        b->ctx = calloc(1, sizeof *b->ctx);
        b->nctx = 1;
        return build_request(b, empty, 0, &b->ctx[0]);
    }
    FILE *fp = fopen(path, "r");
    if (!fp) {
        fprintf(stderr, "variantd-bench: %s: %s\n", path, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    size_t ncap = 0;
    while ((len = getline(&line, &cap, fp)) > 0) {
        if (line[len - 1] == '\n')
            line[--len] = '\0';
        if (len == 0 || line[0] == '#')
            continue;
        char *f[6];
        int nf = 0;
        char *p = line;
        while (nf < 6) {
            f[nf++] = p;
            char *tab = strchr(p, '\t');
            if (!tab)
                break;
            *tab = '\0';
            p = tab + 1;
        }
        for (int i = nf; i < 6; i++)
            f[i] = empty[0];
        if (b->nctx == ncap) {
            ncap = ncap ? ncap * 2 : 64;
            b->ctx = realloc(b->ctx, ncap * sizeof *b->ctx);
        }
        build_request(b, f, 6, &b->ctx[b->nctx++]);
    }
    free(line);
    fclose(fp);
    if (!b->nctx) {
        fprintf(stderr, "variantd-bench: %s has no contexts\n", path);
        return -1;
    }
    return 0;
}

/* ---- connections ---- */

static void send_more(conn *c)
{
    bench *b = c->b;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    while (!b->stopping && c->inflight < (unsigned)b->depth &&
           (b->limit == 0 || b->sent < b->limit) && (b->rate == 0 || b->tokens >= 1)) {
        if (b->rate)
            b->tokens -= 1;
        size_t i = b->next_ctx++;
        if (b->next_ctx == b->nctx)
            b->next_ctx = 0;
        ctx_row *row = &b->ctx[i];
        uint32_t id = c->next_id++;
        uint8_t be[4] = { (uint8_t)(id >> 24), (uint8_t)(id >> 16), (uint8_t)(id >> 8), (uint8_t)id };
        if (!b->redis)
            memcpy(row->req + 3, be, 4);
        if (row->vid_off) {
            unsigned v = (unsigned)(b->next_visitor++ % (unsigned)b->visitors);
            for (int k = 9; k >= 0; k--, v /= 10)
                row->req[row->vid_off + (size_t)k] = (uint8_t)('0' + v % 10);
        }
        evbuffer_add(out, row->req, row->len);
        unsigned slot = id % (unsigned)b->depth;
        c->sent_ns[slot] = now_ns();
        c->sent_ctx[slot] = (unsigned)i;
        c->inflight++;
        b->sent++;
    }
}

static void count_error(bench *b, int kind)
{
    if (b->measuring)
        b->errors++;
    b->err_kinds[kind]++;
}

static const msgpack_object *map_get(const msgpack_object *m, const char *key)
{
    if (!m || m->type != MSGPACK_OBJECT_MAP)
        return NULL;
    size_t n = strlen(key);
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object *k = &m->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == n && !memcmp(k->via.str.ptr, key, n))
            return &m->via.map.ptr[i].val;
    }
    return NULL;
}

static void check_reply(conn *c, const msgpack_object *o)
{
    bench *b = c->b;
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 4 ||
        o->via.array.ptr[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        count_error(b, E_SHAPE);
        return;
    }
    uint32_t id = (uint32_t)o->via.array.ptr[1].via.u64;
    unsigned slot = id % (unsigned)b->depth;
    uint64_t lat = now_ns() - c->sent_ns[slot];
    if (id != c->next_reply) {
        count_error(b, E_ORDER);
        c->next_reply = id;
    }
    c->next_reply++;
    c->inflight--;
    b->done++;
    if (o->via.array.ptr[2].type != MSGPACK_OBJECT_NIL) {
        count_error(b, E_RPC);
        return;
    }
    if (strcmp(b->method, "ping") != 0) {
        const msgpack_object *slots = map_get(&o->via.array.ptr[3], "slots");
        const ctx_row *row = &b->ctx[c->sent_ctx[slot]];
        for (int s = 0; s < b->nslots; s++) {
            const msgpack_object *v = map_get(map_get(slots, b->slots[s]), "variant");
            if (!v || v->type != MSGPACK_OBJECT_STR) {
                count_error(b, E_SLOT);
                return;
            }
            if (row->expect && row->expect[s] && (strlen(row->expect[s]) != v->via.str.size ||
                                   memcmp(row->expect[s], v->via.str.ptr, v->via.str.size))) {
                count_error(b, E_WRONG);
                return;
            }
        }
    }
    if (b->measuring) {
        b->measured++;
        b->hist[hist_index(lat)]++;
        if (lat > b->max_ns)
            b->max_ns = lat;
    }
}

/* One RESP reply per GET, in order: "$-1\r\n", "$N\r\n<N bytes>\r\n", or an
 * error line. */
static void redis_read(conn *c, struct evbuffer *in)
{
    bench *b = c->b;
    for (;;) {
        size_t eol_len;
        struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_CRLF_STRICT);
        if (eol.pos < 0)
            return;
        char line[32];
        size_t ll = (size_t)eol.pos < sizeof line - 1 ? (size_t)eol.pos : sizeof line - 1;
        evbuffer_copyout(in, line, ll);
        line[ll] = '\0';
        size_t total = (size_t)eol.pos + eol_len;
        long blen = line[0] == '$' ? atol(line + 1) : -1;
        if (blen >= 0)
            total += (size_t)blen + 2;
        if (evbuffer_get_length(in) < total)
            return;
        evbuffer_drain(in, total);
        unsigned slot = c->next_reply++ % (unsigned)b->depth;
        uint64_t lat = now_ns() - c->sent_ns[slot];
        c->inflight--;
        b->done++;
        if (line[0] != '$' && line[0] != '+') {
            count_error(b, E_RPC);
            continue;
        }
        if (b->measuring) {
            b->measured++;
            b->hist[hist_index(lat)]++;
            if (lat > b->max_ns)
                b->max_ns = lat;
        }
    }
}

static void conn_read(struct bufferevent *bev, void *arg)
{
    conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t len;
    if (c->b->redis) {
        redis_read(c, in);
        send_more(c);
        if (c->b->limit && c->b->done >= c->b->limit)
            event_base_loopbreak(c->b->base);
        return;
    }
    while ((len = evbuffer_get_length(in)) > 0) {
        if (!msgpack_unpacker_reserve_buffer(&c->up, len))
            break;
        size_t got = (size_t)evbuffer_remove(in, msgpack_unpacker_buffer(&c->up), len);
        msgpack_unpacker_buffer_consumed(&c->up, got);
        while (msgpack_unpacker_next(&c->up, &c->msg) == MSGPACK_UNPACK_SUCCESS)
            check_reply(c, &c->msg.data);
    }
    send_more(c);
    if (c->b->limit && c->b->done >= c->b->limit)
        event_base_loopbreak(c->b->base);
}

static void conn_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    conn *c = arg;
    if (what & BEV_EVENT_CONNECTED) {
        int one = 1;
        setsockopt(bufferevent_getfd(c->bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        send_more(c);
        return;
    }
    if (!c->b->stopping) {
        count_error(c->b, E_CONN);
        fprintf(stderr, "variantd-bench: connection lost (%s)\n",
                (what & BEV_EVENT_EOF) ? "closed by server" : evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        c->b->stopping = 1;
        event_base_loopbreak(c->b->base);
    }
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    bench *b = arg;
    uint64_t t = now_ns();
    if (!b->measuring && t - b->t_start >= (uint64_t)(b->warmup * 1e9)) {
        b->measuring = 1;
        b->t_measure = t;
        b->done = 0;
    }
    if (b->measuring && b->limit == 0 && t - b->t_measure >= (uint64_t)(b->duration * 1e9)) {
        b->stopping = 1;
        event_base_loopbreak(b->base);
    }
}

/* --rate: refill tokens every 100 us and let idle connections send (in
 * turn from where the last tick stopped, so no connection is favoured). */
static void on_pace(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    bench *b = arg;
    uint64_t t = now_ns();
    b->tokens += b->rate * (double)(t - b->pace_last) / 1e9;
    if (b->tokens > b->rate / 1000 + 1)
        b->tokens = b->rate / 1000 + 1;   /* at most 1 ms of burst after a stall */
    b->pace_last = t;
    for (int k = 0; k < b->nconns && b->tokens >= 1; k++) {
        conn *c = &b->conns[b->pace_next];
        b->pace_next = (b->pace_next + 1) % b->nconns;
        if (c->inflight < (unsigned)b->depth)
            send_more(c);
    }
}

static int parse_addr(bench *b, const char *addr)
{
    char host[128];
    const char *colon = strrchr(addr, ':');
    if (!colon)
        return -1;
    snprintf(host, sizeof host, "%.*s", (int)(colon - addr), addr);
    int port = atoi(colon + 1);
    struct sockaddr_in *s4 = (struct sockaddr_in *)&b->ss;
    memset(&b->ss, 0, sizeof b->ss);
    if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
        return -1;
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)port);
    b->sslen = sizeof *s4;
    return 0;
}

/* ---- --method track: notifications as fast as they are read ---- */

static void pack_track(msgpack_packer *pk, int notify, uint32_t msgid, const char *type, const char *cat,
                       const char *vid)
{
    msgpack_pack_array(pk, notify ? 3 : 4);
    msgpack_pack_int(pk, notify ? 2 : 0);
    if (!notify)
        msgpack_pack_uint32(pk, msgid);
    pack_str(pk, "track");
    msgpack_pack_array(pk, 1);
    msgpack_pack_map(pk, cat ? 4 : 3);
    pack_str(pk, "event");
    pack_str(pk, type);
    pack_str(pk, "vid");
    pack_str(pk, vid);
    pack_str(pk, "consent");
    pack_str(pk, "personalization");
    if (cat) {
        pack_str(pk, "category");
        pack_str(pk, cat);
    }
}

static int run_track(bench *b, const char *event_arg)
{
    long long n = b->limit ? b->limit : 100000;
    int nc = b->nconns, visitors = b->visitors > 0 ? b->visitors : 1000;
    char type[128], *cat;
    snprintf(type, sizeof type, "%s", event_arg);
    cat = strchr(type, ':');
    if (cat)
        *cat++ = '\0';
    msgpack_sbuffer *buf = calloc((size_t)nc, sizeof *buf);
    size_t *off = calloc((size_t)nc, sizeof *off);
    int *fd = calloc((size_t)nc, sizeof *fd);
    struct pollfd *pf = calloc((size_t)nc, sizeof *pf);
    if (!buf || !off || !fd || !pf)
        return 1;
    for (int i = 0; i < nc; i++) {
        msgpack_sbuffer_init(&buf[i]);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &buf[i], msgpack_sbuffer_write);
        char vid[32];
        for (long long k = i; k < n; k += nc) {
            snprintf(vid, sizeof vid, "bench-%lld", k % visitors);
            pack_track(&pk, 1, 0, type, cat, vid);
        }
        pack_track(&pk, 0, 1, type, cat, "bench-last");
        fd[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (fd[i] < 0 || connect(fd[i], (struct sockaddr *)&b->ss, (socklen_t)b->sslen) != 0) {
            fprintf(stderr, "variantd-bench: cannot connect\n");
            return 1;
        }
        int one = 1;
        setsockopt(fd[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    uint64_t t0 = now_ns();
    int left = nc, errors = 0;
    int *done = calloc((size_t)nc, sizeof *done);
    msgpack_unpacker *up = calloc((size_t)nc, sizeof *up);
    for (int i = 0; i < nc; i++)
        msgpack_unpacker_init(&up[i], 4096);
    while (left > 0) {
        for (int i = 0; i < nc; i++) {
            pf[i].fd = done[i] ? -1 : fd[i];
            pf[i].events = POLLIN | (off[i] < buf[i].size ? POLLOUT : 0);
        }
        if (poll(pf, (nfds_t)nc, 30000) <= 0) {
            fprintf(stderr, "variantd-bench: no progress for 30 s\n");
            errors += left;
            break;
        }
        for (int i = 0; i < nc; i++) {
            if (pf[i].revents & POLLOUT) {
                ssize_t w = send(fd[i], buf[i].data + off[i], buf[i].size - off[i], MSG_NOSIGNAL);
                if (w > 0)
                    off[i] += (size_t)w;
            }
            if (pf[i].revents & (POLLIN | POLLHUP | POLLERR)) {
                msgpack_unpacker_reserve_buffer(&up[i], 4096);
                ssize_t r = recv(fd[i], msgpack_unpacker_buffer(&up[i]), 4096, 0);
                if (r <= 0) {
                    errors++;
                    done[i] = 1;
                    left--;
                    continue;
                }
                msgpack_unpacker_buffer_consumed(&up[i], (size_t)r);
                msgpack_unpacked m;
                msgpack_unpacked_init(&m);
                if (msgpack_unpacker_next(&up[i], &m) == MSGPACK_UNPACK_SUCCESS) {
                    const msgpack_object *o = &m.data;
                    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 4 ||
                        o->via.array.ptr[2].type != MSGPACK_OBJECT_NIL)
                        errors++;
                    done[i] = 1;
                    left--;
                }
                msgpack_unpacked_destroy(&m);
            }
        }
    }
    double secs = (double)(now_ns() - t0) / 1e9;
    double rps = secs > 0 ? (double)n / secs : 0;
    if (!b->quiet)
        printf("variantd-bench: track notifications, %d connections, %lld sent, %d errors, %.3f s, %.0f/s\n", nc, n,
               errors, secs, rps);
    printf("BENCH_RESULT requests=%lld errors=%d rps=%.0f p50_us=nan p90_us=nan p99_us=nan p999_us=nan max_us=nan "
           "conns=%d pipeline=0 seconds=%.3f\n", n, errors, rps, nc, secs);
    for (int i = 0; i < nc; i++) {
        close(fd[i]);
        msgpack_sbuffer_destroy(&buf[i]);
        msgpack_unpacker_destroy(&up[i]);
    }
    free(buf);
    free(off);
    free(fd);
    free(pf);
    free(done);
    free(up);
    return errors ? 1 : 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: variantd-bench [--connect HOST:PORT] [-c CONNS] [-P DEPTH] "
                    "[-d SECONDS | -n REQUESTS] [--contexts FILE] [--slots a,b] [--visitors N] "
                    "[--method decide|explain|ping|redis-get|track] [--event TYPE[:CATEGORY]] [--warmup SECONDS] "
                    "[--rate REQ_PER_S] [--quiet]\n");
}

int main(int argc, char **argv)
{
    static bench b;
    const char *addr = "127.0.0.1:7700", *ctx_path = NULL, *event_arg = "product_view:sneakers";
    char slots_buf[4096] = "home.hero";
    b.nconns = 50;
    b.depth = 1;
    b.duration = 10;
    b.warmup = 1;
    b.method = "decide";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--quiet") == 0) {
            b.quiet = 1;
            continue;
        }
        if (!v) {
            usage();
            return 2;
        }
        i++;
        if (strcmp(a, "--connect") == 0) addr = v;
        else if (strcmp(a, "-c") == 0) b.nconns = atoi(v);
        else if (strcmp(a, "-P") == 0) b.depth = atoi(v);
        else if (strcmp(a, "-d") == 0) b.duration = atof(v);
        else if (strcmp(a, "-n") == 0) b.limit = atoll(v);
        else if (strcmp(a, "--contexts") == 0) ctx_path = v;
        else if (strcmp(a, "--slots") == 0) snprintf(slots_buf, sizeof slots_buf, "%s", v);
        else if (strcmp(a, "--method") == 0) b.method = v;
        else if (strcmp(a, "--warmup") == 0) b.warmup = atof(v);
        else if (strcmp(a, "--rate") == 0) b.rate = atof(v);
        else if (strcmp(a, "--visitors") == 0) b.visitors = atoi(v);
        else if (strcmp(a, "--event") == 0) event_arg = v;
        else {
            usage();
            return 2;
        }
    }
    if (b.nconns < 1 || b.nconns > 10000 || b.depth < 1 || b.depth > 4096 || b.duration <= 0 || b.rate < 0 ||
        b.duration > 600 || b.warmup < 0 || b.warmup > 60 || b.limit < 0) {
        fprintf(stderr, "variantd-bench: -c 1..10000, -P 1..4096, -d 0..600 s, --warmup 0..60 s\n");
        return 2;
    }
    if (b.limit)
        b.warmup = 0;
    if (strcmp(b.method, "track") == 0) {
        if (parse_addr(&b, addr) != 0) {
            fprintf(stderr, "variantd-bench: --connect wants IPv4:PORT\n");
            return 2;
        }
        return run_track(&b, event_arg);
    }
    b.redis = strcmp(b.method, "redis-get") == 0;
    char *save, *tok = strtok_r(slots_buf, ",", &save);
    for (; tok && b.nslots < MAX_SLOTS; tok = strtok_r(NULL, ",", &save))
        b.slots[b.nslots++] = tok;
    if (parse_addr(&b, addr) != 0) {
        fprintf(stderr, "variantd-bench: --connect wants IPv4:PORT\n");
        return 2;
    }
    if (load_contexts(&b, ctx_path) != 0)
        return 2;
    /* --rate paces by a 100 us timer: the kernel's timerfd, not epoll's
     * millisecond timeout, so arrivals are spread, not sent in 1 ms bursts. */
    struct event_config *ecfg = event_config_new();
    if (ecfg && b.rate > 0)
        event_config_set_flag(ecfg, EVENT_BASE_FLAG_PRECISE_TIMER);
    b.base = ecfg ? event_base_new_with_config(ecfg) : event_base_new();
    if (ecfg)
        event_config_free(ecfg);
    b.conns = calloc((size_t)b.nconns, sizeof *b.conns);
    for (int i = 0; i < b.nconns; i++) {
        conn *c = &b.conns[i];
        c->b = &b;
        c->next_id = c->next_reply = 1;
        c->sent_ns = calloc((size_t)b.depth, sizeof *c->sent_ns);
        c->sent_ctx = calloc((size_t)b.depth, sizeof *c->sent_ctx);
        msgpack_unpacker_init(&c->up, 1 << 16);
        msgpack_unpacked_init(&c->msg);
        c->bev = bufferevent_socket_new(b.base, -1, BEV_OPT_CLOSE_ON_FREE);
        bufferevent_setcb(c->bev, conn_read, NULL, conn_event, c);
        bufferevent_enable(c->bev, EV_READ | EV_WRITE);
        if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&b.ss, b.sslen) != 0) {
            fprintf(stderr, "variantd-bench: cannot connect to %s\n", addr);
            return 1;
        }
    }
    b.t_start = now_ns();
    b.measuring = b.warmup == 0;
    b.t_measure = b.t_start;
    b.tick = event_new(b.base, -1, EV_PERSIST, on_tick, &b);
    struct timeval tv = { 0, 20000 };
    event_add(b.tick, &tv);
    if (b.rate > 0) {
        b.pace_last = now_ns();
        b.pace = event_new(b.base, -1, EV_PERSIST, on_pace, &b);
        struct timeval tick = { 0, 100 };
        event_add(b.pace, &tick);
    }
    event_base_dispatch(b.base);
    b.t_end = now_ns();
    double secs = (double)(b.t_end - b.t_measure) / 1e9;
    double rps = secs > 0 ? (double)b.measured / secs : 0;
    if (!b.quiet) {
        printf("variantd-bench: %s, %d connections, pipeline %d, %zu contexts, %d slots, %.2f s\n",
               b.method, b.nconns, b.depth, b.nctx, b.nslots, secs);
        printf("  requests %lld  errors %lld  rate %.0f/s\n", b.measured, b.errors, rps);
        printf("  latency  p50 %.1f us  p90 %.1f us  p99 %.1f us  p99.9 %.1f us  max %.1f us\n",
               percentile_us(&b, 0.5), percentile_us(&b, 0.9), percentile_us(&b, 0.99),
               percentile_us(&b, 0.999), (double)b.max_ns / 1000.0);
        for (int k = 0; k < 6; k++)
            if (b.err_kinds[k])
                printf("  error %-14s %lld\n", err_names[k], b.err_kinds[k]);
    }
    printf("BENCH_RESULT requests=%lld errors=%lld rps=%.0f p50_us=%.1f p90_us=%.1f p99_us=%.1f "
           "p999_us=%.1f max_us=%.1f conns=%d pipeline=%d seconds=%.2f\n",
           b.measured, b.errors + b.err_kinds[E_CONN], rps, percentile_us(&b, 0.5),
           percentile_us(&b, 0.9), percentile_us(&b, 0.99), percentile_us(&b, 0.999),
           (double)b.max_ns / 1000.0, b.nconns, b.depth, secs);
    for (int i = 0; i < b.nconns; i++) {
        bufferevent_free(b.conns[i].bev);
        msgpack_unpacker_destroy(&b.conns[i].up);
        msgpack_unpacked_destroy(&b.conns[i].msg);
        free(b.conns[i].sent_ns);
        free(b.conns[i].sent_ctx);
    }
    for (size_t i = 0; i < b.nctx; i++) {
        free(b.ctx[i].req);
        for (int s = 0; b.ctx[i].expect && s < MAX_SLOTS; s++)
            free(b.ctx[i].expect[s]);
        free(b.ctx[i].expect);
    }
    free(b.ctx);
    free(b.conns);
    event_free(b.tick);
    if (b.pace)
        event_free(b.pace);
    event_base_free(b.base);
    return (b.errors + b.err_kinds[E_CONN]) ? 1 : 0;
}
