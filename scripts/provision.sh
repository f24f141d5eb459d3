# Shared by run.sh and test.sh: installs PostgreSQL and Redis from the OS
# packages when they are missing, and starts private instances of them.
# Sourced, not run.

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
fi

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

APT_UPDATED=""
apt_install() {
    command -v apt-get >/dev/null 2>&1 || die "cannot install $*: apt-get not found; install them yourself or set DATABASE_URL"
    if [ -z "$APT_UPDATED" ]; then
        say "apt-get update"
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null || die "apt-get update failed"
        APT_UPDATED=1
    fi
    say "installing $*"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null \
        || die "apt-get install $* failed"
}

# The newest PostgreSQL server binaries on this machine.
postgres_bin() {
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [ -n "$dir" ] && [ -x "$dir/initdb" ] || die "PostgreSQL's initdb not found"
    printf '%s\n' "$dir"
}

install_postgres_if_missing() {
    if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
        apt_install postgresql
    fi
}

# PostgreSQL refuses to run as root: as root, the cluster belongs to `postgres`.
as_pg_user() {
    if [ "$(id -u)" -eq 0 ]; then
        id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/sh postgres
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# A TCP port on 127.0.0.1 that nothing listens on.
free_port() {
    local port
    for _ in $(seq 1 200); do
        port=$(( 20000 + RANDOM % 40000 ))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            printf '%s\n' "$port"
            return 0
        fi
    done
    die "no free port found"
}

wait_for_port() {
    local port=$1 what=$2
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    die "$what did not start on port $port"
}

# start_postgres DATA_DIR PORT [EXTRA_SERVER_OPTIONS]
# Creates the cluster on first use, starts it on 127.0.0.1:PORT (TCP only,
# trust auth for the local superuser `postgres`) and leaves it running.
start_postgres() {
    local data=$1 port=$2 extra=${3:-} bin
    install_postgres_if_missing
    bin=$(postgres_bin)
    mkdir -p "$data"
    if [ "$(id -u)" -eq 0 ]; then
        as_pg_user true
        chown postgres: "$data"
        chmod 700 "$data"
        runuser -u postgres -- test -w "$data" \
            || die "the postgres user cannot reach $data; move the project to a folder other users can enter"
    fi
    if [ ! -f "$data/PG_VERSION" ]; then
        say "creating a PostgreSQL cluster in $data"
        as_pg_user "$bin/initdb" -D "$data" -U postgres --auth=trust --encoding=UTF8 --no-locale >/dev/null \
            || die "initdb failed"
    fi
    if as_pg_user "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
        say "PostgreSQL already running in $data"
        return 0
    fi
    say "starting PostgreSQL on 127.0.0.1:$port"
    as_pg_user "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 \
        -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories= $extra" start >/dev/null \
        || die "PostgreSQL did not start; see $data/server.log"
}

# throwaway_postgres DIR [SERVER_OPTIONS]: unless TEST_DATABASE_URL names a
# server already, starts a cluster in DIR on a free port and exports its
# superuser URL as TEST_DATABASE_URL. stop_postgres DIR removes it.
throwaway_postgres() {
    [ -z "${TEST_DATABASE_URL:-}" ] || return 0
    local port
    port=$(free_port)
    start_postgres "$1" "$port" "${2:-}"
    export TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
}

stop_postgres() {
    local data=$1 bin
    bin=$(postgres_bin)
    as_pg_user "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null 2>&1 || true
}

# The port a running cluster listens on, from its pid file.
postgres_port() {
    sed -n '4p' "$1/postmaster.pid" 2>/dev/null
}

create_database() {
    local port=$1 name=$2 bin
    bin=$(postgres_bin)
    if ! "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = '$name'" | grep -q 1; then
        "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres "$name" || die "createdb $name failed"
    fi
}

# start_redis DIR PORT: a throwaway Redis that keeps nothing on disk.
start_redis() {
    local dir=$1 port=$2
    command -v redis-server >/dev/null 2>&1 || apt_install redis-server
    mkdir -p "$dir"
    say "starting Redis on 127.0.0.1:$port"
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
        --dir "$dir" --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" >/dev/null \
        || die "Redis did not start"
    wait_for_port "$port" Redis
}

stop_redis() {
    local dir=$1
    if [ -f "$dir/redis.pid" ]; then kill "$(cat "$dir/redis.pid")" 2>/dev/null || true; fi
}

# psql from the PostgreSQL install.
psql_bin() {
    if command -v psql >/dev/null 2>&1; then command -v psql; else printf '%s/psql\n' "$(postgres_bin)"; fi
}

# with_database URL NAME: the URL with its database name replaced.
with_database() {
    printf '%s/%s\n' "${1%/*}" "$2"
}

# start_switchboard BINARY DATABASE_URL LOG_DIR [VAR=VALUE...]: runs the
# server on a free port and sets SWITCHBOARD_PID and SWITCHBOARD_URL.
start_switchboard() {
    local binary=$1 database_url=$2 logs=$3
    shift 3
    mkdir -p "$logs"
    env DATABASE_URL="$database_url" BIND=127.0.0.1:0 STATIC_DIR="$PWD/static" \
        JWT_SECRET="${JWT_SECRET:-$(random_hex 32)}" \
        RUST_LOG="${RUST_LOG:-warn}" "$@" "$binary" serve >"$logs/server.out" 2>"$logs/server.log" &
    SWITCHBOARD_PID=$!
    local line=""
    for _ in $(seq 1 300); do
        line=$(grep -m1 '^switchboard listening on ' "$logs/server.out" 2>/dev/null || true)
        [ -n "$line" ] && break
        kill -0 "$SWITCHBOARD_PID" 2>/dev/null || die "the server exited; see $logs/server.log"
        sleep 0.1
    done
    [ -n "$line" ] || die "the server did not start; see $logs/server.log"
    SWITCHBOARD_URL=${line#switchboard listening on }
}

stop_switchboard() {
    if [ -n "${SWITCHBOARD_PID:-}" ]; then
        kill -TERM "$SWITCHBOARD_PID" 2>/dev/null || true
        wait "$SWITCHBOARD_PID" 2>/dev/null || true
        SWITCHBOARD_PID=""
    fi
}

# add_staff BINARY DATABASE_URL USERNAME ROLE PASSWORD [DISPLAY_NAME]
add_staff() {
    printf '%s\n' "$5" | DATABASE_URL="$2" RUST_LOG=off "$1" user add "$3" --role "$4" --password-stdin \
        --display-name "${6:-$3}" --max-chats 5 >/dev/null || die "could not create $4 $3"
}

random_hex() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }

# create_test_database PREFIX: a fresh database beside TEST_DATABASE_URL's;
# sets TEST_DB_NAME and TEST_DB_URL. drop_test_database removes it.
create_test_database() {
    TEST_DB_NAME="${1}_$$_$RANDOM"
    "$(psql_bin)" "$TEST_DATABASE_URL" -qAtX -v ON_ERROR_STOP=1 -c "CREATE DATABASE $TEST_DB_NAME" >/dev/null \
        || die "could not create database $TEST_DB_NAME"
    TEST_DB_URL=$(with_database "$TEST_DATABASE_URL" "$TEST_DB_NAME")
}

drop_test_database() {
    if [ -n "${TEST_DB_NAME:-}" ]; then
        "$(psql_bin)" "$TEST_DATABASE_URL" -qAtX -c "DROP DATABASE IF EXISTS $TEST_DB_NAME WITH (FORCE)" >/dev/null 2>&1 || true
        TEST_DB_NAME=""
    fi
}
