#!/usr/bin/env bash
# End-to-end run of the shipped Nginx site and HAProxy snippet on loopback,
# in front of a running daedalus:
#
#   DAEDALUS_E2E_URL=http://127.0.0.1:PORT \
#   DAEDALUS_TEST_FASTAGENT_URL=http://127.0.0.1:P/mcp deploy/e2e.sh
#
# Starts Nginx with deploy/nginx/daedalus.conf (paths and ports rewritten to
# a temporary folder and free ports) and HAProxy with deploy/haproxy/daedalus.cfg
# in front of it (plain http; a stand-in for the SSO step sets the user from a
# cookie), then checks, through the proxies a browser would use:
#   - the SPA and its fallback load through Nginx, with their cache headers;
#   - /api/health answers through HAProxy, whose httpchk marks the server UP
#     (read from its stats socket);
#   - an agent run's events arrive through both proxies unbuffered: when
#     run.started is in the client's hands the answer is not stored yet;
#   - a 200 MB upload streams through both (Nginx never buffers it to disk)
#     and arrives whole (size and SHA-256);
#   - /metrics is refused (403) from a network namespace whose address is
#     outside the allowed networks, and served from 127.0.0.1;
#   - an identity header sent by a client directly (to HAProxy, or to Nginx
#     from another address) does not reach daedalus.
#
# Needs: root (network namespace, veth pair 192.168.77.0/30 that exists only
# between this host and the namespace), nginx, haproxy, curl, python3, ip;
# a daedalus on 127.0.0.1 that trusts loopback for its identity header (the
# default) with a database and storage; a FastAgent server with an agent
# `slow` (DAEDALUS_TEST_FASTAGENT_URL is its MCP URL); the SPA build
# (DAEDALUS_E2E_SPA, default www/build). Prints one line per check and
# "N passed, N failed"; exits non-zero on any failure or missing input.
set -uo pipefail

DEPLOY=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$DEPLOY")
HOST=daedalus.ouranos.helu.ca
NS_HOST_ADDR=192.168.77.1
NS_PEER_ADDR=192.168.77.2
UPLOAD_BYTES=$((200 * 1024 * 1024))
passed=0 failed=0

die() { printf 'e2e.sh: %s\n' "$*" >&2; exit 2; }
note() { printf '        %s\n' "$*"; }

pass() { passed=$((passed + 1)); printf 'ok      %s\n' "$1"; }
fail() { failed=$((failed + 1)); printf 'FAILED  %s\n' "$1"; shift; for l in "$@"; do note "$l"; done; }

# --- inputs -----------------------------------------------------------------

