#!/usr/bin/env bash
# Source me: runs the rest of the script in a virtualenv, never in the system's Python.
# Uses the one python3 already runs in; otherwise the project's own ($PYQ_VENV, default .venv),
# created on first use, with its bin first on PATH.
if ! python3 -c 'import sys; sys.exit(sys.prefix == sys.base_prefix)'; then
  _venv="${PYQ_VENV:-$PWD/.venv}"
  if [ ! -x "$_venv/bin/python3" ]; then
    if ! python3 -c 'import ensurepip' 2>/dev/null; then
      echo "python3 cannot create virtualenvs: installing python3-venv (apt-get)" >&2
      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv) >&2
    fi
    echo "creating the virtualenv $_venv" >&2
    python3 -m venv "$_venv"
  fi
  export VIRTUAL_ENV="$_venv" PATH="$_venv/bin:$PATH"
fi
