/* Internal: the option table shared by config.c and config_table.c. */
#ifndef CB_CONFIG_TABLE_H
#define CB_CONFIG_TABLE_H

#include <stddef.h>
#include <stdint.h>

enum cb__opt_type {
    CB__OPT_STRING,   /* non-empty string */
    CB__OPT_PATH,     /* string with leading "~/" expanded */
    CB__OPT_OPT_PATH, /* optional path: unset = NULL */
    CB__OPT_ENUM,     /* one of `choices` ("a|b|c") */
    CB__OPT_BOOL,
    CB__OPT_UINT, /* unsigned integer in [min, max] */
    CB__OPT_STRLIST,
};

struct cb__opt {
    const char *section;
    const char *key;
    enum cb__opt_type type;
    const char *def; /* textual default; lists are comma-separated; NULL = unset */
    uint64_t min;
    uint64_t max;
    const char *env; /* environment override, or NULL */
    size_t offset;   /* of the field in struct cb_config (or cb_image_template) */
    const char *choices;
    const char *doc;
};

extern const struct cb__opt cb__config_opts[];
extern const size_t cb__config_nopts;
extern const struct cb__opt cb__template_opts[];
extern const size_t cb__template_nopts;

#endif
