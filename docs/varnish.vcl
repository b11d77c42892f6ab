vcl 4.1;
# Varnish in front of a site, caching each page once per variant: Varnish
# first asks variantd's edge port which variant of the home page's hero this
# visitor gets (never cached: the answer is the visitor's own, and variantd
# says so with Cache-Control: private, no-store), then looks the page up in
# its cache under the URL *and* that variant, and keeps a fetched page for
# X-Variant-Max-Age seconds (until the decision's valid_until, at most
# http-max-age). Two visitors with the same variant share one cache object;
# no visitor ever gets another's decision. See README.md, "Ports". Tested by
# tests/integration/test_varnish.py (which fills in the addresses below).
#
# variantd side (variantd.conf):
#   http-listen      127.0.0.1:7701
#   trusted-proxies  127.0.0.1/32        # this Varnish (it sets X-Forwarded-For)
#
# For several slots, ask for all of them in one decision (&slot=a&slot=b),
# copy each X-Variant-<slot> header in vcl_deliver and hash each in vcl_hash.

import std;

backend variantd {                      # variantd http-listen
    .host = "127.0.0.1";
    .port = "7701";
    .connect_timeout = 0.1s;
    .first_byte_timeout = 0.25s;        # a decision takes microseconds: fail fast to the default
}

backend origin {                        # your site, rendering the variant it is told
    .host = "127.0.0.1";
    .port = "8081";
}

sub vcl_recv {
    if (req.restarts == 0) {
        # A visitor cannot choose their variant: drop anything that looks
        # like our internal headers, then ask variantd.
        unset req.http.X-Variant-home-hero;
        unset req.http.X-Variant-Max-Age;
        if (req.method != "GET" && req.method != "HEAD") {
            set req.backend_hint = origin;
            return (pass);
        }
        set req.http.X-Original-URI = req.url;
        set req.url = "/v1/decide?slot=home.hero";
        set req.backend_hint = variantd;
        # X-Forwarded-For (the visitor's address), User-Agent, Referer,
        # Accept-Language and Cookie (the vid cookie) go as the visitor sent
        # them; X-Original-URI is the page (url.*, utm_* -> source.*).
        return (pass);                  # the decision is never cached
    }
    # Second pass (after the restart in vcl_deliver): the page itself.
    set req.backend_hint = origin;
    unset req.http.Cookie;              # the page varies by variant, not by cookie
    return (hash);
}

sub vcl_hash {
    hash_data(req.url);
    if (req.http.host) {
        hash_data(req.http.host);
    }
    hash_data(req.http.X-Variant-home-hero);   # one object per variant
    return (lookup);
}

sub vcl_backend_fetch {
    if (bereq.backend == variantd) {
        set bereq.http.X-Forwarded-Proto = "http";   # "https" behind a TLS terminator
        return (fetch);
    }
    # The origin renders the variant it is told (header X-Variant-home-hero);
    # X-Variant-Max-Age stays on bereq: vcl_backend_response reads it.
    unset bereq.http.X-Original-URI;
    return (fetch);
}

sub vcl_backend_response {
    if (bereq.backend == variantd) {
        return (deliver);               # Cache-Control: private, no-store: never kept
    }
    # The page lives as long as the decision that chose its variant.
    set beresp.ttl = std.duration(bereq.http.X-Variant-Max-Age + "s", 0s);
    set beresp.grace = 0s;
    set beresp.keep = 0s;
    unset beresp.http.Set-Cookie;
    unset beresp.http.Cache-Control;
    unset beresp.http.Expires;
    return (deliver);
}

sub vcl_backend_error {
    if (bereq.backend == variantd) {
        # variantd unreachable: an answer without X-Variant-* headers; the
        # page is then served (and cached) as the default variant.
        set beresp.status = 503;
        set beresp.ttl = 0s;
        return (deliver);
    }
}

sub vcl_deliver {
    if (req.restarts == 0 && req.http.X-Original-URI) {
        # The decision: keep the variant and its lifetime, then fetch the page.
        if (resp.status == 200 && resp.http.X-Variant-home-hero) {
            set req.http.X-Variant-home-hero = resp.http.X-Variant-home-hero;
            set req.http.X-Variant-Max-Age = resp.http.X-Variant-Max-Age;
        } else {
            set req.http.X-Variant-home-hero = "hero-generic";   # the slot's default
            set req.http.X-Variant-Max-Age = "10";
        }
        set req.url = req.http.X-Original-URI;
        return (restart);
    }
    set resp.http.X-Variant = req.http.X-Variant-home-hero;
    if (obj.hits > 0) {
        set resp.http.X-Cache = "HIT";
    } else {
        set resp.http.X-Cache = "MISS";
    }
    # Downstream caches and browsers: this page is one visitor's variant.
    set resp.http.Cache-Control = "private, max-age=" + req.http.X-Variant-Max-Age;
    unset resp.http.Via;
    unset resp.http.X-Varnish;
}
