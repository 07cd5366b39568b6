#!/usr/bin/env bash
# The operator's files, proven by the programs that read them (deploy/check.sh, against
# a real scrape of /metrics), then the end-to-end runs through the shipped Nginx and
# HAProxy configuration and under a real Prometheus.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f www/build/index.html ] || (cd www && npm ci --no-audit --no-fund --loglevel=error && npm run build)
eval "$(bash tests/daedalus.sh start deploy "$PWD/www/build")"
trap 'bash tests/daedalus.sh stop deploy' EXIT
scrape=${DAEDALUS_TEST_WORK:-$PWD/tests/.work}/metrics.txt
curl -fs "$DAEDALUS_E2E_URL/api/health" >/dev/null
curl -fs "$DAEDALUS_E2E_URL/metrics" >"$scrape"
bash deploy/check.sh --metrics "$scrape"
DAEDALUS_E2E_SPA=$PWD/www/build bash deploy/e2e.sh
bash deploy/prometheus-e2e.sh
