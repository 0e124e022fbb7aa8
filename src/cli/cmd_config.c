/* clawbox config-reference: prints docs/configuration.md from the table. */
#include "cli.h"
#include "config/config.h"

#include <stdio.h>

/* The rendered reference is under 10 KiB today. */
#define CONFIG_REFERENCE_MAX (1024 * 1024)

int cmd_config_reference(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        puts("Usage: clawbox config-reference\n\nPrints the reference of every configuration "
             "key (Markdown).");
        return 0;
    }
    struct cb_buf b;
    cb_buf_init(&b, CONFIG_REFERENCE_MAX);
    int r = cb_config_render_reference(&b);
    if (r == 0)
        fwrite(b.data, 1, b.len, stdout);
    cb_buf_free(&b);
    return r == 0 ? 0 : cli_fail("rendering the reference failed");
}
