/* cb__ct_mkdir_in_root (a bind's mount point made in an untrusted image's
 * rootfs) and cb_ct_owner_id_base (the owners' host id ranges). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "../rm_tree.h"
#include "config/config.h"
#include "containers/internal.h"

static char tmp[64];
static char rootfs[128];

static int setup(void **state)
{
    (void)state;
    snprintf(tmp, sizeof(tmp), "/tmp/cb-mountpoint-XXXXXX");
    if (mkdtemp(tmp) == NULL)
        return -1;
    snprintf(rootfs, sizeof(rootfs), "%s/rootfs", tmp);
    return mkdir(rootfs, 0755);
}

static int teardown(void **state)
{
    (void)state;
    rm_tree(tmp);
    return 0;
}

static bool is_dir(const char *rel)
{
    char p[256];
    struct stat st;
    snprintf(p, sizeof(p), "%s/%s", rootfs, rel);
    return lstat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static void creates_missing_directories(void **state)
{
    (void)state;
    struct cb_error err = {0};
    assert_int_equal(cb__ct_mkdir_in_root(rootfs, "/workspace", &err), 0);
    assert_true(is_dir("workspace"));
    assert_int_equal(cb__ct_mkdir_in_root(rootfs, "/a/b/c", &err), 0);
    assert_true(is_dir("a/b/c"));
    /* Existing: nothing to do. */
    assert_int_equal(cb__ct_mkdir_in_root(rootfs, "/a/b/c", &err), 0);
}

static void image_links_stay_inside(void **state)
{
    (void)state;
    struct cb_error err = {0};
    char p[256], outside[128];
    snprintf(outside, sizeof(outside), "%s/outside", tmp);
    assert_int_equal(mkdir(outside, 0755), 0);
    /* An absolute link resolves as the image's own root sees it: the
     * host's directory is not there, so nothing is made. One climbing out
     * with ".." stops at the rootfs. */
    snprintf(p, sizeof(p), "%s/abs", rootfs);
    assert_int_equal(symlink(outside, p), 0);
    snprintf(p, sizeof(p), "%s/up", rootfs);
    assert_int_equal(symlink("../../outside", p), 0);
    snprintf(p, sizeof(p), "%s/outside", rootfs);
    assert_int_equal(mkdir(p, 0755), 0);
    assert_int_equal(cb__ct_mkdir_in_root(rootfs, "/abs/ws", &err), -ENOENT);
    assert_int_equal(cb__ct_mkdir_in_root(rootfs, "/up/ws", &err), 0);
    assert_true(is_dir("outside/ws"));
    snprintf(p, sizeof(p), "%s/ws", outside);
    assert_int_equal(access(p, F_OK), -1);
    /* A file in the way is an error, not replaced. */
    snprintf(p, sizeof(p), "%s/file", rootfs);
    int fd = open(p, O_CREAT | O_WRONLY, 0644);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(cb__ct_mkdir_in_root(rootfs, "/file", &err), -ENOTDIR);
    assert_int_equal(cb__ct_mkdir_in_root(rootfs, "/file/x", &err), -ENOTDIR);
}

static void owner_ranges_follow_the_slots(void **state)
{
    (void)state;
    struct cb_config cfg = {0};
    cfg.containers.userns_base = 1000000000;
    assert_int_equal(cb_ct_owner_id_base(&cfg, 0), 1000000000u + 10000u * 65536u);
    assert_int_equal(cb_ct_owner_id_base(&cfg, 3), 1000000000u + 10003u * 65536u);
    assert_int_equal(cb_ct_owner_id_base(&cfg, 60000), 0); /* past 2^32 */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(creates_missing_directories, setup, teardown),
        cmocka_unit_test_setup_teardown(image_links_stay_inside, setup, teardown),
        cmocka_unit_test(owner_ranges_follow_the_slots),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
