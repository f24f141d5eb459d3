#!/usr/bin/env bash
# Browser tests of the web pages (widget, agent desk, admin console) in
# headless Chromium, driven by playwright-core under Node's test runner.
#
#   SWITCHBOARD_BIN=target/debug/switchboard \
#   TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
#   scripts/browser-tests.sh
#
# Creates a fresh database, starts the server on a free port with STATIC_DIR
# pointing at static/, creates an agent and an admin, runs
# tests/browser/*.test.mjs, then stops the server and drops the database.
# Screenshots go to target/screenshots/. Exits with the tests' status.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

: "${SWITCHBOARD_BIN:?set SWITCHBOARD_BIN to the switchboard server binary}"
: "${TEST_DATABASE_URL:?set TEST_DATABASE_URL to a PostgreSQL superuser URL ending in /postgres}"
[ -x "$SWITCHBOARD_BIN" ] || die "SWITCHBOARD_BIN ($SWITCHBOARD_BIN) is not an executable file"
SWITCHBOARD_BIN=$(cd "$(dirname "$SWITCHBOARD_BIN")" && printf '%s/%s' "$PWD" "$(basename "$SWITCHBOARD_BIN")")

SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi

APT_UPDATED=""
apt_install() {
    command -v apt-get >/dev/null 2>&1 || die "cannot install $*: apt-get not found; install it yourself"
    if [ -z "$APT_UPDATED" ]; then
        say "apt-get update"
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null || die "apt-get update failed"
        APT_UPDATED=1
    fi
    say "installing $*"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null \
        || die "apt-get install $* failed"
}

# ---- tools: Chromium, Node, psql -------------------------------------------

if [ ! -x /usr/bin/chromium ]; then apt_install chromium; fi
export CHROMIUM_PATH=${CHROMIUM_PATH:-/usr/bin/chromium}

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then apt_install nodejs npm; fi

PSQL=$(command -v psql 2>/dev/null || true)
if [ -z "$PSQL" ]; then
    PSQL=$(ls /usr/lib/postgresql/*/bin/psql 2>/dev/null | sort -V | tail -n 1 || true)
fi
[ -n "$PSQL" ] && [ -x "$PSQL" ] || apt_install postgresql-client
[ -n "$PSQL" ] && [ -x "$PSQL" ] || PSQL=$(command -v psql) || die "psql not found"

# ---- the test runner's dependencies -----------------------------------------

say "installing the browser tests' npm packages"
(
    cd tests/browser
    if [ -f package-lock.json ]; then
        npm ci --no-audit --no-fund --loglevel=error >/dev/null
    else
        npm install --no-audit --no-fund --loglevel=error >/dev/null
    fi
) || die "npm could not install tests/browser's packages"

# ---- a fresh database and the server ----------------------------------------

WORK=$(mktemp -d -t switchboard-browser.XXXXXX)
DB="switchboard_browser_$(date +%s)_$RANDOM"
BASE="${TEST_DATABASE_URL%%\?*}"
QUERY="${TEST_DATABASE_URL#"$BASE"}"
DATABASE_URL="${BASE%/*}/$DB$QUERY"
SERVER_PID=""
DB_CREATED=""

cleanup() {
    local status=$?
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [ "$status" -ne 0 ] && [ -s "$WORK/server.err" ]; then
        say "the server's last log lines"
        tail -n 40 "$WORK/server.err" >&2 || true
    fi
    if [ -n "$DB_CREATED" ]; then
        "$PSQL" "$TEST_DATABASE_URL" -qAtX -c "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" >/dev/null 2>&1 \
            || "$PSQL" "$TEST_DATABASE_URL" -qAtX -c "DROP DATABASE IF EXISTS \"$DB\"" >/dev/null 2>&1 \
            || say "could not drop database $DB"
    fi
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "creating database $DB"
"$PSQL" "$TEST_DATABASE_URL" -qAtX -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"$DB\"" >/dev/null || die "could not create database $DB"
DB_CREATED=1

random_hex() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }

say "starting $SWITCHBOARD_BIN"
: >"$WORK/server.out"
: >"$WORK/server.err"
DATABASE_URL="$DATABASE_URL" \
JWT_SECRET="$(random_hex 32)" \
BIND=127.0.0.1:0 \
STATIC_DIR="$ROOT/static" \
RUST_LOG="${RUST_LOG:-warn}" \
    "$SWITCHBOARD_BIN" serve >"$WORK/server.out" 2>"$WORK/server.err" &
SERVER_PID=$!

BASE_URL=""
for _ in $(seq 1 600); do
    BASE_URL=$(sed -n 's/.*listening on \(http:\/\/[^ ]*\).*/\1/p' "$WORK/server.out" | head -n 1 || true)
    [ -n "$BASE_URL" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.err" >&2; die "the server stopped during start-up"; }
    sleep 0.1
done
[ -n "$BASE_URL" ] || die "the server did not say where it listens within 60 s"
say "server at $BASE_URL"

AGENT_USERNAME=alice
AGENT_PASSWORD=$(random_hex 12)
AGENT_NAME="Alice Martin"
ADMIN_USERNAME=ops
ADMIN_PASSWORD=$(random_hex 12)
ADMIN_NAME="Ola Admin"
printf '%s\n' "$AGENT_PASSWORD" | DATABASE_URL="$DATABASE_URL" "$SWITCHBOARD_BIN" user add "$AGENT_USERNAME" \
    --role agent --password-stdin --display-name "$AGENT_NAME" --max-chats 5 >/dev/null || die "could not create the agent"
printf '%s\n' "$ADMIN_PASSWORD" | DATABASE_URL="$DATABASE_URL" "$SWITCHBOARD_BIN" user add "$ADMIN_USERNAME" \
    --role admin --password-stdin --display-name "$ADMIN_NAME" >/dev/null || die "could not create the admin"

# ---- the tests ---------------------------------------------------------------

SCREENSHOT_DIR="$ROOT/target/screenshots"
mkdir -p "$SCREENSHOT_DIR"
export BASE_URL AGENT_USERNAME AGENT_PASSWORD AGENT_NAME ADMIN_USERNAME ADMIN_PASSWORD ADMIN_NAME SCREENSHOT_DIR

say "running the browser tests"
started=$(date +%s)
set +e
(cd tests/browser && node --test --test-concurrency=1 --test-reporter=spec ./*.test.mjs)
status=$?
set -e
say "browser tests finished in $(( $(date +%s) - started )) s with status $status; screenshots in target/screenshots/"
exit "$status"
