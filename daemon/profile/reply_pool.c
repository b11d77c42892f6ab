/* reply_pool.c — hiredis reply objects from a store's free list
 * (reply_pool.h). The create functions are hiredis 0.14's defaults
 * (hiredis.c) with the allocation swapped; freeObject is its
 * freeReplyObject. */
#include "profile/reply_pool.h"

#include <stddef.h>
#include <string.h>

#include "core/alloc.h"

typedef struct reply_obj {
    redisReply r;                         /* first: the pointer hiredis sees */
    vd_reply_pool *pool;                  /* NULL: allocated outside a pool */
    struct reply_obj *next;               /* on the free list */
    char small[VD_REPLY_SMALL + 1];
    redisReply *elems[VD_REPLY_ELEMS];
} reply_obj;

#if defined(__SANITIZE_ADDRESS__)
#define KEEP 0
#else
#define KEEP VD_REPLY_KEEP
#endif

struct vd_reply_pool {
    reply_obj *free_list;
    int nfree;
};

/* The reader hands every task its privdata (set in vd_reply_pool_attach). */
static reply_obj *obj_get(const redisReadTask *task, int type)
{
    vd_reply_pool *p = task->privdata;
    reply_obj *o = p ? p->free_list : NULL;
    if (o) {
        p->free_list = o->next;
        p->nfree--;
    } else if (!(o = vd_malloc(sizeof *o))) {
        return NULL;
    }
    memset(&o->r, 0, sizeof o->r);
    o->r.type = type;
    o->pool = p;
    return o;
}

static void obj_put(reply_obj *o)
{
    vd_reply_pool *p = o->pool;
    if (!p || p->nfree >= KEEP) {
        vd_free(o);
        return;
    }
    o->next = p->free_list;
    p->free_list = o;
    p->nfree++;
}

static void link_parent(const redisReadTask *task, redisReply *r)
{
    if (task->parent) {
        redisReply *parent = task->parent->obj;
        parent->element[task->idx] = r;
    }
}

static void *create_string(const redisReadTask *task, char *str, size_t len)
{
    reply_obj *o = obj_get(task, task->type);
    if (!o)
        return NULL;
    char *buf = len <= VD_REPLY_SMALL ? o->small : vd_malloc(len + 1);
    if (!buf) {
        obj_put(o);
        return NULL;
    }
    memcpy(buf, str, len);
    buf[len] = '\0';
    o->r.str = buf;
    o->r.len = len;
    link_parent(task, &o->r);
    return &o->r;
}

static void *create_array(const redisReadTask *task, int elements)
{
    reply_obj *o = obj_get(task, REDIS_REPLY_ARRAY);
    if (!o)
        return NULL;
    if (elements > 0) {
        size_t n = (size_t)elements;
        o->r.element = n <= VD_REPLY_ELEMS ? o->elems : vd_malloc(n * sizeof *o->r.element);
        if (!o->r.element) {
            obj_put(o);
            return NULL;
        }
        memset(o->r.element, 0, n * sizeof *o->r.element);
    }
    o->r.elements = elements > 0 ? (size_t)elements : 0;
    link_parent(task, &o->r);
    return &o->r;
}

static void *create_integer(const redisReadTask *task, long long value)
{
    reply_obj *o = obj_get(task, REDIS_REPLY_INTEGER);
    if (!o)
        return NULL;
    o->r.integer = value;
    link_parent(task, &o->r);
    return &o->r;
}

static void *create_nil(const redisReadTask *task)
{
    reply_obj *o = obj_get(task, REDIS_REPLY_NIL);
    if (!o)
        return NULL;
    link_parent(task, &o->r);
    return &o->r;
}

static void free_object(void *p)
{
    reply_obj *o = p;          /* r is the first member */
    if (!o)
        return;
    switch (o->r.type) {
    case REDIS_REPLY_ARRAY:
        for (size_t i = 0; i < o->r.elements; i++)
            free_object(o->r.element[i]);
        if (o->r.element != o->elems)
            vd_free(o->r.element);
        break;
    case REDIS_REPLY_ERROR:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_STRING:
        if (o->r.str != o->small)
            vd_free(o->r.str);
        break;
    default:
        break;
    }
    obj_put(o);
}

static redisReplyObjectFunctions pool_functions = {
    create_string, create_array, create_integer, create_nil, free_object,
};

vd_reply_pool *vd_reply_pool_new(void)
{
    return vd_calloc(1, sizeof(vd_reply_pool));
}

void vd_reply_pool_attach_reader(vd_reply_pool *p, redisReader *r)
{
    r->fn = &pool_functions;
    r->privdata = p;
}

void vd_reply_pool_attach(vd_reply_pool *p, redisAsyncContext *ac)
{
    vd_reply_pool_attach_reader(p, ac->c.reader);
}

void vd_reply_pool_free(vd_reply_pool *p)
{
    if (!p)
        return;
    while (p->free_list) {
        reply_obj *o = p->free_list;
        p->free_list = o->next;
        vd_free(o);
    }
    vd_free(p);
}
