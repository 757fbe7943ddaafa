-- 0005_reserved: a placeholder on branch h-lazy for the lead's migration
-- 0005 (the page-map format), so that 0006 applies in order. It adds
-- nothing. On merge the lead's 0005 replaces this file.
SELECT 1;
