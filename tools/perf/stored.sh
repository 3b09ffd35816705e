#!/usr/bin/env bash
# Ingest and delivery rates with much already stored, against an empty
# database, in one sitting (PERFORMANCE.md "With 10,000,000 attempts
# stored"): it fills dispatch_stored, once, with N delivered events
# (default 10,000,000), each with its delivery and one attempt, received 8
# to 20 days ago (inside the default retention, outside the roll-up's
# week), then twice over runs 20,000 single posts and 20,000 in batches of
# 100 on a new empty database and on dispatch_stored, each on a dev stack
# of its own. dispatch_stored is kept for the next run (about 11 GB at 10
# million); drop it when done.
#
#   go tool task build && tools/perf/stored.sh [N]
#
# Needs psql and PostgreSQL on 127.0.0.1 (user postgres), Redis, and the
# dev stack's ports free; run it on a machine doing nothing else.
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-10000000}
q() { psql -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -U postgres -d dispatch_stored "$@"; }

stored=$(psql -At -h 127.0.0.1 -U postgres -d dispatch_stored -c "SELECT count(*) FROM attempts" 2>/dev/null || echo 0)
if [ "$stored" -lt "$n" ]; then
  echo "## storing $n delivered events, deliveries and attempts"
  psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS dispatch_stored" -c "CREATE DATABASE dispatch_stored"
  DATABASE_URL="postgres://postgres@127.0.0.1:5432/dispatch_stored?sslmode=disable" ./bin/dispatch-migrate up
  q -c "INSERT INTO subscriptions (id, url, event_types, secret) VALUES ('stored', 'http://127.0.0.1:9/stored', '{stored.*}', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw')"
  step=1000000
  for ((from = 1; from <= n; from += step)); do
    to=$((from + step - 1 < n ? from + step - 1 : n))
    # The rows are consistent, so the per-row foreign key checks are
    # skipped (session_replication_role), as a restore does.
    q <<SQL
SET synchronous_commit = off;
SET session_replication_role = replica;
BEGIN;
CREATE TEMP TABLE s AS SELECT i, now() - interval '20 days' + (i * interval '12 days' / $n) AS at FROM generate_series($from, $to) i;
INSERT INTO events (id, type, data, received_at) SELECT 'stored_' || i, 'stored.created', '{"order_id":42,"total":"12.50"}', at FROM s;
INSERT INTO deliveries (event_id, subscription_id, status, attempts, last_status_code, created_at, updated_at, enqueued_at)
  SELECT 'stored_' || i, 'stored', 'delivered', 1, 200, at, at + interval '5 ms', '-infinity' FROM s;
INSERT INTO attempts (delivery_id, number, started_at, duration_ms, duration_us, status_code, recorded_at)
  SELECT d.id, 1, d.created_at, 3, 3000, 200, d.updated_at FROM deliveries d
  WHERE d.id > (SELECT coalesce(max(delivery_id), 0) FROM attempts);
COMMIT;
SQL
  done
  q -c "VACUUM ANALYZE events, deliveries, attempts"
fi
q -At -F ' ' -c "SELECT relname, pg_size_pretty(pg_total_relation_size(oid)) FROM pg_class WHERE relname IN ('events', 'deliveries', 'attempts') ORDER BY 1" |
  while read -r t size; do echo "## $t: $size"; done

. tools/perf/stack.sh
on() {
  ( start_stack "$@"
    key=$(cat "$data/dev-api-key")
    for args in "-n 20000 -concurrency 64" "-n 20000 -concurrency 8 -batch 100"; do
      echo "## $1: $args"
      ./bin/loadgen -key "$key" $args 2>/dev/null | grep -E "ingest rate|delivery rate|latency|lost|peak" | sed 's/^/  /'
    done )
}
for _ in 1 2; do
  on dispatch_empty
  on dispatch_stored keep
done
