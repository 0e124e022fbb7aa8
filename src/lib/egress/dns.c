/* DNS wire format: one query in, one response out (RFC 1035 section 4). */
#include <errno.h>
#include <string.h>

#include "egress/dns.h"
#include "egress/internal.h"

#define FLAG_QR     0x8000u
#define FLAG_OPCODE 0x7800u
#define FLAG_AA     0x0400u
#define FLAG_RD     0x0100u
#define FLAG_RA     0x0080u
/* A name is at most 255 bytes on the wire. */
#define NAME_WIRE_MAX 255

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint8_t *put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
    return p + 2;
}

static bool host_byte(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

/* The walk over one possibly compressed name. */
struct name_walk {
    const uint8_t *p;
    size_t n;
    size_t pos;   /* the next byte to read */
    size_t after; /* where the record goes on after the name, once known */
    size_t floor; /* a pointer must point below this: no loops */
    int jumps;
    size_t wire; /* bytes of the name so far, as if uncompressed */
    bool bad;    /* a byte that is not in a host name */
};

/* Follows the pointer at w->pos. Returns 0 or -EPROTO. */
static int jump(struct name_walk *w)
{
    if (w->pos + 2 > w->n || ++w->jumps > CB_EGRESS_DNS_JUMPS_MAX)
        return -EPROTO;
    size_t target = get16(w->p + w->pos) & 0x3fffu;
    if (target >= w->floor)
        return -EPROTO;
    if (w->after == 0)
        w->after = w->pos + 2;
    w->floor = target;
    w->pos = target;
    return 0;
}

/* Appends the label at w->pos (length byte len) to the dotted text. */
static int label(struct name_walk *w, size_t len, struct cb_egress_dns_query *q)
{
    if (w->pos + 1 + len > w->n)
        return -EPROTO;
    w->wire += len + 1;
    if (w->wire + 1 > NAME_WIRE_MAX)
        return -EPROTO;
    if (q->name_len > 0)
        q->name[q->name_len++] = '.';
    const uint8_t *l = w->p + w->pos + 1;
    for (size_t i = 0; i < len; i++) {
        w->bad |= !host_byte(l[i]);
        q->name[q->name_len++] = (char)l[i];
    }
    w->pos += 1 + len;
    return 0;
}

/* Reads the question's name starting at *pos into q->name; *pos moves
 * past it. Returns 0, -EPROTO or -EILSEQ. */
static int read_name(const uint8_t *p, size_t n, size_t *pos, struct cb_egress_dns_query *q)
{
    struct name_walk w = {.p = p, .n = n, .pos = *pos, .floor = *pos};
    q->name_len = 0;
    for (;;) {
        if (w.pos >= n)
            return -EPROTO;
        uint8_t b = p[w.pos];
        int rc = 0;
        if (b == 0) {
            if (w.after == 0)
                w.after = w.pos + 1;
            break;
        }
        if ((b & 0xc0) == 0xc0)
            rc = jump(&w);
        else if ((b & 0xc0) != 0)
            rc = -EPROTO; /* the extended label types were never used */
        else
            rc = label(&w, b, q);
        if (rc < 0)
            return rc;
    }
    q->name[q->name_len] = '\0';
    *pos = w.after;
    return w.bad ? -EILSEQ : 0;
}

int cb__egress_dns_parse(const uint8_t *p, size_t n, struct cb_egress_dns_query *q)
{
    memset(q, 0, sizeof(*q));
    if (n < CB_EGRESS_DNS_HEADER_LEN)
        return -EINVAL;
    q->id = get16(p);
    q->flags = get16(p + 2);
    if (q->flags & FLAG_QR)
        return -EINVAL;
    if ((q->flags & FLAG_OPCODE) != 0)
        return -ENOTSUP;
    if (get16(p + 4) != 1)
        return -EPROTO;
    size_t pos = CB_EGRESS_DNS_HEADER_LEN;
    int rc = read_name(p, n, &pos, q);
    if (rc == -EPROTO)
        return rc;
    if (pos + 4 > n)
        return -EPROTO;
    q->qtype = get16(p + pos);
    q->qclass = get16(p + pos + 2);
    if (rc == -EILSEQ) {
        q->name[0] = '\0';
        q->name_len = 0;
    }
    return rc;
}

/* Writes q->name as labels; returns the end, or NULL when it does not fit
 * in [o, end) or a label is empty or too long. */
static uint8_t *put_name(uint8_t *o, const uint8_t *end, const char *name, size_t len)
{
    size_t i = 0;
    while (i < len) {
        const char *dot = memchr(name + i, '.', len - i);
        size_t l = dot != NULL ? (size_t)(dot - name) - i : len - i;
        if (l == 0 || l > 63 || (size_t)(end - o) < l + 1)
            return NULL;
        *o++ = (uint8_t)l;
        memcpy(o, name + i, l);
        o += l;
        i += l + (dot != NULL ? 1 : 0);
        if (dot != NULL && i == len)
            return NULL; /* a trailing dot */
    }
    if (o >= end)
        return NULL;
    *o++ = 0;
    return o;
}

int cb__egress_dns_build(const struct cb_egress_dns_query *q, bool bare, uint8_t rcode,
                         const uint8_t *addr, size_t addr_len, uint8_t *out, size_t cap)
{
    if (cap < CB_EGRESS_DNS_HEADER_LEN || (addr != NULL && addr_len != 4 && addr_len != 16))
        return -ENOSPC;
    uint8_t *o = out, *end = out + cap;
    uint16_t flags = FLAG_QR | (q->flags & (FLAG_OPCODE | FLAG_RD)) | FLAG_AA | FLAG_RA;
    o = put16(o, q->id);
    o = put16(o, (uint16_t)(flags | (rcode & 0xfu)));
    o = put16(o, bare ? 0 : 1);
    o = put16(o, addr != NULL && !bare ? 1 : 0);
    o = put16(o, 0);
    o = put16(o, 0);
    if (bare)
        return (int)(o - out);
    o = put_name(o, end, q->name, q->name_len);
    if (o == NULL || end - o < 4)
        return -ENOSPC;
    o = put16(o, q->qtype);
    o = put16(o, q->qclass);
    if (addr == NULL)
        return (int)(o - out);
    if ((size_t)(end - o) < 12 + addr_len)
        return -ENOSPC;
    o = put16(o, 0xc000u | CB_EGRESS_DNS_HEADER_LEN);
    o = put16(o, addr_len == 4 ? CB_EGRESS_DNS_TYPE_A : CB_EGRESS_DNS_TYPE_AAAA);
    o = put16(o, CB_EGRESS_DNS_CLASS_IN);
    o = put16(o, 0);
    o = put16(o, CB_EGRESS_DNS_TTL);
    o = put16(o, (uint16_t)addr_len);
    memcpy(o, addr, addr_len);
    return (int)(o + addr_len - out);
}
