#!/usr/bin/env bash
# The load benchmark: builds release binaries, starts a private PostgreSQL, s3s-fs and a
# FastAgent server, seeds a conversation of 10,000 messages, measures Daedalus against its
# baselines side by side, prints the table and writes it to bench/results/latest.md.
#
#   bench/load.sh
#
# Knobs (environment): BENCH_DURATION (seconds per wrk run, 10), BENCH_CONNECTIONS (32),
# BENCH_CALLS (agent calls per side, 200), BENCH_TRANSFER_BYTES (1 GiB), BENCH_STREAMS
# (1000). DAEDALUS_BENCH_SERVICES: extra folders (colon-separated) searched for the
# tests/services scripts after the repository's own.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RESULTS=$ROOT/bench/results
WORK=$RESULTS/work
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
DURATION=${BENCH_DURATION:-10}
CONNECTIONS=${BENCH_CONNECTIONS:-32}
CALLS=${BENCH_CALLS:-200}
TRANSFER_BYTES=${BENCH_TRANSFER_BYTES:-1073741824}
SMALL_TRANSFER_BYTES=$((TRANSFER_BYTES / 8))
STREAMS=${BENCH_STREAMS:-1000}
STREAM_RUNS=10
OLD_PYTHON_PER_CPU_SECOND=200
export DAEDALUS_TEST_WORK=$WORK
export FASTMCP_CHECK_FOR_UPDATES=off

say() { echo "load.sh: $*" >&2; }
die() { say "$*"; exit 1; }

declare -A R # every measured figure, by name
PIDS=()
STOP_SCRIPTS=()

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true
    done
    for script in "${STOP_SCRIPTS[@]}"; do
        "$script" stop >/dev/null 2>&1 || true
    done
}
trap cleanup EXIT

