#!/usr/bin/env bash
# Installs pyq (editable) with its test tools into the current Python.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q --disable-pip-version-check -e '.[test]'
