#include "core/util.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

static void oom(size_t n)
{
    fprintf(stderr, "clawbox: out of memory allocating %zu bytes\n", n);
    abort();
}

void *cb_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        oom(n);
    return p;
}

void *cb_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL)
        oom(n * size);
    return p;
}

void *cb_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        oom(n);
    return q;
}

char *cb_xstrdup(const char *s)
{
    return cb_xstrndup(s, strlen(s));
}

char *cb_xstrndup(const char *s, size_t n)
{
    char *p = cb_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *cb_xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        oom(0);
    char *p = cb_xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

bool cb_const_time_eq(const void *a, size_t alen, const void *b, size_t blen)
{
    const volatile unsigned char *x = a;
    const volatile unsigned char *y = b;
    unsigned char diff = 0;
    if (alen != blen)
        return false;
    for (size_t i = 0; i < alen; i++)
        diff |= x[i] ^ y[i];
    return diff == 0;
}

int cb_random_bytes(void *buf, size_t n)
{
    unsigned char *p = buf;
    while (n > 0) {
        ssize_t r = getrandom(p, n, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

bool cb_name_valid(const char *s)
{
    if (s == NULL)
        return false;
    size_t n = strnlen(s, CB_NAME_MAX + 1);
    return n >= 1 && n <= CB_NAME_MAX &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == n;
}

/* UUIDs come from a per-thread pool of the kernel's random bytes: one
 * getrandom(2) for every 16 of them rather than one each (a proxied request
 * takes one). A fork empties the pool of the forking thread in the child,
 * which would otherwise hand out the parent's next UUIDs. */
#define UUID_POOL 256u
static __thread unsigned char uuid_pool[UUID_POOL];
static __thread size_t uuid_pool_left;

static void uuid_pool_forget(void)
{
    explicit_bzero(uuid_pool, sizeof(uuid_pool));
    uuid_pool_left = 0;
}

static void uuid_pool_init(void)
{
    pthread_atfork(NULL, NULL, uuid_pool_forget);
}

void cb_uuid_v4(char out[37])
{
    static pthread_once_t uuid_once = PTHREAD_ONCE_INIT;
    unsigned char b[16];
    char hex[33];
    pthread_once(&uuid_once, uuid_pool_init);
    if (uuid_pool_left < sizeof(b)) {
        if (cb_random_bytes(uuid_pool, UUID_POOL) < 0)
            abort(); /* getrandom cannot fail once the pool is initialised */
        uuid_pool_left = UUID_POOL;
    }
    uuid_pool_left -= sizeof(b);
    memcpy(b, uuid_pool + uuid_pool_left, sizeof(b));
    explicit_bzero(uuid_pool + uuid_pool_left, sizeof(b));
    b[6] = (b[6] & 0x0f) | 0x40; /* version 4 */
    b[8] = (b[8] & 0x3f) | 0x80; /* RFC 4122 variant */
    cb_hex_encode(b, sizeof(b), hex);
    snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
}

void cb_rfc3339_ms(uint64_t ms, char out[CB_RFC3339_LEN])
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t len = strftime(out, CB_RFC3339_LEN, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + len, CB_RFC3339_LEN - len, ".%03uZ", (unsigned)(ms % 1000));
}

void cb_hex_byte(unsigned char c, bool upper, char out[2])
{
    const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    out[0] = digits[c >> 4];
    out[1] = digits[c & 15];
}

void cb_hex_encode(const unsigned char *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        cb_hex_byte(in[i], false, out + 2 * i);
    out[2 * n] = '\0';
}

int cb_hex_digit(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

uint64_t cb_fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211ULL;
    return h;
}

bool cb_hex_is_lower(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (cb_hex_digit((unsigned char)s[i]) < 0 || (s[i] >= 'A' && s[i] <= 'F'))
            return false;
    return true;
}

int cb_parse_u64(const char *s, size_t len, uint64_t *out)
{
    uint64_t v = 0;
    if (len == 0)
        return -EINVAL;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -ERANGE;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

uint64_t cb_now_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

bool cb_yield_until(bool (*ready)(void *ud), void *ud, uint64_t ns)
{
    uint64_t until = cb_now_mono_ns() + ns;
    for (;;) {
        if (ready(ud))
            return true;
        if (cb_now_mono_ns() >= until)
            return false;
        sched_yield();
    }
}

uint64_t cb_now_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

struct timespec cb_mono_deadline(uint64_t ms)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    t.tv_sec += (time_t)(ms / 1000);
    t.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}
