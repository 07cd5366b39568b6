#!/usr/bin/env bash
# Installs Daedalus on this host, or upgrades it in place when run again.
#
#   deploy/install.sh [--binary PATH] [--frontend DIR] [--haproxy-addr ADDR]
#
# Lays out /srv/daedalus (bin/daedalus, frontend/build, .env, data/), creates
# the `daedalus` system user, installs the systemd unit and the Nginx site,
# runs the database migrations with the new binary, restarts the service and
# checks /api/health directly and through Nginx. The previous binary and
# frontend are kept as bin/daedalus.previous and frontend/build.previous for
# a rollback (deploy/README.md). The first run stops after writing .env from
# the example: fill it in, then run the script again.
#
# Defaults: --binary target/release/daedalus and --frontend www/build from
# this repository; --haproxy-addr (or HAPROXY_ADDR) is the address HAProxy
# connects from, the only peer whose identity header Nginx passes on; when
# left out, the one already in the installed site is kept.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEPLOY=$REPO/deploy
HOME_DIR=/srv/daedalus
UNIT=/etc/systemd/system/daedalus.service
SITE=/etc/nginx/sites-available/daedalus
SITE_LINK=/etc/nginx/sites-enabled/daedalus
API=http://127.0.0.1:8000
VIA_NGINX=http://127.0.0.1:22181
MARKER='# daedalus-haproxy-address'

binary=$REPO/target/release/daedalus
frontend=$REPO/www/build
haproxy_addr=${HAPROXY_ADDR:-}

say() { printf '==> %s\n' "$*"; }
die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }

parse_args() {
    while [[ $# -gt 0 ]]; do
        case $1 in
            --binary) binary=$2; shift 2 ;;
            --frontend) frontend=$2; shift 2 ;;
            --haproxy-addr) haproxy_addr=$2; shift 2 ;;
            -h|--help) sed -n '2,18p' "${BASH_SOURCE[0]}"; exit 0 ;;
            *) die "unknown argument: $1 (see --help)" ;;
        esac
    done
}

preflight() {
    [[ $EUID -eq 0 ]] || die "run as root (it creates a user and installs system files)"
    local tool
    for tool in systemctl systemd-run nginx curl useradd install; do
        command -v "$tool" >/dev/null || die "$tool is missing"
    done
    [[ -x $binary ]] || die "no binary at $binary: build it with 'cargo build --release --locked'"
    [[ -f $frontend/index.html ]] ||
        die "no SPA build at $frontend: build it with 'cd www && npm ci && npm run build'"
    if [[ -n $haproxy_addr && ! $haproxy_addr =~ ^[0-9a-fA-F.:]+(/[0-9]+)?$ ]]; then
        die "--haproxy-addr must be an IP address or network, got '$haproxy_addr'"
    fi
}

create_user() {
    if id -u daedalus >/dev/null 2>&1; then return; fi
    say "creating system user daedalus"
    useradd --system --user-group --home-dir "$HOME_DIR" --no-create-home \
        --shell /usr/sbin/nologin --comment "Daedalus service" daedalus
}

lay_out() {
    say "laying out $HOME_DIR"
    install -d -o root -g root -m 0755 "$HOME_DIR" "$HOME_DIR/bin" "$HOME_DIR/frontend" \
        "$HOME_DIR/deploy"
    install -d -o daedalus -g daedalus -m 0750 "$HOME_DIR/data"
    install -o root -g root -m 0644 "$DEPLOY/README.md" "$HOME_DIR/deploy/README.md"
    install -o root -g root -m 0755 "$binary" "$HOME_DIR/bin/daedalus.new"
    rm -rf "$HOME_DIR/frontend/build.new"
    cp -R "$frontend" "$HOME_DIR/frontend/build.new"
    chown -R root:root "$HOME_DIR/frontend/build.new"
    chmod -R u=rwX,go=rX "$HOME_DIR/frontend/build.new"
}

# The first run writes .env from the example and stops: the service cannot
# start without the database and storage settings from Vault.
ensure_env() {
    local env=$HOME_DIR/.env
    if [[ ! -f $env ]]; then
        install -o root -g daedalus -m 0640 "$DEPLOY/.env.example" "$env"
        say "wrote $env from deploy/.env.example"
    fi
    chown root:daedalus "$env"
    chmod 0640 "$env"
    if grep -q '^[^#]*CHANGE-ME' "$env"; then
        die "fill in $env (values in deploy/provisioning/vault.md), then run this again"
    fi
}

