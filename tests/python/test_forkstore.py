"""Tests of the Python binding (src/python/forkstore.py) over the shared
library: the ctypes structures against the recorded ABI, the C tests'
round trip (a generated chain ingested and restored byte-identically),
branch of a running test VMM, lineage, info, sql, gc, verify, progress
callbacks, errors as exceptions, and the README's example run as written.

Run by tests/python/run.sh (make test-python) with FORKSTORE_LIB,
FORKGEN and FCVMM set."""

import filecmp
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import unittest
import xml.etree.ElementTree as ET

import forkstore

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FORKGEN = os.environ["FORKGEN"]
FCVMM = os.environ["FCVMM"]


def gen(d, size="8M", snapshots=4):
    subprocess.run([FORKGEN, "--out", d, "--size", size, "--snapshots", str(snapshots), "--quiet"],
                   check=True, stdout=subprocess.DEVNULL)
    rows = []
    with open(os.path.join(d, "chain.tsv")) as f:
        for line in f:
            if not line.startswith("#"):
                nn, tag, parent = line.split("\t")[:3]
                rows.append((nn, tag, None if parent == "-" else parent))
    return rows


class Tmp(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="fks-py.")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def p(self, *a):
        return os.path.join(self.dir, *a)


class TestABI(unittest.TestCase):
    """Every ctypes mirror has the size and field offsets the library was
    built with (abidw's record of it, src/abi/libforkstore.abi)."""

    def test_structs_match_the_recorded_abi(self):
        tree = ET.parse(os.path.join(ROOT, "src", "abi", "libforkstore.abi"))
        decls = {}
        for c in tree.iter("class-decl"):
            if c.get("size-in-bits") and c.get("name", "").startswith("fks_"):
                decls.setdefault(c.get("name"), c)
        checked = 0
        for cls in forkstore.STRUCTS:
            c = decls.get(cls.__name__)
            self.assertIsNotNone(c, "%s not in the recorded ABI" % cls.__name__)
            self.assertEqual(int(c.get("size-in-bits")), 8 * __import__("ctypes").sizeof(cls),
                             "size of " + cls.__name__)
            members = {}
            for m in c.findall("data-member"):
                v = m.find("var-decl")
                members[v.get("name")] = int(m.get("layout-offset-in-bits"))
            self.assertEqual(sorted(members), sorted(n for n, _ in cls._fields_),
                             "fields of " + cls.__name__)
            for name, _ in cls._fields_:
                self.assertEqual(members[name], 8 * getattr(cls, name).offset,
                                 "%s.%s" % (cls.__name__, name))
                checked += 1
        self.assertGreater(checked, 100)

    def test_version(self):
        with open(os.path.join(ROOT, "src", "forkstore.h")) as f:
            h = f.read()
        want = re.search(r'#define FKS_VERSION_STRING "([^"]+)"', h).group(1)
        self.assertEqual(forkstore.version(), want)


