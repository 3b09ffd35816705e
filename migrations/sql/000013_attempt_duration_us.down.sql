ALTER TABLE attempts DROP COLUMN duration_us;
