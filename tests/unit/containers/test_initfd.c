/* cb__ct_init_pidfd: a pid is trusted as a container's init only when
 * /proc shows it in that container's cgroup (the positive case, with real
 * containers, is in tests/e2e/test_exec.py and test_agents.py: every file
 * operation goes through it). */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "containers/internal.h"

static void a_process_of_another_cgroup_is_refused(void **state)
{
    (void)state;
    assert_int_equal(cb__ct_init_pidfd(getpid(), "clawbox-not-this-one"), -1);
    pid_t child = fork();
    if (child == 0) {
        pause();
        _exit(0);
    }
    assert_int_equal(cb__ct_init_pidfd(child, "clawbox-not-this-one"), -1);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
}

static void a_pid_that_ended_is_refused(void **state)
{
    (void)state;
    pid_t child = fork();
    if (child == 0)
        _exit(0);
    waitpid(child, NULL, 0);
    assert_int_equal(cb__ct_init_pidfd(child, "clawbox-x"), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_process_of_another_cgroup_is_refused),
        cmocka_unit_test(a_pid_that_ended_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