class TestRoundTrip(Tmp):
    def test_chain_ingest_restore_byte_identical(self):
        rows = gen(self.p("gen"))
        calls = []
        with forkstore.Store(self.p("store"), create=True, chunk_size=1 << 20) as st:
            for nn, tag, parent in rows:
                mem = self.p("gen", nn, "memory.diff" if parent else "memory.full")
                s = st.ingest(tag, memory=mem, vmstate=self.p("gen", nn, "vmstate"), parent=parent,
                              diff=parent is not None, progress=lambda d, t: calls.append((d, t)))
                self.assertEqual(s["logical_bytes"], (8 << 20) + os.path.getsize(self.p("gen", nn, "vmstate")))
                self.assertEqual(s["new_pages"] + s["dedup_pages"] + s["zero_pages"], s["pages"])
            self.assertTrue(calls, "no progress call")
            self.assertEqual(calls[-1][0], calls[-1][1], "last progress call is not done == total")
            for nn, tag, _ in rows:
                r = st.restore(tag, self.p("out", tag), progress=lambda d, t: None)
                self.assertEqual(r["logical_bytes"], (8 << 20) + os.path.getsize(self.p("gen", nn, "vmstate")))
                self.assertTrue(filecmp.cmp(self.p("out", tag, "memory.bin"),
                                            self.p("gen", nn, "memory.full"), shallow=False), tag)
                self.assertTrue(filecmp.cmp(self.p("out", tag, "vmstate"),
                                            self.p("gen", nn, "vmstate"), shallow=False), tag)
            last = rows[-1][1]
            imgs = st.images()
            self.assertEqual(sorted(i["tag"] for i in imgs), sorted(t for _, t, _ in rows))
            self.assertEqual([c["tag"] for c in st.chain(last)], [t for _, t, _ in rows])
            info = st.info(last, unique=True)
            self.assertEqual(info["depth"], len(rows) - 1)
            self.assertEqual(info["memory_bytes"], 8 << 20)
            self.assertEqual(sorted(a["name"] for a in info["artifacts"]), ["memory", "vmstate"])
            self.assertGreater(info["stats"]["nonzero_bytes"], 0)
            tags = st.sql("SELECT tag, id FROM snapshot ORDER BY id")
            self.assertEqual([r["tag"] for r in tags], [t for _, t, _ in rows])
            self.assertIsInstance(tags[0]["id"], int)
            v = st.verify()
            self.assertEqual((v["bad_pages"], v["missing_pages"], v["problems"]), (0, 0, []))
            self.assertGreater(v["pages_checked"], 0)
            before = st.stats()
            st.rmi(last)
            g = st.gc()
            self.assertGreater(g["pages_freed"], 0)
            self.assertEqual(st.stats()["snapshots"], before["snapshots"] - 1)

    def test_errors_are_exceptions_with_code_and_message(self):
        with forkstore.Store(self.p("store"), create=True) as st:
            with self.assertRaises(forkstore.NotFound) as e:
                st.restore("no-such-tag", self.p("out"))
            self.assertEqual(e.exception.code, -2)
            self.assertIn("no-such-tag", e.exception.message)
            with open(self.p("m"), "wb") as f:
                f.write(os.urandom(8192))
            st.ingest("a", memory=self.p("m"))
            with self.assertRaises(forkstore.Exists):
                st.ingest("a", memory=self.p("m"))
            with self.assertRaises(forkstore.Invalid) as e:
                st.sql("DELETE FROM snapshot")
            self.assertTrue(e.exception.message)
            with self.assertRaises(forkstore.Invalid):
                st.ingest("bad tag!", memory=self.p("m"))
            with self.assertRaises(forkstore.NotFound):
                st.ingest("b", memory=self.p("missing-file"))
        with self.assertRaises(forkstore.NotFound):
            forkstore.Store(self.p("not-a-store"))
        with self.assertRaises(forkstore.Exists):
            forkstore.init(self.p("store"))

    def test_progress_exception_is_raised_after_the_call(self):
        with open(self.p("m"), "wb") as f:
            f.write(os.urandom(1 << 20))
        with forkstore.Store(self.p("store"), create=True) as st:
            def boom(d, t):
                raise KeyError("from the callback")
            with self.assertRaises(KeyError):
                st.ingest("a", memory=self.p("m"), progress=boom)
            self.assertEqual([i["tag"] for i in st.images()], ["a"])  # the ingest itself completed

    def test_threads_one_store_each(self):
        rows = gen(self.p("gen"), size="4M", snapshots=2)
        forkstore.init(self.p("store"), 1 << 20)
        errs = []

        def work(k):
            try:
                with forkstore.Store(self.p("store")) as st:
                    for nn, tag, _ in rows:
                        t = "t%d-%s" % (k, tag)
                        st.ingest(t, memory=self.p("gen", nn, "memory.full"))
                        st.restore(t, self.p("o%d" % k, tag))
                        if not filecmp.cmp(self.p("o%d" % k, tag, "memory.bin"),
                                           self.p("gen", nn, "memory.full"), shallow=False):
                            errs.append("thread %d: %s differs" % (k, t))
                        st.stats()
            except Exception as e:  # reported below
                errs.append("thread %d: %r" % (k, e))

        ts = [threading.Thread(target=work, args=(k,)) for k in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertEqual(errs, [])
        with forkstore.Store(self.p("store")) as st:
            self.assertEqual(len(st.images()), 4 * len(rows))


class TestBranch(Tmp):
    """branch of a running VM (the test VMM, tools/vmm/fcvmm, speaks
    Firecracker's API): a Full then a Diff, each restoring to the VM's RAM
    at its snapshot (the VMM's dump of every successful create)."""

    def test_full_then_diff_branch(self):
        sock, dumps = self.p("vm.sock"), self.p("dumps")
        os.mkdir(dumps)
        os.mkdir(self.p("stage"))
        vmm = subprocess.Popen([FCVMM, "--api-sock", sock, "--backend", "thread", "--mem-mib", "16",
                                "--rate", "20000", "--seed", "3", "--dump-dir", dumps, "--id", "pyvm"],
                               stderr=subprocess.DEVNULL)
        try:
            for _ in range(200):
                if os.path.exists(sock):
                    break
                time.sleep(0.05)
            time.sleep(0.2)
            with forkstore.Store(self.p("store"), create=True, chunk_size=1 << 20) as st:
                r0 = st.branch(sock, "b0", full=True, staging=self.p("stage"))
                self.assertEqual(r0["diff"], 0)
                self.assertEqual(r0["tag"], "b0")
                time.sleep(0.2)
                r1 = st.branch(sock, "b1", parent="b0", staging=self.p("stage"))
                self.assertEqual(r1["diff"], 1)
                self.assertGreaterEqual(r1["pause_ms"], 0)
                d = sorted(os.listdir(dumps))
                self.assertEqual(len(d), 2, d)
                for tag, dump in zip(("b0", "b1"), d):
                    st.restore(tag, self.p("r", tag))
                    self.assertTrue(filecmp.cmp(self.p("r", tag, "memory.bin"), os.path.join(dumps, dump),
                                                shallow=False), tag)
                with self.assertRaises(forkstore.Refused):
                    st.branch(sock, "b2", parent="b0", staging=self.p("stage"))   # b0 is not the VM's last
        finally:
            vmm.kill()
            vmm.wait()


class TestReadmeExample(Tmp):
    """The Python example in README.md, run as written, in a directory
    holding the files it names."""

    def test_readme_example(self):
        with open(os.path.join(ROOT, "README.md")) as f:
            readme = f.read()
        m = re.search(r"<!-- python-example -->\s*```python\n(.*?)```", readme, re.S)
        self.assertIsNotNone(m, "README.md has no python-example block")
        rows = gen(self.p("gen"), size="4M", snapshots=2)
        for nn, tag, parent in rows:
            name = "child" if parent else "base"
            for f in ("memory.full", "memory.diff", "vmstate"):
                if os.path.exists(self.p("gen", nn, f)):
                    os.link(self.p("gen", nn, f), self.p("%s.%s" % (name, f)))   # a Diff's holes kept
        cwd = os.getcwd()
        os.chdir(self.dir)
        try:
            exec(compile(m.group(1), "README.md", "exec"), {})
        finally:
            os.chdir(cwd)
        self.assertTrue(filecmp.cmp(self.p("out", "memory.bin"), self.p("child.memory.full"), shallow=False))


if __name__ == "__main__":
    unittest.main()
