-- 0009_remote_encrypt: encrypted remotes (issue 16; src/remote.c and
-- src/seal.c describe the sealed objects). `forkctl remote add NAME
-- s3://... --endpoint URL --encrypt KEYFILE`.
--
-- The key itself is deliberately not here, as credentials are not: only
-- the key file's absolute path, read at each push and pull, and its key
-- id, so that a key file replaced by another key is refused by name
-- rather than reported as damage in the bucket.
--   key_file  NULL: not encrypted; else an absolute path
--   key_id    16 hex digits (src/seal.c: HKDF info "forkstore key id"),
--             NULL exactly when key_file is

ALTER TABLE remote ADD COLUMN key_file TEXT;
ALTER TABLE remote ADD COLUMN key_id TEXT;
