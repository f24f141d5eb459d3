#!/usr/bin/env bash
# Measures speed and memory: starts a release build of the server on a
# throwaway PostgreSQL and runs the load generator (tests/bench/load.rs)
# against it. Prints a Markdown report and keeps it in target/bench-report.md.
#   CUSTOMERS=500 MESSAGES=20 scripts/bench.sh
#   DURATION_SECS=60 scripts/bench.sh      (each customer sends until the time is up)
#   SERVER_BIN=path scripts/bench.sh       (measure another build of the server)
#   NODES=2 scripts/bench.sh               (two nodes, node-a and node-b, on the same
#                                           database and a throwaway Redis; the
#                                           customers are taken in turn by each node)
#   NODES=2 CROSS_NODE=1 scripts/bench.sh  (each chat runs on one node and its customer
#                                           talks from the other: every message crosses Redis)
#   CPU_REPORT=1 scripts/bench.sh          (add the CPU each process used during the
#                                           load; on by default with NODES=2 or more)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/provision.sh

nodes=${NODES:-1}
case "$nodes" in [1-8]) ;; *) die "NODES must be 1 to 8" ;; esac
cpu_report=${CPU_REPORT:-$([ "$nodes" -gt 1 ] && echo 1 || echo 0)}

work=$(mktemp -d -t switchboard-bench.XXXXXX)
chmod 755 "$work"
server_pids=()
cleanup() {
    for pid in "${server_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${server_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    stop_redis "$work/redis"
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
limits=(RATE_LIMIT_MESSAGES_PER_MINUTE=1000000
    OPEN_CHATS_PER_CUSTOMER=100000 SOCKETS_PER_ACCOUNT=100000 RATE_LIMIT_VISITORS_PER_MINUTE=1000000
    RATE_LIMIT_CHATS_PER_MINUTE=1000000 RATE_LIMIT_CUSTOMER_MESSAGES_PER_MINUTE=10000000 RATE_LIMIT_ADDRESS_FACTOR=1000)
node_ids=()
server_urls=()
if [ "$nodes" -eq 1 ]; then
    start_switchboard "$server" "$TEST_DB_URL" "$work" "${limits[@]}"
    server_pids+=("$SWITCHBOARD_PID")
    server_urls+=("$SWITCHBOARD_URL")
    say "server at $SWITCHBOARD_URL (pid $SWITCHBOARD_PID); $(nproc) cores"
else
    redis_port=$(free_port)
    start_redis "$work/redis" "$redis_port"
    # The nodes are one service: a token one signs, the others accept.
    JWT_SECRET=$(random_hex 32)
    export JWT_SECRET
    # One after the other: the first applies the migrations.
    for letter in a b c d e f g h; do
        [ "${#node_ids[@]}" -lt "$nodes" ] || break
        node="node-$letter"
        start_switchboard "$server" "$TEST_DB_URL" "$work/$node" "${limits[@]}" \
            REDIS_URL="redis://127.0.0.1:$redis_port" NODE_ID="$node"
        node_ids+=("$node")
        server_pids+=("$SWITCHBOARD_PID")
        server_urls+=("$SWITCHBOARD_URL")
        say "$node at $SWITCHBOARD_URL (pid $SWITCHBOARD_PID)"
    done
    SWITCHBOARD_PID=""
    # Every node must hear the others before the load starts.
    for i in "${!server_urls[@]}"; do
        for _ in $(seq 1 300); do
            if curl -s --max-time 5 "${server_urls[$i]}/health" | grep -Eq '"link": *"up"'; then continue 2; fi
            sleep 0.1
        done
        die "${node_ids[$i]} did not report cluster.link up; see $work/${node_ids[$i]}/server.log"
    done
    for i in "${!server_urls[@]}"; do
        say "${node_ids[$i]}: $(curl -s --max-time 5 "${server_urls[$i]}/health" | grep -Eo '"cluster": *\{[^}]*\}')"
    done
    say "$nodes nodes on one PostgreSQL and one Redis; $(nproc) cores"
fi

# proc_ticks PID [tree]: the clock ticks a process has run (user + system);
# with "tree", also those of its children, live and reaped.
proc_ticks() {
    local pid=$1 tree=${2:-} stat file total
    local -a f
    { stat=$(<"/proc/$pid/stat"); } 2>/dev/null || { echo 0; return; }
    read -ra f <<<"${stat##*) }"
    total=$((f[11] + f[12]))
    if [ -n "$tree" ]; then
        total=$((total + f[13] + f[14]))
        for file in /proc/[0-9]*/stat; do
            { stat=$(<"$file"); } 2>/dev/null || continue
            read -ra f <<<"${stat##*) }"
            if [ "${f[1]}" = "$pid" ]; then total=$((total + f[11] + f[12])); fi
        done
    fi
    echo "$total"
}

postgres_pid=$(head -n 1 "$work/postgres/postmaster.pid" 2>/dev/null || true)
redis_pid=$(cat "$work/redis/redis.pid" 2>/dev/null || true)

# One line: the time, the machine's total and idle ticks, then each server,
# PostgreSQL and Redis.
cpu_snapshot() {
    local -a cpu
    read -ra cpu </proc/stat
    local line="$(date +%s.%N) $((cpu[1] + cpu[2] + cpu[3] + cpu[4] + cpu[5] + cpu[6] + cpu[7] + cpu[8])) $((cpu[4] + cpu[5]))"
    for pid in "${server_pids[@]}"; do line+=" $(proc_ticks "$pid")"; done
    line+=" $([ -n "$postgres_pid" ] && proc_ticks "$postgres_pid" tree || echo -)"
    line+=" $([ -n "$redis_pid" ] && proc_ticks "$redis_pid" || echo -)"
    echo "$line"
}

# The CPU used between two snapshots, in cores (CPU seconds per second).
cpu_table() {
    local -a before after names
    read -ra before <"$work/cpu.before"
    read -ra after <"$work/cpu.after"
    local seconds tick cores generator
    seconds=$(awk -v a="${before[0]}" -v b="${after[0]}" 'BEGIN { print b - a }')
    tick=$(getconf CLK_TCK)
    cores=$(nproc)
    generator=$(awk '{ print $1 + $2 }' "$work/generator.time")
    if [ "$nodes" -eq 1 ]; then names=(server); else names=("${node_ids[@]}"); fi
    names+=("PostgreSQL (all its processes)" Redis)
    echo
    printf '| CPU during the load (%.0f s; cores, of %s) | value |\n' "$seconds" "$cores"
    echo "|---|---|"
    local i sum=0 used
    for i in "${!names[@]}"; do
        if [ "${after[$((i + 3))]}" = - ]; then
            [ "${names[$i]}" = Redis ] || printf '| %s | n/a |\n' "${names[$i]}"
            continue
        fi
        used=$(awk -v d="$((after[i + 3] - before[i + 3]))" -v t="$tick" -v s="$seconds" 'BEGIN { printf "%.2f", d / t / s }')
        printf '| %s | %s |\n' "${names[$i]}" "$used"
    done
    printf '| load generator | %s |\n' "$(awk -v c="$generator" -v s="$seconds" 'BEGIN { printf "%.2f", c / s }')"
    awk -v total="$((after[1] - before[1]))" -v idle="$((after[2] - before[2]))" -v cores="$cores" \
        'BEGIN { printf "| machine busy / idle | %.2f / %.2f cores (%.0f %% idle) |\n", (total - idle) / total * cores, idle / total * cores, idle / total * 100 }'
}

# One line: the database's commits, the messages stored, and the WAL records
# and bytes written by the whole PostgreSQL instance.
pg_snapshot() {
    "$(psql_bin)" "$TEST_DB_URL" -qAtX -F ' ' -c "SELECT pg_stat_clear_snapshot()" -c \
        "SELECT d.xact_commit, (SELECT count(*) FROM chat_messages), w.wal_records, w.wal_bytes
           FROM pg_stat_database d, pg_stat_wal w WHERE d.datname = current_database()" | tail -n 1
}

pg_table() {
    local -a before after
    read -ra before <"$work/pg.before"
    read -ra after <"$work/pg.after"
    local commits=$((after[0] - before[0])) stored=$((after[1] - before[1]))
    local records=$((after[2] - before[2])) bytes=$((after[3] - before[3]))
    [ "$stored" -gt 0 ] || stored=1
    echo
    echo "| PostgreSQL during the load | value |"
    echo "|---|---|"
    echo "| messages stored | $stored |"
    echo "| commits (all clients of the database) | $commits |"
    awk -v s="$stored" -v c="$commits" -v r="$records" -v b="$bytes" 'BEGIN {
        printf "| stored messages per commit | %.1f |\n", s / (c > 0 ? c : 1)
        printf "| WAL records / bytes per stored message | %.1f / %.0f |\n", r / s, b / s
    }'
}

