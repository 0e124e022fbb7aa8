/* Internal: length-prefixed frames over a stream socket, with optional
 * file-descriptor passing. Frame = u32 type, u32 length, payload. */
#ifndef CB_SANDBOX_WORKER_IPC_H
#define CB_SANDBOX_WORKER_IPC_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

/* Largest payload accepted: params and output are capped well below. */
#define CB__IPC_MAX_FRAME (24u * 1024 * 1024)
/* A zygote control frame: a tool's .so path, with a pid in answers. */
#define CB__IPC_CONTROL_MAX 8192
/* Tool stderr kept per execution. */
#define CB__STDERR_MAX (64u * 1024)

enum cb__frame_type {
    CB__FRAME_SPAWN = 1,      /* main -> zygote: so_path; reply carries fd + pid */
    CB__FRAME_SPAWNED = 2,    /* zygote -> main: u32 pid, fd attached; or error text */
    CB__FRAME_EXEC = 3,       /* main -> child: struct cb__exec_header + params */
    CB__FRAME_HOSTCALL = 4,   /* child -> main: request envelope */
    CB__FRAME_HOSTREPLY = 5,  /* main -> child: response envelope */
    CB__FRAME_RESULT = 6,     /* child -> main: struct cb__result_header + stdout + stderr */
    CB__FRAME_SPAWN_FAIL = 7, /* zygote -> main: error text */
    CB__FRAME_LOG = 8,        /* child -> main: a "log" host call, answered by the child */
};

/* The answer to every "log" host call within the host-call limit. */
#define CB__LOG_REPLY "{\"ok\":null}"

struct cb__exec_header {
    uint64_t fuel;
    uint64_t memory_bytes; /* RLIMIT_DATA; fixed for a worker's life */
    uint64_t max_output;
    uint64_t cpu_seconds; /* CPU time this job may add */
    uint32_t jobs_left;   /* after this one; 0 = exit after the result */
    uint32_t max_host_calls;
};

struct cb__result_header {
    uint32_t status;
    uint32_t exit_code;
    uint64_t fuel_consumed;
    uint32_t truncated;
    uint32_t stdout_len;
    uint32_t stderr_len;
    uint32_t reusable; /* the child waits for another job */
    char message[256];
};

/* Sends a frame (and fd when >= 0). Returns 0 or -errno. */
int cb__ipc_send(int sock, uint32_t type, const void *p, size_t n, int fd);
/* Same with the payload in two parts, sent as one frame. */
int cb__ipc_send2(int sock, uint32_t type, const void *a, size_t an, const void *b, size_t bn);
/* Receives one frame into `payload` (reset first). When fd_out is non-NULL
 * a passed descriptor is stored there (-1 if none). Returns 0, -EPIPE at
 * end of stream, -EPROTO on a malformed frame, or -errno. */
int cb__ipc_recv(int sock, uint32_t *type, struct cb_buf *payload, int *fd_out);
/* Waits up to usec for data on sock, yielding the CPU between checks
 * instead of sleeping. Returns when data (or an error) is there or the
 * time is up; the caller then reads as usual. */
void cb__ipc_spin_wait(int sock, unsigned usec);

#endif
