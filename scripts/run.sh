#!/usr/bin/env bash
# Runs the server. Without DATABASE_URL it installs PostgreSQL if missing and
# starts a private instance whose data lives in .data/postgres (kept between
# runs). Stop it with Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/provision.sh

PG_DATA="$PWD/.data/postgres"
if [ -z "${DATABASE_URL:-}" ]; then
    port=$(postgres_port "$PG_DATA" || true)
    [ -n "$port" ] || port=${SWITCHBOARD_PG_PORT:-$(free_port)}
    start_postgres "$PG_DATA" "$port"
    port=$(postgres_port "$PG_DATA")
    create_database "$port" switchboard
    export DATABASE_URL="postgres://postgres@127.0.0.1:$port/switchboard"
    trap 'say "stopping PostgreSQL"; stop_postgres "$PG_DATA"' EXIT
fi

if [ -z "${JWT_SECRET:-}" ]; then
    mkdir -p .data
    if [ ! -s .data/jwt_secret ]; then
        (umask 077; head -c 48 /dev/urandom | od -An -tx1 | tr -d ' \n' > .data/jwt_secret)
    fi
    JWT_SECRET=$(cat .data/jwt_secret)
    export JWT_SECRET
fi

say "building switchboard (release)"
cargo build --release --quiet

bind=${BIND:-0.0.0.0:8080}
export BIND="$bind"
http_port=${bind##*:}
cat >&2 <<MSG

  Switchboard
  Widget demo      http://localhost:$http_port/
  Agent desk       http://localhost:$http_port/agent
  Admin page       http://localhost:$http_port/admin
  API reference    http://localhost:$http_port/docs/
  Health, metrics  http://localhost:$http_port/health  http://localhost:$http_port/metrics
  First visit: open http://localhost:$http_port/admin and enter the setup code
                   the server prints below, to create the first admin account
  Create an agent  echo 'a-password' | DATABASE_URL=$DATABASE_URL \
                     target/release/switchboard user add alice --role agent --password-stdin
                   (--role admin for an admin; agents can also be added on the admin page)

MSG
target/release/switchboard serve
