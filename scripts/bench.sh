#!/usr/bin/env bash
# Measures speed and memory: starts a release build of the server on a
# throwaway PostgreSQL and runs the load generator (tests/bench/load.rs)
# against it. Prints a Markdown report and keeps it in target/bench-report.md.
#   CUSTOMERS=500 MESSAGES=20 scripts/bench.sh
#   DURATION_SECS=60 scripts/bench.sh      (each customer sends until the time is up)
#   SERVER_BIN=path scripts/bench.sh       (measure another build of the server)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/provision.sh

work=$(mktemp -d -t switchboard-bench.XXXXXX)
chmod 755 "$work"
cleanup() {
    stop_switchboard
    if [ -d "$work/postgres" ]; then stop_postgres "$work/postgres"; fi
    rm -rf "$work"
}
trap cleanup EXIT

# As configured for a server: durable commits, unlike the test cluster.
throwaway_postgres "$work/postgres" "-c max_connections=200"

server=${SERVER_BIN:-$PWD/target/release/switchboard}
say "building the server and the load generator (release)"
[ -n "${SERVER_BIN:-}" ] || cargo build --release --quiet --bin switchboard
cargo bench --no-run --quiet --bench load 2>/dev/null

create_test_database switchboard_bench
# The load generator is one address with many customers: the allowances
# per address and per customer would measure the limits, not the server.
start_switchboard "$server" "$TEST_DB_URL" "$work" RATE_LIMIT_MESSAGES_PER_MINUTE=1000000 \
    OPEN_CHATS_PER_CUSTOMER=100000 SOCKETS_PER_ACCOUNT=100000 RATE_LIMIT_VISITORS_PER_MINUTE=1000000 \
    RATE_LIMIT_CHATS_PER_MINUTE=1000000 RATE_LIMIT_CUSTOMER_MESSAGES_PER_MINUTE=10000000 RATE_LIMIT_ADDRESS_FACTOR=1000
say "server at $SWITCHBOARD_URL (pid $SWITCHBOARD_PID); $(nproc) cores"

report=target/bench-report.md
{
    if [ -n "${DURATION_SECS:-}" ]; then
        echo "Load: ${CUSTOMERS:-200} customers for ${DURATION_SECS} s, $(date -u +%Y-%m-%d), $(nproc) cores"
    else
        echo "Load: ${CUSTOMERS:-200} customers x ${MESSAGES:-20} messages, $(date -u +%Y-%m-%d), $(nproc) cores"
    fi
    echo
    BASE_URL=$SWITCHBOARD_URL SERVER_PID=$SWITCHBOARD_PID cargo bench --quiet --bench load
} | tee "$report"
drop_test_database
