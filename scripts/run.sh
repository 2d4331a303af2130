#!/usr/bin/env bash
# The quick start: Redis (found or started), pyq installed, a worker pool running the example jobs,
# and a few example jobs enqueued a second after it starts. Ctrl-C stops the pool gracefully.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
source scripts/redis.sh
(sleep 1.5 && python3 -m examples.enqueue) &
exec pyq -C config/queue.yml "$@"
