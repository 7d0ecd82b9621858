#!/usr/bin/env bash
# Release check: builds every sdist and wheel, checks them, installs each wheel
# alone into a fresh virtual environment and imports it. It publishes nothing;
# upload the files it leaves in DIST_DIR (default dist/) yourself.
#
#     bash scripts/release.sh [DIST_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-dist}"
rm -rf "$out"
mkdir -p "$out"

echo "==> uv build --all-packages (sdists, and wheels built from them) into $out"
uv build --all-packages --quiet --out-dir "$out"

echo "==> metadata: names, one version ($(cat VERSION)), sessions-core pins, licence, package pages"
uv run --no-sync python scripts/release_check.py metadata "$out"

echo "==> twine check"
uv run --no-sync twine check --strict "$out"/*.whl "$out"/*.tar.gz

echo "==> each wheel alone in a fresh virtual environment"
uv run --no-sync python scripts/release_check.py install "$out"

echo "==> ready to publish (nothing was uploaded):"
ls -1 "$out"/*.whl "$out"/*.tar.gz
