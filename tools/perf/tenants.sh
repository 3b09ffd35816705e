#!/usr/bin/env bash
# One run of PERFORMANCE.md's "Tenants" comparison: the dev stack on a
# fresh database dispatch_perf, optionally with 10,000 tenants of 10
# subscriptions each, loaded with single posts and then batches.
#
#   go tool task build && tools/perf/tenants.sh one     # one tenant
#   go tool task build && tools/perf/tenants.sh many    # 10,000 tenants
#
# Needs psql and PostgreSQL on 127.0.0.1 (user postgres), Redis, and the
# dev stack's ports free. Alternate the variants to compare them.
#
# Only the seeded tables are analysed, as autovacuum would after such an
# insert: analysing the whole database would record events and deliveries
# as empty, and where autovacuum is off nothing would correct that
# (docs/operations.md, "Autovacuum").
set -euo pipefail
cd "$(dirname "$0")/../.."
variant=${1:?usage: tools/perf/tenants.sh one|many}
. tools/perf/stack.sh
start_stack dispatch_perf
if [ "$variant" = many ]; then
  psql -q -h 127.0.0.1 -U postgres -d $db \
    -c "INSERT INTO tenants (id, name) SELECT 'tenant_' || lpad(i::text, 5, '0'), 'Tenant ' || i FROM generate_series(1, 10000) i" \
    -c "INSERT INTO subscriptions (id, tenant_id, url, event_types, secret)
        SELECT t.id || '_sub_' || j, t.id, 'http://127.0.0.1:9/' || t.id, ARRAY['*'], 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'
        FROM tenants t, generate_series(1, 10) j WHERE t.id <> 'default'" \
    -c "VACUUM ANALYZE subscriptions, tenants"
fi
key=$(cat "$data/dev-api-key")
./bin/loadgen -key "$key" -n 20000 -concurrency 64
./bin/loadgen -key "$key" -n 20000 -concurrency 8 -batch 100
