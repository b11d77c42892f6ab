/* http_edge.h — the edge port: `decide` over HTTP for CDN/edge sidecars.
 *
 *   GET  /v1/decide?slot=a&slot=b[&url=...][&explain=1][&attr.NAME=v]
 *        visitor context from the request headers:
 *          client IP   the right-most X-Forwarded-For address that is not a
 *                      trusted proxy (`trusted-proxies`), else X-Real-IP, when
 *                      the peer itself is a trusted proxy; else the peer
 *          ua, referer User-Agent, Referer
 *          url         the `url` parameter, else X-Original-URI (a path is
 *                      completed with X-Forwarded-Proto and Host)
 *          lang        Accept-Language
 *          vid         the cookie named by `vid-cookie`
 *          consent     the `consent` parameter (profiles)
 *   POST /v1/decide   body: the contract's request map as JSON
 *   GET|POST /v1/report   the learner's report
 *   with profile-edge 1 (404 otherwise: not for the open internet):
 *   POST /v1/track, GET|POST /v1/profile, POST /v1/flag, POST /v1/forget
 *        the decision port's maps as JSON (GET /v1/profile?vid=|uid=)
 *
 * A decide whose slots reach visitor.* and the profile methods wait for the
 * profile store: the request is parked on its connection (vd_http_park,
 * pipelined requests wait behind it) and answered from the store's callback
 * (its reply, profile-timeout, or its loss), like on the decision port.
 *
 * 200: the decide result as JSON, one `X-Variant-<slot>: <variant>` header
 * per known slot (slot names outside [A-Za-z0-9] become '-', so `home.hero`
 * is X-Variant-home-hero, nginx's $upstream_http_x_variant_home_hero),
 * `Cache-Control: private, no-store` (the decision is one visitor's: never
 * for a shared cache) and `X-Variant-Max-Age: N`, how long a page built from
 * these variants may be cached: N = valid_until - now, at most http-max-age
 * (http-max-age when valid_until is null). POST reads the visitor only from
 * the JSON body: X-Forwarded-For, User-Agent and the other headers are not
 * used. Errors: {"error": {code, message}} with 400/404/405/413/431/503. */
#ifndef VD_NET_HTTP_EDGE_H
#define VD_NET_HTTP_EDGE_H

#include <stdbool.h>
#include <stddef.h>

#include "net/http_server.h"
#include "net/frontend.h"

typedef struct vd_http_edge vd_http_edge;

/* One per worker: each binds addr with SO_REUSEPORT on the worker's base;
 * http-max-connections holds for all of them together. */
vd_http_edge *vd_http_edge_start(const vd_frontend *fe, const char *addr, char *err, size_t cap);
vd_http_server *vd_http_edge_server(vd_http_edge *e);
void vd_http_edge_free(vd_http_edge *e);

/* The value of cookie `name` in a Cookie header (trimmed, one pair of
 * double quotes removed), a slice of hdr; empty if absent. */
vd_str vd_edge_cookie_get(vd_str hdr, const char *name);

/* The http-* limits of the config, shared by the edge and stats ports. */
void vd_http_limits_from_config(const vd_config *cfg, vd_http_limits *out);

#endif
