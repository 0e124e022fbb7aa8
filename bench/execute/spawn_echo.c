/* Baseline: a native echo as a fresh process per call, via posix_spawn of
 * /bin/echo with its output to /dev/null. Prints "p50_ms p99_ms calls_per_s". */
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? (int)strtol(argv[1], NULL, 10) : 2000;
    if (n <= 0)
        n = 2000;
    double *t = calloc((size_t)n, sizeof(double));
    char *args[] = {"echo", "{\"hello\":\"world\"}", NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    double start = now_ms();
    for (int i = 0; i < n; i++) {
        double t0 = now_ms();
        pid_t pid;
        if (posix_spawn(&pid, "/bin/echo", &fa, NULL, args, environ) != 0)
            return 1;
        waitpid(pid, NULL, 0);
        t[i] = now_ms() - t0;
    }
    double total = (now_ms() - start) / 1e3;
    qsort(t, (size_t)n, sizeof(double), cmp);
    printf("%.3f %.3f %.0f\n", t[n / 2], t[n * 99 / 100], n / total);
    return 0;
}
