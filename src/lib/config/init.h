/* `clawbox init`: creates a clawbox home with a config file and token. */
#ifndef CB_CONFIG_INIT_H
#define CB_CONFIG_INIT_H

#include <stdbool.h>

#include "core/error.h"

struct cb_init_result {
    char *config_path;
    char *token_path;
    char *tools_dir;
    char *key_path;
    bool created;     /* false when a config existed and was kept */
    bool key_created; /* false when a master key existed and was kept */
};

/* Creates <base>/{config,tools,audit,data}, then <base>/config/clawbox.toml
 * and <base>/token (both mode 0600) holding one fresh 64-hex token, and the
 * credential store's master key <base>/master.key (0600), which the config
 * names as credentials.key_file. An existing config is kept unless `force`;
 * an existing key is always kept (the store it opens would be lost). Files
 * are written atomically. */
int cb_init_home(const char *base, bool force, struct cb_init_result *out, struct cb_error *err);
void cb_init_result_free(struct cb_init_result *r);

#endif
