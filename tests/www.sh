#!/usr/bin/env bash
# The browser app's suite: type check, lint, unit tests, build, then the end-to-end tests
# in Debian's Chromium against the real binary serving that build, with a real FastAgent.
set -euo pipefail
cd "$(dirname "$0")/.."
(cd www && npm ci --no-audit --no-fund --loglevel=error)
(cd www && npm run check && npm run lint && npm test && npm run build)
eval "$(bash tests/daedalus.sh start www "$PWD/www/build")"
trap 'bash tests/daedalus.sh stop www' EXIT
(cd www && DAEDALUS_E2E_URL=$DAEDALUS_E2E_URL npm run e2e)
