/* libFuzzer target for the request-head parser and the chunked decoder.
 * The input is a request as a client would send it. Invariants:
 *   - the end of the head is the same found at once or byte by byte;
 *   - an accepted head is what the parser promises: spans inside it,
 *     names made of token bytes, values free of control characters, one
 *     framing, a decoded path that is UTF-8 without control characters;
 *   - the bytes after the head decode as a chunked body to the same
 *     result and the same data whether fed at once or a byte at a time.
 * Sanitizers catch memory errors; __builtin_trap() flags broken invariants. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/utf8.h"
#include "core/util.h"
#include "http/chunked.h"
#include "http/parse.h"

static void check(bool cond)
{
    if (!cond)
        __builtin_trap();
}

static size_t head_end_bytewise(const char *p, size_t n)
{
    struct cb_http_scan st = {0};
    for (size_t i = 1; i <= n; i++) {
        size_t end = cb__http_find_head_end(p, i, &st);
        if (end > 0)
            return end;
    }
    return 0;
}

static void check_span(struct cb_http_span s, size_t len)
{
    check((size_t)s.off + s.len <= len);
}

static void check_head(const char *p, const struct cb_http_head *h)
{
    check_span(h->method, h->len);
    check_span(h->target, h->len);
    check_span(h->path, h->len);
    check_span(h->query, h->len);
    check(h->minor <= 1 && h->nfields <= CB_HTTP_MAX_FIELDS);
    for (size_t i = 0; i < h->nfields; i++) {
        const struct cb_http_field *f = &h->fields[i];
        check_span(f->name, h->len);
        check_span(f->value, h->len);
        check(f->name.len > 0);
        for (size_t k = 0; k < f->name.len; k++)
            check(cb__http_is_tchar((unsigned char)p[f->name.off + k]));
        for (size_t k = 0; k < f->value.len; k++)
            check(cb__http_is_field_byte((unsigned char)p[f->value.off + k]));
    }
    check(h->framing != CB_HTTP_LENGTH || h->content_length > 0);
    struct cb_error err = {0};
    char *path = NULL;
    if (cb__http_decode_path(p + h->path.off, h->path.len, &path, &err) == 0) {
        size_t n = strlen(path);
        check(path[0] == '/');
        for (size_t i = 0; i < n; i++)
            check((unsigned char)path[i] >= 0x20 && path[i] != 0x7f);
        for (size_t i = 0; i < n;) {
            size_t k = cb_utf8_seq_len((const unsigned char *)path + i, n - i);
            check(k > 0);
            i += k;
        }
        free(path);
    }
}

struct sum {
    uint64_t len;
    uint64_t hash;
};

static void sink(void *ud, const char *data, size_t n)
{
    struct sum *s = ud;
    s->hash = cb_fnv1a(s->hash, data, n);
    s->len += n;
}

static void check_chunked(const char *p, size_t n)
{
    struct cb_error err = {0};
    struct cb_http_chunked a = {0}, b = {0};
    struct sum sa = {0, CB_FNV1A_INIT}, sb = {0, CB_FNV1A_INIT};
    size_t used_a = 0, used_b = 0;
    int ra = cb__http_chunked_feed(&a, p, n, &used_a, sink, &sa, &err);
    int rb = 0;
    size_t i = 0;
    while (i < n && rb == 0) {
        size_t u = 0;
        rb = cb__http_chunked_feed(&b, p + i, 1, &u, sink, &sb, &err);
        i += rb == 1 ? u : 1;
    }
    used_b = i;
    check(ra == rb);
    if (ra == 1)
        check(used_a == used_b);
    if (ra >= 0)
        check(sa.len == sb.len && sa.hash == sb.hash);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    size_t n = size < CB_HTTP_MAX_HEAD ? size : CB_HTTP_MAX_HEAD;
    struct cb_http_scan st = {0};
    size_t end = cb__http_find_head_end(p, n, &st);
    check(end == head_end_bytewise(p, n));
    if (end == 0)
        return 0;
    static struct cb_http_head h;
    struct cb_error err = {0};
    if (cb__http_parse_head(p, end, &h, &err) == 0)
        check_head(p, &h);
    else
        check(err.msg[0] != '\0');
    check_chunked(p + end, size - end);
    return 0;
}
