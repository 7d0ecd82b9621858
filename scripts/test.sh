#!/usr/bin/env bash
# The whole test suite, from a fresh machine: system packages the tests need,
# the workspace, linters, type checks, docs build and pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v memcached >/dev/null 2>&1 || [ -x /usr/bin/memcached ] || need+=(memcached)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> apt-get install ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "warning: missing ${need[*]}; tests that need them will skip" >&2
  fi
fi

source scripts/bootstrap.sh

echo "==> ruff"
uv run --no-sync ruff check .
uv run --no-sync ruff format --check .
echo "==> mypy --strict"
uv run --no-sync mypy
echo "==> mkdocs build --strict"
export NO_MKDOCS_2_WARNING=1 DISABLE_MKDOCS_2_WARNING=true  # the plugins' 'MkDocs 2' banners
uv run --no-sync mkdocs build --strict --quiet --site-dir "$(mktemp -d)"
echo "==> pytest"
uv run --no-sync pytest -n 2 "$@"