[[ $EUID -eq 0 ]] || die "run as root (it creates a network namespace)"
DAEDALUS_URL=${DAEDALUS_E2E_URL:-${1:-}}
[[ $DAEDALUS_URL =~ ^http://127\.0\.0\.1:([0-9]+)/?$ ]] ||
    die "set DAEDALUS_E2E_URL=http://127.0.0.1:PORT (a running daedalus), got '${DAEDALUS_URL}'"
DAEDALUS_PORT=${BASH_REMATCH[1]}
AGENT_URL=${DAEDALUS_TEST_FASTAGENT_URL:-}
[[ -n $AGENT_URL ]] || die "set DAEDALUS_TEST_FASTAGENT_URL to a FastAgent MCP URL with an agent 'slow'"
SPA=${DAEDALUS_E2E_SPA:-$REPO/www/build}
[[ -f $SPA/index.html ]] || die "no SPA build at $SPA (cd www && npm ci && npm run build)"
SPA=$(cd "$SPA" && pwd)
for tool in nginx haproxy curl python3 ip sha256sum; do
    command -v "$tool" >/dev/null || die "$tool is missing (apt-get install it)"
done
curl -fsS --max-time 5 "http://127.0.0.1:$DAEDALUS_PORT/api/health" >/dev/null ||
    die "daedalus does not answer on 127.0.0.1:$DAEDALUS_PORT/api/health"

# --- setup and teardown -----------------------------------------------------

WORK=$(mktemp -d /tmp/daedalus-e2e.XXXXXX)
chmod 0755 "$WORK"
NETNS=daedalus-e2e-$$
VETH=dae2e$$
HAPROXY_PID=""

cleanup() {
    [[ -f $WORK/nginx/nginx.pid ]] && kill "$(cat "$WORK/nginx/nginx.pid")" 2>/dev/null
    [[ -n $HAPROXY_PID ]] && kill "$HAPROXY_PID" 2>/dev/null
    ip link del "$VETH" 2>/dev/null
    ip netns del "$NETNS" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
NGINX_PORT=$(free_port)
HAPROXY_PORT=$(free_port)
NGINX=http://127.0.0.1:$NGINX_PORT
HAPROXY=http://127.0.0.1:$HAPROXY_PORT

# A namespace with its own address, linked to this host by a veth pair: the
# only route out of it is to 192.168.77.1, where the test Nginx listens.
make_namespace() {
    ip netns add "$NETNS" &&
        ip link add "$VETH" type veth peer name "${VETH}n" &&
        ip link set "${VETH}n" netns "$NETNS" &&
        ip addr add "$NS_HOST_ADDR/30" dev "$VETH" &&
        ip link set "$VETH" up &&
        ip -n "$NETNS" addr add "$NS_PEER_ADDR/30" dev "${VETH}n" &&
        ip -n "$NETNS" link set "${VETH}n" up &&
        ip -n "$NETNS" link set lo up
}

# The shipped site with only its host-specific values replaced; each
# replacement must have happened, or the test would run another config.
render_site() {
    local site=$WORK/nginx/daedalus.conf
    sed -e "s|^    listen 22181;|    listen 127.0.0.1:$NGINX_PORT; listen $NS_HOST_ADDR:$NGINX_PORT;|" \
        -e '/^    listen \[::\]:22181;/d' \
        -e "s|^    root /srv/daedalus/frontend/build;|    root $SPA;|" \
        -e "s|^    server 127.0.0.1:8000;|    server 127.0.0.1:$DAEDALUS_PORT;|" \
        "$DEPLOY/nginx/daedalus.conf" >"$site"
    if ! grep -q "listen 127.0.0.1:$NGINX_PORT;" "$site" || ! grep -q "root $SPA;" "$site" ||
        ! grep -q "server 127.0.0.1:$DAEDALUS_PORT;" "$site" ||
        grep -Eq '^ *(listen .*22181|root /srv|server 127\.0\.0\.1:8000)' "$site"; then
        die "the shipped Nginx site changed shape: update render_site in e2e.sh"
    fi
    grep -q '127.0.0.1/32 1; # daedalus-haproxy-address' "$site" ||
        die "the site's HAProxy address is no longer loopback by default"
}

start_nginx() {
    local dir=$WORK/nginx
    mkdir -p "$dir"/{body,proxy,fastcgi,uwsgi,scgi}
    chown nobody "$dir"/{body,proxy,fastcgi,uwsgi,scgi}
    render_site
    cat >"$dir/nginx.conf" <<EOF
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events {}
http {
    include /etc/nginx/mime.types;
    access_log $dir/access.log;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    include $dir/daedalus.conf;
}
EOF
    nginx -t -q -p "$dir" -c "$dir/nginx.conf" || die "nginx -t rejects the rendered site"
    nginx -p "$dir" -c "$dir/nginx.conf" || die "nginx did not start with the shipped site"
}

# HAProxy: a plain-http `https` frontend, the snippet's frontend lines, then
# the SSO stand-in (in production the SSO rules follow the snippet's lines),
# then the snippet's backend pointed at the test Nginx.
start_haproxy() {
    local dir=$WORK/haproxy snippet=$DEPLOY/haproxy/daedalus.cfg
    mkdir -p "$dir"
    {
        cat <<EOF
global
    stats socket $dir/stats.sock mode 600 level admin

defaults
    mode http
    timeout connect 5s
    timeout client 1h
    timeout server 1m

frontend https
    bind 127.0.0.1:$HAPROXY_PORT
EOF
        sed -n '/^# --- FRONTEND https: begin ---$/,/^# --- FRONTEND https: end ---$/p' "$snippet"
        echo '    http-request set-header X-Forwarded-User %[req.cook(e2e_sso)] if { req.cook(e2e_sso) -m found }'
        echo
        sed -n '/^backend daedalus$/,$p' "$snippet" |
            sed "s|puck.incus:22181 check|127.0.0.1:$NGINX_PORT check|"
    } >"$dir/haproxy.cfg"
    if ! grep -q "server puck 127.0.0.1:$NGINX_PORT check" "$dir/haproxy.cfg" ||
        ! grep -q 'use_backend daedalus' "$dir/haproxy.cfg"; then
        die "the shipped HAProxy snippet changed shape: update start_haproxy in e2e.sh"
    fi
    haproxy -c -q -f "$dir/haproxy.cfg" || die "haproxy rejects the test configuration"
    haproxy -db -f "$dir/haproxy.cfg" >"$dir/haproxy.log" 2>&1 &
    HAPROXY_PID=$!
}

# --- helpers ----------------------------------------------------------------

# http NAME METHOD URL [curl args...]: body to $WORK/NAME.body, status out.
http() {
    local name=$1 method=$2 url=$3; shift 3
    curl -sS --max-time 60 -X "$method" -o "$WORK/$name.body" -D "$WORK/$name.headers" \
        -w '%{http_code}' "$@" "$url"
}
as_alice=(-H "Host: $HOST" -b "e2e_sso=e2e-alice")
json_field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$@"; }
header() { grep -i "^$2:" "$WORK/$1.headers" | head -n1 | cut -d' ' -f2- | tr -d '\r'; }

# --- the checks -------------------------------------------------------------

check_spa() {
    local status cc
    status=$(http spa GET "$NGINX/")
    if [[ $status != 200 ]] || ! cmp -s "$WORK/spa.body" "$SPA/index.html"; then
        fail "SPA index through Nginx" "status $status, or not index.html"; return
    fi
    status=$(http spa-deep GET "$NGINX/workspaces/some/deep/link")
    cc=$(header spa-deep Cache-Control)
    if [[ $status == 200 ]] && cmp -s "$WORK/spa-deep.body" "$SPA/index.html" && [[ $cc == no-cache ]]; then
        pass "SPA through Nginx: / and a deep link answer index.html (Cache-Control: $cc)"
    else
        fail "SPA fallback through Nginx" "status $status, Cache-Control '$cc'"
    fi
    local asset
    asset=$(cd "$SPA" && find _app/immutable -type f -name '*.js' 2>/dev/null | head -n1)
    if [[ -z $asset ]]; then
        fail "hashed asset cache headers" "no _app/immutable/*.js in $SPA"; return
    fi
    status=$(http asset GET "$NGINX/$asset")
    cc=$(header asset Cache-Control)
    if [[ $status == 200 && $cc == *immutable* ]]; then
        pass "hashed asset /$asset: Cache-Control: $cc"
    else
        fail "hashed asset /$asset" "status $status, Cache-Control '$cc'"
    fi
}

stats_line() {
    python3 - "$WORK/haproxy/stats.sock" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b"show stat\n")
data = b""
while chunk := s.recv(65536):
    data += chunk
lines = data.decode().splitlines()
head = lines[0].lstrip("# ").split(",")
for line in lines[1:]:
    row = dict(zip(head, line.split(",")))
    if row.get("pxname") == "daedalus" and row.get("svname") == "puck":
        print(row["status"], row["check_status"], row["check_code"])
EOF
}

check_health_via_haproxy() {
    local status line=""
    for _ in $(seq 1 40); do
        line=$(stats_line 2>/dev/null)
        [[ $line == "UP L7OK 200" ]] && break
        sleep 0.5
    done
    if [[ $line == "UP L7OK 200" ]]; then
        pass "HAProxy httpchk GET /api/health: server daedalus/puck $line"
    else
        fail "HAProxy httpchk" "stats socket says '$line' (want UP L7OK 200)"
    fi
    status=$(http health GET "$HAPROXY/api/health" -H "Host: $HOST")
    if [[ $status == 200 ]] && [[ $(json_field "$WORK/health.body" status 2>/dev/null) == ok ]]; then
        pass "/api/health through HAProxy and Nginx: $(cat "$WORK/health.body")"
    else
        fail "/api/health through HAProxy" "status $status: $(head -c 300 "$WORK/health.body")"
    fi
}

check_metrics_access() {
    local inside outside health public
    inside=$(http metrics-in GET "$NGINX/metrics")
    if [[ $inside == 200 ]] && grep -q '^daedalus_up 1' "$WORK/metrics-in.body"; then
        pass "/metrics from 127.0.0.1 through Nginx: 200 with daedalus_up 1"
    else
        fail "/metrics from 127.0.0.1" "status $inside"
    fi
    health=$(ip netns exec "$NETNS" curl -sS --max-time 10 -o /dev/null -w '%{http_code}' \
        "http://$NS_HOST_ADDR:$NGINX_PORT/api/health")
    outside=$(ip netns exec "$NETNS" curl -sS --max-time 10 -o /dev/null -w '%{http_code}' \
        "http://$NS_HOST_ADDR:$NGINX_PORT/metrics")
    if [[ $health == 200 && $outside == 403 ]]; then
        pass "/metrics from $NS_PEER_ADDR (own namespace): 403, while /api/health there: 200"
    else
        fail "/metrics from outside the allowed networks" \
            "from $NS_PEER_ADDR: /metrics $outside (want 403), /api/health $health (want 200)"
    fi
    public=$(http metrics-public GET "$HAPROXY/metrics" -H "Host: $HOST")
    if [[ $public == 403 ]]; then
        pass "/metrics through HAProxy's public frontend: 403"
    else
        fail "/metrics through HAProxy" "status $public (want 403)"
    fi
}

check_identity() {
    local status
    status=$(http me-alice GET "$HAPROXY/api/me" "${as_alice[@]}")
    if [[ $status == 200 ]] && grep -q 'e2e-alice' "$WORK/me-alice.body"; then
        pass "signed-in user set by the SSO step reaches daedalus (/api/me names e2e-alice)"
    else
        fail "SSO identity through HAProxy and Nginx" "status $status: $(head -c 300 "$WORK/me-alice.body")"
        return
    fi
    status=$(http me-spoof-haproxy GET "$HAPROXY/api/me" -H "Host: $HOST" \
        -H 'X-Forwarded-User: e2e-mallory')
    if grep -q 'e2e-mallory' "$WORK/me-spoof-haproxy.body"; then
        fail "client identity header through HAProxy" "daedalus saw e2e-mallory (status $status)"
    else
        pass "X-Forwarded-User sent by a client to HAProxy is dropped (status $status, not mallory)"
    fi
    status=$(ip netns exec "$NETNS" curl -sS --max-time 10 -o "$WORK/me-spoof-nginx.body" \
        -w '%{http_code}' -H 'X-Forwarded-User: e2e-mallory' "http://$NS_HOST_ADDR:$NGINX_PORT/api/me")
    if grep -q 'e2e-mallory' "$WORK/me-spoof-nginx.body"; then
        fail "client identity header straight to Nginx" "daedalus saw e2e-mallory (status $status)"
    else
        pass "X-Forwarded-User sent straight to Nginx from $NS_PEER_ADDR is dropped (status $status)"
    fi
}

create_conversation() {
    local status body
    body=$(python3 -c 'import json,sys; print(json.dumps({"name": "deploy e2e",
        "agent_servers": [{"name": "fast", "url": sys.argv[1]}], "default_agent": "slow"}))' "$AGENT_URL")
    status=$(http ws POST "$HAPROXY/api/workspaces" "${as_alice[@]}" \
        -H 'Content-Type: application/json' --data-binary "$body")
    [[ $status == 200 || $status == 201 ]] || { echo "create workspace: $status $(cat "$WORK/ws.body")"; return 1; }
    WS=$(json_field "$WORK/ws.body" id)
    status=$(http conv POST "$HAPROXY/api/workspaces/$WS/conversations" "${as_alice[@]}" \
        -H 'Content-Type: application/json' --data-binary '{"title":"deploy e2e","agent":"slow"}')
    [[ $status == 200 || $status == 201 ]] || { echo "create conversation: $status $(cat "$WORK/conv.body")"; return 1; }
    CONV=$(json_field "$WORK/conv.body" id)
}

