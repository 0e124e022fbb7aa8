/* libFuzzer target for streamed redaction (scan/redact_stream.c). The
 * input is placed around the stream's first cut: bytes 0-1 say how far
 * before the cut it starts, byte 2 the size of the pieces it is fed in
 * (and, odd, a blocking stream), the rest is the text; letters pad it to
 * a body of a few holds. The scanner knows one secret. Invariants (a
 * broken one calls __builtin_trap()):
 *   - a redacting stream never lets the secret out as it is, and ends
 *     with 0 or -EACCES (no clean cut);
 *   - a blocking stream lets out only a prefix of the body, without the
 *     secret, and ends with 0 only when the body holds nothing found. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "scan/leak.h"
#include "scan/redact_stream.h"

#define SECRET "Zq8vR2mW7xK4pL9tN3bH6yJ1cF5dG0sA"
#define HOLD   (4 * CB_REDACT_STREAM_LOOK)
#define CUT    (HOLD - CB_REDACT_STREAM_LOOK)

static void check(bool cond)
{
    if (!cond)
        __builtin_trap();
}

static struct cb_leak_scanner *scanner(void)
{
    static struct cb_leak_scanner *sc;
    if (sc == NULL) {
        const char *names[] = {"api"}, *values[] = {SECRET};
        size_t lens[] = {strlen(SECRET)};
        struct cb_error err = {0};
        sc = cb_leak_scanner_new(names, values, lens, 1, &err);
        check(sc != NULL);
    }
    return sc;
}

static int collect(void *ud, const char *data, size_t len)
{
    return cb_buf_append(ud, data, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3 || size > 65536)
        return 0;
    size_t before = ((size_t)data[0] << 8 | data[1]) % CUT;
    size_t piece = 1 + (size_t)data[2] * 257, n = size - 3;
    bool block = data[2] & 1;
    size_t len = CUT - before + n + HOLD;
    char *body = malloc(len);
    check(body != NULL);
    for (size_t i = 0; i < len; i++)
        body[i] = (char)('a' + (i * 7 + i / 26) % 26);
    memcpy(body + CUT - before, data + 3, n);

    struct cb_leak_scanner *sc = scanner();
    struct cb_redact_stream *rs =
        block ? cb_scan_stream_new(sc, HOLD) : cb_redact_stream_new(sc, HOLD);
    struct cb_buf out;
    cb_buf_init(&out, SIZE_MAX);
    int r = 0;
    for (size_t off = 0; r == 0 && off < len; off += piece)
        r = cb_redact_stream_write(rs, body + off, len - off < piece ? len - off : piece, collect,
                                   &out);
    if (r == 0)
        r = cb_redact_stream_finish(rs, collect, &out);
    check(r == 0 || r == -EACCES);
    check(out.len == 0 || memmem(out.data, out.len, SECRET, strlen(SECRET)) == NULL);
    if (block) {
        check(out.len <= len && (out.len == 0 || memcmp(out.data, body, out.len) == 0));
        struct cb_leak_report rep;
        struct cb_error err = {0};
        check(r != 0 || (out.len == len && cb_leak_scan(sc, body, len, &rep, &err) == 0));
    }
    cb_redact_stream_free(rs);
    cb_buf_free(&out);
    free(body);
    return 0;
}
