-- 0006_placeholder: an empty stand-in so that this branch (h-remote) builds
-- with its migration numbered 0007 while 0005 and 0006 are written on
-- other branches. DROP THIS FILE WHEN MERGING: the real 0006 replaces it.
SELECT 1;
