#!/usr/bin/env bash
# The MCP reference server ("everything") over Streamable HTTP, on 127.0.0.1 only.
#
#   everything.sh install     the pinned npm package into the cache
#   everything.sh start       background server on a free port; prints the export lines
#   everything.sh stop        stops it
#   everything.sh run PORT    foreground server on PORT
set -euo pipefail

VERSION=2026.8.31
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${DAEDALUS_TEST_CACHE:-$HOME/.cache/daedalus-test}
PREFIX=$CACHE/server-everything-$VERSION
PACKAGE=$PREFIX/node_modules/@modelcontextprotocol/server-everything
WORK=${DAEDALUS_TEST_WORK:-$PWD/tests/.work}/everything

log() { echo "everything: $*" >&2; }

install() {
    if [ -f "$PACKAGE/package.json" ] && grep -q "\"version\": \"$VERSION\"" "$PACKAGE/package.json"; then
        return 0
    fi
    log "installing @modelcontextprotocol/server-everything $VERSION"
    mkdir -p "$PREFIX"
    npm install --silent --no-audit --no-fund --prefix "$PREFIX" \
        "@modelcontextprotocol/server-everything@$VERSION" >&2
}

run() {
    local port=${1:?usage: everything.sh run PORT}
    PORT=$port exec node -r "$HERE/localhost-only.cjs" "$PACKAGE/dist/index.js" streamableHttp
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {
    install
    mkdir -p "$WORK"
    stop 2>/dev/null || true
    local port pid
    port=$(free_port)
    setsid "$0" run "$port" > "$WORK/server.log" 2>&1 < /dev/null &
    pid=$!
    echo "$pid" > "$WORK/pid"
    for _ in $(seq 1 120); do
        # Any HTTP answer on /mcp means it listens; a GET without a session is refused.
        if curl -sS -o /dev/null "http://127.0.0.1:$port/mcp" 2>/dev/null; then
            if ss -Hltn "sport = :$port" | awk '{print $4}' | grep -qv "^127\.0\.0\.1:"; then
                log "it listens beyond 127.0.0.1; refusing to continue"
                stop
                exit 1
            fi
            log "ready on port $port"
            echo "export DAEDALUS_TEST_EVERYTHING_URL=http://127.0.0.1:$port/mcp"
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            log "the server exited during start; see $WORK/server.log"
            tail -20 "$WORK/server.log" >&2
            exit 1
        fi
        sleep 0.25
    done
    log "not ready after 30s; see $WORK/server.log"
    exit 1
}

stop() {
    if [ -f "$WORK/pid" ]; then
        local pid
        pid=$(cat "$WORK/pid")
        kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true
        rm -f "$WORK/pid"
    fi
}

case "${1:-}" in
    install) install ;;
    start) start ;;
    stop) stop ;;
    run) install; shift; run "$@" ;;
    *) echo "usage: $0 install|start|stop|run PORT" >&2; exit 2 ;;
esac
