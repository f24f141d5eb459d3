#!/usr/bin/env bash
# Runs the whole test suite. Installs PostgreSQL and Redis if missing, starts
# throwaway instances of both, runs every check and test, and removes them.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/provision.sh

WORK=$(mktemp -d -t switchboard-test.XXXXXX)
chmod 755 "$WORK"
cleanup() {
    stop_redis "$WORK/redis"
    if [ -d "$WORK/postgres" ]; then stop_postgres "$WORK/postgres"; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# Durability is pointless for a throwaway cluster, and fsync costs time.
throwaway_postgres "$WORK/postgres" "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
if [ -z "${TEST_REDIS_URL:-}" ]; then
    redis_port=$(free_port)
    start_redis "$WORK/redis" "$redis_port"
    export TEST_REDIS_URL="redis://127.0.0.1:$redis_port"
fi

command -v openssl >/dev/null 2>&1 || apt_install openssl
command -v curl >/dev/null 2>&1 || apt_install curl
# The load balancer test runs docker/haproxy.cfg in a real HAProxy.
PATH="$PATH:/usr/sbin"
command -v haproxy >/dev/null 2>&1 || apt_install haproxy
HAPROXY_BIN=$(command -v haproxy)
export HAPROXY_BIN

if cargo fmt --version >/dev/null 2>&1; then
    say "cargo fmt --check"
    cargo fmt --check
fi
if cargo clippy --version >/dev/null 2>&1; then
    say "cargo clippy"
    cargo clippy --all-targets --quiet -- -D warnings
fi

say "cargo test"
cargo test "$@"

# The suites below run against the server binary the tests just built.
if [ $# -eq 0 ]; then
    export SWITCHBOARD_BIN="$PWD/target/debug/switchboard"
    say "schemathesis against the OpenAPI document"
    scripts/api-fuzz.sh
    say "browser tests in headless Chromium"
    scripts/browser-tests.sh
fi
