#include "config/config.h"
#include "config/config_table.h"
#include "config/toml.h"
#include "core/file.h"
#include "core/home.h"
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* Where the value being applied came from, for diagnostics. */
struct origin {
    const char *file;
    int line;        /* 0 when from the environment or a default */
    const char *env; /* set when from the environment */
};

static void strlist_push(struct cb_strlist *l, const char *s)
{
    l->items = cb_xrealloc(l->items, (l->len + 1) * sizeof(char *));
    l->items[l->len++] = cb_xstrdup(s);
}

static void strlist_free(struct cb_strlist *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->len; i++)
        free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->len = 0;
}

static void diag_add(struct cb_strlist *l, const struct origin *o, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void diag_add(struct cb_strlist *l, const struct origin *o, const char *fmt, ...)
{
    char msg[768];
    char where[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (o->env != NULL)
        snprintf(where, sizeof(where), "environment %s", o->env);
    else if (o->line > 0)
        snprintf(where, sizeof(where), "%s:%d", o->file, o->line);
    else
        snprintf(where, sizeof(where), "%s", o->file);
    char *line = cb_xasprintf("%s: %s", where, msg);
    strlist_push(l, line);
    free(line);
}

int cb__config_new_token(char out[65], struct cb_error *err)
{
    unsigned char raw[32];
    int r = cb_random_bytes(raw, sizeof(raw));
    if (r < 0)
        return cb_error_set(err, r, "reading random bytes for the auth token: %s", strerror(-r));
    cb_hex_encode(raw, sizeof(raw), out);
    return 0;
}

static void *field(void *base, const struct cb__opt *o)
{
    return (char *)base + o->offset;
}

static void set_string(void *base, const struct cb__opt *o, const char *s)
{
    char **p = field(base, o);
    free(*p);
    *p = s ? cb_xstrdup(s) : NULL;
}

static void split_list(struct cb_strlist *l, const char *text)
{
    strlist_free(l);
    const char *p = text;
    while (*p != '\0') {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        while (n > 0 && (*p == ' ' || *p == '\t')) {
            p++;
            n--;
        }
        while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        if (n > 0) {
            char *item = cb_xstrndup(p, n);
            strlist_push(l, item);
            free(item);
        }
        p += comma ? (size_t)(comma - p) + 1 : strlen(p);
    }
}

static bool enum_allows(const struct cb__opt *o, const char *s)
{
    size_t n = strlen(s);
    const char *p = o->choices;
    while (p != NULL && *p != '\0') {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && memcmp(p, s, n) == 0)
            return true;
        p = bar ? bar + 1 : NULL;
    }
    return false;
}

static const char *type_word(enum cb__opt_type t)
{
    switch (t) {
    case CB__OPT_BOOL:
        return "a boolean";
    case CB__OPT_UINT:
        return "an integer";
    case CB__OPT_STRLIST:
        return "an array of strings";
    default:
        return "a string";
    }
}

/* Applies a textual value (a default or an environment variable). */
static int apply_text(void *base, const struct cb__opt *o, const char *text,
                      struct cb_config_diag *diag, const struct origin *org)
{
    uint64_t v;
    switch (o->type) {
    case CB__OPT_BOOL:
        if (strcmp(text, "true") != 0 && strcmp(text, "false") != 0) {
            diag_add(&diag->errors, org, "[%s] %s must be true or false, got '%s'", o->section,
                     o->key, text);
            return -EINVAL;
        }
        *(bool *)field(base, o) = text[0] == 't';
        return 0;
    case CB__OPT_UINT:
        if (cb_parse_u64(text, strlen(text), &v) < 0 || v < o->min || v > o->max) {
            diag_add(&diag->errors, org,
                     "[%s] %s = '%s' is not an integer in the allowed range %" PRIu64 "..%" PRIu64,
                     o->section, o->key, text, o->min, o->max);
            return -EINVAL;
        }
        *(uint64_t *)field(base, o) = v;
        return 0;
    case CB__OPT_STRLIST:
        split_list(field(base, o), text);
        return 0;
    case CB__OPT_ENUM:
        if (!enum_allows(o, text)) {
            diag_add(&diag->errors, org, "[%s] %s = '%s' is not one of %s", o->section, o->key,
                     text, o->choices);
            return -EINVAL;
        }
        set_string(base, o, text);
        return 0;
    default:
        set_string(base, o, text);
        return 0;
    }
}

static int apply_toml_list(void *base, const struct cb__opt *o, const struct cb_toml_value *v,
                           struct cb_config_diag *diag, const struct origin *org)
{
    struct cb_strlist *l = field(base, o);
    for (size_t i = 0; i < v->u.arr.len; i++) {
        if (v->u.arr.items[i]->type != CB_TOML_STRING) {
            diag_add(&diag->errors, org, "[%s] %s must be an array of strings (item %zu is %s)",
                     o->section, o->key, i + 1, cb__toml_type_name(v->u.arr.items[i]->type));
            return -EINVAL;
        }
    }
    strlist_free(l);
    for (size_t i = 0; i < v->u.arr.len; i++)
        strlist_push(l, v->u.arr.items[i]->u.str.ptr);
    return 0;
}

static int apply_toml_uint(void *base, const struct cb__opt *o, const struct cb_toml_value *v,
                           struct cb_config_diag *diag, const struct origin *org)
{
    if (v->u.i < 0 || (uint64_t)v->u.i < o->min || (uint64_t)v->u.i > o->max) {
        diag_add(&diag->errors, org,
                 "[%s] %s = %" PRId64 " is out of range (allowed %" PRIu64 "..%" PRIu64 ")",
                 o->section, o->key, v->u.i, o->min, o->max);
        return -EINVAL;
    }
    *(uint64_t *)field(base, o) = (uint64_t)v->u.i;
    return 0;
}

/* Applies one TOML value to the field described by `o`, checking its type
 * and bounds. */
static int apply_toml(void *base, const struct cb__opt *o, const struct cb_toml_value *v,
                      struct cb_config_diag *diag, const struct origin *org)
{
    enum cb_toml_type want = CB_TOML_STRING;
    if (o->type == CB__OPT_BOOL)
        want = CB_TOML_BOOL;
    else if (o->type == CB__OPT_UINT)
        want = CB_TOML_INTEGER;
    else if (o->type == CB__OPT_STRLIST)
        want = CB_TOML_ARRAY;
    if (v->type != want) {
        diag_add(&diag->errors, org, "[%s] %s must be %s, got %s", o->section, o->key,
                 type_word(o->type), cb__toml_type_name(v->type));
        return -EINVAL;
    }
    switch (o->type) {
    case CB__OPT_BOOL:
        *(bool *)field(base, o) = v->u.b;
        return 0;
    case CB__OPT_UINT:
        return apply_toml_uint(base, o, v, diag, org);
    case CB__OPT_STRLIST:
        return apply_toml_list(base, o, v, diag, org);
    default:
        if (strlen(v->u.str.ptr) != v->u.str.len) {
            diag_add(&diag->errors, org, "[%s] %s must not contain NUL characters", o->section,
                     o->key);
            return -EINVAL;
        }
        return apply_text(base, o, v->u.str.ptr, diag, org);
    }
}

static const struct cb__opt *find_opt(const struct cb__opt *opts, size_t n, const char *section,
                                      const char *key)
{
    for (size_t i = 0; i < n; i++) {
        if ((section == NULL || strcmp(opts[i].section, section) == 0) &&
            strcmp(opts[i].key, key) == 0)
            return &opts[i];
    }
    return NULL;
}

static bool known_section(const char *name)
{
    for (size_t i = 0; i < cb__config_nopts; i++)
        if (strcmp(cb__config_opts[i].section, name) == 0)
            return true;
    return false;
}

static void apply_defaults(void *base, const struct cb__opt *opts, size_t n,
                           struct cb_config_diag *diag)
{
    struct origin org = {"default", 0, NULL};
    for (size_t i = 0; i < n; i++)
        if (opts[i].def != NULL)
            apply_text(base, &opts[i], opts[i].def, diag, &org);
}

static void apply_table(void *base, const struct cb__opt *opts, size_t nopts, const char *section,
                        const struct cb_toml_value *t, struct cb_config_diag *diag,
                        const char *file)
{
    for (size_t i = 0; i < t->u.tbl.len; i++) {
        const struct cb_toml_kv *kv = &t->u.tbl.items[i];
        struct origin org = {file, kv->value->line, NULL};
        const struct cb__opt *o = find_opt(opts, nopts, section, kv->key);
        if (o == NULL)
            diag_add(&diag->warnings, &org, "unknown key '%s' in [%s] (ignored)", kv->key, section);
        else
            apply_toml(base, o, kv->value, diag, &org);
    }
}

static void load_template(struct cb_config *c, const struct cb_toml_kv *kv,
                          struct cb_config_diag *diag, const char *file)
{
    struct origin org = {file, kv->value->line, NULL};
    if (kv->value->type != CB_TOML_TABLE) {
        diag_add(&diag->errors, &org, "[images.templates] %s must be a table", kv->key);
        return;
    }
    c->templates = cb_xrealloc(c->templates, (c->n_templates + 1) * sizeof(*c->templates));
    struct cb_image_template *t = &c->templates[c->n_templates++];
    memset(t, 0, sizeof(*t));
    t->name = cb_xstrdup(kv->key);
    apply_defaults(t, cb__template_opts, cb__template_nopts, diag);
    apply_table(t, cb__template_opts, cb__template_nopts, "images.templates.<name>", kv->value,
                diag, file);
    t->has_command = cb_toml_get(kv->value, "command") != NULL;
    if (t->image == NULL || t->image[0] == '\0')
        diag_add(&diag->errors, &org, "[images.templates.%s] image is required", kv->key);
}

static void load_images(struct cb_config *c, const struct cb_toml_value *images,
                        struct cb_config_diag *diag, const char *file)
{
    for (size_t i = 0; i < images->u.tbl.len; i++) {
        const struct cb_toml_kv *kv = &images->u.tbl.items[i];
        struct origin org = {file, kv->value->line, NULL};
        if (strcmp(kv->key, "templates") != 0 || kv->value->type != CB_TOML_TABLE) {
            diag_add(&diag->warnings, &org, "unknown key '%s' in [images] (ignored)", kv->key);
            continue;
        }
        for (size_t j = 0; j < kv->value->u.tbl.len; j++)
            load_template(c, &kv->value->u.tbl.items[j], diag, file);
    }
}

static void apply_document(struct cb_config *c, const struct cb_toml_value *root,
                           struct cb_config_diag *diag, const char *file)
{
    for (size_t i = 0; i < root->u.tbl.len; i++) {
        const struct cb_toml_kv *kv = &root->u.tbl.items[i];
        struct origin org = {file, kv->value->line, NULL};
        bool is_table = kv->value->type == CB_TOML_TABLE;
        if (is_table && strcmp(kv->key, "images") == 0)
            load_images(c, kv->value, diag, file);
        else if (is_table && known_section(kv->key))
            apply_table(c, cb__config_opts, cb__config_nopts, kv->key, kv->value, diag, file);
        else if (known_section(kv->key))
            diag_add(&diag->errors, &org, "[%s] must be a table, got %s", kv->key,
                     cb__toml_type_name(kv->value->type));
        else
            diag_add(&diag->warnings, &org, "unknown %s '%s' (ignored)",
                     is_table ? "section" : "key", kv->key);
    }
}

static void apply_env(struct cb_config *c, struct cb_config_diag *diag)
{
    for (size_t i = 0; i < cb__config_nopts; i++) {
        const struct cb__opt *o = &cb__config_opts[i];
        const char *v = o->env ? getenv(o->env) : NULL;
        if (v == NULL)
            continue;
        struct origin org = {"environment", 0, o->env};
        apply_text(c, o, v, diag, &org);
    }
}

static void expand_paths(struct cb_config *c)
{
    for (size_t i = 0; i < cb__config_nopts; i++) {
        const struct cb__opt *o = &cb__config_opts[i];
        char **p = field(c, o);
        if ((o->type == CB__OPT_PATH || o->type == CB__OPT_OPT_PATH) && *p != NULL) {
            char *x = cb_home_expand(*p);
            free(*p);
            *p = x;
        }
    }
}

static void validate(struct cb_config *c, struct cb_config_diag *diag, const char *file)
{
    struct origin org = {file, 0, NULL};
    if (c->server.host[0] == '\0')
        diag_add(&diag->errors, &org, "[server] host must not be empty");
    if (c->server.auth_token != NULL && c->server.auth_token[0] == '\0')
        diag_add(&diag->errors, &org, "[server] auth_token must not be empty");
    if (c->server.unix_socket != NULL && c->server.unix_socket[0] == '\0')
        diag_add(&diag->errors, &org, "[server] unix_socket must not be empty when set");
    if (c->sandbox.default_timeout_ms > c->sandbox.max_timeout_ms)
        diag_add(&diag->errors, &org,
                 "[sandbox] default_timeout_ms (%" PRIu64 ") exceeds max_timeout_ms (%" PRIu64 ")",
                 c->sandbox.default_timeout_ms, c->sandbox.max_timeout_ms);
    if (c->containers.default_timeout_ms > c->containers.max_timeout_ms)
        diag_add(&diag->errors, &org,
                 "[containers] default_timeout_ms (%" PRIu64 ") exceeds max_timeout_ms (%" PRIu64
                 ")",
                 c->containers.default_timeout_ms, c->containers.max_timeout_ms);
    if (c->containers.default_memory_mb > c->containers.max_memory_mb)
        diag_add(&diag->errors, &org,
                 "[containers] default_memory_mb (%" PRIu64 ") exceeds max_memory_mb (%" PRIu64 ")",
                 c->containers.default_memory_mb, c->containers.max_memory_mb);
    /* Each container may get its own 65536 host ids; they must fit in 32 bits. */
    if (c->containers.userns_base + (c->containers.max_containers + 1) * 65536ULL > UINT32_MAX)
        diag_add(&diag->errors, &org,
                 "[containers] userns_base + 65536 * (max_containers + 1) must stay below "
                 "4294967295");
    for (size_t i = 0; i < c->container_policy.allowed_policies.len; i++) {
        const char *p = c->container_policy.allowed_policies.items[i];
        if (strcasecmp(p, "wasm_only") != 0 && strcasecmp(p, "container") != 0 &&
            strcasecmp(p, "container_direct") != 0)
            diag_add(&diag->errors, &org,
                     "[container_policy] allowed_policies: unknown policy '%s' (allowed: "
                     "wasm_only, container, container_direct)",
                     p);
    }
}

/* Generates the random token of a config that has none. */
static int ensure_token(struct cb_config *c, struct cb_error *err)
{
    char token[65];
    if (c->server.auth_token != NULL)
        return 0;
    int r = cb__config_new_token(token, err);
    if (r < 0)
        return r;
    c->server.auth_token = cb_xstrdup(token);
    return 0;
}

/* The file holds the API token, and its mode lets other users read (or
 * change) it: they could then call the API as its owner. A warning, not an
 * error, since the reference accepted such files; the master key file,
 * which guards the credentials themselves, is refused instead. */
static void warn_token_exposed(const struct cb_toml_value *root, mode_t mode,
                               struct cb_config_diag *diag, const char *file)
{
    const struct cb_toml_value *server = cb_toml_get(root, "server");
    if ((mode & 077) == 0 || server == NULL || server->type != CB_TOML_TABLE ||
        cb_toml_get(server, "auth_token") == NULL)
        return;
    struct origin org = {file, 0, NULL};
    diag_add(&diag->warnings, &org,
             "the file holds [server] auth_token and its mode is %04o, so other users can read "
             "the token (and call the API with it); run: chmod 600 %s",
             (unsigned)(mode & 07777), file);
}

/* cb_config_load_text for text read from a file with st_mode `mode` (0:
 * not from a file, so no mode to check). */
static int load_text_mode(const char *name, const char *text, size_t len, mode_t mode,
                          struct cb_config **out, struct cb_config_diag *diag, struct cb_error *err)
{
    struct cb_config *c = cb_xcalloc(1, sizeof(*c));
    apply_defaults(c, cb__config_opts, cb__config_nopts, diag);
    if (text != NULL) {
        struct cb_error perr = {0};
        struct cb_toml_value *root = cb_toml_parse(text, len, &perr);
        if (root == NULL) {
            struct origin org = {name, 0, NULL};
            diag_add(&diag->errors, &org, "%s", perr.msg);
        } else {
            apply_document(c, root, diag, name);
            warn_token_exposed(root, mode, diag, name);
            cb__toml_free(root);
        }
    }
    apply_env(c, diag);
    expand_paths(c);
    validate(c, diag, name);
    if (diag->errors.len > 0) {
        cb_config_free(c);
        return cb_error_set(err, -EINVAL, "%s: %zu configuration error%s", name, diag->errors.len,
                            diag->errors.len == 1 ? "" : "s");
    }
    int r = ensure_token(c, err);
    if (r < 0) {
        cb_config_free(c);
        return r;
    }
    *out = c;
    return 0;
}

int cb_config_load_text(const char *name, const char *text, size_t len, struct cb_config **out,
                        struct cb_config_diag *diag, struct cb_error *err)
{
    return load_text_mode(name, text, len, 0, out, diag, err);
}

/* Reads the config file whole: exactly the size it has when opened, since
 * half a config must never be taken for the whole one. */
static int read_file(const char *path, struct cb_file *f, struct cb_error *err)
{
    int r = cb_file_load(f, AT_FDCWD, path, CB_CONFIG_MAX_FILE, CB_FILE_EXACT, err);
    if (f->failed == CB_FILE_STAT || f->failed == CB_FILE_TYPE)
        return cb_error_set(err, -EINVAL, "failed to read config from %s: not a regular file",
                            path);
    if (f->failed == CB_FILE_SIZE)
        return cb_error_set(err, -EFBIG, "config file %s is larger than %u bytes", path,
                            CB_CONFIG_MAX_FILE);
    if (f->failed == CB_FILE_SHORT)
        return cb_error_set(err, r,
                            "failed to read config from %s: it ended after %zu of %zu bytes "
                            "(changed while being read?)",
                            path, f->buf.len, (size_t)f->st.st_size);
    if (r < 0)
        return cb_error_set(err, r, "failed to read config from %s: %s", path, strerror(-r));
    return 0;
}

int cb_config_load(const char *path, struct cb_config **out, struct cb_config_diag *diag,
                   struct cb_error *err)
{
    struct cb_file f = {.fd = -1};
    if (path != NULL) {
        int r = read_file(path, &f, err);
        if (r < 0) {
            cb_file_close(&f);
            strlist_push(&diag->errors, err->msg);
            return r;
        }
    }
    int r = load_text_mode(path ? path : "defaults", f.buf.data, f.buf.len, f.st.st_mode, out, diag,
                           err);
    cb_file_close(&f);
    return r;
}

static void free_fields(void *base, const struct cb__opt *opts, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (opts[i].type == CB__OPT_STRLIST)
            strlist_free(field(base, &opts[i]));
        else if (opts[i].type != CB__OPT_BOOL && opts[i].type != CB__OPT_UINT)
            free(*(char **)field(base, &opts[i]));
    }
}

void cb_config_free(struct cb_config *c)
{
    if (c == NULL)
        return;
    free_fields(c, cb__config_opts, cb__config_nopts);
    for (size_t i = 0; i < c->n_templates; i++) {
        free(c->templates[i].name);
        free_fields(&c->templates[i], cb__template_opts, cb__template_nopts);
    }
    free(c->templates);
    free(c);
}

void cb_config_diag_free(struct cb_config_diag *d)
{
    if (d == NULL)
        return;
    strlist_free(&d->warnings);
    strlist_free(&d->errors);
}
