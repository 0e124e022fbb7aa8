/* clawbox add image, remove image, list images: the image templates of the
 * config file ([images.templates.NAME]), which `clawbox spawn` and the MCP
 * tool clawbox_spawn_container start. */
#include "cli.h"
#include "config/templates.h"
#include "core/file.h"
#include "core/fs.h"
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CONFIG_FILE_MAX (4u * 1024 * 1024)

static const char add_image_usage[] =
    "Usage: clawbox add image NAME --image IMAGE [--description D] [--network a,b]\n"
    "                         [--credentials a,b] [--config PATH]\n\n"
    "Adds (or replaces) the image template NAME in the config file, keeping the rest of\n"
    "the file as it is. `clawbox spawn NAME` starts it. What a container may reach is\n"
    "[container_policy].network_allowlist; --network is kept for the reference's\n"
    "templates. --credentials names the credentials a spawn asks for.\n";

static const char remove_image_usage[] = "Usage: clawbox remove image NAME [--config PATH]\n\n"
                                         "Removes the image template NAME from the config file.\n";

static const char list_images_usage[] = "Usage: clawbox list images [--config PATH]\n\n"
                                        "Lists the image templates of the config file.\n";

struct templates_args {
    const char *config, *image, *description, *network, *credentials;
};

static int parse_templates_args(int argc, char **argv, struct templates_args *a, const char *usage)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"image", required_argument, NULL, 'i'},
                                         {"description", required_argument, NULL, 'd'},
                                         {"network", required_argument, NULL, 'n'},
                                         {"credentials", required_argument, NULL, 'k'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    memset(a, 0, sizeof(*a));
    optind = 1;
    int o;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        const char **slot = o == 'c'   ? &a->config
                            : o == 'i' ? &a->image
                            : o == 'd' ? &a->description
                            : o == 'n' ? &a->network
                            : o == 'k' ? &a->credentials
                                       : NULL;
        if (slot != NULL) {
            *slot = optarg;
            continue;
        }
        FILE *f = o == 'h' ? stdout : stderr;
        fputs(usage, f);
        return o == 'h' ? 0 : 2;
    }
    return -1;
}

/* The config file the verbs edit: --config, else the one `init` wrote. */
static char *config_path(const struct templates_args *a)
{
    if (a->config)
        return cb_xstrdup(a->config);
    char *p = cli_default_config_path();
    if (p == NULL)
        cli_fail("no config file: give --config PATH, or run clawbox init");
    return p;
}

/* A comma-separated list, items trimmed and empty ones dropped. */
static void split(const char *s, struct cb_strlist *l)
{
    memset(l, 0, sizeof(*l));
    if (s == NULL)
        return;
    char *copy = cb_xstrdup(s);
    for (char *tok = copy, *next; tok; tok = next) {
        next = strchr(tok, ',');
        if (next)
            *next++ = '\0';
        tok += strspn(tok, " \t");
        size_t n = strlen(tok);
        while (n > 0 && (tok[n - 1] == ' ' || tok[n - 1] == '\t'))
            tok[--n] = '\0';
        if (n == 0)
            continue;
        l->items = cb_xrealloc(l->items, (l->len + 1) * sizeof(char *));
        l->items[l->len++] = cb_xstrdup(tok);
    }
    free(copy);
}

static void strlist_free(struct cb_strlist *l)
{
    for (size_t i = 0; i < l->len; i++)
        free(l->items[i]);
    free(l->items);
}

/* Reads the config, edits it with `edit`, writes it back atomically
 * (keeping the file's mode: it holds the auth token). */
static int edit_config(const char *path,
                       int (*edit)(const char *, size_t, const void *, char **, struct cb_error *),
                       const void *arg)
{
    struct cb_file f;
    struct cb_error err = {0};
    if (cb_file_load(&f, AT_FDCWD, path, CONFIG_FILE_MAX, 0, &err) < 0) {
        cb_file_close(&f);
        return cli_fail("%s", err.msg);
    }
    char *out = NULL;
    int r = edit(f.buf.data, f.buf.len, arg, &out, &err);
    mode_t mode = f.st.st_mode & 0777;
    cb_file_close(&f);
    if (r == 0)
        r = cb_write_atomic(path, out, strlen(out), &err);
    if (r == 0 && chmod(path, mode) < 0)
        r = cb_error_set(&err, -errno, "chmod %s: %m", path);
    free(out);
    return r < 0 ? cli_fail("%s", err.msg) : 0;
}

static int put_template(const char *text, size_t len, const void *arg, char **out,
                        struct cb_error *err)
{
    return cb_template_put(text, len, arg, out, err);
}

static int drop(const char *text, size_t len, const void *arg, char **out, struct cb_error *err)
{
    return cb_template_remove(text, len, arg, out, err);
}

int cli_add_image(int argc, char **argv)
{
    struct templates_args a;
    int rc = parse_templates_args(argc, argv, &a, add_image_usage);
    if (rc >= 0)
        return rc;
    if (argc - optind != 1 || a.image == NULL) {
        fputs(add_image_usage, stderr);
        return 2;
    }
    char *path = config_path(&a);
    if (path == NULL)
        return 1;
    struct cb_strlist net, creds;
    split(a.network, &net);
    split(a.credentials, &creds);
    struct cb_template_spec t = {.name = argv[optind],
                                 .image = a.image,
                                 .description = a.description,
                                 .network_allowlist = &net,
                                 .credentials = &creds};
    rc = edit_config(path, put_template, &t);
    if (rc == 0)
        fprintf(stderr, "✓ Image template '%s' added to %s\n", t.name, path);
    strlist_free(&net);
    strlist_free(&creds);
    free(path);
    return rc;
}

int cli_remove_image(int argc, char **argv)
{
    struct templates_args a;
    int rc = parse_templates_args(argc, argv, &a, remove_image_usage);
    if (rc >= 0)
        return rc;
    if (argc - optind != 1) {
        fputs(remove_image_usage, stderr);
        return 2;
    }
    char *path = config_path(&a);
    if (path == NULL)
        return 1;
    rc = edit_config(path, drop, argv[optind]);
    if (rc == 0)
        fprintf(stderr, "✓ Image template '%s' removed from %s\n", argv[optind], path);
    free(path);
    return rc;
}

int cli_list_images(int argc, char **argv)
{
    struct templates_args a;
    int rc = parse_templates_args(argc, argv, &a, list_images_usage);
    if (rc >= 0)
        return rc;
    if (argc != optind) {
        fputs(list_images_usage, stderr);
        return 2;
    }
    struct cb_config *cfg = cli_load_config(a.config);
    if (cfg == NULL)
        return 1;
    if (cfg->n_templates == 0)
        fputs("No image templates configured.\n", stderr);
    else
        printf("%-20s %-40s %s\n", "NAME", "IMAGE", "DESCRIPTION");
    for (size_t i = 0; i < cfg->n_templates; i++)
        printf("%-20s %-40s %s\n", cfg->templates[i].name, cfg->templates[i].image,
               cfg->templates[i].description ? cfg->templates[i].description : "");
    cb_config_free(cfg);
    return 0;
}
