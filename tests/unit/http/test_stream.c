#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "http/stream.h"

/* A producer that hands out a script of answers, one per call. */
struct script {
    const char *data[4];
    enum cb_http_stream_rc rc[4];
    int calls;
    int freed;
};

static enum cb_http_stream_rc produce(void *ctx, char *out, size_t room, size_t *n)
{
    struct script *s = ctx;
    int i = s->calls++;
    size_t len = s->data[i] ? strlen(s->data[i]) : 0;
    assert_true(len <= room);
    if (len > 0) /* memcpy from NULL is undefined even for 0 bytes */
        memcpy(out, s->data[i], len);
    *n = len;
    return s->rc[i];
}

static void release(void *ctx)
{
    ((struct script *)ctx)->freed++;
}

static void start(struct cb__stream *st, struct script *s, bool chunked)
{
    struct cb_http_stream src = {produce, release, s};
    cb__stream_init(st, &src, chunked);
    assert_null(src.produce);
}

static void expect_bytes(struct cb__stream *st, const char *want)
{
    assert_int_equal(cb__stream_next(st, false), CB__STREAM_SEND);
    assert_int_equal(st->len - st->off, strlen(want));
    assert_memory_equal(st->buf + st->off, want, strlen(want));
}

static void chunks_are_framed_and_the_last_chunk_ends_the_body(void **state)
{
    (void)state;
    static struct cb__stream st;
    struct script s = {
        {"hello\n", NULL, "0123456789abcdefg", NULL},
        {CB_HTTP_STREAM_MORE, CB_HTTP_STREAM_IDLE, CB_HTTP_STREAM_MORE, CB_HTTP_STREAM_END}};
    start(&st, &s, true);
    expect_bytes(&st, "6\r\nhello\n\r\n");
    cb__stream_sent(&st, 11);
    assert_int_equal(cb__stream_next(&st, false), CB__STREAM_WAIT);
    expect_bytes(&st, "11\r\n0123456789abcdefg\r\n");
    cb__stream_sent(&st, 100);
    expect_bytes(&st, "0\r\n\r\n");
    cb__stream_sent(&st, 5);
    assert_int_equal(cb__stream_next(&st, false), CB__STREAM_DONE);
    assert_int_equal(s.calls, 4);
    cb__stream_release(&st);
    cb__stream_release(&st);
    assert_int_equal(s.freed, 1);
}

/* Back-pressure: nothing more is asked of the producer while any byte of
 * the chunk before is unsent. */
static void a_partly_sent_chunk_holds_the_producer_back(void **state)
{
    (void)state;
    static struct cb__stream st;
    struct script s = {{"abc", "def"}, {CB_HTTP_STREAM_MORE, CB_HTTP_STREAM_MORE}};
    start(&st, &s, true);
    expect_bytes(&st, "3\r\nabc\r\n");
    cb__stream_sent(&st, 4);
    for (int i = 0; i < 3; i++)
        expect_bytes(&st, "bc\r\n");
    assert_int_equal(s.calls, 1);
    cb__stream_sent(&st, 4);
    expect_bytes(&st, "3\r\ndef\r\n");
    assert_int_equal(s.calls, 2);
    cb__stream_release(&st);
}

static void finishing_ends_the_body_without_asking_for_more(void **state)
{
    (void)state;
    static struct cb__stream st;
    struct script s = {{"abc"}, {CB_HTTP_STREAM_MORE}};
    start(&st, &s, true);
    expect_bytes(&st, "3\r\nabc\r\n");
    assert_int_equal(cb__stream_next(&st, true), CB__STREAM_SEND); /* unsent bytes go first */
    cb__stream_sent(&st, 8);
    assert_int_equal(cb__stream_next(&st, true), CB__STREAM_SEND);
    assert_memory_equal(st.buf + st.off, "0\r\n\r\n", 5);
    cb__stream_sent(&st, 5);
    assert_int_equal(cb__stream_next(&st, true), CB__STREAM_DONE);
    assert_int_equal(s.calls, 1);
    cb__stream_release(&st);
}

static void http10_bodies_are_sent_bare(void **state)
{
    (void)state;
    static struct cb__stream st;
    struct script s = {{"abc", "de"}, {CB_HTTP_STREAM_MORE, CB_HTTP_STREAM_END}};
    start(&st, &s, false);
    expect_bytes(&st, "abc");
    cb__stream_sent(&st, 3);
    expect_bytes(&st, "de");
    cb__stream_sent(&st, 2);
    assert_int_equal(cb__stream_next(&st, false), CB__STREAM_DONE);
    cb__stream_release(&st);
}

static void a_failing_producer_aborts(void **state)
{
    (void)state;
    static struct cb__stream st;
    struct script s = {{NULL}, {CB_HTTP_STREAM_FAIL}};
    start(&st, &s, true);
    assert_int_equal(cb__stream_next(&st, false), CB__STREAM_ABORT);
    cb__stream_release(&st);
    assert_int_equal(s.freed, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(chunks_are_framed_and_the_last_chunk_ends_the_body),
        cmocka_unit_test(a_partly_sent_chunk_holds_the_producer_back),
        cmocka_unit_test(finishing_ends_the_body_without_asking_for_more),
        cmocka_unit_test(http10_bodies_are_sent_bare),
        cmocka_unit_test(a_failing_producer_aborts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
