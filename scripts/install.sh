#!/usr/bin/env bash
# Installs pyq (editable) with its test and build tools into the virtualenv scripts/venv.sh picks.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh
python3 -m pip install -q --disable-pip-version-check -e '.[test]'
