#!/usr/bin/env python3
"""forkd-assemble.py: an independent reimplementation of how forkd v0.5.3
restores a snapshot's memory, for tests (crates/forkd-vmm/src/chain.rs and
the controller's snapshot lookup).

  forkd-assemble.py [--max-depth N] ROOT TAG OUT   assemble TAG's memory into OUT
  forkd-assemble.py [--max-depth N] ROOT TAG       only resolve and verify

Lookup: ROOT/<tag> is a snapshot if it holds vmstate; its snapshot.json is
parsed, or, if missing or unparseable, it is a base with memory.bin (v0.4).
resolve_chain walks parent_tag to the base: a cycle or more than
MAX_CHAIN_DEPTH (32) links is an error. verify_parent_hashes: every link
needs parent_content_hash, equal to the SHA-256 of the file the parent's
"memory" path names (read as is: holes are zeros). Assembly copies the
base's memory file and, for each link in order, copies its data extents
(SEEK_DATA / SEEK_HOLE) over it; sizes must be equal. Paths are the
absolute ones in snapshot.json, as forkd uses them. Exit 1 with forkd's
complaint on any refusal.
"""
import hashlib
import json
import os
import sys

MAX_CHAIN_DEPTH = 32


def fail(msg):
    print("forkd-assemble: " + msg, file=sys.stderr)
    sys.exit(1)


def lookup(root, tag):
    d = os.path.join(root, tag)
    if not os.path.exists(os.path.join(d, "vmstate")):
        fail("snapshot tag `%s` not found under %s" % (tag, root))
    try:
        with open(os.path.join(d, "snapshot.json"), "rb") as f:
            s = json.loads(f.read())
        if not isinstance(s.get("vmstate"), str) or not isinstance(s.get("memory"), str):
            raise ValueError("not a Snapshot")
        return s
    except (OSError, ValueError):
        return {"vmstate": os.path.join(d, "vmstate"), "memory": os.path.join(d, "memory.bin")}


def resolve_chain(root, head, max_depth):
    chain, cur = [], head
    for _ in range(max_depth + 1):
        if any(t == cur for t, _ in chain):
            fail("snapshot chain has a cycle: `%s` is reachable from itself via parent_tag" % cur)
        snap = lookup(root, cur)
        chain.append((cur, snap))
        if snap.get("parent_tag") is None:
            chain.reverse()
            return chain
        cur = snap["parent_tag"]
    fail("snapshot chain for `%s` exceeds MAX_CHAIN_DEPTH=%d" % (head, max_depth))


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                return h.hexdigest()
            h.update(b)


def verify_parent_hashes(chain):
    for (ptag, psnap), (ctag, csnap) in zip(chain, chain[1:]):
        rec = csnap.get("parent_content_hash")
        if rec is None:
            fail("chained snapshot `%s` has parent_tag=`%s` but no parent_content_hash" % (ctag, ptag))
        act = sha256_file(psnap["memory"])
        if act != rec:
            fail("chain `%s` references parent `%s` with content `%s...`, but parent now has content `%s...`"
                 % (ctag, ptag, rec[:12], act[:12]))


def apply_diff(diff, base):
    with open(diff, "rb") as df, open(base, "r+b") as bf:
        dlen, blen = os.fstat(df.fileno()).st_size, os.fstat(bf.fileno()).st_size
        if dlen != blen:
            fail("apply_diff: size mismatch (diff=%d B vs base=%d B)" % (dlen, blen))
        cur = 0
        while True:
            try:
                ds = os.lseek(df.fileno(), cur, os.SEEK_DATA)
            except OSError:
                break  # ENXIO: no data after cur
            if ds >= dlen:
                break
            he = min(os.lseek(df.fileno(), ds, os.SEEK_HOLE), dlen)
            df.seek(ds)
            bf.seek(ds)
            left = he - ds
            while left:
                b = df.read(min(left, 1 << 20))
                bf.write(b)
                left -= len(b)
            cur = he


def main():
    args = sys.argv[1:]
    max_depth = MAX_CHAIN_DEPTH
    if len(args) >= 2 and args[0] == "--max-depth":
        max_depth = int(args[1])
        args = args[2:]
    if len(args) not in (2, 3):
        fail("usage: forkd-assemble.py [--max-depth N] ROOT TAG [OUT]")
    root, tag = args[0], args[1]
    chain = resolve_chain(root, tag, max_depth)
    verify_parent_hashes(chain)
    if len(args) == 3:
        out = args[2]
        if os.path.exists(out):
            fail("out_path %s already exists" % out)
        with open(chain[0][1]["memory"], "rb") as src, open(out, "xb") as dst:
            while True:
                b = src.read(1 << 20)
                if not b:
                    break
                dst.write(b)
        for _, snap in chain[1:]:
            apply_diff(snap["memory"], out)
    print(" ".join(t for t, _ in chain))


if __name__ == "__main__":
    main()
