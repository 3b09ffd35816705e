-- A key's count of open deliveries goes (ADR 43): ingest now tells a new
-- delivery's place from the delivery before it in its key, locked FOR
-- SHARE, so the worker that makes a head final no longer writes the key's
-- row, and a hot key's ingests and deliveries stop queueing for its lock.
ALTER TABLE ordering_keys DROP COLUMN open;
