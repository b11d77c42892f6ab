/* request.h — the one validator of the decide/explain request map, for every
 * codec. The MessagePack codec (net/rpc_codec.c) and the edge port's JSON
 * body (net/http_edge.c) each describe their decoded objects through a
 * vd_reqval and two small callbacks; the rules and the error messages live
 * only here, so a new request field is one edit.
 *
 * Strings in the filled vd_request point into the codec's objects (no
 * copies): they live as long as the frame or the JSON tree. */
#ifndef VD_DECISION_REQUEST_H
#define VD_DECISION_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "context/context.h"
#include "core/str.h"
#include "profile/store.h"

typedef enum vd_reqval_kind {
    VD_RV_NIL = 0,
    VD_RV_BOOL,
    VD_RV_NUM,                /* a finite number */
    VD_RV_STR,
    VD_RV_ARRAY,
    VD_RV_MAP,
    VD_RV_OTHER,              /* anything else: a non-finite float, an extension type, ... */
    VD_RV_BADSTR,             /* bytes offered as a string that are not UTF-8 (MessagePack bin) */
} vd_reqval_kind;

/* A decoded value as the validator sees it. */
typedef struct vd_reqval {
    vd_reqval_kind kind;
    bool b;
    double num;
    vd_str s;
    uint32_t n;               /* ARRAY / MAP: element / entry count */
    const void *node;         /* the codec's own object, for the callbacks */
} vd_reqval;

typedef struct vd_reqcodec {
    /* Element i (< n) of an ARRAY. */
    void (*at)(const void *node, uint32_t i, vd_reqval *out);
    /* Entries of a MAP in order: *it starts at 0; false after the last. */
    bool (*next)(const void *node, uintptr_t *it, vd_reqval *key, vd_reqval *val);
} vd_reqcodec;

/* Unix seconds within years 0001..9999: anything else is a client error. */
#define VD_REQUEST_TS_MIN (-62135596800LL)
#define VD_REQUEST_TS_MAX 253402300799LL

/* Fills req from params (an array holding one map, or a bare map). Unknown
 * keys are ignored (newer clients may send more); a repeated key replaces
 * the earlier one. What PHP clients send is read as meant: an empty array
 * where a map is expected (params, attrs) is an empty map, and `slots` may be
 * a map whose keys are all non-negative integers (or strings of digits, as
 * json_encode writes them): a PHP list with gaps, read as its values in the
 * order sent. Returns 0, or -1 with a message for the client in err. */
int vd_request_read(const vd_reqcodec *codec, const vd_reqval *params, unsigned max_slots,
                    vd_request *req, char *err, size_t cap);

/* The params of track, profile, flag and forget (one map, or an array
 * holding one): {event, vid, uid, ts, category, value, consent, flag, ttl,
 * clear}. Types, consent, id lengths and "vid or uid" are checked here;
 * what else a method requires is its own business. 0, or -1 with a message. */
typedef struct vd_profile_params {
    vd_profile_ids ids;
    vd_str event, category, consent, flag;
    double value;
    bool has_value;
    int64_t ts;
    bool has_ts;
    int64_t ttl;
    bool has_ttl;
    bool clear;
} vd_profile_params;
int vd_profile_params_read(const vd_reqcodec *codec, const vd_reqval *params, vd_profile_params *p,
                           char *err, size_t cap);
/* Names of events and flags: 1..128 of [A-Za-z0-9._:-]. */
bool vd_profile_name_ok(vd_str s);

/* What each method needs beyond vd_profile_params_read, with the same
 * messages on every port: track an event name and a ts at most
 * VD_MAX_EVENT_FUTURE_S ahead of now, flag a flag name. 0, or -1 with a
 * message. */
typedef enum vd_profile_method {
    VD_PM_TRACK,
    VD_PM_PROFILE,
    VD_PM_FLAG,
    VD_PM_FORGET,
} vd_profile_method;
int vd_profile_params_check(vd_profile_method m, const vd_profile_params *p, int64_t now,
                            char *err, size_t cap);

#endif
