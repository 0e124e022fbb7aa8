/* Image templates edited as text: a template is its header line
 * `[images.templates.NAME]` and every line up to the next table header. */
#include "config/templates.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/toml.h"
#include "core/buf.h"
#include "core/util.h"

#define CONFIG_TEXT_MAX (4u * 1024 * 1024)

/* The line [p, end) without its trailing CR and blanks around it. */
static bool line_is(const char *p, const char *end, const char *want)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    while (end > p && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
        end--;
    size_t n = strlen(want);
    return (size_t)(end - p) == n && memcmp(p, want, n) == 0;
}

static bool is_header(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    return p < end && *p == '[';
}

/* Where template `name` starts and ends in text; false when absent. */
static bool find_template(const char *text, size_t len, const char *name, size_t *from, size_t *to)
{
    char header[CB_NAME_MAX + 32];
    snprintf(header, sizeof(header), "[images.templates.%s]", name);
    const char *end = text + len;
    bool in = false;
    for (const char *p = text; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *eol = nl ? nl : end, *next = nl ? nl + 1 : end;
        if (in && is_header(p, eol)) {
            *to = (size_t)(p - text);
            return true;
        }
        if (!in && line_is(p, eol, header)) {
            in = true;
            *from = (size_t)(p - text);
        }
        p = next;
    }
    *to = len;
    return in;
}

static void put_strlist(struct cb_buf *b, const char *key, const struct cb_strlist *l)
{
    if (l == NULL || l->len == 0)
        return;
    cb_buf_printf(b, "%s = [", key);
    for (size_t i = 0; i < l->len; i++) {
        cb_buf_puts(b, i ? ", " : "");
        cb__toml_quote(b, l->items[i]);
    }
    cb_buf_puts(b, "]\n");
}

int cb_template_remove(const char *text, size_t len, const char *name, char **out,
                       struct cb_error *err)
{
    size_t from = 0, to = 0;
    if (!cb_name_valid(name) || !find_template(text, len, name, &from, &to))
        return cb_error_set(err, -ENOENT, "no image template '%s' in the config", name);
    struct cb_buf b;
    cb_buf_init(&b, CONFIG_TEXT_MAX);
    cb_buf_append(&b, text, from);
    cb_buf_append(&b, text + to, len - to);
    *out = cb_buf_steal(&b, NULL);
    return 0;
}

int cb_template_put(const char *text, size_t len, const struct cb_template_spec *t, char **out,
                    struct cb_error *err)
{
    if (!cb_name_valid(t->name))
        return cb_error_set(err, -EINVAL, "'%s' is not a template name (1-64 of A-Z a-z 0-9 _ -)",
                            t->name);
    if (t->image == NULL || t->image[0] == '\0')
        return cb_error_set(err, -EINVAL, "a template needs an image");
    char *rest = NULL;
    size_t n = len;
    if (cb_template_remove(text, len, t->name, &rest, NULL) == 0)
        n = strlen(rest);
    const char *base = rest ? rest : text;
    struct cb_buf b;
    cb_buf_init(&b, CONFIG_TEXT_MAX);
    cb_buf_append(&b, base, n);
    if (n > 0 && base[n - 1] != '\n')
        cb_buf_puts(&b, "\n");
    cb_buf_printf(&b, "\n[images.templates.%s]\nimage = ", t->name);
    cb__toml_quote(&b, t->image);
    cb_buf_puts(&b, "\n");
    if (t->description) {
        cb_buf_puts(&b, "description = ");
        cb__toml_quote(&b, t->description);
        cb_buf_puts(&b, "\n");
    }
    put_strlist(&b, "network_allowlist", t->network_allowlist);
    put_strlist(&b, "credentials", t->credentials);
    free(rest);
    struct cb_config *cfg = NULL;
    struct cb_config_diag diag = {0};
    struct cb_error why = {0};
    int r = cb_config_load_text("the new config", b.data, b.len, &cfg, &diag, &why);
    cb_config_free(cfg);
    cb_config_diag_free(&diag);
    if (r < 0) {
        cb_buf_free(&b);
        return cb_error_set(err, -EINVAL, "the config would not load with this template: %s",
                            why.msg);
    }
    *out = cb_buf_steal(&b, NULL);
    return 0;
}

const struct cb_image_template *cb_template_find(const struct cb_config *cfg, const char *name)
{
    for (size_t i = 0; cfg && name && i < cfg->n_templates; i++)
        if (strcmp(cfg->templates[i].name, name) == 0)
            return &cfg->templates[i];
    return NULL;
}

static json_t *strlist_json(const struct cb_strlist *l)
{
    json_t *a = json_array();
    for (size_t i = 0; i < l->len; i++)
        json_array_append_new(a, json_string(l->items[i]));
    return a;
}

json_t *cb_template_spawn_body(const struct cb_image_template *t, const char *task)
{
    json_t *caps = json_pack("{s:o, s:o}", "network_allowlist", strlist_json(&t->network_allowlist),
                             "credentials", strlist_json(&t->credentials));
    if (t->max_lifetime_ms > 0)
        json_object_set_new(caps, "resources",
                            json_pack("{s:I}", "timeout_ms", (json_int_t)t->max_lifetime_ms));
    json_t *body = json_pack("{s:s, s:s, s:o}", "task", task ? task : "", "image", t->image,
                             "capabilities", caps);
    if (t->has_command)
        json_object_set_new(body, "command", strlist_json(&t->command));
    return body;
}
