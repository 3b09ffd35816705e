# Sourced by the performance scripts: start_stack DB drops and creates the
# database DB (start_stack DB keep: uses it as it is), starts the dev stack
# on it in the background (its data in $data, its process in $stack,
# stopped when the script exits) and returns once the API and the worker
# are ready.
start_stack() {
  db=$1
  data=$(mktemp -d)
  if [ "${2:-}" != keep ]; then
    psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
  fi
  export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$db?sslmode=disable" DATA_DIR=$data
  ./bin/devstack up > "$data/devstack.log" 2>&1 &
  stack=$!
  trap 'kill -INT $stack 2>/dev/null; wait $stack; rm -rf "$data"' EXIT
  for _ in $(seq 1 120); do
    curl -sf 127.0.0.1:8080/readyz >/dev/null 2>&1 && curl -sf 127.0.0.1:8081/readyz >/dev/null 2>&1 && return
    sleep 1
  done
  echo "the dev stack did not become ready; its log: $data/devstack.log" >&2
  return 1
}
