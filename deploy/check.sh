#!/usr/bin/env bash
# Proves every file in deploy/ with the program that reads it:
#
#   deploy/check.sh [--metrics FILE]
#
# nginx -t on the site (as shipped and as rewritten for compose), haproxy -c
# on a full configuration around the snippet, promtool check config / check
# rules / test rules, systemd-analyze verify and security on the unit (in a
# temporary root holding a stand-in binary), the compose file and Dockerfile
# stages, the .env example against the configuration contract and Nginx's
# upload limit, the provisioning SQL on a throwaway PostgreSQL cluster, the
# Terraform file parsed, shellcheck on the scripts, and the Grafana dashboard
# and alert rules against the metric names of a real scrape of /metrics
# (FILE; without it that one check is SKIPPED, loudly).
#
# Installs what is missing with apt-get (and python-hcl2 into a cached venv).
# Prints one line per check and closes with "N passed, N failed, N skipped";
# exits non-zero when anything failed.
set -uo pipefail

DEPLOY=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${DAEDALUS_TEST_CACHE:-$HOME/.cache/daedalus-test}
HCL2_VERSION=8.1.4
metrics=""
passed=0 failed=0 skipped=0

die() { printf 'check.sh: %s\n' "$*" >&2; exit 2; }

while [[ $# -gt 0 ]]; do
    case $1 in
        --metrics) metrics=${2:-}; shift 2 || die "--metrics needs a file" ;;
        -h|--help) sed -n '2,19p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) die "unknown argument: $1" ;;
    esac
done
if [[ -n $metrics ]]; then
    [[ -s $metrics ]] || die "--metrics $metrics: no such file, or empty"
    metrics=$(cd "$(dirname "$metrics")" && pwd)/$(basename "$metrics")
fi

[[ $EUID -eq 0 ]] || die "run as root (private mounts for /etc/hosts, a throwaway PostgreSQL as postgres)"

