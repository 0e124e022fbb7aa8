/* Bounds-checked reading of the wasm binary format: LEB128 integers with
 * the spec's length and unused-bit rules, names, vector counts. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include "core/utf8.h"
#include "sandbox/wasm/internal.h"

int cb__wasm_fail(struct cb_error *err, size_t offset, const char *fmt, ...)
{
    char msg[CB_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return cb_error_set(err, -EINVAL, "offset 0x%zx: %s", offset, msg);
}

static int need(struct cb__wasm_rd *rd, size_t n, struct cb_error *err)
{
    if (rd->end - rd->pos < n)
        return cb__wasm_fail(err, rd->pos, "unexpected end (%zu more bytes needed, %zu left)", n,
                             rd->end - rd->pos);
    return 0;
}

int cb__wasm_u8(struct cb__wasm_rd *rd, uint8_t *out, struct cb_error *err)
{
    int r = need(rd, 1, err);
    if (r < 0)
        return r;
    *out = rd->data[rd->pos++];
    return 0;
}

int cb__wasm_skip(struct cb__wasm_rd *rd, size_t n, struct cb_error *err)
{
    int r = need(rd, n, err);
    if (r < 0)
        return r;
    rd->pos += n;
    return 0;
}

/* Checks the bits of the last byte of an N-bit LEB128 that lie beyond N:
 * zero for unsigned, copies of the sign bit for signed. */
static bool leb_tail_ok(uint8_t b, unsigned bits, unsigned shift, bool is_signed)
{
    if (shift <= bits)
        return true;
    unsigned used = bits - (shift - 7);
    uint8_t extra = (uint8_t)((b & 0x7f) >> used);
    if (!is_signed)
        return extra == 0;
    bool neg = (b >> (used - 1)) & 1;
    return extra == (neg ? (0x7f >> used) : 0);
}

/* Reads an N-bit LEB128: at most ceil(N/7) bytes (padding within that is
 * allowed, as producers pad for relocation). */
static int leb(struct cb__wasm_rd *rd, unsigned bits, bool is_signed, uint64_t *out,
               struct cb_error *err)
{
    size_t start = rd->pos;
    /* Most integers in a module fit in one byte. */
    if (start < rd->end && rd->data[start] < 0x80) {
        uint8_t b = rd->data[rd->pos++];
        *out = (is_signed && (b & 0x40)) ? (b | ~(uint64_t)0x7f) : b;
        return 0;
    }
    size_t max_bytes = (bits + 6) / 7;
    uint64_t v = 0;
    unsigned shift = 0;
    for (size_t i = 0; i < max_bytes; i++) {
        if (rd->pos >= rd->end)
            return cb__wasm_fail(err, start, "unexpected end inside a LEB128 integer");
        uint8_t b = rd->data[rd->pos++];
        v |= (uint64_t)(b & 0x7f) << shift;
        shift += 7;
        if (b & 0x80)
            continue;
        if (!leb_tail_ok(b, bits, shift, is_signed))
            return cb__wasm_fail(err, start, "LEB128 integer overflows %u bits", bits);
        if (is_signed && shift < 64 && (b & 0x40))
            v |= ~(uint64_t)0 << shift;
        *out = v;
        return 0;
    }
    return cb__wasm_fail(err, start, "LEB128 integer longer than %zu bytes", max_bytes);
}

int cb__wasm_u32(struct cb__wasm_rd *rd, uint32_t *out, struct cb_error *err)
{
    uint64_t v;
    int r = leb(rd, 32, false, &v, err);
    if (r == 0)
        *out = (uint32_t)v;
    return r;
}

int cb__wasm_s32(struct cb__wasm_rd *rd, int32_t *out, struct cb_error *err)
{
    uint64_t v;
    int r = leb(rd, 32, true, &v, err);
    if (r == 0)
        *out = (int32_t)(int64_t)v;
    return r;
}

int cb__wasm_s33(struct cb__wasm_rd *rd, int64_t *out, struct cb_error *err)
{
    uint64_t v;
    int r = leb(rd, 33, true, &v, err);
    if (r == 0)
        *out = (int64_t)v;
    return r;
}

int cb__wasm_s64(struct cb__wasm_rd *rd, int64_t *out, struct cb_error *err)
{
    uint64_t v;
    int r = leb(rd, 64, true, &v, err);
    if (r == 0)
        *out = (int64_t)v;
    return r;
}

int cb__wasm_count(struct cb__wasm_rd *rd, size_t min_size, uint32_t max, const char *what,
                   uint32_t *out, struct cb_error *err)
{
    size_t at = rd->pos;
    int r = cb__wasm_u32(rd, out, err);
    if (r < 0)
        return r;
    if (*out > max)
        return cb__wasm_fail(err, at, "too many %s (%u, the limit is %u)", what, *out, max);
    if ((uint64_t)*out * min_size > rd->end - rd->pos)
        return cb__wasm_fail(err, at, "%u %s cannot fit in the %zu bytes left", *out, what,
                             rd->end - rd->pos);
    return 0;
}

int cb__wasm_name(struct cb__wasm_rd *rd, const uint8_t **out, uint32_t *len, struct cb_error *err)
{
    size_t at = rd->pos;
    int r = cb__wasm_u32(rd, len, err);
    if (r < 0)
        return r;
    if (*len > rd->end - rd->pos)
        return cb__wasm_fail(err, at, "name of %u bytes overruns its section", *len);
    *out = rd->data + rd->pos;
    if (cb_utf8_valid_len((const char *)*out, *len) != *len)
        return cb__wasm_fail(err, at, "name is not valid UTF-8");
    rd->pos += *len;
    return 0;
}

size_t cb__wasm_put_u32(uint8_t *p, uint32_t v)
{
    size_t n = 0;
    do {
        uint8_t b = v & 0x7f;
        v >>= 7;
        p[n++] = v ? (uint8_t)(b | 0x80) : b;
    } while (v);
    return n;
}

size_t cb__wasm_put_s64(uint8_t *p, int64_t v)
{
    size_t n = 0;
    for (;;) {
        uint8_t b = (uint8_t)(v & 0x7f);
        /* Arithmetic shift; gcc and clang define it for negative values. */
        v >>= 7;
        bool done = (v == 0 && !(b & 0x40)) || (v == -1 && (b & 0x40));
        p[n++] = done ? b : (uint8_t)(b | 0x80);
        if (done)
            return n;
    }
}
