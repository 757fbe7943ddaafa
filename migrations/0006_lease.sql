-- 0006_lease: lazy restore (src/pageserver.c, src/lease.c).
--
-- lease: one row per running page server. While a lease is live, gc keeps
-- every page its lease_run rows name, even after the snapshot is removed
-- (rmi deletes the snapshot's runs; the server still serves them). A lease
-- is live while expires_ms is in the future (the server renews it every
-- third of its time to live) or while the process that took it still runs
-- (same boot_id, pid and start_time, so a reused pid is not mistaken for
-- it). A lease that is expired and whose process is gone (a crash) is
-- deleted by the next gc. snapshot_id is not a foreign key: the lease
-- outlives an rmi of its snapshot.
--
-- working_set: the pages a lazily restored guest faulted in, in fault
-- order (page numbers of the memory artifact, 8-byte little-endian each),
-- recorded by the page server when it exits; the next lazy restore of
-- the snapshot or of a descendant installs them ahead of the guest.
--
-- lazy_restore: the figures of a snapshot's last lazy restore.

CREATE TABLE lease (
    id          INTEGER PRIMARY KEY,
    snapshot_id INTEGER NOT NULL,
    tag         TEXT NOT NULL,
    pid         INTEGER NOT NULL,
    boot_id     TEXT NOT NULL,
    start_time  INTEGER NOT NULL,                    -- /proc/PID/stat field 22
    created_ms  INTEGER NOT NULL,
    expires_ms  INTEGER NOT NULL
);

CREATE TABLE lease_run (
    lease_id    INTEGER NOT NULL REFERENCES lease(id) ON DELETE CASCADE,
    pgno        INTEGER NOT NULL,
    npages      INTEGER NOT NULL CHECK (npages > 0),
    page_id     INTEGER NOT NULL,
    PRIMARY KEY (lease_id, pgno)
) WITHOUT ROWID;

CREATE TABLE working_set (
    snapshot_id INTEGER PRIMARY KEY REFERENCES snapshot(id) ON DELETE CASCADE,
    npages      INTEGER NOT NULL,
    pages       BLOB NOT NULL,
    recorded_ms INTEGER NOT NULL
);

CREATE TABLE lazy_restore (
    snapshot_id    INTEGER PRIMARY KEY REFERENCES snapshot(id) ON DELETE CASCADE,
    finished_ms    INTEGER NOT NULL,
    vms            INTEGER NOT NULL,
    faults         INTEGER NOT NULL,
    pages_demand   INTEGER NOT NULL,
    pages_prefetch INTEGER NOT NULL,
    pages_zero     INTEGER NOT NULL,
    bytes_decoded  INTEGER NOT NULL,
    fault_p50_us   REAL,
    fault_p99_us   REAL
);
