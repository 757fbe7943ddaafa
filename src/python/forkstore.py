"""forkstore: the Python binding of libforkstore.

Standard library only: ctypes over the shared library libforkstore.so.0
(``make`` builds it in build/, ``make install`` installs it). The library
is found as $FORKSTORE_LIB if set, else by its soname through the dynamic
loader (ctypes.util.find_library).

Design:

- One class, ``Store``, wraps an ``fks_store`` handle (a context manager;
  ``close()`` is idempotent). Every method is one library call; its report
  struct comes back as a plain ``dict`` of the C fields (bytes decoded as
  UTF-8 text), so a new field in the library is a new key here.
- A failing call raises ``Error`` (or the subclass for its code:
  ``NotFound``, ``Exists``, ``Invalid``, ``Locked``, ``Corrupt``, ...) with
  ``code`` (the negative FKS_E* value), ``name`` (fks_strerror) and the
  library's message (fks_errmsg, read on the calling thread right after
  the call: it is thread-local in the library).
- Progress callbacks are Python callables ``fn(done, total)`` (bytes),
  called on the calling thread at most every ~100 ms and once at the end
  with done == total. An exception raised by one is kept, the library's
  operation runs to its end (the C side cannot be unwound), and the
  exception is raised afterwards.
- Threads: as the library's rule (forkstore.h): a Store is used by one
  thread at a time; open one Store per thread. ctypes releases the GIL
  during each call, so threads with their own Store run in parallel.
- The ctypes structures below mirror forkstore.h field for field; their
  layout is checked against the library's recorded ABI
  (src/abi/libforkstore.abi) by tests/python/test_forkstore.py, and
  ``ABI`` names the soname this file was written for.
"""

import ctypes
import ctypes.util
import os

__all__ = ["Store", "Error", "NotFound", "Exists", "Invalid", "Locked", "Corrupt",
           "IOFailure", "NoSpace", "Newer", "TimedOut", "FirecrackerError",
           "OutOfMemory", "Permission", "Refused", "Limit", "version", "init"]

ABI = "libforkstore.so.0"

# ---- errors -----------------------------------------------------------------


class Error(Exception):
    """A failure the library reported: code (FKS_E*), name, message."""

    def __init__(self, code, name, message):
        super().__init__(message or name)
        self.code = code
        self.name = name
        self.message = message


def _sub(cname, code):
    return type(cname, (Error,), {"CODE": code})


NotFound = _sub("NotFound", -2)
Exists = _sub("Exists", -3)
Invalid = _sub("Invalid", -4)
Locked = _sub("Locked", -5)
Corrupt = _sub("Corrupt", -6)
IOFailure = _sub("IOFailure", -7)
NoSpace = _sub("NoSpace", -8)
Newer = _sub("Newer", -9)
TimedOut = _sub("TimedOut", -10)
FirecrackerError = _sub("FirecrackerError", -11)
OutOfMemory = _sub("OutOfMemory", -12)
Permission = _sub("Permission", -13)
Refused = _sub("Refused", -14)
Limit = _sub("Limit", -15)
_BY_CODE = {c.CODE: c for c in (NotFound, Exists, Invalid, Locked, Corrupt, IOFailure, NoSpace,
                                Newer, TimedOut, FirecrackerError, OutOfMemory, Permission,
                                Refused, Limit)}

# ---- structures (forkstore.h) -----------------------------------------------

c_u64, c_i64, c_int, c_dbl, c_str, c_vp, c_size = (ctypes.c_uint64, ctypes.c_int64, ctypes.c_int,
                                                   ctypes.c_double, ctypes.c_char_p, ctypes.c_void_p,
                                                   ctypes.c_size_t)
PROGRESS = ctypes.CFUNCTYPE(None, c_vp, c_u64, c_u64)
ROW = ctypes.CFUNCTYPE(c_int, c_vp, c_int, ctypes.POINTER(c_str), ctypes.POINTER(c_str),
                       ctypes.POINTER(c_int))


class fks_artifact_in(ctypes.Structure):
    _fields_ = [("name", c_str), ("path", c_str), ("diff", c_int)]


