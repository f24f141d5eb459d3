#!/usr/bin/env bash
# The project's measuring instrument: starts a release build of the server on
# a throwaway PostgreSQL (durable commits, fsync on), runs the load generator
# (tests/bench/load/) against it, and prints a Markdown report (kept in
# target/bench-report.md): the generator's measures, the CPU each process used
# and PostgreSQL's commits and WAL, both over exactly the measured span, and
# the machine's load average.
#
# Workloads (WORKLOAD=…):
#   bot (default)   each customer chats with the rule bot
#   agents          customers chat with agents, who answer every message;
#                   AGENTS accounts (default: enough for CUSTOMERS at
#                   AGENT_CAPACITY chats each, default 20, at most 100) are
#                   created with `switchboard user add`
#   idle            SOCKETS customers (1000) each open a socket and a chat and
#                   hold them: the server's memory per socket
#   queue           QUEUE customers (10000) wait for an agent, then AGENTS
#                   agents (default: QUEUE / AGENT_CAPACITY, capacity 100)
#                   join at once: how fast the queue is assigned
# Load (bot, agents):
#   CUSTOMERS=200                   one socket each
#   MESSAGES=20 | DURATION_SECS=30  per customer, or until the time is up
#   RATE=5000                       open loop: customer messages per second in
#                                   all, on a fixed schedule (unset: closed
#                                   loop, the next once the last is acknowledged)
# Several nodes (any workload):
#   NODES=2                         node-a and node-b on the same database and
#                                   a throwaway Redis; clients taken in turn
#   NODES=2 CROSS_NODE=1            (bot, agents) each chat runs on one node
#                                   and its customer talks from the other
# Other: SERVER_BIN=path (measure another build), CONNECT_CONCURRENCY=200
# (clients setting up at once).
#   WORKLOAD=agents DURATION_SECS=30 CUSTOMERS=200 RATE=5000 scripts/bench.sh
#   WORKLOAD=idle SOCKETS=18000 scripts/bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/provision.sh

nodes=${NODES:-1}
case "$nodes" in [1-8]) ;; *) die "NODES must be 1 to 8" ;; esac
workload=${WORKLOAD:-bot}
case "$workload" in bot | agents | idle | queue) ;; *) die "WORKLOAD must be bot, agents, idle or queue" ;; esac
export WORKLOAD=$workload
for name in CUSTOMERS MESSAGES DURATION_SECS RATE AGENTS AGENT_CAPACITY SOCKETS QUEUE CONNECT_CONCURRENCY; do
    value=${!name:-}
    [ -z "$value" ] || [[ "$value" =~ ^[0-9]+$ ]] || die "$name must be a whole number"
done

# Every socket is a file descriptor on both ends: the server raises its own
# limit to the hard one, the generator inherits this shell's.
ulimit -n "$(ulimit -Hn)"
descriptors=$(ulimit -n)
# The server keeps a tenth of its descriptors (at least 512) off sockets
# (src/startup.rs); the generator needs a few for itself.
per_node=$((descriptors - (descriptors / 10 > 512 ? descriptors / 10 : 512)))
socket_room=$((per_node * nodes < descriptors - 100 ? per_node * nodes : descriptors - 100))

case "$workload" in
agents)
    capacity=${AGENT_CAPACITY:-20}
    export AGENTS=${AGENTS:-$(((${CUSTOMERS:-200} + capacity - 1) / capacity))}
    ;;
queue)
    capacity=${AGENT_CAPACITY:-100}
    export QUEUE=${QUEUE:-10000}
    export AGENTS=${AGENTS:-$(((QUEUE + capacity - 1) / capacity))}
    if [ $((QUEUE + AGENTS)) -gt "$socket_room" ]; then
        say "QUEUE=$QUEUE does not fit $socket_room sockets (open-file limit $descriptors): QUEUE=$((socket_room - AGENTS))"
        QUEUE=$((socket_room - AGENTS))
    fi
    ;;
idle)
    export SOCKETS=${SOCKETS:-1000}
    if [ "$SOCKETS" -gt "$socket_room" ]; then
        say "SOCKETS=$SOCKETS does not fit the open-file limit ($descriptors): SOCKETS=$socket_room"
        SOCKETS=$socket_room
    fi
    ;;
esac
if [ "$workload" = agents ] || [ "$workload" = queue ]; then
    case "$capacity" in [1-9] | [1-9][0-9] | 100) ;; *) die "AGENT_CAPACITY must be 1 to 100 (the most an account may have)" ;; esac
    [ "$AGENTS" -ge 1 ] || die "AGENTS must be at least 1"
fi

