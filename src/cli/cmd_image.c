/* clawbox image import|build-default|list|remove: the local image store
 * (src/lib/containers/images.h). Works beside a running server: the store
 * is changed by atomic renames under file locks. */
#include "cli.h"
#include "containers/images.h"
#include "core/util.h"

#include <stdio.h>
#include <string.h>

static const char image_usage_text[] =
    "Usage: clawbox image [--config PATH] ACTION\n\n"
    "Manages the local container image store ([containers] image_store, default\n"
    "<data_dir>/images). There is no registry: images are imported from files.\n\n"
    "Actions:\n"
    "  import NAME FILE        store FILE as image NAME (\":latest\" is added when NAME\n"
    "                          has no tag): an OCI archive or layout directory, a\n"
    "                          `docker save`/`podman save` tarball, or a plain rootfs\n"
    "                          tarball (its command is /bin/sh). Replaces an image of\n"
    "                          that name unless a container is using it.\n"
    "  build-default [--force] build " CB_IMAGE_DEFAULT_NAME ": Debian with python3, curl\n"
    "                          and ca-certificates, made by mmdebstrap from the host's\n"
    "                          apt archive (half a minute to a few minutes); where that\n"
    "                          fails, a busybox-static rootfs (said so). Does nothing\n"
    "                          when the image exists, unless --force.\n"
    "  list [--json]           the stored images: name, size, creation time, source\n"
    "  remove NAME             delete an image (refused while a container uses it)\n\n"
    "Progress and messages go to stderr, the list to stdout.\n";

struct image_args {
    const char *config;
    bool json;
    bool force;
};

static void show_progress(const char *line, void *ud)
{
    (void)ud;
    fprintf(stderr, "  %s\n", line);
}

static int do_import(const char *store, int argc, char **argv)
{
    if (argc - optind != 3)
        return cli_fail("usage: clawbox image import NAME FILE");
    const char *name = argv[optind + 1], *file = argv[optind + 2];
    struct cb_error err = {0};
    if (cb_image_import(store, name, file, show_progress, NULL, &err) < 0)
        return cli_fail("%s", err.msg);
    char norm[CB_IMAGE_NAME_MAX + 1];
    cb_image_name_normalize(name, norm, &err);
    fprintf(stderr, "Image '%s' imported from %s\n", norm, file);
    return 0;
}

static int do_build(const char *store, const struct image_args *a)
{
    if (!a->force && cb_image_exists(store, CB_IMAGE_DEFAULT_NAME)) {
        fprintf(stderr, "Image '%s' exists already (--force builds it again)\n",
                CB_IMAGE_DEFAULT_NAME);
        return 0;
    }
    struct cb_error err = {0};
    uint64_t t0 = cb_now_mono_ns();
    if (cb_image_build_default(store, CB_IMAGE_DEFAULT_NAME, show_progress, NULL, &err) < 0)
        return cli_fail("%s", err.msg);
    fprintf(stderr, "Image '%s' built in %.1f s\n", CB_IMAGE_DEFAULT_NAME,
            (double)(cb_now_mono_ns() - t0) / 1e9);
    return 0;
}

static void print_images_table(const json_t *list)
{
    size_t i;
    json_t *e;
    printf("%-40s %10s  %-20s  %s\n", "NAME", "SIZE", "CREATED", "SOURCE");
    json_array_foreach(list, i, e)
    {
        double mb = (double)json_integer_value(json_object_get(e, "size_bytes")) / 1e6;
        printf("%-40s %8.1fMB  %-20s  %s\n", json_string_value(json_object_get(e, "name")), mb,
               json_string_value(json_object_get(e, "created_at")),
               json_string_value(json_object_get(e, "source")));
    }
}

static int do_list_images(const char *store, bool as_json)
{
    json_t *list = NULL;
    struct cb_error err = {0};
    if (cb_image_list(store, &list, &err) < 0)
        return cli_fail("%s", err.msg);
    if (as_json) {
        json_dumpf(list, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
    } else if (json_array_size(list) == 0) {
        fprintf(stderr, "No images in %s (clawbox image build-default makes %s)\n", store,
                CB_IMAGE_DEFAULT_NAME);
    } else {
        print_images_table(list);
    }
    json_decref(list);
    return 0;
}

static int do_remove_image(const char *store, int argc, char **argv)
{
    if (argc - optind != 2)
        return cli_fail("usage: clawbox image remove NAME");
    struct cb_error err = {0};
    if (cb_image_remove(store, argv[optind + 1], &err) < 0)
        return cli_fail("%s", err.msg);
    fprintf(stderr, "Image '%s' removed\n", argv[optind + 1]);
    return 0;
}

static int parse_image_args(int argc, char **argv, struct image_args *a)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"force", no_argument, NULL, 'f'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (o == 'c')
            a->config = optarg;
        else if (o == 'j')
            a->json = true;
        else if (o == 'f')
            a->force = true;
        else
            return o == 'h' ? (fputs(image_usage_text, stdout), 0)
                            : (fputs(image_usage_text, stderr), 2);
    }
    return -1;
}

int cmd_image(int argc, char **argv)
{
    struct image_args a = {0};
    int rc = parse_image_args(argc, argv, &a);
    if (rc >= 0)
        return rc;
    const char *action = optind < argc ? argv[optind] : "";
    static const char *const actions[] = {"import", "build-default", "list", "remove"};
    size_t i = 0;
    while (i < CB_ARRAY_LEN(actions) && strcmp(action, actions[i]) != 0)
        i++;
    if (i == CB_ARRAY_LEN(actions)) {
        fputs(image_usage_text, stderr);
        return 2;
    }
    if ((i == 1 || i == 2) && argc - optind != 1)
        return cli_fail("usage: clawbox image %s takes no arguments besides its options", action);
    struct cb_config *cfg = cli_load_config(a.config);
    if (cfg == NULL)
        return 1;
    char *store = cb_image_store_path(cfg);
    rc = i == 0   ? do_import(store, argc, argv)
         : i == 1 ? do_build(store, &a)
         : i == 2 ? do_list_images(store, a.json)
                  : do_remove_image(store, argc, argv);
    free(store);
    cb_config_free(cfg);
    return rc;
}
