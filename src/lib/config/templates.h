/* Editing the image templates ([images.templates.NAME]) of a config file as
 * text, so that everything else in the file (comments, order, spacing)
 * stays as the user wrote it: `clawbox add image` and `remove image`. */
#ifndef CB_CONFIG_TEMPLATES_H
#define CB_CONFIG_TEMPLATES_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "core/error.h"

struct cb_template_spec {
    const char *name; /* cb_name_valid */
    const char *image;
    const char *description;                    /* NULL: none */
    const struct cb_strlist *network_allowlist; /* NULL: none */
    const struct cb_strlist *credentials;       /* NULL: none */
};

/* The config text with the template set (replacing one of that name, at
 * the end of the file), as a new string in *out. The result is loaded
 * once to check it: -EINVAL with the reason when it would not load. */
int cb_template_put(const char *text, size_t len, const struct cb_template_spec *t, char **out,
                    struct cb_error *err);

/* The config text without template `name`; -ENOENT when it has none. */
int cb_template_remove(const char *text, size_t len, const char *name, char **out,
                       struct cb_error *err);

/* The template called `name` in cfg, or NULL. */
const struct cb_image_template *cb_template_find(const struct cb_config *cfg, const char *name);

/* The POST /containers/spawn body that starts template t (spec §8.8):
 * task, image, capabilities (network_allowlist, credentials, and the
 * template's max_lifetime_ms as resources.timeout_ms) and its command. */
json_t *cb_template_spawn_body(const struct cb_image_template *t, const char *task);

#endif
