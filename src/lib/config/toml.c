/* TOML 1.0 reader: the document grammar (lines, headers, key/value pairs,
 * arrays, inline tables) and the rules for which tables may be defined or
 * extended where. The lexical layer is in toml_scan.c and toml_value.c. */
#include "config/toml.h"
#include "config/toml_scan.h"
#include "core/buf.h"
#include "core/util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* How a table or array came to be; this decides what may extend it later. */
enum {
    F_IMPLICIT = 1u << 0, /* table created as a parent by a [a.b] header */
    F_DEFINED = 1u << 1,  /* table opened by a [header] or [[header]] */
    F_DOTTED = 1u << 2,   /* table created by a dotted key a.b = 1 */
    F_SEALED = 1u << 3,   /* inline table or static array: complete as written */
    F_AOT = 1u << 4,      /* array created by [[header]] */
};

/* Tables with fewer items than this are searched linearly. */
#define INDEX_MIN 8
/* Longest key text quoted back in an error message. */
#define KEY_TEXT_MAX 160

/* Containers carry bookkeeping the public struct has no room for. The value
 * is the first member, so a container's value pointer is its node pointer. */
struct node {
    struct cb_toml_value v;
    unsigned flags;
    int depth;
    size_t cap;    /* slots allocated in v.u.arr.items or v.u.tbl.items */
    size_t *index; /* tables: open-addressed slots holding item index + 1 */
    size_t index_cap;
};

struct keypart {
    char *ptr;
    size_t len;
};

struct keypath {
    struct keypart *parts;
    size_t len;
    size_t cap;
};

struct parser {
    struct cb__toml_scan s;
    struct node *root;
    struct node *cur; /* table that key/value lines go into */
};

static int parse_value(struct parser *P, int depth, struct cb_toml_value **out);
static int parse_keyval(struct parser *P, struct node *base);

static struct node *as_node(const struct cb_toml_value *v)
{
    return (struct node *)(uintptr_t)v;
}

static struct node *new_node(enum cb_toml_type type, int depth, int line, unsigned flags)
{
    struct node *n = cb_xcalloc(1, sizeof(*n));
    n->v.type = type;
    n->v.line = line;
    n->flags = flags;
    n->depth = depth;
    return n;
}

static void index_put(struct node *t, size_t i)
{
    const struct cb_toml_kv *kv = &t->v.u.tbl.items[i];
    size_t mask = t->index_cap - 1;
    size_t h = (size_t)cb_fnv1a(CB_FNV1A_INIT, kv->key, kv->key_len) & mask;
    while (t->index[h] != 0)
        h = (h + 1) & mask;
    t->index[h] = i + 1;
}

/* Keeps the index at most half full so probe runs stay short. */
static void index_grow(struct node *t)
{
    size_t cap = 16;
    while (cap < t->v.u.tbl.len * 4)
        cap *= 2;
    free(t->index);
    t->index = cb_xcalloc(cap, sizeof(*t->index));
    t->index_cap = cap;
    for (size_t i = 0; i < t->v.u.tbl.len; i++)
        index_put(t, i);
}

static bool key_eq(const struct cb_toml_kv *kv, const char *k, size_t n)
{
    return kv->key_len == n && memcmp(kv->key, k, n) == 0;
}

static struct cb_toml_value *table_find(const struct node *t, const char *k, size_t n)
{
    const struct cb_toml_kv *items = t->v.u.tbl.items;
    if (t->index == NULL) {
        for (size_t i = 0; i < t->v.u.tbl.len; i++)
            if (key_eq(&items[i], k, n))
                return items[i].value;
        return NULL;
    }
    size_t mask = t->index_cap - 1;
    for (size_t h = (size_t)cb_fnv1a(CB_FNV1A_INIT, k, n) & mask; t->index[h] != 0;
         h = (h + 1) & mask)
        if (key_eq(&items[t->index[h] - 1], k, n))
            return items[t->index[h] - 1].value;
    return NULL;
}

