/* What a thread wake-up costs on this machine: two threads pinned to two
 * CPUs ping-pong one byte over pipes. Back to back, neither CPU stays idle
 * for long; after a pause before each ping, both go idle first. On a
 * virtual machine whose idle vCPUs halt, the second is many times the
 * first: the reason clawbox's short waits poll before they sleep
 * (docs/operations.md, "CPU use between requests"). Prints median round
 * trips and their ratio. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define ROUNDS 400

static int ping[2], pong[2];

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static void pin(int cpu)
{
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(cpu, &s);
    pthread_setaffinity_np(pthread_self(), sizeof(s), &s);
}

static void *peer(void *arg)
{
    char c;
    pin(*(int *)arg);
    while (read(ping[0], &c, 1) == 1 && write(pong[1], &c, 1) == 1)
        ;
    return NULL;
}

static int cmp(const void *a, const void *b)
{
    double d = *(const double *)a - *(const double *)b;
    return (d > 0) - (d < 0);
}

static double median_rtt(unsigned pause_us)
{
    static double v[ROUNDS];
    char c = 'x';
    for (int i = 0; i < ROUNDS; i++) {
        if (pause_us)
            usleep(pause_us);
        double t = now_us();
        if (write(ping[1], &c, 1) != 1 || read(pong[0], &c, 1) != 1)
            exit(1);
        v[i] = now_us() - t;
    }
    qsort(v, ROUNDS, sizeof(v[0]), cmp);
    return v[ROUNDS / 2];
}

int main(void)
{
    static int other = 1;
    pthread_t t;
    if (sysconf(_SC_NPROCESSORS_ONLN) < 2) {
        puts("wake: one CPU only; nothing to measure");
        return 0;
    }
    if (pipe(ping) || pipe(pong))
        return 1;
    pin(0);
    pthread_create(&t, NULL, peer, &other);
    double busy = median_rtt(0), idle = median_rtt(2000);
    printf("wake: cross-CPU round trip, median of %d: back to back %.1f us, "
           "after 2 ms idle %.1f us = %.1fx\n",
           ROUNDS, busy, idle, idle / busy);
    return 0;
}
