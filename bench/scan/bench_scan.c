/* Leak-scan throughput: a 1 MiB body against 100 known secrets in every
 * encoding (whole forms, fragments and skeletons) plus the whole pattern
 * catalogue, against baselines measured on
 * the same buffer in the same run: memchr and memmem of one needle (the
 * floor of any scan), and memmem of every encoded form one after another
 * (what a per-secret scan would cost). Best of ROUNDS runs each. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "scan/leak.h"
#include "scan/patterns.h"

#define BODY    (1u << 20)
#define SECRETS 100
#define ROUNDS  30

static uint32_t seed = 2024;

static uint32_t rnd(void)
{
    seed = seed * 1664525u + 1013904223u;
    return seed >> 8;
}

static void random_secret(char *s, size_t n)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_-";
    for (size_t i = 0; i < n; i++)
        s[i] = a[rnd() % (sizeof(a) - 1)];
    s[n] = '\0';
}

/* Common English words, the ones the patterns' literals are made of among
 * them at their ordinary rank. */
static const char *const common[] = {
    "the",   "of",     "and",     "to",    "a",     "in",     "is",    "you",   "that",  "it",
    "he",    "was",    "for",     "on",    "are",   "as",     "with",  "his",   "they",  "I",
    "at",    "be",     "this",    "have",  "from",  "or",     "one",   "had",   "by",    "word",
    "but",   "not",    "what",    "all",   "were",  "we",     "when",  "your",  "can",   "said",
    "there", "use",    "an",      "each",  "which", "she",    "do",    "how",   "their", "if",
    "will",  "up",     "other",   "about", "out",   "many",   "then",  "them",  "these", "so",
    "some",  "her",    "would",   "make",  "like",  "him",    "into",  "time",  "has",   "look",
    "two",   "more",   "write",   "go",    "see",   "number", "no",    "way",   "could", "people",
    "my",    "than",   "first",   "water", "been",  "call",   "who",   "oil",   "its",   "now",
    "find",  "long",   "down",    "day",   "did",   "get",    "come",  "made",  "may",   "part",
    "user",  "system", "request", "api",   "token", "data",   "value", "result"};

/* JSON-ish API output: sentences of common words, ids, hex digests, base64
 * blobs, URLs. With `escapes`, the URLs carry %XX escapes, so decoded
 * views are scanned as well; with `dense`, every word is one that starts a
 * pattern (the slow case: a regex try at each). */
static char *make_body(bool escapes, bool dense)
{
    static const char *const trig[] = {"you",    "user",   "system", "token", "api",
                                       "ignore", "secret", "bearer", "forget"};
    char *b = cb_xmalloc(BODY + 256);
    size_t o = 0;
    while (o < BODY) {
        char chunk[256];
        int n;
        switch (rnd() % 8) {
        case 0:
            n = snprintf(chunk, sizeof(chunk), "{\"id\":%u,\"sha\":\"%08x%08x%08x\"},", rnd(),
                         rnd(), rnd(), rnd());
            break;
        case 1:
            n = snprintf(chunk, sizeof(chunk), "\"blob\":\"QUJD%06xRUZHSElK%06x==\",", rnd(),
                         rnd());
            break;
        case 2:
            n = snprintf(chunk, sizeof(chunk), "\"url\":\"https://x.example.com/v1/%s?q=%s%u\",",
                         common[rnd() % 108], escapes ? "a%20b%2Fc" : "a+b", rnd());
            break;
        default:
            if (dense)
                n = snprintf(chunk, sizeof(chunk), "%s %s %s %s. ", trig[rnd() % 9],
                             trig[rnd() % 9], trig[rnd() % 9], trig[rnd() % 9]);
            else
                n = snprintf(chunk, sizeof(chunk), "%s %s %s %s %s %s. ", common[rnd() % 108],
                             common[rnd() % 108], common[rnd() % 108], common[rnd() % 108],
                             common[rnd() % 108], common[rnd() % 108]);
        }
        memcpy(b + o, chunk, (size_t)n);
        o += (size_t)n;
    }
    return b;
}

