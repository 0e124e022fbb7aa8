"""A small busybox-static container image for the e2e tests, built once and
cached (CLAWBOX_E2E_IMAGES, under the build directory), and imported into a
server's image store with the real CLI, so that container tests spawn
quickly and without a network.

    import ctimage
    ctimage.import_busybox(server.config_path)   # -> "clawbox/test-busybox:latest"

The image has busybox (/bin/busybox and a link per applet), passwd/group
with root and agent (1000), /tmp 1777, and /usr/local/bin/probe: a shell
script for the hardening tests that prints KEY=VALUE lines about the
process it runs as and what it may do (see PROBE)."""

import fcntl
import os
import shutil
import subprocess
import tarfile
import tempfile

BIN = os.environ.get("CLAWBOX_BIN", "build/src/cli/clawbox-test")
CACHE = os.environ.get("CLAWBOX_E2E_IMAGES", "/tmp/clawbox-e2e-images")
BUSYBOX = "/usr/bin/busybox"
NAME = "clawbox/test-busybox:latest"
# Bump when the image's content changes, so a stale cache is not used.
VERSION = "2"
# The static probe of the container tests (tests/e2e/ctprobe.c), at /usr/bin/ctprobe.
CTPROBE = os.environ.get("CLAWBOX_E2E_CTPROBE", "build/tests/e2e/ctprobe")
TEST_IMAGE = NAME

# Each line is KEY=VALUE. "ok"/"denied" for the attempts; never aborts.
PROBE = r"""#!/bin/sh
echo "uid=$(id -u)"
echo "gid=$(id -g)"
echo "groups=$(id -G)"
for k in CapInh CapPrm CapEff CapBnd CapAmb NoNewPrivs Seccomp; do
  echo "$k=$(awk -v k="$k:" '$1 == k {print $2}' /proc/self/status)"
done
echo "interfaces=$(ls /sys/class/net 2>/dev/null | tr '\n' ' ' || true)"
echo "netdev=$(awk 'NR > 2 {sub(":", "", $1); printf "%s ", $1}' /proc/net/dev)"
echo "hostname=$(hostname)"
echo "pid1=$(cat /proc/1/comm 2>/dev/null)"
echo "pids_max=$(cat /sys/fs/cgroup/pids.max 2>/dev/null)"
try() { name=$1; shift; if "$@" >/dev/null 2>&1; then echo "$name=ok"; else echo "$name=denied"; fi; }
try write_root touch /probe-write
try write_etc sh -c 'echo x >> /etc/passwd'
try write_tmp sh -c 'echo x > /tmp/probe'
try exec_tmp sh -c 'cp /bin/busybox /tmp/bb && /tmp/bb true'
try mount_tmpfs mount -t tmpfs none /mnt
try chroot chroot / true
try raw_socket ping -c 1 -W 1 127.0.0.1
try read_shadow cat /etc/shadow
try kill_1 kill -0 1
echo "mounts_begin"
cat /proc/self/mounts
echo "mounts_end"
"""


def _rootfs(root):
    """Lays out the image in root."""
    for d in ("bin", "etc", "tmp", "usr/local/bin", "proc", "dev", "sys", "run/clawbox",
              "workspace"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    os.chmod(os.path.join(root, "tmp"), 0o1777)
    shutil.copy2(BUSYBOX, os.path.join(root, "bin", "busybox"))
    applets = subprocess.run([BUSYBOX, "--list-full"], capture_output=True, text=True,
                             check=True).stdout.split()
    for a in applets:
        a = a.lstrip("/")
        if a == "bin/busybox" or ".." in a:
            continue
        path = os.path.join(root, a)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if not os.path.lexists(path):
            os.symlink("/bin/busybox", path)
    files = {
        "etc/passwd": "root:x:0:0:root:/root:/bin/sh\nagent:x:1000:1000:agent:/workspace:/bin/sh\n",
        "etc/group": "root:x:0:\nagent:x:1000:\n",
        "etc/hosts": "",
        "etc/resolv.conf": "",
        "usr/local/bin/probe": PROBE,
    }
    for rel, text in files.items():
        with open(os.path.join(root, rel), "w") as f:
            f.write(text)
    os.chmod(os.path.join(root, "usr/local/bin/probe"), 0o755)
    os.makedirs(os.path.join(root, "usr/bin"), exist_ok=True)
    shutil.copy2(CTPROBE, os.path.join(root, "usr/bin/ctprobe"))


def busybox_tarball():
    """The cached rootfs tarball, built on first use (under a lock, so
    parallel tests build it once)."""
    os.makedirs(CACHE, exist_ok=True)
    stamp = int(os.stat(CTPROBE).st_mtime)
    path = os.path.join(CACHE, f"busybox-rootfs-v{VERSION}-{stamp}.tar")
    with open(os.path.join(CACHE, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(path):
            return path
        work = tempfile.mkdtemp(dir=CACHE)
        try:
            root = os.path.join(work, "rootfs")
            _rootfs(root)
            tmp = os.path.join(work, "rootfs.tar")
            with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as t:
                t.add(root, arcname=".")
            os.rename(tmp, path)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return path


def import_busybox(config_path, name=NAME, binary=None, env=None):
    """Imports the busybox image into the store of the server configured at
    config_path (through `clawbox image import`) and returns its name."""
    p = subprocess.run([binary or BIN, "image", "--config", config_path, "import", name,
                        busybox_tarball()], capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise RuntimeError(f"clawbox image import failed ({p.returncode}): {p.stderr}")
    return name


def import_test_image(server):
    """The busybox image, imported into a harness.Server's store."""
    return import_busybox(server.config_path, binary=server.binary, env=server.env)
