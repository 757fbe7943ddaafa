-- 0004_vm_chain: what `forkctl branch` knows about each VM it snapshots,
-- and the Firecracker versions of every branched snapshot.
--
-- Firecracker resets its dirty-page bitmap on every successful
-- PUT /snapshot/create, so a Diff is only correct against the VM's last
-- snapshot, and only if that snapshot was stored. vm_head keeps, per VM,
-- that last snapshot and how far it got:
--   stored    head_id is the VM's last snapshot, in the store: a Diff on it
--             is correct (head_id NULL: that snapshot was removed since).
--   creating  a snapshot/create was sent (or about to be) and its outcome
--             is unknown: the bitmap may be reset and the files in staging
--             may be incomplete. Only a Full snapshot is safe.
--   staged    the create succeeded into staging, but the ingest did not
--             finish (pending_tag on pending_parent_id, Diff if
--             pending_diff): `forkctl branch --resume` ingests the kept
--             staging, or a Full starts over.
-- The row is written before the create is sent and updated after it.
-- vm_key is "vm:" and the identity the caller passes (--vm-id), else
-- "fc:" Firecracker's instance id from GET / "@" the API socket's path.
--
-- snapshot.fc_version: GET /version of the VMM that took it;
-- snapshot.format_version: the snapshot data format version from the
-- vmstate header (M.m.p). NULL for snapshots ingested from files.

CREATE TABLE vm_head (
    vm_key            TEXT PRIMARY KEY,
    api_sock          TEXT,
    state             TEXT NOT NULL CHECK (state IN ('stored', 'creating', 'staged')),
    head_id           INTEGER REFERENCES snapshot(id) ON DELETE SET NULL,
    pending_tag       TEXT,
    pending_parent_id INTEGER REFERENCES snapshot(id) ON DELETE SET NULL,
    pending_diff      INTEGER,
    staging           TEXT,
    fc_version        TEXT,
    format_version    TEXT,
    pause_ms          INTEGER,
    snapshot_ms       INTEGER,
    diff_bytes        INTEGER,
    updated_ms        INTEGER NOT NULL
) WITHOUT ROWID;

ALTER TABLE snapshot ADD COLUMN fc_version TEXT;
ALTER TABLE snapshot ADD COLUMN format_version TEXT;
