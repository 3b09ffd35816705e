ALTER TABLE ordering_keys ADD COLUMN open bigint NOT NULL DEFAULT 0 CHECK (open >= 0);
UPDATE ordering_keys k SET open = (
    SELECT count(*) FROM deliveries d
    WHERE d.subscription_id = k.subscription_id AND d.ordering_key = k.key AND d.seq IS NOT NULL
      AND d.status IN ('pending', 'processing', 'retrying'));
ALTER TABLE ordering_keys ALTER COLUMN open DROP DEFAULT;
