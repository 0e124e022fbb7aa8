/* Renders the option table as the Markdown reference in
 * docs/configuration.md (`clawbox config-reference` prints it; a test keeps
 * the file in step with the table). */
#include "config/config.h"
#include "config/config_table.h"

#include <inttypes.h>
#include <string.h>

static const char *type_name(const struct cb__opt *o)
{
    switch (o->type) {
    case CB__OPT_BOOL:
        return "bool";
    case CB__OPT_UINT:
        return "integer";
    case CB__OPT_STRLIST:
        return "array of strings";
    case CB__OPT_OPT_PATH:
        return "path (optional)";
    case CB__OPT_PATH:
        return "path";
    default:
        return "string";
    }
}

/* An enum's choices are written "json|text" in the table; a | inside a
 * Markdown table cell would end the cell. */
static int render_type(struct cb_buf *out, const struct cb__opt *o)
{
    if (o->type != CB__OPT_ENUM)
        return cb_buf_puts(out, type_name(o));
    int r = cb_buf_puts(out, "one of `");
    for (const char *c = o->choices; *c != '\0' && r == 0; c++)
        r = *c == '|' ? cb_buf_puts(out, "`, `") : cb_buf_append(out, c, 1);
    return r | cb_buf_puts(out, "`");
}

static int render_default(struct cb_buf *out, const struct cb__opt *o)
{
    if (o->def == NULL)
        return cb_buf_puts(out, "unset");
    if (o->def[0] == '\0' && o->type != CB__OPT_STRLIST)
        return cb_buf_puts(out, "`\"\"`");
    if (o->type == CB__OPT_STRLIST)
        return cb_buf_printf(out, "`[%s]`", o->def);
    return cb_buf_printf(out, "`%s`", o->def);
}

static int render_range(struct cb_buf *out, const struct cb__opt *o)
{
    if (o->type != CB__OPT_UINT)
        return cb_buf_puts(out, "");
    if (o->max == UINT64_MAX)
        return cb_buf_printf(out, "≥ %" PRIu64, o->min);
    return cb_buf_printf(out, "%" PRIu64 "–%" PRIu64, o->min, o->max);
}

static int render_rows(struct cb_buf *out, const struct cb__opt *opts, size_t n)
{
    const char *section = "";
    int r = 0;
    for (size_t i = 0; i < n && r == 0; i++) {
        const struct cb__opt *o = &opts[i];
        if (strcmp(section, o->section) != 0) {
            section = o->section;
            r |= cb_buf_printf(out,
                               "\n## `[%s]`\n\n| key | type | default | range | env | "
                               "description |\n|---|---|---|---|---|---|\n",
                               section);
        }
        r |= cb_buf_printf(out, "| `%s` | ", o->key);
        r |= render_type(out, o);
        r |= cb_buf_puts(out, " | ");
        r |= render_default(out, o);
        r |= cb_buf_puts(out, " | ");
        r |= render_range(out, o);
        r |= cb_buf_printf(out, " | %s%s%s | %s |\n", o->env ? "`" : "", o->env ? o->env : "",
                           o->env ? "`" : "", o->doc);
    }
    return r;
}

int cb_config_render_reference(struct cb_buf *out)
{
    int r = cb_buf_puts(
        out, "# Configuration reference\n\n"
             "Generated from the option table in `src/lib/config/config_table.c` "
             "by `clawbox config-reference`; do not edit by hand.\n\n"
             "Every key is optional. Order of precedence: built-in default, then "
             "the TOML file, then the environment variable, then `clawbox serve --host/--port`. "
             "Paths starting with "
             "`~/` are expanded with `$HOME`. An unknown key is a warning; a wrong "
             "type or out-of-range value is an error naming the key, the line and "
             "the allowed range. Keys marked (clawbox) are not in the reference "
             "implementation. Keys marked (not used yet) are read and validated for a feature that "
             "is not built yet, so a configuration that sets them keeps working.\n");
    r |= render_rows(out, cb__config_opts, cb__config_nopts);
    r |= render_rows(out, cb__template_opts, cb__template_nopts);
    return r ? -1 : 0;
}