/* Adds a copy of the key and takes ownership of v. */
static void table_add(struct node *t, const struct keypart *k, struct cb_toml_value *v)
{
    struct cb_toml_kv *kv;
    if (t->v.u.tbl.len == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 4;
        t->v.u.tbl.items = cb_xrealloc(t->v.u.tbl.items, t->cap * sizeof(*kv));
    }
    kv = &t->v.u.tbl.items[t->v.u.tbl.len++];
    kv->key = cb_xmalloc(k->len + 1);
    memcpy(kv->key, k->ptr, k->len);
    kv->key[k->len] = '\0';
    kv->key_len = k->len;
    kv->value = v;
    if (t->v.u.tbl.len < INDEX_MIN)
        return;
    if (t->index == NULL || t->v.u.tbl.len * 2 > t->index_cap)
        index_grow(t);
    else
        index_put(t, t->v.u.tbl.len - 1);
}

static void array_add(struct node *a, struct cb_toml_value *v)
{
    if (a->v.u.arr.len == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 4;
        a->v.u.arr.items = cb_xrealloc(a->v.u.arr.items, a->cap * sizeof(v));
    }
    a->v.u.arr.items[a->v.u.arr.len++] = v;
}

static int check_depth(struct parser *P, int depth)
{
    if (depth <= CB_TOML_MAX_DEPTH)
        return 0;
    return cb__toml_fail(&P->s, "nesting is deeper than %d levels", CB_TOML_MAX_DEPTH);
}

/* Creates an empty table under key k in t; *out is the new table. */
static int add_table(struct parser *P, struct node *t, const struct keypart *k, unsigned flags,
                     int line, struct node **out)
{
    if (check_depth(P, t->depth + 1) < 0)
        return -EINVAL;
    struct node *n = new_node(CB_TOML_TABLE, t->depth + 1, line, flags);
    table_add(t, k, &n->v);
    *out = n;
    return 0;
}

static void keypath_free(struct keypath *kp)
{
    for (size_t i = 0; i < kp->len; i++)
        free(kp->parts[i].ptr);
    free(kp->parts);
}

