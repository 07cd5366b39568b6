#!/usr/bin/env bash
# moto's S3 server for the storage tests: install | start | stop.
#
# moto keeps objects in memory and accepts any credentials; it is quick to
# install and enforces the 5 MiB multipart part minimum, which s3s-fs does not.
# `start` creates the test bucket and prints the export lines for tests/run.
set -euo pipefail

MOTO_VERSION=5.2.5
CACHE="${DAEDALUS_TEST_CACHE:-$HOME/.cache/daedalus-test}"
VENV="$CACHE/moto-$MOTO_VERSION"
WORK="${DAEDALUS_TEST_WORK:-$PWD/tests/.work}/moto"
BUCKET=daedalus-test

say() { echo "moto: $*" >&2; }

install() {
    if [ -x "$VENV/bin/moto_server" ]; then
        return 0
    fi
    say "installing moto[server]==$MOTO_VERSION into $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV" >&2
    "$VENV/bin/pip" install --quiet "moto[server]==$MOTO_VERSION" >&2
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_ready() {
    local url=$1
    for _ in $(seq 1 100); do
        if curl -fsS -o /dev/null "$url/moto-api/" 2>/dev/null; then
            return 0
        fi
        sleep 0.2
    done
    say "not ready after 20 s; log follows"
    tail -n 30 "$WORK/moto.log" >&2
    exit 1
}

start() {
    install
    mkdir -p "$WORK"
    local port url
    port=$(free_port)
    url="http://127.0.0.1:$port"
    "$VENV/bin/moto_server" -H 127.0.0.1 -p "$port" >"$WORK/moto.log" 2>&1 &
    echo $! >"$WORK/pid"
    wait_ready "$url"
    # Any credentials are accepted; a plain unsigned PUT creates the bucket.
    curl -fsS -o /dev/null -X PUT "$url/$BUCKET"
    say "listening on $url"
    echo "export DAEDALUS_TEST_MOTO_URL=$url"
    echo "export DAEDALUS_TEST_MOTO_BUCKET=$BUCKET"
}

stop() {
    if [ -f "$WORK/pid" ]; then
        kill "$(cat "$WORK/pid")" 2>/dev/null || true
        rm -f "$WORK/pid"
    fi
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
