#!/usr/bin/env bash
# The quick start: Redis (found or started), pyq installed into a virtualenv (.venv unless one is
# active), a worker pool running the example jobs, and a few example jobs enqueued a second after it
# starts. Ctrl-C stops the pool gracefully, then the Redis this script started, if it started one.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
source scripts/venv.sh
source scripts/redis.sh
trap stop_started_redis EXIT
(sleep 1.5 && python3 -m examples.enqueue) &
pyq -C config/queue.yml "$@"
