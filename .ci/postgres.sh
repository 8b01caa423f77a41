#!/usr/bin/env bash
# Starts a throwaway PostgreSQL server on 127.0.0.1 (a free port, trust auth, data in a temp
# dir) for the multi-worker tuning test, and exports DATADIET_TEST_POSTGRES_URL. Source it:
#
#   . .ci/postgres.sh        # then: python -m pytest -q tests ...; the server stops on exit
#
# Installs PostgreSQL with apt-get when it is missing and we are root. The server runs as an
# unprivileged user (PostgreSQL refuses root): "postgres" if it exists, else "datadiet-pg".
# Without PostgreSQL the variable stays unset and the test skips, saying why.

_pg_start() {
    local bin
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -z "$bin" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "postgres.sh: installing postgresql" >&2
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
        bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    fi
    if [ -z "$bin" ]; then
        echo "postgres.sh: PostgreSQL is not installed; the PostgreSQL test will skip" >&2
        return 0
    fi
    local as=()
    if [ "$(id -u)" = 0 ]; then
        local user=postgres
        if ! id "$user" >/dev/null 2>&1; then
            user=datadiet-pg
            id "$user" >/dev/null 2>&1 || useradd --system --no-create-home "$user"
        fi
        as=(runuser -u "$user" --)
    fi
    local dir port
    dir=$(mktemp -d /tmp/datadiet-pg.XXXXXX)
    [ "$(id -u)" = 0 ] && chown "${as[2]}" "$dir"
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "${as[@]}" "$bin/initdb" -D "$dir/data" -U datadiet -A trust --no-sync >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; return 1; }
    # fsync off: a test database, thrown away at exit
    "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c max_connections=50" \
        start >/dev/null || { cat "$dir/server.log" >&2; return 1; }
    "${as[@]}" "$bin/createdb" -h 127.0.0.1 -p "$port" -U datadiet datadiet_test
    # the driver named: SQLAlchemy 2.1 would pick psycopg 3 for a bare postgresql://
    export DATADIET_TEST_POSTGRES_URL="postgresql+psycopg2://datadiet@127.0.0.1:$port/datadiet_test"
    _DATADIET_PG_STOP=("${as[@]}" "$bin/pg_ctl" -D "$dir/data" -m fast stop)
    _DATADIET_PG_DIR=$dir
    trap '"${_DATADIET_PG_STOP[@]}" >/dev/null 2>&1; rm -rf "$_DATADIET_PG_DIR"' EXIT
    echo "postgres.sh: PostgreSQL on 127.0.0.1:$port ($DATADIET_TEST_POSTGRES_URL)" >&2
}
_pg_start