# Reads the run's event stream through HAProxy and Nginx. The moment
# run.started is in hand it asks (a separate request) for the stored
# messages: if a proxy buffered the stream, the run would be over by then
# and the agent's answer stored. Times are printed for the reader, not checked.
check_event_stream() {
    local out line
    if ! create_conversation >"$WORK/create.log" 2>&1; then
        fail "event stream through both proxies" "$(cat "$WORK/create.log")"; return
    fi
    if out=$(python3 - "$HAPROXY_PORT" "$HOST" "$WS" "$CONV" 2>&1 <<'EOF'
import http.client, json, sys, time
port, host, ws, conv = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
headers = {"Host": host, "Cookie": "e2e_sso=e2e-alice"}
base = f"/api/workspaces/{ws}/conversations/{conv}"

def stored_answer():
    c = http.client.HTTPConnection("127.0.0.1", int(port), timeout=30)
    c.request("GET", base + "/messages", headers=headers)
    r = c.getresponse()
    items = json.loads(r.read())["items"]
    return [m["status"] for m in items if m["role"] == "assistant"]

c = http.client.HTTPConnection("127.0.0.1", int(port), timeout=120)
start = time.monotonic()
c.request("POST", base + "/messages",
          body=json.dumps({"content": "through both proxies", "agent": "slow"}),
          headers={**headers, "Content-Type": "application/json", "Accept": "text/event-stream"})
r = c.getresponse()
if r.status != 200 or not r.getheader("Content-Type", "").startswith("text/event-stream"):
    sys.exit(f"POST messages: {r.status} {r.getheader('Content-Type')} {r.read()[:300]!r}")
seen, answer_when_started = [], None
while True:
    line = r.fp.readline()
    if not line:
        break
    line = line.decode().rstrip("\r\n")
    if line.startswith("event:"):
        event = line[6:].strip()
        seen.append((event, time.monotonic() - start))
        if event == "run.started":
            answer_when_started = stored_answer()
        if event in ("message.completed", "run.failed", "run.cancelled"):
            break
names = [e for e, _ in seen]
print(" ".join(f"{e}@{t:.2f}s" for e, t in seen))
if "run.started" not in names or names[-1:] != ["message.completed"]:
    sys.exit(f"events {names}: want run.started ... message.completed")
if any(s == "complete" for s in answer_when_started):
    sys.exit(f"the answer was already stored when run.started arrived: buffered ({answer_when_started})")
print(f"assistant messages when run.started arrived: {answer_when_started or 'none yet'}")
EOF
    ); then
        pass "agent run events through HAProxy and Nginx arrive unbuffered"
        while IFS= read -r line; do note "$line"; done <<<"$out"
    else
        fail "agent run events through HAProxy and Nginx" "$out"
    fi
}

