/* Test helper: builds TLS ClientHellos byte by byte, for the SNI parser's
 * unit test. Header-only. */
#ifndef CB_TESTS_EGRESS_HELLO_H
#define CB_TESTS_EGRESS_HELLO_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct bytes {
    uint8_t b[40000];
    size_t n;
};

static inline void put_bytes(struct bytes *o, const void *p, size_t n)
{
    memcpy(o->b + o->n, p, n);
    o->n += n;
}

static inline void put_u8(struct bytes *o, unsigned v)
{
    o->b[o->n++] = (uint8_t)v;
}

static inline void put_u16(struct bytes *o, unsigned v)
{
    put_u8(o, v >> 8);
    put_u8(o, v & 0xff);
}

/* Appends a server_name extension naming `name` (type 0). */
static inline void put_sni_ext(struct bytes *o, const char *name)
{
    size_t n = strlen(name);
    put_u16(o, 0);
    put_u16(o, (unsigned)(n + 5));
    put_u16(o, (unsigned)(n + 3));
    put_u8(o, 0);
    put_u16(o, (unsigned)n);
    put_bytes(o, name, n);
}

/* A ClientHello handshake message with the extension block exts (none at
 * all when exts is NULL). */
static inline void put_hello(struct bytes *o, const struct bytes *exts)
{
    struct bytes body = {.n = 0};
    put_u16(&body, 0x0303);
    for (int i = 0; i < 32; i++)
        put_u8(&body, (unsigned)i);
    put_u8(&body, 32);
    for (int i = 0; i < 32; i++)
        put_u8(&body, 0xaa);
    put_u16(&body, 4);
    put_u16(&body, 0x1301);
    put_u16(&body, 0x1302);
    put_u8(&body, 1);
    put_u8(&body, 0);
    if (exts != NULL) {
        put_u16(&body, (unsigned)exts->n);
        put_bytes(&body, exts->b, exts->n);
    }
    put_u8(o, 1);
    put_u8(o, (unsigned)(body.n >> 16));
    put_u16(o, (unsigned)(body.n & 0xffff));
    put_bytes(o, body.b, body.n);
}

/* Wraps a handshake message in records of at most `frag` bytes each. */
static inline void put_records(struct bytes *o, const struct bytes *hs, size_t frag)
{
    for (size_t off = 0; off < hs->n; off += frag) {
        size_t k = hs->n - off < frag ? hs->n - off : frag;
        put_u8(o, 0x16);
        put_u16(o, 0x0301);
        put_u16(o, (unsigned)k);
        put_bytes(o, hs->b + off, k);
    }
}

/* A whole ClientHello in one record with SNI `name` and a
 * supported_versions extension before it. */
static inline void hello_with_sni(struct bytes *o, const char *name)
{
    struct bytes exts = {.n = 0}, hs = {.n = 0};
    put_u16(&exts, 43);
    put_u16(&exts, 3);
    put_u8(&exts, 2);
    put_u16(&exts, 0x0304);
    put_sni_ext(&exts, name);
    put_hello(&hs, &exts);
    o->n = 0;
    put_records(o, &hs, 16384);
}

#endif
