#!/usr/bin/env bash
# Runs the demo app on http://127.0.0.1:8000 with the embedded memory driver.
# SESSION_DRIVER=cookie (or any installed driver) switches it.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh
export SESSION_DRIVER="${SESSION_DRIVER:-memory}"
exec uv run --no-sync uvicorn --app-dir examples/demo demo:app --host 127.0.0.1 --port "${PORT:-8000}"
