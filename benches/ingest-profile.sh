#!/usr/bin/env bash
# One ingest benchmark run with its accounting: where the CPU, the WAL and the batch time went.
#
#   cargo build --release
#   benches/ingest-profile.sh [CONNECTIONS] [MESSAGES] [WINDOW] [LOADGEN OPTIONS...]
#                                         # default 200 600 1; e.g. ... 200 600 1 --timeline-ms 500
#
# Starts `switchboard demo` on a fresh database (job workers off: ingest alone), warms it up
# (200 x 20 messages, then ANALYZE), runs `loadgen ingest`, and prints the load generator's
# report followed by: CPU per message of PostgreSQL, the server and the machine's busy/idle
# share; WAL bytes per message and WAL syncs (their time too when `track_wal_io_timing` is on);
# the batch count, mean size and mean commit time from /metrics; the janitor's runs; and, when the
# pg_stat_statements extension can be created, each ingest statement's time per batch.
#
# Environment: PGADMIN (default postgres://postgres@127.0.0.1/postgres) for a role that may
# create databases and read other processes' statistics; BIN (default target/release);
# PORT (default 8080); DB (default switchboard_bench, dropped and recreated).
# Linux only (/proc). PostgreSQL must run on this machine for its CPU to be counted.
set -euo pipefail

