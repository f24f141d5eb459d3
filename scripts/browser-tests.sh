#!/usr/bin/env bash
# Browser tests of the web pages (widget, agent desk, admin page) in headless
# Chromium, driven by playwright-core under Node's test runner.
# Needs SWITCHBOARD_BIN and TEST_DATABASE_URL (a superuser URL ending in /postgres).
# Starts the server on a fresh database, creates an agent and an admin, and
# starts a second server on an empty database (a fresh install, for the
# first-admin test); runs tests/browser/*.test.mjs, and cleans up.
# Screenshots go to target/screenshots/.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/provision.sh
: "${SWITCHBOARD_BIN:?set SWITCHBOARD_BIN to the server binary}"
: "${TEST_DATABASE_URL:?set TEST_DATABASE_URL}"

[ -x /usr/bin/chromium ] || apt_install chromium
export CHROMIUM_PATH=${CHROMIUM_PATH:-/usr/bin/chromium}
command -v npm >/dev/null 2>&1 || apt_install nodejs npm

say "installing the browser tests' npm packages"
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || die "npm ci failed in tests/browser"

work=$(mktemp -d -t switchboard-browser.XXXXXX)
servers=()
databases=()
cleanup() {
    local status=$?
    for SWITCHBOARD_PID in "${servers[@]}"; do stop_switchboard; done
    if [ "$status" -ne 0 ]; then
        for log in "$work"/*/server.log; do
            [ -s "$log" ] || continue
            say "the last log lines of $log"
            tail -n 40 "$log" >&2
        done
    fi
    for TEST_DB_NAME in "${databases[@]}"; do drop_test_database; done
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
create_test_database switchboard_browser
databases+=("$TEST_DB_NAME")

# The tests mint a host-site token with it, as a shop that signs its users in would.
export SWITCHBOARD_JWT_SECRET=$(random_hex 32)
export AGENT_USERNAME=alice AGENT_PASSWORD=$(random_hex 12) AGENT_NAME="Alice Martin"
export ADMIN_USERNAME=ops ADMIN_PASSWORD=$(random_hex 12) ADMIN_NAME="Ola Admin"
add_staff "$SWITCHBOARD_BIN" "$TEST_DB_URL" "$AGENT_USERNAME" agent "$AGENT_PASSWORD" "$AGENT_NAME"
add_staff "$SWITCHBOARD_BIN" "$TEST_DB_URL" "$ADMIN_USERNAME" admin "$ADMIN_PASSWORD" "$ADMIN_NAME"
# The server's email goes to an SMTP receiver that the tests which check
# email run on this port (tests/browser/10-transcript.test.mjs); until one
# listens, email waits in the outbox and is retried.
export MAIL_SINK_PORT=$(free_port)
# Every page of every test opens from 127.0.0.1: many new visitors a minute.
JWT_SECRET=$SWITCHBOARD_JWT_SECRET start_switchboard "$SWITCHBOARD_BIN" "$TEST_DB_URL" "$work/main" \
    RATE_LIMIT_VISITORS_PER_MINUTE=10000 \
    SMTP_URL="smtp://127.0.0.1:$MAIL_SINK_PORT" MAIL_FROM="Acme Support <support@acme.example>" \
    MAIL_RETRY_BASE_MS=500 MAIL_POLL_MS=500
servers+=("$SWITCHBOARD_PID")
export BASE_URL=$SWITCHBOARD_URL SCREENSHOT_DIR="$PWD/target/screenshots"

create_test_database switchboard_browser_fresh
databases+=("$TEST_DB_NAME")
start_switchboard "$SWITCHBOARD_BIN" "$TEST_DB_URL" "$work/fresh"
servers+=("$SWITCHBOARD_PID")
export FRESH_BASE_URL=$SWITCHBOARD_URL
# What the person installing reads in the log, as the admin page asks.
FRESH_SETUP_CODE=$(sed -n 's/.*enter the setup code \([0-9a-f]*\) .*/\1/p' "$work/fresh/server.log" | head -n 1)
[ -n "$FRESH_SETUP_CODE" ] || die "the fresh server printed no setup code; see $work/fresh/server.log"
export FRESH_SETUP_CODE
mkdir -p "$SCREENSHOT_DIR"

# A server whose bot is an LLM: the stand-in OpenAI-compatible server of
# tests/standin plays the model (the API tests use the same one).
STANDIN_BIN=${STANDIN_BIN:-$PWD/target/debug/examples/standin}
if [ ! -x "$STANDIN_BIN" ]; then
    say "building the stand-in LLM server"
    cargo build --quiet --example standin
fi
mkdir -p "$work/standin"
"$STANDIN_BIN" --api-key sk-browser-tests >"$work/standin/out.log" 2>&1 &
servers+=("$!")
for _ in $(seq 1 100); do
    standin_url=$(sed -n 's/^standin listening on //p' "$work/standin/out.log")
    [ -n "$standin_url" ] && break
    sleep 0.1
done
[ -n "${standin_url:-}" ] || die "the stand-in LLM server did not start; see $work/standin/out.log"
create_test_database switchboard_browser_llm
databases+=("$TEST_DB_NAME")
add_staff "$SWITCHBOARD_BIN" "$TEST_DB_URL" "$AGENT_USERNAME" agent "$AGENT_PASSWORD" "$AGENT_NAME"
start_switchboard "$SWITCHBOARD_BIN" "$TEST_DB_URL" "$work/llm" \
    BOT=llm LLM_BASE_URL="$standin_url/v1" LLM_API_KEY=sk-browser-tests LLM_MODEL=standin-1 \
    RATE_LIMIT_VISITORS_PER_MINUTE=10000
servers+=("$SWITCHBOARD_PID")
export LLM_BOT_BASE_URL=$SWITCHBOARD_URL

say "running the browser tests against $BASE_URL"
(cd tests/browser && node --test --test-concurrency=1 --test-reporter=spec ./*.test.mjs)
