/* web_fetch: GETs a URL through clawbox's proxy and returns its text. HTML
 * (by content-type, or an untyped body that starts with '<') is turned into
 * plain text: script/style/noscript/template content and comments are
 * dropped, block elements become line breaks, entities are decoded and
 * whitespace is collapsed. The text is cut to max_length bytes on a
 * character boundary.
 * Params: {"url": string, "max_length"?: 1..1000000 (10000)}
 * Output: {"url","status","content_type","content","length","truncated"}
 * or {"error": "..."}. */
#define CLAWBOX_TOOL_IMPLEMENTATION
#include "clawbox_tool.h"

#include <string.h>
#include <strings.h>

#define DEFAULT_MAX_LENGTH 10000
#define LIMIT_MAX_LENGTH   1000000

enum gap { GAP_NONE, GAP_SPACE, GAP_LINE };

struct h2t {
    const char *s;
    size_t len;
    size_t pos;
    struct clawbox_buf out;
    enum gap gap; /* whitespace owed before the next visible character */
};

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

static int is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static void owe(struct h2t *h, enum gap g)
{
    if (g > h->gap)
        h->gap = g;
}

/* Emits text, paying any owed whitespace first (none at the start). */
static void emit(struct h2t *h, const char *p, size_t n)
{
    if (h->gap != GAP_NONE && h->out.len > 0)
        clawbox_buf_putc(&h->out, h->gap == GAP_LINE ? '\n' : ' ');
    h->gap = GAP_NONE;
    clawbox_buf_append(&h->out, p, n);
}

/* ---- entities ---- */

static const struct {
    const char *name;
    uint32_t cp;
} entities[] = {
    {"amp", '&'},      {"lt", '<'},        {"gt", '>'},       {"quot", '"'},     {"apos", '\''},
    {"nbsp", ' '},     {"copy", 0xA9},     {"reg", 0xAE},     {"trade", 0x2122}, {"mdash", 0x2014},
    {"ndash", 0x2013}, {"hellip", 0x2026}, {"lsquo", 0x2018}, {"rsquo", 0x2019}, {"ldquo", 0x201C},
    {"rdquo", 0x201D}, {"laquo", 0xAB},    {"raquo", 0xBB},   {"middot", 0xB7},  {"bull", 0x2022},
    {"euro", 0x20AC},  {"pound", 0xA3},    {"yen", 0xA5},     {"cent", 0xA2},    {"deg", 0xB0},
    {"times", 0xD7},   {"divide", 0xF7},   {"sect", 0xA7},
};

/* Value of the numeric reference body ("#123" or "#x1F"), U+FFFD when out
 * of range, or -1 when malformed. */
static long numeric_entity(const char *p, size_t n)
{
    int hex = n > 1 && (p[1] == 'x' || p[1] == 'X');
    size_t i = hex ? 2 : 1;
    unsigned long v = 0;

    if (i >= n)
        return -1;
    for (; i < n; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : !hex                 ? -1
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return -1;
        if (v <= 0x10FFFF)
            v = v * (hex ? 16 : 10) + (unsigned long)d;
    }
    if (v == 0 || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0xFFFD;
    return (long)v;
}

/* At '&': decodes a known entity and returns 1, or returns 0 so that the
 * '&' is kept as text. */
static int entity(struct h2t *h)
{
    size_t start = h->pos + 1, end = start;
    long cp = -1;

    while (end < h->len && end - start < 32 && h->s[end] != ';' && !is_space(h->s[end]) &&
           h->s[end] != '&' && h->s[end] != '<')
        end++;
    if (end >= h->len || h->s[end] != ';' || end == start)
        return 0;
    if (h->s[start] == '#') {
        cp = numeric_entity(h->s + start, end - start);
    } else {
        for (size_t i = 0; i < sizeof(entities) / sizeof(entities[0]); i++)
            if (strlen(entities[i].name) == end - start &&
                memcmp(entities[i].name, h->s + start, end - start) == 0)
                cp = (long)entities[i].cp;
    }
    if (cp < 0)
        return 0;
    h->pos = end + 1;
    if (cp == ' ') {
        owe(h, GAP_SPACE);
        return 1;
    }
    emit(h, "", 0);
    clawbox_buf_put_utf8(&h->out, (uint32_t)cp);
    return 1;
}

/* ---- tags ---- */

static int in_list(const char *name, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(name, *list) == 0)
            return 1;
    return 0;
}

static const char *const block_tags[] = {
    "address", "article",  "aside",   "blockquote", "body",  "br", "dd",   "details", "div", "dl",
    "dt",      "fieldset", "figure",  "footer",     "form",  "h1", "h2",   "h3",      "h4",  "h5",
    "h6",      "head",     "header",  "hr",         "html",  "li", "main", "nav",     "ol",  "p",
    "pre",     "section",  "summary", "table",      "title", "tr", "ul",   "caption", NULL,
};
static const char *const space_tags[] = {"td", "th", "img", "input", "button", "label", NULL};
static const char *const raw_tags[] = {"script", "style", "noscript", "template", NULL};

/* Finds needle (ASCII, lower-case) case-insensitively from `from`. */
static size_t find_ci(const struct h2t *h, size_t from, const char *needle)
{
    size_t n = strlen(needle);

    for (size_t i = from; i + n <= h->len; i++)
        if (strncasecmp(h->s + i, needle, n) == 0)
            return i;
    return h->len;
}

/* Skips to just past the '>' that ends the tag, honouring quoted values. */
static void skip_tag_rest(struct h2t *h)
{
    char quote = 0;

    for (; h->pos < h->len; h->pos++) {
        char c = h->s[h->pos];
        if (quote) {
            if (c == quote)
                quote = 0;
        } else if (c == '"' || c == '\'') {
            quote = c;
        } else if (c == '>') {
            h->pos++;
            return;
        }
    }
}

