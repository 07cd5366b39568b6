#!/usr/bin/env bash
# The operator's files, proven by the programs that read them: the end-to-end run
# through the shipped Nginx and HAProxy configuration (which also exercises agent runs
# and uploads, so every metric family exists), deploy/check.sh against that real scrape
# of /metrics, a real Prometheus scraping with the shipped job, and the install script.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f www/build/index.html ] || (cd www && npm ci --no-audit --no-fund --loglevel=error && npm run build)
eval "$(DAEDALUS_E2E_S3=1 bash tests/daedalus.sh start deploy "$PWD/www/build")"
trap 'bash tests/daedalus.sh stop deploy' EXIT
DAEDALUS_E2E_SPA=$PWD/www/build bash deploy/e2e.sh
curl -fs "$DAEDALUS_E2E_URL/api/telemetry" -H 'Content-Type: application/json' \
    -d '{"events":[{"type":"exception","kind":"error"},{"type":"web_vital","name":"LCP","value":900}]}'
scrape=${DAEDALUS_TEST_WORK:-$PWD/tests/.work}/metrics.txt
curl -fs "$DAEDALUS_E2E_URL/metrics" >"$scrape"
bash deploy/check.sh --metrics "$scrape"
bash deploy/prometheus-e2e.sh
bash deploy/install-e2e.sh
