/* test_json_out.c — the JSON writer and emitter: structure from counted and
 * open containers, and valid JSON for any bytes. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <event2/buffer.h>
#include <math.h>
#include <string.h>

#include "net/json_out.h"

static char out[4096];

static const char *text(struct evbuffer *b)
{
    size_t n = evbuffer_get_length(b);
    assert_true(n < sizeof out);
    evbuffer_remove(b, out, n);
    out[n] = '\0';
    return out;
}

static void test_counted_containers_close_themselves(void **state)
{
    (void)state;
    struct evbuffer *b = evbuffer_new();
    vd_json j;
    vd_json_init(&j, b);
    vd_emitter e;
    vd_json_emitter(&j, &e);
    e.map(e.arg, 3);
    e.str(e.arg, "a", 1);
    e.array(e.arg, 2);
    e.i64(e.arg, -5);
    e.map(e.arg, 0);
    e.str(e.arg, "b", 1);
    e.nil(e.arg);
    e.str(e.arg, "c", 1);
    e.boolean(e.arg, true);
    assert_int_equal(j.depth, 0);
    assert_string_equal(text(b), "{\"a\":[-5,{}],\"b\":null,\"c\":true}");
    evbuffer_free(b);
}

static void test_payload_is_raw_and_floats_are_short(void **state)
{
    (void)state;
    struct evbuffer *b = evbuffer_new();
    vd_json j;
    vd_json_init(&j, b);
    vd_emitter e;
    vd_json_emitter(&j, &e);
    vd_variant v = { .payload_json = "{\"t\":[1,2]}", .payload_json_len = 11 };
    vd_variant none = { 0 };
    e.array(e.arg, 5);
    e.payload(e.arg, &v);
    e.payload(e.arg, &none);
    e.f64(e.arg, 0.1);
    e.f64(e.arg, NAN);
    e.f64(e.arg, 52.52);
    assert_string_equal(text(b), "[{\"t\":[1,2]},null,0.1,null,52.52]");
    evbuffer_free(b);
}

static void test_open_containers_and_keys(void **state)
{
    (void)state;
    struct evbuffer *b = evbuffer_new();
    vd_json j;
    vd_json_init(&j, b);
    vd_json_obj(&j);
    vd_json_key(&j, "x");
    vd_json_u64(&j, 18446744073709551615ULL);
    vd_json_key(&j, "list");
    vd_json_arr(&j);
    vd_json_end(&j);
    vd_json_key(&j, "o");
    vd_json_obj(&j);
    vd_json_key(&j, "k");
    vd_json_cstr(&j, "v");
    vd_json_end(&j);
    vd_json_end(&j);
    assert_string_equal(text(b), "{\"x\":18446744073709551615,\"list\":[],\"o\":{\"k\":\"v\"}}");
    evbuffer_free(b);
}

static void test_any_bytes_become_valid_json_strings(void **state)
{
    (void)state;
    struct evbuffer *b = evbuffer_new();
    /* quote, backslash, controls, DEL, valid 2/3/4-byte UTF-8, then invalid:
     * a lone continuation, an overlong '/', a surrogate, a truncated sequence. */
    static const char in[] = "q\"b\\\n\t\x01\x7f"
                             "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"
                             "\x80\xc0\xaf\xed\xa0\x80\xe2\x82";
    vd_json_quote(b, in, sizeof in - 1);
    assert_string_equal(text(b), "\"q\\\"b\\\\\\n\\t\\u0001\\u007f"
                                 "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"
                                 "\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\"");
    /* Not NUL-terminated input: only n bytes are read. */
    vd_json_quote(b, "abcdef", 3);
    assert_string_equal(text(b), "\"abc\"");
    evbuffer_free(b);
}

static void test_depth_limit_writes_null(void **state)
{
    (void)state;
    struct evbuffer *b = evbuffer_new();
    vd_json j;
    vd_json_init(&j, b);
    for (int i = 0; i < VD_JSON_MAX_DEPTH; i++)
        vd_json_arr(&j);
    vd_json_arr(&j);        /* one too deep: null, the structure stays valid */
    for (int i = 0; i < VD_JSON_MAX_DEPTH; i++)
        vd_json_end(&j);
    const char *t = text(b);
    assert_int_equal(strlen(t), 2 * VD_JSON_MAX_DEPTH + 4);
    assert_non_null(strstr(t, "[null]"));
    evbuffer_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counted_containers_close_themselves),
        cmocka_unit_test(test_payload_is_raw_and_floats_are_short),
        cmocka_unit_test(test_open_containers_and_keys),
        cmocka_unit_test(test_any_bytes_become_valid_json_strings),
        cmocka_unit_test(test_depth_limit_writes_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
