#!/usr/bin/env bash
# The PrometheusRule's expressions parse with Prometheus's own grammar and promtool, and every alert
# fires as tests/deploy/alerts.test.yaml expects.
#   tests/deploy/promtool_test.sh REPO_ROOT
set -euo pipefail
root=$1
command -v promtool >/dev/null || { echo "promtool missing: scripts/install-deps.sh installs Debian's prometheus"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
node "$root/tools/deploy-check/check-monitoring.mjs" "$root/deploy/base/monitoring" --rules-out="$tmp/rules.yaml"
cp "$root/tests/deploy/alerts.test.yaml" "$tmp/"
promtool check rules "$tmp/rules.yaml"
promtool test rules "$tmp/alerts.test.yaml"
