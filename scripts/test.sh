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
# Two workers (pytest-xdist): the deploy's tests on one, the container-module tests on the
# other, at the same time; each file that uses a rig stays whole on one worker (XDIST_GROUPS
# in tests/conftest.py). The 40 slowest steps are listed at the end.
exec pytest -ra --durations=40 -n 2 "$@"
