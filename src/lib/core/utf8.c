#include "core/utf8.h"
#include "core/buf.h"
#include "core/util.h"

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