class fks_ingest_opts(ctypes.Structure):
    _fields_ = [("tag", c_str), ("parent", c_str), ("artifacts", ctypes.POINTER(fks_artifact_in)),
                ("n_artifacts", c_size), ("progress", PROGRESS), ("progress_arg", c_vp),
                ("pause_ms", c_i64), ("snapshot_ms", c_i64), ("diff_bytes", c_i64),
                ("no_follow", c_int)]


class fks_ingest_stats(ctypes.Structure):
    _fields_ = [(n, c_u64) for n in ("logical_bytes", "read_bytes", "pages", "zero_pages",
                                     "dedup_pages", "new_pages", "stored_bytes")] + [("seconds", c_dbl)]


class fks_restore_stats(ctypes.Structure):
    _fields_ = [("logical_bytes", c_u64), ("written_bytes", c_u64), ("pages", c_u64),
                ("seconds", c_dbl)]


class fks_snapinfo(ctypes.Structure):
    _fields_ = [("id", c_i64), ("tag", ctypes.c_char * 129), ("parent", ctypes.c_char * 129),
                ("created_ms", c_i64), ("logical_bytes", c_u64), ("memory_bytes", c_u64),
                ("stored_bytes", c_u64), ("has_rootfs", c_int), ("depth", c_int),
                ("pause_ms", c_i64), ("snapshot_ms", c_i64), ("ingest_ms", c_i64),
                ("diff_bytes", c_i64)]


class fks_gc_opts(ctypes.Structure):
    _fields_ = [("dry_run", c_int), ("max_seconds", c_dbl), ("live_threshold", c_dbl),
                ("max_unused", c_dbl), ("progress", PROGRESS), ("progress_arg", c_vp)]


class fks_gc_report(ctypes.Structure):
    _fields_ = [(n, c_u64) for n in ("pages_freed", "page_bytes_freed", "chunks_rewritten",
                                     "chunks_deleted", "strays_deleted", "bytes_copied",
                                     "disk_bytes_before", "disk_bytes_after")] + \
               [("stopped_early", c_int), ("seconds", c_dbl), ("maps_folded", c_u64)]


class fks_jail(ctypes.Structure):
    _fields_ = [("root", c_str), ("uid", ctypes.c_long), ("gid", ctypes.c_long)]


class fks_branch_opts(ctypes.Structure):
    _fields_ = [("api_sock", c_str), ("tag", c_str), ("parent", c_str), ("full", c_int),
                ("staging", c_str), ("timeout_ms", ctypes.c_long), ("progress", PROGRESS),
                ("progress_arg", c_vp), ("vm_id", c_str), ("resume", c_int),
                ("force_version", c_int), ("jail", fks_jail)]


class fks_branch_result(ctypes.Structure):
    _fields_ = [("diff", c_int), ("pause_ms", c_i64), ("snapshot_ms", c_i64), ("ingest_ms", c_i64),
                ("pause_s", c_dbl), ("snapshot_s", c_dbl), ("ingest_s", c_dbl),
                ("diff_bytes", c_i64), ("ingest", fks_ingest_stats),
                ("tag", ctypes.c_char * 129), ("vm_key", ctypes.c_char * 600),
                ("fc_version", ctypes.c_char * 32), ("format_version", ctypes.c_char * 32),
                ("kept_staging", ctypes.c_char * 4096), ("need_full", c_int),
                ("can_resume", c_int), ("head", ctypes.c_char * 129)]


class fks_artifact_stats(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char * 65), ("size", c_u64), ("nonzero_bytes", c_u64),
                ("runs", c_u64)]


class fks_snap_stats(ctypes.Structure):
    _fields_ = [(n, c_u64) for n in ("logical_bytes", "nonzero_bytes", "shared_with_parent_bytes",
                                     "unique_pages", "unique_bytes", "unique_stored_bytes",
                                     "stored_bytes")] + \
               [("n_artifacts", c_size), ("artifacts", ctypes.POINTER(fks_artifact_stats)),
                ("unique_known", c_int), ("runs_known", c_int)]


class fks_store_stats(ctypes.Structure):
    _fields_ = [(n, c_u64) for n in ("snapshots", "artifacts", "runs", "chunks", "logical_bytes",
                                     "logical_pages", "page_refs", "pages", "referenced_pages",
                                     "stored_bytes", "reclaimable_bytes", "chunk_used_bytes",
                                     "chunk_disk_bytes", "dead_bytes")] + \
               [("dead_share", c_dbl), ("catalog_disk_bytes", c_u64), ("dedup_ratio", c_dbl),
                ("compression_ratio", c_dbl), ("zero_page_share", c_dbl)]


