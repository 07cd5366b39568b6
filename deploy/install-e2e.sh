#!/usr/bin/env bash
# Runs deploy/install.sh for real, three times, on this machine without
# changing it: first install, install after filling in .env, and an upgrade.
#
#   DAEDALUS_E2E_BINARY=target/release/daedalus deploy/install-e2e.sh
#
# Everything happens in private namespaces: an overlay over /etc (so the
# `daedalus` user, the unit and the Nginx site land in a throwaway layer),
# empty /srv, /run and /var/log/nginx, and a network namespace with only
# loopback (so 127.0.0.1:8000 and :22181 are free). A throwaway PostgreSQL
# cluster is provisioned with deploy/provisioning/postgres.sql and the real
# Nginx serves the installed site.
#
# This machine has no running systemd, so `systemctl` and `systemd-run` are
# stand-ins (deploy/install-e2e.sh writes them): they start the binary as the
# unit says (user, working directory, Environment= lines, then the
# EnvironmentFile, read by a small parser of KEY=VALUE lines) but apply none
# of the unit's sandboxing, which `check.sh` verifies with systemd-analyze.
#
# Needs: root, the daedalus binary (DAEDALUS_E2E_BINARY, default
# target/release/daedalus, else target/debug/daedalus), the SPA build
# (DAEDALUS_E2E_SPA, default www/build), nginx, curl, python3, PostgreSQL's
# server binaries. Prints one line per check and "N passed, N failed".
set -uo pipefail

DEPLOY=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$DEPLOY")

die() { printf 'install-e2e.sh: %s\n' "$*" >&2; exit 2; }

if [[ ${1:-} != --inside ]]; then
    [[ $EUID -eq 0 ]] || die "run as root (it uses mount and network namespaces)"
    exec unshare --mount --net --propagation private -- "${BASH_SOURCE[0]}" --inside
fi

binary=${DAEDALUS_E2E_BINARY:-}
if [[ -z $binary ]]; then
    binary=$REPO/target/release/daedalus
    [[ -x $binary ]] || binary=$REPO/target/debug/daedalus
fi
[[ -x $binary ]] || die "no daedalus binary (set DAEDALUS_E2E_BINARY)"
SPA=${DAEDALUS_E2E_SPA:-$REPO/www/build}
[[ -f $SPA/index.html ]] || die "no SPA build at $SPA (cd www && npm ci && npm run build)"
for tool in nginx curl python3 runuser; do
    command -v "$tool" >/dev/null || die "$tool is missing"
done
PG_BIN=$(dirname "$(compgen -G '/usr/lib/postgresql/*/bin/initdb' | sort -V | tail -n1)")
[[ -x $PG_BIN/initdb ]] || die "PostgreSQL server binaries are missing (apt-get install postgresql)"

passed=0 failed=0
pass() { passed=$((passed + 1)); printf 'ok      %s\n' "$1"; }
fail() { failed=$((failed + 1)); printf 'FAILED  %s\n' "$1"; shift; printf '        %s\n' "$@"; }

WORK=$(mktemp -d /tmp/daedalus-install-e2e.XXXXXX)
chmod 0755 "$WORK"
DB_PASSWORD=install-e2e-$RANDOM$RANDOM

cleanup() {
    # The stand-in started daedalus in its own session: end that session.
    [[ -f $WORK/daedalus.pid ]] && pkill -TERM -s "$(cat "$WORK/daedalus.pid")" 2>/dev/null
    [[ -f /run/nginx.pid ]] && kill "$(cat /run/nginx.pid)" 2>/dev/null
    [[ -f $WORK/pg/data/postmaster.pid ]] &&
        runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$WORK/pg/data" -m fast stop >/dev/null 2>&1
    rm -rf "$WORK"
}
trap cleanup EXIT

private_system() {
    ip link set lo up
    mkdir -p "$WORK/etc-upper" "$WORK/etc-work"
    if ! mount -t overlay overlay \
        -o "lowerdir=/etc,upperdir=$WORK/etc-upper,workdir=$WORK/etc-work" /etc ||
        ! mount -t tmpfs tmpfs /srv || ! mount -t tmpfs tmpfs /run ||
        ! mkdir -p /var/log/nginx || ! mount -t tmpfs tmpfs /var/log/nginx; then
        die "could not make the private /etc, /srv, /run"
    fi
    mkdir -p /etc/systemd/system /etc/nginx/sites-available /etc/nginx/sites-enabled
    rm -f /etc/nginx/sites-enabled/default
}

