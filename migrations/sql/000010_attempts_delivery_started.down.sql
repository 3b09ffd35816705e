DROP INDEX attempts_delivery_started;