work=$(mktemp -d -t switchboard-bench.XXXXXX)
chmod 755 "$work"
server_pids=()
cleanup() {
    if [ -n "${generator_pid:-}" ]; then kill -TERM "$generator_pid" 2>/dev/null || true; fi
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
cargo bench --no-run --quiet --bench load
# The generator's own binary, so its CPU is not cargo's.
load_bin=$(cargo bench --no-run --quiet --bench load --message-format=json 2>/dev/null \
    | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1)
[ -x "$load_bin" ] || die "the load generator's binary was not found"

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

# Staff accounts for the agents: one password, capacity set by the account
# (as provision.sh's add_staff, with the capacity asked for). Two at a time:
# each hashes its password, slow on purpose.
agent_usernames=()
adding=()
if [ "$workload" = agents ] || [ "$workload" = queue ]; then
    say "creating $AGENTS agent accounts of $capacity chats each"
    export AGENT_PASSWORD=$(random_hex 16)
    for i in $(seq 1 "$AGENTS"); do
        agent_usernames+=("bench-agent-$i")
        printf '%s\n' "$AGENT_PASSWORD" | DATABASE_URL="$TEST_DB_URL" RUST_LOG=off "$server" user add "bench-agent-$i" \
            --role agent --password-stdin --display-name "Agent $i" --max-chats "$capacity" >/dev/null &
        adding+=($!)
        if [ "${#adding[@]}" -ge 2 ] || [ "$i" -eq "$AGENTS" ]; then
            # Not a bare `wait`: the servers are this shell's children too.
            for pid in "${adding[@]}"; do wait "$pid" || die "could not create agent account $i"; done
            adding=()
        fi
    done
    AGENT_USERNAMES=$(IFS=,; echo "${agent_usernames[*]}")
    export AGENT_USERNAMES
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
# PostgreSQL, Redis and the load generator.
cpu_snapshot() {
    local -a cpu
    read -ra cpu </proc/stat
    local line="$(date +%s.%N) $((cpu[1] + cpu[2] + cpu[3] + cpu[4] + cpu[5] + cpu[6] + cpu[7] + cpu[8])) $((cpu[4] + cpu[5]))"
    for pid in "${server_pids[@]}"; do line+=" $(proc_ticks "$pid")"; done
    line+=" $([ -n "$postgres_pid" ] && proc_ticks "$postgres_pid" tree || echo -)"
    line+=" $([ -n "$redis_pid" ] && proc_ticks "$redis_pid" || echo -)"
    line+=" $(proc_ticks "$generator_pid")"
    # Last: the kernel's interrupt work (loopback networking), which no process is charged for.
    line+=" $((cpu[6] + cpu[7]))"
    echo "$line"
}

# The CPU used between two snapshots, in cores (CPU seconds per second).
cpu_table() {
    local -a before after names
    read -ra before <"$work/cpu.before"
    read -ra after <"$work/cpu.after"
    local seconds tick cores
    seconds=$(awk -v a="${before[0]}" -v b="${after[0]}" 'BEGIN { print b - a }')
    tick=$(getconf CLK_TCK)
    cores=$(nproc)
    if [ "$nodes" -eq 1 ]; then names=(server); else names=("${node_ids[@]}"); fi
    names+=("PostgreSQL (all its processes)" Redis "load generator")
    echo
    printf '| CPU during the measurement (%.1f s; cores, of %s) | value |\n' "$seconds" "$cores"
    echo "|---|---|"
    local i used ours=0
    for i in "${!names[@]}"; do
        if [ "${after[$((i + 3))]}" = - ]; then
            [ "${names[$i]}" = Redis ] || printf '| %s | n/a |\n' "${names[$i]}"
            continue
        fi
        ours=$((ours + after[i + 3] - before[i + 3]))
        used=$(awk -v d="$((after[i + 3] - before[i + 3]))" -v t="$tick" -v s="$seconds" 'BEGIN { printf "%.2f", d / t / s }')
        printf '| %s | %s |\n' "${names[$i]}" "$used"
    done
    # What else ran (another build, the kernel's own work) shares the cores
    # and distorts the figures: shown, so a disturbed run can be told apart.
    awk -v total="$((after[1] - before[1]))" -v idle="$((after[2] - before[2]))" -v cores="$cores" \
        -v ours="$ours" -v irq="$((after[-1] - before[-1]))" -v t="$tick" -v s="$seconds" 'BEGIN {
        if (total == 0) total = 1
        busy = (total - idle) / total * cores
        printf "| kernel interrupts (loopback networking; no process is charged) | %.2f |\n", irq / t / s
        printf "| everything else on the machine | %.2f |\n", busy - (ours + irq) / t / s
        printf "| machine busy / idle | %.2f / %.2f cores (%.0f %% idle) |\n", busy, idle / total * cores, idle / total * 100
    }'
}