start_postgres() {
    mkdir -p "$WORK/pg" && chown postgres "$WORK/pg"
    runuser -u postgres -- "$PG_BIN/initdb" -D "$WORK/pg/data" -A scram-sha-256 \
        --auth-local=trust -U postgres >/dev/null || die "initdb failed"
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$WORK/pg/data" -w -l "$WORK/pg/log" \
        -o "-c listen_addresses=127.0.0.1 -p 5432 -k $WORK/pg" start >/dev/null ||
        die "PostgreSQL did not start"
    runuser -u postgres -- psql -X -q -h "$WORK/pg" -v ON_ERROR_STOP=1 \
        -v password="$DB_PASSWORD" -f "$DEPLOY/provisioning/postgres.sql" ||
        die "provisioning/postgres.sql failed"
}

# The stand-ins for systemd. Both read the environment the way the unit
# declares it: Environment= first, then the EnvironmentFile over it.
write_stand_ins() {
    mkdir -p "$WORK/bin"
    cat >"$WORK/bin/unit-env" <<'EOF'
#!/usr/bin/env python3
"""Prints NUL-separated KEY=VALUE pairs: Environment= values given as
arguments, then those of the environment file (first argument)."""
import sys
pairs = {}
for item in sys.argv[2:]:
    key, _, value = item.partition("=")
    pairs[key] = value
with open(sys.argv[1]) as f:
    for line in f:
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            pairs[key.strip()] = value
sys.stdout.write("".join(f"{k}={v}\0" for k, v in pairs.items()))
EOF
    cat >"$WORK/bin/systemd-run" <<EOF
#!/usr/bin/env bash
# Stand-in: runs the command in the foreground as -p User= with the unit-style environment.
user=root dir=/ envfile=/dev/null envs=()
while [[ \$# -gt 0 ]]; do
    case \$1 in
        -p) case \$2 in
                User=*) user=\${2#User=} ;;
                WorkingDirectory=*) dir=\${2#WorkingDirectory=} ;;
                Environment=*) envs+=("\${2#Environment=}") ;;
                EnvironmentFile=*) envfile=\${2#EnvironmentFile=} ;;
            esac; shift 2 ;;
        --*) shift ;;
        *) break ;;
    esac
done
echo "systemd-run \$*" >>"$WORK/systemd.log"
cd "\$dir" || exit 1
mapfile -d '' env < <("$WORK/bin/unit-env" "\$envfile" "\${envs[@]}")
exec runuser -u "\$user" -- env -i PATH=/usr/bin:/bin "\${env[@]}" "\$@"
EOF
    cat >"$WORK/bin/systemctl" <<EOF
#!/usr/bin/env bash
# Stand-in: restart starts the unit's ExecStart as its User= in the background.
echo "systemctl \$*" >>"$WORK/systemd.log"
unit=/etc/systemd/system/daedalus.service
start_daedalus() {
    local envs=() line
    while IFS= read -r line; do envs+=("\${line#Environment=}"); done < <(grep '^Environment=' "\$unit")
    local user dir exec_start envfile
    user=\$(sed -n 's/^User=//p' "\$unit")
    dir=\$(sed -n 's/^WorkingDirectory=//p' "\$unit")
    exec_start=\$(sed -n 's/^ExecStart=//p' "\$unit")
    envfile=\$(sed -n 's/^EnvironmentFile=//p' "\$unit")
    cd "\$dir" || return 1
    mapfile -d '' env < <("$WORK/bin/unit-env" "\$envfile" "\${envs[@]}")
    setsid runuser -u "\$user" -- env -i PATH=/usr/bin:/bin "\${env[@]}" \$exec_start \
        >>"$WORK/daedalus.log" 2>&1 &
    echo \$! >"$WORK/daedalus.pid"
}
stop_daedalus() {
    [[ -f "$WORK/daedalus.pid" ]] || return 0
    local pid; pid=\$(cat "$WORK/daedalus.pid")
    pkill -TERM -s "\$pid" 2>/dev/null
    for _ in \$(seq 1 100); do kill -0 "\$pid" 2>/dev/null || break; sleep 0.1; done
    rm -f "$WORK/daedalus.pid"
}
case "\$1 \${2:-}" in
    "daemon-reload "*|"enable "*) ;;
    "restart daedalus.service") stop_daedalus; start_daedalus ;;
    "reload nginx") [[ -f /run/nginx.pid ]] && nginx -s reload ;;
    "start nginx") nginx ;;
    *) echo "systemctl stand-in: \$* is not supported" >&2; exit 1 ;;