class fks_verify_report(ctypes.Structure):
    _fields_ = [(n, c_u64) for n in ("chunks_checked", "pages_checked", "runs_checked",
                                     "bad_chunks", "bad_pages", "missing_pages", "bad_runs")] + \
               [("n_problems", c_size), ("problems", ctypes.POINTER(c_str)),
                ("n_affected", c_size), ("affected", ctypes.POINTER(c_str)),
                ("seconds", c_dbl), ("n_notes", c_size), ("notes", ctypes.POINTER(c_str))]


STRUCTS = [fks_artifact_in, fks_ingest_opts, fks_ingest_stats, fks_restore_stats, fks_snapinfo,
           fks_gc_opts, fks_gc_report, fks_jail, fks_branch_opts, fks_branch_result,
           fks_artifact_stats, fks_snap_stats, fks_store_stats, fks_verify_report]

# ---- the library --------------------------------------------------------------


def _load():
    path = os.environ.get("FORKSTORE_LIB") or ctypes.util.find_library("forkstore") or ABI
    lib = ctypes.CDLL(path)
    P, PP = ctypes.POINTER, ctypes.POINTER(ctypes.c_void_p)
    sigs = {
        "fks_version": (c_str, []),
        "fks_version_number": (c_int, []),
        "fks_errmsg": (c_str, []),
        "fks_strerror": (c_str, [c_int]),
        "fks_init": (c_int, [c_str, c_u64]),
        "fks_open": (c_int, [PP, c_str, c_int]),
        "fks_close": (None, [c_vp]),
        "fks_ingest": (c_int, [P(fks_ingest_stats), c_vp, P(fks_ingest_opts)]),
        "fks_restore": (c_int, [P(fks_restore_stats), c_vp, c_str, c_str, c_int, PROGRESS, c_vp]),
        "fks_list": (c_int, [P(P(fks_snapinfo)), P(c_size), c_vp]),
        "fks_get": (c_int, [P(fks_snapinfo), c_vp, c_str]),
        "fks_chain": (c_int, [P(P(fks_snapinfo)), P(c_size), c_vp, c_str]),
        "fks_rmi": (c_int, [c_vp, c_str, c_int]),
        "fks_tag": (c_int, [c_vp, c_str, c_str]),
        "fks_gc": (c_int, [P(fks_gc_report), c_vp, P(fks_gc_opts)]),
        "fks_verify": (c_int, [P(P(fks_verify_report)), c_vp, c_dbl, PROGRESS, c_vp]),
        "fks_verify_free": (None, [P(fks_verify_report)]),
        "fks_branch": (c_int, [P(fks_branch_result), c_vp, P(fks_branch_opts)]),
        "fks_snap_stats_get_ex": (c_int, [P(P(fks_snap_stats)), c_vp, c_str, c_int]),
        "fks_snap_stats_free": (None, [P(fks_snap_stats)]),
        "fks_store_stats_get": (c_int, [P(fks_store_stats), c_vp]),
        "fks_sql": (c_int, [c_vp, c_str, ROW, c_vp]),
    }
    for name, (res, args) in sigs.items():
        f = getattr(lib, name)
        f.restype, f.argtypes = res, args
    return lib


_lib = _load()
_libc = ctypes.CDLL(None)
_libc.free.argtypes = [ctypes.c_void_p]
_libc.free.restype = None


def version():
    """The library's version string (fks_version)."""
    return _lib.fks_version().decode()


def _raise(rc):
    msg = (_lib.fks_errmsg() or b"").decode(errors="replace")
    name = (_lib.fks_strerror(rc) or b"").decode()
    raise _BY_CODE.get(rc, Error)(rc, name, msg)


def _check(rc):
    if rc != 0:
        _raise(rc)


def _b(s):
    return None if s is None else os.fsencode(s)


