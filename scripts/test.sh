#!/usr/bin/env bash
# Installs everything the test suite needs (Python packages and build tools into a virtualenv,
# redis-server, Ruby Sidekiq, Prometheus, Chromium) and runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v redis-sentinel >/dev/null || need+=(redis-sentinel)
command -v openssl >/dev/null || need+=(openssl)
command -v redis-cli >/dev/null || need+=(redis-tools)  # redis-cli --cluster create: the Redis Cluster tests
command -v ruby >/dev/null || need+=(ruby)
dpkg -s ruby-sidekiq >/dev/null 2>&1 || need+=(ruby-sidekiq)
dpkg -s ruby-sidekiq-cron >/dev/null 2>&1 || need+=(ruby-sidekiq-cron)
dpkg -s ruby-activejob >/dev/null 2>&1 || need+=(ruby-activejob)
command -v prometheus >/dev/null || need+=(prometheus)
command -v chromium >/dev/null || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]} (apt-get)" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
bash scripts/install.sh
source scripts/venv.sh
ruff check src tests examples bench tools
# Test files run side by side, one worker per core up to 4 (most tests wait on real servers and pools);
# a file stays on one worker, so its module fixtures (a Sentinel set, a cluster) start once. "-n 0" runs serially.
python3 -m pytest -n auto --maxprocesses 4 --dist loadfile "$@"
