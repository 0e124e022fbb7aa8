/* Scalar values of the TOML reader: strings (via toml_scan.c), booleans,
 * integers, floats and the four date/time types. */
#include "config/toml_scan.h"
#include "core/util.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Longest number or date text quoted back in an error message. */
#define QUOTE_MAX 40

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static char char_at(const struct cb__toml_scan *s, const char *p)
{
    return p < s->end ? *p : '\0';
}

static bool digits_at(const struct cb__toml_scan *s, const char *p, int n)
{
    for (int i = 0; i < n; i++)
        if (!is_digit(char_at(s, p + i)))
            return false;
    return true;
}

static int num_at(const char *p, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++)
        v = v * 10 + (p[i] - '0');
    return v;
}

static int days_in_month(int y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

/* YYYY-MM-DD at *pp; advances *pp past it. */
static int parse_date(struct cb__toml_scan *s, const char **pp)
{
    const char *p = *pp;
    if (!digits_at(s, p, 4) || char_at(s, p + 4) != '-' || !digits_at(s, p + 5, 2) ||
        char_at(s, p + 7) != '-' || !digits_at(s, p + 8, 2))
        return cb__toml_fail(s, "invalid date, expected YYYY-MM-DD");
    int y = num_at(p, 4), m = num_at(p + 5, 2), d = num_at(p + 8, 2);
    if (m < 1 || m > 12)
        return cb__toml_fail(s, "month %02d is out of range", m);
    if (d < 1 || d > days_in_month(y, m))
        return cb__toml_fail(s, "day %02d is out of range for %04d-%02d", d, y, m);
    *pp = p + 10;
    return 0;
}

/* HH:MM:SS with optional fraction at *pp. TOML 1.0 requires the seconds. */
static int parse_time(struct cb__toml_scan *s, const char **pp)
{
    const char *p = *pp;
    if (!digits_at(s, p, 2) || char_at(s, p + 2) != ':' || !digits_at(s, p + 3, 2) ||
        char_at(s, p + 5) != ':' || !digits_at(s, p + 6, 2))
        return cb__toml_fail(s, "invalid time, expected HH:MM:SS");
    if (num_at(p, 2) > 23 || num_at(p + 3, 2) > 59 || num_at(p + 6, 2) > 60)
        return cb__toml_fail(s, "time %.8s is out of range", p);
    p += 8;
    if (char_at(s, p) == '.') {
        if (!is_digit(char_at(s, p + 1)))
            return cb__toml_fail(s, "a decimal point in a time must be followed by digits");
        for (p++; is_digit(char_at(s, p)); p++)
            ;
    }
    *pp = p;
    return 0;
}

/* Z or +HH:MM / -HH:MM at *pp. */
static int parse_offset(struct cb__toml_scan *s, const char **pp)
{
    const char *p = *pp;
    if (*p == 'Z' || *p == 'z') {
        *pp = p + 1;
        return 0;
    }
    if (!digits_at(s, p + 1, 2) || char_at(s, p + 3) != ':' || !digits_at(s, p + 4, 2))
        return cb__toml_fail(s, "invalid time offset, expected Z or +HH:MM");
    if (num_at(p + 1, 2) > 23 || num_at(p + 4, 2) > 59)
        return cb__toml_fail(s, "time offset %.6s is out of range", p);
    *pp = p + 6;
    return 0;
}

/* After a date: 'T', 't', or a space followed by a time starts the time. */
static bool time_follows(const struct cb__toml_scan *s, const char *p)
{
    char c = char_at(s, p);
    if (c == 'T' || c == 't')
        return true;
    return c == ' ' && digits_at(s, p + 1, 2) && char_at(s, p + 3) == ':';
}

static bool offset_follows(const struct cb__toml_scan *s, const char *p)
{
    char c = char_at(s, p);
    return c == 'Z' || c == 'z' || c == '+' || c == '-';
}

/* Any of the four date/time forms. The value keeps the literal text. */
static int datetime(struct cb__toml_scan *s, struct cb_toml_value *v)
{
    const char *p = s->p;
    enum cb_toml_type type = CB_TOML_TIME_LOCAL;
    int r = 0;
    if (char_at(s, p + 4) == '-') {
        type = CB_TOML_DATE_LOCAL;
        r = parse_date(s, &p);
        if (r == 0 && time_follows(s, p)) {
            p++;
            type = CB_TOML_DATETIME_LOCAL;
            r = parse_time(s, &p);
        }
        if (r == 0 && type == CB_TOML_DATETIME_LOCAL && offset_follows(s, p)) {
            type = CB_TOML_DATETIME;
            r = parse_offset(s, &p);
        }
    } else {
        r = parse_time(s, &p);
    }
    if (r < 0)
        return r;
    v->type = type;
    v->u.str.len = (size_t)(p - s->p);
    v->u.str.ptr = cb_xstrndup(s->p, v->u.str.len);
    s->p = p;
    return 0;
}

static int digit_value(char c, int radix)
{
    int d = cb_hex_digit((unsigned char)c);
    return d < radix ? d : -1;
}

/* Length of the digits at t, where single underscores may sit between two
 * digits; 0 if t does not start with a digit. */
static size_t digit_run(const char *t, size_t n, int radix)
{
    size_t i = 0;
    if (n == 0 || digit_value(t[0], radix) < 0)
        return 0;
    while (i < n) {
        if (digit_value(t[i], radix) >= 0)
            i++;
        else if (t[i] == '_' && i + 1 < n && digit_value(t[i + 1], radix) >= 0)
            i += 2;
        else
            break;
    }
    return i;
}

/* Value of a validated digit run, or -ERANGE if it does not fit an int64. */
static int accumulate(const char *t, size_t n, int radix, bool neg, int64_t *out)
{
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (t[i] == '_')
            continue;
        uint64_t d = (uint64_t)digit_value(t[i], radix);
        if (v > (limit - d) / (uint64_t)radix)
            return -ERANGE;
        v = v * (uint64_t)radix + d;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

/* 0x, 0o or 0b integers: no sign, no leading underscore. */
static int radix_int(const char *t, size_t n, struct cb_toml_value *v)
{
    int radix = t[1] == 'x' ? 16 : t[1] == 'o' ? 8 : 2;
    size_t k = digit_run(t + 2, n - 2, radix);
    if (k == 0 || k != n - 2)
        return -EINVAL;
    v->type = CB_TOML_INTEGER;
    return accumulate(t + 2, k, radix, false, &v->u.i);
}

static int to_float(const char *t, size_t n, struct cb_toml_value *v)
{
    _cleanup_free_ char *copy = cb_xmalloc(n + 1);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (t[i] != '_')
            copy[m++] = t[i];
    copy[m] = '\0';
    errno = 0;
    /* The text is already checked against the TOML grammar, so strtod sees
     * only plain decimal forms. */
    double d = strtod(copy, NULL);
    if (errno == ERANGE && isinf(d))
        return -ERANGE;
    v->type = CB_TOML_FLOAT;
    v->u.f = d;
    return 0;
}

/* Fraction and exponent after the integer part at t[j]. Returns the index
 * past them, or 0 when one is malformed. */
static size_t float_tail(const char *t, size_t n, size_t j)
{
    if (j < n && t[j] == '.') {
        size_t k = digit_run(t + j + 1, n - j - 1, 10);
        if (k == 0)
            return 0;
        j += 1 + k;
    }
    if (j < n && (t[j] == 'e' || t[j] == 'E')) {
        j++;
        if (j < n && (t[j] == '+' || t[j] == '-'))
            j++;
        size_t k = digit_run(t + j, n - j, 10);
        if (k == 0)
            return 0;
        j += k;
    }
    return j;
}

static bool special_float(const char *t, size_t n, struct cb_toml_value *v)
{
    bool neg = n > 0 && t[0] == '-';
    size_t i = n > 0 && (t[0] == '-' || t[0] == '+') ? 1 : 0;
    if (n - i != 3 || (memcmp(t + i, "inf", 3) != 0 && memcmp(t + i, "nan", 3) != 0))
        return false;
    v->type = CB_TOML_FLOAT;
    v->u.f = t[i] == 'i' ? INFINITY : NAN;
    v->u.f = neg ? -v->u.f : v->u.f;
    return true;
}

/* Integer or float text t[0..n). Returns 0, -EINVAL (with *why set when there
 * is a specific reason) or -ERANGE. */
static int parse_number(const char *t, size_t n, struct cb_toml_value *v, const char **why)
{
    if (special_float(t, n, v))
        return 0;
    if (n > 2 && t[0] == '0' && (t[1] == 'x' || t[1] == 'o' || t[1] == 'b'))
        return radix_int(t, n, v);
    size_t i = n > 0 && (t[0] == '-' || t[0] == '+') ? 1 : 0;
    size_t k = digit_run(t + i, n - i, 10);
    if (k == 0)
        return -EINVAL;
    if (t[i] == '0' && k > 1) {
        *why = "leading zeros are not allowed";
        return -EINVAL;
    }
    size_t j = float_tail(t, n, i + k);
    if (j != n)
        return -EINVAL;
    if (j > i + k)
        return to_float(t, n, v);
    v->type = CB_TOML_INTEGER;
    return accumulate(t + i, k, 10, t[0] == '-', &v->u.i);
}

/* Everything that can continue a number token, so that "12abc" is reported
 * as one bad number rather than as text after a number. */
static bool is_number_char(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
           c == '+' || c == '-' || c == '.';
}

static int number(struct cb__toml_scan *s, struct cb_toml_value *v)
{
    const char *q = s->p;
    while (q < s->end && is_number_char(*q))
        q++;
    size_t n = (size_t)(q - s->p);
    int shown = n > QUOTE_MAX ? QUOTE_MAX : (int)n;
    const char *why = NULL;
    int r = parse_number(s->p, n, v, &why);
    if (r == -ERANGE)
        return cb__toml_fail(s, "number '%.*s' is out of range", shown, s->p);
    if (r < 0 && why)
        return cb__toml_fail(s, "invalid number '%.*s': %s", shown, s->p, why);
    if (r < 0)
        return cb__toml_fail(s, "invalid number '%.*s'", shown, s->p);
    s->p = q;
    return 0;
}

static int boolean(struct cb__toml_scan *s, struct cb_toml_value *v)
{
    const char *q = s->p;
    while (q < s->end && ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z')))
        q++;
    size_t n = (size_t)(q - s->p);
    if ((n == 4 && memcmp(s->p, "true", 4) == 0) || (n == 5 && memcmp(s->p, "false", 5) == 0)) {
        v->type = CB_TOML_BOOL;
        v->u.b = n == 4;
        s->p = q;
        return 0;
    }
    return cb__toml_fail(s, "invalid value '%.*s' (strings need quotes)",
                         n > QUOTE_MAX ? QUOTE_MAX : (int)n, s->p);
}

static int string(struct cb__toml_scan *s, struct cb_toml_value *v)
{
    struct cb_buf b;
    cb_buf_init(&b, CB_TOML_MAX_INPUT);
    int r = cb__toml_string(s, &b);
    if (r < 0) {
        cb_buf_free(&b);
        return r;
    }
    v->type = CB_TOML_STRING;
    v->u.str.ptr = cb_buf_steal(&b, &v->u.str.len);
    return 0;
}

int cb__toml_scalar(struct cb__toml_scan *s, struct cb_toml_value *v)
{
    char what[32];
    char c = char_at(s, s->p);
    if (c == '"' || c == '\'')
        return string(s, v);
    if (c == 't' || c == 'f')
        return boolean(s, v);
    if (is_digit(c) && ((digits_at(s, s->p, 4) && char_at(s, s->p + 4) == '-') ||
                        (digits_at(s, s->p, 2) && char_at(s, s->p + 2) == ':')))
        return datetime(s, v);
    if (is_digit(c) || c == '+' || c == '-' || c == 'i' || c == 'n')
        return number(s, v);
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return boolean(s, v);
    return cb__toml_fail(s, "expected a value, found %s", cb__toml_describe(s, what, sizeof(what)));
}
