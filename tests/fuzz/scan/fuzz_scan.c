/* libFuzzer target for the leak scanner, the redactor and the output
 * sanitiser. The input is split at NUL-free '\x1f' separators: up to four
 * leading pieces are secrets, the rest is the data. Invariants:
 *   - scan and redact agree: nothing found <=> output == input, 0 markers;
 *   - the redacted output holds no known secret in any form (rescanned);
 *   - the sanitised output is JSON and holds no known secret;
 *   - the data cut into pieces at its line ends (the pieces without
 *     them): when cb_leak_pieces_clean says they are clean, each is.
 * Sanitizers catch memory errors; __builtin_trap() flags broken invariants. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "scan/leak.h"
#include "scan/sanitize.h"

#define MAX_SECRETS 4

static void check(bool cond)
{
    if (!cond)
        __builtin_trap();
}

/* Secrets spelled only with marker characters can legitimately survive in
 * the markers themselves. */
static bool marker_like(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!memchr("[]REDACTBLOK", s[i], 12))
            return false;
    return true;
}

static bool secret_left(const struct cb_leak_scanner *sc, const char *const *sec,
                        const size_t *lens, size_t n, const char *out, size_t out_len)
{
    struct cb_leak_report rep;
    cb_leak_scan(sc, out, out_len, &rep, NULL);
    for (size_t i = 0; i < rep.n; i++) {
        const struct cb_leak_finding *f = &rep.findings[i];
        if (f->kind == CB_LEAK_KNOWN_SECRET && !marker_like(sec[f->index], lens[f->index]))
            return true;
    }
    (void)n;
    return false;
}

static void check_redact(const struct cb_leak_scanner *sc, const char *const *sec,
                         const size_t *lens, size_t n, const char *data, size_t len)
{
    struct cb_leak_report rep;
    int found = cb_leak_scan(sc, data, len, &rep, NULL);
    check(found == 0 || found == 1);
    char *out = NULL;
    size_t out_len = 0, count = 0;
    check(cb_leak_redact(sc, data, len, &out, &out_len, &count, NULL) == 0);
    check(out != NULL && out[out_len] == '\0');
    if (found == 0)
        check(count == 0 && out_len == len && memcmp(out, data, len) == 0);
    else
        check(count > 0);
    check(!secret_left(sc, sec, lens, n, out, out_len));
    free(out);
}

static void check_sanitize(const struct cb_leak_scanner *sc, const char *const *sec,
                           const size_t *lens, size_t n, const char *data, size_t len)
{
    json_t *in = json_loadb(data, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    /* Output that is not JSON goes in as a string, as /execute passes it. */
    json_t *raw = in ? NULL : cb_json_text(data, len);
    json_t *out = NULL, *rep = NULL;
    int r = cb_sanitize_output(sc, in ? in : raw, &out, &rep, NULL);
    check(r == 0 && out != NULL && rep != NULL);
    char *text = json_dumps(out, JSON_COMPACT | JSON_ENCODE_ANY);
    check(text != NULL);
    check(!secret_left(sc, sec, lens, n, text, strlen(text)));
    json_int_t issues = json_integer_value(json_object_get(rep, "issues_found"));
    check(issues == (json_int_t)json_array_size(json_object_get(rep, "actions_taken")));
    if (issues == 0 && in)
        check(out == in);
    free(text);
    json_decref(out);
    json_decref(rep);
    json_decref(in);
    json_decref(raw);
}

/* cb_leak_pieces_clean joins the pieces with line ends: the data cut at
 * its own line ends joins back to itself, so the pieces can only be
 * clean when each one is. */
static void check_pieces(const struct cb_leak_scanner *sc, const char *data, size_t len)
{
    struct cb_leak_piece pieces[64];
    size_t n = 0, from = 0;
    for (size_t i = 0; i <= len && n < 64; i++)
        if (i == len || data[i] == '\n') {
            pieces[n++] = (struct cb_leak_piece){data + from, i - from};
            from = i + 1;
        }
    if (n == 64 || !cb_leak_pieces_clean(sc, pieces, n))
        return;
    for (size_t i = 0; i < n; i++) {
        struct cb_leak_report rep;
        check(cb_leak_scan(sc, pieces[i].p, pieces[i].len, &rep, NULL) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *buf, size_t size)
{
    const char *p = (const char *)buf, *end = p + size;
    const char *sec[MAX_SECRETS];
    size_t lens[MAX_SECRETS], n = 0;
    const char *sep;
    while (n < MAX_SECRETS && (sep = memchr(p, '\x1f', (size_t)(end - p))) != NULL) {
        sec[n] = p;
        lens[n++] = (size_t)(sep - p);
        p = sep + 1;
    }
    struct cb_leak_scanner *sc = cb_leak_scanner_new(NULL, sec, lens, n, NULL);
    check(sc != NULL);
    check_redact(sc, sec, lens, n, p, (size_t)(end - p));
    check_sanitize(sc, sec, lens, n, p, (size_t)(end - p));
    check_pieces(sc, p, (size_t)(end - p));
    cb_leak_scanner_free(sc);
    return 0;
}
