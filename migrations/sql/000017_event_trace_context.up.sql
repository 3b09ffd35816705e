-- The W3C traceparent of the request that posted an event, when it was
-- traced: the retry scheduler republishes the event's deliveries in that
-- trace, so retries join it instead of starting their own (ADR 20).
-- Nullable without a default: adding it rewrites nothing.
ALTER TABLE events ADD COLUMN traceparent text;
