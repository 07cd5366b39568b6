#!/usr/bin/env bash
# Runs Daedalus on this machine with embedded defaults: a private PostgreSQL cluster in
# the data folder, files on local disk, the browser app served by the binary itself, on
# http://127.0.0.1:8000 (DAEDALUS_LISTEN to change). Installs what is missing first:
# PostgreSQL's server programs (Debian package), the app's npm packages; builds the app
# and the release binary. Ctrl+C stops Daedalus and its PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "dev: $*" >&2; }

have_postgres() { ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; }

install_apt() {
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@"
}

if ! have_postgres; then
    say "installing PostgreSQL's server programs"
    install_apt postgresql
fi
command -v cargo >/dev/null || { say "Rust (cargo) is needed: https://rustup.rs"; exit 1; }
if ! command -v npm >/dev/null; then
    say "installing Node.js and npm"
    install_apt nodejs npm
fi

if [ ! -f www/build/index.html ] || [ -n "$(find www/src www/package.json -newer www/build/index.html 2>/dev/null | head -1)" ]; then
    say "building the browser app (www/build)"
    (cd www && npm ci --no-audit --no-fund --loglevel=error && npm run build --silent)
fi
say "building the release binary"
cargo build --release --locked --quiet

# PostgreSQL refuses to run as root, so as root the cluster runs as the postgres user,
# who must be able to reach the data folder: a checkout under /root is out of its reach.
if [ -z "${DAEDALUS_DATA_DIR:-}" ] && [ "$(id -u)" -eq 0 ] && ! runuser -u postgres -- test -x "$PWD"; then
    export DAEDALUS_DATA_DIR=/var/lib/daedalus-dev
    mkdir -p "$DAEDALUS_DATA_DIR"
    say "this checkout is not reachable by the postgres user; data goes to $DAEDALUS_DATA_DIR"
fi
export DAEDALUS_ENV=${DAEDALUS_ENV:-development}
exec ./target/release/daedalus "$@"
