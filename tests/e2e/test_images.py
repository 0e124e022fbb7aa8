"""The image store end to end: `clawbox image import|list|remove|build-default`
against the store of a running server, and GET /images."""

import fcntl
import json
import os
import re
import subprocess
import unittest

import ctimage
from harness import BIN, ServerTestCase

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


class ImagesTest(ServerTestCase):

    def image(self, *args, env=None):
        return subprocess.run([BIN, "image", "--config", self.server.config_path, *args],
                              capture_output=True, text=True, env=env or self.server.env,
                              timeout=120)

    def store(self):
        return os.path.join(self.server.dir, "data", "images")

    def listed(self):
        r = self.server.request("GET", "/images")
        self.assertEqual(r.status, 200, r.body)
        return r.json()

    def tearDown(self):
        for e in self.listed():
            self.image("remove", e["name"])

    def test_empty_store(self):
        self.assertEqual(self.listed(), [])
        p = self.image("list", "--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout), [])
        p = self.image("list")
        self.assertEqual((p.returncode, p.stdout), (0, ""))
        self.assertIn("No images", p.stderr)

    def test_get_images_needs_the_token(self):
        r = self.server.request("GET", "/images", auth=False)
        self.assert_error(r, 401, "auth_required")
        r = self.server.request("GET", "/images", headers={"Authorization": "Bearer nope"})
        self.assert_error(r, 401, "auth_required")

    def test_import_list_remove(self):
        tar = ctimage.busybox_tarball()
        p = self.image("import", "test/bb", tar)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, "")
        self.assertIn("Image 'test/bb:latest' imported", p.stderr)
        [e] = self.listed()
        self.assertEqual(set(e), {"name", "size_bytes", "created_at", "source"})
        self.assertEqual(e["name"], "test/bb:latest")
        self.assertEqual(e["source"], "rootfs-tar")
        self.assertGreater(e["size_bytes"], 1_000_000)
        self.assertRegex(e["created_at"], RFC3339)
        p = self.image("list", "--json")
        self.assertEqual(json.loads(p.stdout), [e])
        p = self.image("list")
        self.assertEqual(p.returncode, 0)
        self.assertIn("test/bb:latest", p.stdout)
        self.assertIn("rootfs-tar", p.stdout)
        # The shared helper imports under its own name, beside it.
        self.assertEqual(ctimage.import_busybox(self.server.config_path), ctimage.NAME)
        self.assertEqual([x["name"] for x in self.listed()], [ctimage.NAME, "test/bb:latest"])
        rootfs = os.path.join(self.store(), "test%2Fbb%3Alatest", "rootfs")
        for d in ("proc", "dev", "sys", "run/clawbox", "workspace"):
            self.assertTrue(os.path.isdir(os.path.join(rootfs, d)), d)
        self.assertEqual(os.stat(os.path.join(rootfs, "tmp")).st_mode & 0o7777, 0o1777)
        self.assertTrue(os.access(os.path.join(rootfs, "usr/bin/ctprobe"), os.X_OK))
        p = self.image("remove", "test/bb")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("removed", p.stderr)
        self.assertEqual([x["name"] for x in self.listed()], [ctimage.NAME])
        self.assertFalse(os.path.exists(os.path.dirname(rootfs)))

    def test_an_image_in_use_is_kept(self):
        name = ctimage.import_busybox(self.server.config_path)
        lock = os.path.join(self.store(), "clawbox%2Ftest-busybox%3Alatest", "lock")
        with open(lock) as f:
            fcntl.flock(f, fcntl.LOCK_SH)  # what a running container holds
            p = self.image("remove", name)
            self.assertEqual(p.returncode, 1)
            self.assertIn("in use", p.stderr)
            p = self.image("import", name, ctimage.busybox_tarball())
            self.assertEqual(p.returncode, 1)
            self.assertIn("in use", p.stderr)
        self.assertEqual([x["name"] for x in self.listed()], [name])
        p = self.image("remove", name)
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_bad_input(self):
        tar = ctimage.busybox_tarball()
        cases = [
            (("import", "../x", tar), "'..'"),
            (("import", "/abs", tar), "must not start"),
            (("import", "a b", tar), "character"),
            (("import", "ok", "/nonexistent.tar"), "No such file"),
            (("import", "ok", self.server.config_path), "not a tar archive"),
            (("remove", "nothing-here"), "not in the image store"),
            (("import", "only-a-name"), "usage"),
            (("list", "extra"), "usage"),
        ]
        for args, msg in cases:
            p = self.image(*args)
            self.assertEqual(p.returncode, 1, args)
            self.assertIn(msg, p.stderr, args)
            self.assertEqual(p.stdout, "", args)
        p = self.image("frobnicate")
        self.assertEqual(p.returncode, 2)
        self.assertEqual(self.listed(), [])
        if os.path.exists(self.store()):
            self.assertEqual([n for n in os.listdir(self.store()) if n != ".lock"], [])

    def test_help(self):
        p = subprocess.run([BIN, "help", "image"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0)
        for verb in ("import NAME FILE", "build-default", "list", "remove NAME"):
            self.assertIn(verb, p.stdout)

    def test_build_default_falls_back_to_busybox(self):
        # No mmdebstrap on PATH: the fallback, said so (mmdebstrap itself
        # takes 30 s or more and downloads, so it is not run here).
        env = dict(self.server.env, PATH="/nonexistent")
        p = self.image("build-default", env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("mmdebstrap could not build the image", p.stderr)
        self.assertIn("busybox-static", p.stderr)
        [e] = self.listed()
        self.assertEqual((e["name"], e["source"]), ("clawbox/agent-base:latest", "busybox-static"))
        rootfs = os.path.join(self.store(), "clawbox%2Fagent-base%3Alatest", "rootfs")
        self.assertTrue(os.path.islink(os.path.join(rootfs, "bin/sh")))
        if os.path.exists("/usr/bin/catatonit"):
            self.assertTrue(os.access(os.path.join(rootfs, "usr/bin/catatonit"), os.X_OK))
        with open(os.path.join(rootfs, "etc/passwd")) as f:
            self.assertIn(":x:1000:1000:", f.read())
        p = self.image("build-default", env=env)
        self.assertEqual(p.returncode, 0)
        self.assertIn("exists already", p.stderr)
        self.assertEqual(self.listed()[0]["created_at"], e["created_at"])


if __name__ == "__main__":
    unittest.main()
