#!/usr/bin/env bash
# The measurements behind PERFORMANCE.md's "Ordered delivery": the dev
# stack on a fresh database dispatch_ordering, then, twice in turn, a burst
# of 20,000 single posts to an unordered subscription and to one ordered
# per key over 1,000 keys, and 5,000 posts of one hot key; then 100,000
# keys whose head cannot be delivered, each with one more event waiting,
# and the services' resident memory with them.
#
#   go tool task build && tools/perf/ordering.sh
#
# Needs psql and PostgreSQL on 127.0.0.1 (user postgres), Redis, curl, and
# the dev stack's ports free.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tools/perf/stack.sh
start_stack dispatch_ordering
key=$(cat "$data/dev-api-key")
api() { curl -sS -H "Authorization: Bearer $key" -H 'Content-Type: application/json' "$@"; }
rss() { curl -s "127.0.0.1:$1/metrics" | awk '/^process_resident_memory_bytes/ {printf "%.0f MB", $2 / 1048576}'; }

for round in 1 2; do
  echo "## round $round: unordered, ordered over 1,000 keys, one hot key"
  ./bin/loadgen -key "$key" -n 20000 -concurrency 64
  ./bin/loadgen -key "$key" -n 20000 -concurrency 64 -keys 1000
  ./bin/loadgen -key "$key" -n 5000 -concurrency 8 -keys 1
done

echo "## 100,000 blocked keys"
# Nothing listens on port 9: every attempt fails at once and the circuit
# opens, so each key's head stays due or waiting for its retry (an hour
# away), and the key's second event waits behind it.
api -X POST 127.0.0.1:8080/subscriptions -o /dev/null -d '{"id":"blocked","url":"http://127.0.0.1:9/","event_types":["blocked.*"],
  "ordering":"per_key","retry_base_delay_ms":3600000,"retry_max_delay_ms":3600000}'
keys=100000
start=$(date +%s)
for round in 0 1; do
  for from in $(seq 0 500 $((keys - 1))); do
    seq "$from" $((from + 499)) | awk -v r=$round 'BEGIN { printf "{\"events\":[" }
      { printf "%s{\"id\":\"b%d_%d\",\"type\":\"blocked.x\",\"ordering_key\":\"k%d\",\"data\":{}}", (NR > 1 ? "," : ""), r, $1, $1 }
      END { printf "]}" }' | api -X POST 127.0.0.1:8080/events/batch -o /dev/null --data-binary @-
  done
done
echo "posted $((2 * keys)) events in $(( $(date +%s) - start )) s; the worker works on the heads for a minute"
sleep 60
psql -At -h 127.0.0.1 -U postgres -d $db -c "SELECT 'keys with an open head: ' || count(*) FILTER (WHERE next_attempt_at IS NOT NULL)
    || ', of them retrying (blocked): ' || count(*) FILTER (WHERE status = 'retrying')
    || ', held deliveries: ' || count(*) FILTER (WHERE next_attempt_at IS NULL)
    || ', attempts made: ' || (SELECT count(*) FROM attempts a JOIN deliveries x ON x.id = a.delivery_id WHERE x.subscription_id = 'blocked')
  FROM deliveries WHERE subscription_id = 'blocked' AND status IN ('pending', 'processing', 'retrying')"
echo "blocked keys (API): $(api 127.0.0.1:8080/subscriptions/blocked/ordering-keys?limit=1 | sed -n 's/.*"blocked_keys":\([0-9]*\).*/\1/p')"
echo "a page of 50 open keys: $(api -o /dev/null -w '%{time_total}' '127.0.0.1:8080/subscriptions/blocked/ordering-keys?state=open&limit=50') s"
echo "resident memory: delivery-worker $(rss 8081), ingest-api $(rss 8080), retry-scheduler $(rss 8082)"
