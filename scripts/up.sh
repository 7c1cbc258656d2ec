#!/usr/bin/env bash
# The main job: bring up the local test rig, bootstrap its hosts and run the prechecks.
# Usage: bash scripts/up.sh [rig up options, e.g. --hosts 5 --engine podman]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_venv
out=$(mktemp)
sovstack rig up "$@" | tee "$out"
inventory=$(sed -n 's/^inventory: //p' "$out")
rm -f "$out"
sovstack bootstrap -i "$inventory"
sovstack prechecks -i "$inventory"
echo
echo "The rig is up, bootstrapped and passes its prechecks. Activate the environment with: . .venv/bin/activate"
echo "Then, for example: sovstack rig status; ansible -i $inventory all -m ping; sovstack rig down"
