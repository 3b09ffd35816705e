-- An attempt's duration in microseconds: on a local network an attempt
-- takes well under a millisecond, which duration_ms recorded as 0. The
-- column is nullable, so adding it rewrites nothing; attempts recorded
-- before it have only duration_ms, which readers fall back on. duration_ms
-- is still written, for instances of the previous version during an
-- upgrade.
ALTER TABLE attempts ADD COLUMN duration_us bigint;
