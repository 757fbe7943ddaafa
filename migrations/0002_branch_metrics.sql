-- 0002_branch_metrics: timings of snapshots taken by `forkctl branch`.
--
-- pause_ms: pause request sent to resume acknowledged; snapshot_ms: the
-- snapshot/create call; ingest_ms: staging to durable in the store;
-- diff_bytes: physical bytes of the staged memory file. NULL when the
-- snapshot was ingested from files.

ALTER TABLE snapshot ADD COLUMN pause_ms INTEGER;
ALTER TABLE snapshot ADD COLUMN snapshot_ms INTEGER;
ALTER TABLE snapshot ADD COLUMN ingest_ms INTEGER;
ALTER TABLE snapshot ADD COLUMN diff_bytes INTEGER;
