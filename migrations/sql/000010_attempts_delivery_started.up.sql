-- GET /events/{id}/attempts pages an event's attempts by (started_at, id),
-- oldest or newest first, each of its deliveries through this index: a
-- page reads at most its own size of a delivery's attempts, however many
-- retries and redeliveries the delivery has had, and a page of one
-- delivery's attempts (subscription_id given) is one range of it.
-- (delivery_id, number) stays: it keeps attempt numbers unique.
CREATE INDEX attempts_delivery_started ON attempts (delivery_id, started_at, id);