def _dict(st):
    """A report struct as a dict of its value fields (pointers left out)."""
    out = {}
    for name, typ in st._fields_:
        if typ in (PROGRESS, c_vp, c_str) or issubclass(typ, ctypes._Pointer):
            continue
        v = getattr(st, name)
        if isinstance(v, bytes):
            v = v.decode(errors="replace")
        elif isinstance(v, ctypes.Structure):
            v = _dict(v)
        out[name] = v
    return out


def _strings(p, n):
    return [p[i].decode(errors="replace") for i in range(n)]


class _Progress:
    """A Python callable as an fks_progress_fn; keeps its exception."""

    def __init__(self, fn):
        self.fn, self.exc = fn, None
        self.c = PROGRESS(self._call) if fn else PROGRESS()

    def _call(self, _arg, done, total):
        if self.exc is None:
            try:
                self.fn(done, total)
            except BaseException as e:  # raised after the call returns
                self.exc = e

    def done(self):
        if self.exc is not None:
            raise self.exc


def init(path, chunk_size=0):
    """Creates an empty store in path (fks_init)."""
    _check(_lib.fks_init(_b(path), chunk_size))


class Store:
    """An open store (fks_open). Use as a context manager, one per thread."""

    READONLY = 0x1

    def __init__(self, path, create=False, readonly=False, chunk_size=0):
        self._h = None
        if create:
            init(path, chunk_size)
        h = ctypes.c_void_p()
        _check(_lib.fks_open(ctypes.byref(h), _b(path), self.READONLY if readonly else 0))
        self._h = h

    def close(self):
        if getattr(self, "_h", None):
            _lib.fks_close(self._h)
            self._h = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):
        self.close()

    def _handle(self):
        if not self._h:
            raise ValueError("store is closed")
        return self._h

    # -- snapshots --

    def ingest(self, tag, memory=None, vmstate=None, parent=None, diff=False, files=None,
               progress=None):
        """Stores a snapshot: memory (a Full file, or a Diff one with
        diff=True and a parent), vmstate, and any files {name: path}.
        Returns the ingest statistics."""
        arts = []
        if memory is not None:
            arts.append(("memory", memory, diff))
        if vmstate is not None:
            arts.append(("vmstate", vmstate, False))
        for name, path in (files or {}).items():
            arts.append((name, path, False))
        arr = (fks_artifact_in * len(arts))(*[fks_artifact_in(_b(n), _b(p), int(bool(d)))
                                              for n, p, d in arts])
        pr = _Progress(progress)
        o = fks_ingest_opts(tag=_b(tag), parent=_b(parent), artifacts=arr, n_artifacts=len(arts),
                            progress=pr.c, pause_ms=-1, snapshot_ms=-1, diff_bytes=-1)
        st = fks_ingest_stats()
        rc = _lib.fks_ingest(ctypes.byref(st), self._handle(), ctypes.byref(o))
        pr.done()
        _check(rc)
        return _dict(st)

    def restore(self, tag, out, force=False, sync=False, progress=None):
        """Writes snapshot tag's files into directory out (memory as
        memory.bin, zero pages as holes), all or nothing."""
        pr = _Progress(progress)
        st = fks_restore_stats()
        rc = _lib.fks_restore(ctypes.byref(st), self._handle(), _b(tag), _b(out),
                              (1 if force else 0) | (2 if sync else 0), pr.c, None)
        pr.done()
        _check(rc)
        return _dict(st)

    def branch(self, api_sock, tag, parent=None, full=False, staging=None, timeout_ms=0,
               vm_id=None, progress=None):
        """Snapshots the running Firecracker VM at api_sock (a Diff on
        parent unless full) and stores it as tag; the VM is resumed
        whatever happens. Returns the branch result (timings, versions)."""
        pr = _Progress(progress)
        o = fks_branch_opts(api_sock=_b(api_sock), tag=_b(tag), parent=_b(parent), full=int(full),
                            staging=_b(staging), timeout_ms=timeout_ms, progress=pr.c,
                            vm_id=_b(vm_id), jail=fks_jail(None, -1, -1))
        res = fks_branch_result()
        rc = _lib.fks_branch(ctypes.byref(res), self._handle(), ctypes.byref(o))
        pr.done()
        _check(rc)
        return _dict(res)

    def images(self):
        """Every snapshot, most recent first (fks_list)."""
        p, n = ctypes.POINTER(fks_snapinfo)(), c_size()
        _check(_lib.fks_list(ctypes.byref(p), ctypes.byref(n), self._handle()))
        try:
            return [_dict(p[i]) for i in range(n.value)]
        finally:
            _libc.free(p)

    def chain(self, tag):
        """The chain from the root to tag, root first."""
        p, n = ctypes.POINTER(fks_snapinfo)(), c_size()
        _check(_lib.fks_chain(ctypes.byref(p), ctypes.byref(n), self._handle(), _b(tag)))
        try:
            return [_dict(p[i]) for i in range(n.value)]
        finally:
            _libc.free(p)

    def info(self, tag, unique=False):
        """One snapshot: its lineage entry and its sizes, with
        "artifacts" (name, size, nonzero_bytes, runs) and, with unique,
        the bytes only it references."""
        si = fks_snapinfo()
        _check(_lib.fks_get(ctypes.byref(si), self._handle(), _b(tag)))
        out = _dict(si)
        p = ctypes.POINTER(fks_snap_stats)()
        _check(_lib.fks_snap_stats_get_ex(ctypes.byref(p), self._handle(), _b(tag),
                                          (1 if unique else 0) | 2))
        try:
            st = p.contents
            out["stats"] = _dict(st)
            out["artifacts"] = [_dict(st.artifacts[i]) for i in range(st.n_artifacts)]
        finally:
            _lib.fks_snap_stats_free(p)
        return out

    def rmi(self, tag, cascade=False):
        """Removes a snapshot (children stay restorable); gc frees its pages."""
        _check(_lib.fks_rmi(self._handle(), _b(tag), int(cascade)))

    def tag(self, old, new):
        """Renames snapshot old to new."""
        _check(_lib.fks_tag(self._handle(), _b(old), _b(new)))

    # -- store --

    def gc(self, dry_run=False, max_seconds=0.0, max_unused=0.0, progress=None):
        """Reclaims space; returns the gc report."""
        pr = _Progress(progress)
        o = fks_gc_opts(dry_run=int(dry_run), max_seconds=max_seconds, max_unused=max_unused,
                        progress=pr.c)
        r = fks_gc_report()
        rc = _lib.fks_gc(ctypes.byref(r), self._handle(), ctypes.byref(o))
        pr.done()
        _check(rc)
        return _dict(r)

    def verify(self, sample_percent=100.0, progress=None):
        """Checks the store; returns counts and the lists of problems,
        affected snapshots and notes (the call fails only if the check
        could not run)."""
        pr = _Progress(progress)
        p = ctypes.POINTER(fks_verify_report)()
        rc = _lib.fks_verify(ctypes.byref(p), self._handle(), sample_percent, pr.c, None)
        pr.done()
        _check(rc)
        try:
            r = p.contents
            out = _dict(r)
            out["problems"] = _strings(r.problems, r.n_problems)
            out["affected"] = _strings(r.affected, r.n_affected)
            out["notes"] = _strings(r.notes, r.n_notes)
            return out
        finally:
            _lib.fks_verify_free(p)

    def stats(self):
        """Store-wide numbers (fks_store_stats_get)."""
        st = fks_store_stats()
        _check(_lib.fks_store_stats_get(ctypes.byref(st), self._handle()))
        return _dict(st)

    def sql(self, query):
        """Runs one read-only statement on the catalog; returns the rows as
        a list of dicts (column name -> value: int, float, str, None, or
        bytes for a BLOB)."""
        rows, exc = [], []

        def row(_arg, ncol, names, values, types):
            try:
                r = {}
                for i in range(ncol):
                    v, t = values[i], types[i]
                    if v is None or t == 5:
                        v = None
                    elif t == 1:
                        v = int(v)
                    elif t == 2:
                        v = float(v)
                    elif t == 4:
                        v = bytes.fromhex(v.decode())
                    else:
                        v = v.decode(errors="replace")
                    r[names[i].decode()] = v
                rows.append(r)
                return 0
            except BaseException as e:
                exc.append(e)
                return 1

        cb = ROW(row)
        rc = _lib.fks_sql(self._handle(), query.encode(), cb, None)
        if exc:
            raise exc[0]
        _check(rc)
        return rows