# Server CPU seconds (all nodes) between the snapshots.
server_cpu_seconds() {
    local -a before after
    read -ra before <"$work/cpu.before"
    read -ra after <"$work/cpu.after"
    local i ticks=0
    for i in "${!server_pids[@]}"; do ticks=$((ticks + after[i + 3] - before[i + 3])); done
    awk -v d="$ticks" -v t="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", d / t }'
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
    local acked cpu
    acked=$(sed -n 's/^acked //p' "$work/marks/end" 2>/dev/null)
    cpu=$(server_cpu_seconds)
    echo
    echo "| PostgreSQL and the server during the measurement | value |"
    echo "|---|---|"
    echo "| messages stored | $stored |"
    echo "| commits (all clients of the database) | $commits |"
    awk -v s="$stored" -v c="$commits" -v r="$records" -v b="$bytes" -v a="${acked:-0}" -v cpu="$cpu" 'BEGIN {
        if (s > 0) {
            printf "| stored messages per commit | %.1f |\n", s / (c > 0 ? c : 1)
            printf "| WAL records / bytes per stored message | %.1f / %.0f |\n", r / s, b / s
        } else {
            printf "| WAL records / bytes written | %d / %d |\n", r, b
        }
        printf "| server CPU (all nodes) | %.2f s |\n", cpu
        if (a > 0) printf "| **server CPU per acknowledged message** | **%.1f µs** (%d messages) |\n", cpu * 1e6 / a, a
        # Bot answers are stored without an acknowledgement of their own.
        if (a > 0 && s > a * 1.05) printf "| server CPU per stored message | %.1f µs |\n", cpu * 1e6 / s
    }'
}

if [ "$nodes" -eq 1 ]; then
    generator_env=(BASE_URL="${server_urls[0]}" SERVER_PID="${server_pids[0]}")
else
    generator_env=(BASE_URLS="$(IFS=,; echo "${server_urls[*]}")" SERVER_PIDS="$(IFS=,; echo "${server_pids[*]}")")
fi
mkdir -p "$work/marks"
generator_env+=(MARK_DIR="$work/marks")

# settings_line: what was run, as the variables that reproduce it.
settings_line() {
    local line="Settings: WORKLOAD=$workload" name
    local -a names=(NODES CROSS_NODE)
    case "$workload" in
    bot) names+=(CUSTOMERS MESSAGES DURATION_SECS RATE) ;;
    agents) names+=(CUSTOMERS MESSAGES DURATION_SECS RATE AGENTS AGENT_CAPACITY) ;;
    idle) names+=(SOCKETS) ;;
    queue) names+=(QUEUE AGENTS AGENT_CAPACITY) ;;
    esac
    for name in "${names[@]}" CONNECT_CONCURRENCY; do
        case "$name" in
        NODES) line+=" NODES=$nodes" ;;
        AGENT_CAPACITY) line+=" AGENT_CAPACITY=$capacity" ;;
        CUSTOMERS) line+=" CUSTOMERS=${CUSTOMERS:-200}" ;;
        MESSAGES) [ -n "${DURATION_SECS:-}" ] || line+=" MESSAGES=${MESSAGES:-20}" ;;
        *) [ -z "${!name:-}" ] || line+=" $name=${!name}" ;;
        esac
    done
    echo "$line; $(date -u +%Y-%m-%d), $(nproc) cores, server $(git rev-parse --short HEAD 2>/dev/null || echo '?')$([ -z "${SERVER_BIN:-}" ] || echo " (SERVER_BIN=$SERVER_BIN)")"
}

# wait_mark NAME: until the generator writes it (or exits). The generator
# waits for NAME.taken, so its own CPU is read while it still runs.
wait_mark() {
    while [ ! -e "$work/marks/$1" ] && kill -0 "$generator_pid" 2>/dev/null; do sleep 0.05; done
}

report=target/bench-report.md
{
    settings_line
    echo
    env "${generator_env[@]}" "$load_bin" --bench &
    generator_pid=$!
    wait_mark start
    pg_snapshot >"$work/pg.before"
    cpu_snapshot >"$work/cpu.before"
    touch "$work/marks/start.taken"
    wait_mark end
    cpu_snapshot >"$work/cpu.after"
    touch "$work/marks/end.taken"
    sleep 1 # PostgreSQL's statistics reach the views within a second.
    pg_snapshot >"$work/pg.after"
    status=0
    wait "$generator_pid" || status=$?
    generator_pid=""
    cpu_table
    pg_table
    echo
    echo "Load average at the end (1, 5, 15 min): $(cut -d' ' -f1-3 /proc/loadavg)"
    [ "$status" -eq 0 ] || echo "The load generator exited with status $status."
} | tee "$report"
drop_test_database
