#!/usr/bin/env bash
# Source me: makes sure a Redis answers at $REDIS_URL (or redis://127.0.0.1:6379/0).
# Uses a running server when there is one; otherwise starts a local redis-server,
# installing it with apt-get when it is missing. A server it starts is named in $PYQ_STARTED_REDIS_PORT,
# so the caller can stop it (stop_started_redis) when it is done.
set -euo pipefail
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"
_port=$(python3 -c 'import os,urllib.parse as u; print(u.urlsplit(os.environ["REDIS_URL"]).port or 6379)')
if ! python3 - <<PY 2>/dev/null
import socket; s = socket.create_connection(("127.0.0.1", $_port), 1); s.sendall(b"PING\r\n"); assert s.recv(7) == b"+PONG\r\n"
PY
then
  if ! command -v redis-server >/dev/null; then
    echo "redis-server not found: installing it (apt-get)" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server) >&2
  fi
  echo "starting redis-server on 127.0.0.1:$_port" >&2
  redis-server --port "$_port" --bind 127.0.0.1 --daemonize yes --save '' --appendonly no >/dev/null
  for _ in $(seq 50); do redis-cli -p "$_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  export PYQ_STARTED_REDIS_PORT="$_port"
fi

stop_started_redis() {
  if [ -n "${PYQ_STARTED_REDIS_PORT:-}" ]; then
    echo "stopping the redis-server started on 127.0.0.1:$PYQ_STARTED_REDIS_PORT" >&2
    redis-cli -p "$PYQ_STARTED_REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  fi
}
