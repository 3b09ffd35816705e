ALTER TABLE attempts DROP COLUMN request_headers, DROP COLUMN response_headers;
