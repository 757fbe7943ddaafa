-- 0007_remote: the remotes a store pushes snapshots to and pulls them
-- from: S3-compatible object storage (AWS S3, Ceph RGW, MinIO, R2), one
-- bucket and a key prefix each (src/remote.c describes the objects kept
-- there). `forkctl remote add NAME s3://BUCKET/PREFIX --endpoint URL`.
--
-- Credentials are deliberately not here: they come from the environment
-- (AWS_ACCESS_KEY_ID, ...) or ~/.aws/credentials at each push and pull,
-- so a copied catalog gives nobody access to the bucket.
--   prefix    '' or a key prefix without leading or trailing '/'
--   endpoint  http[s]://HOST[:PORT], requests are path-style
--   region    signed into every request (SigV4), 'us-east-1' by default

CREATE TABLE remote (
    name       TEXT PRIMARY KEY,
    bucket     TEXT NOT NULL,
    prefix     TEXT NOT NULL,
    endpoint   TEXT NOT NULL,
    region     TEXT NOT NULL,
    created_ms INTEGER NOT NULL
) WITHOUT ROWID;