if [ "$nodes" -eq 1 ]; then
    generator_env=(BASE_URL="${server_urls[0]}" SERVER_PID="${server_pids[0]}")
else
    generator_env=(BASE_URLS="$(IFS=,; echo "${server_urls[*]}")" SERVER_PIDS="$(IFS=,; echo "${server_pids[*]}")")
fi

report=target/bench-report.md
{
    if [ -n "${DURATION_SECS:-}" ]; then
        echo -n "Load: ${CUSTOMERS:-200} customers for ${DURATION_SECS} s, $(date -u +%Y-%m-%d), $(nproc) cores"
    else
        echo -n "Load: ${CUSTOMERS:-200} customers x ${MESSAGES:-20} messages, $(date -u +%Y-%m-%d), $(nproc) cores"
    fi
    if [ "$nodes" -gt 1 ]; then
        echo -n ", $nodes nodes (${node_ids[*]}) on one PostgreSQL and one Redis, servers numbered in that order"
        [ "${CROSS_NODE:-0}" != 1 ] || echo -n ", each customer's socket on the node after its chat's"
    fi
    echo
    echo
    if [ "$cpu_report" = 1 ]; then
        # The generator's own binary, so its CPU is not cargo's.
        load_bin=$(cargo bench --no-run --quiet --bench load --message-format=json 2>/dev/null \
            | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1)
        [ -x "$load_bin" ] || die "the load generator's binary was not found"
        pg_snapshot >"$work/pg.before"
        cpu_snapshot >"$work/cpu.before"
        TIMEFORMAT='%U %S'
        { time env "${generator_env[@]}" "$load_bin" --bench 2>&3; } 3>&2 2>"$work/generator.time"
        cpu_snapshot >"$work/cpu.after"
        sleep 1 # PostgreSQL's statistics reach the views within a second.
        pg_snapshot >"$work/pg.after"
        cpu_table
        pg_table
    else
        env "${generator_env[@]}" cargo bench --quiet --bench load
    fi
} | tee "$report"
drop_test_database