WORK=$(mktemp -d /tmp/daedalus-deploy-check.XXXXXX)
PG_DATA=""
cleanup() {
    if [[ -n $PG_DATA && -f $PG_DATA/postmaster.pid ]]; then
        runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate stop >/dev/null 2>&1
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# --- tools ------------------------------------------------------------------

apt_install() {
    [[ $# -gt 0 ]] || return 0
    echo "installing with apt-get: $*" >&2
    if [[ ! -f $WORK/.apt-updated ]]; then
        apt-get update -q >&2 || die "apt-get update failed"
        touch "$WORK/.apt-updated"
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >&2 ||
        die "apt-get install $* failed"
}

ensure_tools() {
    local missing=() pair
    for pair in nginx:nginx haproxy:haproxy promtool:prometheus systemd-analyze:systemd \
        shellcheck:shellcheck openssl:openssl unshare:util-linux python3:python3; do
        command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
    done
    python3 -c 'import yaml' 2>/dev/null || missing+=(python3-yaml)
    compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
    command -v psql >/dev/null || missing+=(postgresql-client)
    apt_install "${missing[@]}"
    PG_BIN=$(dirname "$(compgen -G '/usr/lib/postgresql/*/bin/initdb' | sort -V | tail -n1)")
}

# --- running checks ---------------------------------------------------------

# check NAME COMMAND...: runs one check, prints its verdict, and its output
# when it fails.
check() {
    local name=$1; shift
    local log=$WORK/$name.log
    if ("$@") >"$log" 2>&1; then
        passed=$((passed + 1))
        printf 'ok      %s\n' "$name"
    else
        failed=$((failed + 1))
        printf 'FAILED  %s\n' "$name"
        sed 's/^/        /' "$log"
    fi
}

# Fails when a tool printed anything matching PATTERN, even with exit 0
# (nginx warnings, systemd-analyze's "ignoring" lines).
quiet_or_fail() {
    local pattern=$1; shift
    local out status
    out=$("$@" 2>&1); status=$?
    printf '%s\n' "$out"
    [[ $status -eq 0 ]] || return "$status"
    if grep -Eq "$pattern" <<<"$out"; then
        echo "(treated as a failure: the output above matches /$pattern/)"
        return 1
    fi
}

# A private /etc/hosts for one command, so configurations naming production
# hosts (puck.incus, the compose service `api`) resolve to loopback here.
with_hosts() {
    local hosts=$WORK/hosts.$RANDOM
    { cat /etc/hosts; echo "127.0.0.1 puck.incus api"; } >"$hosts"
    # shellcheck disable=SC2016 # expanded by the inner shell
    unshare -m -- sh -c 'mount --bind "$0" /etc/hosts && exec "$@"' "$hosts" "$@"
}

nginx_conf_around() {
    local site=$1 dir=$2
    mkdir -p "$dir"
    cat >"$dir/nginx.conf" <<EOF
pid $dir/nginx.pid;
error_log $dir/error.log;
events {}
http {
    include /etc/nginx/mime.types;
    access_log $dir/access.log;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    include $site;
}
EOF
}

# --- the checks -------------------------------------------------------------

check_nginx_site() {
    nginx_conf_around "$DEPLOY/nginx/daedalus.conf" "$WORK/nginx"
    quiet_or_fail '\[(warn|emerg|alert|crit)\]' nginx -t -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf"
}

check_nginx_compose_site() {
    local site=$WORK/nginx-compose/default.conf
    mkdir -p "$WORK/nginx-compose"
    sed -f "$DEPLOY/docker/nginx-site.sed" "$DEPLOY/nginx/daedalus.conf" >"$site"
    if ! grep -q 'listen 80;' "$site" || ! grep -q 'server api:8000;' "$site" ||
        grep -Eq '^ *(listen .*22181|server 127\.0\.0\.1:8000)' "$site"; then
        echo "nginx-site.sed no longer rewrites the listen port and upstream"
        return 1
    fi
    nginx_conf_around "$site" "$WORK/nginx-compose"
    quiet_or_fail '\[(warn|emerg|alert|crit)\]' \
        with_hosts nginx -t -p "$WORK/nginx-compose" -c "$WORK/nginx-compose/nginx.conf"
}

check_haproxy() {
    local dir=$WORK/haproxy
    mkdir -p "$dir"
    openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=daedalus.ouranos.helu.ca \
        -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null || return 1
    cat "$dir/cert.pem" "$dir/key.pem" >"$dir/bundle.pem"
    cat "$DEPLOY/haproxy/haproxy-check.cfg" "$DEPLOY/haproxy/daedalus.cfg" >"$dir/haproxy.cfg"
    # -dW: any warning fails the check.
    DAEDALUS_CHECK_CERT=$dir/bundle.pem with_hosts haproxy -dW -c -f "$dir/haproxy.cfg"
}

check_promtool_config() { promtool check config "$DEPLOY/prometheus/prometheus.yml"; }
check_promtool_rules() { promtool check rules "$DEPLOY/prometheus/daedalus-alerts.yml"; }
check_promtool_tests() {
    cd "$DEPLOY/prometheus" && promtool test rules daedalus-alerts.test.yml
}

# The unit is verified inside a temporary root that has the system's units
# and an executable stand-in at /srv/daedalus/bin/daedalus, so a missing
# binary is not what the check reports; any other complaint fails it.
systemd_root() {
    local root=$WORK/systemd-root
    mkdir -p "$root/srv/daedalus/bin" "$root/srv/daedalus/data" "$root/etc/systemd/system" \
        "$root/usr/lib/systemd"
    cp -a /usr/lib/systemd/system "$root/usr/lib/systemd/"
    printf '#!/bin/sh\nexit 0\n' >"$root/srv/daedalus/bin/daedalus"
    chmod 0755 "$root/srv/daedalus/bin/daedalus"
    : >"$root/srv/daedalus/.env"
    cp "$DEPLOY/systemd/daedalus.service" "$root/etc/systemd/system/"
    printf '%s' "$root"
}

check_systemd_verify() {
    local root out
    root=$(systemd_root)
    out=$(systemd-analyze verify --root="$root" daedalus.service 2>&1) || { echo "$out"; return 1; }
    if [[ -n $out ]]; then
        echo "$out"
        echo "(treated as a failure: verify printed something for the unit)"
        return 1
    fi
    echo "systemd-analyze verify: no complaints"
}

check_systemd_security() {
    local root
    root=$(systemd_root)
    # Exposure is scored 0-100 here (shown as 0.0-10.0); 20 keeps it "OK".
    systemd-analyze security --offline=yes --root="$root" --threshold=20 daedalus.service |
        tail -n 3
}

check_compose() {
    python3 - "$DEPLOY" <<'EOF'
import re, sys, yaml
deploy = sys.argv[1]
compose = yaml.safe_load(open(f"{deploy}/compose.yml"))
dockerfile = open(f"{deploy}/Dockerfile").read()
env_example = open(f"{deploy}/.env.example").read()
errors = []
services = compose.get("services", {})
for name in ("api", "nginx", "postgres", "minio"):
    if name not in services:
        errors.append(f"service {name} missing")
stages = {stage: image for image, stage in
          re.findall(r"^FROM\s+(\S+)\s+AS\s+(\S+)", dockerfile, re.M | re.I)}
for name, svc in services.items():
    build = svc.get("build")
    if isinstance(build, dict):
        if build.get("dockerfile") != "deploy/Dockerfile" or build.get("context") != "..":
            errors.append(f"{name}: build must use deploy/Dockerfile from the repository root")
        if build.get("target") not in stages:
            errors.append(f"{name}: build target {build.get('target')} is not a Dockerfile stage")
if stages.get("web", "").split(":")[0] != "nginx":
    errors.append("the web stage must be FROM nginx:alpine")
if "22181:80" not in [str(p) for p in services.get("nginx", {}).get("ports", [])]:
    errors.append("nginx must publish 22181:80")
known = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", env_example, re.M))
for key in services.get("api", {}).get("environment", {}):
    if key not in known:
        errors.append(f"api sets {key}, which .env.example does not document")
for needle, why in ((r"cargo build --release --locked --bin daedalus", "build stage builds daedalus"),
                    (r"RUN npm ci", "www stage runs npm ci"),
                    (r"RUN npm run build", "www stage runs npm run build"),
                    (r"^USER nonroot", "api runs as non-root"),
                    (r"^FROM gcr.io/distroless/cc-debian12:nonroot AS api", "small runtime image")):
    if not re.search(needle, dockerfile, re.M):
        errors.append(f"Dockerfile: expected {why}")
print("services:", ", ".join(services), "| Dockerfile stages:", ", ".join(stages))
print("NOTE: the images are not built here (no Docker daemon, no image registry)")
for e in errors:
    print("ERROR", e)
sys.exit(1 if errors else 0)
EOF
}

# The configuration contract (DESIGN.md) and Nginx's upload limit.
check_env_example() {
    python3 - "$DEPLOY" <<'EOF'
import re, sys, yaml
deploy = sys.argv[1]
text = open(f"{deploy}/.env.example").read()
contract = """DAEDALUS_ENV DAEDALUS_LISTEN DAEDALUS_DATABASE_URL DAEDALUS_DATABASE_URL_FILE
DAEDALUS_S3_ENDPOINT DAEDALUS_S3_ACCESS_KEY DAEDALUS_S3_ACCESS_KEY_FILE DAEDALUS_S3_SECRET_KEY
DAEDALUS_S3_SECRET_KEY_FILE DAEDALUS_S3_BUCKET DAEDALUS_S3_REGION DAEDALUS_DATA_DIR
DAEDALUS_STATIC_DIR DAEDALUS_AUTH_HEADER DAEDALUS_TRUSTED_PROXIES DAEDALUS_MAX_UPLOAD_BYTES
RUST_LOG""".split()
listed = re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", text, re.M)
errors = [f"{v} is not in .env.example" for v in contract if v not in listed]
errors += [f"{v} in .env.example is not a Daedalus variable" for v in listed if v not in contract]
limit = int(re.search(r"^DAEDALUS_MAX_UPLOAD_BYTES=(\d+)$", text, re.M).group(1))
site = open(f"{deploy}/nginx/daedalus.conf").read()
block = re.search(r"location ~ \^/api/workspaces/\[\^/\]\+/files\$ \{(.*?)\}", site, re.S)
size = re.search(r"client_max_body_size\s+(\d+)([kKmMgG]?);", block.group(1)) if block else None
if not size:
    errors.append("no client_max_body_size in the Nginx upload location")
else:
    nginx_limit = int(size.group(1)) * {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[size.group(2).lower()]
    if nginx_limit != limit:
        errors.append(f"Nginx accepts uploads up to {nginx_limit} bytes, Daedalus {limit}")
    compose = yaml.safe_load(open(f"{deploy}/compose.yml"))
    if int(compose["services"]["api"]["environment"]["DAEDALUS_MAX_UPLOAD_BYTES"]) != limit:
        errors.append("compose sets another DAEDALUS_MAX_UPLOAD_BYTES")
    print(f"{len(listed)} variables; upload limit {limit} bytes in Daedalus, Nginx and compose")
for e in errors:
    print("ERROR", e)
sys.exit(1 if errors else 0)
EOF
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Runs the provisioning SQL twice (it must be idempotent) on a throwaway
# cluster, then logs in as daedalus with the password over TCP and creates a
# table, as the migrations will.
check_postgres_sql() {
    local port sql=$DEPLOY/provisioning/postgres.sql
    PG_DATA=$WORK/pg/data
    mkdir -p "$WORK/pg" && chown postgres "$WORK/pg" && chmod 0755 "$WORK"
    port=$(free_port)
    runuser -u postgres -- "$PG_BIN/initdb" -D "$PG_DATA" -A scram-sha-256 --auth-local=trust \
        -U postgres >/dev/null || return 1
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" -w -l "$WORK/pg/log" \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $WORK/pg" start >/dev/null || return 1
    local admin=(runuser -u postgres -- psql -X -q -h "$WORK/pg" -p "$port" -v ON_ERROR_STOP=1)
    "${admin[@]}" -v password=first-secret -f "$sql" || return 1
    "${admin[@]}" -v password=e2e-secret -f "$sql" || return 1
    PGPASSWORD=e2e-secret psql -X -q -v ON_ERROR_STOP=1 \
        "postgresql://daedalus@127.0.0.1:$port/daedalus" \
        -c 'CREATE TABLE provisioning_probe (id int); DROP TABLE provisioning_probe;' || return 1
    "${admin[@]}" -d daedalus -tA -c "SELECT pg_get_userbyid(nspowner) FROM pg_namespace
        WHERE nspname = 'public'" | grep -qx daedalus || { echo "public is not daedalus's"; return 1; }
    echo "created role and database twice; daedalus logs in with its password and creates tables"
}

check_terraform() {
    local venv=$CACHE/deploy-venv
    if ! "$venv/bin/python" -c "import hcl2, importlib.metadata as m;
assert m.version('python-hcl2') == '$HCL2_VERSION'" 2>/dev/null; then
        rm -rf "$venv"
        python3 -m venv "$venv" 2>/dev/null || { apt_install python3-venv && python3 -m venv "$venv"; } ||
            return 1
        "$venv/bin/pip" install -q "python-hcl2==$HCL2_VERSION" || return 1
    fi
    "$venv/bin/python" - "$DEPLOY/terraform/minio-bucket.tf" <<'EOF'
import json, sys, hcl2
tf = hcl2.load(open(sys.argv[1]))
resources = {}
for block in tf.get("resource", []):
    for kind, named in block.items():
        for name, body in named.items():
            resources[(kind.strip('"'), name.strip('"'))] = body
bucket = resources.get(("minio_s3_bucket", "daedalus"), {})
assert bucket.get("bucket", "").strip('"') == "daedalus", "no minio_s3_bucket named daedalus"
assert ("minio_iam_user_policy_attachment", "daedalus") in resources, "no policy for the user"
print("parsed:", ", ".join(f"{k}.{n}" for k, n in resources))
print("NOTE: parsed only; `terraform validate` needs terraform and its provider")
EOF
}

check_shell() {
    shellcheck "$DEPLOY"/*.sh || return 1
    echo "shellcheck: $(cd "$DEPLOY" && echo ./*.sh)"
}

check_dashboard_loads() {
    python3 "$DEPLOY/check_metric_names.py" "$DEPLOY/grafana/daedalus-dashboard.json" \
        "$DEPLOY/prometheus/daedalus-alerts.yml"
}

check_metric_names() {
    python3 "$DEPLOY/check_metric_names.py" "$DEPLOY/grafana/daedalus-dashboard.json" \
        "$DEPLOY/prometheus/daedalus-alerts.yml" "$metrics"
}

main() {
    ensure_tools
    check nginx-site check_nginx_site
    check nginx-compose-site check_nginx_compose_site
    check haproxy check_haproxy
    check promtool-config check_promtool_config
    check promtool-rules check_promtool_rules
    check promtool-test-rules check_promtool_tests
    check systemd-verify check_systemd_verify
    check systemd-security check_systemd_security
    check compose-and-dockerfile check_compose
    check env-example check_env_example
    check postgres-provisioning check_postgres_sql
    check terraform-parse check_terraform
    check shellcheck check_shell
    check dashboard-loads check_dashboard_loads
    if [[ -n $metrics ]]; then
        check dashboard-and-alerts-vs-metrics check_metric_names
    else
        skipped=$((skipped + 1))
        cat <<'EOF'
SKIPPED dashboard-and-alerts-vs-metrics
        *** The metric names used by the Grafana dashboard and the alert rules were NOT ***
        *** checked against a real scrape. Run: deploy/check.sh --metrics FILE, where   ***
        *** FILE is the body of GET /metrics from a running daedalus.                   ***
EOF
    fi
    echo "$passed passed, $failed failed, $skipped skipped"
    [[ $failed -eq 0 ]]
}

main