check_upload() {
    local file=$WORK/big.bin status sha size got_sha
    if [[ -z ${WS:-} ]]; then
        create_conversation >"$WORK/create.log" 2>&1 ||
            { fail "200 MB upload" "$(cat "$WORK/create.log")"; return; }
    fi
    head -c "$UPLOAD_BYTES" /dev/urandom >"$file"
    sha=$(sha256sum "$file" | cut -d' ' -f1)
    status=$(curl -sS --max-time 600 -o "$WORK/upload.body" -w '%{http_code}' -X POST \
        -T "$file" -H 'Content-Type: application/octet-stream' "${as_alice[@]}" \
        "$HAPROXY/api/workspaces/$WS/files?name=big.bin")
    rm -f "$file"
    if [[ $status != 200 && $status != 201 ]]; then
        fail "200 MB upload through HAProxy and Nginx" "status $status: $(head -c 300 "$WORK/upload.body")"
        return
    fi
    size=$(json_field "$WORK/upload.body" size)
    got_sha=$(json_field "$WORK/upload.body" sha256)
    if [[ $size != "$UPLOAD_BYTES" || $got_sha != "$sha" ]]; then
        fail "200 MB upload" "stored size $size sha256 $got_sha, sent $UPLOAD_BYTES $sha"
    elif grep -q 'buffered to a temporary file' "$WORK/nginx/error.log"; then
        fail "200 MB upload" "Nginx buffered the request body to disk:" \
            "$(grep 'buffered to a temporary file' "$WORK/nginx/error.log" | head -n1)"
    else
        pass "200 MB upload streamed through HAProxy and Nginx (no temp file; size and sha256 match)"
    fi
}

main() {
    make_namespace || die "could not create the network namespace $NETNS"
    start_nginx
    start_haproxy
    check_spa
    check_health_via_haproxy
    check_metrics_access
    check_identity
    check_event_stream
    check_upload
    echo "$passed passed, $failed failed"
    [[ $failed -eq 0 ]]
}

main
