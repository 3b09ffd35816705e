#!/usr/bin/env bash
# The measurements behind PERFORMANCE.md's capacity model: the dev stack on
# a fresh database dispatch_capacity, loaded with single posts and then
# batches of 100 (one subscription, so one delivery per event). For each
# phase it reports the CPU time each component spent per 1,000 deliveries
# (from /proc: ingest-api, delivery-worker, retry-scheduler, every
# PostgreSQL process, redis-server, and the dev stack's process, which
# holds the embedded Kafka broker and the demo receiver), the WAL written
# per delivery (pg_stat_wal), and at the end the bytes each table and its
# indexes hold per delivery, and how many of its updates of each table were
# HOT (heap-only: no index entry written).
#
#   go tool task build && tools/perf/capacity.sh [events per phase, default 20000]
#
# Needs psql and PostgreSQL on 127.0.0.1 (user postgres), Redis, and the
# dev stack's ports free. CPU time is what a component used, whatever else
# the machine did, but PostgreSQL's and Redis's include whatever other
# clients asked of them meanwhile: run it on a machine doing nothing else.
# The load tool keeps its subscriptions (-keep), so that what the runs
# stored can be measured; the database is dropped at the next run.
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-20000}
. tools/perf/stack.sh
start_stack dispatch_capacity
key=$(cat "$data/dev-api-key")
hz=$(getconf CLK_TCK)

# ticks PIDS...: the CPU time (user and system, in clock ticks) the
# processes have used so far; a process gone since is left out.
ticks() {
  local sum=0 pid stat f
  for pid in "$@"; do
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
    # The fields after "pid (comm) ": state first, utime 12th, stime 13th.
    read -ra f <<< "${stat##*) }"
    sum=$((sum + f[11] + f[12]))
  done
  echo $sum
}
pids() { pgrep -d ' ' "$@" || true; }
components="ingest-api delivery-worker retry-scheduler postgres redis devstack"
pidsof() {
  case $1 in
    postgres) pids -x postgres ;;
    redis) pids -x redis-server ;;
    devstack) echo $stack ;;
    *) pids -f "bin/$1" ;;
  esac
}
snapshot() {
  for c in $components; do
    echo "$c $(ticks $(pidsof $c))"
  done
}
wal() { psql -At -h 127.0.0.1 -U postgres -d $db -c "SELECT wal_bytes FROM pg_stat_wal"; }
delivered() { psql -At -h 127.0.0.1 -U postgres -d $db -c "SELECT count(*) FROM deliveries WHERE status = 'delivered'"; }

phase() {
  local name=$1; shift
  local before wal0 d0 after wal1 d1 count
  before=$(snapshot); wal0=$(wal); d0=$(delivered)
  ./bin/loadgen -key "$key" -n "$n" -metrics "" -keep "$@" > "$data/$name.txt"
  sleep 2 # outcomes still being written when the last receipt was seen
  after=$(snapshot); wal1=$(wal); d1=$(delivered)
  count=$((d1 - d0))
  echo "## $name: $count deliveries"
  grep -E "delivered|posted|rate|lost" "$data/$name.txt" | sed 's/^/  loadgen: /'
  join <(echo "$before" | sort) <(echo "$after" | sort) | while read -r c b a; do
    awk -v c="$c" -v t=$((a - b)) -v hz="$hz" -v n="$count" \
      'BEGIN { printf "  %-16s %7.3f CPU s per 1,000 deliveries\n", c, t / hz / n * 1000 }'
  done
  awk -v w=$((wal1 - wal0)) -v n="$count" 'BEGIN { printf "  WAL              %7.0f bytes per delivery\n", w / n }'
}

phase single -concurrency 64
phase batches -concurrency 8 -batch 100

total=$(delivered)
echo "## storage after $total deliveries (bytes per delivery: table, its indexes)"
psql -At -F ' ' -h 127.0.0.1 -U postgres -d $db -c "
  SELECT relname, round(pg_table_size(oid)::numeric / $total), round(pg_indexes_size(oid)::numeric / $total)
  FROM pg_class WHERE relname IN ('events', 'deliveries', 'attempts') ORDER BY relname" |
  while read -r t heap idx; do printf '  %-16s %6s %6s\n' "$t" "$heap" "$idx"; done
echo "## updates (HOT: heap-only, no index entry written)"
psql -At -F ' ' -h 127.0.0.1 -U postgres -d $db -c "
  SELECT relname, n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables
  WHERE relname IN ('events', 'deliveries', 'attempts') ORDER BY relname" |
  while read -r t upd hot; do printf '  %-16s %8s updated, %8s of them HOT\n' "$t" "$upd" "$hot"; done
