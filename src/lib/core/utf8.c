#include "core/utf8.h"
#include "core/buf.h"
#include "core/util.h"

#include <stdio.h>

size_t cb_utf8_seq_len(const unsigned char *p, size_t n)
{
    if (n == 0)
        return 0;
    if (p[0] < 0x80)
        return 1;
    size_t len = p[0] >= 0xf0 ? 4 : p[0] >= 0xe0 ? 3 : p[0] >= 0xc2 ? 2 : 0;
    if (len == 0 || p[0] > 0xf4 || len > n)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    /* Overlong forms, surrogates and code points past U+10FFFF. */
    if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] > 0x9f) ||
        (p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] > 0x8f))
        return 0;
    return len;
}

size_t cb_utf8_valid_len(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, k;
    while (i < n && (k = cb_utf8_seq_len(p + i, n - i)) != 0)
        i += k;
    return i;
}

size_t cb_utf8_put(uint32_t cp, char out[4])
{
    if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    size_t len = cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    for (size_t i = len - 1; i > 0; i--, cp >>= 6)
        out[i] = (char)(0x80 | (cp & 0x3f));
    static const unsigned char lead[] = {0, 0, 0xc0, 0xe0, 0xf0};
    out[0] = (char)(lead[len] | cp);
    return len;
}

char *cb_utf8_lossy(const char *s, size_t n, size_t *out_len)
{
    struct cb_buf b;
    const unsigned char *p = (const unsigned char *)s;
    cb_buf_init(&b, n * 3 + 1);
    for (size_t i = 0; i < n;) {
        size_t k = cb_utf8_seq_len(p + i, n - i);
        if (k == 0) {
            cb_buf_append(&b, "\xef\xbf\xbd", 3);
            i++;
        } else {
            cb_buf_append(&b, p + i, k);
            i += k;
        }
    }
    return cb_buf_steal(&b, out_len);
}

size_t cb_utf8_cut(const char *s, size_t n, size_t max)
{
    if (max >= n)
        return n;
    size_t k = max;
    /* Step back over continuation bytes to the start of the sequence that
     * the cut would split. */
    while (k > 0 && max - k < 3 && ((unsigned char)s[k] & 0xc0) == 0x80)
        k--;
    return ((unsigned char)s[k] & 0xc0) == 0x80 ? max : k;
}

void cb_utf8_scrub(char *s, size_t n)
{
    unsigned char *p = (unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t k = cb_utf8_seq_len(p + i, n - i);
        if (k == 0) {
            p[i] = '?';
            k = 1;
        }
        i += k;
    }
}

/* When vsnprintf cut the text, the bytes after a lead byte near the end
 * may be missing: drops such an unfinished last sequence. */
static size_t drop_unfinished_tail(const char *s, size_t n)
{
    for (size_t back = 1; back <= 3 && back <= n; back++) {
        unsigned char c = (unsigned char)s[n - back];
        if ((c & 0xc0) == 0x80)
            continue;
        size_t want = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
        return want > back ? n - back : n;
    }
    return n;
}

size_t cb_utf8_vformat(char *buf, size_t cap, const char *fmt, va_list ap)
{
    int r = vsnprintf(buf, cap, fmt, ap);
    if (r < 0) {
        buf[0] = '\0';
        return 0;
    }
    size_t n = (size_t)r;
    if (n >= cap) {
        n = drop_unfinished_tail(buf, cap - 1);
        buf[n] = '\0';
    }
    cb_utf8_scrub(buf, n);
    return n;
}
