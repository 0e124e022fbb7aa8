/* `clawbox init`: creates a clawbox home with a config file and token. */
#ifndef CB_CONFIG_INIT_H
#define CB_CONFIG_INIT_H

#include <stdbool.h>

#include "core/error.h"

struct cb_init_result {
    char *config_path;
    char *token_path;
    char *tools_dir;
    bool created; /* false when a config existed and was kept */
};

/* Creates <base>/{config,tools,audit,data}, then <base>/config/clawbox.toml
 * and <base>/token (both mode 0600) holding one fresh 64-hex token. An
 * existing config is kept unless `force`. Files are written atomically. */
int cb_init_home(const char *base, bool force, struct cb_init_result *out, struct cb_error *err);
void cb_init_result_free(struct cb_init_result *r);

#endif