# Runs `daedalus migrate` as the service would run: same user, same
# environment file read by systemd itself, same working directory.
migrate() {
    say "applying database migrations with the new binary"
    systemd-run --quiet --wait --pipe --collect \
        -p User=daedalus -p Group=daedalus -p WorkingDirectory="$HOME_DIR" \
        -p Environment=DAEDALUS_ENV=production -p Environment=DAEDALUS_DATA_DIR="$HOME_DIR/data" \
        -p EnvironmentFile="$HOME_DIR/.env" \
        "$HOME_DIR/bin/daedalus.new" migrate ||
        die "migrations failed; nothing was switched, the running version is unchanged"
    systemd-run --quiet --wait --pipe --collect \
        -p User=daedalus -p Group=daedalus -p WorkingDirectory="$HOME_DIR" \
        -p Environment=DAEDALUS_ENV=production -p EnvironmentFile="$HOME_DIR/.env" \
        "$HOME_DIR/bin/daedalus.new" migrate --status || true
}

# Renames keep each switch atomic; the old files stay for a rollback.
switch_release() {
    say "switching binary and frontend"
    if [[ -f $HOME_DIR/bin/daedalus ]]; then
        cp -p "$HOME_DIR/bin/daedalus" "$HOME_DIR/bin/daedalus.previous"
    fi
    mv -f "$HOME_DIR/bin/daedalus.new" "$HOME_DIR/bin/daedalus"
    if [[ -d $HOME_DIR/frontend/build ]]; then
        rm -rf "$HOME_DIR/frontend/build.previous"
        mv "$HOME_DIR/frontend/build" "$HOME_DIR/frontend/build.previous"
    fi
    mv "$HOME_DIR/frontend/build.new" "$HOME_DIR/frontend/build"
}

install_unit() {
    say "installing $UNIT"
    install -o root -g root -m 0644 "$DEPLOY/systemd/daedalus.service" "$UNIT"
    systemctl daemon-reload
    systemctl enable --quiet daedalus.service
}

# The HAProxy address in the marked line is the site's only host-specific
# value: take it from the argument, else from the installed site.
site_haproxy_addr() {
    if [[ -n $haproxy_addr ]]; then
        printf '%s' "$haproxy_addr"
    elif [[ -f $SITE ]]; then
        grep -F "$MARKER" "$SITE" | awk '{print $1}'
    fi
}

install_site() {
    say "installing the Nginx site $SITE"
    local addr previous=""
    addr=$(site_haproxy_addr)
    [[ -f $SITE ]] && previous=$(mktemp) && cp -p "$SITE" "$previous"
    if [[ -n $addr ]]; then
        sed "s|^\( *\)[^ ]* 1; $MARKER|\1$addr 1; $MARKER|" \
            "$DEPLOY/nginx/daedalus.conf" >"$SITE"
    else
        cp "$DEPLOY/nginx/daedalus.conf" "$SITE"
        say "WARNING: no --haproxy-addr: only loopback may send X-Forwarded-User," \
            "so users coming through HAProxy get 401 until it is set"
    fi
    chmod 0644 "$SITE"
    ln -sfn "$SITE" "$SITE_LINK"
    if ! nginx -t 2>&1; then
        if [[ -n $previous ]]; then cp -p "$previous" "$SITE"; else rm -f "$SITE" "$SITE_LINK"; fi
        die "nginx -t failed; the previous site is back in place"
    fi
    [[ -n $previous ]] && rm -f "$previous"
    systemctl reload nginx || systemctl start nginx
}

wait_for() {
    local url=$1 body="" _
    for _ in $(seq 1 30); do
        body=$(curl -fsS --max-time 2 "$url" 2>/dev/null) && break
        sleep 1
    done
    [[ $body == *'"status":"ok"'* ]] || die "$url did not answer {\"status\":\"ok\"} within 30 s" \
        "(see: journalctl -u daedalus -n 50)"
    say "$url: $body"
}

restart_and_check() {
    say "restarting daedalus"
    systemctl restart daedalus.service
    wait_for "$API/api/health"
    wait_for "$VIA_NGINX/api/health"
    local ready
    ready=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$API/api/ready")
    [[ $ready == 200 ]] || say "WARNING: /api/ready answers $ready: check PostgreSQL and storage"
    curl -fsS --max-time 5 "$API/metrics" | grep '^daedalus_build_info' || true
}

main() {
    parse_args "$@"
    preflight
    create_user
    lay_out
    ensure_env
    migrate
    switch_release
    install_unit
    install_site
    restart_and_check
    say "done"
}

main "$@"
