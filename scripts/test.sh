#!/usr/bin/env bash
# One command: install what the tests need (Chromium from Debian, the Python test extras)
# and run the suite on SQLite, then every test that uses a catalog again on PostgreSQL
# (127.0.0.1:5432, user postgres; DSGEN_TEST_PG_ALL=1 repeats the others too).
set -euo pipefail
cd "$(dirname "$0")/.."
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
# Chromium for the browser tests; the emoji font so screenshots show the UI's status badges; Info-ZIP's
# zip, whose archives (UTF-8 names without the UTF-8 flag) the archive tests import.
if ! command -v chromium >/dev/null 2>&1 || [ ! -e /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ] \
    || ! command -v zip >/dev/null 2>&1; then
  echo "installing Debian's chromium, fonts-noto-color-emoji and zip for the tests ..." >&2
  as_root apt-get update -qq && as_root apt-get install -y -qq chromium fonts-noto-color-emoji zip
fi
bash scripts/bootstrap.sh test
.venv/bin/ruff check .

PG_URL="${DSGEN_TEST_PG_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/postgres}"
PYTEST=(.venv/bin/python -m pytest -n 2 -p no:cacheprovider -q "$@")

echo "=== pass 1/2: SQLite catalog ==="
env -u DSGEN_TEST_PG_URL "${PYTEST[@]}"

echo "=== pass 2/2: PostgreSQL catalog ($PG_URL) ==="
if .venv/bin/python - "$PG_URL" <<'PY'
import sys
from sqlalchemy import create_engine, text
try:
    with create_engine(sys.argv[1]).connect() as c:
        c.execute(text("select 1"))
except Exception as exc:  # noqa: BLE001
    print(f"PostgreSQL not reachable: {exc}", file=sys.stderr)
    sys.exit(1)
PY
then
  DSGEN_TEST_PG_URL="$PG_URL" "${PYTEST[@]}"
elif [ "${DSGEN_REQUIRE_PG:-0}" = 1 ]; then
  echo "PostgreSQL is required (DSGEN_REQUIRE_PG=1) but not reachable at $PG_URL" >&2
  exit 1
else
  echo "WARNING: PostgreSQL pass not run: no server at $PG_URL (set DSGEN_TEST_PG_URL)" >&2
fi