/* Drops everything up to and including </name>. */
static void skip_raw(struct h2t *h, const char *name)
{
    char close[16];

    snprintf(close, sizeof(close), "</%s", name);
    h->pos = find_ci(h, h->pos, close);
    skip_tag_rest(h);
}

/* At '<': handles a tag, comment or declaration; returns 0 if the '<' is
 * plain text. */
static int tag(struct h2t *h)
{
    size_t p = h->pos + 1, n = 0;
    int closing = 0;
    char name[16];

    if (h->len - h->pos >= 4 && memcmp(h->s + h->pos, "<!--", 4) == 0) {
        size_t end = find_ci(h, h->pos + 4, "-->");
        h->pos = end < h->len ? end + 3 : h->len;
        return 1;
    }
    if (p < h->len && (h->s[p] == '!' || h->s[p] == '?')) {
        skip_tag_rest(h);
        return 1;
    }
    if (p < h->len && h->s[p] == '/')
        closing = 1, p++;
    if (p >= h->len || !is_alpha(h->s[p]))
        return 0;
    while (p < h->len && (is_alpha(h->s[p]) || (h->s[p] >= '0' && h->s[p] <= '9'))) {
        if (n < sizeof(name) - 1)
            name[n++] = (char)(h->s[p] | 0x20);
        p++;
    }
    name[n] = '\0';
    h->pos = p;
    skip_tag_rest(h);
    if (!closing && in_list(name, raw_tags))
        skip_raw(h, name);
    if (in_list(name, block_tags))
        owe(h, GAP_LINE);
    else if (in_list(name, space_tags) || in_list(name, raw_tags))
        owe(h, GAP_SPACE);
    return 1;
}

/* Converts HTML to text. Returns a malloc'd string. */
static char *html_to_text(const char *s, size_t len, size_t *out_len)
{
    struct h2t h;

    memset(&h, 0, sizeof(h));
    h.s = s;
    h.len = len;
    clawbox_buf_init(&h.out, len + 16);
    while (h.pos < h.len && !h.out.failed) {
        char c = h.s[h.pos];
        if (c == '<' && tag(&h))
            continue;
        if (c == '&' && entity(&h))
            continue;
        if (is_space(c)) {
            owe(&h, GAP_SPACE);
            h.pos++;
            continue;
        }
        size_t run = h.pos + 1;
        while (run < h.len && h.s[run] != '<' && h.s[run] != '&' && !is_space(h.s[run]))
            run++;
        emit(&h, h.s + h.pos, run - h.pos);
        h.pos = run;
    }
    return clawbox_buf_steal(&h.out, out_len);
}

/* ---- tool ---- */

static int looks_like_html(const struct cb_http_response *r, const char *ctype)
{
    size_t i = 0;

    if (ctype)
        return strstr(ctype, "html") != NULL || strstr(ctype, "HTML") != NULL;
    while (i < r->body_len && is_space(r->body[i]))
        i++;
    return i < r->body_len && r->body[i] == '<';
}

static struct cb_json *result(const char *url, const struct cb_http_response *r, size_t max)
{
    const char *ctype = cb_json_str(cb_json_get(r->headers, "content-type"));
    struct cb_json *out = cb_json_new_object();
    char *text = NULL;
    const char *content = r->body;
    size_t len = r->body_len, cut;

    if (looks_like_html(r, ctype)) {
        text = html_to_text(r->body, r->body_len, &len);
        content = text;
    }
    cut = cb_utf8_truncate(content, len, max);
    cb_json_set(out, "url", cb_json_new_string(url));
    cb_json_set(out, "status", cb_json_new_int(r->status));
    cb_json_set(out, "content_type", ctype ? cb_json_new_string(ctype) : cb_json_new_null());
    cb_json_set(out, "content", cb_json_new_stringn(content, cut));
    cb_json_set(out, "length", cb_json_new_int((long long)cut));
    cb_json_set(out, "truncated", cb_json_new_bool(cut < len));
    free(text);
    return out;
}

/* Reads url and max_length; returns NULL or a message. */
static const char *read_params(const struct cb_json *params, const char **url, size_t *max)
{
    const struct cb_json *ml = cb_json_get(params, "max_length");
    long long v;

    if (!cb_json_is(params, CB_JSON_OBJECT))
        return "params must be an object";
    if (!(*url = cb_json_str(cb_json_get(params, "url"))))
        return "'url' (string) is required";
    *max = DEFAULT_MAX_LENGTH;
    if (ml && !cb_json_is(ml, CB_JSON_NULL)) {
        if (cb_json_integer(ml, &v) || v < 1 || v > LIMIT_MAX_LENGTH)
            return "'max_length' must be an integer from 1 to 1000000";
        *max = (size_t)v;
    }
    return NULL;
}

int main(void)
{
    struct cb_tool_error err;
    struct cb_http_request req = {0};
    struct cb_http_response resp = {0};
    struct cb_json *params, *out;
    const char *bad;
    size_t max;

    if (cb_read_params(&params, &err)) {
        cb_output_error("invalid input: %s", err.msg);
        return 0;
    }
    if ((bad = read_params(params, &req.url, &max)) != NULL) {
        cb_output_error("invalid input: %s", bad);
    } else if (cb_http_request(&req, &resp, &err) != 0) {
        cb_output_error("%s", err.msg);
    } else {
        out = result(req.url, &resp, max);
        cb_output(out);
        cb_json_free(out);
    }
    cb_http_response_free(&resp);
    cb_json_free(params);
    return 0;
}
