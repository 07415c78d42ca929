#!/usr/bin/env bash
# Creates .venv and installs dsgen into it (with extras given as $1, e.g. "test").
# On a fresh Debian machine it first installs python3-venv if `python3 -m venv` cannot work.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
if [ ! -x .venv/bin/python ]; then
  if ! python3 -c "import ensurepip, venv" >/dev/null 2>&1; then
    echo "installing python3-venv (Debian) ..." >&2
    as_root apt-get update -qq && as_root apt-get install -y -qq python3-venv
  fi
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
if [ -n "$extras" ]; then
  .venv/bin/python -m pip install -q -e ".[$extras]"
else
  .venv/bin/python -m pip install -q -e .
fi
