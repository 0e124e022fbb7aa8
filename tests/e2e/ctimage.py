"""A small busybox-static container image for the e2e tests, built once and
cached (CLAWBOX_E2E_IMAGES, under the build directory), and imported into a
server's image store with the real CLI, so that container tests spawn
quickly and without a network.

    import ctimage
    ctimage.import_busybox(server.config_path)   # -> "clawbox/test-busybox:latest"

The image has busybox (/bin/busybox and a link per applet), passwd/group
with root and agent (1000), /tmp 1777, and /usr/bin/ctprobe: the static
probe of the container tests (tests/fixtures/ctprobe.c)."""

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
VERSION = "5"
# The static probe of the container tests (tests/fixtures/ctprobe.c), at /usr/bin/ctprobe.
CTPROBE = os.environ.get("CLAWBOX_E2E_CTPROBE", "build/tests/fixtures/ctprobe")
TEST_IMAGE = NAME



def _rootfs(root):
    """Lays out the image in root."""
    for d in ("bin", "etc", "tmp", "proc", "dev", "sys", "run/clawbox",
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
        # Where Debian's TLS clients find the system's CAs (replaced by the
        # container's own CA under TLS interception).
        "etc/ssl/certs/ca-certificates.crt": "# the image's CA bundle\n",
    }
    for rel, text in files.items():
        os.makedirs(os.path.dirname(os.path.join(root, rel)), exist_ok=True)
        with open(os.path.join(root, rel), "w") as f:
            f.write(text)
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
