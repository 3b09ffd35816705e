-- What an attempt's page shows of its HTTP exchange besides the status and
-- the body (ADR 38), each as "Name: value" lines:
--   request_headers: the request headers whose values vary per attempt or
--     per worker release (User-Agent, webhook-timestamp, webhook-signature,
--     and traceparent and tracestate when sent); the others are derived
--     from the event and the subscription when read.
--   response_headers: the receiver's response headers, at most 32 lines and
--     4 KiB, Set-Cookie values masked.
-- A constant default adds the columns without rewriting the table; attempts
-- recorded before them show no headers.
ALTER TABLE attempts
    ADD COLUMN request_headers text NOT NULL DEFAULT '',
    ADD COLUMN response_headers text NOT NULL DEFAULT '';
