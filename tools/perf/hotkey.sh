#!/usr/bin/env bash
# PERFORMANCE.md's hot key runs: the dev stack on a fresh database
# dispatch_hot, then RUNS (3) runs of 5,000 posts of one ordering key from
# 8 clients. After each, its delivered/s (5,000 over first post to last
# delivery, read from the stored attempts), then its subscription is
# deleted and the database vacuumed, as in a stack that has been used.
#
#   go tool task build && tools/perf/hotkey.sh [RUNS]
#
# Needs psql and PostgreSQL on 127.0.0.1 (user postgres), Redis, and the
# dev stack's ports free.
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-3}
. tools/perf/stack.sh
start_stack dispatch_hot
key=$(cat "$data/dev-api-key")
sql() { psql -At -h 127.0.0.1 -U postgres -d $db "$@"; }
for i in $(seq 1 "$runs"); do
  ./bin/loadgen -key "$key" -n 5000 -concurrency 8 -keys 1 -keep > "$data/run$i.txt" 2>&1
  sql -c "WITH s AS (SELECT id FROM subscriptions WHERE ordering = 'per_key' ORDER BY created_at DESC LIMIT 1),
      e AS (SELECT min(e.received_at) AS first_in, max(e.received_at) AS last_in FROM events e JOIN deliveries d ON d.event_id = e.id
            WHERE d.subscription_id = (SELECT id FROM s)),
      a AS (SELECT max(a.started_at) AS last_out, count(*) FILTER (WHERE a.started_at <= e.last_in) AS during
            FROM attempts a JOIN deliveries d ON d.id = a.delivery_id, e WHERE d.subscription_id = (SELECT id FROM s))
    SELECT 'run $i: ' || round(5000 / extract(epoch FROM a.last_out - e.first_in))::text || ' delivered/s; '
        || a.during || ' attempts while the clients posted (' || round(extract(epoch FROM e.last_in - e.first_in)::numeric, 1) || ' s)'
    FROM e, a"
  sql -q -c "DELETE FROM subscriptions WHERE ordering = 'per_key'" -c "VACUUM ANALYZE"
done
