#!/usr/bin/env bash
# FastAgent (fast-agent-mcp) serving the test agents of tests/agents/agents.py.
#
#   fastagent.sh install     venv with Python 3.12 and the pinned fast-agent-mcp (cached)
#   fastagent.sh start       background server on a free port; prints the export lines
#   fastagent.sh stop        stops it
#   fastagent.sh run PORT    foreground server on PORT (tests start, kill and restart these)
set -euo pipefail

FAST_AGENT_VERSION=0.10.48
UV_VERSION=0.13.9
PYTHON_VERSION=3.12.1
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
AGENTS_DIR=$(cd "$HERE/../agents" && pwd)
CACHE=${DAEDALUS_TEST_CACHE:-$HOME/.cache/daedalus-test}
VENV=$CACHE/fastagent-$FAST_AGENT_VERSION
UV_TOOL=$CACHE/uv-$UV_VERSION
WORK=${DAEDALUS_TEST_WORK:-$PWD/tests/.work}/fastagent
export FASTMCP_CHECK_FOR_UPDATES=off

log() { echo "fastagent: $*" >&2; }

python312() {
    local root
    root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
    local python=$root/versions/$PYTHON_VERSION/bin/python
    if [ ! -x "$python" ]; then
        log "Python $PYTHON_VERSION is missing (expected $python; pyenv install $PYTHON_VERSION)"
        exit 1
    fi
    echo "$python"
}

install() {
    local stamp="fast-agent-mcp==$FAST_AGENT_VERSION python==$PYTHON_VERSION"
    if [ -f "$VENV/.daedalus-pins" ] && [ "$(cat "$VENV/.daedalus-pins")" = "$stamp" ]; then
        return 0
    fi
    mkdir -p "$CACHE"
    if [ ! -x "$UV_TOOL/bin/uv" ]; then
        log "installing uv $UV_VERSION from PyPI"
        python3 -m venv "$UV_TOOL"
        "$UV_TOOL/bin/pip" install --quiet "uv==$UV_VERSION" >&2
    fi
    log "installing fast-agent-mcp $FAST_AGENT_VERSION into $VENV"
    rm -rf "$VENV"
    "$UV_TOOL/bin/uv" venv --quiet --python "$(python312)" "$VENV" >&2
    VIRTUAL_ENV=$VENV "$UV_TOOL/bin/uv" pip install --quiet "fast-agent-mcp==$FAST_AGENT_VERSION" >&2
    echo "$stamp" > "$VENV/.daedalus-pins"
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

run() {
    local port=${1:?usage: fastagent.sh run PORT}
    # FastAgent keeps its logs and session histories under the working directory.
    mkdir -p "$WORK/run-$port"
    cd "$WORK/run-$port"
    exec "$VENV/bin/python" "$AGENTS_DIR/agents.py" --transport http --host 127.0.0.1 --port "$port"
}

# Waits until GET / answers, for at most $2 seconds, while the process $3 lives.
wait_ready() {
    local port=$1 limit=$2 pid=$3
    for _ in $(seq 1 $((limit * 4))); do
        if curl -fsS -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null; then
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            log "the server exited during start; see $WORK/server.log"
            tail -20 "$WORK/server.log" >&2
            return 1
        fi
        sleep 0.25
    done
    log "not ready after ${limit}s; see $WORK/server.log"
    return 1
}

start() {
    install
    mkdir -p "$WORK"
    stop 2>/dev/null || true
    local port
    port=$(free_port)
    setsid "$0" run "$port" > "$WORK/server.log" 2>&1 < /dev/null &
    echo $! > "$WORK/pid"
    wait_ready "$port" 90 "$(cat "$WORK/pid")"
    log "ready on port $port"
    echo "export DAEDALUS_TEST_FASTAGENT_URL=http://127.0.0.1:$port/mcp"
}

stop() {
    if [ -f "$WORK/pid" ]; then
        local pid
        pid=$(cat "$WORK/pid")
        # setsid made the server its own process group: end the whole group.
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
