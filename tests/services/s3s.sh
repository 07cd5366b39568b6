#!/usr/bin/env bash
# s3s-fs, an S3 server storing objects as files, for the storage tests: install | start | stop.
#
# s3s-fs verifies SigV4 signatures and clock skew, which moto does not, and keeps large
# objects on disk. A bucket is a folder under its root, so `start` makes the test bucket
# with mkdir and prints the export lines for tests/run.
set -euo pipefail

S3S_VERSION=0.14.1
WORK="${DAEDALUS_TEST_WORK:-$PWD/tests/.work}/s3s"
BUCKET=daedalus-test
ACCESS_KEY=daedalus-test-access
SECRET_KEY=daedalus-test-secret-key

say() { echo "s3s: $*" >&2; }

installed_version() {
    command -v s3s-fs >/dev/null && s3s-fs --version 2>/dev/null | awk '{print $2}'
}

install() {
    if [ "$(installed_version || true)" = "$S3S_VERSION" ]; then
        return 0
    fi
    say "building s3s-fs $S3S_VERSION (about 5 minutes)"
    cargo install s3s-fs --version "$S3S_VERSION" --features binary --locked >&2
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_ready() {
    local url=$1
    for _ in $(seq 1 100); do
        # Any HTTP answer (an unsigned request gets 403) means it is serving.
        if [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/" || true)" != "000" ]; then
            return 0
        fi
        sleep 0.2
    done
    say "not ready after 20 s; log follows"
    tail -n 30 "$WORK/s3s.log" >&2
    exit 1
}

start() {
    install
    mkdir -p "$WORK/data/$BUCKET"
    local port url
    port=$(free_port)
    url="http://127.0.0.1:$port"
    s3s-fs --host 127.0.0.1 --port "$port" \
        --access-key "$ACCESS_KEY" --secret-key "$SECRET_KEY" \
        "$WORK/data" >"$WORK/s3s.log" 2>&1 &
    echo $! >"$WORK/pid"
    wait_ready "$url"
    say "listening on $url"
    echo "export DAEDALUS_TEST_S3S_URL=$url"
    echo "export DAEDALUS_TEST_S3S_ACCESS_KEY=$ACCESS_KEY"
    echo "export DAEDALUS_TEST_S3S_SECRET_KEY=$SECRET_KEY"
    echo "export DAEDALUS_TEST_S3S_BUCKET=$BUCKET"
    # Tests look here for unfinished uploads: s3s-fs does not implement ListMultipartUploads.
    echo "export DAEDALUS_TEST_S3S_DATA=$WORK/data"
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
