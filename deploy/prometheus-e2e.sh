#!/usr/bin/env bash
# A real Prometheus scrapes a running daedalus with the shipped scrape job:
#
#   DAEDALUS_E2E_URL=http://127.0.0.1:PORT DAEDALUS_E2E_PID=PID deploy/prometheus-e2e.sh
#
# Runs Prometheus with deploy/prometheus/prometheus.yml and its alert rules,
# the only change being the target (puck.incus:22181 becomes 127.0.0.1:PORT),
# and checks that it sees daedalus_up = 1 and up = 1 for job `daedalus` and
# that all alert rules loaded healthy; then stops daedalus (SIGTERM to PID,
# waiting for it to exit) and checks that `up` turns 0. The scrape interval
# stays the shipped 15 s, so a run takes about a minute.
#
# Needs: root or any user, prometheus (Debian package `prometheus`), curl,
# python3; a daedalus this script may stop. Prints one line per check and
# "N passed, N failed"; exits non-zero on any failure or missing input.
set -uo pipefail

DEPLOY=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WAIT_SECONDS=90
passed=0 failed=0

die() { printf 'prometheus-e2e.sh: %s\n' "$*" >&2; exit 2; }
pass() { passed=$((passed + 1)); printf 'ok      %s\n' "$1"; }
fail() { failed=$((failed + 1)); printf 'FAILED  %s\n' "$1"; shift; printf '        %s\n' "$@"; }

DAEDALUS_URL=${DAEDALUS_E2E_URL:-}
[[ $DAEDALUS_URL =~ ^http://(127\.0\.0\.1:[0-9]+)/?$ ]] ||
    die "set DAEDALUS_E2E_URL=http://127.0.0.1:PORT (a running daedalus), got '$DAEDALUS_URL'"
TARGET=${BASH_REMATCH[1]}
DAEDALUS_PID=${DAEDALUS_E2E_PID:-}
if [[ ! $DAEDALUS_PID =~ ^[0-9]+$ ]] || ! kill -0 "$DAEDALUS_PID" 2>/dev/null; then
    die "set DAEDALUS_E2E_PID to the pid of that daedalus (this script stops it)"
fi
for tool in prometheus curl python3; do
    command -v "$tool" >/dev/null || die "$tool is missing (apt-get install prometheus curl python3)"
done
curl -fsS --max-time 5 "$DAEDALUS_URL/metrics" | grep -q '^daedalus_up 1' ||
    die "$DAEDALUS_URL/metrics does not show daedalus_up 1"

WORK=$(mktemp -d /tmp/daedalus-prometheus-e2e.XXXXXX)
PROM_PID=""
cleanup() {
    [[ -n $PROM_PID ]] && kill "$PROM_PID" 2>/dev/null && wait "$PROM_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

PROM_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
PROM=http://127.0.0.1:$PROM_PORT

start_prometheus() {
    sed "s|\"puck.incus:22181\"|\"$TARGET\"|" "$DEPLOY/prometheus/prometheus.yml" \
        >"$WORK/prometheus.yml"
    grep -q "\"$TARGET\"" "$WORK/prometheus.yml" ||
        die "the shipped scrape job changed shape: update start_prometheus"
    cp "$DEPLOY/prometheus/daedalus-alerts.yml" "$WORK/"
    prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/data" \
        --web.listen-address="127.0.0.1:$PROM_PORT" >"$WORK/prometheus.log" 2>&1 &
    PROM_PID=$!
    local _
    for _ in $(seq 1 60); do
        curl -fsS --max-time 2 "$PROM/-/ready" >/dev/null 2>&1 && return
        kill -0 "$PROM_PID" 2>/dev/null || break
        sleep 0.5
    done
    tail -n 20 "$WORK/prometheus.log" >&2
    die "Prometheus did not become ready"
}

# query EXPR: the value of the single series the expression returns, or
# "none" when it returns nothing.
query() {
    curl -fsS --max-time 5 -G "$PROM/api/v1/query" --data-urlencode "query=$1" |
        python3 -c 'import json,sys
r = json.load(sys.stdin)["data"]["result"]
print(r[0]["value"][1] if len(r) == 1 else ("none" if not r else "many"))'
}

# wait_for EXPR VALUE: polls until the expression has that value (bounded).
wait_for() {
    local got="" _
    for _ in $(seq 1 "$WAIT_SECONDS"); do
        got=$(query "$1" 2>/dev/null)
        [[ $got == "$2" ]] && return 0
        sleep 1
    done
    echo "$1 = $got after ${WAIT_SECONDS}s (want $2)"
    return 1
}

check_scraped() {
    local out
    if out=$(wait_for 'daedalus_up{job="daedalus"}' 1); then
        pass "Prometheus scrapes $TARGET with the shipped job: daedalus_up{job=\"daedalus\"} = 1"
    else
        fail "daedalus_up through the shipped scrape job" "$out" "$(tail -n 5 "$WORK/prometheus.log")"
    fi
    if out=$(wait_for 'up{job="daedalus"}' 1); then pass 'up{job="daedalus"} = 1'; else fail up "$out"; fi
}

check_rules_loaded() {
    local out
    if out=$(curl -fsS --max-time 5 "$PROM/api/v1/rules" | python3 -c 'import json,sys
rules = [r for g in json.load(sys.stdin)["data"]["groups"] for r in g["rules"]]
bad = [r["name"] + ": " + r.get("lastError", "") for r in rules if r.get("health") == "err"]
print(len(rules), "rules", "; ".join(bad) if bad else "without errors")
sys.exit(1 if bad or len(rules) != 7 else 0)'); then
        pass "alert rules loaded in Prometheus: $out"
    else
        fail "alert rules in Prometheus" "$out"
    fi
}

check_down_after_stop() {
    local out _
    kill -TERM "$DAEDALUS_PID"
    for _ in $(seq 1 60); do
        kill -0 "$DAEDALUS_PID" 2>/dev/null || break
        sleep 0.5
    done
    if kill -0 "$DAEDALUS_PID" 2>/dev/null; then
        fail "stopping daedalus" "pid $DAEDALUS_PID still runs 30 s after SIGTERM"; return
    fi
    if out=$(wait_for 'up{job="daedalus"}' 0); then
        pass 'daedalus stopped: up{job="daedalus"} = 0'
    else
        fail 'up after stopping daedalus' "$out"
    fi
}

main() {
    start_prometheus
    check_scraped
    check_rules_loaded
    check_down_after_stop
    echo "$passed passed, $failed failed"
    [[ $failed -eq 0 ]]
}

main