CONNECTIONS=${1:-200}
MESSAGES=${2:-600}
WINDOW=${3:-1}
shift $(( $# < 3 ? $# : 3 ))
EXTRA=("$@")
PGADMIN=${PGADMIN:-postgres://postgres@127.0.0.1/postgres}
BIN=${BIN:-target/release}
PORT=${PORT:-8080}
DB=${DB:-switchboard_bench}
DB_URL=${PGADMIN%/*}/$DB

for tool in psql curl awk; do
    command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 2; }
done
[ -x "$BIN/switchboard" ] && [ -x "$BIN/loadgen" ] || {
    echo "no $BIN/switchboard or $BIN/loadgen: run cargo build --release first" >&2; exit 2; }

admin() { PGOPTIONS="-c client_min_messages=warning" psql -X -q -At "$PGADMIN" "$@"; }
bench() { psql -X -q -At "$DB_URL" "$@"; }
# CPU ticks (user + system) of the given pids.
ticks() { for p in "$@"; do cat "/proc/$p/stat" 2>/dev/null; done |
          awk '{ sub(/^.*\) /, ""); s += $12 + $13 } END { print s + 0 }'; }
postgres_pids() { pgrep -x postgres || pgrep -f 'postgres: ' || true; }

admin -c "DROP DATABASE IF EXISTS $DB"
SERVER_LOG=$(mktemp)
DATABASE_URL=$DB_URL SWITCHBOARD_JOBS__WORKERS=0 SWITCHBOARD_SERVER__PORT=$PORT \
    RUST_LOG=warn "$BIN/switchboard" demo >"$SERVER_LOG" 2>&1 &
SERVER=$!
cleanup() { kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true;
            admin -c "DROP DATABASE IF EXISTS $DB" || true; rm -f "$SERVER_LOG"; }
trap cleanup EXIT

for _ in $(seq 1 150); do
    curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break
    kill -0 "$SERVER" 2>/dev/null || { cat "$SERVER_LOG" >&2; exit 1; }
    sleep 0.2
done
KEY=$(grep -o 'wc_[A-Za-z0-9_]*' "$SERVER_LOG" | head -1)
[ -n "$KEY" ] || { echo "no channel key in the demo's output" >&2; cat "$SERVER_LOG" >&2; exit 1; }
LOADGEN=("$BIN/loadgen" --url "http://127.0.0.1:$PORT" --channel-key "$KEY")

# Warm-up: the first contacts and conversations, then statistics for the planner.
"${LOADGEN[@]}" ingest --connections "$CONNECTIONS" --messages 20 --window 1 >/dev/null
bench -c "ANALYZE"
STATEMENTS=no
if bench -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" 2>/dev/null &&
   bench -c "SELECT pg_stat_statements_reset()" >/dev/null 2>&1; then
    STATEMENTS=yes
fi
admin -c "SELECT pg_stat_reset_shared('wal')" >/dev/null
metric() { curl -s "http://127.0.0.1:$PORT/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }

janitor() { curl -s "http://127.0.0.1:$PORT/metrics" | grep '^janitor_runs_total' || true; }
JANITOR_BEFORE=$(janitor)
MESSAGES_BEFORE=$(bench -c "SELECT count(*) FROM messages")
BATCHES_BEFORE=$(metric ingest_batch_size_count); BATCHES_BEFORE=${BATCHES_BEFORE:-0}
COMMIT_BEFORE=$(metric ingest_commit_seconds_sum); COMMIT_BEFORE=${COMMIT_BEFORE:-0}
WAL_BEFORE=$(admin -c "SELECT pg_current_wal_lsn()")
read -r -a CPU_BEFORE < <(head -1 /proc/stat)
PG_BEFORE=$(ticks $(postgres_pids)); SERVER_BEFORE=$(ticks "$SERVER")

"${LOADGEN[@]}" ingest --connections "$CONNECTIONS" --messages "$MESSAGES" --window "$WINDOW" \
    ${EXTRA[@]+"${EXTRA[@]}"}

read -r -a CPU_AFTER < <(head -1 /proc/stat)
PG_AFTER=$(ticks $(postgres_pids)); SERVER_AFTER=$(ticks "$SERVER")
WAL_AFTER=$(admin -c "SELECT pg_current_wal_lsn()")
N=$(( $(bench -c "SELECT count(*) FROM messages") - MESSAGES_BEFORE ))
BATCHES_AFTER=$(metric ingest_batch_size_count); COMMIT=$(metric ingest_commit_seconds_sum)
JANITOR_AFTER=$(janitor)
BATCHES=$(( ${BATCHES_AFTER%.*} - ${BATCHES_BEFORE%.*} ))

echo "accounting over the measured run ($N messages):"
awk -v n="$N" -v pg="$((PG_AFTER - PG_BEFORE))" -v sv="$((SERVER_AFTER - SERVER_BEFORE))" \
    -v before="${CPU_BEFORE[*]}" -v after="${CPU_AFTER[*]}" 'BEGIN {
    split(before, b); split(after, a); total = 0
    for (i = 2; i <= 9; i++) { d[i] = a[i] - b[i]; total += d[i] }
    busy = d[2] + d[3] + d[4] + d[7] + d[8]
    printf "  CPU per message: PostgreSQL %.1f us, server %.1f us (USER_HZ 100)\n",
        pg * 10000 / n, sv * 10000 / n
    printf "  machine: %.0f%% busy, %.0f%% idle, %.0f%% iowait\n",
        100 * busy / total, 100 * d[5] / total, 100 * d[6] / total }'
admin -c "SELECT format('  WAL: %s bytes per message; %s syncs, %s ms syncing (0 unless track_wal_io_timing)',
                        round(pg_wal_lsn_diff('$WAL_AFTER', '$WAL_BEFORE') / $N), wal_sync,
                        round(wal_sync_time::numeric)) FROM pg_stat_wal"
awk -v n="$N" -v b="$BATCHES" -v c="$COMMIT" -v c0="$COMMIT_BEFORE" 'BEGIN {
    if (b > 0) printf "  batches: %d, %.1f messages each, %.2f ms from BEGIN to COMMIT on average\n",
        b, n / b, (c - c0) * 1000 / b }'
# The janitor's VACUUMs and ANALYZEs during the run (SWITCHBOARD_JOBS__VACUUM_INTERVAL_SECS=0: off).
awk 'function key() { return substr($0, 1, length($0) - length($NF) - 1) }
     NR == FNR { before[key()] = $NF; next }
     { k = key(); d = $NF - before[k]; if (d > 0) {
         sub(/^janitor_runs_total/, "", k); runs = runs sprintf(" %s x%d", k, d) } }
     END { print "  janitor:" (runs == "" ? " nothing" : runs) }' \
    <(printf '%s\n' "$JANITOR_BEFORE") <(printf '%s\n' "$JANITOR_AFTER")
if [ "$STATEMENTS" = yes ]; then
    echo "  ingest statements (executor time; per batch and per message):"
    bench -F ' | ' -c "
        SELECT format('%8s ms %7s us', round((total_exec_time / calls)::numeric, 3),
                      round((total_exec_time * 1000 / $N)::numeric, 1)),
               left(regexp_replace(query, '\s+', ' ', 'g'), 80)
        FROM pg_stat_statements
        WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND calls >= $BATCHES / 2
          AND query !~* '^(BEGIN|COMMIT|SELECT set_config)'
        ORDER BY total_exec_time DESC LIMIT 6"
else
    echo "  (per-statement times need pg_stat_statements in shared_preload_libraries)"
fi
