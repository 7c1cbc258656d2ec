#!/usr/bin/env bash
# The full test suite: lint, unit tests, and the integration tests on real rigs (docker and
# podman hosts). Installs what it needs; run as root on Debian.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_venv test
echo "== ruff"
ruff format --check .
ruff check .
echo "== ansible-lint (production profile)"
ansible-lint --nocolor
echo "== pytest"
exec pytest -ra "$@"
