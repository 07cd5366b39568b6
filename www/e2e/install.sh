#!/usr/bin/env bash
# Installs Debian's Chromium for the end-to-end tests when it is missing.
# playwright-core drives this browser; it never downloads one of its own.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install.sh: /usr/bin/chromium is missing; run this script as root to install it" >&2
  exit 1
fi
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium fonts-dejavu-core