static double mibs(uint64_t ns, size_t bytes)
{
    return (double)bytes / (1 << 20) / ((double)ns / 1e9);
}

typedef void (*work_fn)(void *ctx);

static uint64_t best(work_fn fn, void *ctx)
{
    uint64_t b = UINT64_MAX;
    for (int r = 0; r < ROUNDS; r++) {
        uint64_t t0 = cb_now_mono_ns();
        fn(ctx);
        uint64_t t = cb_now_mono_ns() - t0;
        b = t < b ? t : b;
    }
    return b;
}

struct ctx {
    const struct cb_leak_scanner *sc;
    const char *body;
    char secrets[SECRETS][48];
    int found;
    size_t sink;
};

static void do_memchr(void *p)
{
    struct ctx *c = p;
    c->sink += memchr(c->body, '\x01', BODY) != NULL;
}

static void do_memmem(void *p)
{
    struct ctx *c = p;
    c->sink += memmem(c->body, BODY, c->secrets[0], strlen(c->secrets[0])) != NULL;
}

/* Per-secret scanning: memmem of each secret in 10 forms (approximated by
 * 10 distinct needles per secret). */
static void do_memmem_all(void *p)
{
    struct ctx *c = p;
    for (int s = 0; s < SECRETS; s++)
        for (int f = 0; f < 10; f++)
            c->sink += memmem(c->body, BODY, c->secrets[s] + f, 20) != NULL;
}

static void do_scan(void *p)
{
    struct ctx *c = p;
    struct cb_leak_report rep;
    c->found = cb_leak_scan(c->sc, c->body, BODY, &rep, NULL);
}

static void do_redact(void *p)
{
    struct ctx *c = p;
    char *out = NULL;
    size_t n, count;
    cb_leak_redact(c->sc, c->body, BODY, &out, &n, &count, NULL);
    c->sink += count;
    free(out);
}

/* Plants secret i in form i % 6 of the forms added later: reversed,
 * base32, spaced out, every character \u-escaped, 16 characters of it,
 * UTF-16. */
static void plant_new(char *body, const char *secret, int i)
{
    char enc[320];
    size_t n = strlen(secret), o = 0;
    static const char b32a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    switch (i % 6) {
    case 0:
        for (size_t k = 0; k < n; k++)
            enc[o++] = secret[n - 1 - k];
        break;
    case 1: {
        uint32_t acc = 0;
        int bits = 0;
        for (size_t k = 0; k < n; k++) {
            acc = acc << 8 | (unsigned char)secret[k];
            for (bits += 8; bits >= 5; bits -= 5)
                enc[o++] = b32a[(acc >> (bits - 5)) & 31];
        }
        if (bits > 0)
            enc[o++] = b32a[(acc << (5 - bits)) & 31];
        break;
    }
    case 2:
        for (size_t k = 0; k < n; k++) {
            enc[o++] = secret[k];
            enc[o++] = ' ';
        }
        break;
    case 3:
        for (size_t k = 0; k < n; k++)
            o += (size_t)snprintf(enc + o, sizeof(enc) - o, "\\u%04x", (unsigned char)secret[k]);
        break;
    case 4:
        memcpy(enc, secret + 4, 16);
        o = 16;
        break;
    default:
        for (size_t k = 0; k < n; k++) {
            enc[o++] = secret[k];
            enc[o++] = '\0';
        }
    }
    memcpy(body + (size_t)i * (BODY / 40) + 7, enc, o);
}

