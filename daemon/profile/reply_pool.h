/* reply_pool.h — the profile link's hiredis reply objects from a free list.
 *
 * A decision that reads its profile gets two replies of ~22 objects (the
 * visit script's and the HGETALL's); with hiredis' default functions that
 * is ~34 malloc/calloc/free calls, an eighth of the decision's CPU. A reply
 * lives only while its callback runs (hiredis frees it right after), so the
 * objects go back to a free list of the worker thread instead. Strings up to
 * VD_REPLY_SMALL bytes and arrays up to VD_REPLY_ELEMS elements live inside
 * the object; larger ones are allocated. At most VD_REPLY_KEEP objects stay
 * on the list. Under AddressSanitizer nothing is kept, so a reply used after
 * its callback is still reported. One pool per store: its worker's thread
 * alone creates and frees the objects. */
#ifndef VD_PROFILE_REPLY_POOL_H
#define VD_PROFILE_REPLY_POOL_H

#include <hiredis/async.h>

#define VD_REPLY_SMALL 48
#define VD_REPLY_ELEMS 32
#define VD_REPLY_KEEP  512

typedef struct vd_reply_pool vd_reply_pool;

vd_reply_pool *vd_reply_pool_new(void);

/* Makes the context's reader (or a reader alone) build its replies from
 * the pool. */
void vd_reply_pool_attach(vd_reply_pool *p, redisAsyncContext *ac);
void vd_reply_pool_attach_reader(vd_reply_pool *p, redisReader *r);

/* Frees the pool and its kept objects, once no context uses it. */
void vd_reply_pool_free(vd_reply_pool *p);

#endif
