# Shared set-up for scripts/test.sh and scripts/demo.sh: uv, then the workspace.
# Sourced, not run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if ! command -v uv >/dev/null 2>&1; then
  echo "==> installing uv"
  python3 -m pip install --quiet --disable-pip-version-check uv
fi
echo "==> installing the workspace (uv sync)"
uv sync --quiet --locked --all-packages --all-groups
