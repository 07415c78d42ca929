#!/usr/bin/env bash
# One command: install, create the embedded default (SQLite + local storage under $DSGEN_HOME,
# default ./dsgen-data), load the demo dataset, start a worker and the web app, print the URL.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/dsgen up "$@"
