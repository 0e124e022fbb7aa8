"""CPU time of the processes a benchmark compares, from /proc: on a shared
machine, the CPU a server spends per request is steadier than its latency,
which waits for every other process on the same cores. clawbox's figure
includes the yield loop in which it waits for a nearby upstream (see
src/lib/proxy/forward.c), which nginx does not run."""

import os

def cpu_seconds(pid):
    """Time on a CPU of a process's threads, to the nanosecond (schedstat);
    a thread that ends between two readings takes its time with it, so
    measure over blocks in which the threads that serve stay."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total / 1e9


def nginx_worker(master):
    """The worker of an nginx master started with worker_processes 1."""
    with open(f"/proc/{master}/task/{master}/children") as f:
        kids = f.read().split()
    if len(kids) != 1:
        raise SystemExit(f"nginx {master} has {len(kids)} workers, not 1")
    return int(kids[0])


class CpuMeter:
    """Adds up a process's CPU time over the blocks it is measured in."""

    def __init__(self, pid):
        self.pid, self.total, self.start = pid, 0.0, None

    def __enter__(self):
        self.start = cpu_seconds(self.pid)
        return self

    def __exit__(self, *exc):
        self.total += cpu_seconds(self.pid) - self.start

    def per_request_us(self, n):
        return self.total / n * 1e6
