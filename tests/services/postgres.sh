#!/usr/bin/env bash
# The PostgreSQL the integration tests run against: a private, throwaway cluster.
#
#   postgres.sh install   installs Debian's postgresql unless initdb is already there
#   postgres.sh start     creates a fresh cluster under /tmp, starts it on 127.0.0.1 on a
#                         free port, waits until it answers, and prints
#                         export DAEDALUS_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:PORT/postgres
#   postgres.sh stop      stops it and removes the cluster
#
# The cluster lives under /tmp rather than the work folder because initdb refuses to run
# as root and the `postgres` user must be able to reach its data folder; the work folder
# (${DAEDALUS_TEST_WORK:-$PWD/tests/.work}/postgres) keeps a pointer to it and its log.
# Authentication is `trust` and fsync is off: a test cluster holds nothing worth a password
# or a durable write.
set -euo pipefail

WORK="${DAEDALUS_TEST_WORK:-$PWD/tests/.work}/postgres"
RUN_AS=(runuser -u postgres --)

say() { echo "postgres.sh: $*" >&2; }

find_bin() {
    local dir
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [[ -x "$dir/initdb" && -x "$dir/pg_ctl" ]]; then
            echo "$dir"
            return 0
        fi
    done
    return 1
}

install() {
    if find_bin >/dev/null; then
        say "already installed in $(find_bin)"
        return 0
    fi
    say "installing Debian's postgresql"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update >&2
    apt-get install -y --no-install-recommends postgresql >&2
    # Debian's package starts its own cluster; the tests never use it.
    if command -v pg_ctlcluster >/dev/null; then
        pg_lsclusters --no-header 2>/dev/null | while read -r ver name _; do
            pg_ctlcluster "$ver" "$name" stop >&2 || true
        done
    fi
    find_bin >/dev/null || { say "initdb still not found after installing"; exit 1; }
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {
    local bin
    bin="$(find_bin)" || { say "PostgreSQL is not installed: run '$0 install' first"; exit 1; }
    id postgres >/dev/null 2>&1 || { say "there is no 'postgres' user to run the cluster as"; exit 1; }
    if [[ -f "$WORK/datadir" ]]; then
        say "a cluster from an earlier start is still recorded; stopping it first"
        stop
    fi
    mkdir -p "$WORK"
    local data port
    data="$(mktemp -d /tmp/daedalus-test-pg.XXXXXX)"
    chown postgres: "$data"
    chmod 700 "$data"
    echo "$data" >"$WORK/datadir"
    ln -sfn "$data/server.log" "$WORK/server.log"
    "${RUN_AS[@]}" "$bin/initdb" -D "$data/cluster" -U postgres --auth=trust \
        --encoding=UTF8 --locale=C.UTF-8 --no-sync >&2
    port="$(free_port)"
    cat >>"$data/cluster/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$data'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 300
CONF
    "${RUN_AS[@]}" "$bin/pg_ctl" -D "$data/cluster" -l "$data/server.log" -w -t 60 start >&2 || {
        say "the cluster did not start; its log follows"
        cat "$data/server.log" >&2 || true
        exit 1
    }
    local tries=0
    until "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres; do
        tries=$((tries + 1))
        if ((tries > 60)); then
            say "the cluster on port $port does not answer after 30 s; see $data/server.log"
            exit 1
        fi
        sleep 0.5
    done
    say "cluster ready in $data on 127.0.0.1:$port"
    echo "export DAEDALUS_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:$port/postgres"
}

stop() {
    [[ -f "$WORK/datadir" ]] || { say "no cluster recorded in $WORK"; return 0; }
    local data bin
    data="$(cat "$WORK/datadir")"
    bin="$(find_bin)" || true
    if [[ -n "$bin" && -f "$data/cluster/postmaster.pid" ]]; then
        "${RUN_AS[@]}" "$bin/pg_ctl" -D "$data/cluster" -m immediate -w stop >&2 || true
    fi
    case "$data" in
        /tmp/daedalus-test-pg.*) rm -rf "$data" ;;
    esac
    rm -f "$WORK/datadir" "$WORK/server.log"
    say "stopped"
}

case "${1:-}" in
    install) install ;;
    start) start ;;
    stop) stop ;;
    *)
        echo "usage: $0 install|start|stop" >&2
        exit 2
        ;;
esac