esac
EOF
    chmod 0755 "$WORK/bin/"*
}

run_install() {
    PATH=$WORK/bin:$PATH "$DEPLOY/install.sh" --binary "$binary" --frontend "$SPA" "$@" \
        >"$WORK/install.out" 2>&1
}

check_first_run() {
    if run_install --haproxy-addr 10.10.0.5; then
        fail "first run stops for .env" "install.sh succeeded without a filled-in .env"; return
    fi
    local mode
    mode=$(stat -c '%a %U:%G' /srv/daedalus/.env 2>/dev/null)
    if id -u daedalus >/dev/null 2>&1 && [[ $mode == "640 root:daedalus" ]] &&
        grep -q 'fill in /srv/daedalus/.env' "$WORK/install.out"; then
        pass "first run: user daedalus created, .env written ($mode), asks to fill it in"
    else
        fail "first run" "user: $(id daedalus 2>&1); .env: $mode" "$(tail -n 5 "$WORK/install.out")"
    fi
}

# What an operator does from Vault: the database URL; files stay on the
# local disk here (no S3 endpoint), which the data folder allows.
fill_env() {
    sed -i \
        -e "s|^DAEDALUS_DATABASE_URL=.*|DAEDALUS_DATABASE_URL=postgres://daedalus:$DB_PASSWORD@127.0.0.1:5432/daedalus|" \
        -e 's|^DAEDALUS_S3_|#DAEDALUS_S3_|' /srv/daedalus/.env
}

check_install() {
    if ! run_install --haproxy-addr 10.10.0.5; then
        fail "install" "$(tail -n 15 "$WORK/install.out")" "$(tail -n 5 "$WORK/daedalus.log" 2>/dev/null)"
        return 1
    fi
    local health site
    health=$(curl -sS --max-time 5 http://127.0.0.1:22181/api/health)
    site=$(grep 'daedalus-haproxy-address' /etc/nginx/sites-available/daedalus)
    if [[ $health == *'"status":"ok"'* && $site == *'10.10.0.5 1;'* &&
        -L /etc/nginx/sites-enabled/daedalus ]] && cmp -s "$SPA/index.html" \
        /srv/daedalus/frontend/build/index.html; then
        pass "install: migrated, started, healthy through the installed site ($health)"
    else
        fail "install" "health '$health', site line '$site'" "$(tail -n 5 "$WORK/install.out")"
    fi
    local applied
    applied=$(runuser -u postgres -- psql -X -tA -h "$WORK/pg" -d daedalus \
        -c "SELECT count(*) FROM schema_migrations" 2>&1)
    if grep -q '^systemd-run /srv/daedalus/bin/daedalus.new migrate$' "$WORK/systemd.log" &&
        [[ $applied =~ ^[1-9][0-9]*$ ]]; then
        pass "install ran 'daedalus migrate' with the new binary: $applied migration(s) recorded"
    else
        fail "migrations" "schema_migrations: $applied" "$(cat "$WORK/systemd.log")"
    fi
}

check_upgrade() {
    local before
    before=$(cat "$WORK/daedalus.pid" 2>/dev/null)
    if ! run_install; then
        fail "upgrade in place" "$(tail -n 15 "$WORK/install.out")"; return
    fi
    local site health
    site=$(grep 'daedalus-haproxy-address' /etc/nginx/sites-available/daedalus)
    health=$(curl -sS --max-time 5 http://127.0.0.1:22181/api/health)
    if [[ -x /srv/daedalus/bin/daedalus.previous && -f /srv/daedalus/frontend/build.previous/index.html &&
        $site == *'10.10.0.5 1;'* && $health == *'"status":"ok"'* &&
        $(cat "$WORK/daedalus.pid") != "$before" ]]; then
        pass "upgrade in place: restarted, previous binary and SPA kept, HAProxy address kept"
    else
        fail "upgrade in place" "site line '$site', health '$health'" \
            "$(ls -l /srv/daedalus/bin /srv/daedalus/frontend)"
    fi
}

main() {
    private_system
    start_postgres
    write_stand_ins
    check_first_run
    fill_env
    check_install && check_upgrade
    echo "$passed passed, $failed failed"
    [[ $failed -eq 0 ]]
}

main