static bool is_bare_text(const struct keypart *k)
{
    for (size_t i = 0; i < k->len; i++) {
        char c = k->ptr[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return k->len > 0;
}

/* Writes the first n parts of a key as they would be written in TOML
 * (a.b."c d") into buf for messages; control bytes become '?'. */
static const char *key_text(const struct keypath *kp, size_t n, char *buf, size_t cap)
{
    struct cb_buf b;
    cb_buf_init(&b, cap - 1);
    for (size_t i = 0; i < n; i++) {
        const struct keypart *k = &kp->parts[i];
        bool quote = !is_bare_text(k);
        (void)cb_buf_puts(&b, i ? "." : "");
        (void)cb_buf_puts(&b, quote ? "\"" : "");
        for (size_t j = 0; j < k->len; j++) {
            char c = (unsigned char)k->ptr[j] < 0x20 || k->ptr[j] == 0x7F ? '?' : k->ptr[j];
            (void)cb_buf_append(&b, &c, 1);
        }
        (void)cb_buf_puts(&b, quote ? "\"" : "");
    }
    snprintf(buf, cap, "%s", b.data ? b.data : "");
    cb_buf_free(&b);
    return buf;
}

/* Reads a dotted key (a . "b" . 'c') into kp. */
static int parse_key(struct parser *P, struct keypath *kp)
{
    for (;;) {
        if (kp->len == CB_TOML_MAX_DEPTH)
            return cb__toml_fail(&P->s, "key has more than %d parts", CB_TOML_MAX_DEPTH);
        struct cb_buf b;
        cb_buf_init(&b, CB_TOML_MAX_INPUT);
        if (cb__toml_key_part(&P->s, &b) < 0) {
            cb_buf_free(&b);
            return -EINVAL;
        }
        if (kp->len == kp->cap) {
            kp->cap = kp->cap ? kp->cap * 2 : 4;
            kp->parts = cb_xrealloc(kp->parts, kp->cap * sizeof(*kp->parts));
        }
        kp->parts[kp->len].ptr = cb_buf_steal(&b, &kp->parts[kp->len].len);
        kp->len++;
        cb__toml_skip_ws(&P->s);
        if (cb__toml_eof(&P->s) || *P->s.p != '.')
            return 0;
        P->s.p++;
        cb__toml_skip_ws(&P->s);
    }
}

/* "an inline table", "a static array", "an integer", ... for messages. */
static const char *a_value(const struct cb_toml_value *v)
{
    switch (v->type) {
    case CB_TOML_TABLE:
        return as_node(v)->flags & F_SEALED ? "an inline table" : "a table";
    case CB_TOML_ARRAY:
        return as_node(v)->flags & F_AOT ? "an array of tables" : "a static array";
    case CB_TOML_STRING:
        return "a string";
    case CB_TOML_INTEGER:
        return "an integer";
    case CB_TOML_FLOAT:
        return "a float";
    case CB_TOML_BOOL:
        return "a bool";
    default:
        return "a date/time";
    }
}

/* Explains why the value v at key kp[0..n) cannot be used as a table. */
static int not_a_table(struct parser *P, const struct keypath *kp, size_t n,
                       const struct cb_toml_value *v, int line)
{
    char k[KEY_TEXT_MAX];
    key_text(kp, n, k, sizeof(k));
    if (v->type == CB_TOML_TABLE || v->type == CB_TOML_ARRAY)
        return cb__toml_fail_line(&P->s, line, "cannot extend '%s': it is %s (line %d)", k,
                                  a_value(v), v->line);
    return cb__toml_fail_line(&P->s, line, "cannot use '%s' as a table: it is %s (line %d)", k,
                              a_value(v), v->line);
}

/* Walks a header's key up to its last part, creating missing tables as
 * implicit ones. Arrays of tables resolve to their last element. */
static int header_parent(struct parser *P, const struct keypath *kp, int line, struct node **out)
{
    struct node *t = P->root;
    for (size_t i = 0; i + 1 < kp->len; i++) {
        struct cb_toml_value *v = table_find(t, kp->parts[i].ptr, kp->parts[i].len);
        if (v == NULL) {
            if (add_table(P, t, &kp->parts[i], F_IMPLICIT, line, &t) < 0)
                return -EINVAL;
        } else if (v->type == CB_TOML_ARRAY && (as_node(v)->flags & F_AOT)) {
            t = as_node(v->u.arr.items[v->u.arr.len - 1]);
        } else if (v->type == CB_TOML_TABLE && !(as_node(v)->flags & F_SEALED)) {
            t = as_node(v);
        } else {
            return not_a_table(P, kp, i + 1, v, line);
        }
    }
    *out = t;
    return 0;
}

/* [a.b]: a table may be opened once, unless it only exists so far as the
 * parent of another header. */
static int open_table(struct parser *P, const struct keypath *kp, int line)
{
    char k[KEY_TEXT_MAX];
    struct node *t;
    if (header_parent(P, kp, line, &t) < 0)
        return -EINVAL;
    const struct keypart *last = &kp->parts[kp->len - 1];
    struct cb_toml_value *v = table_find(t, last->ptr, last->len);
    if (v == NULL)
        return add_table(P, t, last, F_DEFINED, line, &P->cur);
    key_text(kp, kp->len, k, sizeof(k));
    if (v->type != CB_TOML_TABLE || (as_node(v)->flags & F_SEALED))
        return cb__toml_fail_line(&P->s, line,
                                  "cannot define table [%s]: it is already %s (line %d)", k,
                                  a_value(v), v->line);
    if (as_node(v)->flags & F_DEFINED)
        return cb__toml_fail_line(&P->s, line, "table [%s] is defined twice (first on line %d)", k,
                                  v->line);
    if (as_node(v)->flags & F_DOTTED)
        return cb__toml_fail_line(
            &P->s, line, "table [%s] was already defined by dotted keys (line %d)", k, v->line);
    P->cur = as_node(v);
    P->cur->flags = F_DEFINED;
    P->cur->v.line = line;
    return 0;
}

/* [[a.b]]: appends a table to the array of tables a.b, creating it. */
static int open_array_table(struct parser *P, const struct keypath *kp, int line)
{
    char k[KEY_TEXT_MAX];
    struct node *t;
    if (header_parent(P, kp, line, &t) < 0)
        return -EINVAL;
    const struct keypart *last = &kp->parts[kp->len - 1];
    struct cb_toml_value *v = table_find(t, last->ptr, last->len);
    if (v == NULL) {
        if (check_depth(P, t->depth + 2) < 0)
            return -EINVAL;
        v = &new_node(CB_TOML_ARRAY, t->depth + 1, line, F_AOT)->v;
        table_add(t, last, v);
    } else if (v->type != CB_TOML_ARRAY || !(as_node(v)->flags & F_AOT)) {
        key_text(kp, kp->len, k, sizeof(k));
        return cb__toml_fail_line(&P->s, line,
                                  "cannot define array of tables [[%s]]: it is already %s "
                                  "(line %d)",
                                  k, a_value(v), v->line);
    }
    P->cur = new_node(CB_TOML_TABLE, as_node(v)->depth + 1, line, F_DEFINED);
    array_add(as_node(v), &P->cur->v);
    return 0;
}

static int parse_header(struct parser *P)
{
    char what[32];
    int line = P->s.line;
    bool aot = P->s.end - P->s.p >= 2 && P->s.p[1] == '[';
    struct keypath kp = {0};
    P->s.p += aot ? 2 : 1;
    cb__toml_skip_ws(&P->s);
    int r = parse_key(P, &kp);
    if (r == 0 && (cb__toml_eof(&P->s) || *P->s.p != ']' ||
                   (aot && (P->s.end - P->s.p < 2 || P->s.p[1] != ']')))) {
        r = cb__toml_fail(&P->s, "expected '%s' to close the table header, found %s",
                          aot ? "]]" : "]", cb__toml_describe(&P->s, what, sizeof(what)));
    }
    if (r == 0) {
        P->s.p += aot ? 2 : 1;
        r = aot ? open_array_table(P, &kp, line) : open_table(P, &kp, line);
    }
    keypath_free(&kp);
    return r;
}

/* Walks the dotted part of a key (a.b in a.b.c = 1) from base. Dotted keys
 * may create tables and extend the ones they created, but not tables opened
 * by a header or written inline. */
static int dotted_parent(struct parser *P, struct node *base, const struct keypath *kp, int line,
                         struct node **out)
{
    char k[KEY_TEXT_MAX];
    struct node *t = base;
    for (size_t i = 0; i + 1 < kp->len; i++) {
        struct cb_toml_value *v = table_find(t, kp->parts[i].ptr, kp->parts[i].len);
        if (v == NULL) {
            if (add_table(P, t, &kp->parts[i], F_DOTTED, line, &t) < 0)
                return -EINVAL;
            continue;
        }
        if (v->type != CB_TOML_TABLE || (as_node(v)->flags & F_SEALED))
            return not_a_table(P, kp, i + 1, v, line);
        if (as_node(v)->flags & F_DEFINED)
            return cb__toml_fail_line(&P->s, line,
                                      "cannot add to table '%s' with dotted keys: it has its own "
                                      "header (line %d)",
                                      key_text(kp, i + 1, k, sizeof(k)), v->line);
        t = as_node(v);
        t->flags = F_DOTTED;
    }
    *out = t;
    return 0;
}

static int expect_equals(struct parser *P, const struct keypath *kp)
{
    char k[KEY_TEXT_MAX], what[32];
    cb__toml_skip_ws(&P->s);
    if (cb__toml_eof(&P->s) || *P->s.p != '=')
        return cb__toml_fail(&P->s, "expected '=' after key '%s', found %s",
                             key_text(kp, kp->len, k, sizeof(k)),
                             cb__toml_describe(&P->s, what, sizeof(what)));
    P->s.p++;
    cb__toml_skip_ws(&P->s);
    return 0;
}

/* key = value, added to base (the current table, or an inline table). */
static int parse_keyval(struct parser *P, struct node *base)
{
    char k[KEY_TEXT_MAX];
    struct keypath kp = {0};
    struct node *t = base;
    struct cb_toml_value *v = NULL, *old = NULL;
    int line = P->s.line;
    int r = parse_key(P, &kp);
    if (r == 0)
        r = expect_equals(P, &kp);
    if (r == 0)
        r = dotted_parent(P, base, &kp, line, &t);
    if (r == 0)
        old = table_find(t, kp.parts[kp.len - 1].ptr, kp.parts[kp.len - 1].len);
    if (r == 0 && old != NULL)
        r = cb__toml_fail_line(&P->s, line, "duplicate key '%s' (first defined on line %d)",
                               key_text(&kp, kp.len, k, sizeof(k)), old->line);
    if (r == 0)
        r = parse_value(P, t->depth + 1, &v);
    if (r == 0)
        table_add(t, &kp.parts[kp.len - 1], v);
    keypath_free(&kp);
    return r;
}

static int expect_either(struct parser *P, char a, char b, const char *where)
{
    char what[32];
    return cb__toml_fail(&P->s, "expected '%c' or '%c' in %s, found %s", a, b, where,
                         cb__toml_describe(&P->s, what, sizeof(what)));
}

static bool at(const struct parser *P, char c)
{
    return P->s.p < P->s.end && *P->s.p == c;
}

/* The items of [ ... ] after the opening bracket; newlines and comments may
 * appear between them and a trailing comma is allowed. */
static int array_items(struct parser *P, struct node *a)
{
    for (;;) {
        cb__toml_skip_blank(&P->s);
        if (at(P, ']'))
            break;
        struct cb_toml_value *v;
        if (parse_value(P, a->depth + 1, &v) < 0)
            return -EINVAL;
        array_add(a, v);
        cb__toml_skip_blank(&P->s);
        if (at(P, ']'))
            break;
        if (!at(P, ','))
            return expect_either(P, ',', ']', "array");
        P->s.p++;
    }
    P->s.p++;
    return 0;
}

/* The items of { ... } after the opening brace: all on one line, no trailing
 * comma (TOML 1.0). */
static int inline_items(struct parser *P, struct node *t)
{
    cb__toml_skip_ws(&P->s);
    while (!at(P, '}')) {
        if (parse_keyval(P, t) < 0)
            return -EINVAL;
        cb__toml_skip_ws(&P->s);
        if (at(P, '}'))
            break;
        if (!at(P, ','))
            return expect_either(P, ',', '}', "inline table");
        P->s.p++;
        cb__toml_skip_ws(&P->s);
        if (at(P, '}'))
            return cb__toml_fail(&P->s, "trailing comma in inline table");
    }
    P->s.p++;
    return 0;
}

/* An array or inline table that will sit at nesting level `depth`. */
static int parse_container(struct parser *P, int depth, struct cb_toml_value **out)
{
    bool array = *P->s.p == '[';
    if (check_depth(P, depth) < 0)
        return -EINVAL;
    struct node *n = new_node(array ? CB_TOML_ARRAY : CB_TOML_TABLE, depth, P->s.line, F_SEALED);
    P->s.p++;
    int r = array ? array_items(P, n) : inline_items(P, n);
    if (r < 0) {
        cb__toml_free(&n->v);
        return r;
    }
    *out = &n->v;
    return 0;
}

static int parse_value(struct parser *P, int depth, struct cb_toml_value **out)
{
    if (at(P, '[') || at(P, '{'))
        return parse_container(P, depth, out);
    struct cb_toml_value *v = cb_xcalloc(1, sizeof(*v));
    v->line = P->s.line;
    if (cb__toml_scalar(&P->s, v) < 0) {
        free(v);
        return -EINVAL;
    }
    *out = v;
    return 0;
}

/* After a header or key/value pair only a comment may follow on the line. */
static int end_line(struct parser *P)
{
    char what[32];
    cb__toml_skip_ws(&P->s);
    cb__toml_skip_comment(&P->s);
    if (cb__toml_eof(&P->s))
        return 0;
    if (cb__toml_at_newline(&P->s)) {
        cb__toml_newline(&P->s);
        return 0;
    }
    return cb__toml_fail(&P->s, "expected end of line, found %s",
                         cb__toml_describe(&P->s, what, sizeof(what)));
}

static int parse_line(struct parser *P)
{
    cb__toml_skip_ws(&P->s);
    if (cb__toml_eof(&P->s) || cb__toml_at_newline(&P->s) || at(P, '#'))
        return end_line(P);
    int r = at(P, '[') ? parse_header(P) : parse_keyval(P, P->cur);
    return r < 0 ? r : end_line(P);
}

struct cb_toml_value *cb_toml_parse(const char *data, size_t len, struct cb_error *err)
{
    if (len > CB_TOML_MAX_INPUT) {
        cb_error_set(err, -E2BIG, "line 1: document is %zu bytes, over the limit of %u", len,
                     CB_TOML_MAX_INPUT);
        return NULL;
    }
    if (data == NULL || len == 0) {
        data = "";
        len = 0;
    }
    /* A UTF-8 byte order mark is allowed only as the very first thing. */
    if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0) {
        data += 3;
        len -= 3;
    }
    if (cb__toml_check_text(data, len, err) < 0)
        return NULL;
    struct parser P = {.s = {data, data + len, data, 1, err}};
    P.root = P.cur = new_node(CB_TOML_TABLE, 0, 1, F_DEFINED);
    while (!cb__toml_eof(&P.s)) {
        if (parse_line(&P) < 0) {
            cb__toml_free(&P.root->v);
            return NULL;
        }
    }
    return &P.root->v;
}

void cb__toml_free(struct cb_toml_value *v)
{
    if (v == NULL)
        return;
    switch (v->type) {
    case CB_TOML_TABLE:
        for (size_t i = 0; i < v->u.tbl.len; i++) {
            free(v->u.tbl.items[i].key);
            cb__toml_free(v->u.tbl.items[i].value);
        }
        free(v->u.tbl.items);
        free(as_node(v)->index);
        break;
    case CB_TOML_ARRAY:
        for (size_t i = 0; i < v->u.arr.len; i++)
            cb__toml_free(v->u.arr.items[i]);
        free(v->u.arr.items);
        break;
    case CB_TOML_INTEGER:
    case CB_TOML_FLOAT:
    case CB_TOML_BOOL:
        break;
    default:
        free(v->u.str.ptr);
    }
    free(v);
}

struct cb_toml_value *cb_toml_get(const struct cb_toml_value *t, const char *key)
{
    if (t == NULL || key == NULL || t->type != CB_TOML_TABLE)
        return NULL;
    /* A plain scan: the caller's table need not have come from the parser. */
    size_t n = strlen(key);
    for (size_t i = 0; i < t->u.tbl.len; i++)
        if (key_eq(&t->u.tbl.items[i], key, n))
            return t->u.tbl.items[i].value;
    return NULL;
}

const char *cb__toml_type_name(enum cb_toml_type t)
{
    static const char *const names[] = {
        [CB_TOML_STRING] = "string",         [CB_TOML_INTEGER] = "integer",
        [CB_TOML_FLOAT] = "float",           [CB_TOML_BOOL] = "bool",
        [CB_TOML_DATETIME] = "datetime",     [CB_TOML_DATETIME_LOCAL] = "datetime-local",
        [CB_TOML_DATE_LOCAL] = "date-local", [CB_TOML_TIME_LOCAL] = "time-local",
        [CB_TOML_ARRAY] = "array",           [CB_TOML_TABLE] = "table",
    };
    if ((unsigned)t >= CB_ARRAY_LEN(names))
        return "unknown";
    return names[t];
}

void cb__toml_quote(struct cb_buf *b, const char *s)
{
    cb_buf_puts(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            cb_buf_printf(b, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            cb_buf_printf(b, "\\u%04X", *p);
        else
            cb_buf_append(b, p, 1);
    }
    cb_buf_puts(b, "\"");
}
