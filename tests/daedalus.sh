#!/usr/bin/env bash
# Starts the daedalus binary for the browser and proxy suites, on a throwaway database of
# the test cluster and a free port, and prints `export` lines for the caller to eval:
#
#   eval "$(tests/daedalus.sh start NAME [static-dir])"   # DAEDALUS_E2E_URL, DAEDALUS_E2E_PID
#   (DAEDALUS_E2E_S3=1 stores files on the moto server instead of local disk)
#   tests/daedalus.sh stop NAME
#
# Needs DAEDALUS_TEST_DATABASE_URL (tests/services/postgres.sh). Logs go to
# $DAEDALUS_TEST_WORK/daedalus-NAME/stdout.log.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK_ROOT=${DAEDALUS_TEST_WORK:-$PWD/tests/.work}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start() {
    local name=$1 static=${2:-}
    local work=$WORK_ROOT/daedalus-$name
    : "${DAEDALUS_TEST_DATABASE_URL:?start tests/services/postgres.sh first}"
    rm -rf "$work" && mkdir -p "$work/data"
    local db="e2e_${name//[^a-z0-9]/_}_$RANDOM"
    psql -q "$DAEDALUS_TEST_DATABASE_URL" -c "CREATE DATABASE $db" >&2
    local port
    port=$(free_port)
    cargo build --locked --quiet >&2
    local env=(DAEDALUS_ENV=development "DAEDALUS_LISTEN=127.0.0.1:$port"
        "DAEDALUS_DATABASE_URL=${DAEDALUS_TEST_DATABASE_URL%/*}/$db" "DAEDALUS_DATA_DIR=$work/data")
    [ -n "$static" ] && env+=("DAEDALUS_STATIC_DIR=$static")
    # With DAEDALUS_E2E_S3=1 files go to the moto server of tests/services/moto.sh.
    if [ "${DAEDALUS_E2E_S3:-0}" = 1 ]; then
        env+=("DAEDALUS_S3_ENDPOINT=${DAEDALUS_TEST_MOTO_URL:?start tests/services/moto.sh first}"
            DAEDALUS_S3_ACCESS_KEY=test DAEDALUS_S3_SECRET_KEY=test "DAEDALUS_S3_BUCKET=e2e-$name-$RANDOM")
    fi
    env "${env[@]}" ./target/debug/daedalus >"$work/stdout.log" 2>&1 &
    local pid=$!
    echo "$pid" >"$work/pid"
    for _ in $(seq 1 100); do
        if curl -fs "http://127.0.0.1:$port/api/health" >/dev/null; then
            echo "export DAEDALUS_E2E_URL=http://127.0.0.1:$port DAEDALUS_E2E_PID=$pid"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "daedalus did not start; see $work/stdout.log" >&2
    tail -5 "$work/stdout.log" >&2
    return 1
}

stop() {
    local pidfile=$WORK_ROOT/daedalus-$1/pid
    [ -f "$pidfile" ] || return 0
    kill "$(cat "$pidfile")" 2>/dev/null || true
    rm -f "$pidfile"
}

case ${1:-} in
start) start "${2:?name}" "${3:-}" ;;
stop) stop "${2:?name}" ;;
*) echo "usage: $0 start NAME [static-dir] | stop NAME" >&2; exit 2 ;;
esac
