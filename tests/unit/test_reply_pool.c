/* The profile link's reply objects (profile/reply_pool.c): hiredis' reader
 * builds the same replies with them as with its own functions, small and
 * large strings and arrays, nested, and objects taken again from the free
 * list carry nothing of their last use. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "profile/reply_pool.h"

static redisReply *parse(redisReader *r, const char *resp, size_t n)
{
    assert_int_equal(redisReaderFeed(r, resp, n), REDIS_OK);
    void *reply = NULL;
    assert_int_equal(redisReaderGetReply(r, &reply), REDIS_OK);
    assert_non_null(reply);
    return reply;
}

/* An HGETALL-like reply of n pairs, field i "f<i>", value i of vlen bytes. */
static size_t hgetall(char *buf, size_t cap, int n, size_t vlen, char fill)
{
    size_t o = (size_t)snprintf(buf, cap, "*%d\r\n", 2 * n);
    for (int i = 0; i < n; i++) {
        char f[16];
        int fl = snprintf(f, sizeof f, "f%d", i);
        o += (size_t)snprintf(buf + o, cap - o, "$%d\r\n%s\r\n$%zu\r\n", fl, f, vlen);
        memset(buf + o, fill + i % 7, vlen);
        o += vlen;
        memcpy(buf + o, "\r\n", 2);
        o += 2;
    }
    return o;
}

static void check_hgetall(const redisReply *r, int n, size_t vlen, char fill)
{
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, (size_t)(2 * n));
    for (int i = 0; i < n; i++) {
        char f[16];
        snprintf(f, sizeof f, "f%d", i);
        const redisReply *k = r->element[2 * i], *v = r->element[2 * i + 1];
        assert_int_equal(k->type, REDIS_REPLY_STRING);
        assert_string_equal(k->str, f);
        assert_int_equal(v->len, vlen);
        assert_int_equal(v->str[vlen], '\0');
        for (size_t j = 0; j < vlen; j++)
            assert_int_equal(v->str[j], fill + i % 7);
    }
}

static void test_replies_as_hiredis_builds_them(void **state)
{
    (void)state;
    vd_reply_pool *p = vd_reply_pool_new();
    assert_non_null(p);
    redisReader *rd = redisReaderCreate();
    vd_reply_pool_attach_reader(p, rd);
    static char buf[1 << 18];
    /* Small strings and arrays inside the objects, large ones outside:
     * each shape twice, so the second parse reuses freed objects. */
    const int pairs[] = { 3, 10, VD_REPLY_ELEMS, VD_REPLY_ELEMS / 2 + 1, 100, 3 };
    const size_t lens[] = { 1, VD_REPLY_SMALL, VD_REPLY_SMALL + 1, 33, 1000, 0 };
    for (int round = 0; round < 2; round++)
        for (size_t t = 0; t < sizeof pairs / sizeof pairs[0]; t++) {
            char fill = (char)('a' + round * 8 + (int)t);
            size_t n = hgetall(buf, sizeof buf, pairs[t], lens[t], fill);
            redisReply *r = parse(rd, buf, n);
            check_hgetall(r, pairs[t], lens[t], fill);
            rd->fn->freeObject(r);
        }
    /* Nested: the visit script's reply, then nil, integer, error, status. */
    static const char nested[] = "*3\r\n$2\r\nok\r\n:42\r\n*2\r\n$-1\r\n-ERR x\r\n";
    redisReply *r = parse(rd, nested, sizeof nested - 1);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 3);
    assert_string_equal(r->element[0]->str, "ok");
    assert_int_equal(r->element[1]->type, REDIS_REPLY_INTEGER);
    assert_int_equal(r->element[1]->integer, 42);
    assert_int_equal(r->element[2]->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->element[2]->element[0]->type, REDIS_REPLY_NIL);
    assert_int_equal(r->element[2]->element[1]->type, REDIS_REPLY_ERROR);
    assert_string_equal(r->element[2]->element[1]->str, "ERR x");
    rd->fn->freeObject(r);
    r = parse(rd, "+OK\r\n", 5);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    assert_string_equal(r->str, "OK");
    assert_int_equal(r->elements, 0);       /* nothing left from an array before */
    assert_null(r->element);
    rd->fn->freeObject(r);
    /* The object came back from the free list (not kept under ASan). */
    void *was = r;
    r = parse(rd, "+OK\r\n", 5);
#if !defined(__SANITIZE_ADDRESS__)
    assert_ptr_equal(r, was);
#else
    (void)was;
#endif
    rd->fn->freeObject(r);
    r = parse(rd, "*0\r\n", 4);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 0);
    rd->fn->freeObject(r);
    /* A reply cut short is freed with the reader (partial objects). */
    assert_int_equal(redisReaderFeed(rd, "*2\r\n$1\r\na\r\n", 11), REDIS_OK);
    void *partial = NULL;
    assert_int_equal(redisReaderGetReply(rd, &partial), REDIS_OK);
    assert_null(partial);
    redisReaderFree(rd);
    vd_reply_pool_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replies_as_hiredis_builds_them),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