# The repository's tests/services/NAME.sh, else the first one in DAEDALUS_BENCH_SERVICES.
service_script() {
    local dir
    IFS=: read -r -a dirs <<<"$ROOT/tests/services:${DAEDALUS_BENCH_SERVICES:-}"
    for dir in "${dirs[@]}"; do
        [[ -n "$dir" && -x "$dir/$1.sh" ]] && { echo "$dir/$1.sh"; return 0; }
    done
    die "tests/services/$1.sh not found (looked in ${dirs[*]})"
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Reads `key=value` lines into R.
collect() {
    local line
    while IFS= read -r line; do
        [[ $line == *=* ]] && R[${line%%=*}]=${line#*=}
    done
}

build() {
    say "building release binaries"
    (cd "$ROOT" && cargo build --release --locked --bin daedalus \
        --example bare_hyper --example load_client >&2)
    DAEDALUS=$TARGET/release/daedalus
    BARE=$TARGET/release/examples/bare_hyper
    CLIENT=$TARGET/release/examples/load_client
}

install_tools() {
    if ! command -v wrk >/dev/null; then
        say "installing wrk from Debian"
        apt-get install -y --no-install-recommends wrk >&2 ||
            { apt-get update >&2 && apt-get install -y --no-install-recommends wrk >&2; }
    fi
    # Each open stream is a socket in Daedalus and one in the client.
    ulimit -n "$(ulimit -Hn)"
    (($(ulimit -n) > STREAMS * 2 + 200)) || die "open files limit $(ulimit -n) is too low"
}

start_postgres() {
    local script
    script=$(service_script postgres)
    "$script" install
    STOP_SCRIPTS+=("$script")
    eval "$("$script" start)"
    psql -q "$DAEDALUS_TEST_DATABASE_URL" -c "CREATE DATABASE daedalus_bench" >&2
    DATABASE_URL=${DAEDALUS_TEST_DATABASE_URL%/*}/daedalus_bench
}

start_s3() {
    local script
    script=$(service_script s3s)
    "$script" install
    STOP_SCRIPTS+=("$script")
    eval "$("$script" start)"
    export BENCH_S3_ENDPOINT=$DAEDALUS_TEST_S3S_URL
    export BENCH_S3_ACCESS_KEY=$DAEDALUS_TEST_S3S_ACCESS_KEY
    export BENCH_S3_SECRET_KEY=$DAEDALUS_TEST_S3S_SECRET_KEY
    export BENCH_S3_BUCKET=$DAEDALUS_TEST_S3S_BUCKET
}

# FastAgent writes session files where it runs: it runs from a copy of the test agents.
start_fastagent() {
    local script copy port
    script=$(service_script fastagent)
    "$script" install
    copy=$WORK/fastagent
    rm -rf "$copy" && mkdir -p "$copy/services" "$copy/agents"
    cp "$script" "$copy/services/"
    cp "$(dirname "$script")/../agents/agents.py" "$copy/agents/"
    port=$(free_port)
    setsid "$copy/services/fastagent.sh" run "$port" >"$copy/server.log" 2>&1 </dev/null &
    PIDS+=($!)
    for _ in $(seq 1 480); do
        curl -fsS -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null && break
        sleep 0.25
    done
    curl -fsS -o /dev/null "http://127.0.0.1:$port/" || die "FastAgent did not start; see $copy/server.log"
    MCP_URL=http://127.0.0.1:$port/mcp
}

daedalus_env() {
    export DAEDALUS_ENV=development
    export DAEDALUS_DATABASE_URL=$DATABASE_URL
    export DAEDALUS_DATA_DIR=$WORK/data
    export DAEDALUS_S3_ENDPOINT=$BENCH_S3_ENDPOINT
    export DAEDALUS_S3_ACCESS_KEY=$BENCH_S3_ACCESS_KEY
    export DAEDALUS_S3_SECRET_KEY=$BENCH_S3_SECRET_KEY
    export DAEDALUS_S3_BUCKET=$BENCH_S3_BUCKET
    export DAEDALUS_MAX_UPLOAD_BYTES=$((TRANSFER_BYTES * 2))
    export RUST_LOG=info
    DAEDALUS_PORT=$(free_port)
    export DAEDALUS_LISTEN=127.0.0.1:$DAEDALUS_PORT
    BASE=http://127.0.0.1:$DAEDALUS_PORT
}

# Starts Daedalus with its log (the access lines too) going to a file, as in production.
start_daedalus() {
    local log=$RESULTS/daedalus.log
    : >"$log"
    "$DAEDALUS" >>"$log" 2>&1 &
    DAEDALUS_PID=$!
    PIDS+=("$DAEDALUS_PID")
    for _ in $(seq 1 200); do
        grep -q '"listening' "$log" && return 0
        sleep 0.05
    done
    die "Daedalus did not start; see $log"
}

api() { # METHOD PATH [JSON]
    curl -fsS -X "$1" -H 'content-type: application/json' ${3:+-d "$3"} "$BASE$2"
}

seed() {
    local body
    body=$(jq -nc --arg url "$MCP_URL" \
        '{name: "bench", agent_servers: [{name: "fastagent", url: $url}], default_agent: "echo"}')
    WS=$(api POST /api/workspaces "$body" | jq -r .id)
    conversation() { api POST "/api/workspaces/$WS/conversations" "{\"title\":\"$1\"}" | jq -r .id; }
    BIG=$(conversation "ten thousand messages")
    CHAT=$(conversation "agent calls")
    STREAM_CONVS=()
    for i in $(seq 1 "$STREAM_RUNS"); do STREAM_CONVS+=("$(conversation "stream $i")"); done
    say "seeding 10,000 messages"
    psql -q "$DATABASE_URL" >&2 <<SQL
INSERT INTO messages (id, conversation_id, seq, role, content, status, agent)
SELECT gen_random_uuid(), '$BIG', s,
       CASE WHEN s % 2 = 1 THEN 'user' ELSE 'assistant' END,
       'Message ' || s || ': ' || repeat('the quick brown fox jumps over the lazy dog ', 6),
       'complete', 'echo'
FROM generate_series(1, 10000) AS s;
UPDATE conversations SET next_seq = 10001 WHERE id = '$BIG';
ANALYZE messages;
SQL
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

ms() { # a wrk duration (12.5us, 1.2ms, 2.0s) in milliseconds
    awk -v d="$1" 'BEGIN {
        n = d + 0; u = d; sub(/^[0-9.]+/, "", u)
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
        printf "%.3f", n }'
}

# wrk against URL while PID serves it: rps, requests per CPU-second of PID, p50, p99.
measure() { # NAME PID URL
    local name=$1 pid=$2 url=$3 out before after hz
    wrk -t1 -c"$CONNECTIONS" -d2s "$url" >/dev/null
    hz=$(getconf CLK_TCK)
    before=$(cpu_ticks "$pid")
    out=$(wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency "$url")
    after=$(cpu_ticks "$pid")
    local requests seconds errors
    requests=$(awk '/requests in/ {print $1}' <<<"$out")
    seconds=$(awk '/requests in/ {sub(/s,$/, "", $4); print $4}' <<<"$out")
    errors=$(awk '/Non-2xx/ {print $4}' <<<"$out")
    [[ -z $errors ]] || die "$name: $errors answers were not 2xx"
    R[${name}_rps]=$(awk -v r="$requests" -v s="$seconds" 'BEGIN {printf "%.0f", r / s}')
    R[${name}_per_cpu]=$(awk -v r="$requests" -v t=$((after - before)) -v hz="$hz" \
        'BEGIN {printf "%.0f", r / (t / hz)}')
    R[${name}_cpu_s]=$(awk -v t=$((after - before)) -v hz="$hz" 'BEGIN {printf "%.2f", t / hz}')
    R[${name}_p50]=$(ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")
    R[${name}_p99]=$(ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
}

measure_bare_hyper() {
    local port
    port=$(free_port)
    "$BARE" "127.0.0.1:$port" >/dev/null &
    local pid=$!
    PIDS+=("$pid")
    for _ in $(seq 1 100); do
        curl -fsS -o /dev/null "http://127.0.0.1:$port/api/health" 2>/dev/null && break
        sleep 0.05
    done
    measure bare "$pid" "http://127.0.0.1:$port/api/health"
    kill "$pid"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf (b > 0 ? "%.2f" : "–"), a / b}'; }
mib() { awk -v k="$1" 'BEGIN {printf "%.1f MiB", k / 1024}'; }

render() {
    set +u # a figure that could not be measured shows as empty, not as an abort
    local h_ratio l_ratio up_ratio down_ratio
    h_ratio=$(ratio "${R[health_per_cpu]}" "${R[bare_per_cpu]}")
    l_ratio=$(ratio "${R[list_per_cpu]}" "$OLD_PYTHON_PER_CPU_SECOND")
    up_ratio=$(ratio "${R[up_daedalus_mbps]}" "${R[up_direct_mbps]}")
    down_ratio=$(ratio "${R[down_daedalus_mbps]}" "${R[down_direct_mbps]}")
    cat <<TABLE
| measurement | Daedalus | baseline | ratio | target |
|---|---|---|---|---|
| \`/api/health\`, requests/s (wrk, $CONNECTIONS connections, access log on) | ${R[health_rps]} | bare hyper: ${R[bare_rps]} | $(ratio "${R[health_rps]}" "${R[bare_rps]}") | |
| \`/api/health\`, requests per CPU-second | ${R[health_per_cpu]} | bare hyper: ${R[bare_per_cpu]} | **$h_ratio** | ≥ 0.85 |
| \`/api/health\`, p50 / p99 | ${R[health_p50]} / ${R[health_p99]} ms | ${R[bare_p50]} / ${R[bare_p99]} ms | | |
| list 50 of 10,000 messages, requests/s | ${R[list_rps]} | | | |
| list 50 of 10,000 messages, requests per CPU-second (Daedalus only) | ${R[list_per_cpu]} | old Python service: $OLD_PYTHON_PER_CPU_SECOND | **${l_ratio}×** | ≥ 5,000 (≥ 20×) |
| list 50 of 10,000 messages, p50 / p99 | ${R[list_p50]} / ${R[list_p99]} ms | | | |
| PostgreSQL CPU-seconds during the listing run (not counted above) | ${R[list_pg_cpu_s]} s | | | |
| message to agent \`echo\`, median (p90) of $CALLS | ${R[chat_daedalus_ms_median]} (${R[chat_daedalus_ms_p90]}) ms | direct MCP call: ${R[chat_direct_ms_median]} (${R[chat_direct_ms_p90]}) ms | **+${R[chat_added_ms_median]} ms** | ≤ +1 ms |
| upload $(mib $((TRANSFER_BYTES / 1024))), MB/s (${R[up_mode]}) | ${R[up_daedalus_mbps]} | straight to s3s-fs: ${R[up_direct_mbps]} | **$up_ratio** | ≥ 0.9 |
| download $(mib $((TRANSFER_BYTES / 1024))), MB/s | ${R[down_daedalus_mbps]} | straight from s3s-fs: ${R[down_direct_mbps]} | **$down_ratio** | ≥ 0.9 |
| peak RSS, upload of $(mib $((SMALL_TRANSFER_BYTES / 1024))) / $(mib $((TRANSFER_BYTES / 1024))) | $(mib "${R[small_up_peak_rss_kib]}") / $(mib "${R[up_peak_rss_kib]}") | | | ≤ 48 MiB, flat |
| peak RSS, download of $(mib $((SMALL_TRANSFER_BYTES / 1024))) / $(mib $((TRANSFER_BYTES / 1024))) | $(mib "${R[small_down_peak_rss_kib]}") / $(mib "${R[down_peak_rss_kib]}") | | | ≤ 48 MiB, flat |
| ${R[streams_open]} open run event streams ($STREAM_RUNS running runs), RSS per stream | **${R[streams_kib_per_stream]} KiB** | $(mib "${R[streams_rss_before_kib]}") → $(mib "${R[streams_rss_after_kib]}") | | ≤ 20 KiB |
| idle RSS, 1 s after start (median of 7) | **$(mib "${R[idle_rss_kib_median]}")** | | | ≤ 12 MiB |
| start-up, exec to \`listening\`, migrations applied (median of 7) | **${R[startup_ms_median]} ms** | | | ≤ 100 ms |
TABLE
}

main() {
    mkdir -p "$RESULTS"
    rm -rf "$WORK"
    mkdir -p "$WORK"
    build
    install_tools
    start_postgres
    start_s3
    start_fastagent
    daedalus_env
    cd "$WORK" # no developer .env is read from here
    "$DAEDALUS" migrate >/dev/null
    say "start-up time and idle memory"
    collect < <("$CLIENT" startup 7 "$DAEDALUS")
    start_daedalus
    seed
    say "/api/health: Daedalus, then bare hyper"
    measure health "$DAEDALUS_PID" "$BASE/api/health"
    measure_bare_hyper
    say "listing 50 of 10,000 messages"
    local pg_before
    pg_before=$(pg_tree_ticks)
    measure list "$DAEDALUS_PID" "$BASE/api/workspaces/$WS/conversations/$BIG/messages?from=end&limit=50"
    R[list_pg_cpu_s]=$(awk -v t=$(($(pg_tree_ticks) - pg_before)) -v hz="$(getconf CLK_TCK)" \
        'BEGIN {printf "%.1f", t / hz}')
    say "agent calls: $CALLS through Daedalus and $CALLS direct, interleaved"
    collect < <("$CLIENT" chat "$BASE" "$WS" "$CHAT" "$MCP_URL" echo "$CALLS")
    say "uploads and downloads"
    collect < <("$CLIENT" transfer "$BASE" "$WS" "$SMALL_TRANSFER_BYTES" "$DAEDALUS_PID" | sed 's/^/small_/')
    collect < <("$CLIENT" transfer "$BASE" "$WS" "$TRANSFER_BYTES" "$DAEDALUS_PID")
    say "$STREAMS open run event streams"
    collect < <("$CLIENT" streams "$BASE" "$WS" "$STREAMS" "$DAEDALUS_PID" "${STREAM_CONVS[@]}")
    write_results
}

# CPU ticks of every PostgreSQL process (the backends serving Daedalus included).
pg_tree_ticks() {
    local total=0 pid
    for pid in $(pgrep -u postgres -x postgres || true); do
        total=$((total + $(cpu_ticks "$pid" 2>/dev/null || echo 0)))
    done
    echo "$total"
}

write_results() {
    local table
    table=$(render)
    {
        echo "Load benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git -C "$ROOT" rev-parse --short HEAD)"
        echo "Machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, $(. /etc/os-release && echo "$PRETTY_NAME")"
        echo
        echo "$table"
    } >"$RESULTS/latest.md"
    cat "$RESULTS/latest.md"
}

main "$@"
