/* json_fmt: validates, pretty-prints, minifies, lists keys of, or extracts
 * a value from a JSON document given as a string.
 * Params: {"operation": "validate"|"format"|"minify"|"keys"|"extract",
 *          "input": string, "path"?: string (extract), "indent"?: 0..16
 *          (format, default 2)}
 * Invalid JSON gives {"error": "invalid JSON at line L, column C: ..."}
 * (validate instead answers {"valid": false, "error", "line", "column",
 * "offset"}). Paths look like a.b[0].c, with ["key"] for awkward keys and
 * an optional leading "$". */
#define CLAWBOX_TOOL_IMPLEMENTATION
#include "clawbox_tool.h"

#include <string.h>

static struct cb_json *error_value(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static struct cb_json *error_value(const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    struct cb_json *out = cb_json_new_object();

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    cb_json_set(out, "error", cb_json_new_string(msg));
    return out;
}

static struct cb_json *parse_error(const struct cb_tool_error *e)
{
    return error_value("invalid JSON at line %zu, column %zu (offset %zu): %s", e->line, e->column,
                       e->offset, e->msg);
}

static struct cb_json *op_validate(const char *s, size_t n)
{
    struct cb_tool_error e;
    struct cb_json *doc = cb_json_parse(s, n, &e), *out = cb_json_new_object();

    cb_json_set(out, "valid", cb_json_new_bool(doc != NULL));
    if (doc) {
        cb_json_set(out, "type", cb_json_new_string(cb_json_type_name(doc->type)));
    } else {
        cb_json_set(out, "error", cb_json_new_string(e.msg));
        cb_json_set(out, "line", cb_json_new_int((long long)e.line));
        cb_json_set(out, "column", cb_json_new_int((long long)e.column));
        cb_json_set(out, "offset", cb_json_new_int((long long)e.offset));
    }
    cb_json_free(doc);
    return out;
}

static struct cb_json *op_serialize(const struct cb_json *doc, int indent)
{
    size_t len;
    char *text = cb_json_serialize(doc, indent, &len);
    struct cb_json *out;

    if (!text)
        return error_value("formatted output too large");
    out = cb_json_new_object();
    cb_json_set(out, "output", cb_json_new_stringn(text, len));
    free(text);
    return out;
}

static struct cb_json *op_keys(const struct cb_json *doc)
{
    struct cb_json *keys, *out;

    if (!cb_json_is(doc, CB_JSON_OBJECT))
        return error_value("keys needs a JSON object, got %s", cb_json_type_name(doc->type));
    keys = cb_json_new_array();
    for (size_t i = 0; i < doc->count; i++)
        cb_json_append(keys, cb_json_new_stringn(doc->items[i].key, doc->items[i].key_len));
    out = cb_json_new_object();
    cb_json_set(out, "keys", keys);
    cb_json_set(out, "count", cb_json_new_int((long long)doc->count));
    return out;
}

/* ---- paths ---- */

struct path {
    const char *s;
    size_t len;
    size_t pos;
    char err[256];
};

/* Follows a ["key"] step; p->pos is just past the '['. */
static int step_quoted(struct path *p, size_t start, const struct cb_json **cur)
{
    size_t k = ++p->pos;
    const struct cb_json *next;

    while (p->pos < p->len && p->s[p->pos] != '"')
        p->pos++;
    if (p->pos + 1 >= p->len || p->s[p->pos + 1] != ']') {
        snprintf(p->err, sizeof(p->err), "invalid path at position %zu: unterminated [\"key\"]",
                 start);
        return -1;
    }
    next = cb_json_getn(*cur, p->s + k, p->pos - k);
    if (!next) {
        snprintf(p->err, sizeof(p->err), "path not found: no key \"%.*s\" at position %zu",
                 (int)(p->pos - k), p->s + k, start);
        return -1;
    }
    p->pos += 2;
    *cur = next;
    return 0;
}

/* Follows one "[N]" or "[\"key\"]" step from *cur. Returns 0, or -1 with
 * p->err set. */
static int step_bracket(struct path *p, const struct cb_json **cur)
{
    size_t start = p->pos++, idx = 0, digits = 0;

    if (p->pos < p->len && p->s[p->pos] == '"')
        return step_quoted(p, start, cur);
    while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9' && digits < 18)
        idx = idx * 10 + (size_t)(p->s[p->pos++] - '0'), digits++;
    if (!digits || p->pos >= p->len || p->s[p->pos] != ']') {
        snprintf(p->err, sizeof(p->err),
                 "invalid path at position %zu: expected [index] or [\"key\"]", start);
        return -1;
    }
    p->pos++;
    if (!cb_json_is(*cur, CB_JSON_ARRAY)) {
        snprintf(p->err, sizeof(p->err), "path not found: [%zu] at position %zu applies to %s", idx,
                 start, cb_json_type_name((*cur)->type));
        return -1;
    }
    if (idx >= (*cur)->count) {
        snprintf(p->err, sizeof(p->err),
                 "path not found: index %zu at position %zu is out of range (length %zu)", idx,
                 start, (*cur)->count);
        return -1;
    }
    *cur = (*cur)->items[idx].value;
    return 0;
}

/* Follows one bare key (up to '.', '[' or the end) from *cur. */
static int step_key(struct path *p, const struct cb_json **cur)
{
    size_t start = p->pos;
    const struct cb_json *next;

    while (p->pos < p->len && p->s[p->pos] != '.' && p->s[p->pos] != '[')
        p->pos++;
    if (p->pos == start) {
        snprintf(p->err, sizeof(p->err), "invalid path at position %zu: empty key", start);
        return -1;
    }
    next = cb_json_getn(*cur, p->s + start, p->pos - start);
    if (!next) {
        snprintf(p->err, sizeof(p->err), "path not found: no key \"%.*s\" at position %zu%s",
                 (int)(p->pos - start), p->s + start, start,
                 cb_json_is(*cur, CB_JSON_OBJECT) ? "" : " (not an object)");
        return -1;
    }
    *cur = next;
    return 0;
}

/* Walks the path from root; NULL with p->err on failure. */
static const struct cb_json *follow(struct path *p, const struct cb_json *root)
{
    const struct cb_json *cur = root;
    int first = 1;

    if (p->len > 0 && p->s[0] == '$')
        p->pos = 1, first = 0;
    while (p->pos < p->len) {
        int rc;
        if (p->s[p->pos] == '[') {
            rc = step_bracket(p, &cur);
        } else {
            if (p->s[p->pos] == '.') {
                p->pos++;
            } else if (!first) {
                snprintf(p->err, sizeof(p->err),
                         "invalid path at position %zu: expected '.' or '['", p->pos);
                return NULL;
            }
            rc = step_key(p, &cur);
        }
        if (rc)
            return NULL;
        first = 0;
    }
    return cur;
}

static struct cb_json *op_extract(const struct cb_json *doc, const struct cb_json *pathv)
{
    struct path p;
    const struct cb_json *v;
    struct cb_json *out;

    if (!cb_json_str(pathv))
        return error_value("invalid input: extract needs 'path' (string), e.g. \"a.b[0].c\"");
    memset(&p, 0, sizeof(p));
    p.s = pathv->text;
    p.len = pathv->text_len;
    if (!(v = follow(&p, doc)))
        return error_value("%s", p.err);
    out = cb_json_new_object();
    cb_json_set(out, "path", cb_json_new_stringn(p.s, p.len));
    cb_json_set(out, "value", cb_json_clone(v));
    cb_json_set(out, "type", cb_json_new_string(cb_json_type_name(v->type)));
    return out;
}

/* ---- dispatch ---- */

static int get_indent(const struct cb_json *params, int *indent)
{
    const struct cb_json *v = cb_json_get(params, "indent");
    long long i;

    *indent = 2;
    if (!v || cb_json_is(v, CB_JSON_NULL))
        return 0;
    if (cb_json_integer(v, &i) || i < 0 || i > 16)
        return -1;
    *indent = (int)i;
    return 0;
}

static int known_op(const char *op)
{
    static const char *const ops[] = {"validate", "format", "minify", "keys", "extract"};

    for (size_t i = 0; op && i < sizeof(ops) / sizeof(ops[0]); i++)
        if (strcmp(op, ops[i]) == 0)
            return 1;
    return 0;
}

static struct cb_json *run(const struct cb_json *params)
{
    const char *op = cb_json_str(cb_json_get(params, "operation"));
    const struct cb_json *input = cb_json_get(params, "input");
    struct cb_tool_error e;
    struct cb_json *doc, *out;
    int indent;

    if (!known_op(op))
        return error_value("invalid input: 'operation' must be one of validate, format, minify, "
                           "keys, extract");
    if (!cb_json_str(input))
        return error_value("invalid input: 'input' must be a string containing JSON");
    if (get_indent(params, &indent))
        return error_value("invalid input: 'indent' must be an integer from 0 to 16");
    if (strcmp(op, "validate") == 0)
        return op_validate(input->text, input->text_len);
    if (!(doc = cb_json_parse(input->text, input->text_len, &e)))
        return parse_error(&e);
    if (strcmp(op, "format") == 0)
        out = op_serialize(doc, indent);
    else if (strcmp(op, "minify") == 0)
        out = op_serialize(doc, 0);
    else if (strcmp(op, "keys") == 0)
        out = op_keys(doc);
    else
        out = op_extract(doc, cb_json_get(params, "path"));
    cb_json_free(doc);
    return out;
}

int main(void)
{
    struct cb_tool_error err;
    struct cb_json *params, *out;

    if (cb_read_params(&params, &err)) {
        cb_output_error("invalid input: %s", err.msg);
        return 0;
    }
    out = run(params);
    cb_output(out);
    cb_json_free(out);
    cb_json_free(params);
    return 0;
}