/* Plants secret i in form i % 4 (plain, base64, hex, URL-encoded). */
static void plant(char *body, const char *secret, int i)
{
    char enc[160];
    size_t n = strlen(secret);
    if (i % 4 == 1) {
        static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        size_t o = 0;
        for (size_t k = 0; k + 2 < n; k += 3) {
            uint32_t v = (uint32_t)(unsigned char)secret[k] << 16 |
                         (uint32_t)(unsigned char)secret[k + 1] << 8 | (unsigned char)secret[k + 2];
            for (int j = 3; j >= 0; j--)
                enc[o++] = a[(v >> (6 * j)) & 63];
        }
        enc[o] = '\0';
    } else if (i % 4 == 2) {
        cb_hex_encode((const unsigned char *)secret, n, enc);
    } else if (i % 4 == 3) {
        for (size_t k = 0; k < n; k++)
            snprintf(enc + 3 * k, 4, "%%%02X", (unsigned char)secret[k]);
    } else {
        memcpy(enc, secret, n + 1);
    }
    memcpy(body + (size_t)i * (BODY / 40), enc, strlen(enc));
}

int main(void)
{
    struct ctx c = {0};
    const char *ptrs[SECRETS];
    size_t lens[SECRETS];
    for (int i = 0; i < SECRETS; i++) {
        lens[i] = 24 + rnd() % 17;
        random_secret(c.secrets[i], lens[i]);
        ptrs[i] = c.secrets[i];
    }
    struct cb_leak_scanner *sc = cb_leak_scanner_new(NULL, ptrs, lens, SECRETS, NULL);
    if (sc == NULL)
        return 1;
    c.sc = sc;
    char *plain = make_body(false, false), *escaped = make_body(true, false);
    char *planted = make_body(false, false), *dense = make_body(false, true);
    char *planted_new = make_body(false, false);
    for (int i = 0; i < 12; i++) {
        plant(planted, c.secrets[i], i);
        plant_new(planted_new, c.secrets[i + 12], i);
    }
    printf("leak scan: %u KiB body, %d secrets (all encodings), %zu patterns, best of %d\n",
           BODY >> 10, SECRETS, cb__pattern_count(), ROUNDS);
    c.body = plain;
    printf("  baseline memchr                 %9.0f MiB/s\n", mibs(best(do_memchr, &c), BODY));
    double mm = mibs(best(do_memmem, &c), BODY);
    printf("  baseline memmem, 1 needle       %9.0f MiB/s\n", mm);
    printf("  baseline memmem, 1000 needles   %9.1f MiB/s  (a scan per secret and form)\n",
           mibs(best(do_memmem_all, &c), BODY));
    double s1 = mibs(best(do_scan, &c), BODY);
    printf("  cb_leak_scan, text              %9.0f MiB/s  (%.3fx memmem; found=%d)\n", s1, s1 / mm,
           c.found);
    c.body = escaped;
    double s2 = mibs(best(do_scan, &c), BODY);
    printf("  cb_leak_scan, text with %%XX     %9.0f MiB/s  (found=%d)\n", s2, c.found);
    c.body = planted;
    double s3 = mibs(best(do_scan, &c), BODY);
    printf("  cb_leak_scan, 12 secrets planted %8.0f MiB/s  (found=%d)\n", s3, c.found);
    printf("  cb_leak_redact, 12 planted      %9.0f MiB/s\n", mibs(best(do_redact, &c), BODY));
    c.body = planted_new;
    double s5 = mibs(best(do_scan, &c), BODY);
    printf("  cb_leak_scan, 12 planted in the forms added later %.0f MiB/s  (found=%d)\n", s5,
           c.found);
    printf("  cb_leak_redact, the same        %9.0f MiB/s\n", mibs(best(do_redact, &c), BODY));
    c.body = dense;
    double s4 = mibs(best(do_scan, &c), BODY);
    printf("  cb_leak_scan, only trigger words %8.0f MiB/s  (worst case, not the target)\n", s4);
    double worst = s1 < s2 ? s1 : s2;
    worst = worst < s3 ? worst : s3;
    worst = worst < s5 ? worst : s5;
    printf("  target >= 300 MiB/s: %s (slowest of the scans above but the last: %.0f MiB/s)\n",
           worst >= 300 ? "met" : "MISSED", worst);
    free(dense);
    free(plain);
    free(escaped);
    free(planted);
    free(planted_new);
    cb_leak_scanner_free(sc);
    return (int)(c.sink & 0);
}
